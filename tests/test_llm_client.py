"""llm_client against a real OpenAI-compatible server on loopback (tests/openai_stub.py)."""

from __future__ import annotations

import asyncio

import pytest
from openai_stub import OpenAIStub, openai_stub  # noqa: F401  (fixture)

from lima.llm_client import EndpointConfig, LLMClient, LLMRequestError, MissingAPIKeyError

MSG = [{"role": "user", "content": "Say hello"}]


def _endpoint(stub: OpenAIStub, **kw: object) -> EndpointConfig:
    base = {"base_url": stub.base_url, "model": "stub-model", "backoff_initial": 0.01, "backoff_max": 0.05}
    return EndpointConfig(**{**base, **kw})


def test_chat_text_usage_and_logprobs(openai_stub: OpenAIStub) -> None:  # noqa: F811
    openai_stub.script("hello there", {"content": "A", "logprobs": [{"A": -0.25, "B": -1.5, "tie": -3.0}]})
    client = LLMClient(_endpoint(openai_stub, price_prompt_per_1k=1.0, price_completion_per_1k=2.0))
    first = client.chat(MSG, max_tokens=8)
    assert (first.text, first.finish_reason, first.top_logprobs, first.cached) == ("hello there", "stop", None, False)
    assert first.usage == {"prompt_tokens": 2, "completion_tokens": 2}
    second = client.chat(MSG, logprobs=True, top_logprobs=2)
    assert second.top_logprobs == [{"A": -0.25, "B": -1.5}]
    assert second.token_logprobs == [("A", -0.25)]
    assert openai_stub.requests[1]["top_logprobs"] == 2 and openai_stub.requests[1]["logprobs"] is True
    assert client.stats["prompt_tokens"] == 4 and client.stats["completion_tokens"] == 3
    assert client.stats["cost"] == pytest.approx(4 / 1000 * 1.0 + 3 / 1000 * 2.0)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_transient_statuses_with_exact_counts(openai_stub: OpenAIStub, status: int) -> None:  # noqa: F811
    openai_stub.fail_next(3, status=status).script("finally")
    client = LLMClient(_endpoint(openai_stub))
    assert client.chat(MSG).text == "finally"
    assert openai_stub.n_requests == 4
    assert (client.stats["requests"], client.stats["retries"]) == (4, 3)


def test_gives_up_after_max_retries(openai_stub: OpenAIStub) -> None:  # noqa: F811
    openai_stub.fail_next(10, status=429)
    client = LLMClient(_endpoint(openai_stub, max_retries=2))
    with pytest.raises(LLMRequestError, match="retries exhausted after 3 attempt"):
        client.chat(MSG)
    assert openai_stub.n_requests == 3


def test_bad_request_is_not_retried(openai_stub: OpenAIStub) -> None:  # noqa: F811
    openai_stub.fail_next(1, status=400)
    client = LLMClient(_endpoint(openai_stub))
    with pytest.raises(LLMRequestError, match="not retryable"):
        client.chat(MSG)
    assert openai_stub.n_requests == 1


def test_timeout_is_retried(openai_stub: OpenAIStub) -> None:  # noqa: F811
    openai_stub.slow_next(1, seconds=1.5).script("late", "on time")
    client = LLMClient(_endpoint(openai_stub, timeout=0.4))
    result = client.chat(MSG)
    assert openai_stub.n_requests == 2 and client.stats["retries"] == 1
    assert result.text in {"late", "on time"}   # the abandoned slow request may still consume a script item


def test_cache_rerun_makes_no_requests(openai_stub: OpenAIStub, tmp_path) -> None:  # noqa: F811
    openai_stub.default = lambda body: "echo: " + body["messages"][-1]["content"]
    requests = [{"messages": [{"role": "user", "content": f"q{i}"}], "seed": 1} for i in range(5)]
    cache = tmp_path / "cache.sqlite"
    first = LLMClient(_endpoint(openai_stub, concurrency=2), cache_path=cache).chat_many(requests, desc="first")
    assert [r.text for r in first] == [f"echo: q{i}" for i in range(5)] and openai_stub.n_requests == 5
    again = LLMClient(_endpoint(openai_stub), cache_path=cache)             # a fresh process, same file
    second = again.chat_many(requests, desc="again")
    assert openai_stub.n_requests == 5 and again.stats["cache_hits"] == 5 and again.stats["requests"] == 0
    assert [r.text for r in second] == [r.text for r in first] and all(r.cached for r in second)
    again.chat_many([{**requests[0], "cache_extra": {"sample": 1}}], desc=False)   # a different key
    assert openai_stub.n_requests == 6


def test_failures_keep_successes_cached(openai_stub: OpenAIStub, tmp_path) -> None:  # noqa: F811
    openai_stub.script("ok-0").fail_next(1, status=401)
    client = LLMClient(_endpoint(openai_stub, concurrency=1), cache_path=tmp_path / "c.sqlite")
    out = client.chat_many([{"messages": MSG}, {"messages": MSG, "seed": 2}], return_exceptions=True)
    assert sum(isinstance(r, LLMRequestError) for r in out) == 1 and client.cache is not None
    assert len(client.cache) == 1


