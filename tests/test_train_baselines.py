"""The fine-tuned baselines' data: the paper's Alpaca from alpaca_data.json (or skipped), the unfiltered pool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lima.config import load_profile
from lima.io import read_jsonl, write_jsonl
from lima.train.baselines import BaselineUnavailable, baseline_train_file


def _cfg(tmp_path: Path, alpaca: str | None) -> dict:
    return load_profile("test", {"paths.root": str(tmp_path), "data.alpaca_json": alpaca})


def test_alpaca_without_its_file_is_skipped_with_the_reason_never_substituted(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data" / "processed" / "pool_unfiltered.jsonl", [{"id": "p1", "messages": []}])
    with pytest.raises(BaselineUnavailable, match="alpaca_data.json"):
        baseline_train_file(_cfg(tmp_path, str(tmp_path / "missing.json")), "alpaca")
    assert not (tmp_path / "data" / "processed" / "alpaca_train.jsonl").exists()


def test_alpaca_json_becomes_the_alpaca_training_file(tmp_path: Path) -> None:
    source = tmp_path / "alpaca_data.json"
    source.write_text(json.dumps([{"instruction": "Name a colour.", "input": "", "output": "Blue."},
                                  {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5."}]))
    out = baseline_train_file(_cfg(tmp_path, str(source)), "alpaca")
    rows = read_jsonl(out)
    assert [r["messages"][-1]["content"] for r in rows] == ["Blue.", "5."]
    assert rows[1]["messages"][0]["content"].startswith("Add the numbers.") and "2 and 3" in rows[1]["messages"][0]["content"]
    assert {r["source"] for r in rows} == {"alpaca"}
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert any(str(source) in json.dumps(i) for i in manifest["inputs"])


def test_a_file_in_another_format_is_not_taken_for_alpaca(tmp_path: Path) -> None:
    source = tmp_path / "sharegpt.json"
    source.write_text(json.dumps([{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}]))
    with pytest.raises(BaselineUnavailable, match="not Alpaca"):
        baseline_train_file(_cfg(tmp_path, str(source)), "alpaca")


def test_pool_sample_is_seeded_and_capped(tmp_path: Path) -> None:
    processed = tmp_path / "data" / "processed"
    write_jsonl(processed / "pool_unfiltered.jsonl", [{"id": f"p{i}", "messages": []} for i in range(10)])
    write_jsonl(processed / "train.jsonl", [{"id": f"t{i}", "messages": []} for i in range(3)])
    cfg = _cfg(tmp_path, None)
    first = [r["id"] for r in read_jsonl(baseline_train_file(cfg, "pool_unfiltered"))]
    again = [r["id"] for r in read_jsonl(baseline_train_file(cfg, "pool_unfiltered"))]
    assert len(first) == 6 and first == again                           # 2 × the LIMA set, same seed
    assert len(read_jsonl(baseline_train_file(cfg, "pool_unfiltered", cap=0))) == 10
