"""The building blocks every `lima serve` request parser shares: the OpenAI error (`APIError`, `bad`),
the JSON body, the limits, the tables of ignored and unsupported fields, the typed field checks, and
`Sampling`, the parameters common to chat and completions.

Kept apart from protocol.py, which holds the per-endpoint parsers (chat, completions, roles, context) and the
rules they enforce (its module docstring); pure Python, no torch.
"""

from __future__ import annotations

import json
import math
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
