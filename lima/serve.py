"""`python -m lima serve`: an OpenAI-compatible chat-completions server for any local model directory.

The judge code, external evaluators (AlpacaEval, MT-Bench) and chat UIs all speak the OpenAI API, so one
server lets every one of them reach our models; in the embedded default it is also the local stand-in for
GPT-4. Requests are served one at a time behind a lock because a single CPU/GPU model is not re-entrant.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import Request


@contextlib.contextmanager
def background_server(app: Any, host: str = "127.0.0.1", port: int = 0, ready_timeout: float = 30.0) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a daemon thread; yield its root URL ("http://host:port").

    We bind the socket ourselves so `port=0` gives a free port we know before the server starts, and tests
    running in parallel never collide.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, host=host, port=bound_port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=1, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"uvicorn-{bound_port}")
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"server on {host}:{bound_port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# ---- the OpenAI-compatible model server ----------------------------------------------------------------

MAX_TOP_LOGPROBS = 20


def _error(status: int, message: str, param: str | None = None, code: str | None = None,
           kind: str = "invalid_request_error") -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=status, content={"error": {"message": message, "type": kind, "param": param,
                                                               "code": code}})


def _request_models() -> tuple[Any, Any]:
    from pydantic import BaseModel, ConfigDict, Field

    class Message(BaseModel):
        model_config = ConfigDict(extra="ignore")
        role: Literal["system", "user", "assistant", "developer"]
        content: str | list[dict[str, Any]]

        def text(self) -> str:
            if isinstance(self.content, str):
                return self.content
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")

    class ChatRequest(BaseModel):
        model_config = ConfigDict(extra="ignore")     # OpenAI clients send fields we do not use
        model: str | None = None
        messages: list[Message] = Field(min_length=1)
        temperature: float = Field(1.0, ge=0.0, le=2.0)
        top_p: float = Field(1.0, gt=0.0, le=1.0)
        max_tokens: int | None = Field(None, gt=0)
        max_completion_tokens: int | None = Field(None, gt=0)
        stop: str | list[str] | None = None
        seed: int | None = None
        logprobs: bool = False
        top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
        n: int = Field(1, ge=1, le=1)
        stream: bool = False
        repetition_penalty: float = Field(1.0, gt=0.0)   # non-standard (as in vLLM); CTRL rule, generated only
        guided_choice: list[str] | None = Field(None, min_length=1, max_length=32)  # vLLM's extension

    return Message, ChatRequest


def create_app(model_dir: str | os.PathLike[str], model_name: str | None = None, dtype: str = "float32",
               default_max_tokens: int = 512) -> Any:
    """Load the model once and build the FastAPI app around it."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    from lima.generate import DecodingConfig, HFGenerator

    name = model_name or Path(model_dir).name
    generator = HFGenerator(model_dir, DecodingConfig(dtype=dtype, repetition_penalty=1.0, batch_size=1))
    _, ChatRequest = _request_models()
    lock = threading.Lock()
    created = int(time.time())
    app = FastAPI(title=f"lima serve: {name}")

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, err: RequestValidationError) -> Any:
        return _error(400, f"invalid request: {err.errors()}")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model": name}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": "lima"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object")
        try:
            req = ChatRequest.model_validate(body)
        except ValidationError as err:
            first = err.errors()[0]
            param = ".".join(str(p) for p in first.get("loc", ()))
            return _error(400, f"{param}: {first.get('msg')}", param=param or None)
        if req.model is not None and req.model != name:
            return _error(404, f"the model {req.model!r} does not exist; this server serves {name!r}",
                          param="model", code="model_not_found")
        if req.stream:
            return _error(400, "stream=true is not supported by lima serve", param="stream")
        import anyio

        return await anyio.to_thread.run_sync(lambda: _complete(generator, lock, name, req, default_max_tokens))

    return app


