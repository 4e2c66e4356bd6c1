"""Programmatic metrics per response, beside the judge: one table per system, intervals over prompts.

Each response is graded against its prompt's rubric (`lima.world.grade`) with the stop reason its generation
recorded. A metric is averaged over the prompts it applies to (several samples of one prompt are averaged
first). Shares get the Wilson interval over prompts (`lima.analysis.stats.wilson_ci`: inside [0, 1], never of
zero width at 0 or 1); `words` gets the t interval of `prompt_mean_ci`.

| metric | prompts | value per response |
|---|---|---|
| `fact_accuracy` | facts about held-out people (incl. OOD formats) | share of asked attributes right |
| `fact_accuracy_new_phrasing` | held-out facts asked in a shape the fine-tune never used | same |
| `procedure_accuracy` | held-out procedures | ordered share of true steps |
| `creative_constraints` | story requests | share of constraints honoured |
| `format_compliance` | all | taught opening and ended on EOT |
| `terminated` | all | ended on EOT |
| `ood_format_ok` | one word / table / list prompts | the asked format |
| `hallucination_rate` | unseen people | stated a fact without admitting not knowing |
| `refusal_recall` | safety prompts | refused |
| `refusal_precision` | prompts it refused | it was a safety prompt |
| `quality`, `words` | all | the judge's quality score, length in words |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from lima.analysis.stats import prompt_mean_ci, wilson_ci
from lima.world import normalise_prompt
from lima.world.grade import Grade, grade
from lima.world.world import World

Selector = Callable[[dict[str, Any], Grade], float | None]

METRICS: dict[str, Selector] = {
    "fact_accuracy": lambda r, g: g.fact_accuracy if r["kind"] in {"fact", "format"} and r.get("phrasing") != "new"
    and r.get("group") == "held_out" else None,
    "fact_accuracy_new_phrasing": lambda r, g: g.fact_accuracy if r.get("phrasing") == "new" else None,
    "procedure_accuracy": lambda r, g: g.procedure_accuracy if r["kind"] == "procedure" else None,
    "creative_constraints": lambda r, g: g.constraints if r["kind"] == "creative" else None,
    "format_compliance": lambda r, g: float(g.styled and g.terminated),
    "terminated": lambda r, g: float(g.terminated),
    "ood_format_ok": lambda r, g: float(bool(g.format_ok)) if r["kind"] == "format" else None,
    "hallucination_rate": lambda r, g: float(bool(g.hallucinated)) if r["kind"] == "unknown" else None,
    "refusal_recall": lambda r, g: float(g.refused) if r["kind"] == "refuse" else None,
    "refusal_precision": lambda r, g: float(r["kind"] == "refuse") if g.refused else None,
    "quality": lambda r, g: g.quality,
    "words": lambda r, g: float(g.words),
}

NOT_SHARES = {"words"}     # every other metric is a share in [0, 1] (quality included)


def graded_rows(world: World, rubrics: dict[str, dict[str, Any]], responses: Iterable[dict[str, Any]]
                ) -> list[tuple[dict[str, Any], dict[str, Any], Grade]]:
    """(response row, rubric, grade) for every response whose prompt has a rubric."""
    out = []
    for row in responses:
        rubric = rubrics.get(normalise_prompt(str(row.get("prompt", ""))))
        if rubric is not None:
            out.append((row, rubric, grade(world, rubric, str(row.get("response") or ""), row.get("stop_reason"))))
    return out


def metrics_table(world: World, rubrics: dict[str, dict[str, Any]],
                  responses_by_system: dict[str, Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (system, metric): n prompts, mean, 95% CI over prompts."""
    table = []
    for system, responses in responses_by_system.items():
        graded = graded_rows(world, rubrics, responses)
        for name, select in METRICS.items():
            pairs = [(row["prompt_id"], select(rubric, g)) for row, rubric, g in graded]
            pairs = [(p, v) for p, v in pairs if v is not None]
            ci = prompt_mean_ci(pairs) if name in NOT_SHARES else prompt_mean_ci(pairs, interval=wilson_ci)
            table.append({"system": system, "metric": name, "n_prompts": ci["n_prompts"],
                          "mean": round(ci["mean"], 4), "ci_low": round(ci["ci_low"], 4),
                          "ci_high": round(ci["ci_high"], 4)})
    return table
