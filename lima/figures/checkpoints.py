"""Fig. 9: dev-set perplexity against dev-set response quality across the saved checkpoints.

The paper's point (§3, appendix) is that held-out perplexity does not track generation quality — perplexity
rises while quality improves — which is why it picked a checkpoint by hand. When this run has no quality
score for the checkpoints (`dev_quality` null), the figure shows perplexity alone and says so, rather than
drawing a quality line from nothing. Under the axes the figure states why the selection rule picked its
checkpoint (`selection_reason`): the picked epoch's dev quality against the best, and where perplexity alone
would have pointed. Dev quality here is the reference judge's mean helpfulness over the dev prompts
(`lima.judge.dev_quality`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from lima.figures.style import COLORS, finish, is_smoke, provenance, save_figure, set_theme, stamp
from lima.figures.tables import read_checkpoints, read_json


def selection_reason(checkpoints: list[dict[str, Any]] | None, selected: Mapping[str, Any] | None) -> str:
    """Why the rule picked its checkpoint, in numbers from `checkpoints.json` (shown on Fig. 9 and in notebooks).

    States the rule, the picked epoch's dev quality and perplexity, and where perplexity alone would have
    pointed, so the figure shows whether perplexity and quality agree on the pick.
    """
    if not checkpoints or not selected:
        return "no selection recorded"
    by_epoch = {c["epoch"]: c for c in checkpoints}
    pick = by_epoch.get(selected.get("epoch"))
    rule = str(selected.get("rule", "?"))
    if pick is None:
        return f"selected epoch {selected.get('epoch')} ({rule}) is not among the saved checkpoints"
    text = f"selected epoch {pick['epoch']} by rule '{rule}'"
    quality = [(c["epoch"], c["dev_quality"]) for c in checkpoints if c.get("dev_quality") is not None]
    if pick.get("dev_quality") is not None and quality:
        best = max(q for _, q in quality)
        ties = [e for e, q in quality if q == best]
        text += f": dev quality {pick['dev_quality']:.2f} (best {best:.2f} at epoch(s) {ties}"
        text += "; ties go to the earlier epoch)" if len(ties) > 1 else ")"
    ppl = [(c["epoch"], c["dev_perplexity"]) for c in checkpoints if c.get("dev_perplexity") is not None]
    if ppl and pick.get("dev_perplexity") is not None:
        low_epoch, low = min(ppl, key=lambda p: p[1])
        text += (f"; dev perplexity {pick['dev_perplexity']:.1f} there, lowest {low:.1f} at epoch {low_epoch}"
                 + (" — perplexity alone would have picked the same" if low_epoch == pick["epoch"]
                    else " — perplexity alone would have picked differently"))
    return text


NO_QUALITY = "dev quality not measured for these checkpoints (dev_quality is null): perplexity only"


def plot_checkpoints(checkpoints: list[dict[str, Any]] | None, selected: Mapping[str, Any] | None,
                     profile: str, base_model: str, judge: str) -> Figure:
    set_theme()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    if not checkpoints:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "No checkpoints.json in this run (notebook 03 not run?)", ha="center", va="center",
                transform=ax.transAxes)
    else:
        epochs = [c["epoch"] for c in checkpoints]
        ppl = [c.get("dev_perplexity") for c in checkpoints]
        quality = [c.get("dev_quality") for c in checkpoints]
        ax.plot(epochs, ppl, "o-", color=COLORS["loss"], label="dev perplexity")
        ax.set_xlabel("epoch")
        ax.set_ylabel("dev perplexity", color=COLORS["loss"])
        ax.set_xticks(epochs)
        have_quality = any(q is not None for q in quality)
        handles, labels = ax.get_legend_handles_labels()
        if have_quality:
            ax2 = ax.twinx()
            pts = [(e, q) for e, q in zip(epochs, quality, strict=True) if q is not None]
            ax2.plot([p[0] for p in pts], [p[1] for p in pts], "s--", color=COLORS["win"], label="dev quality")
            ax2.set_ylabel("dev quality (judge grade)", color=COLORS["win"])
            ax2.grid(False)
            h2, l2 = ax2.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
            if len(pts) < len(epochs):
                ax.text(0.01, 0.02, f"quality missing for {len(epochs) - len(pts)} checkpoint(s)",
                        transform=ax.transAxes, fontsize=8, color="#6c757d")
        else:
            ax.text(0.5, 0.95, NO_QUALITY, transform=ax.transAxes, ha="center", va="top", fontsize=8.5,
                    bbox={"boxstyle": "round", "facecolor": "#fff3cd", "edgecolor": "#ffc107"})
        if selected and selected.get("epoch") in epochs:
            line = ax.axvline(selected["epoch"], color="#6c757d", ls=":",
                              label=f"selected (epoch {selected['epoch']}, rule: {selected.get('rule', '?')})")
            handles, labels = handles + [line], labels + [line.get_label()]
            ax.text(0.01, -0.2, "\n".join(textwrap.wrap(selection_reason(checkpoints, selected), 110)),
                    transform=ax.transAxes, fontsize=8, va="top", color="#333333")
        ax.legend(handles, labels, loc="lower right", fontsize=8)
    smoke = is_smoke(profile, base_model)
    fig.suptitle("Fig. 9 — Dev perplexity vs dev quality across checkpoints", y=0.93 if smoke else 0.98)
    stamp(fig, profile, base_model, judge)
    finish(fig, top=0.88 if smoke else 0.94, bottom=0.2)
    return fig


def draw_checkpoints(cfg: Mapping[str, Any], run_name: str = "lima", out_dir: str | Path | None = None
                     ) -> dict[str, Path]:
    run_dir = Path(cfg["paths"]["models"]) / run_name
    checkpoints = read_checkpoints(run_dir / "checkpoints.json")
    selected = read_json(run_dir / "selected.json")
    prov = provenance(cfg)
    fig = plot_checkpoints(checkpoints, selected, **prov)
    out = Path(out_dir) if out_dir else Path(cfg["paths"]["figures"])
    return save_figure(fig, out / "fig9_checkpoints", config=prov,
                       inputs=[run_dir / "checkpoints.json", run_dir / "selected.json"])
