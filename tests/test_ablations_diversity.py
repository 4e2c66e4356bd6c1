"""Fig. 5's table from faked training/generation/grading: every number is computed by hand."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from ablation_fakes import FakeStages, make_cfg

from lima.ablations import diversity
from lima.io import read_jsonl


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_diversity_table_and_grades(tmp_path):
    cfg = make_cfg(tmp_path, n_test=4, examples_per_condition=12, samples_per_prompt=2, max_test_prompts=None)
    stale = tmp_path / "data" / "results" / "ablations" / "responses" / "se_filtered.jsonl"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"stale": true}\n')
    fakes = FakeStages(scores={"ablation_se_filtered": [4, 5, None], "ablation_wikihow": [3],
                               "ablation_se_unfiltered": [1, 6]})
    table = diversity.run(cfg, fakes.stages())

    assert [c["run_name"] for c in fakes.calls["finetune"]] == [
        "ablations/se_filtered", "ablations/wikihow", "ablations/se_unfiltered"]
    first = fakes.calls["finetune"][0]
    assert (first["n_rows"], first["base"], first["train"]["residual_dropout"], first["train"]["batch_size"],
            first["train"]["epochs"], first["max_new_tokens"]) == (12, "smoke-tiny-llama", 0.2, 8, 2, 48)
    assert all(g == {"system": g["system"], "n_prompts": 4, "samples": 2, "existed": False}
               for g in fakes.calls["generate"])            # the stale responses file was removed first
    assert fakes.calls["grade"] == [8, 8, 8]

    rows = _rows(diversity.table_path(cfg))
    assert list(rows[0])[:6] == diversity.COLUMNS
    by = {r["condition"]: r for r in rows}
    # se_filtered: 4,5 | None,4 | 5,None | 4,5 → six grades; the interval is over the 4 prompt means
    # 4.5, 4, 5, 4.5 (issue 10: samples of a prompt are not independent): sd √(1/6), t(0.975, 3) = 3.182446
    assert (by["se_filtered"]["n_examples"], by["se_filtered"]["n"], by["se_filtered"]["unparsed"]) == ("12", "6", "2")
    assert float(by["se_filtered"]["mean"]) == 4.5
    assert float(by["se_filtered"]["ci_low"]) == pytest.approx(3.850386, abs=1e-6)
    assert float(by["se_filtered"]["ci_high"]) == pytest.approx(5.149614, abs=1e-6)
    assert [by["wikihow"][k] for k in ("n", "mean", "ci_low", "ci_high")] == ["8", "3.0", "3.0", "3.0"]
    assert float(by["se_unfiltered"]["mean"]) == 3.5
    # 1,6 on every prompt: the prompt means are all 3.5, so prompts do not differ (the spread is within prompts)
    assert float(by["se_unfiltered"]["ci_low"]) == pytest.approx(3.5, abs=1e-6)
    assert by["wikihow"]["label"] == "wikiHow"
    assert table[0]["condition"] == "se_filtered"

    grades = read_jsonl(diversity.grades_path(cfg))
    assert len(grades) == 24
    assert grades[2] == {"condition": "se_filtered", "prompt_id": "t1", "sample": 0, "score": None, "scores": None,
                         "judge_errors": None,
                         "response": "ablation_se_filtered says t1/0"}
    assert len(read_jsonl(tmp_path / "data" / "processed" / "ablations" / "wikihow.jsonl")) == 12


def test_a_short_pool_fails_before_any_training(tmp_path):
    cfg = make_cfg(tmp_path, examples_per_condition=40)
    fakes = FakeStages(available={"se_filtered": 100, "wikihow": 25, "se_unfiltered": 100})
    with pytest.raises(ValueError, match="cannot draw 40 'wikihow' examples: only 25"):
        diversity.run(cfg, fakes.stages())
    assert fakes.calls["finetune"] == []
    assert not diversity.table_path(cfg).exists()
