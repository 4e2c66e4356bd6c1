"""The paper's figures (seaborn/matplotlib), drawn from this run's tables beside the paper's numbers.

Modules: `style` (theme, provenance stamp, smoke banner, atomic PNG + PDF saving), `preference` (Figs. 1–2),
`absolute` (Fig. 3), `checkpoints` (Fig. 9), `ablations` (Figs. 5–7), `token_shift` (the superficial-alignment
figure), `tables` (reading the paper's numbers and the run's table contracts). Submodules are imported on
use, so `import lima.figures` stays cheap for code that only needs one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def draw_paper_figures(cfg: Mapping[str, Any]) -> dict[str, dict[str, Path]]:
    """Figs. 1, 2, 3 and 9 (notebook 06): name → {"png": path, "pdf": path}."""
    from lima.figures.absolute import draw_absolute
    from lima.figures.checkpoints import draw_checkpoints
    from lima.figures.preference import draw_preference

    return {"fig1": draw_preference(cfg, "human"), "fig2": draw_preference(cfg, "llm"),
            "fig3": draw_absolute(cfg), "fig9": draw_checkpoints(cfg)}


def draw_ablation_figures(cfg: Mapping[str, Any]) -> dict[str, dict[str, Path]]:
    """Figs. 5, 6 and 7 from `{results}/ablations/*.csv` (each must exist)."""
    from lima.figures.ablations import draw_diversity_quality, draw_multiturn, draw_quantity

    return {"fig5": draw_diversity_quality(cfg), "fig6": draw_quantity(cfg), "fig7": draw_multiturn(cfg)}
