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
    cfg = load_profile("test_smoke", {"paths.root": str(tmp_path)})
    paper = yaml.safe_load((ROOT / "lima/resources/paper_results.yaml").read_text())
    leaves = dict(numeric_leaves(paper))
    assert len(leaves) > 100 and leaves["preference_human.baselines.gpt4.win"] == 18

    tables = tmp_path / "data/results/tables"
    tables.mkdir(parents=True)
    # gpt-4-0314 declares the paper's GPT-4 (April) row in configs/systems.yaml; today's gpt-4 does not
    pd.DataFrame([{"baseline": "gpt-4-0314", "n": 10, "win": 30.0, "tie": 20.0, "loss": 50.0, "win_low": 10,
                   "win_high": 50, "tie_low": 5, "tie_high": 40, "loss_low": 30, "loss_high": 70},
                  {"baseline": "gpt-4", "n": 10, "win": 40.0, "tie": 20.0, "loss": 40.0, "win_low": 20,
                   "win_high": 60, "tie_low": 5, "tie_high": 40, "loss_low": 20, "loss_high": 60},
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
    assert rows["preference_human.baselines.gpt4.win"]["origin"] == "measured (gpt-4-0314)"
    assert rows["preference_human.this_run_only.gpt-4.win"]["this_run"] == "40"     # a modern model: its own row
    assert rows["preference_human.this_run_only.gpt-4.win"]["paper"] == MISSING
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
    assert {r["profile"] for r in rows.values()} == {"test_smoke"}
    text = md.read_text()
    assert "SMOKE PROFILE" in text and "base model: `smoke-tiny-llama`" in text and "judge: `smoke-judge`" in text
    assert text.count("\n| `") == len(rows)
    assert (md.parent / "paper_vs_this_run.md.manifest.json").exists()


def test_report_cli(tmp_path: Path, capsys) -> None:
    assert main(["--profile", "test_smoke", "--set", f"paths.root={tmp_path}"]) == 0
    assert "paper_vs_this_run.md" in capsys.readouterr().out
    rows = read_rows(tmp_path / "figures" / "paper_vs_this_run.csv")
    assert rows["multiturn.zero_shot.excellent"]["paper"] == "45.2"
    assert rows["multiturn.zero_shot.excellent"]["this_run"] == MISSING


def _systems_cfg(tmp_path: Path, systems: dict) -> dict:
    path = tmp_path / "systems.yaml"
    path.write_text(yaml.safe_dump({"systems": systems}))
    return load_profile("test_smoke", {"paths.root": str(tmp_path), "generate.systems_file": str(path)})


def _preference_table(tmp_path: Path, baselines: list[str]) -> None:
    tables = tmp_path / "data/results/tables"
    tables.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"baseline": b, "n": 10, "win": 10.0 * (i + 1), "tie": 0.0, "loss": 100 - 10.0 * (i + 1),
                   "win_low": 0, "win_high": 100, "tie_low": 0, "tie_high": 0, "loss_low": 0, "loss_high": 100}
                  for i, b in enumerate(baselines)]).to_csv(tables / "preference_llm.csv", index=False)


def test_paper_rows_come_only_from_declaring_systems(tmp_path: Path) -> None:
    """Issue 11, the paper-row mapping: names that merely look like a paper row never fill it."""
    cfg = _systems_cfg(tmp_path, {
        "text-davinci-003": {"kind": "endpoint", "paper_row": "davinci003", "api": "completions",
                             "model": "text-davinci-003", "path": "x.jsonl"},
        "alpaca_style": {"kind": "local", "model": "m"},                     # named like Alpaca, declares nothing
        "bard": {"kind": "endpoint", "model": "gemini-1.5-pro"},             # named like Bard, declares nothing
        "pool_unfiltered": {"kind": "local", "model": "m", "trained_on": "pool_unfiltered.jsonl"}})
    _preference_table(tmp_path, ["text-davinci-003", "alpaca_style", "bard", "pool_unfiltered", "claude"])
    rows = read_rows(write_report(cfg).with_suffix(".csv"))
    assert rows["preference_llm.baselines.davinci003.win"]["this_run"] == "10"
    assert rows["preference_llm.baselines.davinci003.win"]["origin"] == "measured (text-davinci-003)"
    for row in ("alpaca_65b", "bard", "claude", "gpt4"):
        assert rows[f"preference_llm.baselines.{row}.win"]["this_run"] == MISSING, row
    assert rows["preference_llm.this_run_only.alpaca_style.win"]["this_run"] == "20"
    assert rows["preference_llm.this_run_only.bard.win"]["this_run"] == "30"
    assert rows["preference_llm.this_run_only.pool_unfiltered.win"]["this_run"] == "40"
    assert rows["preference_llm.this_run_only.claude.win"]["this_run"] == "50"          # undeclared: own row


def test_shipped_systems_never_put_another_model_on_a_paper_row() -> None:
    from lima.generate.systems import PAPER_ROWS, load_systems

    cfg = load_profile("paper")
    systems = load_systems(cfg)
    declared = {name: spec.paper_row for name, spec in systems.items() if spec.paper_row}
    assert declared == {"text-davinci-003": "davinci003", "gpt-4-0314": "gpt4"}
    assert systems["text-davinci-003"].api == "completions"
    for name, row in declared.items():
        assert systems[name].model in PAPER_ROWS[row].models
    # the unfiltered-pool model is its own system and never the paper's Alpaca 65B
    assert "alpaca" not in systems and systems["pool_unfiltered"].paper_row is None
    assert all(spec.decoding in ("paper", "provider_default") for spec in systems.values()
               if spec.kind == "endpoint")
