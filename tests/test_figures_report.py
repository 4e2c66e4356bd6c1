"""The paper-vs-this-run table: every number in paper_results.yaml, ours filled in where this run has it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import yaml

from lima.config import ROOT, load_profile
from lima.report import MISSING, main, write_report


def numeric_leaves(node, prefix=""):
    """Independent walk of the YAML: every number (or list of numbers) that is not metadata."""
    for key, value in node.items():
        if key in {"source", "label", "unit", "note", "judge", "confirmed", "citation"}:
            continue
        if isinstance(value, dict):
            yield from numeric_leaves(value, f"{prefix}{key}.")
        elif isinstance(value, list) or (isinstance(value, int | float) and not isinstance(value, bool)):
            yield f"{prefix}{key}", value


def read_rows(path: Path) -> dict[str, dict]:
    with open(path, encoding="utf-8") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def test_report_lists_every_paper_number_and_fills_ours(tmp_path: Path) -> None:
    cfg = load_profile("test", {"paths.root": str(tmp_path)})
    paper = yaml.safe_load((ROOT / "lima/resources/paper_results.yaml").read_text())
    leaves = dict(numeric_leaves(paper))
    assert len(leaves) > 100 and leaves["preference_human.baselines.gpt4.win"] == 18

    tables = tmp_path / "data/results/tables"
    tables.mkdir(parents=True)
    pd.DataFrame([{"baseline": "gpt-4", "n": 10, "win": 30.0, "tie": 20.0, "loss": 50.0, "win_low": 10,
                   "win_high": 50, "tie_low": 5, "tie_high": 40, "loss_low": 30, "loss_high": 70},
                  {"baseline": "null", "n": 10, "win": 90.0, "tie": 10.0, "loss": 0.0, "win_low": 70,
                   "win_high": 100, "tie_low": 0, "tie_high": 30, "loss_low": 0, "loss_high": 10}]
                 ).to_csv(tables / "preference_human.csv", index=False)
    pd.DataFrame([{"subset": "safety", "n": 4, "fail": 25, "pass": 50, "excellent": 25}]
                 ).to_csv(tables / "absolute.csv", index=False)
    pd.DataFrame([{"annotator_1": "ann1", "annotator_2": "llm:j", "kind": "human-llm", "n": 10,
                   "tie_discounted_accuracy": 0.8},
                  {"annotator_1": "ann2", "annotator_2": "llm:j", "kind": "human-llm", "n": 30,
                   "tie_discounted_accuracy": 0.6}]).to_csv(tables / "agreement.csv", index=False)
    processed = tmp_path / "data/processed"
    processed.mkdir(parents=True)
    train = [{"id": f"s{i}", "source": "stackexchange", "meta": {"domain": "stem" if i < 3 else "other"},
              "messages": []} for i in range(5)] + [{"id": "w", "source": "wikihow", "meta": {}, "messages": []}]
    (processed / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    pd.DataFrame([{"split": "train", "source": "wikihow", "count": 1, "input_tokens": 7.5, "output_tokens": None,
                   "token_unit": "words"}]).to_csv(processed / "table1.csv", index=False)

    md = write_report(cfg)
    assert md == tmp_path / "figures" / "paper_vs_this_run.md"
    rows = read_rows(md.with_suffix(".csv"))
    for ident, value in leaves.items():   # every paper number is a row, with the paper's value
        assert ident in rows, ident
        shown = rows[ident]["paper"].replace(" (unconfirmed)", "")
        expected = ", ".join(map(str, value)) if isinstance(value, list) else value
        assert shown == str(expected) or float(shown) == float(expected), (ident, shown, value)
    assert rows["preference_llm.baselines.gpt4.win"]["paper"] == "19 (unconfirmed)"
    assert rows["preference_human.baselines.gpt4.win"]["paper"] == "18"
    # ours, where this run produced it
    assert rows["preference_human.baselines.gpt4.win"]["this_run"] == "30"
    assert rows["preference_human.baselines.gpt4.win"]["origin"] == "measured (gpt-4)"
    assert rows["headline.preferred_or_equivalent.gpt4"]["this_run"] == "50"
    assert rows["absolute.safety.safe_percent"]["this_run"] == "75"
    assert rows["table1.train.stackexchange_stem.count"]["this_run"] == "3"
    assert rows["table1.train.stackexchange_other.count"]["this_run"] == "2"
    assert rows["table1.train.total.count"]["this_run"] == "6"
    assert rows["table1.train.wikihow.avg_input_tokens"]["this_run"] == "7.5"
    assert rows["table1.train.wikihow.avg_input_tokens"]["origin"] == "measured (words)"
    assert rows["table1.train.wikihow.avg_output_tokens"]["this_run"] == MISSING
    assert rows["training.epochs"]["this_run"] == str(cfg["train"]["epochs"])
    assert rows["training.epochs"]["origin"] == "config"
    # and "—" where it did not
    assert rows["preference_human.baselines.bard.win"]["this_run"] == MISSING
    assert rows["agreement.crowd_crowd"]["this_run"] == MISSING
    assert rows["agreement.this_run_only.human_llm"]["this_run"] == "65"   # (0.8·10 + 0.6·30) / 40
    assert rows["multiturn.dialogues.excellent"]["this_run"] == MISSING
    # this run's extra systems are listed too, marked as having no paper number
    assert rows["preference_human.this_run_only.null.win"]["paper"] == MISSING
    assert {r["profile"] for r in rows.values()} == {"test"}
    text = md.read_text()
    assert "SMOKE PROFILE" in text and "base model: `smoke-tiny-llama`" in text and "judge: `smoke-judge`" in text
    assert text.count("\n| `") == len(rows)
    assert (md.parent / "paper_vs_this_run.md.manifest.json").exists()


def test_report_cli(tmp_path: Path, capsys) -> None:
    assert main(["--profile", "test", "--set", f"paths.root={tmp_path}"]) == 0
    assert "paper_vs_this_run.md" in capsys.readouterr().out
    rows = read_rows(tmp_path / "figures" / "paper_vs_this_run.csv")
    assert rows["multiturn.zero_shot.excellent"]["paper"] == "45.2"
    assert rows["multiturn.zero_shot.excellent"]["this_run"] == MISSING
