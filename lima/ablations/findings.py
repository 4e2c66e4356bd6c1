"""The "what this run shows" paragraphs of notebooks 07–09, computed from the tables (never hand-written).

Each function reads the rows a notebook just produced and states what they support: orderings only where
the prompt-level intervals separate, a saturation size for each of Fig. 6's curves, the shift in Excellent
and Fail shares of Fig. 7. Numbers come from the rows; the words only choose between outcomes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lima.ablations.world_metrics import KINDS, curve


def separated(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when the two intervals do not overlap (a conservative reading of "different")."""
    return float(a["ci_low"]) > float(b["ci_high"]) or float(b["ci_low"]) > float(a["ci_high"])


def _fmt(row: Mapping[str, Any], digits: int = 2) -> str:
    return f"{float(row['mean']):.{digits}f} [{float(row['ci_low']):.{digits}f}, {float(row['ci_high']):.{digits}f}]"


def compare(name_a: str, a: Mapping[str, Any], name_b: str, b: Mapping[str, Any], digits: int = 2) -> str:
    """"A 3.1 [..] vs B 2.4 [..]: A higher (intervals separate)" or "…: not separated"."""
    diff = float(a["mean"]) - float(b["mean"])
    verdict = (f"{name_a if diff > 0 else name_b} higher (intervals separate)" if separated(a, b)
               else "not separated by this run's intervals")
    return f"{name_a} {_fmt(a, digits)} vs {name_b} {_fmt(b, digits)}: {verdict}"


def diversity_findings(table: Sequence[Mapping[str, Any]], metrics: Sequence[Mapping[str, Any]] = ()) -> str:
    """Fig. 5: quality (filtered vs unfiltered SE) and diversity (filtered SE vs wikiHow), judge and metrics."""
    by = {r["condition"]: r for r in table}
    parts = []
    if {"se_filtered", "se_unfiltered"} <= by.keys():
        parts.append("Quality — helpfulness " + compare("filtered SE", by["se_filtered"], "unfiltered SE",
                                                        by["se_unfiltered"]))
    if {"se_filtered", "wikihow"} <= by.keys():
        parts.append("Diversity — helpfulness " + compare("filtered SE", by["se_filtered"], "wikiHow", by["wikihow"]))
    for metric in KINDS:
        rows = {r["condition"]: r for r in metrics if r["metric"] == metric and int(r["n_prompts"]) > 0}
        if {"se_filtered", "se_unfiltered", "wikihow"} <= rows.keys():
            best = max(rows.values(), key=lambda r: float(r["mean"]))
            parts.append(f"{metric} ({rows['se_filtered']['n_prompts']} prompts): highest for {best['condition']}; "
                         + compare("filtered SE", rows["se_filtered"], "unfiltered SE", rows["se_unfiltered"])
                         + "; " + compare("filtered SE", rows["se_filtered"], "wikiHow", rows["wikihow"]))
    n = min((int(r["n_prompts"] if "n_prompts" in r else r["n"]) for r in table), default=0)
    head = f"Over {n} test prompts per condition (95% intervals resample prompts): "
    return head + "; ".join(parts) + "." if parts else head + "no comparable conditions in this run."


def saturation_size(rows: Sequence[Mapping[str, Any]], key: str = "size") -> Any:
    """The smallest size whose interval overlaps the best size's interval: the curve is flat from there on
    as far as this run can tell. None for an empty curve."""
    if not rows:
        return None
    best = max(rows, key=lambda r: float(r["mean"]))
    return min(r[key] for r in rows if not separated(r, best))


def quantity_findings(table: Sequence[Mapping[str, Any]], curves: Sequence[Mapping[str, Any]]) -> str:
    """Fig. 6: for helpfulness and each world metric, first vs last size and where the curve saturates."""
    rows = sorted(table, key=lambda r: r["size"])
    if not rows:
        return "No size has been run."
    sizes = [r["size"] for r in rows]
    parts = [f"Helpfulness from {sizes[0]} to {sizes[-1]} examples: "
             + compare(f"{sizes[-1]}", rows[-1], f"{sizes[0]}", rows[0])
             + f"; flat from {saturation_size(rows)} on"]
    sat: dict[str, Any] = {}
    for metric, kind in KINDS.items():
        c = curve(curves, metric)
        if len(c) < 2:
            continue
        sat[metric] = saturation_size(c)
        parts.append(f"{metric} ({kind}): " + compare(f"{c[-1]['size']}", c[-1], f"{c[0]['size']}", c[0])
                     + f"; within the best size's interval from {sat[metric]} examples on")
    style = [sat[m] for m in sat if KINDS[m] == "style"]
    substance = [sat[m] for m in sat if KINDS[m] == "substance"]
    if style and substance:
        if max(style) < max(substance):
            late = ", ".join(m for m in sat if KINDS[m] == "substance" and sat[m] > max(style))
            verdict = f"style saturates earlier than substance ({late}: Raghavendra et al.'s pattern)"
        elif max(substance) < min(style):
            verdict = "substance saturates earlier than style"
        else:
            verdict = "style and substance saturate at comparable sizes"
        parts.append(f"Verdict: {verdict}")
    return "; ".join(parts) + "."


def multiturn_findings(table: Sequence[Mapping[str, Any]], epochs: int, graded_by: str) -> str:
    """Fig. 7: the Excellent and Fail shares of both models, trained for the same number of epochs."""
    by = {r["condition"]: r for r in table}
    if not {"zero_shot", "dialogues"} <= by.keys():
        return "Both conditions are needed for a comparison."
    z, d = by["zero_shot"], by["dialogues"]

    def share(row: Mapping[str, Any], lab: str) -> str:
        value = float(row[lab])
        if math.isnan(value):
            return "n/a"
        return f"{value:.1f}% [{float(row[f'{lab}_ci_low']):.1f}, {float(row[f'{lab}_ci_high']):.1f}]"

    def moved(lab: str) -> str:
        a = {"mean": z[lab], "ci_low": z[f"{lab}_ci_low"], "ci_high": z[f"{lab}_ci_high"]}
        b = {"mean": d[lab], "ci_low": d[f"{lab}_ci_low"], "ci_high": d[f"{lab}_ci_high"]}
        delta = float(b["mean"]) - float(a["mean"])
        sep = "intervals separate" if separated(a, b) else "intervals overlap"
        return f"{delta:+.1f} points ({sep})"

    return (f"Both models trained {epochs} epochs; turns graded by {graded_by}; intervals resample conversations. "
            f"Excellent: zero-shot {share(z, 'excellent')} over {int(z['turns'])} turns, with dialogues "
            f"{share(d, 'excellent')} over {int(d['turns'])} turns, {moved('excellent')}. "
            f"Fail: {share(z, 'fail')} → {share(d, 'fail')}, {moved('fail')}.")
