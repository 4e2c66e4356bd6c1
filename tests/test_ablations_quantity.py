"""Fig. 6: one result file per size (the papermill sweep), then the aggregation into quantity.csv."""

from __future__ import annotations

import csv
import json

import pytest
from ablation_fakes import FakeStages, make_cfg

from lima.ablations import quantity
from lima.io import InputError


def test_sweep_then_aggregate(tmp_path):
    cfg = make_cfg(tmp_path, n_test=3, samples_per_prompt=2, max_test_prompts=None)
    fakes = FakeStages(scores={"ablation_quantity_40": [2, 4], "ablation_quantity_20": [5]})
    rec40 = quantity.run_size(cfg, 40, fakes.stages())
    quantity.run_size(cfg, 20, fakes.stages())
    assert [c["run_name"] for c in fakes.calls["finetune"]] == ["ablations/quantity_40", "ablations/quantity_20"]
    assert [c["n_rows"] for c in fakes.calls["finetune"]] == [40, 20]
    assert [p[:2] for p in fakes.calls["pool"]] == [("se_filtered", 40), ("se_filtered", 20)]
    assert (rec40["n"], rec40["mean"], rec40["scores"]) == (6, 3.0, [2, 4, 2, 4, 2, 4])
    saved = json.loads(quantity.size_path(cfg, 40).read_text())
    # every prompt's samples are 2, 4 → prompt means 3, 3, 3: a prompt-level interval has zero width (issue 10)
    assert saved["size"] == 40 and saved["ci_low"] == pytest.approx(3.0, abs=1e-6)

    assert (quantity.sizes_dir(cfg) / "size_20_grades.jsonl").exists()
    table = quantity.aggregate(cfg)
    assert [r["size"] for r in table] == [20, 40]
    with open(quantity.table_path(cfg), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:5] == quantity.COLUMNS
    assert [(r["size"], r["n"], r["mean"]) for r in rows] == [("20", "6", "5.0"), ("40", "6", "3.0")]


def test_size_larger_than_the_pool_names_the_pool_size(tmp_path):
    cfg = make_cfg(tmp_path)
    fakes = FakeStages(available={"se_filtered": 33})
    with pytest.raises(ValueError, match=r"size 80: cannot draw 80 'se_filtered' examples: only 33"):
        quantity.run_size(cfg, 80, fakes.stages())
    assert fakes.calls["finetune"] == []
    with pytest.raises(ValueError, match="positive integer"):
        quantity.run_size(cfg, 0, fakes.stages())


def test_aggregate_needs_size_files_and_checks_them(tmp_path):
    cfg = make_cfg(tmp_path)
    with pytest.raises(FileNotFoundError, match="mode='train'"):
        quantity.aggregate(cfg)
    folder = quantity.sizes_dir(cfg)
    folder.mkdir(parents=True)
    (folder / "size_5.json").write_text(json.dumps({"size": 6, "n": 1, "mean": 1, "ci_low": 1, "ci_high": 1}))
    with pytest.raises(InputError, match="holds size 6, its name says 5"):
        quantity.aggregate(cfg)
    (folder / "size_5.json").write_text('{"size": 5,')
    with pytest.raises(InputError, match=r"size_5.json:1: invalid JSON"):
        quantity.aggregate(cfg)


def test_sizes_for_the_makefile(capsys):
    assert quantity.main(["--profile", "paper"]) == 0
    assert capsys.readouterr().out == "2000 4000 8000 16000 32000\n"