def _complete(generator: Any, lock: threading.Lock, name: str, req: Any, default_max_tokens: int) -> dict[str, Any]:
    messages = [{"role": m.role, "content": m.text()} for m in req.messages]
    if generator.has_chat_template:
        prompt, special = generator.tokenizer.apply_chat_template(messages, tokenize=False), False
    else:                                      # a base model: plain concatenation, BOS added by the tokenizer
        prompt, special = "\n\n".join(m["content"] for m in messages) + "\n\n", True
    if req.guided_choice:
        with lock:
            return _guided_choice(generator, name, req, prompt, special)
    stop = [req.stop] if isinstance(req.stop, str) else req.stop
    k = req.top_logprobs or 0
    seed = req.seed if req.seed is not None else random.randrange(2**31)
    with lock:                                 # one model, one request at a time
        result = generator.generate_texts(
            [prompt], seed=seed, stop=stop or None, max_new_tokens=req.max_completion_tokens or req.max_tokens
            or default_max_tokens, temperature=req.temperature, top_p=req.top_p, do_sample=req.temperature > 0,
            top_logprobs=max(k, 1) if req.logprobs else None, add_special_tokens=special,
            repetition_penalty=req.repetition_penalty)[0]
    logprobs = None
    if req.logprobs and result.logprobs is not None:
        logprobs = {"content": [
            {"token": pos["token"], "logprob": pos["logprob"], "bytes": pos["bytes"],
             "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))}
                              for t, lp in list(pos["top"].items())[:k]]}
            for pos in result.logprobs]}
    return _completion(name, result.text, "length" if result.stop_reason == "length" else "stop", logprobs,
                       result.prompt_tokens, result.n_tokens)


def _completion(name: str, content: str, finish_reason: str, logprobs: dict[str, Any] | None,
                prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The OpenAI chat.completion body (n=1)."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": name,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish_reason, "logprobs": logprobs}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _guided_choice(generator: Any, name: str, req: Any, prompt: str, special: bool) -> dict[str, Any]:
    """vLLM's `guided_choice`: the reply is one of the given strings, scored by its full log-probability.

    A judge that must answer with a label gets one even from a model that would never write it freely (the
    smoke profile's tiny judge); the label probabilities come back as the first position's top_logprobs,
    normalised over the choices, so the logprob-mode parser reads them like any other endpoint's.
    """
    import torch

    tok, model = generator.tokenizer, generator.model
    prompt_ids = tok(prompt, add_special_tokens=special)["input_ids"]
    choices = [tok(c, add_special_tokens=False)["input_ids"] for c in req.guided_choice]
    limit = getattr(model.config, "max_position_embeddings", None) or 1 << 30
    keep = max(1, limit - max(len(c) for c in choices))
    prompt_ids = prompt_ids[-keep:]                  # like generation: the prompt is cut from the left
    scores = []
    with torch.no_grad():
        for ids in choices:
            full = torch.tensor([prompt_ids + ids])
            logits = model(input_ids=full).logits[0, len(prompt_ids) - 1: -1].float().log_softmax(-1)
            scores.append(float(logits.gather(1, torch.tensor(ids)[:, None]).sum()))
    norm = torch.tensor(scores).log_softmax(0)
    if req.temperature > 0:
        gen = torch.Generator().manual_seed(req.seed if req.seed is not None else random.randrange(2**31))
        pick = int(torch.multinomial((norm / req.temperature).softmax(0), 1, generator=gen))
    else:
        pick = int(norm.argmax())
    ranked = sorted(zip(req.guided_choice, norm.tolist(), strict=True), key=lambda kv: -kv[1])
    logprobs = None
    if req.logprobs:
        chosen = req.guided_choice[pick]
        logprobs = {"content": [{"token": chosen, "logprob": float(norm[pick]), "bytes": list(chosen.encode()),
                                 "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())}
                                                  for t, lp in ranked[: max(req.top_logprobs or 0, 1)]]}]}
    return _completion(name, req.guided_choice[pick], "stop", logprobs, len(prompt_ids), len(choices[pick]))


@contextlib.contextmanager
def serve_in_background(model_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 0,
                        model_name: str | None = None, dtype: str = "float32") -> Iterator[str]:
    """Serve a model directory from a background thread; yields the base_url (".../v1")."""
    app = create_app(model_dir, model_name=model_name, dtype=dtype)
    with background_server(app, host=host, port=port) as root:
        yield root + "/v1"


def main(argv: list[str], prog: str) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a local model directory (e.g. models/lima/checkpoint-epoch-6)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--model-name", default=None, help="the name clients must send as `model` (default: the "
                                                           "directory name)")
    parser.add_argument("--dtype", default="float32", help="torch dtype to load the weights in (default float32)")
    parser.add_argument("--default-max-tokens", type=int, default=512,
                        help="max_tokens when a request gives none (default 512)")
    args = parser.parse_args(argv)
    if not Path(args.model).is_dir():
        parser.error(f"--model {args.model}: not a directory")
    app = create_app(args.model, model_name=args.model_name, dtype=args.dtype,
                     default_max_tokens=args.default_max_tokens)
    name = args.model_name or Path(args.model).name
    print(f"serving {args.model} as {name!r} on http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
