"""The new-knowledge figure (issue 10, item 3): per share of Unknown facts, metrics across epochs with CIs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from lima.figures.style import finish, provenance, save_figure, set_theme, stamp

PANELS = ("held-out fact accuracy", "hallucination rate", "fit: Unknown fine-tune facts")


def plot_new_knowledge(table: pd.DataFrame, profile: str, base_model: str, judge: str) -> Any:
    """One panel per metric: mean per epoch for each share, with its 95% interval over prompts as a band."""
    set_theme()
    fig, axes = plt.subplots(1, len(PANELS), figsize=(15, 4.6), sharex=True)
    colors = plt.get_cmap("viridis")
    shares = sorted(table["share"].unique()) if len(table) else []
    for ax, metric in zip(axes, PANELS, strict=True):
        sub = table[table["metric"] == metric]
        for i, share in enumerate(shares):
            g = sub[sub["share"] == share].sort_values("epoch")
            if g.empty:
                continue
            color = colors(i / max(1, len(shares) - 1))
            ax.plot(g["epoch"], g["mean"], "o-", color=color, label=f"{100 * share:.0f}% Unknown")
            ax.fill_between(g["epoch"], g["ci_low"].clip(0, 1), g["ci_high"].clip(0, 1), color=color, alpha=0.18)
        n = int(sub["n_prompts"].max()) if len(sub) else 0
        ax.set_title(f"{metric}\n(95% CI over prompts, up to {n} prompts)", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("share of prompts")
    fig.suptitle("New knowledge in the fine-tune (Gekhman et al.): facts the base does not know", y=0.99)
    stamp(fig, profile, base_model, judge)
    finish(fig, top=0.82, bottom=0.14)
    return fig


def draw_new_knowledge(cfg: Mapping[str, Any], table: pd.DataFrame, csv: str | Path) -> dict[str, Path]:
    from lima.experiments.runs import figure_stem

    prov = provenance(cfg)
    prov["judge"] = "world grading rules (lima.world.grade)"
    fig = plot_new_knowledge(table, **prov)
    return save_figure(fig, figure_stem(cfg, "new_knowledge"), config=prov, inputs=[csv])
