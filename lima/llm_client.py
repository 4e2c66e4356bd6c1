"""The one client for every OpenAI-compatible endpoint in the repo (remote providers, the judge, `lima serve`).

Paid APIs fail transiently (429 rate limits, 5xx, timeouts, a reply cut short) and cost money per call, so
this client
  * limits concurrency with an asyncio semaphore, and frees the slot while a request sleeps in backoff,
  * retries 429/5xx/timeouts/connection errors — and a 200 whose body is not a valid completion (truncated or
    invalid JSON, no choices) — itself, with exponential backoff and jitter, or after exactly the delay the
    server asks for (`retry-after-ms`, `Retry-After` in seconds or as an HTTP date); the SDK's own retries are
    switched off so the counts in `stats` are exact,
  * caches every successful answer in a persistent SQLite file (WAL mode) keyed on the sha256 of
    (the endpoint's identity, model, messages, parameters, cache_extra): a re-run, or a run restarted after
    a crash, repeats no call,
  * counts tokens and cost.

The endpoint's identity is `EndpointConfig.identity` when the caller knows it (the world's reference judge:
its rubric hash); else it is asked once per client, before the first cache lookup, from `GET /models/{model}`:
a server that reports a checkpoint fingerprint (`lima serve` sends the hash of the model directory as
`system_fingerprint`) is identified by it alone, so the same checkpoint served on a fresh port hits the
cache and a retrained one under the same name does not; any other server is identified by its base_url
and whatever model identity its card reports (vLLM's `root`, a `system_fingerprint`). Each cached answer also
keeps the `model` and `system_fingerprint` the server reported with it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lima.llm_cache import ResponseCache, cache_key, identity_from_card, normalize_base_url

__all__ = ["ChatResult", "EndpointConfig", "LLMClient", "LLMRequestError", "MalformedResponseError",
           "MissingAPIKeyError", "ResponseCache", "api_key_for", "cache_key", "has_api_key", "identity_from_card",
           "normalize_base_url", "one_line", "retry_after"]

LOCAL_DUMMY_KEY = "sk-local-no-key"


class MissingAPIKeyError(RuntimeError):
    """The endpoint names an environment variable for its key and that variable is not set."""


class LLMRequestError(RuntimeError):
    """A request that failed for good (non-retryable status, or retries exhausted)."""

    def __init__(self, message: str, failed: int = 1, total: int = 1) -> None:
        super().__init__(message)
        self.failed, self.total = failed, total


class MalformedResponseError(ValueError):
    """A 200 whose body is not a chat completion (truncated or invalid JSON, no choices): retried like a 5xx."""


@dataclass
class EndpointConfig:
    base_url: str
    model: str
    api_key_env: str | None = None        # None: a local endpoint that needs no key (a dummy one is sent)
    concurrency: int = 8
    max_retries: int = 6
    timeout: float = 120.0
    price_prompt_per_1k: float = 0.0
    price_completion_per_1k: float = 0.0
    backoff_initial: float = 1.0          # seconds before the first retry; doubles each retry (ours)
    backoff_max: float = 60.0
    identity: str | None = None           # what the caller knows the model behind the endpoint to be (a
    #                                       checkpoint or rubric hash): the cache keys on it, no card is asked


@dataclass
class ChatResult:
    text: str
    finish_reason: str | None
    top_logprobs: list[dict[str, float]] | None    # one {token: logprob} per generated position
    usage: dict[str, int] = field(default_factory=dict)
    cached: bool = False
    token_logprobs: list[tuple[str, float]] | None = None   # the chosen token and its logprob per position
    model: str | None = None                   # the model the server says answered (e.g. a dated snapshot)
    system_fingerprint: str | None = None      # the server's backend / checkpoint fingerprint, where it gives one


_RESULT_FIELDS = {f.name for f in fields(ChatResult)}


def api_key_for(endpoint: EndpointConfig) -> str:
    if endpoint.api_key_env is None:
        return LOCAL_DUMMY_KEY
    key = os.environ.get(endpoint.api_key_env)
    if not key:
        raise MissingAPIKeyError(
            f"environment variable {endpoint.api_key_env} is not set: it must hold the API key for model "
            f"{endpoint.model!r} at {endpoint.base_url} (export {endpoint.api_key_env}=...)")
    return key


def has_api_key(endpoint: EndpointConfig) -> bool:
    return endpoint.api_key_env is None or bool(os.environ.get(endpoint.api_key_env))


def retry_after(headers: Any) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, then `Retry-After` as seconds or an HTTP date."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            delay = float(value) / scale
        except ValueError:
            continue
        if math.isfinite(delay):
            return max(0.0, delay)
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is not None:
            return max(0.0, when.timestamp() - time.time())
    return None


def _retryable(err: BaseException) -> tuple[bool, float | None]:
    """(retry?, server-suggested delay) for an exception raised by the openai SDK or by parsing its reply."""
    import openai

    if isinstance(err, MalformedResponseError | json.JSONDecodeError | openai.APIResponseValidationError):
        return True, None
    if isinstance(err, openai.APITimeoutError | openai.APIConnectionError):
        return True, None
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        if status in (408, 409, 429) or status >= 500:
            return True, retry_after(getattr(err.response, "headers", None))
    return False, None


def one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LLMClient:
    """Chat completions against one endpoint, with concurrency, retries, cache and accounting.

    `refresh`, when given, is asked about every cache hit: if it returns True (e.g. "this cached judge reply
    did not parse"), the request is sent again and its new answer replaces the cached one.
    """

    def __init__(self, endpoint: EndpointConfig, cache_path: str | os.PathLike[str] | None = None,
                 refresh: Callable[[ChatResult], bool] | None = None) -> None:
        self.endpoint = endpoint
        self.api_key = api_key_for(endpoint)
        self.cache = ResponseCache(cache_path) if cache_path else None
        self.refresh = refresh
        self.identity: dict[str, Any] | None = None       # the endpoint's cache identity, asked once
        self.stats: dict[str, float] = {"requests": 0, "cache_hits": 0, "retries": 0, "prompt_tokens": 0,
                                        "completion_tokens": 0, "cost": 0.0, "probes": 0, "refreshed": 0,
                                        "malformed_replies": 0}
        self.reported: dict[str, int] = {}               # "model | system_fingerprint" of live answers → count
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._semaphore: asyncio.Semaphore | None = None
        self._identity_lock: asyncio.Lock | None = None
        self._stats_lock = threading.Lock()

    # The SDK's async client and the semaphore belong to one event loop; chat_many makes a new loop per
    # call, so they are (re)built lazily for whichever loop is running.
    def _bind_loop(self) -> tuple[Any, asyncio.Semaphore]:
        import openai

        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._client is None or self._semaphore is None:
            self._loop = loop
            self._client = openai.AsyncOpenAI(base_url=self.endpoint.base_url, api_key=self.api_key,
                                              max_retries=0, timeout=self.endpoint.timeout)
            self._semaphore = asyncio.Semaphore(max(1, self.endpoint.concurrency))
            self._identity_lock = asyncio.Lock()
        return self._client, self._semaphore

    def _count(self, **deltas: float) -> None:
        with self._stats_lock:
            for key, value in deltas.items():
                self.stats[key] += value

    def _delay(self, attempt: int, suggested: float | None) -> float:
        if suggested is not None:                        # the server said how long: wait exactly that
            return min(suggested, self.endpoint.backoff_max)
        delay = min(self.endpoint.backoff_max, self.endpoint.backoff_initial * 2**attempt)
        return delay * random.uniform(0.5, 1.5)          # jitter: clients do not retry in step

    async def resolve_identity(self) -> dict[str, Any]:
        """The endpoint's cache identity (see the module docstring); asked once per client."""
        if self.identity is not None:
            return self.identity
        if self.endpoint.identity:
            self.identity = {"identity": str(self.endpoint.identity)}
            return self.identity
        client, semaphore = self._bind_loop()
        assert self._identity_lock is not None
        async with self._identity_lock:
            if self.identity is None:
                card = await self._probe(client, semaphore)
                self.identity = identity_from_card(self.endpoint.base_url, card)
        return self.identity

    async def _probe(self, client: Any, semaphore: asyncio.Semaphore) -> dict[str, Any] | None:
        """`GET /models/{model}`; None when the server has no such route or no card for the model."""
        attempt = 0
        while True:
            async with semaphore:
                self._count(probes=1)
                try:
                    card = await client.models.retrieve(self.endpoint.model)
                    return card.model_dump() if hasattr(card, "model_dump") else dict(card)
                except Exception as err:  # noqa: BLE001 - classified below
                    failure = err
            retry, suggested = _retryable(failure)
            if not retry or attempt >= self.endpoint.max_retries:
                return None
            await asyncio.sleep(self._delay(attempt, suggested))
            attempt += 1

    async def achat(self, messages: Sequence[dict[str, Any]], *, temperature: float = 0.0, top_p: float = 1.0,
                    max_tokens: int = 512, seed: int | None = None, logprobs: bool = False,
                    top_logprobs: int | None = None, stop: str | list[str] | None = None,
                    extra_body: dict[str, Any] | None = None, cache_extra: Any = None) -> ChatResult:
        params: dict[str, Any] = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
        if seed is not None:
            params["seed"] = seed
        if logprobs or top_logprobs:
            params["logprobs"] = True
            if top_logprobs:
                params["top_logprobs"] = int(top_logprobs)
        if stop:
            params["stop"] = stop
        if extra_body:                                   # server extensions, e.g. vLLM's guided_choice
            params["extra_body"] = dict(extra_body)
        messages = [dict(m) for m in messages]
        client, semaphore = self._bind_loop()
        key = None
        if self.cache is not None:
            key = cache_key(self.endpoint.model, messages, params, cache_extra, await self.resolve_identity())
            if (hit := self.cache.get(key)) is not None:
                result = _from_cache(hit)
                if self.refresh is None or not self.refresh(result):
                    self._count(cache_hits=1)
                    return result
                self._count(refreshed=1)
        result = await self._with_retries(client, semaphore, messages, params)
        usage = result.usage
        self._count(prompt_tokens=usage.get("prompt_tokens", 0),
                    completion_tokens=usage.get("completion_tokens", 0),
                    cost=usage.get("prompt_tokens", 0) / 1000 * self.endpoint.price_prompt_per_1k
                    + usage.get("completion_tokens", 0) / 1000 * self.endpoint.price_completion_per_1k)
        with self._stats_lock:
            tag = f"{result.model} | {result.system_fingerprint}"
            self.reported[tag] = self.reported.get(tag, 0) + 1
        if self.cache is not None and key is not None:
            await asyncio.to_thread(self.cache.put, key, self.endpoint.model, asdict(result))
        return result

    async def _with_retries(self, client: Any, semaphore: asyncio.Semaphore, messages: list[dict[str, Any]],
                            params: dict[str, Any]) -> ChatResult:
        attempt = 0
        while True:
            async with semaphore:                        # the slot is held for the request only, not the backoff
                self._count(requests=1)
                try:
                    completion = await client.chat.completions.create(model=self.endpoint.model,
                                                                      messages=messages, **params)
                    return _to_result(completion)
                except Exception as err:  # noqa: BLE001 - classified below, re-raised when not retryable
                    failure = err
            if isinstance(failure, MalformedResponseError | json.JSONDecodeError):
                self._count(malformed_replies=1)
            retry, suggested = _retryable(failure)
            if not retry or attempt >= self.endpoint.max_retries:
                why = "retries exhausted" if retry else "not retryable"
                raise LLMRequestError(f"{self.endpoint.model} at {self.endpoint.base_url}: {why} after "
                                      f"{attempt + 1} attempt(s): {type(failure).__name__}: "
                                      f"{one_line(str(failure))}") from failure
            delay = self._delay(attempt, suggested)
            attempt += 1
            self._count(retries=1)
            await asyncio.sleep(delay)

    def chat_many(self, requests: list[dict[str, Any]], desc: str | None = None,
                  return_exceptions: bool = False) -> list[Any]:
        """Run many `achat(**request)` concurrently (each request is a dict with `messages` + keywords).

        Every success is cached before any error is raised, so a re-run only repeats the failures. With
        `return_exceptions=True` a failed request's slot holds its exception instead.
        """
        from tqdm import tqdm

        async def run_all() -> list[Any]:
            bar = tqdm(total=len(requests), desc=desc or f"{self.endpoint.model}", disable=desc is False)

            async def one(req: dict[str, Any]) -> Any:
                try:
                    return await self.achat(**req)
                finally:
                    bar.update(1)

            try:
                return await asyncio.gather(*(one(r) for r in requests), return_exceptions=True)
            finally:
                bar.close()
                if self._client is not None:
                    await self._client.close()
                self._client = None

        results = _run_coroutine(run_all())
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors and not return_exceptions:
            raise LLMRequestError(f"{len(errors)} of {len(requests)} requests failed; first: {errors[0]}",
                                  failed=len(errors), total=len(requests)) from errors[0]
        return results

    def chat(self, messages: Sequence[dict[str, Any]], **kwargs: Any) -> ChatResult:
        return self.chat_many([{"messages": messages, **kwargs}], desc=False)[0]

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


def _from_cache(hit: dict[str, Any]) -> ChatResult:
    hit = {k: v for k, v in hit.items() if k in _RESULT_FIELDS}
    if hit.get("token_logprobs") is not None:
        hit["token_logprobs"] = [tuple(pair) for pair in hit["token_logprobs"]]
    return ChatResult(**{**hit, "cached": True})


def _run_coroutine(coro: Any) -> Any:
    """asyncio.run, or — inside Jupyter, where a loop is already running — the same in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = err

    thread = threading.Thread(target=target, name="llm-client")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _to_result(completion: Any) -> ChatResult:
    """The SDK's completion → ChatResult; anything that is not a chat completion is a MalformedResponseError."""
    choices = getattr(completion, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise MalformedResponseError(f"the reply is not a chat completion (no choices): "
                                     f"{one_line(repr(completion), 200)}")
    choice = choices[0]
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None) if message is not None else None
    if message is None or (content is not None and not isinstance(content, str)):
        raise MalformedResponseError(f"the reply's first choice has no message: {one_line(repr(choice), 200)}")
    top: list[dict[str, float]] | None = None
    chosen: list[tuple[str, float]] | None = None
    try:
        positions = getattr(choice.logprobs, "content", None) if choice.logprobs is not None else None
        if positions:
            chosen = [(pos.token, float(pos.logprob)) for pos in positions]
            top = [({t.token: float(t.logprob) for t in pos.top_logprobs} if pos.top_logprobs
                    else {pos.token: float(pos.logprob)}) for pos in positions]
        usage = {}
        if getattr(completion, "usage", None) is not None:
            usage = {"prompt_tokens": int(completion.usage.prompt_tokens or 0),
                     "completion_tokens": int(completion.usage.completion_tokens or 0)}
    except (AttributeError, TypeError, ValueError) as err:
        raise MalformedResponseError(f"the reply's logprobs or usage do not parse: {err}") from err
    model = getattr(completion, "model", None)
    fingerprint = getattr(completion, "system_fingerprint", None)
    return ChatResult(text=content or "", finish_reason=getattr(choice, "finish_reason", None), top_logprobs=top,
                      usage=usage, cached=False, token_logprobs=chosen,
                      model=model if isinstance(model, str) else None,
                      system_fingerprint=fingerprint if isinstance(fingerprint, str) else None)
