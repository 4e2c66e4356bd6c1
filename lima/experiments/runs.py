"""What the experiments of issue 10 (extractability, selectors, forgetting) share: where they write, the
recipe they fine-tune with, and the answer → grade step.

Experiment models live under `{models}/experiments/<name>/`, apart from the LIMA run and the ablations, so a
sweep can never overwrite the model the main notebooks evaluate. The recipe is the ablations' (lima.ablations:
smaller-model dropout and batch, last epoch kept, no per-checkpoint judging) with the knobs an experiment
varies set explicitly.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lima.config import resolve


def results_csv(cfg: Mapping[str, Any], name: str) -> Path:
    return resolve(cfg["paths"]["results"]) / "experiments" / f"{name}.csv"


def figure_stem(cfg: Mapping[str, Any], name: str) -> Path:
    return resolve(cfg["paths"]["figures"]) / f"exp_{name}"


def models_root(cfg: Mapping[str, Any], name: str) -> Path:
    return resolve(cfg["paths"]["models"]) / "experiments" / name


def run_name(name: str, condition: str) -> str:
    """`finetune` run name (relative to `{models}`) of one condition of one experiment."""
    return f"experiments/{name}/{condition}"


def recipe(cfg: Mapping[str, Any], epochs: int | None = None, learning_rate: float | None = None,
           save_every_epoch: bool = False) -> dict[str, Any]:
    """The ablation recipe, with `epochs` / `learning_rate` set when given (final lr = lr / 10, the world's
    1e-3 → 1e-4 ratio) and, for `save_every_epoch`, a checkpoint after every epoch."""
    from lima.ablations.common import ablation_profile

    out = ablation_profile(cfg)
    train = out["train"]
    if epochs is not None:
        train["epochs"] = int(epochs)
    if learning_rate is not None:
        train["learning_rate"] = float(learning_rate)
        train["final_learning_rate"] = float(learning_rate) / 10
    if save_every_epoch:
        train["save_epochs"] = list(range(1, int(train["epochs"]) + 1))
    return out


def subset(rows: Sequence[Mapping[str, Any]], n: int | None, seed: int, what: str) -> list[dict[str, Any]]:
    """A seeded subset of n rows kept in file order (None or n ≥ len: all); n < 1 is an error naming `what`."""
    rows = [dict(r) for r in rows]
    if n is None or n >= len(rows):
        return rows
    if n < 1:
        raise ValueError(f"{what}: asked for {n} rows")
    keep = set(random.Random(f"{seed}:{what}").sample(range(len(rows)), n))
    return [r for i, r in enumerate(rows) if i in keep]


def answer(cfg: dict[str, Any], system: str, model_dir: str | Path, prompts: list[dict[str, Any]],
           output: Path) -> list[dict[str, Any]]:
    """Fresh responses of `model_dir` to `prompts` (an old file is removed first: it would be resumed)."""
    from lima.generate import generate_responses
    from lima.io import read_jsonl

    output.unlink(missing_ok=True)
    return read_jsonl(generate_responses(cfg, system, model_dir, prompts, output))


def format_compliance_rows(cfg: dict[str, Any], responses: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per response: its prompt id, format compliance (taught opening + EOT, lima.world.metrics) and quality."""
    from lima.world import load_rubrics, load_world
    from lima.world.metrics import METRICS, graded_rows

    world, rubrics = load_world(cfg), load_rubrics(cfg)
    return [{"prompt_id": row["prompt_id"], "format_compliance": METRICS["format_compliance"](rubric, g),
             "quality": g.quality} for row, rubric, g in graded_rows(world, rubrics, responses)]


__all__ = ["answer", "figure_stem", "format_compliance_rows", "models_root", "recipe", "results_csv", "run_name",
           "subset"]
