"""A real OpenAI-compatible HTTP server on 127.0.0.1 with scripted replies and fault injection.

Tests of anything that talks to an LLM endpoint (llm_client, provider systems, the judge) run against this
over loopback, so the whole HTTP path — the official `openai` SDK, retries, timeouts — is exercised without
the network. Usage:

    from openai_stub import OpenAIStub, openai_stub   # `openai_stub` is a pytest fixture

    def test_x(openai_stub):
        openai_stub.script("first reply", {"content": "A", "logprobs": [{"A": -0.1, "B": -2.3}]})
        openai_stub.fail_next(2, status=429)            # the next 2 requests get 429, then the script resumes
        openai_stub.slow_next(1, seconds=2.0)           # the next request sleeps before answering
        endpoint = EndpointConfig(base_url=openai_stub.base_url, model="stub-model")
        ...
        assert openai_stub.n_requests == 3

A script item is a string (the reply text) or a dict with any of: content, logprobs (a list, one
{token: logprob} dict per generated position; the first key is taken as the chosen token), finish_reason,
status (an HTTP error status instead of a reply), delay (seconds before answering), usage. When the script
is empty, `default` answers: a string, or a callable(request_body) -> str | dict.

`GET /v1/models/{id}` answers a model card (with `root` and `system_fingerprint` when given), so clients that
ask for the endpoint's identity get one; `fingerprint` is also sent in every completion.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from lima.serve import background_server

Reply = str | dict[str, Any]


class OpenAIStub:
    def __init__(self, default: Reply | Callable[[dict[str, Any]], Reply] = "stub reply",
                 model: str = "stub-model", fingerprint: str | None = None, root: str | None = None) -> None:
        self.default = default
        self.model = model
        self.fingerprint = fingerprint
        self.root = root
        self.probes = 0                                # GET /v1/models/{id} calls
        self.requests: list[dict[str, Any]] = []      # every chat-completions body received, faults included
        self._script: deque[Reply] = deque()
        self._faults: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self.base_url = ""                            # ".../v1", set by start()
        self._ctx: contextlib.AbstractContextManager[str] | None = None
        self.app = self._build_app()

    # ---- scripting -------------------------------------------------------------------------------------
    def script(self, *replies: Reply) -> OpenAIStub:
        with self._lock:
            self._script.extend(replies)
        return self

    def fail_next(self, n: int, status: int = 429, retry_after: float | None = None,
                  headers: dict[str, str] | None = None) -> OpenAIStub:
        with self._lock:
            self._faults.extend({"status": status, "retry_after": retry_after, "headers": headers or {}}
                                for _ in range(n))
        return self

    def slow_next(self, n: int, seconds: float) -> OpenAIStub:
        with self._lock:
            self._faults.extend({"delay": seconds} for _ in range(n))
        return self

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._script.clear()
            self._faults.clear()

    @property
    def n_requests(self) -> int:
        return len(self.requests)

    # ---- server ----------------------------------------------------------------------------------------
    def start(self) -> OpenAIStub:
        self._ctx = background_server(self.app)
        self.base_url = self._ctx.__enter__() + "/v1"
        return self

    def stop(self) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self._ctx = None

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.requests.append(body)
            if self._faults:
                return dict(self._faults.popleft())
            item = self._script.popleft() if self._script else None
        if item is None:
            item = self.default(body) if callable(self.default) else self.default
        return {"content": item} if isinstance(item, str) else dict(item)

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        def card() -> dict[str, Any]:
            out: dict[str, Any] = {"id": self.model, "object": "model", "owned_by": "stub"}
            if self.root:
                out["root"] = self.root
            if self.fingerprint:
                out["system_fingerprint"] = self.fingerprint
            return out

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [card()]}

        @app.get("/v1/models/{model_id:path}")
        async def model(model_id: str) -> JSONResponse:
            self.probes += 1
            if model_id != self.model:
                return JSONResponse(status_code=404, content={"error": {
                    "message": f"stub: no model {model_id!r}", "type": "invalid_request_error", "param": "model",
                    "code": "model_not_found"}})
            return JSONResponse(card())

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> JSONResponse:
            body = await request.json()
            spec = self._next(body)
            if spec.get("delay"):
                await asyncio.sleep(float(spec["delay"]))
                if "content" not in spec and "status" not in spec:
                    spec = self._scripted_after_delay(body)
            if spec.get("status"):
                headers = {"retry-after": str(spec["retry_after"])} if spec.get("retry_after") is not None else {}
                headers.update(spec.get("headers") or {})
                return JSONResponse(status_code=int(spec["status"]), headers=headers, content={"error": {
                    "message": f"stub: injected {spec['status']}", "type": "stub_error", "param": None,
                    "code": str(spec["status"])}})
            return JSONResponse({**_completion(body, spec, self.model), "system_fingerprint": self.fingerprint})

        return app

    def _scripted_after_delay(self, body: dict[str, Any]) -> dict[str, Any]:
        """A slow request that was not abandoned still answers with the next scripted reply (not counted twice)."""
        with self._lock:
            item = self._script.popleft() if self._script else None
        if item is None:
            item = self.default(body) if callable(self.default) else self.default
        return {"content": item} if isinstance(item, str) else dict(item)


def _completion(body: dict[str, Any], spec: dict[str, Any], model: str) -> dict[str, Any]:
    content = str(spec.get("content", ""))
    tokens = content.split(" ") if content else []
    logprobs = None
    if body.get("logprobs"):
        scripted = spec.get("logprobs")
        positions = scripted if scripted is not None else [{tok: -0.1} for tok in tokens]
        k = int(body.get("top_logprobs") or 0)
        logprobs = {"content": [
            {"token": next(iter(pos)), "logprob": float(next(iter(pos.values()))), "bytes": None,
             "top_logprobs": [{"token": t, "logprob": float(lp), "bytes": None}
                              for t, lp in sorted(pos.items(), key=lambda kv: -kv[1])[:k]]}
            for pos in positions]}
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    usage = spec.get("usage") or {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens),
                                  "total_tokens": prompt_tokens + len(tokens)}
    return {
        "id": f"chatcmpl-stub-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", model),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": spec.get("finish_reason", "stop"), "logprobs": logprobs}],
        "usage": usage,
    }


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    """A fresh stub server per test (starts in ~50 ms)."""
    with OpenAIStub() as stub:
        yield stub
