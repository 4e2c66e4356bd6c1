"""Figs. 5, 6 and 7: the ablations (diversity vs quality, quantity, multi-turn dialogue).

Plot functions take this run's ablation tables (the CSV contracts in `{results}/ablations/`) and draw the
paper's published values beside them where the paper has any: Fig. 5 has three means, Fig. 6 has none (the
curve is flat and per-size values were not published), Fig. 7 has two Fail/Pass/Excellent breakdowns.
The ablations use their own base model (`ablations.base`) and the helpfulness grader
(`judge.helpfulness_model`), so that is what these figures state. In the LIMA world Figs. 5 and 6 gain a
panel of the per-response world metrics (style vs substance), and Fig. 7's turns are graded by each turn's
script rubric; every interval drawn resamples prompts (Figs. 5, 6) or conversations (Fig. 7).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lima.ablations.world_metrics import KINDS, LABELS, METRIC_COLUMNS
from lima.figures.style import COLORS, finish, is_smoke, save_figure, set_theme, stamp
from lima.figures.tables import (
    DIVERSITY_COLUMNS,
    MULTITURN_COLUMNS,
    QUANTITY_COLUMNS,
    paper_key,
    paper_results,
    read_table,
)


def ablation_provenance(cfg: Mapping[str, Any], grader: str = "helpfulness") -> dict[str, str]:
    """The ablations' own base model; the helpfulness grader (Figs. 5/6) or the rating judge (Fig. 7)."""
    judge = cfg.get("judge") or {}
    model = (cfg.get("ablations") or {}).get("base") or (cfg.get("model") or {}).get("base", "?")
    name = judge.get("helpfulness_model") if grader == "helpfulness" else judge.get("model")
    return {"profile": str(cfg.get("profile", "?")), "base_model": str(model), "judge": str(name or "?")}


def _title(fig: Figure, text: str, profile: str, base_model: str, judge: str, bottom: float = 0.1) -> None:
    smoke = is_smoke(profile, base_model)
    fig.suptitle(text, y=0.93 if smoke else 0.98)
    stamp(fig, profile, base_model, judge)
    finish(fig, top=0.88 if smoke else 0.94, bottom=bottom)


METRIC_COLORS = {"format_compliance": "#e9c46a", "fact_accuracy": "#2a9d8f", "procedure_accuracy": "#264653"}


def _metrics_panel(ax: Any, metrics: pd.DataFrame, conditions: list[str]) -> None:
    """Grouped bars: one group per condition, one bar per world metric, each with its prompt-level 95% CI."""
    names = [m for m in KINDS if m in set(metrics["metric"])]
    width = 0.8 / max(len(names), 1)
    for j, metric in enumerate(names):
        sub = metrics[metrics["metric"] == metric].set_index("condition").reindex(conditions)
        x = np.arange(len(conditions)) + (j - (len(names) - 1) / 2) * width
        means = sub["mean"].to_numpy(float)
        err = np.abs(np.vstack([means - sub["ci_low"].to_numpy(float), sub["ci_high"].to_numpy(float) - means]))
        ax.bar(x, means, width * 0.95, color=METRIC_COLORS.get(metric, COLORS["ours"]), label=LABELS.get(metric, metric))
        ax.errorbar(x, means, yerr=np.nan_to_num(err), fmt="none", ecolor="black", capsize=3)
    ax.set_xticks(np.arange(len(conditions)), conditions)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("world metric (share, 95% CI over prompts)")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper right", fontsize=7)


