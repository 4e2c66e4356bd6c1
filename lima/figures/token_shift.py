"""The superficial-alignment figure: how far the aligned model's tokens sit from the base model's choice.

Six panels: the unshifted / marginal / shifted shares, the shift rate by position in the response, the
tokens most often shifted, URIAL vs SFT response lengths (or a note when this run has no URIAL outputs), the
shares by token class (EOT, style, fact, other) and the shifted rate of style vs fact and early vs late tokens
with 95% intervals that resample prompts (issue 10).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lima.figures.style import COLORS, finish, is_smoke, provenance, save_figure, set_theme, stamp

SHIFT_COLORS = {"unshifted": COLORS["win"], "marginal": COLORS["pass"], "shifted": COLORS["loss"]}


def plot_token_shift(summary: Mapping[str, Any], comparison: Mapping[str, Any] | None, profile: str,
                     base_model: str, judge: str) -> Figure:
    set_theme()
    fig, axes = plt.subplots(2, 3, figsize=(17, 8.5))
    (ax_share, ax_pos, ax_cls), (ax_tok, ax_len, ax_rate) = axes
    plot_classes(ax_cls, ax_rate, summary.get("classes") or {})
    shares = summary.get("shares") or {}
    names = [c for c in SHIFT_COLORS if shares.get(c) is not None]
    values = [100 * shares[c] for c in names]
    ax_share.bar(names, values, color=[SHIFT_COLORS[c] for c in names])
    for i, v in enumerate(values):
        ax_share.text(i, v + 1, f"{v:.1f}%", ha="center", va="bottom")
    ax_share.set_ylim(0, 105)
    ax_share.set_ylabel("% of response tokens")
    ax_share.set_title(f"Base-model rank of aligned tokens (n={summary.get('n_positions', 0)} tokens, "
                       f"{summary.get('n_responses', 0)} responses)", fontsize=9)
    ax_share.set_xticks(range(len(names)), ["unshifted\n(rank 1)", "marginal\n(rank 2–3)", "shifted\n(rank > 3)"]
                        [: len(names)])

    pos = pd.DataFrame(summary.get("position_shift_rate") or [])
    if not pos.empty:
        mid = (pos["bin_start"] + pos["bin_end"]) / 2
        ax_pos.plot(mid, 100 * pos["shifted_rate"], "o-", color=SHIFT_COLORS["shifted"], label="shifted")
        ax_pos.plot(mid, 100 * pos["unshifted_rate"], "s-", color=SHIFT_COLORS["unshifted"], label="unshifted")
        ax_pos.legend(fontsize=8)
    ax_pos.set_xlabel("token position in the response")
    ax_pos.set_ylabel("% of tokens at that position")
    ax_pos.set_ylim(0, 100)
    ax_pos.set_title("Where the shifts happen", fontsize=9)

    tokens = pd.DataFrame(summary.get("top_shifted_tokens") or []).head(15)
    if tokens.empty:
        ax_tok.set_axis_off()
        ax_tok.text(0.5, 0.5, "no shifted tokens", ha="center", va="center", transform=ax_tok.transAxes)
    else:
        y = range(len(tokens))[::-1]
        ax_tok.barh(list(y), tokens["n_shifted"], color=SHIFT_COLORS["shifted"])
        ax_tok.set_yticks(list(y), [f"{t!s}  ({r:.0%} of {n})" for t, r, n in
                                    zip(tokens["token"], tokens["shift_rate"], tokens["n_total"], strict=True)],
                          fontsize=8)
        ax_tok.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_tok.set_xlabel("times shifted (rank > 3)")
        ax_tok.grid(axis="y", visible=False)
    ax_tok.set_title("Most frequently shifted tokens (␣ = space, ⏎ = newline)", fontsize=9)

    lengths = (comparison or {}).get("lengths") or {}
    missing = (comparison or {}).get("missing") or []
    if len(lengths) >= 1 and any(lengths.values()):
        data = [v for v in lengths.values() if v]
        labels = [k for k, v in lengths.items() if v]
        ax_len.boxplot(data, tick_labels=labels, showmeans=True)
        ax_len.set_ylabel("response length (characters)")
        title = "URIAL (base + 3 in-context examples) vs SFT: response length"
        if missing:
            title += f"\n(no responses for: {', '.join(missing)})"
        ax_len.set_title(title, fontsize=9)
    else:
        ax_len.set_axis_off()
        ax_len.text(0.5, 0.5, "No URIAL / SFT responses in this run", ha="center", va="center",
                    transform=ax_len.transAxes)
    smoke = is_smoke(profile, base_model)
    fig.suptitle("Superficial Alignment Hypothesis: token distribution shift (URIAL-style, beyond the paper)",
                 y=0.95 if smoke else 0.985)
    stamp(fig, profile, base_model, judge)
    finish(fig, top=0.92 if smoke else 0.96, bottom=0.06)
    return fig


def plot_classes(ax_cls: Any, ax_rate: Any, classes: Mapping[str, Any]) -> None:
    """Stacked shares per token class, and the shifted rates (style/EOT, fact, early, late) with their CIs."""
    rows = [r for r in classes.get("by_class") or [] if r.get("n")]
    if not rows:
        for ax in (ax_cls, ax_rate):
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no token classes in this summary", ha="center", va="center", transform=ax.transAxes)
        return
    bottom = [0.0] * len(rows)
    labels = [f"{r['token_class']}\n(n={r['n']})" for r in rows]
    for cat, color in SHIFT_COLORS.items():
        vals = [100 * (r[cat] or 0.0) for r in rows]
        ax_cls.bar(labels, vals, bottom=bottom, color=color, label=cat)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax_cls.set_ylim(0, 105)
    ax_cls.set_ylabel("% of the class's tokens")
    ax_cls.legend(fontsize=7, loc="lower right")
    ax_cls.set_title("Shift by token class (greedy LIMA)", fontsize=9)
    names = {"style_eot": "style+EOT", "fact": "fact", "other": "other",
             "early": f"first {classes.get('early_tokens', '?')}", "late": "later"}
    rates = classes.get("rates") or {}
    keys = [k for k in names if (rates.get(k) or {}).get("shifted_rate") is not None]
    vals = [100 * rates[k]["shifted_rate"] for k in keys]
    err = [[v - 100 * (rates[k]["ci_low"] if rates[k]["ci_low"] is not None else rates[k]["shifted_rate"])
            for k, v in zip(keys, vals, strict=True)],
           [100 * (rates[k]["ci_high"] if rates[k]["ci_high"] is not None else rates[k]["shifted_rate"]) - v
            for k, v in zip(keys, vals, strict=True)]]
    ax_rate.bar([names[k] for k in keys], vals, yerr=err, capsize=4, color=SHIFT_COLORS["shifted"])
    ax_rate.set_ylabel("% shifted (rank > 3)")
    ax_rate.set_title(f"Shifted rate, 95% CI over {classes.get('n_prompts', 0)} prompts", fontsize=9)


def draw_token_shift(cfg: Mapping[str, Any], summary: Mapping[str, Any], comparison: Mapping[str, Any] | None,
                     out_dir: str | Path | None = None) -> dict[str, Path]:
    prov = provenance(cfg)
    prov["judge"] = "none (no judge: base-model ranks)"
    fig = plot_token_shift(summary, comparison, **prov)
    out = Path(out_dir) if out_dir else Path(cfg["paths"]["figures"])
    results = Path(cfg["paths"]["results"])
    return save_figure(fig, out / "fig_superficial_token_shift", config=prov,
                       inputs=[results / "superficial" / "token_shift.csv"])
