"""Length-controlled win rate: the AlpacaEval 2 GLM (Dubois et al., 2024, "Length-Controlled AlpacaEval").

LLM judges prefer longer answers. AlpacaEval 2 fits, for model m against baseline b on instruction x,

    P(m beats b | x) = σ( θ_m − θ_b  +  φ_{m,b} · tanh(Δlen_x / σ_len)  +  (ψ_m − ψ_b) · γ_x )

where Δlen_x = len(m's answer) − len(b's answer) (characters here), σ_len the standard deviation of Δlen over
the items (ddof 1, as AlpacaEval's pandas `.std()`), and γ_x the instruction's difficulty. One pair (m, b) is
fitted at a time, so its free parameters are θ = θ_m − θ_b, φ = φ_{m,b} and ψ = ψ_m − ψ_b. The
length-controlled win rate is the model's prediction with the length term switched off, averaged over the
instructions:

    LC = (1/N) Σ_x σ(θ + ψ · γ_x)

Ties count as half a win (an item enters once as a win and once as a loss, each with weight ½). A small ridge
penalty on (θ, φ, ψ) keeps the fit finite when one side always wins. The confidence interval is a percentile
bootstrap over *instructions* (lima.analysis.stats): resampled prompts are refitted and re-predicted.

γ_x: AlpacaEval ships difficulties fitted on hundreds of leaderboard models. Pass your own (`difficulty`,
prompt id → γ_x) to use such values; otherwise `length_controlled_table` derives them from this run, leaving
the pair being fitted out so that γ_x cannot carry that pair's own verdict: for the row of baseline b,
γ_x = −mean over the other baselines b' judged on x of (s_{x,b'} − s̄_{b'}), s the focal system's score
(1 win, ½ tie, 0 loss) and s̄_{b'} its mean against b' — how much worse than usual the focal system did on x.
With one baseline (or none of the others judged on x) γ_x = 0 and the GLM is the length-only one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import expit

from lima.analysis.stats import bootstrap_indices, percentile_interval

# each outcome as (target, weight) observations: a tie is half a win and half a loss
_AS_WINS = {"win": [(1.0, 1.0)], "loss": [(0.0, 1.0)], "tie": [(1.0, 0.5), (0.0, 0.5)]}
_SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
LC_COLUMNS = ["baseline", "n", "n_prompts", "win_rate", "lc_win_rate", "lc_low", "lc_high", "length_coef",
              "difficulty_coef", "mean_length_diff"]


def _fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, ridge: float, iterations: int = 100) -> np.ndarray:
    """Ridge-penalised weighted logistic regression by damped Newton steps, batched over rows of `w`.

    x (M, k) features, y (M,) targets, w (B, M) weights (one row per bootstrap resample) → (B, k) coefficients.
    """
    batch, k = w.shape[0], x.shape[1]
    beta = np.zeros((batch, k))
    eye = ridge * np.eye(k)
    for _ in range(iterations):
        p = expit(beta @ x.T)
        grad = (w * (p - y)) @ x + ridge * beta
        if np.abs(grad).max() < 1e-10:
            break
        hess = np.einsum("bm,mi,mj->bij", w * p * (1 - p), x, x, optimize=True) + eye
        step = np.einsum("bij,bj->bi", np.linalg.pinv(hess), grad)
        size = np.linalg.norm(step, axis=1, keepdims=True)
        beta -= step * np.minimum(1.0, 5.0 / np.maximum(size, 1e-300))     # damped: no overshoot near separation
    return beta


def length_controlled_win_rate(outcomes: Iterable[str], system_lengths: Iterable[float],
                               baseline_lengths: Iterable[float], difficulty: Sequence[float] | None = None,
                               prompt_ids: Sequence[Any] | None = None, ridge: float = 1e-3, n_boot: int = 0,
                               ci: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """The AlpacaEval 2 LC win rate of one (system, baseline) pair; rates in percent (ties = half wins).

    `difficulty` is γ_x per item (None: all 0); `prompt_ids` name each item's instruction, the unit the
    bootstrap resamples (None: every item its own instruction). Returns {n, n_prompts, win_rate, lc_win_rate,
    lc_low, lc_high (NaN when n_boot is 0), intercept (θ), length_coef (φ), difficulty_coef (ψ),
    mean_length_diff}.
    """
    outcomes = list(outcomes)
    diffs = np.asarray(list(system_lengths), dtype=float) - np.asarray(list(baseline_lengths), dtype=float)
    if len(outcomes) != diffs.size:
        raise ValueError(f"{len(outcomes)} outcomes but {diffs.size} length pairs")
    if not outcomes:
        raise ValueError("length-controlled win rate of zero items")
    bad = sorted({o for o in outcomes if o not in _AS_WINS})
    if bad:
        raise ValueError(f"outcome must be win/tie/loss, got {bad}")
    gamma = np.zeros(diffs.size) if difficulty is None else np.asarray(difficulty, dtype=float)
    if gamma.shape != diffs.shape:
        raise ValueError(f"{gamma.size} difficulties for {diffs.size} items")
    ids = list(range(len(outcomes))) if prompt_ids is None else [str(p) for p in prompt_ids]
    if len(ids) != len(outcomes):
        raise ValueError(f"{len(ids)} prompt ids for {len(outcomes)} items")
    sd = float(diffs.std(ddof=1)) if diffs.size > 1 else 0.0
    length = np.tanh(diffs / sd) if sd > 0 else np.zeros_like(diffs)
    item, x, y, w = [], [], [], []
    for i, outcome in enumerate(outcomes):
        for target, weight in _AS_WINS[outcome]:
            item.append(i)
            x.append((1.0, length[i], gamma[i]))
            y.append(target)
            w.append(weight)
    item_of, xs, ys, ws = np.asarray(item), np.asarray(x), np.asarray(y), np.asarray(w)
    theta, phi, psi = _fit(xs, ys, ws[None, :], ridge)[0]
    lc = float(expit(theta + psi * gamma).mean())
    low = high = float("nan")
    if n_boot:
        order = {pid: k for k, pid in enumerate(dict.fromkeys(ids))}
        prompts = list(order)
        prompt_of_item = np.asarray([order[p] for p in ids])
        draws = []
        for idx in bootstrap_indices(len(prompts), n_boot, seed, chunk_values=200_000):
            counts = np.zeros((idx.shape[0], len(prompts)))
            np.add.at(counts, (np.arange(idx.shape[0])[:, None], idx), 1.0)
            item_counts = counts[:, prompt_of_item]                               # (b, items)
            beta = _fit(xs, ys, ws[None, :] * item_counts[:, item_of], ridge)
            pred = expit(beta[:, :1] + beta[:, 2:3] * gamma[None, :])              # Δlen = 0
            draws.append((pred * item_counts).sum(axis=1) / item_counts.sum(axis=1))
        lo, hi = percentile_interval(np.concatenate(draws), ci)
        low, high = float(lo) * 100, float(hi) * 100
    raw = sum(_SCORE[o] for o in outcomes) / len(outcomes)
    return {"n": len(outcomes), "n_prompts": len(set(ids)), "win_rate": raw * 100, "lc_win_rate": lc * 100,
            "lc_low": low, "lc_high": high, "intercept": float(theta), "length_coef": float(phi),
            "difficulty_coef": float(psi), "mean_length_diff": float(diffs.mean())}


def leave_one_out_difficulty(items: Sequence[Mapping[str, Any]], baseline: str) -> dict[str, float]:
    """γ_x for the row of `baseline`, from the focal system's results against the *other* baselines on x.

    γ_x = −mean_{b' ≠ baseline judged on x} (s_{x,b'} − s̄_{b'}); prompts no other baseline was judged on get 0.
    """
    scores: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for row in items:
        if str(row["baseline"]) != baseline:
            scores[str(row["baseline"])].append((str(row["prompt_id"]), _SCORE[str(row["outcome"])]))
    deviations: dict[str, list[float]] = defaultdict(list)
    for rows in scores.values():
        mean = sum(s for _, s in rows) / len(rows)
        for pid, s in rows:
            deviations[pid].append(s - mean)
    return {pid: -sum(d) / len(d) for pid, d in deviations.items()}


def length_controlled_table(items: Iterable[Mapping[str, Any]], difficulty: Mapping[str, float] | None = None,
                            n_boot: int = 0, ci: float = 0.95, seed: int = 0,
                            ridge: float = 1e-3) -> list[dict[str, Any]]:
    """Rows `{baseline, prompt_id, outcome, len_system, len_baseline}` → one LC row per baseline.

    `difficulty` (prompt id → γ_x) overrides the leave-one-baseline-out estimate; prompts it lacks get 0.
    """
    items = list(items)
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        grouped.setdefault(str(item["baseline"]), []).append(item)
    table = []
    for baseline, rows in sorted(grouped.items()):
        ids = [str(r.get("prompt_id", i)) for i, r in enumerate(rows)]
        gammas = difficulty if difficulty is not None else leave_one_out_difficulty(items, baseline)
        stats = length_controlled_win_rate([r["outcome"] for r in rows], [r["len_system"] for r in rows],
                                           [r["len_baseline"] for r in rows],
                                           difficulty=[float(gammas.get(pid, 0.0)) for pid in ids],
                                           prompt_ids=ids, ridge=ridge, n_boot=n_boot, ci=ci, seed=seed)
        table.append({"baseline": baseline, **stats})
    return table
