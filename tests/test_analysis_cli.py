"""`lima analyze` on hand-written judgment files and a human export: tables only when there is data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from lima.analysis.cli import analyze, load_human_labels
from lima.config import load_profile
from lima.io import InputError, write_jsonl


def _pair(pid: str, verdict: str | None, flipped: bool | None) -> dict:
    return {"protocol": "pairwise", "prompt_id": pid, "system_a": "lima", "system_b": "gpt4", "judge": "j",
            "len_a": 10, "len_b": 10, "verdict": verdict, "flipped": flipped,
            "orders": [{"order": "ab", "label": None if verdict is None else "A", "error": None if verdict else "x",
                        "raw": "r"}]}


def test_analyze_with_llm_and_human_labels(tmp_path: Path) -> None:
    cfg = load_profile("test", {"paths.root": str(tmp_path)})
    judg = tmp_path / "data/results/judgments"
    write_jsonl(judg / "pairwise__lima__gpt4.jsonl",
                [_pair("p1", "a", False), _pair("p2", "tie", True), _pair("p3", None, None)])
    human = tmp_path / "export.csv"
    with open(human, "w", newline="") as handle:
        w = csv.DictWriter(handle, ["item_id", "annotator", "prompt_id", "system_a", "system_b", "choice"])
        w.writeheader()
        w.writerow({"item_id": 1, "annotator": "ann", "prompt_id": "p1", "system_a": "gpt4", "system_b": "lima",
                    "choice": "b"})
        w.writerow({"item_id": 2, "annotator": "ann", "prompt_id": "p2", "system_a": "lima", "system_b": "gpt4",
                    "choice": "a"})
    written = analyze(cfg, human)
    assert {"preference_llm", "preference_human", "agreement", "length_controlled", "bradley_terry",
            "parse_failures"} <= set(written)
    assert "absolute" not in written                       # no absolute judgments: no table
    llm = list(csv.DictReader(written["preference_llm"].read_text().splitlines()))
    assert (llm[0]["baseline"], llm[0]["n"], llm[0]["win"], llm[0]["tie"]) == ("gpt4", "2", "50.0", "50.0")
    agree = list(csv.DictReader(written["agreement"].read_text().splitlines()))
    assert agree[0]["annotator_2"] == "llm:j" and agree[0]["n"] == "2"
    assert float(agree[0]["tie_discounted_accuracy"]) == pytest.approx(0.75)
    assert Path(str(written["preference_llm"]) + ".manifest.json").exists()


def test_human_export_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, [{"annotator": "a", "prompt_id": "p", "system_a": "x", "system_b": "y", "choice": "a"},
                      {"annotator": "a", "prompt_id": "p", "system_a": "x", "system_b": "y", "choice": "maybe"}])
    with pytest.raises(InputError, match=r"bad.jsonl:2: choice"):
        load_human_labels(bad)
