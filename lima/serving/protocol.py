"""The OpenAI wire format as `lima serve` speaks it: request validation, role handling, response bodies.

Pure Python (no torch), so every rule here is tested without a model. The rules:

* **Unknown or unsupported fields are a 400 that names the field**, never a silent 200: a client that sends
  `response_format`, `tools`, `logit_bias`, a penalty or an image part would otherwise get an answer that
  ignored what it asked for. A few fields with no effect on the output (`user`, `metadata`, `store: false`)
  are accepted; a field sent as `null`, or at its neutral value (`frequency_penalty: 0`,
  `response_format: {"type": "text"}`, `tool_choice: "none"`), is taken as absent.
* **Roles.** LIMA's chat template has no role markers (`[bos] user EOT assistant EOT ...`, lima/model.py), so
  a `system` message would become one more turn and shift the user/assistant alternation the model was
  trained on. Leading `system`/`developer` messages are therefore merged into the first user turn (their
  text, a blank line, then the user's text); a system message after the first user turn, two user (or two
  assistant) turns in a row, a conversation that starts with `assistant` or does not end with `user` are a
  400. A model with a chat template of its own (not LIMA's) gets the messages as they are, and its template's
  own errors become a 400.
* **Integers** out of range (a seed ≥ 2^64, `n` over the limit, `max_tokens` over the server's cap or the
  context) are a 400 in OpenAI's error shape, never a plain-text 500.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

MAX_TOP_LOGPROBS = 20
MAX_N = 16
MAX_STOP = 16
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1

# fields that do not change the output: accepted and ignored
IGNORED = {"user", "metadata", "store", "safety_identifier", "prompt_cache_key"}
# field -> the values that mean "not used" (anything else is a 400 naming the field)
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "response_format": ({"type": "text"},), "tools": ([],), "tool_choice": ("none",), "functions": ([],),
    "function_call": ("none",), "parallel_tool_calls": (), "frequency_penalty": (0, 0.0),
    "presence_penalty": (0, 0.0), "logit_bias": ({},), "audio": (), "modalities": (["text"],), "prediction": (),
    "web_search_options": (), "reasoning_effort": (), "verbosity": (), "service_tier": ("auto", "default"),
    "suffix": ("",), "min_p": (0, 0.0), "length_penalty": (1, 1.0),
    "use_beam_search": (False,), "guided_json": (), "guided_regex": (), "guided_grammar": (),
}
WHY = {"response_format": "structured output (JSON mode / json_schema) is not implemented",
       "tools": "tool calling is not implemented", "tool_choice": "tool calling is not implemented",
       "functions": "function calling is not implemented", "function_call": "function calling is not implemented",
       "parallel_tool_calls": "tool calling is not implemented",
       "frequency_penalty": "only repetition_penalty (CTRL, on generated tokens) is implemented",
       "presence_penalty": "only repetition_penalty (CTRL, on generated tokens) is implemented",
       "logit_bias": "logit_bias is not implemented", "audio": "audio output is not implemented",
       "modalities": "only text output is implemented", "suffix": "insertion (suffix) is not implemented",
       "best_of": "best_of other than n is not implemented",
       "store": "stored completions are not implemented"}


class APIError(Exception):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def bad(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def parse_json_body(raw: bytes) -> dict[str, Any]:
    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        body = json.loads(raw, parse_constant=no_constants)
    except (ValueError, RecursionError) as err:
        raise bad(f"request body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise bad("request body must be a JSON object")
    return body


# ---- typed field checks -----------------------------------------------------------------------------------

def _int(body: dict[str, Any], name: str, default: int | None, lo: int | None = None,
         hi: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"{name}: expected an integer, got {json.dumps(value)[:40]}", param=name)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise bad(f"{name}: {value} is out of range {span}", param=name)
    return value


def _float(body: dict[str, Any], name: str, default: float, lo: float, hi: float | None = None,
           lo_open: bool = False) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(f"{name}: expected a number, got {json.dumps(value)[:40]}", param=name)
    value = float(value)
    if not math.isfinite(value) or value < lo or (lo_open and value == lo) or (hi is not None and value > hi):
        left = "(" if lo_open else "["
        raise bad(f"{name}: {value} is out of range {left}{lo}, {hi if hi is not None else 'inf'}]", param=name)
    return value


def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad(f"{name}: expected true or false, got {json.dumps(value)[:40]}", param=name)
    return value


def _stop(body: dict[str, Any]) -> list[str]:
    value = body.get("stop")
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise bad("stop: expected a string or a list of strings", param="stop")
    if len(items) > MAX_STOP:
        raise bad(f"stop: at most {MAX_STOP} stop strings, got {len(items)}", param="stop")
    if any(s == "" for s in items):
        raise bad("stop: a stop string may not be empty", param="stop")
    return list(dict.fromkeys(items))


def _check_fields(body: dict[str, Any], known: set[str]) -> None:
    for name, value in body.items():
        if name in known or name in IGNORED:
            if name == "store" and value not in (None, False):
                raise bad(f"store: {WHY['store']}", param="store")
            continue
        if name in NEUTRAL:
            if value is None or value in NEUTRAL[name]:
                continue
            reason = WHY.get(name, "not implemented by lima serve")
            raise bad(f"{name} is not supported by lima serve ({reason})", param=name, code="unsupported_parameter")
        raise bad(f"unrecognized request argument supplied: {name}", param=name, code="unknown_parameter")


# ---- the sampling parameters shared by chat and completions ----------------------------------------------

SAMPLING_FIELDS = {"model", "max_tokens", "temperature", "top_p", "top_k", "n", "stop", "seed", "stream",
                   "stream_options", "repetition_penalty", "ignore_eos", "min_tokens", "truncate_prompt_tokens"}


@dataclass
class Sampling:
    max_tokens: int | None            # None: the server picks (its default, within the context)
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0                    # 0 (or -1): off
    n: int = 1
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    logprobs: int | None = None       # None: no logprobs; k >= 0: the chosen token plus k alternatives
    repetition_penalty: float = 1.0
    ignore_eos: bool = False          # vLLM's extension: EOT/EOS are never sampled, generation runs to max_tokens
    min_tokens: int = 0               # vLLM's extension: EOT/EOS are masked for the first min_tokens tokens
    stream: bool = False
    include_usage: bool = False
    guided_choice: list[str] | None = None
    truncate_prompt_tokens: int | None = None   # vLLM's extension: keep only the prompt's last k tokens


def _sampling(body: dict[str, Any], max_tokens_name: str = "max_tokens") -> Sampling:
    max_tokens = _int(body, max_tokens_name, None, lo=1)
    if max_tokens_name != "max_tokens" and body.get("max_tokens") is not None:
        other = _int(body, "max_tokens", None, lo=1)
        if max_tokens is not None and other != max_tokens:
            raise bad("max_tokens and max_completion_tokens disagree: send one of them", param="max_tokens")
        max_tokens = max_tokens or other
    seed = _int(body, "seed", None, lo=SEED_MIN, hi=SEED_MAX)
    stream = _bool(body, "stream", False)
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not stream:
            raise bad("stream_options is only allowed when stream is true", param="stream_options")
        if not isinstance(options, dict):
            raise bad("stream_options: expected an object", param="stream_options")
        for key in options:
            if key != "include_usage":
                raise bad(f"stream_options.{key} is not supported", param=f"stream_options.{key}")
        include_usage = _bool(options, "include_usage", False)
    top_k = _int(body, "top_k", 0, lo=-1)
    sampling = Sampling(
        max_tokens=max_tokens, temperature=_float(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_float(body, "top_p", 1.0, 0.0, 1.0, lo_open=True), top_k=max(0, top_k or 0),
        n=_int(body, "n", 1, lo=1, hi=MAX_N) or 1, stop=_stop(body), seed=seed,
        repetition_penalty=_float(body, "repetition_penalty", 1.0, 0.0, 100.0, lo_open=True),
        ignore_eos=_bool(body, "ignore_eos", False), min_tokens=_int(body, "min_tokens", 0, lo=0) or 0,
        stream=stream, include_usage=include_usage,
        truncate_prompt_tokens=_int(body, "truncate_prompt_tokens", None, lo=1))
    if sampling.max_tokens is not None and sampling.min_tokens > sampling.max_tokens:
        raise bad(f"min_tokens ({sampling.min_tokens}) exceeds max_tokens ({sampling.max_tokens})",
                  param="min_tokens")
    return sampling


def _guided_choice(body: dict[str, Any]) -> list[str] | None:
    choices = body.get("guided_choice")
    if choices is None:
        return None
    if not isinstance(choices, list) or not choices or len(choices) > 32 \
            or not all(isinstance(c, str) and c for c in choices):
        raise bad("guided_choice: expected a list of 1 to 32 non-empty strings", param="guided_choice")
    return list(choices)


# ---- chat ---------------------------------------------------------------------------------------------------

CHAT_FIELDS = SAMPLING_FIELDS | {"messages", "max_completion_tokens", "logprobs", "top_logprobs", "guided_choice"}
ROLES = {"system", "developer", "user", "assistant"}
MESSAGE_FIELDS = {"role", "content"}
MESSAGE_NEUTRAL = {"name", "tool_calls", "tool_call_id", "function_call", "refusal", "audio", "annotations"}


@dataclass
class ChatRequest:
    model: str | None
    messages: list[dict[str, str]]          # [{"role", "content"}] with text content, roles as sent
    sampling: Sampling


def _message_text(message: dict[str, Any], i: int) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict):
                raise bad(f"messages[{i}].content[{j}]: expected a content part object",
                          param=f"messages[{i}].content[{j}]")
            kind = part.get("type")
            if kind != "text":
                raise bad(f"messages[{i}].content[{j}]: content parts of type {kind!r} are not supported (this "
                          f"model reads text only)", param=f"messages[{i}].content[{j}].type",
                          code="unsupported_content")
            if not isinstance(part.get("text"), str):
                raise bad(f"messages[{i}].content[{j}].text: expected a string",
                          param=f"messages[{i}].content[{j}].text")
            parts.append(part["text"])
        return "".join(parts)
    raise bad(f"messages[{i}].content: expected a string or a list of text parts", param=f"messages[{i}].content")


def parse_chat(body: dict[str, Any]) -> ChatRequest:
    _check_fields(body, CHAT_FIELDS)
    messages = body.get("messages")
    if messages is None:
        raise bad("messages: field required", param="messages")
    if not isinstance(messages, list) or not messages:
        raise bad("messages: expected a non-empty list of messages", param="messages")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad(f"messages[{i}]: expected an object with role and content", param=f"messages[{i}]")
        role = message.get("role")
        if role not in ROLES:
            what = " (tool calling is not implemented)" if role in {"tool", "function"} else ""
            raise bad(f"messages[{i}].role: {role!r} is not one of {sorted(ROLES)}{what}",
                      param=f"messages[{i}].role")
        for key, value in message.items():
            if key in MESSAGE_FIELDS:
                continue
            if key in MESSAGE_NEUTRAL and value in (None, [], ""):
                continue
            raise bad(f"messages[{i}].{key} is not supported by lima serve", param=f"messages[{i}].{key}",
                      code="unsupported_parameter")
        out.append({"role": role, "content": _message_text(message, i)})
    sampling = _sampling(body, "max_completion_tokens")
    logprobs = _bool(body, "logprobs", False)
    top = _int(body, "top_logprobs", None, lo=0, hi=MAX_TOP_LOGPROBS)
    if top is not None and not logprobs:
        raise bad("top_logprobs requires logprobs: true", param="top_logprobs")
    sampling.logprobs = (top or 0) if logprobs else None
    sampling.guided_choice = _guided_choice(body)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad("model: expected a string", param="model")
    return ChatRequest(model=model, messages=out, sampling=sampling)


def lima_turns(messages: list[dict[str, str]], *, allow_assistant_last: bool = False) -> list[dict[str, str]]:
    """Merge leading system/developer text into the first user turn; check strict user/assistant alternation."""
    system: list[str] = []
    i = 0
    while i < len(messages) and messages[i]["role"] in {"system", "developer"}:
        system.append(messages[i]["content"])
        i += 1
    turns = [dict(m) for m in messages[i:]]
    for j, message in enumerate(turns, start=i):
        if message["role"] in {"system", "developer"}:
            raise bad(f"messages[{j}]: a {message['role']} message must come before the first user message (this "
                      f"model's chat template has no system slot; leading system text is merged into the first "
                      f"user turn)", param=f"messages[{j}].role", code="invalid_role_order")
    if not turns:
        raise bad("messages: a conversation needs at least one user message", param="messages")
    expected = "user"
    for j, message in enumerate(turns, start=i):
        if message["role"] != expected:
            before = f"after {turns[j - i - 1]['role']!r}" if j > i else "as the first turn"
            raise bad(f"messages[{j}]: expected a {expected!r} message {before}: turns must alternate user, "
                      f"assistant, user, ... (the LIMA chat template has no role markers)",
                      param=f"messages[{j}].role", code="invalid_role_order")
        expected = "assistant" if expected == "user" else "user"
    if turns[-1]["role"] != "user" and not allow_assistant_last:
        raise bad(f"messages[{len(messages) - 1}]: the last message must be a user message (the reply is the "
                  f"assistant's turn)", param=f"messages[{len(messages) - 1}].role", code="invalid_role_order")
    if system:
        turns[0]["content"] = "\n\n".join([*system, turns[0]["content"]])
    return turns


# ---- completions --------------------------------------------------------------------------------------------

COMPLETION_FIELDS = SAMPLING_FIELDS | {"prompt", "logprobs", "echo", "best_of", "guided_choice"}
COMPLETIONS_DEFAULT_MAX_TOKENS = 16       # OpenAI's (and vLLM's) default for /v1/completions


@dataclass
class CompletionRequest:
    model: str | None
    prompts: list[str | list[int]]          # one text or one token-id list per prompt
    sampling: Sampling
    echo: bool = False


def parse_completion(body: dict[str, Any]) -> CompletionRequest:
    _check_fields(body, COMPLETION_FIELDS)
    echo = _bool(body, "echo", False)
    if echo and body.get("logprobs") is not None:
        raise bad("echo together with logprobs is not supported by lima serve (prompt logprobs are not "
                  "implemented)", param="echo", code="unsupported_parameter")
    prompt = body.get("prompt")
    if prompt is None:
        raise bad("prompt: field required", param="prompt")
    if isinstance(prompt, str):
        prompts: list[str | list[int]] = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = list(prompt)
    elif isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        prompts = [list(prompt)]
    elif isinstance(prompt, list) and prompt and all(
            isinstance(p, list) and p and all(isinstance(t, int) and not isinstance(t, bool) for t in p)
            for p in prompt):
        prompts = [list(p) for p in prompt]
    else:
        raise bad("prompt: expected a string, a list of strings, a list of token ids or a list of such lists",
                  param="prompt")
    if len(prompts) > MAX_N:
        raise bad(f"prompt: at most {MAX_N} prompts per request, got {len(prompts)}", param="prompt")
    sampling = _sampling(body)
    if sampling.max_tokens is None:
        sampling.max_tokens = COMPLETIONS_DEFAULT_MAX_TOKENS
    best_of = _int(body, "best_of", None, lo=1)
    if best_of is not None and best_of != sampling.n:
        raise bad(f"best_of is not supported by lima serve ({WHY['best_of']})", param="best_of",
                  code="unsupported_parameter")
    logprobs = _int(body, "logprobs", None, lo=0, hi=MAX_TOP_LOGPROBS)
    sampling.logprobs = logprobs
    sampling.guided_choice = _guided_choice(body)
    if len(prompts) * sampling.n > MAX_N:
        raise bad(f"n x prompts = {len(prompts) * sampling.n} exceeds {MAX_N} completions per request", param="n")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad("model: expected a string", param="model")
    return CompletionRequest(model=model, prompts=prompts, sampling=sampling, echo=echo)


# ---- context -----------------------------------------------------------------------------------------------

def fit_max_tokens(prompt_tokens: int, requested: int | None, default: int, context: int, cap: int,
                   what: str = "messages") -> int:
    """The max_tokens to generate with, or a 400 naming the numbers (never a silent cut of the prompt)."""
    if requested is not None and requested > cap:
        raise bad(f"max_tokens is too large: {requested}. This server caps max_tokens at {cap} "
                  f"(lima serve --max-tokens-cap).", param="max_tokens", code="max_tokens_exceeded")
    if requested is None:
        room = context - prompt_tokens
        if room < 1:
            raise bad(f"This model's maximum context length is {context} tokens. However, your {what} resulted "
                      f"in {prompt_tokens} tokens, leaving no room for a completion. Please reduce the length "
                      f"of the {what}.", param=what, code="context_length_exceeded")
        return min(default, cap, room)
    if prompt_tokens + requested > context:
        raise bad(f"This model's maximum context length is {context} tokens. However, you requested "
                  f"{prompt_tokens + requested} tokens ({prompt_tokens} in the {what}, {requested} in the "
                  f"completion). Please reduce the length of the {what} or completion.", param=what,
                  code="context_length_exceeded")
    return requested


# ---- response bodies ----------------------------------------------------------------------------------------

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
