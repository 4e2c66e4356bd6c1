"""Small interval estimators shared by the tables.

The paper reports ablation means with a two-sided 95% t interval (§5); win rates get percentile bootstrap
intervals that resample *prompts*, because several judgments of one prompt are not independent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats as _st


def mean_ci(values: Sequence[float], ci: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a two-sided Student-t interval; one value gives a zero-width interval, none NaNs."""
    x = np.asarray([float(v) for v in values], dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"), float("nan"))
    mean = float(x.mean())
    if x.size == 1:
        return (mean, mean, mean)
    sem = float(x.std(ddof=1) / np.sqrt(x.size))
    half = float(_st.t.ppf(0.5 + ci / 2, df=x.size - 1) * sem)
    return (mean, mean - half, mean + half)


def bootstrap_groups(groups: Sequence[Any], statistic: Callable[[list[Any]], np.ndarray | float],
                     n_boot: int = 10000, ci: float = 0.95, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of `statistic` over resampled groups (resampling whole groups with replacement).

    Returns (low, high) arrays shaped like the statistic. The statistic receives a list of groups.
    """
    if len(groups) == 0:
        raise ValueError("bootstrap over zero groups")
    rng = np.random.default_rng(seed)
    n = len(groups)
    draws = []
    for _ in range(int(n_boot)):
        idx = rng.integers(0, n, size=n)
        draws.append(np.atleast_1d(np.asarray(statistic([groups[i] for i in idx]), dtype=float)))
    arr = np.vstack(draws)
    alpha = (1.0 - ci) / 2
    return np.quantile(arr, alpha, axis=0), np.quantile(arr, 1 - alpha, axis=0)
