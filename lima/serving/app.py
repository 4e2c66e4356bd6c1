"""The FastAPI app of `lima serve`: /v1/chat/completions, /v1/completions, /v1/models[/{id}], /health.

Handlers validate (lima/serving/protocol.py), tokenize, check the context, then hand a `Job` to the engine
(lima/serving/engine.py) and either wait for its rows (polling for a client that has gone, which cancels
them) or stream them as server-sent events. Errors always have OpenAI's JSON shape, 500s included.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from lima.serving.http import background_server
from lima.serving.protocol import (
    APIError,
    Sampling,
    bad,
    chat_body,
    chat_logprobs,
    completion_body,
    completion_logprobs,
    fit_max_tokens,
    lima_turns,
    new_id,
    now,
    parse_chat,
    parse_completion,
    parse_json_body,
    sse,
    usage,
)

DISCONNECT_POLL_S = 0.1
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class ClientGone(Exception):
    """The client closed the connection before its reply was ready."""


def _template_kind(generator: Any) -> str:
    """"lima" (the EOT template, no role markers), "custom" (a model's own chat template) or "none" (base)."""
    if not generator.has_chat_template:
        return "none"
    from lima.model import eot_token_of

    try:
        eot_token_of(generator.tokenizer)
    except ValueError:
        return "custom"
    return "lima"


def _context_length(model: Any, max_model_len: int | None) -> int:
    limit = getattr(model.config, "max_position_embeddings", None) or 1 << 30
    return min(limit, max_model_len) if max_model_len else limit


def create_app(model_dir: str | os.PathLike[str], model_name: str | None = None, dtype: str = "float32",
               default_max_tokens: int = 512, *, api_key: str | None = None, max_tokens_cap: int = 4096,
               max_model_len: int | None = None, max_batch_size: int = 16, batch_window: float = 0.01,
               device: str | None = None, truncate_prompts: bool = False, batching: str = "continuous") -> Any:
    """Load the model once, start its engine, and build the app (`app.state.engine` holds the stats).

    A prompt that does not fit the context with its max_tokens is a 400 naming both numbers; with
    `truncate_prompts` (the embedded tiny judge, whose context is shorter than the judge templates) it is
    cut from the left instead, and the reply says so in the `x-lima-prompt-tokens-truncated` header.
    """
    from lima.generate import DecodingConfig, HFGenerator
    from lima.serving.engine import Engine, Job, choice_seed, random_seed
    from lima.serving.fingerprint import checkpoint_fingerprint, system_fingerprint

    name = model_name or Path(model_dir).name
    generator = HFGenerator(model_dir, DecodingConfig(dtype=dtype, repetition_penalty=1.0, batch_size=1),
                            device=device)
    engine = Engine(generator, max_batch_size=max_batch_size, batch_window=batch_window, batching=batching)
    sha, method = checkpoint_fingerprint(model_dir)
    fingerprint = system_fingerprint(sha)
    context = _context_length(generator.model, max_model_len)
    vocab = generator.model.get_input_embeddings().num_embeddings
    kind = _template_kind(generator)
    created = int(time.time())
    card = {"id": name, "object": "model", "created": created, "owned_by": "lima", "root": str(model_dir),
            "parent": None, "max_model_len": context, "system_fingerprint": fingerprint,
            "checkpoint_sha256": sha, "fingerprint_method": method, "chat_template": kind,
            "batching": engine.batching, "max_batch_size": engine.max_batch_size}
    app = FastAPI(title=f"lima serve: {name}")
    app.state.engine, app.state.card = engine, card

    def error(err: APIError) -> JSONResponse:
        headers = {"www-authenticate": "Bearer"} if err.status == 401 else None
        return JSONResponse(status_code=err.status, content=err.body(), headers=headers)

    @app.exception_handler(APIError)
    async def api_error(_request: Request, err: APIError) -> JSONResponse:
        return error(err)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, err: RequestValidationError) -> JSONResponse:
        return error(bad(f"invalid request: {err.errors()}"))

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, err: HTTPException) -> JSONResponse:
        return error(APIError(err.status_code, str(err.detail), kind="invalid_request_error"
                              if err.status_code < 500 else "server_error"))

    @app.exception_handler(Exception)
    async def crashed(_request: Request, err: Exception) -> JSONResponse:
        return error(APIError(500, f"internal error: {type(err).__name__}: {err}", kind="server_error"))

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(token.encode(), api_key.encode()):
            raise APIError(401, "Incorrect API key provided: send it as `Authorization: Bearer <key>` "
                                "(lima serve --api-key)", code="invalid_api_key")

    def check_model(model: str | None) -> None:
        if model is not None and model != name:
            raise APIError(404, f"The model {model!r} does not exist; this server serves {name!r}",
                           param="model", code="model_not_found")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": name, "system_fingerprint": fingerprint, "stats": dict(engine.stats)}

    @app.get("/v1/models")
    def models(request: Request) -> dict[str, Any]:
        authorize(request)
        return {"object": "list", "data": [card]}

    @app.get("/v1/models/{model_id:path}")
    def model_card(model_id: str, request: Request) -> dict[str, Any]:
        authorize(request)
        check_model(model_id)
        return card

    async def run_sync(fn: Any, *args: Any) -> Any:
        import anyio

        return await anyio.to_thread.run_sync(fn, *args)

    def check_ids(ids: list[int], where: str) -> None:
        bad_ids = [t for t in ids if not 0 <= t < vocab]
        if bad_ids:
            raise bad(f"{where}: token id {bad_ids[0]} is out of range [0, {vocab})", param=where)

    def plan(ids: list[int], s: Sampling, default: int, what: str,
             guided_lengths: list[int]) -> tuple[list[int], int, int]:
        """(prompt ids to use, max_tokens, prompt tokens cut): a 400 when they do not fit, unless truncating."""
        if s.truncate_prompt_tokens is not None and len(ids) > s.truncate_prompt_tokens:
            ids = ids[-s.truncate_prompt_tokens:]
        need = max(guided_lengths) if s.guided_choice else (s.max_tokens or min(default, max_tokens_cap))
        removed = 0
        if truncate_prompts and len(ids) + need > context and need < context:
            removed = len(ids) + need - context          # left-truncated, like `lima generate`'s context guard
            ids = ids[removed:]
        if s.guided_choice:
            longest = max(guided_lengths)
            if len(ids) + longest > context:
                raise bad(f"This model's maximum context length is {context} tokens. However, you requested "
                          f"{len(ids) + longest} tokens ({len(ids)} in the {what}, {longest} in the "
                          f"longest guided choice). Please reduce the length of the {what}.", param=what,
                          code="context_length_exceeded")
            return ids, longest, removed
        return ids, fit_max_tokens(len(ids), s.max_tokens, default, context, max_tokens_cap, what), removed

    def cut_header(removed: int) -> dict[str, str]:
        if not removed:
            return {}
        engine.count(truncated_prompts=1)
        return {"x-lima-prompt-tokens-truncated": str(removed)}

    async def wait_rows(job: Any, request: Request) -> list[dict[str, Any]]:
        done: dict[int, dict[str, Any]] = {}
        while len(done) < len(job.rows):
            try:
                event = await asyncio.wait_for(job.events.get(), timeout=DISCONNECT_POLL_S)
            except TimeoutError:
                if await request.is_disconnected():
                    job.cancel()
                    raise ClientGone from None
                continue
            if event["type"] == "finish":
                done[event["index"]] = event
            elif event["type"] == "error":
                raise APIError(500, event["message"], kind="server_error")
            elif event["type"] == "cancelled":
                raise ClientGone
        return [done[i] for i in sorted(done)]

    def submit(rows: list[dict[str, Any]], s: Sampling) -> Any:
        job = Job(rows, asyncio.get_running_loop(), stream=s.stream, guided_choice=s.guided_choice)
        engine.submit(job)
        return job

    # ---- chat -------------------------------------------------------------------------------------------
    def chat_prompt(messages: list[dict[str, str]]) -> list[int]:
        if kind == "custom":
            try:
                with engine.tokenizer_lock:
                    text = engine.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception as err:  # noqa: BLE001 - a template's raise_exception, e.g. role alternation
                raise bad(f"messages: the model's chat template refused them: {err}", param="messages") from None
            return engine.encode(text, add_special_tokens=False)
        turns = lima_turns(messages)
        if kind == "lima":
            return engine.encode(engine.render_chat(turns), add_special_tokens=False)
        text = "\n\n".join(t["content"] for t in turns) + "\n\n"        # a base model: plain concatenation
        return engine.encode(text, add_special_tokens=True)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        authorize(request)
        req = parse_chat(parse_json_body(await request.body()))
        check_model(req.model)
        s = req.sampling
        ids = await run_sync(chat_prompt, req.messages)
        guided = [len(engine.encode(c, add_special_tokens=False)) for c in s.guided_choice or []]
        ids, max_tokens, removed = plan(ids, s, default_max_tokens, "messages", guided)
        seed = s.seed if s.seed is not None else random_seed()
        rows = [{"index": i, "prompt_ids": ids, "sampling": s, "max_tokens": max_tokens,
                 "seed": choice_seed(seed, i), "strip": True} for i in range(s.n)]
        job = submit(rows, s)
        rid, created = new_id("chatcmpl"), now()
        if s.stream:
            return StreamingResponse(stream_chat(job, rid, created, s, len(ids)), media_type="text/event-stream",
                                     headers={**SSE_HEADERS, **cut_header(removed)})
        try:
            finished = await wait_rows(job, request)
        except ClientGone:
            return Response(status_code=499)
        choices = [{"index": e["index"], "text": e["text"], "finish_reason": _finish(e["finish_reason"]),
                    "n_tokens": e["n_tokens"],
                    "logprobs": chat_logprobs(e["entries"], s.logprobs or 0) if s.logprobs is not None else None}
                   for e in finished]
        return JSONResponse(chat_body(rid, created, name, fingerprint, choices, len(ids)), headers=cut_header(removed))

    async def stream_chat(job: Any, rid: str, created: int, s: Sampling, prompt_tokens: int) -> AsyncIterator[bytes]:
        base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": name,
                "system_fingerprint": fingerprint}
        extra = {"usage": None} if s.include_usage else {}
        finished, completion_tokens = 0, 0
        try:
            for i in range(s.n):
                yield sse({**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                                "logprobs": None, "finish_reason": None}], **extra})
            while finished < s.n:
                event = await job.events.get()
                if event["type"] == "delta":
                    logprobs = chat_logprobs(event["entries"], s.logprobs or 0) if s.logprobs is not None else None
                    yield sse({**base, "choices": [{"index": event["index"], "delta": {"content": event["text"]},
                                                    "logprobs": logprobs, "finish_reason": None}], **extra})
                elif event["type"] == "finish":
                    finished += 1
                    completion_tokens += event["n_tokens"]
                    tail = event["tail_entries"]
                    logprobs = chat_logprobs(tail, s.logprobs or 0) if s.logprobs is not None and tail else None
                    yield sse({**base, "choices": [{"index": event["index"], "delta": {}, "logprobs": logprobs,
                                                    "finish_reason": _finish(event["finish_reason"])}], **extra})
                elif event["type"] == "error":
                    yield sse(APIError(500, event["message"], kind="server_error").body())
                    return
                else:
                    return
            if s.include_usage:
                yield sse({**base, "choices": [], "usage": usage(prompt_tokens, completion_tokens)})
            yield sse("[DONE]")
        finally:
            if finished < s.n:
                job.cancel()

    # ---- completions (base models: URIAL, the base-model baseline) ----------------------------------------
    def completion_prompts(prompts: list[str | list[int]]) -> list[tuple[list[int], str]]:
        out = []
        for i, prompt in enumerate(prompts):
            if isinstance(prompt, str):
                out.append((engine.encode(prompt, add_special_tokens=True), prompt))
            else:
                check_ids(prompt, f"prompt[{i}]" if len(prompts) > 1 else "prompt")
                out.append((list(prompt), engine.decode(list(prompt))))
        return out

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        authorize(request)
        req = parse_completion(parse_json_body(await request.body()))
        check_model(req.model)
        s = req.sampling
        if s.guided_choice and len(req.prompts) > 1:
            raise bad("guided_choice takes one prompt per request", param="guided_choice")
        prompts = await run_sync(completion_prompts, req.prompts)
        guided = [len(engine.encode(c, add_special_tokens=False)) for c in s.guided_choice or []]
        seed = s.seed if s.seed is not None else random_seed()
        rows, used, removed = [], [], 0
        for p, (ids, text) in enumerate(prompts):
            where = "prompt" if len(prompts) == 1 else f"prompt[{p}]"
            ids, max_tokens, cut = plan(ids, s, default_max_tokens, where, guided)
            used.append(ids)
            removed += cut
            for j in range(s.n):
                index = p * s.n + j
                rows.append({"index": index, "prompt_ids": ids, "sampling": s, "max_tokens": max_tokens,
                             "seed": choice_seed(seed, index), "strip": False, "prefix": text if req.echo else ""})
        prompt_tokens = sum(len(ids) for ids in used)
        job = submit(rows, s)
        rid, created = new_id("cmpl"), now()
        if s.stream:
            return StreamingResponse(stream_completion(job, rid, created, s, len(rows), prompt_tokens),
                                     media_type="text/event-stream", headers={**SSE_HEADERS, **cut_header(removed)})
        try:
            finished = await wait_rows(job, request)
        except ClientGone:
            return Response(status_code=499)
        choices = [{"index": e["index"], "text": e["text"], "finish_reason": _finish(e["finish_reason"]),
                    "n_tokens": e["n_tokens"],
                    "logprobs": completion_logprobs(e["entries"], s.logprobs or 0) if s.logprobs is not None
                    else None} for e in finished]
        return JSONResponse(completion_body(rid, created, name, fingerprint, choices, prompt_tokens),
                            headers=cut_header(removed))

    async def stream_completion(job: Any, rid: str, created: int, s: Sampling, n_rows: int,
                                prompt_tokens: int) -> AsyncIterator[bytes]:
        base = {"id": rid, "object": "text_completion", "created": created, "model": name,
                "system_fingerprint": fingerprint}
        extra = {"usage": None} if s.include_usage else {}
        finished, completion_tokens = 0, 0
        offsets: dict[int, int] = {}
        try:
            while finished < n_rows:
                event = await job.events.get()
                if event["type"] in {"delta", "finish"}:
                    index = event["index"]
                    entries = event["entries"] if event["type"] == "delta" else event["tail_entries"]
                    logprobs = None
                    if s.logprobs is not None and entries:
                        logprobs = completion_logprobs(entries, s.logprobs, offsets.get(index, 0))
                        offsets[index] = offsets.get(index, 0) + sum(len(e["token"]) for e in entries)
                    if event["type"] == "delta":
                        yield sse({**base, "choices": [{"index": index, "text": event["text"], "logprobs": logprobs,
                                                        "finish_reason": None}], **extra})
                    else:
                        finished += 1
                        completion_tokens += event["n_tokens"]
                        yield sse({**base, "choices": [{"index": index, "text": "", "logprobs": logprobs,
                                                        "finish_reason": _finish(event["finish_reason"])}],
                                   **extra})
                elif event["type"] == "error":
                    yield sse(APIError(500, event["message"], kind="server_error").body())
                    return
                else:
                    return
            if s.include_usage:
                yield sse({**base, "choices": [], "usage": usage(prompt_tokens, completion_tokens)})
            yield sse("[DONE]")
        finally:
            if finished < n_rows:
                job.cancel()

    return app


def _finish(reason: str) -> str:
    return "length" if reason == "length" else "stop"


@contextlib.contextmanager
def serve_in_background(model_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 0,
                        model_name: str | None = None, dtype: str = "float32", **options: Any) -> Iterator[str]:
    """Serve a model directory from a background thread; yields the base_url (".../v1")."""
    app = create_app(model_dir, model_name=model_name, dtype=dtype, **options)
    try:
        with background_server(app, host=host, port=port) as root:
            yield root + "/v1"
    finally:
        app.state.engine.close()