def plot_diversity_quality(run: pd.DataFrame, profile: str, base_model: str, judge: str,
                           paper: Mapping[str, Any] | None = None, metrics: pd.DataFrame | None = None) -> Figure:
    """Fig. 5: mean helpfulness (1–6) per training condition with its 95% CI; paper means as diamonds.

    With `metrics` (the world's per-response metrics) a second panel shows substance and style per condition.
    """
    set_theme()
    paper = paper if paper is not None else paper_results()["ablation_diversity_quality"]
    conditions = paper["conditions"]
    if metrics is not None and len(metrics):
        fig, (ax, ax_m) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 1.2]})
        _metrics_panel(ax_m, metrics, [str(c) for c in run["condition"]])
    else:
        fig, ax = plt.subplots(figsize=(8, 4.8))
    x = np.arange(len(run))
    means = run["mean"].to_numpy(float)
    err = np.abs(np.vstack([means - run["ci_low"].to_numpy(float), run["ci_high"].to_numpy(float) - means]))
    ax.bar(x, means, 0.6, color=COLORS["ours"], label="this run (mean, 95% CI over prompts)")
    ax.errorbar(x, means, yerr=err, fmt="none", ecolor="black", capsize=5)
    labels = []
    shown_paper = False
    for i, row in enumerate(run.itertuples(index=False)):
        key = paper_key(str(row.condition), list(conditions))
        labels.append(f"{row.condition}\n{int(row.n_examples)} ex., n={int(row.n)}")
        ax.text(i, row.ci_high + 0.08, f"{row.mean:.2f}", ha="center", va="bottom", fontsize=9)
        if key is not None:
            ax.scatter([i + 0.22], [conditions[key]["mean"]], marker="D", s=55, color=COLORS["paper"], zorder=5,
                       label=None if shown_paper else "paper (7B, 2,000 ex.)")
            ax.text(i + 0.3, conditions[key]["mean"], f"{conditions[key]['mean']:.2f}", va="center", fontsize=8,
                    color=COLORS["paper"])
            shown_paper = True
    ax.set_xticks(x, labels)
    ax.set_ylim(1, 6.4)
    ax.set_ylabel("helpfulness grade (1–6)")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper right", fontsize=8)
    _title(fig, f"Fig. 5 — Diversity vs quality ({paper.get('source', 'Fig. 5')})", profile, base_model, judge)
    return fig


def _curves_panel(ax: Any, curves: pd.DataFrame) -> None:
    """Style and substance as separate curves against size (log2), each with its prompt-level 95% CI band."""
    for metric, kind in KINDS.items():
        sub = curves[(curves["metric"] == metric) & (curves["n_prompts"] > 0)].sort_values("size")
        if sub.empty:
            continue
        sizes = sub["size"].to_numpy(float)
        color = METRIC_COLORS.get(metric, COLORS["ours"])
        ax.fill_between(sizes, sub["ci_low"], sub["ci_high"], color=color, alpha=0.18)
        ax.plot(sizes, sub["mean"], "o-" if kind == "substance" else "s--", color=color,
                label=f"{LABELS.get(metric, metric)}, n={int(sub['n_prompts'].iloc[0])}")
    sizes = sorted(set(curves["size"].astype(int)))
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
    ax.minorticks_off()
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("training examples (log2 scale)")
    ax.set_ylabel("world metric (share, 95% CI over prompts)")
    ax.legend(loc="lower right", fontsize=7)


def plot_quantity(run: pd.DataFrame, profile: str, base_model: str, judge: str,
                  curves: pd.DataFrame | None = None) -> Figure:
    """Fig. 6: mean helpfulness against the number of training examples (log2 axis) with a 95% CI band.

    With `curves` (the world metrics per size) a second panel draws style and substance as separate curves.
    """
    set_theme()
    run = run.sort_values("size")
    if curves is not None and len(curves):
        fig, (ax, ax_c) = plt.subplots(1, 2, figsize=(13, 4.8))
        _curves_panel(ax_c, curves)
    else:
        fig, ax = plt.subplots(figsize=(8, 4.8))
    sizes = run["size"].to_numpy(float)
    ax.fill_between(sizes, run["ci_low"], run["ci_high"], color=COLORS["ours"], alpha=0.2,
                    label="95% CI over prompts")
    ax.plot(sizes, run["mean"], "o-", color=COLORS["ours"], label="this run (mean)")
    for s, m, n in zip(sizes, run["mean"], run["n"], strict=True):
        ax.annotate(f"{m:.2f}\n(n={int(n)})", (s, m), textcoords="offset points", xytext=(0, 8), ha="center",
                    fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [f"{int(s):,}" for s in sizes])
    ax.minorticks_off()
    ax.set_ylim(1, 6.4)
    ax.set_xlabel("training examples (filtered Stack Exchange, log2 scale)")
    ax.set_ylabel("helpfulness grade (1–6)")
    ax.text(0.01, 0.02, "paper (Fig. 6): flat from 2k to 32k; per-size values not published",
            transform=ax.transAxes, fontsize=8, color=COLORS["paper"])
    ax.legend(loc="upper right", fontsize=8)
    _title(fig, "Fig. 6 — Quantity: doubling the data", profile, base_model, judge)
    return fig


