"""Reading the tables the figures draw: the paper's numbers (resource YAML) and this run's CSV/JSON tables.

The statistics tables are written by other stages; a missing file means "this run did not produce it" (the
figure says so), while a file with missing columns is a broken contract and raises InputError naming it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from lima.io import InputError

PREFERENCE_COLUMNS = ["baseline", "n", "win", "tie", "loss", "win_low", "win_high", "tie_low", "tie_high",
                      "loss_low", "loss_high"]
ABSOLUTE_COLUMNS = ["subset", "n", "fail", "pass", "excellent"]
DIVERSITY_COLUMNS = ["condition", "n_examples", "n", "mean", "ci_low", "ci_high"]
QUANTITY_COLUMNS = ["size", "n", "mean", "ci_low", "ci_high"]
MULTITURN_COLUMNS = ["condition", "turns", "excellent", "pass", "fail"]


@lru_cache(maxsize=1)
def _paper_results_cached() -> dict[str, Any]:
    text = resources.files("lima").joinpath("resources/paper_results.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def paper_results() -> dict[str, Any]:
    """The paper's numbers (lima/resources/paper_results.yaml); a fresh copy each call."""
    import copy

    return copy.deepcopy(_paper_results_cached())


def read_table(path: str | os.PathLike[str], columns: list[str], required: bool = False) -> pd.DataFrame | None:
    """A contract CSV as a DataFrame; None if absent (and not required); InputError on missing columns."""
    path = Path(path)
    if not path.exists():
        if required:
            raise InputError(f"{path}: file not found")
        return None
    try:
        # keep_default_na=False: a baseline called "null" (the fixed-answer model) must stay a name
        df = pd.read_csv(path, keep_default_na=False, na_values=["", "NaN", "nan"])
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise InputError(f"{path}: not a readable CSV ({err})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing columns {missing}; has {list(df.columns)} (line 1, the header)")
    return df


def read_checkpoints(path: str | os.PathLike[str]) -> list[dict[str, Any]] | None:
    """`checkpoints.json`: a list of {epoch, path, dev_perplexity, dev_quality} (or {"checkpoints": [...]})."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{err.lineno}: invalid JSON ({err.msg}, column {err.colno})") from None
    rows = data.get("checkpoints") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise InputError(f"{path}: expected a list of checkpoints, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "epoch" not in row or "dev_perplexity" not in row:
            raise InputError(f"{path}: checkpoint #{i} lacks 'epoch'/'dev_perplexity': {row!r}")
    return sorted(rows, key=lambda r: r["epoch"])


def read_json(path: str | os.PathLike[str]) -> Any | None:
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{err.lineno}: invalid JSON ({err.msg}, column {err.colno})") from None


# The ablation conditions this run writes (lima.ablations) → the keys in paper_results.yaml. Exact names only:
# a name that is merely *like* a condition (a substring, another spelling) is not that condition.
CONDITION_KEYS = {
    "se_filtered": "se_filtered", "se_unfiltered": "se_unfiltered", "wikihow": "wikihow",
    "zero_shot": "zero_shot", "dialogues": "dialogues",
}


def paper_key(name: str, candidates: list[str] | None = None) -> str | None:
    """The paper key of an ablation condition: an exact name of CONDITION_KEYS (among `candidates`), else None.

    Baselines never go through here: a system gets a paper row only by declaring it (`baseline_rows`).
    """
    key = CONDITION_KEYS.get(str(name))
    return key if key is not None and (candidates is None or key in candidates) else None


def baseline_rows(cfg: Mapping[str, Any]) -> dict[str, str]:
    """system name → the paper baseline row it declares (`paper_row:` in the systems file, validated there).

    Only these systems' numbers go into the paper's rows; every other baseline is a row of its own. A profile
    without a systems file declares nothing.
    """
    from lima.generate.systems import declared_paper_rows, systems_file

    if not systems_file(dict(cfg)).exists():
        return {}
    return declared_paper_rows(dict(cfg))
