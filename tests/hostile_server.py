"""A deliberately bad OpenAI-compatible server on 127.0.0.1, for the judge client's robustness tests.

It speaks raw HTTP/1.1 over asyncio streams (no framework), so it can do what a well-behaved framework will
not: close the connection halfway through a body, send a 200 whose JSON is cut short, or answer with HTML.
Faults are planned per prompt (the last message's content) and consumed one per attempt:

    server = HostileServer(reply=lambda prompt: "Verdict: A")
    server.plan("q3", "cut_connection", "truncated_json")   # q3's first two attempts fail, the third answers
    server.plan("q5", ("429_ms", 150))                       # 429 with retry-after-ms: 150 (and Retry-After: 30)
    with server:
        ... EndpointConfig(base_url=server.base_url, model="hostile") ...
    server.attempts["q3"] == 3; server.answered["q3"] == 1

Faults: cut_connection (headers promise more bytes than are sent), truncated_json (a complete 200 whose JSON
ends mid-way), invalid_json (a 200 HTML page labelled JSON), no_choices (valid JSON without choices),
text_plain (a 200 that is not JSON), ("429_ms", ms), ("429_date", seconds) (Retry-After as an HTTP date),
("slow", seconds) (then a good answer), ("503", None). `log` records (prompt, outcome) in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from typing import Any


class HostileServer:
    def __init__(self, reply: Callable[[str], str] = lambda prompt: "Verdict: A", model: str = "hostile") -> None:
        self.reply, self.model = reply, model
        self.plans: dict[str, deque[Any]] = defaultdict(deque)
        self.attempts: Counter[str] = Counter()      # chat requests per prompt, faults included
        self.answered: Counter[str] = Counter()      # good 200 replies per prompt
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def plan(self, prompt: str, *faults: Any) -> HostileServer:
        with self._lock:
            self.plans[prompt].extend(faults)
        return self

    @property
    def n_requests(self) -> int:
        return sum(self.attempts.values())

    # ---- lifecycle -------------------------------------------------------------------------------------
    def __enter__(self) -> HostileServer:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0))
            port = self._server.sockets[0].getsockname()[1]
            self.base_url = f"http://127.0.0.1:{port}/v1"
            ready.set()
            self._loop.run_forever()
            self._server.close()
            tasks = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="hostile-server")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("hostile server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    # ---- HTTP ------------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:] if ":" in h)}
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                keep = await self._respond(method, path, body, writer)
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    def _send(writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str = "application/json",
              extra: dict[str, str] | None = None, declared: int | None = None) -> None:
        reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "X")
        head = [f"HTTP/1.1 {status} {reason}", f"content-type: {ctype}",
                f"content-length: {declared if declared is not None else len(body)}"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    async def _respond(self, method: str, path: str, raw: bytes, writer: asyncio.StreamWriter) -> bool:
        if method == "GET" and path.startswith("/v1/models"):
            card = {"id": self.model, "object": "model", "owned_by": "hostile"}
            self._send(writer, 200, json.dumps(card if path != "/v1/models" else {"data": [card]}).encode())
            await writer.drain()
            return True
        if method != "POST" or path != "/v1/chat/completions":
            self._send(writer, 404, b'{"error": {"message": "no such route"}}')
            await writer.drain()
            return True
        body = json.loads(raw)
        prompt = str(body["messages"][-1]["content"])
        with self._lock:
            self.attempts[prompt] += 1
            fault = self.plans[prompt].popleft() if self.plans[prompt] else None
        kind, arg = fault if isinstance(fault, tuple) else (fault, None)
        self.log.append((prompt, str(kind or "ok")))
        good = json.dumps(self._completion(body, prompt)).encode()
        if kind == "cut_connection":
            self._send(writer, 200, good[: len(good) // 2], declared=len(good))
            await writer.drain()
            return False
        if kind == "truncated_json":
            self._send(writer, 200, good[: len(good) // 2])
        elif kind == "invalid_json":
            self._send(writer, 200, b"<html><body>502 Bad Gateway</body></html>")
        elif kind == "no_choices":
            self._send(writer, 200, json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode())
        elif kind == "text_plain":
            self._send(writer, 200, b"OK", ctype="text/plain")
        elif kind == "429_ms":
            self._send(writer, 429, b'{"error": {"message": "slow down", "type": "rate_limit"}}',
                       extra={"retry-after-ms": str(arg), "retry-after": "30"})
        elif kind == "429_date":
            when = email.utils.formatdate(time.time() + float(arg), usegmt=True)
            self._send(writer, 429, b'{"error": {"message": "slow down", "type": "rate_limit"}}',
                       extra={"retry-after": when})
        elif kind == "503":
            self._send(writer, 503, b'{"error": {"message": "overloaded", "type": "server_error"}}')
        else:
            if kind == "slow":
                await asyncio.sleep(float(arg))
            self._send(writer, 200, good)
            with self._lock:
                self.answered[prompt] += 1
        await writer.drain()
        return True

    def _completion(self, body: dict[str, Any], prompt: str) -> dict[str, Any]:
        text = self.reply(prompt)
        return {"id": f"chatcmpl-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
                "model": self.model, "system_fingerprint": "fp_hostile",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}

