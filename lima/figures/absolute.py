"""Fig. 3: Fail / Pass / Excellent shares overall, on out-of-distribution prompts, and on safety prompts.

The paper reports the safety subset only as "answered safely" (80% of 30 prompts), not split into Pass and
Excellent; its safety bar therefore has one hatched "safe" segment rather than an invented split.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lima.figures.style import COLORS, finish, is_smoke, provenance, save_figure, set_theme, stamp
from lima.figures.tables import ABSOLUTE_COLUMNS, paper_results, read_table

SUBSETS = {"all": "All", "ood": "Out of distribution", "safety": "Safety"}
LEVELS = ("fail", "pass", "excellent")


def plot_absolute(run: pd.DataFrame | None, paper: Mapping[str, Any], profile: str, base_model: str,
                  judge: str) -> Figure:
    set_theme()
    fig, ax = plt.subplots(figsize=(10, 5.2))
    width, xticks, xlabels = 0.36, [], []
    run_rows = {} if run is None else {str(r["subset"]): r for _, r in run.iterrows()}
    for g, (subset, title) in enumerate(SUBSETS.items()):
        for k, who in enumerate(("paper", "run")):
            x = g + (k - 0.5) * (width + 0.06)
            xticks.append(x)
            if who == "paper":
                row = paper[subset]
                if subset == "safety":
                    segments = [("fail", 100 - row["safe_percent"], None),
                                ("safe", row["safe_percent"], "//")]
                else:
                    segments = [(lvl, row[lvl], None) for lvl in LEVELS]
                xlabels.append(f"paper\nn={row['n']}")
            else:
                if subset not in run_rows:
                    ax.text(x, 50, "not in\nthis run", ha="center", va="center", fontsize=8, color="#6c757d")
                    xlabels.append("this run\n—")
                    continue
                row = run_rows[subset]
                segments = [(lvl, float(row[lvl]), None) for lvl in LEVELS]
                xlabels.append(f"this run\nn={int(row['n'])}")
            bottom = 0.0
            for level, value, hatch in segments:
                ax.bar(x, value, width, bottom=bottom, color=COLORS[level], hatch=hatch, edgecolor="white")
                if value >= 6:
                    ax.text(x, bottom + value / 2, f"{value:.0f}%", ha="center", va="center", fontsize=8,
                            color="black" if level == "pass" else "white")
                bottom += value
            if who == "run" and subset == "safety":
                safe = float(row["pass"]) + float(row["excellent"])
                ax.text(x, 102, f"safe {safe:.0f}%", ha="center", va="bottom", fontsize=8)
        ax.text(g, -22, title, ha="center", va="top", fontsize=10, fontweight="bold")
    ax.set_xticks(xticks, xlabels, fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_ylabel("% of prompts")
    ax.grid(axis="x", visible=False)
    handles = [Patch(color=COLORS[lvl], label=lvl.capitalize()) for lvl in LEVELS]
    handles.append(Patch(facecolor=COLORS["safe"], hatch="//", edgecolor="white",
                         label="Safe (paper: not split into Pass/Excellent)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    smoke = is_smoke(profile, base_model)
    fig.suptitle(f"Fig. 3 — Absolute ratings (paper: {paper.get('source', 'Fig. 3')}; this run: judge {judge})",
                 y=0.93 if smoke else 0.98)
    stamp(fig, profile, base_model, judge)
    finish(fig, top=0.88 if smoke else 0.94, bottom=0.12)
    return fig


def draw_absolute(cfg: Mapping[str, Any], out_dir: str | Path | None = None) -> dict[str, Path]:
    table_path = Path(cfg["paths"]["results"]) / "tables" / "absolute.csv"
    run = read_table(table_path, ABSOLUTE_COLUMNS)
    prov = provenance(cfg)
    fig = plot_absolute(run, paper_results()["absolute"], **prov)
    out = Path(out_dir) if out_dir else Path(cfg["paths"]["figures"])
    return save_figure(fig, out / "fig3_absolute", config=prov, inputs=[table_path])
