"""Figs. 5–7 from the ablation tables, through `lima.figures.ablations` (the figures' one look and stamp).

`load_profile` makes every `paths.*` entry absolute, so the figure code reads the tables wherever the
notebook runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

FIGURES = {"diversity_quality": "draw_diversity_quality", "quantity": "draw_quantity", "multiturn": "draw_multiturn"}


def draw(cfg: Mapping[str, Any], which: str) -> dict[str, Path]:
    """Draw one ablation figure into `{figures}` (PNG + PDF); returns {"png": path, "pdf": path}."""
    from lima.figures import ablations as figures

    if which not in FIGURES:
        raise ValueError(f"figure must be one of {sorted(FIGURES)}, got {which!r}")
    return getattr(figures, FIGURES[which])(dict(cfg))
