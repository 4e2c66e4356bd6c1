"""Interleaved benchmark blocks: the one way every benchmark in `make bench` compares contestants.

Why: on a small shared machine the load changes within minutes (a bare PyTorch loop read 3,053 then 3,405 tok/s in
one run), so contestants run back to back for minutes each compare different machines. Here each contestant runs
ONE short block at a time, A B A B …, with the order rotated every block so no contestant always goes first; the
ratio is taken per block (both sides of a block saw nearly the same load) and reported as the median over blocks
with its spread (min, max, quartiles). Every per-block figure is kept so a JSON can be re-read later.

    result = run_blocks({"ours": run_ours_block, "baseline": run_baseline_block}, blocks=7, reference="baseline")
    result["ratios"]["ours"]["median"]      # ours / baseline, median over the 7 blocks

Each callable runs one block (same data and steps every time) and returns its throughput in units per second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import numpy as np


def block_order(names: list[str], block: int) -> list[str]:
    """The order of contestants in block `block`: the list rotated by one each block (for two: A B, B A, A B …)."""
    shift = block % len(names)
    return names[shift:] + names[:shift]


def spread(values: list[float]) -> dict[str, float]:
    """Median, min, max and quartiles (linear interpolation, numpy's default) of a list of per-block values."""
    arr = np.asarray(values, dtype=float)
    return {"median": float(np.median(arr)), "min": float(arr.min()), "max": float(arr.max()),
            "q25": float(np.quantile(arr, 0.25)), "q75": float(np.quantile(arr, 0.75))}


def _measure(name: str, fn: Callable[[], float], block: int) -> tuple[float, float]:
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"contestant {name!r}, block {block}: throughput must be a positive finite number, "
                         f"got {value!r}")
    return float(value), seconds


def run_blocks(contestants: Mapping[str, Callable[[], float]], blocks: int, reference: str, *,
               warmup_blocks: int = 0) -> dict:
    """Run the contestants interleaved for `blocks` blocks and return per-block throughputs and ratios.

    `warmup_blocks` extra blocks run first (same rotation) and are recorded under `warmup` but excluded from the
    statistics — first calls pay for allocation, thread pools and caches.
    The result: `per_block` ([{name: throughput}]), `seconds_per_block` ([{name: wall seconds}]), `order`
    ([[names in run order]]), `ratios` ({name: spread + per_block} of name/reference for every other name),
    `throughput_median` ({name: median throughput}), `blocks`, `reference`, `warmup`.
    """
    names = list(contestants)
    if reference not in contestants:
        raise ValueError(f"reference {reference!r} is not one of the contestants {names}")
    if len(names) < 2:
        raise ValueError(f"need at least two contestants to compare, got {names}")
    if not isinstance(blocks, int) or blocks < 1:
        raise ValueError(f"blocks must be a positive integer, got {blocks!r}")
    if warmup_blocks < 0:
        raise ValueError(f"warmup_blocks must be >= 0, got {warmup_blocks!r}")

    warmup: list[dict[str, float]] = []
    for block in range(warmup_blocks):
        warmup.append({n: _measure(n, contestants[n], -1 - block)[0] for n in block_order(names, block)})

    per_block: list[dict[str, float]] = []
    seconds: list[dict[str, float]] = []
    orders: list[list[str]] = []
    for block in range(blocks):
        order = block_order(names, block + warmup_blocks)
        row, secs = {}, {}
        for name in order:
            row[name], secs[name] = _measure(name, contestants[name], block)
        per_block.append({n: row[n] for n in names})
        seconds.append({n: secs[n] for n in names})
        orders.append(order)

    ratios = {}
    for name in names:
        if name == reference:
            continue
        per = [row[name] / row[reference] for row in per_block]
        ratios[name] = {**spread(per), "per_block": per}
    return {"blocks": blocks, "reference": reference, "order": orders, "per_block": per_block,
            "seconds_per_block": seconds, "ratios": ratios,
            "throughput_median": {n: spread([row[n] for row in per_block])["median"] for n in names},
            "warmup": warmup}


def describe(result: dict) -> str:
    """One line per ratio, e.g. `ours/baseline 1.03 (min 0.97, max 1.10, IQR 1.01–1.05, 7 blocks)`."""
    ref = result["reference"]
    return "\n".join(
        f"{name}/{ref} {r['median']:.3f} (min {r['min']:.3f}, max {r['max']:.3f}, "
        f"IQR {r['q25']:.3f}–{r['q75']:.3f}, {result['blocks']} blocks)" for name, r in result["ratios"].items())


def headline(result: dict, ours: str, digits: int = 3) -> dict:
    """The top-level figures every results JSON leads with: `ratio` is the median per-block ratio of `ours`
    to the reference, `ratio_spread` its min/max/quartiles, `ours`/`baseline` the median throughputs."""
    r = result["ratios"][ours]
    return {"ratio": round(r["median"], digits),
            "ratio_spread": {k: round(r[k], digits) for k in ("min", "q25", "q75", "max")},
            "ours": round(result["throughput_median"][ours], 1),
            "baseline": round(result["throughput_median"][result["reference"]], 1),
            "blocks": result["blocks"]}
