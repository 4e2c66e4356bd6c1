"""The judge client against a hostile server (tests/hostile_server.py) and the `lima judge` CLI's failures.

Truncated bodies, invalid JSON in a 200, 429s that say how long to wait (milliseconds or an HTTP date) and
slow replies: the run completes with every verdict, each prompt is answered exactly once (no duplicate
request after a success), and a re-run is served from the cache.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from hostile_server import HostileServer
from openai_stub import OpenAIStub, openai_stub  # noqa: F401  (fixture)

from lima.config import load_profile
from lima.io import read_jsonl, write_jsonl
from lima.judge import judge_pairwise
from lima.judge.cli import main as judge_main
from lima.llm_client import EndpointConfig, LLMClient, LLMRequestError, retry_after


def _endpoint(base_url: str, model: str = "hostile", **kw: object) -> EndpointConfig:
    base = {"base_url": base_url, "model": model, "backoff_initial": 0.01, "backoff_max": 5.0, "timeout": 5.0,
            "max_retries": 4, "concurrency": 4}
    return EndpointConfig(**{**base, **kw})


def _rows(system: str, n: int) -> list[dict]:
    return [{"system": system, "prompt_id": f"p{i}", "prompt": f"Question {i}?", "response": f"{system} {i}"}
            for i in range(n)]


def test_every_fault_is_retried_and_no_prompt_is_answered_twice(tmp_path: Path) -> None:
    faults = {"m0": ["cut_connection"], "m1": ["truncated_json"], "m2": ["invalid_json", "no_choices"],
              "m3": ["text_plain"], "m4": [("429_ms", 120)], "m5": [("slow", 0.4)], "m6": [("503", None)],
              "m7": [("429_date", 1)]}
    server = HostileServer(reply=lambda prompt: f"answer to {prompt}")
    for prompt, plan in faults.items():
        server.plan(prompt, *plan)
    failing = {p: [f for f in plan if not (isinstance(f, tuple) and f[0] == "slow")] for p, plan in faults.items()}
    requests = [{"messages": [{"role": "user", "content": f"m{i}"}]} for i in range(10)]
    with server:
        client = LLMClient(_endpoint(server.base_url), cache_path=tmp_path / "cache.sqlite")
        start = time.perf_counter()
        results = client.chat_many(requests, desc=False)
        elapsed = time.perf_counter() - start
        assert [r.text for r in results] == [f"answer to m{i}" for i in range(10)]
        for i in range(10):
            prompt = f"m{i}"
            assert server.answered[prompt] == 1, prompt                     # never answered twice
            assert server.attempts[prompt] == 1 + len(failing.get(prompt, [])), prompt
        n_faults = sum(len(v) for v in failing.values())
        assert client.stats["requests"] == server.n_requests == 10 + n_faults
        assert client.stats["retries"] == n_faults and client.stats["malformed_replies"] >= 4
        assert elapsed < 20                             # retry-after-ms (120 ms) won over Retry-After: 30
        again = LLMClient(_endpoint(server.base_url), cache_path=tmp_path / "cache.sqlite")
        assert [r.text for r in again.chat_many(requests, desc=False)] == [r.text for r in results]
        assert again.stats["requests"] == 0 and server.n_requests == 10 + n_faults


def test_pairwise_judge_completes_through_a_hostile_server(tmp_path: Path) -> None:
    server = HostileServer(reply=lambda prompt: "Verdict: A")
    cfg = {"profile": "hostile", "judge": {"model": "hostile", "api_key_env": None, "cache": None}}
    rows_a, rows_b = _rows("lima", 6), _rows("base", 6)
    with server:
        # plan faults on the exact judge prompts: render them once through a recording pass
        client = LLMClient(_endpoint(server.base_url), cache_path=None)
        judge_pairwise(cfg, rows_a[:1], rows_b[:1], client=client, desc=False)
        first_prompts = list(server.attempts)
        for prompt, kinds in zip(first_prompts, (["truncated_json", ("429_ms", 50)], ["cut_connection"]), strict=True):
            server.plan(prompt, *kinds)
        before = dict(server.attempts)
        client = LLMClient(_endpoint(server.base_url), cache_path=tmp_path / "c.sqlite")
        rows = judge_pairwise(cfg, rows_a, rows_b, client=client, desc=False)
    assert len(rows) == 6 and all(r["verdict"] is not None for r in rows)       # every verdict
    assert {p: n for p, n in server.answered.items() if n != 1} == {p: 2 for p in first_prompts}   # 2 passes
    new = {p: server.attempts[p] - before.get(p, 0) for p in server.attempts}
    assert sum(new.values()) == 12 + 3                                          # 12 calls + 3 injected faults
    assert new[first_prompts[0]] == 3 and new[first_prompts[1]] == 2


def test_the_slot_is_free_while_a_request_sleeps_in_backoff() -> None:
    server = HostileServer(reply=lambda prompt: "ok")
    server.plan("first", ("429_ms", 600))
    with server:
        client = LLMClient(_endpoint(server.base_url, concurrency=1), cache_path=None)

        async def both() -> None:
            first = asyncio.create_task(client.achat([{"role": "user", "content": "first"}]))
            await asyncio.sleep(0.1)
            await client.achat([{"role": "user", "content": "second"}])
            await first

        asyncio.run(both())
    # with the slot held during the 600 ms backoff, "second" would only arrive after first's retry
    assert server.log == [("first", "429_ms"), ("second", "ok"), ("first", "ok")]


def test_retry_after_forms() -> None:
    assert retry_after({"retry-after-ms": "250", "retry-after": "30"}) == pytest.approx(0.25)
    assert retry_after({"retry-after": "2"}) == 2.0
    import email.utils

    soon = retry_after({"retry-after": email.utils.formatdate(time.time() + 3, usegmt=True)})
    assert soon is not None and 1.0 <= soon <= 3.5
    assert retry_after({"retry-after": email.utils.formatdate(time.time() - 60, usegmt=True)}) == 0.0
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


def test_http_date_retry_after_is_waited_for() -> None:
    server = HostileServer(reply=lambda prompt: "ok")
    server.plan("d", ("429_date", 2))
    with server:
        client = LLMClient(_endpoint(server.base_url, backoff_initial=0.0), cache_path=None)
        start = time.perf_counter()
        assert client.chat([{"role": "user", "content": "d"}]).text == "ok"
    assert time.perf_counter() - start >= 0.9             # HTTP dates have 1 s resolution: at least ~1 s


def test_a_malformed_reply_that_never_heals_fails_with_the_reason() -> None:
    server = HostileServer()
    server.plan("bad", *["truncated_json"] * 10)
    with server:
        client = LLMClient(_endpoint(server.base_url, max_retries=2), cache_path=None)
        with pytest.raises(LLMRequestError, match="retries exhausted after 3 attempt"):
            client.chat([{"role": "user", "content": "bad"}])
    assert server.attempts["bad"] == 3


# ---- the CLI ------------------------------------------------------------------------------------------------

def _judge_root(tmp_path: Path) -> Path:
    responses = tmp_path / "data" / "results" / "responses"
    for system in ("lima", "base"):
        write_jsonl(responses / f"{system}.jsonl", _rows(system, 3))
    return tmp_path


def _cli_args(root: Path, base_url: str, *extra: str) -> list[str]:
    return ["--protocol", "pairwise", "--a", "lima", "--b", "base", "--profile", "test",
            "--set", f"paths.root={root}", "--set", "judge.local_model=null", "--set", f"judge.base_url={base_url}",
            "--set", "judge.api_key_env=null", "--set", "judge.model=stub-model", "--set", "judge.logprobs=false",
            "--set", "judge.guided_choice=false", "--set", "judge.backoff_initial=0.01", *extra]


def test_cli_transport_error_is_one_line_and_says_rerun_resumes(openai_stub: OpenAIStub, tmp_path: Path,  # noqa: F811
                                                                capsys: pytest.CaptureFixture) -> None:
    root = _judge_root(tmp_path)
    openai_stub.default = "Verdict: A"
    openai_stub.fail_next(100, status=503)
    code = judge_main(_cli_args(root, openai_stub.base_url, "--set", "judge.max_retries=1"), prog="judge")
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]                 # (the lines before it are the progress bar)
    assert code == 1 and "Traceback" not in err and last.startswith("error: ")
    assert "6 of 6 judge requests failed" in last and "re-run the same command to resume" in last
    # the server comes back: the re-run completes
    openai_stub.reset()
    openai_stub.default = "Verdict: A"
    assert judge_main(_cli_args(root, openai_stub.base_url), prog="judge") == 0


def test_cli_unreachable_server_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _judge_root(tmp_path)
    code = judge_main(_cli_args(root, "http://127.0.0.1:9/v1", "--set", "judge.max_retries=0"), prog="judge")
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert code == 1 and "Traceback" not in err and last.startswith("error: ") and "APIConnectionError" in last


def test_cli_writes_parse_failures_and_retry_unparsed_asks_again(openai_stub: OpenAIStub, tmp_path: Path,  # noqa: F811
                                                                  capsys: pytest.CaptureFixture) -> None:
    root = _judge_root(tmp_path)
    openai_stub.script("Verdict: A", "I like both", "Verdict: B", "hmm", "Verdict: A", "Verdict: B")
    openai_stub.default = "Verdict: A"
    args = _cli_args(root, openai_stub.base_url, "--set", "judge.concurrency=1")
    assert judge_main(args, prog="judge") == 0
    report_path = root / "data" / "results" / "judgments" / "parse_failures.json"
    report = json.loads(report_path.read_text())["pairwise__lima__base.jsonl"]
    assert (report["calls"], report["unparsed_calls"], report["unparsed_items"]) == (6, 2, 2)
    assert "2 unparsed" in capsys.readouterr().out
    n = openai_stub.n_requests
    assert judge_main(args, prog="judge") == 0 and openai_stub.n_requests == n        # plain re-run: cache
    assert judge_main([*args, "--retry-unparsed"], prog="judge") == 0
    assert openai_stub.n_requests == n + 2                                            # only the two unparsed
    report = json.loads(report_path.read_text())["pairwise__lima__base.jsonl"]
    assert report["unparsed_calls"] == 0
    rows = read_jsonl(root / "data" / "results" / "judgments" / "pairwise__lima__base.jsonl")
    assert all(r["verdict"] is not None for r in rows)
    assert judge_main([*args, "--retry-unparsed"], prog="judge") == 0 and openai_stub.n_requests == n + 2


def test_every_documented_judge_field_can_be_set(tmp_path: Path) -> None:
    import dataclasses

    from lima.judge import JudgeConfig, judge_config

    values = {"temperature": 0.3, "seed": 5, "max_tokens": 64, "backoff_initial": 0.5, "price_prompt_per_1k": 0.03,
              "price_completion_per_1k": 0.06, "helpfulness_temperature": 0.9, "logprob_max_tokens": 2}
    jc = judge_config(load_profile("paper", {f"judge.{k}": v for k, v in values.items()}))
    assert {k: getattr(jc, k) for k in values} == values
    for f in dataclasses.fields(JudgeConfig):                 # every field is a known key, set in YAML or not
        load_profile("paper", {f"judge.{f.name}": getattr(jc, f.name)})
    from lima.config import ConfigError, parse_set_args

    with pytest.raises(ConfigError, match="expected a number"):                  # checked against the dataclass
        load_profile("paper", {"judge.temperature": "warm"})
    with pytest.raises(ConfigError, match="unknown key"):
        load_profile("paper", {"judge.temprature": 0.1})
    assert parse_set_args(["judge.cache={paths.results}/j.sqlite", "judge.seed=3"]) == {
        "judge.cache": "{paths.results}/j.sqlite", "judge.seed": 3}
    assert load_profile("paper", parse_set_args(["judge.cache={paths.results}/j.sqlite"]))["judge"]["cache"].endswith(
        "/j.sqlite")
