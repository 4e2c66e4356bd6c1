"""What the three ablations (paper §5–§6) share: the `ablations` config, the ablation recipe, and the chain
pool → fine-tune → sample → grade → mean with a 95% t interval over prompts (samples of a prompt
averaged first); in the LIMA world also the per-response world metrics (`lima.ablations.world_metrics`).

The paper ran its ablations on a smaller base model (7B) with the smaller-model settings of the recipe
(residual dropout 0.2, batch 64), so an ablation run is the main recipe with `ablations.*` substituted, trained
into its own folder `{models}/ablations/<name>` so it can never be mistaken for (or overwrite) the LIMA model.

Every upstream stage is reached through `Stages`, a bundle of plain callables that defaults to the real
`lima.curation` / `lima.train` / `lima.generate` / `lima.judge` / `lima.analysis` functions. Tests replace them
with fakes to check the aggregation logic without training anything.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.ablations.world_metrics import condition_metrics
from lima.config import resolve, section
from lima.io import read_jsonl, write_jsonl


@dataclass
class AblationConfig:
    """The profile's `ablations` section (paper §5: 7B, 2,000 examples per condition, 5 samples per prompt)."""

    base: str = "huggyllama/llama-7b"       # the ablations' base model (the paper: LLaMA 7B)
    residual_dropout: float = 0.2           # the recipe's rate for smaller models
    batch_size: int = 64                    # the recipe's batch for smaller models
    examples_per_condition: int = 2000      # Fig. 5: training examples per data condition
    samples_per_prompt: int = 5             # responses sampled per test prompt, each graded 1–6
    quantity_sizes: list[int] = field(default_factory=lambda: [2000, 4000, 8000, 16000, 32000])  # Fig. 6
    multiturn_dialogues: int = 30           # Fig. 7: dialogue chains added to the training set
    multiturn_conversations: int = 10       # Fig. 7: conversations driven per condition (paper: 10 live chats)
    multiturn_scripts: str | None = None    # held-out user-turn scripts (JSONL {id, user_turns}); None: authored dialogues
    epochs: int | None = None               # (ours) None: the recipe's train.epochs
    max_length: int | None = None           # (ours) None: the recipe's train.max_length
    multiturn_epochs: int | None = None     # (ours) epochs of `lima_multiturn`; None: LIMA's own train.epochs
    max_new_tokens: int | None = None       # (ours) None: the recipe's generate.max_new_tokens
    max_test_prompts: int | None = None     # (ours) None: every test prompt; else a seeded subset
    seed: int | None = None                 # pool / subset seed; None: the profile's top-level seed


def ablation_config(cfg: Mapping[str, Any]) -> AblationConfig:
    return section(cfg, "ablations", AblationConfig)


def ablation_seed(cfg: Mapping[str, Any]) -> int:
    acfg = ablation_config(cfg)
    return int(acfg.seed if acfg.seed is not None else cfg.get("seed", 0))


