"""Fig. 5 (§5): does diversity or quality of the training data matter more?

Three training sets of equal size: filtered Stack Exchange (diverse prompts, high-quality answers), wikiHow
(homogeneous "How to …" prompts, high-quality answers) and unfiltered Stack Exchange (diverse prompts, no
quality filters). Each trains one model with the ablation recipe; each model samples `samples_per_prompt`
responses per test prompt; each response gets a 1–6 helpfulness grade; the table is the mean grade with a
two-sided 95% t interval over prompts (samples of a prompt averaged first). In the LIMA world the same
responses are also graded against their rubrics (`diversity_quality_metrics.csv`: fact accuracy, procedure
accuracy, format compliance, each with its prompt-level interval). The paper (7B, 2,000 examples each,
5 samples): 3.83 / 3.49 / 3.33.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lima.ablations.common import (
    Stages,
    ablation_config,
    ablation_prompts,
    draw_pool,
    path_of,
    results_dir,
    train_generate_grade,
)
from lima.ablations.world_metrics import METRIC_COLUMNS
from lima.io import write_csv, write_jsonl

# (pool kind, label): the kinds are also the condition keys of paper_results.yaml
CONDITIONS: list[tuple[str, str]] = [
    ("se_filtered", "Filtered Stack Exchange"),
    ("wikihow", "wikiHow"),
    ("se_unfiltered", "Unfiltered Stack Exchange"),
]
COLUMNS = ["condition", "n_examples", "n", "mean", "ci_low", "ci_high"]


def table_path(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "diversity_quality.csv"


def metrics_path(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "diversity_quality_metrics.csv"


def grades_path(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "diversity_quality_grades.jsonl"


def run(cfg: dict[str, Any], stages: Stages | None = None,
        conditions: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """Train, sample and grade every condition; writes the table and the per-sample grades; returns the rows."""
    stages = stages or Stages()
    conditions = conditions or CONDITIONS
    acfg = ablation_config(cfg)
    n = acfg.examples_per_condition
    # draw every pool first: a short pool should fail before any model is trained
    pools = {kind: draw_pool(cfg, kind, n, stages, "diversity/quality ablation") for kind, _ in conditions}
    prompts = ablation_prompts(cfg)
    results = []
    for kind, label in tqdm(conditions, desc="conditions", unit="condition"):
        result = train_generate_grade(cfg, kind, pools[kind], prompts, stages)
        results.append({**result, "label": label})
    table = [{k: r[k] for k in (*COLUMNS, "unparsed", "label")} for r in results]
    inputs = [path_of(cfg, "processed") / "test.jsonl", *(Path(r["train_file"]) for r in results)]
    write_jsonl(grades_path(cfg), [g for r in results for g in r["grades"]], config=cfg.get("ablations"),
                inputs=inputs)
    metrics = [{"condition": r["condition"], "label": r["label"], **m} for r in results for m in r["metrics"]]
    if metrics:
        write_csv(metrics_path(cfg), metrics, ["condition", *METRIC_COLUMNS], config={"ablations": cfg.get("ablations")},
                  inputs=inputs)
    else:
        for stale in (metrics_path(cfg), metrics_path(cfg).with_name(metrics_path(cfg).name + ".manifest.json")):
            stale.unlink(missing_ok=True)     # outside the world: no stale metrics from an older run
    write_csv(table_path(cfg), table, COLUMNS, config={"ablations": cfg.get("ablations"), "judge": cfg.get("judge")},
              inputs=inputs)
    return table
