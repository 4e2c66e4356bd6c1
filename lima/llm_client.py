"""The one client for every OpenAI-compatible endpoint in the repo (remote providers, the judge, `lima serve`).

Paid APIs fail transiently (429 rate limits, 5xx, timeouts) and cost money per call, so this client
  * limits concurrency with an asyncio semaphore,
  * retries 429/5xx/timeouts/connection errors itself with exponential backoff and jitter (the SDK's own
    retries are switched off so the counts in `stats` are exact),
  * caches every successful answer in a persistent SQLite file (WAL mode) keyed on the sha256 of
    (model, messages, parameters, cache_extra): a re-run, or a run restarted after a crash, repeats no call,
  * counts tokens and cost.
The cache key leaves out `base_url` on purpose: a local server started on a fresh port is the same model.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LOCAL_DUMMY_KEY = "sk-local-no-key"


class MissingAPIKeyError(RuntimeError):
    """The endpoint names an environment variable for its key and that variable is not set."""


class LLMRequestError(RuntimeError):
    """A request that failed for good (non-retryable status, or retries exhausted)."""


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


@dataclass
class ChatResult:
    text: str
    finish_reason: str | None
    top_logprobs: list[dict[str, float]] | None    # one {token: logprob} per generated position
    usage: dict[str, int] = field(default_factory=dict)
    cached: bool = False
    token_logprobs: list[tuple[str, float]] | None = None   # the chosen token and its logprob per position


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


def cache_key(model: str, messages: Sequence[dict[str, Any]], params: dict[str, Any], cache_extra: Any = None) -> str:
    payload = json.dumps({"model": model, "messages": list(messages), "params": params, "extra": cache_extra},
                         sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """A persistent key → JSON store; WAL mode so several processes (notebook + CLI) can share one file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (only an OS crash can lose the last commits), and a
        # full fsync per answer would serialise a concurrent judge run on the disk.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, "
                           "response TEXT NOT NULL, created REAL NOT NULL)")
        self._conn.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, response: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                               (key, model, json.dumps(response, ensure_ascii=False), time.time()))
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _retryable(err: BaseException) -> tuple[bool, float | None]:
    """(retry?, server-suggested delay) for an exception raised by the openai SDK."""
    import openai

    if isinstance(err, openai.APITimeoutError | openai.APIConnectionError):
        return True, None
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        if status in (408, 409, 429) or status >= 500:
            retry_after = None
            with contextlib.suppress(TypeError, ValueError):
                retry_after = float(err.response.headers.get("retry-after"))
            return True, retry_after
    return False, None


class LLMClient:
    """Chat completions against one endpoint, with concurrency, retries, cache and accounting."""

    def __init__(self, endpoint: EndpointConfig, cache_path: str | os.PathLike[str] | None = None) -> None:
        self.endpoint = endpoint
        self.api_key = api_key_for(endpoint)
        self.cache = ResponseCache(cache_path) if cache_path else None
        self.stats: dict[str, float] = {"requests": 0, "cache_hits": 0, "retries": 0, "prompt_tokens": 0,
                                        "completion_tokens": 0, "cost": 0.0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._semaphore: asyncio.Semaphore | None = None
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
        return self._client, self._semaphore

    def _count(self, **deltas: float) -> None:
        with self._stats_lock:
            for key, value in deltas.items():
                self.stats[key] += value

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
        key = cache_key(self.endpoint.model, messages, params, cache_extra)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self._count(cache_hits=1)
            if hit.get("token_logprobs") is not None:
                hit["token_logprobs"] = [tuple(pair) for pair in hit["token_logprobs"]]
            return ChatResult(**{**hit, "cached": True})
        client, semaphore = self._bind_loop()
        async with semaphore:
            completion = await self._with_retries(client, messages, params)
        result = _to_result(completion)
        usage = result.usage
        self._count(prompt_tokens=usage.get("prompt_tokens", 0),
                    completion_tokens=usage.get("completion_tokens", 0),
                    cost=usage.get("prompt_tokens", 0) / 1000 * self.endpoint.price_prompt_per_1k
                    + usage.get("completion_tokens", 0) / 1000 * self.endpoint.price_completion_per_1k)
        if self.cache is not None:
            await asyncio.to_thread(self.cache.put, key, self.endpoint.model, asdict(result))
        return result

    async def _with_retries(self, client: Any, messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
        attempt = 0
        while True:
            self._count(requests=1)
            try:
                return await client.chat.completions.create(model=self.endpoint.model, messages=messages,
                                                            **params)
            except Exception as err:  # noqa: BLE001 - classified below, re-raised when not retryable
                retry, suggested = _retryable(err)
                if not retry or attempt >= self.endpoint.max_retries:
                    why = "retries exhausted" if retry else "not retryable"
                    raise LLMRequestError(f"{self.endpoint.model} at {self.endpoint.base_url}: {why} after "
                                          f"{attempt + 1} attempt(s): {type(err).__name__}: {err}") from err
                delay = min(self.endpoint.backoff_max, self.endpoint.backoff_initial * 2**attempt)
                delay *= random.uniform(0.5, 1.5)                      # jitter: clients do not retry in step
                if suggested is not None:
                    delay = max(delay, min(suggested, self.endpoint.backoff_max))
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
            raise LLMRequestError(f"{len(errors)} of {len(requests)} requests failed; first: {errors[0]}") \
                from errors[0]
        return results

    def chat(self, messages: Sequence[dict[str, Any]], **kwargs: Any) -> ChatResult:
        return self.chat_many([{"messages": messages, **kwargs}], desc=False)[0]

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


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
    choice = completion.choices[0]
    top: list[dict[str, float]] | None = None
    chosen: list[tuple[str, float]] | None = None
    content = getattr(choice.logprobs, "content", None) if choice.logprobs is not None else None
    if content:
        chosen = [(pos.token, float(pos.logprob)) for pos in content]
        top = [({t.token: float(t.logprob) for t in pos.top_logprobs} if pos.top_logprobs
                else {pos.token: float(pos.logprob)}) for pos in content]
    usage = {}
    if completion.usage is not None:
        usage = {"prompt_tokens": int(completion.usage.prompt_tokens or 0),
                 "completion_tokens": int(completion.usage.completion_tokens or 0)}
    return ChatResult(text=choice.message.content or "", finish_reason=choice.finish_reason, top_logprobs=top,
                      usage=usage, cached=False, token_logprobs=chosen)
