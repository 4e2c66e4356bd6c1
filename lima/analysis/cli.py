"""`python -m lima analyze`: judgment files (+ human labels) → the statistics tables in `{results}/tables/`.

Reads `{results}/judgments/pairwise__*.jsonl` and `absolute__*.jsonl`, and the human annotation export
(`analysis.human`, written by `python -m lima annotate export`). A table is written only when it has data —
an empty-with-header file would look like a result — and the figure code handles a missing table.
`parse_failures.json` is always written when there are judgments, so unparsed verdicts stay visible.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

from lima.analysis import AnalysisConfig
from lima.analysis.agreement import AGREEMENT_COLUMNS, agreement_table
from lima.analysis.bradley_terry import BT_COLUMNS, bradley_terry_table
from lima.analysis.length_control import LC_COLUMNS, length_controlled_table
from lima.analysis.preference import TABLE_COLUMNS, canonical, outcome_for, preference_table
from lima.config import load_profile, parse_set_args, resolve, section
from lima.io import InputError, read_jsonl, write_csv, write_json

HUMAN_COLUMNS = ("annotator", "prompt_id", "system_a", "system_b", "choice")
ABSOLUTE_COLUMNS = ["subset", "n", "fail", "pass", "excellent"]


def tables_dir(cfg: dict[str, Any]) -> Path:
    return resolve(cfg["paths"]["results"]) / "tables"


def load_judgments(cfg: dict[str, Any], protocol: str) -> dict[str, list[dict[str, Any]]]:
    folder = resolve(cfg["paths"]["results"]) / "judgments"
    if not folder.is_dir():
        return {}
    return {p.name: read_jsonl(p) for p in sorted(folder.glob(f"{protocol}__*.jsonl"))}


def load_human_labels(path: str | Path) -> list[dict[str, Any]]:
    """The annotation export (CSV or JSONL): one row per label, `choice` a|b|tie relative to system_a/b."""
    path = Path(path)
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [(i + 2, r) for i, r in enumerate(csv.DictReader(handle))]
    else:
        rows = [(i + 1, r) for i, r in enumerate(read_jsonl(path))]
    out = []
    for line, row in rows:
        missing = [c for c in HUMAN_COLUMNS if row.get(c) in (None, "")]
        if missing:
            raise InputError(f"{path}:{line}: missing {missing} (need columns {list(HUMAN_COLUMNS)})")
        if str(row["choice"]).strip().lower() not in {"a", "b", "tie"}:
            raise InputError(f"{path}:{line}: choice must be a, b or tie, got {row['choice']!r}")
        out.append({c: str(row[c]).strip() for c in HUMAN_COLUMNS} | {"choice": str(row["choice"]).strip().lower()})
    return out


def llm_labels(pairwise: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Pairwise judgment rows as annotator labels (`llm:<judge>`), unparsed verdicts left out."""
    return [{"annotator": f"llm:{r['judge']}", "prompt_id": r["prompt_id"], "system_a": r["system_a"],
             "system_b": r["system_b"], "choice": r["verdict"]}
            for rows in pairwise.values() for r in rows if r["verdict"] is not None]


def absolute_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    table = []
    from lima.judge.protocols import ABSOLUTE_SUBSETS, in_subset

    for subset in ABSOLUTE_SUBSETS:
        labels = [r["label"] for r in rows if r["label"] is not None and in_subset(r, subset)]
        if labels:
            table.append({"subset": subset, "n": len(labels),
                          **{k: 100 * labels.count(k) / len(labels) for k in ("fail", "pass", "excellent")}})
    return table


def parse_failure_report(judgments: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for protocol, files in judgments.items():
        for name, rows in files.items():
            if protocol == "pairwise":
                calls = [(r["prompt_id"], o) for r in rows for o in r["orders"]]
                bad = [{"prompt_id": pid, "order": o["order"], "error": o["error"], "raw": str(o["raw"])[:200]}
                       for pid, o in calls if o["label"] is None]
                both = [r for r in rows if r["flipped"] is not None]
                extra = {"unparsed_items": sum(r["verdict"] is None for r in rows),
                         "flip_rate": sum(r["flipped"] for r in both) / len(both) if both else None,
                         "n_both_orders_parsed": len(both)}
            else:
                calls = [(r["prompt_id"], r) for r in rows]
                bad = [{"prompt_id": pid, "error": r["error"], "raw": str(r["raw"])[:200]}
                       for pid, r in calls if r["label"] is None]
                extra = {"unparsed_items": len(bad)}
            report[name] = {"protocol": protocol, "items": len(rows), "calls": len(calls),
                            "unparsed_calls": len(bad), **extra, "examples": bad[:5]}
    return report


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str], cfg: dict[str, Any],
               inputs: list[Path]) -> Path:
    """Exactly the contract's columns (the figures read them), floats to 4 digits."""
    config = {"analysis": cfg.get("analysis"), "judge": cfg.get("judge"), "profile": cfg.get("profile")}
    return write_csv(path, [{k: row.get(k) for k in columns} for row in rows], columns, config=config,
                     inputs=inputs, digits=4)