def ablation_profile(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe with the ablation overrides: base model, residual dropout, batch, (epochs, generation length).

    Checkpoint selection by hand on the dev set (§3) is not part of the ablations, so the run keeps only its
    last epoch and selects it.
    """
    acfg = ablation_config(cfg)
    out = copy.deepcopy(dict(cfg))
    out.setdefault("model", {})["base"] = acfg.base
    train = out.setdefault("train", {})
    train["residual_dropout"] = acfg.residual_dropout
    train["batch_size"] = acfg.batch_size
    if acfg.epochs is not None:
        train["epochs"] = acfg.epochs
    if acfg.max_length is not None:
        train["max_length"] = acfg.max_length
    train["save_epochs"] = []
    train["select"] = "last"
    train["dev_quality"] = None            # ablations grade the test answers instead; no per-checkpoint judging
    train["save_optimizer"] = False        # nothing resumes an ablation run; skip the optimiser state on disk
    if acfg.max_new_tokens is not None:
        out.setdefault("generate", {})["max_new_tokens"] = acfg.max_new_tokens
    return out


# ---------------------------------------------------------------- paths

def path_of(cfg: Mapping[str, Any], key: str) -> Path:
    return resolve(cfg["paths"][key])


def results_dir(cfg: Mapping[str, Any]) -> Path:
    return path_of(cfg, "results") / "ablations"


def run_name(name: str) -> str:
    """Ablation models live under `{models}/ablations/<name>`, apart from the LIMA run."""
    return f"ablations/{name}"


# ---------------------------------------------------------------- seams to the other stages

def _make_pool(cfg: dict[str, Any], kind: str, n: int, seed: int) -> list[dict[str, Any]]:
    from lima.curation.pools import make_pool

    return make_pool(cfg, kind, n, seed)


def _finetune(cfg: dict[str, Any], train_file: Path, run_name: str) -> Path:
    from lima.train import finetune

    return Path(finetune(cfg, train_file, run_name=run_name))


def _generate_responses(cfg: dict[str, Any], system: str, model_dir: Path, prompts: list[dict[str, Any]],
                        output: Path, samples_per_prompt: int) -> Path:
    from lima.generate import generate_responses

    return Path(generate_responses(cfg, system, model_dir, prompts, output, samples_per_prompt=samples_per_prompt))


def _grade_helpfulness(cfg: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from lima.judge import grade_helpfulness

    samples = int((cfg.get("judge") or {}).get("helpfulness_samples", 1) or 1)
    return grade_helpfulness(cfg, rows, samples=samples)


def _mean_ci(values: Sequence[float], ci: float) -> tuple[float, float, float]:
    from lima.analysis import mean_ci

    return mean_ci(values, ci=ci)


def _load_generator(model_dir: Path, cfg: dict[str, Any]) -> Any:
    from lima.generate import DecodingConfig, load_generator

    return load_generator(model_dir, section(cfg, "generate", DecodingConfig))


def _rate_absolute(cfg: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from lima.judge import rate_absolute

    return rate_absolute(cfg, rows)


@dataclass
class Stages:
    """The upstream calls an ablation makes; tests swap in fakes."""

    make_pool: Callable[[dict[str, Any], str, int, int], list[dict[str, Any]]] = _make_pool
    finetune: Callable[[dict[str, Any], Path, str], Path] = _finetune
    generate_responses: Callable[..., Path] = _generate_responses
    grade_helpfulness: Callable[[dict[str, Any], list[dict[str, Any]]], list[dict[str, Any]]] = _grade_helpfulness
    mean_ci: Callable[[Sequence[float], float], tuple[float, float, float]] = _mean_ci
    load_generator: Callable[[Path, dict[str, Any]], Any] = _load_generator
    rate_absolute: Callable[[dict[str, Any], list[dict[str, Any]]], list[dict[str, Any]]] = _rate_absolute


# ---------------------------------------------------------------- the chain

def ablation_prompts(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`{processed}/test.jsonl`, or a seeded subset of `ablations.max_test_prompts` of it (kept in file order)."""
    acfg = ablation_config(cfg)
    rows = read_jsonl(path_of(cfg, "processed") / "test.jsonl")
    if acfg.max_test_prompts is not None and acfg.max_test_prompts < len(rows):
        keep = set(random.Random(ablation_seed(cfg)).sample(range(len(rows)), acfg.max_test_prompts))
        rows = [row for i, row in enumerate(rows) if i in keep]
    return rows


def draw_pool(cfg: dict[str, Any], kind: str, n: int, stages: Stages, what: str) -> list[dict[str, Any]]:
    """A training pool of exactly n rows; a short pool is an error that says which ablation asked for it."""
    try:
        rows = stages.make_pool(cfg, kind, n, ablation_seed(cfg))
    except ValueError as err:
        raise ValueError(f"{what}: cannot draw {n} {kind!r} examples: {err}") from err
    if len(rows) != n:
        raise ValueError(f"{what}: make_pool({kind!r}, {n}) returned {len(rows)} rows")
    return rows


def summarise(grades: Iterable[tuple[Any, float | None]], ci: float,
              mean_ci: Callable[[Sequence[float], float], tuple[float, float, float]]) -> dict[str, Any]:
    """Mean grade with a prompt-level t interval over `(prompt_id, grade)` pairs (lima.analysis.stats).

    The samples of one prompt are averaged before the interval (they are correlated: 300 prompts × 5 samples
    are 300 independent values, not 1,500); grades that failed to parse are counted, not dropped.
    """
    from lima.analysis.stats import prompt_mean_ci

    return prompt_mean_ci(grades, ci, interval=mean_ci)


def score_of(row: Mapping[str, Any]) -> float | None:
    score = row.get("score")
    return None if score is None else float(score)


def train_generate_grade(cfg: dict[str, Any], name: str, train_rows: list[dict[str, Any]],
                         prompts: list[dict[str, Any]], stages: Stages) -> dict[str, Any]:
    """One ablation condition end to end; returns its summary and the per-sample grade rows."""
    acfg = ablation_config(cfg)
    recipe = ablation_profile(cfg)
    out = results_dir(cfg)
    train_file = path_of(cfg, "processed") / "ablations" / f"{name}.jsonl"
    write_jsonl(train_file, train_rows, config=recipe.get("ablations"))
    model_dir = stages.finetune(recipe, train_file, run_name(name))
    responses = out / "responses" / f"{name}.jsonl"
    # generate_responses resumes from an existing file: a fresh model must not inherit old answers
    responses.unlink(missing_ok=True)
    responses = stages.generate_responses(recipe, f"ablation_{name}", model_dir, prompts, responses,
                                          acfg.samples_per_prompt)
    rows = read_jsonl(responses)
    graded = stages.grade_helpfulness(cfg, rows)
    ci = float((cfg.get("analysis") or {}).get("ci", 0.95))
    if len(graded) != len(rows):
        raise RuntimeError(f"{name}: the grader returned {len(graded)} grades for {len(rows)} responses")
    summary = summarise([(row.get("prompt_id"), score_of(g)) for row, g in zip(rows, graded, strict=True)], ci,
                        stages.mean_ci)
    grades = [{"condition": name, "prompt_id": row.get("prompt_id"), "sample": row.get("sample", 0),
               "score": score_of(g), "scores": g.get("scores"), "judge_errors": g.get("errors") or None,
               "response": row.get("response")}
              for row, g in zip(rows, graded, strict=True)]
    # in the LIMA world the same responses are also graded against their rubrics (substance vs style)
    metrics = condition_metrics(cfg, rows)
    return {"condition": name, "n_examples": len(train_rows), "model": str(model_dir),
            "responses": str(responses), "train_file": str(train_file), **summary, "grades": grades,
            "metrics": metrics}


