"""Training data of the fine-tuned baselines, made by the package (notebook 03 and `lima train --baseline`).

- `alpaca`: the paper's Alpaca 65B is the base fine-tuned on the 52k Alpaca examples with the same recipe.
  Its data is `data.alpaca_json` (Alpaca's own `alpaca_data.json`; in the LIMA world the world's Alpaca-style
  set in the same format). Without that file the baseline is not trained, and says why — nothing stands in.
- `pool_unfiltered`: ours — the same recipe on a seeded sample of the unfiltered community pool
  (`{processed}/pool_unfiltered.jsonl`). It is its own system and never the paper's Alpaca row.
Each writes `{processed}/<name>_train.jsonl` with a manifest naming its input.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from lima.config import resolve
from lima.io import read_jsonl, write_jsonl

BASELINES = ("alpaca", "pool_unfiltered")


class BaselineUnavailable(RuntimeError):
    """The baseline's input is missing: the baseline is skipped, never substituted."""


def alpaca_train_file(cfg: dict[str, Any]) -> Path:
    from lima.data import data_config
    from lima.data.formats import read_rows

    source = data_config(cfg).alpaca_json
    if not source or not resolve(source).exists():
        raise BaselineUnavailable(f"alpaca: no Alpaca data at data.alpaca_json={source!r}: put Stanford Alpaca's "
                                  f"alpaca_data.json there to train the paper's Alpaca baseline")
    rows, fmt = read_rows(resolve(source))
    if fmt != "alpaca":
        raise BaselineUnavailable(f"alpaca: {source} holds {fmt} rows, not Alpaca's instruction/input/output")
    out = resolve(cfg["paths"]["processed"]) / "alpaca_train.jsonl"
    write_jsonl(out, ({**r, "source": "alpaca"} for r in rows), config=cfg.get("data"), inputs=[resolve(source)])
    return out


def pool_train_file(cfg: dict[str, Any], cap: int | None = None) -> Path:
    """A seeded sample of the unfiltered pool (`cap` rows; None: 2 × the LIMA training set; 0: all of it)."""
    processed = resolve(cfg["paths"]["processed"])
    source = processed / "pool_unfiltered.jsonl"
    if not source.exists():
        raise BaselineUnavailable(f"pool_unfiltered: {source} does not exist (run curation, notebook 02)")
    pool = read_jsonl(source)
    n = 2 * len(read_jsonl(processed / "train.jsonl")) if cap is None else cap or len(pool)
    if n < len(pool):
        pool = random.Random(int(cfg.get("seed", 0))).sample(pool, n)
    out = processed / "pool_unfiltered_train.jsonl"
    write_jsonl(out, pool, config={"cap": cap, "rows": len(pool)}, inputs=[source])
    return out


def baseline_train_file(cfg: dict[str, Any], name: str, cap: int | None = None) -> Path:
    if name == "alpaca":
        return alpaca_train_file(cfg)
    if name == "pool_unfiltered":
        return pool_train_file(cfg, cap)
    raise ValueError(f"unknown baseline {name!r}; known: {BASELINES}")
