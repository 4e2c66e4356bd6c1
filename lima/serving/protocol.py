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

from dataclasses import dataclass
from typing import Any

# The shared field checks and the response bodies live in fields.py and responses.py; every name is
# re-exported here, so `from lima.serving.protocol import ...` keeps working.
from lima.serving.fields import (
    IGNORED,
    MAX_N,
    MAX_STOP,
    MAX_TOP_LOGPROBS,
    NEUTRAL,
    SAMPLING_FIELDS,
    SEED_MAX,
    SEED_MIN,
    WHY,
    APIError,
    Sampling,
    _bool,
    _check_fields,
    _guided_choice,
    _int,
    _sampling,
    bad,
    parse_json_body,
)
from lima.serving.responses import (
    chat_body,
    chat_logprobs,
    completion_body,
    completion_logprobs,
    new_id,
    now,
    sse,
    usage,
)

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


__all__ = [
    "CHAT_FIELDS", "COMPLETIONS_DEFAULT_MAX_TOKENS", "COMPLETION_FIELDS", "IGNORED", "MAX_N", "MAX_STOP",
    "MAX_TOP_LOGPROBS", "MESSAGE_FIELDS", "MESSAGE_NEUTRAL", "NEUTRAL", "ROLES", "SAMPLING_FIELDS",
    "SEED_MAX", "SEED_MIN", "WHY", "APIError", "ChatRequest", "CompletionRequest", "Sampling", "bad",
    "chat_body", "chat_logprobs", "completion_body", "completion_logprobs", "fit_max_tokens", "lima_turns",
    "new_id", "now", "parse_chat", "parse_completion", "parse_json_body", "sse", "usage",
]