def plot_multiturn(run: pd.DataFrame, profile: str, base_model: str, judge: str,
                   paper: Mapping[str, Any] | None = None) -> Figure:
    """Fig. 7: Fail / Pass / Excellent shares of assistant turns, zero-shot vs with dialogues, paper beside."""
    set_theme()
    paper = paper if paper is not None else paper_results()["multiturn"]
    bars: list[tuple[str, dict[str, float], bool]] = []
    for key in ("zero_shot", "dialogues"):
        row = paper[key]
        bars.append((f"paper: {row['label']}\n{row['turns']} turns", row, True))
    for row in run.to_dict("records"):
        bars.append((f"this run: {row['condition']}\n{int(row['turns'])} turns", row, False))
    fig, ax = plt.subplots(figsize=(9, 1.8 + 0.6 * len(bars)))
    y = np.arange(len(bars))[::-1]
    for yi, (_, row, is_paper) in zip(y, bars, strict=True):
        left = 0.0
        for level in ("excellent", "pass", "fail"):
            value = float(row[level])
            ax.barh(yi, value, left=left, color=COLORS[level], edgecolor="white", height=0.65,
                    alpha=0.6 if is_paper else 1.0)
            if value >= 6:
                ax.text(left + value / 2, yi, f"{value:.1f}", ha="center", va="center", fontsize=8,
                        color="black" if level == "pass" else "white")
            left += value
        if not is_paper and "excellent_ci_low" in row and not pd.isna(row["excellent_ci_low"]):
            exc = float(row["excellent"])
            ax.errorbar([exc], [yi], xerr=[[exc - float(row["excellent_ci_low"])],
                                           [float(row["excellent_ci_high"]) - exc]],
                        fmt="none", ecolor="black", capsize=4, lw=1.2)
    ax.set_yticks(y, [b[0] for b in bars], fontsize=9)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of assistant turns")
    ax.grid(axis="y", visible=False)
    handles = [Patch(color=COLORS[lvl], label=lvl.capitalize()) for lvl in ("excellent", "pass", "fail")]
    handles.append(Patch(facecolor=COLORS["excellent"], alpha=0.6, label="lighter: paper (10 live chats)"))
    if "excellent_ci_low" in run.columns:
        handles.append(plt.Line2D([], [], color="black", marker="|", ls="-",
                                  label="Excellent share, 95% CI\n(resampling conversations)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    _title(fig, f"Fig. 7 — Multi-turn dialogue ({paper.get('source', 'Fig. 7')})", profile, base_model, judge)
    return fig


def _out(cfg: Mapping[str, Any], out_dir: str | Path | None) -> Path:
    return Path(out_dir) if out_dir else Path(cfg["paths"]["figures"])


def draw_diversity_quality(cfg: Mapping[str, Any], out_dir: str | Path | None = None) -> dict[str, Path]:
    path = Path(cfg["paths"]["results"]) / "ablations" / "diversity_quality.csv"
    run = read_table(path, DIVERSITY_COLUMNS, required=True)
    metrics_file = path.with_name("diversity_quality_metrics.csv")
    metrics = read_table(metrics_file, ["condition", *METRIC_COLUMNS])
    prov = ablation_provenance(cfg)
    return save_figure(plot_diversity_quality(run, **prov, metrics=metrics),
                       _out(cfg, out_dir) / "fig5_diversity_quality", config=prov,
                       inputs=[path] + ([metrics_file] if metrics is not None else []))


def draw_quantity(cfg: Mapping[str, Any], out_dir: str | Path | None = None) -> dict[str, Path]:
    path = Path(cfg["paths"]["results"]) / "ablations" / "quantity.csv"
    run = read_table(path, QUANTITY_COLUMNS, required=True)
    curves_file = path.with_name("quantity_metrics.csv")
    curves = read_table(curves_file, ["size", *METRIC_COLUMNS])
    prov = ablation_provenance(cfg)
    return save_figure(plot_quantity(run, **prov, curves=curves), _out(cfg, out_dir) / "fig6_quantity",
                       config=prov, inputs=[path] + ([curves_file] if curves is not None else []))


def draw_multiturn(cfg: Mapping[str, Any], out_dir: str | Path | None = None) -> dict[str, Path]:
    path = Path(cfg["paths"]["results"]) / "ablations" / "multiturn.csv"
    run = read_table(path, MULTITURN_COLUMNS, required=True)
    prov = ablation_provenance(cfg, grader="rating")
    if "graded_by" in run.columns and (run["graded_by"] == "script rubric").all():
        prov["judge"] = "per-turn script rubric (lima.world.grade)"
    return save_figure(plot_multiturn(run, **prov), _out(cfg, out_dir) / "fig7_multiturn", config=prov,
                       inputs=[path])
