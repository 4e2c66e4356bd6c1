"""Inter-annotator agreement on shared items (paper §5: crowd, authors and GPT-4 on 50 common items).

The paper's metric is *tie-discounted accuracy*: two labels score 1 when they agree, 0.5 when exactly one
of them is "tie", 0 otherwise — a tie against a preference is a half-disagreement, while opposite
preferences are a full one. Plain agreement (with and without tie items) and Cohen's κ are added because
tie-discounted accuracy has no chance correction.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lima.analysis.preference import ItemKey, canonical

TIE = "tie"
AGREEMENT_COLUMNS = ["annotator_1", "annotator_2", "kind", "n", "tie_discounted_accuracy", "agreement",
                     "agreement_no_ties", "n_no_ties", "kappa"]


def _check(a: Sequence[str], b: Sequence[str]) -> None:
    if len(a) != len(b):
        raise ValueError(f"label sequences differ in length: {len(a)} vs {len(b)}")
    if not a:
        raise ValueError("agreement of zero items")


def tie_discounted_accuracy(a: Sequence[str], b: Sequence[str]) -> float:
    """Mean over items of 1 (same label), 0.5 (exactly one says tie) or 0 (opposite preferences)."""
    _check(a, b)
    score = 0.0
    for x, y in zip(a, b, strict=True):
        if x == y:
            score += 1.0
        elif (x == TIE) != (y == TIE):
            score += 0.5
    return score / len(a)


def plain_agreement(a: Sequence[str], b: Sequence[str], ties: bool = True) -> float:
    """Share of identical labels; with `ties=False` only items where neither annotator said tie count."""
    _check(a, b)
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if ties or (x != TIE and y != TIE)]
    if not pairs:
        return float("nan")
    return sum(x == y for x, y in pairs) / len(pairs)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's κ = (p_o − p_e) / (1 − p_e); NaN when chance agreement is already 1 (one shared category)."""
    _check(a, b)
    n = len(a)
    cats = sorted(set(a) | set(b))
    p_o = sum(x == y for x, y in zip(a, b, strict=True)) / n
    p_e = sum((a.count(c) / n) * (b.count(c) / n) for c in cats)
    if math.isclose(p_e, 1.0):
        return float("nan")
    return (p_o - p_e) / (1 - p_e)


def labels_by_annotator(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[ItemKey, str]]:
    """{annotator: {item key: winner | 'tie'}}; a later label of the same item replaces an earlier one."""
    out: dict[str, dict[ItemKey, str]] = {}
    for row in rows:
        key, value = canonical(row["prompt_id"], row["system_a"], row["system_b"], row.get("choice"))
        if value is None:
            continue
        out.setdefault(str(row["annotator"]), {})[key] = value
    return out


def annotator_kind(name: str) -> str:
    """LLM judges are recorded as `llm:<model>`; every other annotator is a person."""
    return "llm" if name.startswith("llm:") else "human"


def agreement_table(rows: Iterable[Mapping[str, Any]], min_shared: int = 1) -> list[dict[str, Any]]:
    """One row per annotator pair with at least `min_shared` shared items, every statistic on those items."""
    by_ann = labels_by_annotator(rows)
    table = []
    for x, y in itertools.combinations(sorted(by_ann), 2):
        shared = sorted(set(by_ann[x]) & set(by_ann[y]))
        if len(shared) < max(1, min_shared):
            continue
        a = [by_ann[x][k] for k in shared]
        b = [by_ann[y][k] for k in shared]
        kind = "-".join(sorted((annotator_kind(x), annotator_kind(y))))
        table.append({
            "annotator_1": x, "annotator_2": y, "kind": kind, "n": len(shared),
            "tie_discounted_accuracy": tie_discounted_accuracy(a, b),
            "agreement": plain_agreement(a, b, ties=True),
            "agreement_no_ties": plain_agreement(a, b, ties=False),
            "n_no_ties": sum(1 for p, q in zip(a, b, strict=True) if p != TIE and q != TIE),
            "kappa": cohen_kappa(a, b),
        })
    return table