def test_concurrency_limit(openai_stub: OpenAIStub) -> None:  # noqa: F811
    openai_stub.default = {"content": "slow", "delay": 0.2}
    client = LLMClient(_endpoint(openai_stub, concurrency=2))
    reqs = [{"messages": [{"role": "user", "content": str(i)}]} for i in range(4)]
    import time

    start = time.perf_counter()
    client.chat_many(reqs, desc=False)
    assert time.perf_counter() - start >= 0.4     # 4 requests, 2 at a time, 0.2 s each


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIMA_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="LIMA_TEST_NO_SUCH_KEY"):
        LLMClient(EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m", api_key_env="LIMA_TEST_NO_SUCH_KEY"))


def test_key_is_sent_and_achat_in_own_loop(openai_stub: OpenAIStub, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("LIMA_TEST_KEY", "sk-test-123")
    client = LLMClient(_endpoint(openai_stub, api_key_env="LIMA_TEST_KEY"))
    assert client.api_key == "sk-test-123"
    result = asyncio.run(client.achat(MSG, temperature=0.7, top_p=0.9, stop=["\n"]))
    assert result.text == "stub reply"
    body = openai_stub.requests[0]
    assert (body["temperature"], body["top_p"], body["stop"]) == (0.7, 0.9, ["\n"])


# ---- cache identity: the endpoint and the model behind it are part of the key ------------------------------

def test_a_second_server_under_the_same_model_name_is_asked_again(openai_stub: OpenAIStub, tmp_path) -> None:  # noqa: F811
    cache = tmp_path / "cache.sqlite"
    openai_stub.default = "from the first server"
    first = LLMClient(_endpoint(openai_stub), cache_path=cache).chat(MSG, seed=1)
    assert first.text == "from the first server" and openai_stub.n_requests == 1
    with OpenAIStub(default="from the second server") as other:                   # another port, same name
        second = LLMClient(_endpoint(other), cache_path=cache).chat(MSG, seed=1)
        assert other.n_requests == 1 and not second.cached and second.text == "from the second server"
    again = LLMClient(_endpoint(openai_stub), cache_path=cache)
    assert again.chat(MSG, seed=1).cached and openai_stub.n_requests == 1        # the first one's key still hits


def test_a_reported_model_identity_change_is_asked_again(openai_stub: OpenAIStub, tmp_path) -> None:  # noqa: F811
    cache = tmp_path / "cache.sqlite"
    openai_stub.root, openai_stub.fingerprint = "/models/judge-v1", "fp_v1"
    client = LLMClient(_endpoint(openai_stub), cache_path=cache)
    result = client.chat(MSG)
    assert client.identity == {"base_url": openai_stub.base_url, "root": "/models/judge-v1",
                               "system_fingerprint": "fp_v1"}
    assert (result.model, result.system_fingerprint) == ("stub-model", "fp_v1")      # kept with the answer
    assert LLMClient(_endpoint(openai_stub), cache_path=cache).chat(MSG).cached
    openai_stub.root = "/models/judge-v2"                                             # same URL, new weights
    assert not LLMClient(_endpoint(openai_stub), cache_path=cache).chat(MSG).cached
    assert openai_stub.n_requests == 2


def test_identity_from_card() -> None:
    from lima.llm_client import identity_from_card, normalize_base_url

    assert normalize_base_url("HTTPS://API.OpenAI.com:443/v1/") == "https://api.openai.com/v1"
    assert identity_from_card("http://127.0.0.1:5000/v1", {"owned_by": "lima", "checkpoint_sha256": "abc"}) == {
        "checkpoint": "abc"}                                       # lima serve: the port does not matter
    assert identity_from_card("https://api.openai.com/v1", {"id": "gpt-4", "owned_by": "openai"}) == {
        "base_url": "https://api.openai.com/v1"}
    assert identity_from_card("http://h:8000/v1/", None) == {"base_url": "http://h:8000/v1"}


def test_no_cache_no_probe_and_probe_once(openai_stub: OpenAIStub, tmp_path) -> None:  # noqa: F811
    LLMClient(_endpoint(openai_stub)).chat_many([{"messages": MSG}, {"messages": MSG, "seed": 3}], desc=False)
    assert openai_stub.probes == 0
    client = LLMClient(_endpoint(openai_stub, concurrency=4), cache_path=tmp_path / "c.sqlite")
    client.chat_many([{"messages": [{"role": "user", "content": str(i)}]} for i in range(8)], desc=False)
    assert openai_stub.probes == 1 and client.stats["probes"] == 1


def test_an_identity_the_caller_knows_is_used_without_asking(openai_stub: OpenAIStub, tmp_path) -> None:  # noqa: F811
    cache = tmp_path / "cache.sqlite"
    client = LLMClient(_endpoint(openai_stub, identity="rubrics-v1+abc"), cache_path=cache)
    client.chat(MSG)
    assert client.identity == {"identity": "rubrics-v1+abc"} and openai_stub.probes == 0
    with OpenAIStub() as other:                     # another port, same identity: the same judge
        assert LLMClient(_endpoint(other, identity="rubrics-v1+abc"), cache_path=cache).chat(MSG).cached
        assert not LLMClient(_endpoint(other, identity="rubrics-v2+def"), cache_path=cache).chat(MSG).cached
