"""The response side of the OpenAI wire format as `lima serve` speaks it: ids, usage, the chat and legacy
completions logprobs shapes, the response bodies and server-sent events.

Kept apart from protocol.py (which parses and validates requests) because rendering an answer shares no
rule with checking a request; pure Python, no torch.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def chat_logprobs(entries: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """Per-token entries {"token", "logprob", "bytes", "top": [(token, logprob, bytes)]} → OpenAI chat shape."""
    return {"content": [
        {"token": e["token"], "logprob": e["logprob"], "bytes": e["bytes"],
         "top_logprobs": [{"token": t, "logprob": lp, "bytes": b} for t, lp, b in e["top"][:k]]}
        for e in entries], "refusal": None}


def completion_logprobs(entries: list[dict[str, Any]], k: int, offset: int = 0) -> dict[str, Any]:
    """The legacy completions shape: tokens, token_logprobs, top_logprobs ({token: logprob}), text_offset."""
    offsets, pos = [], offset
    for e in entries:
        offsets.append(pos)
        pos += len(e["token"])
    return {"tokens": [e["token"] for e in entries], "token_logprobs": [e["logprob"] for e in entries],
            "top_logprobs": [{t: lp for t, lp, _ in e["top"][:k]} for e in entries], "text_offset": offsets}


def chat_body(rid: str, created: int, model: str, fingerprint: str, choices: list[dict[str, Any]],
              prompt_tokens: int) -> dict[str, Any]:
    return {"id": rid, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": fingerprint, "choices": [
                {"index": c["index"], "message": {"role": "assistant", "content": c["text"], "refusal": None},
                 "finish_reason": c["finish_reason"], "logprobs": c.get("logprobs")} for c in choices],
            "usage": usage(prompt_tokens, sum(c["n_tokens"] for c in choices))}


def completion_body(rid: str, created: int, model: str, fingerprint: str, choices: list[dict[str, Any]],
                    prompt_tokens: int) -> dict[str, Any]:
    return {"id": rid, "object": "text_completion", "created": created, "model": model,
            "system_fingerprint": fingerprint, "choices": [
                {"index": c["index"], "text": c["text"], "finish_reason": c["finish_reason"],
                 "logprobs": c.get("logprobs")} for c in choices],
            "usage": usage(prompt_tokens, sum(c["n_tokens"] for c in choices))}


def sse(obj: dict[str, Any] | str) -> bytes:
    """One server-sent event: `data: {...}` and a blank line; `data: [DONE]` ends a stream."""
    data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def now() -> int:
    return int(time.time())
