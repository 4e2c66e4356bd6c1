"""Figs. 1 and 2: LIMA vs each baseline, stacked win / tie / loss bars — the paper's beside this run's.

The paper's bars come from lima/resources/paper_results.yaml; this run's from the evaluation tables
(`{results}/tables/preference_human.csv`, `preference_llm.csv`). The two panels never share rows: this
run's baselines (in the smoke profile, tiny local models) are not the paper's systems, and putting them on
one axis would invite a comparison the data cannot support.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lima.figures.style import COLORS, finish, is_smoke, provenance, save_figure, set_theme, stamp
from lima.figures.tables import PREFERENCE_COLUMNS, paper_results, read_table

SEGMENTS = ("win", "tie", "loss")
LEGEND = {"win": "LIMA wins", "tie": "tie", "loss": "LIMA loses"}


def _stacked_rows(ax: Axes, labels: list[str], values: np.ndarray, errors: np.ndarray | None = None) -> None:
    """Horizontal 100% bars, first row on top; `errors` = (n, 2) win CI (low, high) drawn at the win edge."""
    y = np.arange(len(labels))[::-1]
    left = np.zeros(len(labels))
    for j, seg in enumerate(SEGMENTS):
        ax.barh(y, values[:, j], left=left, color=COLORS[seg], edgecolor="white", height=0.65, label=LEGEND[seg])
        for yi, lo, width in zip(y, left, values[:, j], strict=True):
            if width >= 7:
                ax.text(lo + width / 2, yi, f"{width:.0f}", ha="center", va="center", fontsize=9,
                        color="black" if seg == "tie" else "white")
        left = left + values[:, j]
    if errors is not None:
        win = values[:, 0]
        ok = ~np.isnan(errors).any(axis=1)
        ax.errorbar(win[ok], y[ok] - 0.24, xerr=np.abs(np.vstack([win[ok] - errors[ok, 0], errors[ok, 1] - win[ok]])),
                    fmt="none", ecolor="black", elinewidth=1, capsize=3, label="95% CI (win)")
    ax.set_yticks(y, labels)
    n = len(labels)
    ax.set_ylim(n - 0.5 - max(n, 4), n - 0.5)   # same bar thickness whether 1 baseline or 5
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of prompts")
    ax.grid(axis="y", visible=False)


def _empty_panel(ax: Axes, message: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, wrap=True, transform=ax.transAxes,
            bbox={"boxstyle": "round,pad=0.8", "facecolor": "#f8f9fa", "edgecolor": "#adb5bd"})


def plot_preference(run: pd.DataFrame | None, paper: Mapping[str, Any], title: str, run_title: str,
                    profile: str, base_model: str, judge: str, empty_message: str) -> Figure:
    """Left: the paper's bars; right: this run's (with win CIs), or an honest note when there are none."""
    set_theme()
    paper_rows = paper["baselines"]
    n_rows = max(len(paper_rows), 0 if run is None else len(run))
    fig, (ax_paper, ax_run) = plt.subplots(1, 2, figsize=(12, 1.6 + 0.55 * n_rows))
    labels = [row.get("label", key) for key, row in paper_rows.items()]
    values = np.array([[row[s] for s in SEGMENTS] for row in paper_rows.values()], dtype=float)
    _stacked_rows(ax_paper, labels, values)
    caveat = "" if paper.get("confirmed", True) else " — breakdown unconfirmed"
    ax_paper.set_title(f"Paper — {paper.get('judge', '')}, {paper.get('source', '')}{caveat}", fontsize=10)
    if run is None or run.empty:
        _empty_panel(ax_run, empty_message)
    else:
        run_labels = [f"{b} (n={int(n)})" for b, n in zip(run["baseline"], run["n"], strict=True)]
        run_values = run[list(SEGMENTS)].to_numpy(dtype=float)
        errors = run[["win_low", "win_high"]].to_numpy(dtype=float)
        _stacked_rows(ax_run, run_labels, run_values, errors)
        ax_run.set_title(run_title, fontsize=10)
    handles, legend_labels = ax_paper.get_legend_handles_labels()
    fig.legend(handles, legend_labels, loc="lower center", ncol=3, bbox_to_anchor=(0.5, 0.035), frameon=False)
    fig.suptitle(title, y=0.93 if is_smoke(profile, base_model) else 0.98)
    stamp(fig, profile, base_model, judge)
    finish(fig, top=0.88 if is_smoke(profile, base_model) else 0.94, bottom=0.2)
    return fig


def draw_preference(cfg: Mapping[str, Any], kind: str, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Fig. 1 (`kind="human"`) or Fig. 2 (`kind="llm"`) from this run's table, saved as PNG + PDF."""
    if kind not in ("human", "llm"):
        raise ValueError(f"kind must be 'human' or 'llm', got {kind!r}")
    paths = cfg["paths"]
    table_path = Path(paths["results"]) / "tables" / f"preference_{kind}.csv"
    run = read_table(table_path, PREFERENCE_COLUMNS)
    prov = provenance(cfg)
    paper = paper_results()[f"preference_{kind}"]
    if kind == "human":
        fig = plot_preference(
            run, paper, "Fig. 1 — Human preference: LIMA vs baselines",
            f"This run: human annotators (profile {prov['profile']})", **prov,
            empty_message="No human annotations collected in this run.\n\n"
                          "Nothing is simulated here: collect them with\n`python -m lima annotate`, "
                          "then re-run notebook 05.")
        stem = "fig1_human_preference"
    else:
        fig = plot_preference(
            run, paper, "Fig. 2 — LLM-judge preference: LIMA vs baselines",
            f"This run: judge {prov['judge']} (profile {prov['profile']})", **prov,
            empty_message=f"No LLM-judge table in this run\n({table_path.name} not found).")
        stem = "fig2_llm_preference"
    out = Path(out_dir) if out_dir else Path(paths["figures"])
    return save_figure(fig, out / stem, config=prov, inputs=[table_path])
