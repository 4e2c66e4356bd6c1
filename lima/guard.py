"""The guard against degenerate results: a result must carry signal, or the build says so.

Checked on whatever a run has written (cheap: it reads tables and judgment files, runs nothing):
- the focal system does not beat the fixed-answer `null` model (it must win on more prompts than it loses) —
  a judge or a model that cannot tell a real answer from a fixed one;
- a judge whose verdicts flip with the response order on more than half of the pairs (position bias: every
  flip becomes a tie);
- a figure's values all equal: every preference row the same (or all ties), one Fail/Pass/Excellent category
  taking every absolute rating, an ablation whose means are all equal or whose intervals have zero width (and,
  in the world, a metrics panel of Figs. 5 and 6 whose every value is the same; one metric equal across
  conditions is a finding of the run, e.g. no fine-tune recalling a held-out procedure), multi-turn conditions with the
  same Fail/Pass/Excellent shares (Fig. 7), a dev quality equal at every checkpoint.
`lima report --strict` exits non-zero when any is found; notebook 05 prints them.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from lima.config import resolve


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _judgments(results: Path) -> list[tuple[Path, list[dict[str, Any]]]]:
    out = []
    for path in sorted((results / "judgments").glob("pairwise__*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        out.append((path, rows))
    return out


def _against_null(focal: str, judgments: list[tuple[Path, list[dict[str, Any]]]]) -> list[str]:
    for path, rows in judgments:
        if path.name != f"pairwise__{focal}__null.jsonl" or not rows:
            continue
        wins = sum(r.get("verdict") == "a" for r in rows)
        losses = sum(r.get("verdict") == "b" for r in rows)
        if wins <= losses:
            return [f"{path.name}: {focal} does not beat the fixed-answer null model "
                    f"(wins {wins}, losses {losses} of {len(rows)} prompts)"]
        return []
    return []


def _flip_rates(judgments: list[tuple[Path, list[dict[str, Any]]]]) -> list[str]:
    out = []
    for path, rows in judgments:
        judged = [r for r in rows if r.get("flipped") is not None]
        if judged and sum(bool(r["flipped"]) for r in judged) > len(judged) / 2:
            rate = sum(bool(r["flipped"]) for r in judged) / len(judged)
            out.append(f"{path.name}: the judge flips {rate:.0%} of its verdicts with the order (> 50%)")
    return out


def _constant_tables(results: Path) -> list[str]:
    out = []
    pref = _rows(results / "tables" / "preference_llm.csv")
    if pref:
        triples = {(r["win"], r["tie"], r["loss"]) for r in pref}
        if all(_num(r["tie"]) >= 100 for r in pref):
            out.append("preference_llm.csv (Fig. 2): every verdict is a tie")
        elif len(pref) > 1 and len(triples) == 1:
            out.append("preference_llm.csv (Fig. 2): every baseline has the same win/tie/loss")
    absolute = _rows(results / "tables" / "absolute.csv")
    if absolute and all(max(_num(r[k]) for k in ("fail", "pass", "excellent")) >= 100 for r in absolute) and \
            len({max(("fail", "pass", "excellent"), key=lambda k: _num(r[k])) for r in absolute}) == 1:
        out.append("absolute.csv (Fig. 3): one rating takes every response in every subset")
    for name, figure in (("diversity_quality.csv", "Fig. 5"), ("quantity.csv", "Fig. 6")):
        rows = _rows(results / "ablations" / name)
        means = [_num(r.get("mean")) for r in rows if not math.isnan(_num(r.get("mean")))]
        if len(means) > 1 and len(set(means)) == 1:
            out.append(f"{name} ({figure}): every condition has the same mean {means[0]}")
        widths = [_num(r.get("ci_high")) - _num(r.get("ci_low")) for r in rows]
        if widths and all(w == 0 for w in widths):
            out.append(f"{name} ({figure}): every interval has zero width")
        metrics_name = name.replace(".csv", "_metrics.csv")
        metric_rows = _rows(results / "ablations" / metrics_name)
        values = {_num(r.get("mean")) for r in metric_rows}
        if len(rows) > 1 and metric_rows and len(values) == 1:
            out.append(f"{metrics_name} ({figure}): every metric of every condition is {values.pop()}")
    turns = _rows(results / "ablations" / "multiturn.csv")
    shares = {tuple(_num(r.get(k)) for k in ("excellent", "pass", "fail")) for r in turns}
    if len(turns) > 1 and len(shares) == 1:
        out.append("multiturn.csv (Fig. 7): every condition has the same Fail/Pass/Excellent shares")
    return out


def _constant_checkpoints(models: Path, focal: str) -> list[str]:
    path = models / focal / "checkpoints.json"
    if not path.exists():
        return []
    quality = [r.get("dev_quality") for r in json.loads(path.read_text(encoding="utf-8"))]
    quality = [q for q in quality if q is not None]
    if len(quality) > 1 and len(set(quality)) == 1:
        return [f"{path}: dev quality is {quality[0]} at every checkpoint (Fig. 9 is flat; selection cannot choose)"]
    return []


def degenerate_findings(cfg: dict[str, Any]) -> list[str]:
    """Every degenerate result found in this run's outputs (empty: none)."""
    results = resolve(cfg["paths"]["results"])
    focal = str((cfg.get("analysis") or {}).get("system", "lima"))
    judgments = _judgments(results)
    return (_against_null(focal, judgments) + _flip_rates(judgments) + _constant_tables(results)
            + _constant_checkpoints(resolve(cfg["paths"]["models"]), focal))
