"""Judge protocols over real HTTP (tests/openai_stub.py on loopback): order swapping, cache, retries, modes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from openai_stub import OpenAIStub, openai_stub  # noqa: F401  (fixture)

from lima.judge import judge_pairwise, rate_absolute
from lima.judge.protocols import grade_helpfulness
from lima.llm_client import EndpointConfig, LLMClient


def _cfg(tmp_path: Path, **judge: Any) -> dict[str, Any]:
    base = {"model": "stub-model", "api_key_env": None, "cache": str(tmp_path / "cache.sqlite"),
            "backoff_initial": 0.01, "timeout": 5.0}
    return {"profile": "t", "judge": {**base, **judge}}


def _endpoint(stub: OpenAIStub, **kw: Any) -> EndpointConfig:
    return EndpointConfig(**{"base_url": stub.base_url, "model": "stub-model", "backoff_initial": 0.01,
                             "backoff_max": 0.05, **kw})


def _rows(system: str, texts: list[str]) -> list[dict[str, Any]]:
    return [{"system": system, "prompt_id": f"p{i}", "prompt": f"question {i}?", "response": t}
            for i, t in enumerate(texts)]


LIMA = _rows("lima", ["GOOD answer 0", "plain answer 1", "GOOD answer 2", "plain 3"])
BASE = _rows("alpaca", ["plain answer 0", "GOOD answer 1", "GOOD answer 2", "plain 3"])


def _prefers_good(body: dict[str, Any]) -> str:
    """A position-consistent judge: prefers the response containing GOOD, else says neither."""
    text = body["messages"][0]["content"]
    a = re.search(r"\[Response A\]\n(.*?)\n\[End of response A\]", text, re.S).group(1)
    b = re.search(r"\[Response B\]\n(.*?)\n\[End of response B\]", text, re.S).group(1)
    if ("GOOD" in a) == ("GOOD" in b):
        return "Both similar.\nVerdict: neither"
    return "Verdict: A" if "GOOD" in a else "Verdict: B"


def test_always_a_judge_flips_every_pair_into_a_tie(openai_stub: OpenAIStub, tmp_path: Path) -> None:  # noqa: F811
    openai_stub.default = "Response A is better.\nVerdict: A"
    rows = judge_pairwise(_cfg(tmp_path), LIMA, BASE, endpoint=_endpoint(openai_stub))
    assert openai_stub.n_requests == 8                                  # 4 prompts x 2 orders
    assert [r["verdict"] for r in rows] == ["tie"] * 4
    assert all(r["flipped"] for r in rows)                               # flip rate 100%
    assert {o["order"] for r in rows for o in r["orders"]} == {"ab", "ba"}
    assert rows[0]["orders"][0]["winner"] == "lima" and rows[0]["orders"][1]["winner"] == "alpaca"


def test_consistent_judge_and_order_in_prompt(openai_stub: OpenAIStub, tmp_path: Path) -> None:  # noqa: F811
    openai_stub.default = _prefers_good
    rows = judge_pairwise(_cfg(tmp_path), LIMA, BASE, endpoint=_endpoint(openai_stub))
    assert [r["verdict"] for r in rows] == ["a", "b", "tie", "tie"]
    assert [r["flipped"] for r in rows] == [False] * 4
    # the (B,A) request really shows the baseline first
    contents = [req["messages"][0]["content"] for req in openai_stub.requests]
    assert sum("[Response A]\nplain answer 0" in c for c in contents) == 1


def test_rerun_is_served_from_the_cache(openai_stub: OpenAIStub, tmp_path: Path) -> None:  # noqa: F811
    openai_stub.default = _prefers_good
    cfg = _cfg(tmp_path)
    first = judge_pairwise(cfg, LIMA, BASE, endpoint=_endpoint(openai_stub))
    n = openai_stub.n_requests
    client = LLMClient(_endpoint(openai_stub), cache_path=tmp_path / "cache.sqlite")
    second = judge_pairwise(cfg, LIMA, BASE, client=client)
    assert openai_stub.n_requests == n and client.stats["requests"] == 0 and client.stats["cache_hits"] == 8
    assert [r["verdict"] for r in second] == [r["verdict"] for r in first]
    assert all(o["cached"] for r in second for o in r["orders"])
    # a different template mode is a different cache key: it must ask again
    judge_pairwise(_cfg(tmp_path, logprobs=True), LIMA[:1], BASE[:1], endpoint=_endpoint(openai_stub))
    assert openai_stub.n_requests == n + 2


def test_retries_429_500_and_timeouts(openai_stub: OpenAIStub, tmp_path: Path) -> None:  # noqa: F811
    openai_stub.default = _prefers_good
    openai_stub.fail_next(2, status=429).fail_next(1, status=500).slow_next(1, seconds=1.5)
    client = LLMClient(_endpoint(openai_stub, timeout=0.5, concurrency=1), cache_path=None)
    rows = judge_pairwise(_cfg(tmp_path), LIMA[:2], BASE[:2], client=client)
    assert [r["verdict"] for r in rows] == ["a", "b"]
    assert client.stats["retries"] == 4
    assert openai_stub.n_requests == 4 + 4


def test_unparseable_verdicts_are_counted_not_dropped(openai_stub: OpenAIStub, tmp_path: Path) -> None:  # noqa: F811
    openai_stub.script("Verdict: A", "I like both of them")
    openai_stub.default = "Verdict: B"
    client = LLMClient(_endpoint(openai_stub, concurrency=1))
    rows = judge_pairwise(_cfg(tmp_path), LIMA[:2], BASE[:2], client=client)
    assert len(rows) == 2
    assert rows[0]["verdict"] is None and rows[0]["n_unparsed"] == 1 and rows[0]["flipped"] is None
    assert rows[0]["orders"][1]["error"] and rows[0]["orders"][1]["raw"] == "I like both of them"
    assert rows[1]["verdict"] == "tie" and rows[1]["flipped"] is True


def test_logprob_mode_reads_top_logprobs(openai_stub: OpenAIStub, tmp_path: Path) -> None:  # noqa: F811
    openai_stub.default = {"content": "B", "logprobs": [{"B": -0.9, " A": -0.6, "A": -2.0, "zz": -0.1}]}
    rows = judge_pairwise(_cfg(tmp_path, logprobs=True, top_logprobs=5), LIMA[:1], BASE[:1],
                          endpoint=_endpoint(openai_stub))
    body = openai_stub.requests[0]
    assert body["logprobs"] is True and body["top_logprobs"] == 5 and body["max_tokens"] == 3
    assert [o["label"] for o in rows[0]["orders"]] == ["A", "A"]   # A's mass (.55+.14) beats B's (.41)
    assert rows[0]["verdict"] == "tie" and rows[0]["flipped"] is True


def test_single_order_is_seeded(openai_stub: OpenAIStub, tmp_path: Path) -> None:  # noqa: F811
    openai_stub.default = _prefers_good
    rows = judge_pairwise(_cfg(tmp_path, both_orders=False), LIMA, BASE, endpoint=_endpoint(openai_stub))
    assert openai_stub.n_requests == 4 and [r["verdict"] for r in rows] == ["a", "b", "tie", "tie"]
    assert all(r["flipped"] is None and len(r["orders"]) == 1 for r in rows)


def test_absolute_and_helpfulness(openai_stub: OpenAIStub, tmp_path: Path) -> None:  # noqa: F811
    openai_stub.script("Rating: Excellent", "Rating: Fail", "meh", "Rating: Pass")
    client = LLMClient(_endpoint(openai_stub, concurrency=1))
    out = rate_absolute(_cfg(tmp_path), LIMA, tags={"p1": ["ood"]}, client=client)
    assert [r["label"] for r in out] == ["excellent", "fail", None, "pass"]
    assert out[1]["tags"] == ["ood"] and out[2]["error"]
    openai_stub.reset()
    openai_stub.script("ok\nScore: 5", "Score: 3", "Score: 9", "Score: 4")
    graded = grade_helpfulness(_cfg(tmp_path), LIMA[:2], samples=2, client=client)
    assert graded[0]["scores"] == [5, 3] and graded[0]["score"] == 4.0
    assert graded[1]["scores"] == [None, 4] and graded[1]["n_unparsed"] == 1
    assert [r["seed"] for r in openai_stub.requests] == [0, 1, 0, 1]
    assert all(r["temperature"] == 0.7 for r in openai_stub.requests)


def test_same_system_or_no_shared_prompts_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="share no prompt_id"):
        judge_pairwise(_cfg(tmp_path), LIMA, [{**BASE[0], "prompt_id": "zz"}], client=object())
    with pytest.raises(ValueError, match="both response sets"):
        judge_pairwise(_cfg(tmp_path), LIMA, LIMA, client=object())


def _protocol_cfg(tmp_path: Path, **absolute: Any) -> dict[str, Any]:
    return {**_cfg(tmp_path), "seed": 5, "absolute": absolute}


def test_absolute_protocol_rates_the_papers_subsets_not_every_prompt(openai_stub: OpenAIStub,  # noqa: F811
                                                                       tmp_path: Path) -> None:
    """Issue 11: Fail/Pass/Excellent on N random prompts + the OOD + the safety prompts, sizes from `absolute:`."""
    from lima.analysis.cli import absolute_table
    from lima.judge.protocols import absolute_sample, rate_absolute_protocol

    openai_stub.default = "Rating: Pass"
    rows = _rows("lima", [f"answer {i}" for i in range(40)])
    rows += [{**rows[0], "sample": 1, "response": "a second sample of p0"}]          # one response per prompt
    tags = {f"p{i}": ["ood"] for i in range(30, 36)} | {f"p{i}": ["safety"] for i in range(36, 40)}
    tags["p35"] = ["ood", "safety"]
    cfg = _protocol_cfg(tmp_path, random_prompts=10, ood_prompts=3, safety_prompts=None)
    plan = absolute_sample(cfg, [r["prompt_id"] for r in rows], tags)
    chosen = {s: sorted(p for p, subs in plan.items() if s in subs) for s in ("all", "ood", "safety")}
    assert len(chosen["all"]) == 10 and len(chosen["ood"]) == 3
    assert chosen["safety"] == ["p35", "p36", "p37", "p38", "p39"]                   # None: every safety prompt
    assert set(chosen["ood"]) <= {f"p{i}" for i in range(30, 36)}
    assert plan == absolute_sample(cfg, [r["prompt_id"] for r in reversed(rows)], tags)   # seeded, order-free
    assert absolute_sample({**cfg, "seed": 6}, [r["prompt_id"] for r in rows], tags) != plan

    client = LLMClient(_endpoint(openai_stub), cache_path=tmp_path / "c.sqlite")
    out = rate_absolute_protocol(cfg, rows, tags, client=client)
    client.close()
    assert openai_stub.n_requests == len(plan) < 40                                  # each chosen prompt once
    assert sorted(r["prompt_id"] for r in out) == sorted(plan)
    assert all(r["sample"] == 0 and r["subsets"] == plan[r["prompt_id"]] for r in out)
    table = {r["subset"]: r["n"] for r in absolute_table(out)}
    assert table == {"all": 10, "ood": 3, "safety": 5}


def test_absolute_protocol_defaults_are_the_papers_50_20_30(tmp_path: Path) -> None:
    from lima.config import load_profile, section
    from lima.judge.protocols import AbsoluteConfig, absolute_sample

    acfg = section(load_profile("paper"), "absolute", AbsoluteConfig)
    assert (acfg.random_prompts, acfg.ood_prompts, acfg.safety_prompts) == (50, 20, 30)
    ids = [f"t{i:03d}" for i in range(300)]
    tags = {f"t{i:03d}": ["ood"] for i in range(40)} | {f"t{i:03d}": ["safety"] for i in range(40, 90)}
    plan = absolute_sample({"seed": 0}, ids, tags)
    assert [sum(s in subs for subs in plan.values()) for s in ("all", "ood", "safety")] == [50, 20, 30]
    test = section(load_profile("test"), "absolute", AbsoluteConfig)
    assert (test.random_prompts, test.ood_prompts, test.safety_prompts) == (4, 2, 2)
