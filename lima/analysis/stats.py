"""The interval estimators every table and figure uses — one implementation each, all resampling *prompts*.

The unit of sampling in every experiment here is the prompt: the test set is a sample of the prompts people
ask, and the several responses, judge samples or annotators of one prompt are correlated (a hard prompt gets
low grades on all five samples). Treating 300 prompts × 5 samples as 1,500 independent values makes an
interval too narrow by up to √5. So:

- `prompt_mean_ci` averages the values of each prompt first, then puts a two-sided Student-t interval on the
  prompt means (the paper reports ablation means with a 95% t interval, §5); with one value per prompt it is
  exactly `mean_ci`.
- `wilson_ci` is the interval for *shares* (accuracy, compliance, hallucination rate): the Wilson score
  interval on the mean of the prompt means with n = the number of prompts. It stays inside [0, 1] and keeps a
  width at 0 or 1 (a t interval says [-0.08, 0.21] or [0, 0] there); for per-prompt values between 0 and 1 it
  is conservative, since such a value's variance is at most p(1 - p).
- `bootstrap_groups` / `bootstrap_indices` resample whole prompts with replacement (percentile intervals) for
  the statistics without a closed form: win/tie/loss shares, Bradley–Terry ratings, the length-controlled
  win rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from scipy import stats as _st


def mean_ci(values: Sequence[float], ci: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a two-sided Student-t interval; one value gives a zero-width interval, none NaNs.

    The values must be independent draws — pass prompt means (see `prompt_mean_ci`), never raw samples.
    """
    x = np.asarray([float(v) for v in values], dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"), float("nan"))
    mean = float(x.mean())
    if x.size == 1:
        return (mean, mean, mean)
    sem = float(x.std(ddof=1) / np.sqrt(x.size))
    half = float(_st.t.ppf(0.5 + ci / 2, df=x.size - 1) * sem)
    return (mean, mean - half, mean + half)


def wilson_ci(values: Sequence[float], ci: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the Wilson score interval for a share, over independent values in [0, 1]."""
    x = np.asarray([float(v) for v in values], dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"), float("nan"))
    if ((x < 0) | (x > 1)).any():
        raise ValueError("wilson_ci takes shares in [0, 1]; use mean_ci for other values")
    n, p = float(x.size), float(x.mean())
    z = float(_st.norm.ppf(0.5 + ci / 2))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (p, max(0.0, centre - half), min(1.0, centre + half))


def prompt_means(values: Iterable[tuple[Any, float | None]]) -> dict[str, float]:
    """prompt id → mean of its parsed values (None and NaN are left out; a prompt with none is left out)."""
    sums: dict[str, list[float]] = {}
    for prompt_id, value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        sums.setdefault(str(prompt_id), []).append(float(value))
    return {pid: sum(v) / len(v) for pid, v in sums.items()}


def prompt_mean_ci(values: Iterable[tuple[Any, float | None]], ci: float = 0.95,
                   interval: Callable[[Sequence[float], float], tuple[float, float, float]] | None = None,
                   ) -> dict[str, Any]:
    """Mean and t interval over prompts of `(prompt_id, value)` pairs, each prompt's samples averaged first.

    Returns {mean, ci_low, ci_high, n (parsed values), n_prompts, unparsed}. The point estimate is the mean of
    the prompt means, so every prompt weighs the same whatever number of its samples parsed. `interval` is the
    t interval on independent values (default `mean_ci`; a seam for tests).
    """
    pairs = list(values)
    valid = [(p, v) for p, v in pairs if v is not None and not (isinstance(v, float) and math.isnan(v))]
    means = prompt_means(valid)
    mean, low, high = (interval or (lambda v, c: mean_ci(v, ci=c)))(list(means.values()), ci) if means \
        else (float("nan"),) * 3
    return {"n": len(valid), "n_prompts": len(means), "mean": mean, "ci_low": low, "ci_high": high,
            "unparsed": len(pairs) - len(valid)}


def bootstrap_indices(n: int, n_boot: int, seed: int = 0, chunk_values: int = 2_000_000) -> Iterator[np.ndarray]:
    """Resampled prompt indices, `(b, n)` integer arrays in chunks, `n_boot` rows in all (one seeded stream)."""
    if n <= 0:
        raise ValueError("bootstrap over zero prompts")
    rng = np.random.default_rng(seed)
    chunk = max(1, chunk_values // n)
    remaining = int(n_boot)
    while remaining > 0:
        b = min(chunk, remaining)
        yield rng.integers(0, n, size=(b, n))
        remaining -= b


def percentile_interval(draws: np.ndarray, ci: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) percentile interval over axis 0 of bootstrap draws."""
    alpha = (1.0 - ci) / 2
    return np.quantile(draws, alpha, axis=0), np.quantile(draws, 1 - alpha, axis=0)


def bootstrap_groups(groups: Sequence[Any], statistic: Callable[[list[Any]], np.ndarray | float],
                     n_boot: int = 10000, ci: float = 0.95, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of `statistic` over resampled groups (whole prompts, drawn with replacement).

    Returns (low, high) arrays shaped like the statistic. The statistic receives a list of groups.
    """
    if len(groups) == 0:
        raise ValueError("bootstrap over zero groups")
    draws = [np.atleast_1d(np.asarray(statistic([groups[i] for i in row]), dtype=float))
             for idx in bootstrap_indices(len(groups), n_boot, seed) for row in idx]
    return percentile_interval(np.vstack(draws), ci)
