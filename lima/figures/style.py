"""One look for every figure, and the provenance line that keeps a smoke figure from passing for a result.

Every figure this repo draws says which profile, base model and judge produced it (`stamp`). Figures from
the smoke/test profiles (synthetic data, a tiny randomly initialised Llama) also carry a banner and a
diagonal watermark, because a bar chart cropped from a README loses its caption but not its pixels.
`save_figure` refuses an unstamped figure for the same reason.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (CI, papermill, headless machines)

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lima.io import atomic_write, write_manifest  # noqa: E402

SMOKE_PROFILES = frozenset({"smoke", "test"})
SMOKE_BANNER = "SMOKE PROFILE — synthetic data, tiny model: not a paper result"
WORLD_BANNER = "LIMA world — synthetic, reference judge: not a paper result"

# Fail / Pass / Excellent and win / tie / loss colours, shared so the figures read as one set.
COLORS = {
    "win": "#2a9d8f", "tie": "#bfc5cc", "loss": "#e76f51",
    "excellent": "#2a9d8f", "pass": "#e9c46a", "fail": "#e76f51", "safe": "#8ab17d",
    "paper": "#6c757d", "ours": "#264653",
}


def set_theme() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1,
                  rc={"figure.dpi": 110, "savefig.dpi": 150, "axes.titleweight": "bold",
                      "pdf.fonttype": 42})


def provenance(cfg: Mapping[str, Any]) -> dict[str, str]:
    """profile, base model and judge of a loaded profile: the three labels every figure states."""
    judge = cfg.get("judge") or {}
    return {
        "profile": str(cfg.get("profile", "?")),
        "base_model": str((cfg.get("model") or {}).get("base", "?")),
        "judge": str(judge.get("model", "?")),
    }


def is_smoke(profile: str, base_model: str | None = None) -> bool:
    """A figure is "smoke" if its profile is a smoke one or its base model is the tiny local Llama."""
    return profile in SMOKE_PROFILES or (base_model or "").startswith("smoke-")


def is_world(base_model: str | None) -> bool:
    """A figure of the LIMA world: its base model was pretrained here on the world's web."""
    return (base_model or "").startswith("world-")


def provenance_line(profile: str, base_model: str, judge: str) -> str:
    return f"profile: {profile}  ·  base model: {base_model}  ·  judge: {judge}"


def stamp(fig: Figure, profile: str, base_model: str, judge: str) -> Figure:
    """Write the provenance line at the bottom; smoke figures also get a red banner and a watermark."""
    fig.text(0.5, 0.005, provenance_line(profile, base_model, judge), ha="center", va="bottom",
             fontsize=8, color="#444444")
    smoke = is_smoke(profile, base_model) and not is_world(base_model)
    if is_world(base_model):
        fig.text(0.5, 0.995, WORLD_BANNER, ha="center", va="top", fontsize=9, fontweight="bold",
                 color="white", bbox={"boxstyle": "square,pad=0.3", "facecolor": "#1d3557", "edgecolor": "none"})
    elif smoke:
        fig.text(0.5, 0.995, SMOKE_BANNER, ha="center", va="top", fontsize=9, fontweight="bold",
                 color="white", bbox={"boxstyle": "square,pad=0.3", "facecolor": "#c1121f", "edgecolor": "none"})
        fig.text(0.5, 0.5, "SMOKE — NOT A RESULT", ha="center", va="center", rotation=25, fontsize=38,
                 color="#c1121f", alpha=0.10, fontweight="bold", zorder=0)
    fig._lima_stamp = {"profile": profile, "base_model": base_model, "judge": judge,  # type: ignore[attr-defined]
                       "smoke": smoke, "world": is_world(base_model)}
    return fig


def stamp_cfg(fig: Figure, cfg: Mapping[str, Any]) -> Figure:
    return stamp(fig, **provenance(cfg))


def finish(fig: Figure, top: float = 0.90, bottom: float = 0.10) -> None:
    """Leave room for the banner (top) and the provenance line (bottom)."""
    fig.tight_layout(rect=(0.0, bottom * 0.5, 1.0, top))


def save_figure(fig: Figure, path_stem: str | os.PathLike[str], config: Any = None,
                inputs: Iterable[str | os.PathLike[str]] = (), extra: dict[str, Any] | None = None,
                close: bool = True) -> dict[str, Path]:
    """Write `<stem>.png` and `<stem>.pdf`, each atomically, each with a manifest; returns both paths."""
    label = getattr(fig, "_lima_stamp", None)
    if label is None:
        raise ValueError(f"{path_stem}: figure has no provenance stamp; call lima.figures.style.stamp() first")
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    inputs = [Path(p) for p in inputs]
    title = getattr(fig, "_suptitle", None)
    if title is not None and (label.get("world") or label.get("smoke")):   # keep the title clear of the banner
        title.set_y(min(title.get_position()[1], 0.955))
        title.set_va("top")
    for fmt in ("png", "pdf"):
        path = stem.with_name(stem.name + f".{fmt}")
        buffer = io.BytesIO()
        # a fixed creation date keeps the PDF bytes stable across reruns of the same data
        metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
        fig.savefig(buffer, format=fmt, metadata=metadata)
        with atomic_write(path, "wb") as handle:
            handle.write(buffer.getvalue())
        write_manifest(path, config=config, inputs=inputs, extra={"figure": stem.name, **label, **(extra or {})})
        out[fmt] = path
    if close:
        plt.close(fig)
    return out
