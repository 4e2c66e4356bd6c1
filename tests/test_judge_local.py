"""End to end on the smoke path: `judge_endpoint` serves a tiny local model with `lima serve` on loopback,
the judge CLI writes judgments through the real client, and `lima analyze` turns them into tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_lima_model import tiny_model_dir  # noqa: F401  (fixture)

from lima.analysis.cli import analyze
from lima.analysis.cli import main as analyze_main
from lima.config import load_profile
from lima.io import read_jsonl, write_jsonl
from lima.judge import judge_endpoint, local_model_dir
from lima.judge.cli import main as judge_main
from lima.judge.cli import run_absolute


@pytest.fixture
def root(tmp_path: Path, tiny_model_dir: Path) -> Path:  # noqa: F811
    run = tmp_path / "models" / "lima"
    run.mkdir(parents=True)
    (run / "selected.json").write_text(json.dumps({"path": str(tiny_model_dir), "epoch": 1, "rule": "test"}))
    responses = tmp_path / "data" / "results" / "responses"
    for system, text in (("lima", "Boil the egg for nine minutes."), ("alpaca", "The sea is wide.")):
        write_jsonl(responses / f"{system}.jsonl", [
            {"system": system, "prompt_id": f"t{i}", "prompt": "How do I boil an egg?", "response": f"{text} {i}"}
            for i in range(3)])
    write_jsonl(tmp_path / "data" / "processed" / "test.jsonl", [
        {"id": "t0", "messages": [{"role": "user", "content": "q"}], "source": "authors", "meta": {"tags": ["ood"]}},
        {"id": "t1", "messages": [{"role": "user", "content": "q"}], "source": "authors",
         "meta": {"tags": ["safety"]}}])
    return tmp_path


def test_local_judge_end_to_end(root: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture) -> None:  # noqa: F811
    cfg = load_profile("test_smoke", {"paths.root": str(root)})
    assert local_model_dir(cfg["judge"]["local_model"]) == tiny_model_dir
    with judge_endpoint(cfg) as endpoint:
        assert endpoint.base_url.startswith("http://127.0.0.1:") and endpoint.api_key_env is None
        root_set = ["--profile", "test_smoke", "--set", f"paths.root={root}"]
        assert judge_main(["--protocol", "pairwise", "--a", "lima", "--b", "alpaca", *root_set]) == 0
        path, rows = run_absolute(cfg, "lima", endpoint=endpoint)
    judged = read_jsonl(root / "data" / "results" / "judgments" / "pairwise__lima__alpaca.jsonl")
    assert len(judged) == 3 and all(len(r["orders"]) == 2 for r in judged)
    for r in judged:                                   # every call either parsed or carries its reason
        for o in r["orders"]:
            assert (o["label"] is None) == (o["error"] is not None)
    assert [r["tags"] for r in rows] == [["ood"], ["safety"], []]
    written = analyze(cfg)
    report = json.loads(written["parse_failures"].read_text())
    assert report["pairwise__lima__alpaca.jsonl"]["calls"] == 6
    assert report["absolute__lima.jsonl"]["items"] == 3
    parsed = [r for r in judged if r["verdict"] is not None]
    assert ("preference_llm" in written) == bool(parsed)          # only written when there is data
    assert "preference_human" not in written and not (root / "data/results/tables/preference_human.csv").exists()
    # a second run is answered entirely from the cache
    with judge_endpoint(cfg) as endpoint:
        from lima.judge.cli import run_pairwise
        from lima.llm_client import LLMClient

        client = LLMClient(endpoint, cache_path=cfg["judge"]["cache"])
        _, again = run_pairwise(cfg, "lima", "alpaca", client=client)
    assert client.stats["requests"] == 0 and client.stats["cache_hits"] == 6
    assert [r["verdict"] for r in again] == [r["verdict"] for r in judged]
    assert analyze_main(["--profile", "test_smoke", "--set", f"paths.root={root}"], prog="analyze") == 0


def test_missing_local_model_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    cfg = load_profile("test_smoke", {"paths.root": str(tmp_path)})
    with pytest.raises(FileNotFoundError, match="judge.local_model"), judge_endpoint(cfg):
        pass
