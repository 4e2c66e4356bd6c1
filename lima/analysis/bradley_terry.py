"""Bradley–Terry ratings over every judged system pair (Chatbot-Arena style), ties as half wins.

P(i beats j) = p_i / (p_i + p_j). We fit the strengths with Hunter's (2004) MM iteration, which for two
systems reproduces the closed form p_1/p_2 = W_1/W_2, and report them on the Elo scale
(400·log10 p, centred at 1000) with bootstrap intervals that resample prompts. `prior` adds that many
virtual ties to every compared pair, which keeps a system that never wins (or always wins) at a finite
rating in small or resampled data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from lima.analysis.stats import bootstrap_groups

BT_COLUMNS = ["system", "rating", "ci_low", "ci_high", "n_comparisons"]
ELO_SCALE = 400.0
ELO_CENTER = 1000.0

Comparison = tuple[str, str, float]   # (system_x, system_y, score of x: 1 win, 0.5 tie, 0 loss)


def _fit(systems: Sequence[str], comparisons: Iterable[Comparison], prior: float,
         max_iter: int = 10000, tol: float = 1e-10) -> np.ndarray:
    index = {s: i for i, s in enumerate(systems)}
    k = len(systems)
    n = np.zeros((k, k))
    wins = np.zeros(k)
    for x, y, score in comparisons:
        i, j = index[x], index[y]
        if i == j:
            raise ValueError(f"a system cannot be compared with itself: {x!r}")
        n[i, j] += 1
        n[j, i] += 1
        wins[i] += score
        wins[j] += 1 - score
    if prior > 0:
        pairs = n > 0
        n = n + prior * pairs
        wins = wins + prior / 2 * pairs.sum(axis=1)
    p = np.ones(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(max_iter):
            denom = (n / (p[:, None] + p[None, :])).sum(axis=1)
            new = np.where(denom > 0, wins / denom, p)
            new = np.maximum(new, 1e-300)
            new /= np.exp(np.mean(np.log(new)))
            if np.max(np.abs(np.log(new) - np.log(p))) < tol:
                p = new
                break
            p = new
    return p


def bradley_terry(comparisons: Iterable[Comparison], prior: float = 0.0) -> dict[str, float]:
    """{system: Elo-scale rating}; the geometric-mean strength maps to 1000."""
    comparisons = list(comparisons)
    systems = sorted({c[0] for c in comparisons} | {c[1] for c in comparisons})
    if len(systems) < 2:
        raise ValueError("Bradley-Terry needs comparisons between at least two systems")
    p = _fit(systems, comparisons, prior)
    return {s: float(ELO_SCALE * np.log10(p[i]) + ELO_CENTER) for i, s in enumerate(systems)}


def bradley_terry_table(items: Iterable[tuple[str, Comparison]], prior: float = 0.5, n_boot: int = 1000,
                        ci: float = 0.95, seed: int = 0) -> list[dict[str, Any]]:
    """`(prompt_id, comparison)` items → rows `system, rating, ci_low, ci_high, n_comparisons`."""
    items = list(items)
    comparisons = [c for _, c in items]
    ratings = bradley_terry(comparisons, prior=prior)
    systems = sorted(ratings)
    groups: dict[str, list[Comparison]] = {}
    for prompt_id, comp in items:
        groups.setdefault(str(prompt_id), []).append(comp)
    group_list = [groups[k] for k in sorted(groups)]

    def stat(sample: list[list[Comparison]]) -> np.ndarray:
        flat = [c for g in sample for c in g]
        p = _fit(systems, flat, prior)
        # a system missing from a resample has no information: leave it at the centre
        return ELO_SCALE * np.log10(p) + ELO_CENTER

    low, high = bootstrap_groups(group_list, stat, n_boot=n_boot, ci=ci, seed=seed)
    counts = {s: sum(1 for c in comparisons if s in (c[0], c[1])) for s in systems}
    rows = [{"system": s, "rating": ratings[s], "ci_low": float(low[i]), "ci_high": float(high[i]),
             "n_comparisons": counts[s]} for i, s in enumerate(systems)]
    return sorted(rows, key=lambda r: -r["rating"])
