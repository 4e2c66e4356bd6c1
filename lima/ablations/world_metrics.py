"""The world's per-response metrics for an ablation condition, beside the judge's helpfulness grade.

In the LIMA world every test prompt has a rubric, so an ablation can say *what* changed, not only how the
judge liked it: substance (fact accuracy on held-out people, procedure accuracy) and style (format compliance:
the taught opening and an answer ended on EOT). Each metric is averaged per prompt first and its interval
resamples prompts (`lima.world.metrics.metrics_table` → `lima.analysis.stats.prompt_mean_ci` with the
Wilson interval of a share).

Fig. 6 separates the two kinds because the paper ("doubling does not help") and Raghavendra et al. ("style
saturates early, skills keep improving") predict different curves; `KINDS` is the one place that says which
metric is which.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# metric -> kind; the order is the order of the columns and the curves
KINDS: dict[str, str] = {
    "format_compliance": "style",
    "fact_accuracy": "substance",
    "procedure_accuracy": "substance",
}
LABELS: dict[str, str] = {
    "format_compliance": "format compliance (style)",
    "fact_accuracy": "fact accuracy, held-out people (substance)",
    "procedure_accuracy": "procedure accuracy, held-out procedures (substance)",
}
METRIC_COLUMNS = ["metric", "kind", "n_prompts", "mean", "ci_low", "ci_high"]


def world_enabled(cfg: Mapping[str, Any]) -> bool:
    return bool((cfg.get("world") or {}).get("enabled"))


def condition_metrics(cfg: dict[str, Any], responses: Sequence[dict[str, Any]],
                      metrics: Iterable[str] = tuple(KINDS)) -> list[dict[str, Any]]:
    """One row per metric for one condition's responses; [] outside the world (no rubrics to grade by).

    A response row needs `prompt_id`, `prompt`, `response` and (for the EOT rule) `stop_reason`.
    """
    if not world_enabled(cfg):
        return []
    from lima.world import load_rubrics, load_world
    from lima.world.metrics import METRICS, metrics_table

    wanted = list(metrics)
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown world metrics {unknown}; known: {sorted(METRICS)}")
    table = metrics_table(load_world(cfg), load_rubrics(cfg), {"_": list(responses)})
    by_name = {row["metric"]: row for row in table}
    return [{"metric": m, "kind": KINDS.get(m, "other"),
             **{k: by_name[m][k] for k in ("n_prompts", "mean", "ci_low", "ci_high")}} for m in wanted]


def metric_curves(records: Sequence[Mapping[str, Any]], key: str = "size") -> list[dict[str, Any]]:
    """Flatten per-condition records (`{key: …, "metrics": [metric rows]}`) into long rows, sorted by `key`.

    This is Fig. 6's table: one row per (size, metric) with its kind (style / substance) and prompt-level CI,
    so style and substance can be drawn, and compared, as separate curves.
    """
    rows = []
    for record in sorted(records, key=lambda r: r[key]):
        for m in record.get("metrics") or []:
            rows.append({key: record[key], **{c: m[c] for c in METRIC_COLUMNS}})
    return rows


def curve(rows: Sequence[Mapping[str, Any]], metric: str, key: str = "size") -> list[Mapping[str, Any]]:
    """The rows of one metric, in `key` order, skipping sizes where no prompt of that kind was asked."""
    out = [r for r in rows if r["metric"] == metric and int(r["n_prompts"]) > 0]
    return sorted(out, key=lambda r: r[key])
