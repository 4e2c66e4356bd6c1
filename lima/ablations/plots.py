"""Figs. 5–7 from the ablation tables, through `lima.figures.ablations` (the figures' one look and stamp).

Notebooks run with `notebooks/` as working directory while profile paths are relative to the repository
root, so the paths are resolved here before the figure code reads the tables.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lima.config import resolve

FIGURES = {"diversity_quality": "draw_diversity_quality", "quantity": "draw_quantity", "multiturn": "draw_multiturn"}


def with_resolved_paths(cfg: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(cfg))
    out["paths"] = {k: str(resolve(v)) for k, v in (cfg.get("paths") or {}).items()}
    return out


def draw(cfg: Mapping[str, Any], which: str) -> dict[str, Path]:
    """Draw one ablation figure into `{figures}` (PNG + PDF); returns {"png": path, "pdf": path}."""
    from lima.figures import ablations as figures

    if which not in FIGURES:
        raise ValueError(f"figure must be one of {sorted(FIGURES)}, got {which!r}")
    return getattr(figures, FIGURES[which])(with_resolved_paths(cfg))