def analyze(cfg: dict[str, Any], human: str | Path | None = None) -> dict[str, Path]:
    """Write every table that has data; returns {table name: path}."""
    ac = section(cfg, "analysis", AnalysisConfig)
    out_dir = tables_dir(cfg)
    judgments = {p: load_judgments(cfg, p) for p in ("pairwise", "absolute")}
    inputs = [resolve(cfg["paths"]["results"]) / "judgments" / n for files in judgments.values() for n in files]
    pairwise = judgments["pairwise"]
    llm = llm_labels(pairwise)
    human_path = Path(human) if human else (resolve(ac.human) if ac.human else None)
    humans = load_human_labels(human_path) if human_path and human_path.exists() else []
    boot = {"n_boot": ac.bootstrap, "ci": ac.ci, "seed": ac.seed}
    written: dict[str, Path] = {}

    def put(name: str, rows: list[dict[str, Any]], columns: list[str], extra_inputs: list[Path] = ()) -> None:
        if rows:
            written[name] = _write_csv(out_dir / f"{name}.csv", rows, columns, cfg, [*inputs, *extra_inputs])

    put("preference_llm", preference_table(llm, ac.system, **boot), TABLE_COLUMNS)
    if humans:
        put("preference_human", preference_table(humans, ac.system, **boot), TABLE_COLUMNS, [human_path])
    put("agreement", agreement_table([*humans, *llm]), AGREEMENT_COLUMNS, [human_path] if humans else [])
    focal = [r for rows in judgments["absolute"].values() for r in rows if r.get("system") == ac.system]
    put("absolute", absolute_table(focal), ABSOLUTE_COLUMNS)
    lc_items = []
    for rows in pairwise.values():
        for r in rows:
            if r["verdict"] is None or ac.system not in (r["system_a"], r["system_b"]):
                continue
            _, winner = canonical(r["prompt_id"], r["system_a"], r["system_b"], r["verdict"])
            mine_a = r["system_a"] == ac.system
            lc_items.append({"baseline": r["system_b"] if mine_a else r["system_a"], "prompt_id": r["prompt_id"],
                             "outcome": outcome_for(ac.system, str(winner)),
                             "len_system": r["len_a"] if mine_a else r["len_b"],
                             "len_baseline": r["len_b"] if mine_a else r["len_a"]})
    put("length_controlled", length_controlled_table(lc_items, **boot), LC_COLUMNS)
    comparisons = [(r["prompt_id"], (r["system_a"], r["system_b"], {"a": 1.0, "tie": 0.5, "b": 0.0}[r["verdict"]]))
                   for rows in pairwise.values() for r in rows if r["verdict"] is not None]
    if len({s for _, c in comparisons for s in c[:2]}) >= 2:
        put("bradley_terry", bradley_terry_table(comparisons, prior=ac.bt_prior, n_boot=ac.bt_bootstrap,
                                                 ci=ac.ci, seed=ac.seed), BT_COLUMNS)
    if any(judgments.values()):
        path = out_dir / "parse_failures.json"
        write_json(path, parse_failure_report(judgments), config={"judge": cfg.get("judge")}, inputs=inputs)
        written["parse_failures"] = path
    return written


def main(argv: list[str], prog: str = "python -m lima analyze") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="world", help="config profile (default: world, the LIMA world)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, e.g. analysis.bootstrap=2000")
    parser.add_argument("--human", default=None,
                        help="human labels export (.csv/.jsonl from `python -m lima annotate export`; "
                             "default analysis.human)")
    args = parser.parse_args(argv)
    cfg = load_profile(args.profile, parse_set_args(args.set))
    written = analyze(cfg, args.human)
    if not written:
        print("no judgments found: run `python -m lima judge ...` first")
    for name, path in written.items():
        print(f"wrote {name}: {path}")
    return 0
