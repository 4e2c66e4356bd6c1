"""Length-controlled win rate in the style of AlpacaEval 2 (Dubois et al., 2024).

LLM judges prefer longer answers. We fit P(win) = σ(θ + φ·tanh(Δ/σ_Δ)) where Δ is the length difference
(system − baseline, characters) and σ_Δ its standard deviation over the items, then report σ(θ): the win
rate the judge would give if both answers had the same length. Ties count as half a win (the item enters
once as a win and once as a loss, each with weight ½). A small ridge penalty keeps the fit finite when one
side always wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

# each outcome as (target, weight) observations: a tie is half a win and half a loss
_AS_WINS = {"win": [(1.0, 1.0)], "loss": [(0.0, 1.0)], "tie": [(1.0, 0.5), (0.0, 0.5)]}
LC_COLUMNS = ["baseline", "n", "win_rate", "lc_win_rate", "length_coef", "mean_length_diff"]


def _design(outcomes: list[str], diffs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sd = float(diffs.std())
    feature = np.tanh(diffs / sd) if sd > 0 else np.zeros_like(diffs)
    xs, ys, ws = [], [], []
    for outcome, f in zip(outcomes, feature, strict=True):
        if outcome not in _AS_WINS:
            raise ValueError(f"outcome must be win/tie/loss, got {outcome!r}")
        for target, weight in _AS_WINS[outcome]:
            xs.append(f)
            ys.append(target)
            ws.append(weight)
    return np.asarray(xs), np.asarray(ys), np.asarray(ws)


def length_controlled_win_rate(outcomes: Iterable[str], system_lengths: Iterable[float],
                               baseline_lengths: Iterable[float], ridge: float = 1e-3) -> dict[str, float]:
    """{win_rate, lc_win_rate, length_coef, n, mean_length_diff}; rates in percent (ties = half wins)."""
    outcomes = list(outcomes)
    diffs = np.asarray(list(system_lengths), dtype=float) - np.asarray(list(baseline_lengths), dtype=float)
    if len(outcomes) != diffs.size:
        raise ValueError(f"{len(outcomes)} outcomes but {diffs.size} length pairs")
    if not outcomes:
        raise ValueError("length-controlled win rate of zero items")
    x, y, w = _design(outcomes, diffs)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        theta, phi = params
        z = theta + phi * x
        nll = -np.sum(w * (y * log_expit(z) + (1 - y) * log_expit(-z))) + ridge / 2 * (theta**2 + phi**2)
        p = expit(z)
        grad = np.array([np.sum(w * (p - y)) + ridge * theta, np.sum(w * (p - y) * x) + ridge * phi])
        return float(nll), grad

    fit = minimize(loss, np.zeros(2), jac=True, method="L-BFGS-B")
    theta, phi = fit.x
    raw = sum({"win": 1.0, "tie": 0.5, "loss": 0.0}[o] for o in outcomes) / len(outcomes)
    return {"n": len(outcomes), "win_rate": raw * 100, "lc_win_rate": float(expit(theta)) * 100,
            "length_coef": float(phi), "mean_length_diff": float(diffs.mean())}


def length_controlled_table(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows `{baseline, outcome, len_system, len_baseline}` → one LC row per baseline."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        grouped.setdefault(str(item["baseline"]), []).append(item)
    table = []
    for baseline, rows in sorted(grouped.items()):
        stats = length_controlled_win_rate([r["outcome"] for r in rows], [r["len_system"] for r in rows],
                                           [r["len_baseline"] for r in rows])
        table.append({"baseline": baseline, **stats})
    return table
