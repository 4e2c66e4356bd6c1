"""Win / tie / loss of one system against each baseline, with prompt-level bootstrap intervals (Fig. 1/2).

Judgments arrive in two shapes — LLM judgment rows (`verdict` a|b|tie relative to `system_a`/`system_b`)
and human export rows (`choice` a|b|tie relative to the same columns). Both are reduced to one canonical
form, an item `(prompt_id, sorted system pair)` with the winning system's name or "tie", so that the
preference tables and the agreement statistics read the same thing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lima.analysis.stats import bootstrap_indices, percentile_interval

OUTCOMES = ("win", "tie", "loss")
TABLE_COLUMNS = ["baseline", "n", "win", "tie", "loss", "win_low", "win_high", "tie_low", "tie_high",
                 "loss_low", "loss_high"]

ItemKey = tuple[str, str, str]


def canonical(prompt_id: str, system_a: str, system_b: str, choice: str | None) -> tuple[ItemKey, str | None]:
    """Map a choice relative to (system_a, system_b) to (item key, winner name | "tie" | None)."""
    lo, hi = sorted((str(system_a), str(system_b)))
    key: ItemKey = (str(prompt_id), lo, hi)
    if choice is None:
        return key, None
    choice = str(choice).strip().lower()
    if choice == "a":
        return key, str(system_a)
    if choice == "b":
        return key, str(system_b)
    if choice == "tie":
        return key, "tie"
    raise ValueError(f"choice must be 'a', 'b' or 'tie', got {choice!r}")


def outcome_for(system: str, winner: str) -> str:
    """'win'/'tie'/'loss' from `system`'s point of view."""
    if winner == "tie":
        return "tie"
    return "win" if winner == system else "loss"


def win_tie_loss(outcomes: Iterable[tuple[str, str]], n_boot: int = 10000, ci: float = 0.95,
                 seed: int = 0) -> dict[str, Any]:
    """Percentages of win/tie/loss over (prompt_id, outcome) pairs with percentile bootstrap CIs.

    The bootstrap resamples prompts, carrying all of a prompt's judgments along (several annotators or
    samples of one prompt are correlated), and recomputes the three shares on each resample.
    """
    per_prompt: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(3))
    for prompt_id, outcome in outcomes:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        per_prompt[str(prompt_id)][OUTCOMES.index(outcome)] += 1
    if not per_prompt:
        raise ValueError("win_tie_loss of zero judgments")
    counts = np.vstack([per_prompt[k] for k in sorted(per_prompt)])
    total = counts.sum()
    point = counts.sum(axis=0) / total * 100
    n = counts.shape[0]
    shares = []
    for idx in bootstrap_indices(n, n_boot, seed):
        sums = counts[idx].sum(axis=1)
        shares.append(sums / sums.sum(axis=1, keepdims=True) * 100)
    low, high = percentile_interval(np.vstack(shares), ci)
    out: dict[str, Any] = {"n": int(total), "n_prompts": int(n)}
    for i, name in enumerate(OUTCOMES):
        out[name] = float(point[i])
        out[f"{name}_low"] = float(low[i])
        out[f"{name}_high"] = float(high[i])
    return out


def outcomes_by_baseline(labels: Iterable[Mapping[str, Any]], system: str) -> dict[str, list[tuple[str, str]]]:
    """Group canonical labels `{prompt_id, system_a, system_b, choice}` into outcomes of `system` per opponent.

    Rows not involving `system` and rows without a choice (unparseable) are skipped here; the callers count
    and report those separately.
    """
    grouped: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in labels:
        a, b = str(row["system_a"]), str(row["system_b"])
        if system not in (a, b) or row.get("choice") is None:
            continue
        _, winner = canonical(row["prompt_id"], a, b, row["choice"])
        opponent = b if a == system else a
        grouped[opponent].append((str(row["prompt_id"]), outcome_for(system, str(winner))))
    return dict(grouped)


def preference_table(labels: Iterable[Mapping[str, Any]], system: str = "lima", n_boot: int = 10000,
                     ci: float = 0.95, seed: int = 0) -> list[dict[str, Any]]:
    """One row per baseline in the `preference_*.csv` column contract (percent 0–100)."""
    rows = []
    for baseline, outcomes in sorted(outcomes_by_baseline(labels, system).items()):
        stats = win_tie_loss(outcomes, n_boot=n_boot, ci=ci, seed=seed)
        rows.append({"baseline": baseline, **{c: stats[c] for c in TABLE_COLUMNS[1:]}})
    return rows
