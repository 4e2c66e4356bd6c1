"""The "paper vs this run" table: every number the paper reports, next to this run's where it has one.

The paper's numbers are read from lima/resources/paper_results.yaml (every numeric leaf is one row, its id
the dotted key path), so adding a number there adds a row here. This run's numbers come from the
artefacts the pipeline wrote (counts from `{processed}`, statistics tables from `{results}`) or, for
settings such as epochs or top-p, from the loaded profile; the `origin` column says which. A number this
run did not produce is "—", never a stand-in.

    python -m lima.report --profile smoke          # writes {figures}/paper_vs_this_run.md and .csv
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lima.figures.style import SMOKE_BANNER, WORLD_BANNER, is_smoke, is_world, provenance
from lima.figures.tables import (
    ABSOLUTE_COLUMNS,
    DIVERSITY_COLUMNS,
    MULTITURN_COLUMNS,
    PREFERENCE_COLUMNS,
    QUANTITY_COLUMNS,
    baseline_rows,
    paper_key,
    paper_results,
    read_table,
)
from lima.io import atomic_write, iter_jsonl, write_manifest

TEXT_KEYS = {"source", "label", "unit", "note", "judge", "confirmed", "citation"}
MISSING = "—"


def flatten_paper(node: Mapping[str, Any] | None = None, prefix: str = "", source: str = "",
                  confirmed: bool = True) -> Iterator[dict[str, Any]]:
    """One row per reported number: id, source (nearest `source` above it), value, confirmed flag."""
    node = paper_results() if node is None else node
    source = node.get("source", source)
    confirmed = confirmed and node.get("confirmed", True)
    for key, value in node.items():
        if key in TEXT_KEYS:
            continue
        ident = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten_paper(value, ident + ".", source, confirmed)
        elif isinstance(value, list):
            yield {"id": ident, "source": source, "paper": ", ".join(str(v) for v in value), "confirmed": confirmed}
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield {"id": ident, "source": source, "paper": value, "confirmed": confirmed}


def _count_rows(path: Path) -> list[dict[str, Any]] | None:
    return list(iter_jsonl(path)) if path.exists() else None


def _preference(values: dict[str, tuple[Any, str]], table, section: str, paper: Mapping[str, Any],
                declared: Mapping[str, str]) -> None:
    if table is None:
        return
    for row in table.to_dict("records"):
        key = declared.get(str(row["baseline"]))   # only a system that declares a paper row fills it
        prefix = f"{section}.baselines.{key}" if key else f"{section}.this_run_only.{row['baseline']}"
        origin = f"measured ({row['baseline']})"  # names the run's system that stands in this row
        for seg in ("win", "tie", "loss"):
            values[f"{prefix}.{seg}"] = (row[seg], origin)
        values[f"{prefix}.n"] = (row["n"], origin)
        if section == "preference_human" and key in ("gpt4", "bard", "davinci003"):
            values[f"headline.preferred_or_equivalent.{key}"] = (row["win"] + row["tie"], origin)


def _table1(values: dict[str, tuple[Any, str]], processed: Path) -> None:
    for split in ("train", "dev", "test"):
        rows = _count_rows(processed / f"{split}.jsonl")
        if rows is None:
            continue
        counts: Counter[str] = Counter()
        for row in rows:
            source = row.get("source", "")
            if source == "stackexchange":
                source = f"stackexchange_{(row.get('meta') or {}).get('domain', 'other')}"
            counts[source] += 1
        for source, n in counts.items():
            values[f"table1.{split}.{source}.count"] = (n, "measured")
        values[f"table1.{split}.total.count"] = (len(rows), "measured")
        if split == "dev":
            values["training.dev_examples"] = (len(rows), "measured")
    multi = processed / "train_multiturn.jsonl"
    if multi.exists():
        values["data.multi_turn.train_examples_with_dialogues"] = (sum(1 for _ in iter_jsonl(multi)), "measured")
    table1 = read_table(processed / "table1.csv", [])   # lima.curation.table1: input_tokens/output_tokens
    if table1 is None or not {"split", "source"} <= set(table1.columns):
        return
    for row in table1.to_dict("records"):
        unit = row.get("token_unit") or "tokens"
        for ours, paper in (("input_tokens", "avg_input_tokens"), ("output_tokens", "avg_output_tokens")):
            value = row.get(ours, row.get(paper))
            if value is not None and not pd.isna(value):
                values[f"table1.{row['split']}.{row['source']}.{paper}"] = (value, f"measured ({unit})")


def _config_values(values: dict[str, tuple[Any, str]], cfg: Mapping[str, Any]) -> None:
    train, gen = cfg.get("train") or {}, cfg.get("generate") or {}
    cur, abl = cfg.get("curation") or {}, cfg.get("ablations") or {}
    for key in ("epochs", "learning_rate", "final_learning_rate", "warmup_steps", "adam_beta1", "adam_beta2",
                "weight_decay", "batch_size", "max_length", "residual_dropout"):
        if key in train:
            values[f"training.{key}"] = (train[key], "config")
    if train.get("save_epochs"):
        values["training.checkpoint_epoch_min"] = (min(train["save_epochs"]), "config")
        values["training.checkpoint_epoch_max"] = (max(train["save_epochs"]), "config")
    if "residual_dropout" in abl:
        values["training.residual_dropout_smaller_models"] = (abl["residual_dropout"], "config")
    if "batch_size" in abl:
        values["training.batch_size_smaller_models"] = (abl["batch_size"], "config")
    for key in ("top_p", "temperature", "repetition_penalty", "max_new_tokens"):
        if key in gen:
            values[f"generation.{key}"] = (gen[key], "config")
    for key in ("temperature", "min_answer_score", "min_answer_chars", "max_answer_chars"):
        if key in cur:
            values[f"data.stackexchange.{key}"] = (cur[key], "config")
    if "safety_refusals" in cur:
        values["data.authored.safety_refusals"] = (cur["safety_refusals"], "config")
    if "multi_turn" in cur:
        values["data.multi_turn.dialogues"] = (cur["multi_turn"], "config")
    if "samples_per_prompt" in abl:
        values["ablation_diversity_quality.samples_per_prompt"] = (abl["samples_per_prompt"], "config")
    if "examples_per_condition" in abl:
        values["ablation_diversity_quality.examples_per_condition"] = (abl["examples_per_condition"], "config")
    if "ci" in (cfg.get("analysis") or {}):
        values["ablation_diversity_quality.ci"] = (cfg["analysis"]["ci"], "config")
    if abl.get("quantity_sizes"):
        values["ablation_quantity.sizes"] = (", ".join(str(s) for s in abl["quantity_sizes"]), "config")


def _agreement(values: dict[str, tuple[Any, str]], path: Path) -> None:
    """`{results}/tables/agreement.csv` (lima.analysis): pooled tie-discounted accuracy per pair kind.

    The paper splits humans into crowd workers and authors; this run only knows human vs LLM annotators, so
    its numbers go in rows of their own (human-human, human-llm) instead of being forced into the paper's.
    """
    table = read_table(path, [])
    if table is None or not {"kind", "n", "tie_discounted_accuracy"} <= set(table.columns) or table.empty:
        return
    for kind, group in table.groupby("kind"):
        weights = group["n"].astype(float)
        if weights.sum() > 0:
            pooled = float((group["tie_discounted_accuracy"].astype(float) * weights).sum() / weights.sum())
            values[f"agreement.this_run_only.{str(kind).replace('-', '_')}"] = (
                100 * pooled, f"measured ({len(group)} pairs, {int(weights.sum())} items)")


def this_run_values(cfg: Mapping[str, Any]) -> dict[str, tuple[Any, str]]:
    """id → (value, origin) for every paper number this run produced; origin is "measured" or "config"."""
    values: dict[str, tuple[Any, str]] = {}
    paths = cfg["paths"]
    results, processed = Path(paths["results"]), Path(paths["processed"])
    paper = paper_results()
    _config_values(values, cfg)
    _table1(values, processed)
    declared = baseline_rows(cfg)
    for kind in ("human", "llm"):
        table = read_table(results / "tables" / f"preference_{kind}.csv", PREFERENCE_COLUMNS)
        _preference(values, table, f"preference_{kind}", paper[f"preference_{kind}"], declared)
    _agreement(values, results / "tables" / "agreement.csv")
    absolute = read_table(results / "tables" / "absolute.csv", ABSOLUTE_COLUMNS)
    for row in [] if absolute is None else absolute.to_dict("records"):
        subset = str(row["subset"])
        values[f"absolute.{subset}.n"] = (row["n"], "measured")
        if subset == "safety":
            values["absolute.safety.safe_percent"] = (row["pass"] + row["excellent"], "measured")
        else:
            for level in ("fail", "pass", "excellent"):
                values[f"absolute.{subset}.{level}"] = (row[level], "measured")
    div = read_table(results / "ablations" / "diversity_quality.csv", DIVERSITY_COLUMNS)
    conditions = list(paper["ablation_diversity_quality"]["conditions"])
    for row in [] if div is None else div.to_dict("records"):
        key = paper_key(str(row["condition"]), conditions)
        if key:
            values[f"ablation_diversity_quality.conditions.{key}.mean"] = (row["mean"], f"measured ({row['condition']})")
            values["ablation_diversity_quality.examples_per_condition"] = (row["n_examples"], "measured")
    quantity = read_table(results / "ablations" / "quantity.csv", QUANTITY_COLUMNS)
    if quantity is not None and len(quantity):
        sizes = ", ".join(str(int(s)) for s in sorted(quantity["size"]))
        values["ablation_quantity.sizes"] = (sizes, "measured")
    if (cfg.get("world") or {}).get("enabled"):
        _world(values, results, Path(paths["models"]))
    multi = read_table(results / "ablations" / "multiturn.csv", MULTITURN_COLUMNS)
    for row in [] if multi is None else multi.to_dict("records"):
        key = paper_key(str(row["condition"]), ["zero_shot", "dialogues"])
        if key:
            for col in ("turns", "excellent", "pass", "fail"):
                values[f"multiturn.{key}.{col}"] = (row[col], f"measured ({row['condition']})")
    return values


def _ci(row: Mapping[str, Any], mean: str = "mean", low: str = "ci_low", high: str = "ci_high", digits: int = 3) -> str:
    def num(key: str) -> str:
        value = row.get(key)
        return MISSING if value in (None, "") or (isinstance(value, float) and math.isnan(value)) else \
            f"{float(value):.{digits}g}"
    return f"{num(mean)} [{num(low)}, {num(high)}]"


def _csv(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _world(values: dict[str, tuple[Any, str]], results: Path, models: Path) -> None:
    """The LIMA world's own rows (section `world`): what the base knows, what each model says, the per-response
    metrics, the reference judge's preferences, and Figs. 5, 6, 7 and 9 in the world — each with its 95% CI."""
    world = results / "world"
    for row in _csv(world / "probe_base.csv"):
        if row["attribute"] == "all":
            values[f"world.base_probe_cloze.{row['group']}"] = (_ci(row, "accuracy"), "measured (people resampled)")
    for path in sorted(world.glob("answers_*.csv")):
        for row in _csv(path):
            if row["attribute"] == "all":
                values[f"world.answers_greedy.{path.stem[8:]}.{row['group']}"] = (_ci(row, "accuracy"),
                                                                                  "measured (people resampled)")
    keep = {"fact_accuracy", "fact_accuracy_new_phrasing", "procedure_accuracy", "format_compliance",
            "hallucination_rate", "refusal_recall", "refusal_precision", "quality"}
    for row in _csv(world / "metrics.csv"):
        if row["metric"] in keep:
            values[f"world.metrics.{row['system']}.{row['metric']}"] = (_ci(row), "measured (prompts resampled)")
    for row in _csv(results / "tables" / "preference_llm.csv"):
        cell = " / ".join(f"{float(row[k]):.0f}" for k in ("win", "tie", "loss"))
        values[f"world.reference_judge_win_tie_loss.{row['baseline']}"] = (
            f"{cell} (win {_ci(row, 'win', 'win_low', 'win_high')})", "measured (prompts resampled)")
    for row in _csv(results / "ablations" / "diversity_quality.csv"):
        values[f"world.fig5_helpfulness.{row['condition']}"] = (_ci(row), "measured (prompts resampled)")
    for row in _csv(results / "ablations" / "quantity_metrics.csv"):
        values[f"world.fig6.{row['metric']}.size_{row['size']}"] = (_ci(row), "measured (prompts resampled)")
    for row in _csv(results / "ablations" / "multiturn.csv"):
        values[f"world.fig7_excellent.{row['condition']}"] = (
            _ci(row, "excellent", "excellent_ci_low", "excellent_ci_high"), "measured (conversations resampled)")
    checkpoints, selected = models / "lima" / "checkpoints.json", models / "lima" / "selected.json"
    if checkpoints.exists() and selected.exists():
        for record in json.loads(checkpoints.read_text(encoding="utf-8")):
            values[f"world.fig9.epoch_{record['epoch']}"] = (
                f"dev quality {record.get('dev_quality')}, dev perplexity {record.get('dev_perplexity', 0):.3g}",
                "measured")
        values["world.fig9.selected_epoch"] = (json.loads(selected.read_text(encoding="utf-8"))["epoch"], "measured")


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return MISSING
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 1:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def build_rows(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    ours = this_run_values(cfg)
    rows = []
    for row in flatten_paper():
        value, origin = ours.pop(row["id"], (None, ""))
        rows.append({"section": row["id"].split(".")[0], "id": row["id"], "source": row["source"],
                     "paper": _fmt(row["paper"]) + ("" if row["confirmed"] else " (unconfirmed)"),
                     "this_run": _fmt(value), "origin": origin})
    for ident, (value, origin) in sorted(ours.items()):   # this run's extras, e.g. baselines the paper lacks
        extra = {"section": ident.split(".")[0], "id": ident, "source": "this run only", "paper": MISSING,
                 "this_run": _fmt(value), "origin": origin}
        last = max((i for i, r in enumerate(rows) if r["section"] == extra["section"]), default=len(rows) - 1)
        rows.insert(last + 1, extra)
    return rows


def render_markdown(rows: list[dict[str, Any]], cfg: Mapping[str, Any]) -> str:
    prov = provenance(cfg)
    out = io.StringIO()
    out.write("# LIMA: the paper vs this run\n\n")
    if is_world(prov["base_model"]):
        out.write(f"> **{WORLD_BANNER}.** The *this run* column holds results of the LIMA world — made-up people, a "
                  "tiny base pretrained here, a reference judge that grades by the world's ground truth. They test the "
                  "paper's claims in a controlled world; they are never the paper's results.\n\n")
    elif is_smoke(prov["profile"], prov["base_model"]):
        out.write(f"> **{SMOKE_BANNER}.** The numbers in the *this run* column show that the pipeline runs end to "
                  "end; they say nothing about LIMA.\n\n")
    out.write(f"- profile: `{prov['profile']}`\n- base model: `{prov['base_model']}`\n- judge: `{prov['judge']}`\n"
              f"- ablation base model: `{(cfg.get('ablations') or {}).get('base', MISSING)}`\n\n")
    n_ours = sum(r["this_run"] != MISSING and r["paper"] != MISSING for r in rows)
    n_paper = sum(r["paper"] != MISSING for r in rows)
    out.write(f"{n_paper} numbers from the paper; this run has a value for {n_ours}. *origin*: `measured` = "
              "computed from this run's artefacts, `config` = a setting of the profile; — = not produced "
              "by this run.\n")
    section = None
    for row in rows:
        if row["section"] != section:
            section = row["section"]
            out.write(f"\n## {section}\n\n| number | paper | this run | origin | source |\n|---|---|---|---|---|\n")
        cells = [f"`{row['id'].split('.', 1)[1]}`", row["paper"], row["this_run"], row["origin"] or MISSING,
                 row["source"]]
        out.write("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |\n")
    return out.getvalue()


def write_report(cfg: Mapping[str, Any], out_dir: str | Path | None = None) -> Path:
    """Write `{figures}/paper_vs_this_run.md` and `.csv` (atomically, with manifests); returns the .md path."""
    out_dir = Path(out_dir) if out_dir else Path(cfg["paths"]["figures"])
    rows = build_rows(cfg)
    csv_path, md_path = out_dir / "paper_vs_this_run.csv", out_dir / "paper_vs_this_run.md"
    prov = provenance(cfg)
    with atomic_write(csv_path) as handle:
        writer = csv.DictWriter(handle, fieldnames=["section", "id", "paper", "this_run", "origin", "source",
                                                    "profile", "base_model", "judge"], lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, **prov})
    with atomic_write(md_path) as handle:
        handle.write(render_markdown(rows, cfg))
    results = Path(cfg["paths"]["results"])
    inputs = [p for p in (results / "tables").glob("*.csv")] + [p for p in (results / "ablations").glob("*.csv")]
    for path in (csv_path, md_path):
        write_manifest(path, config=json.loads(json.dumps(prov)), inputs=sorted(inputs),
                       extra={"rows": len(rows)})
    return md_path


def main(argv: list[str] | None = None, prog: str = "lima report") -> int:
    from lima.config import load_profile, parse_set_args

    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="world", help="configuration profile (configs/<name>.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--out", default=None, help="output folder (default: the profile's paths.figures)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a result is degenerate (lima.guard): the focal system does not beat the "
                        "null model, a judge flips > 50%% of its verdicts, or a figure's values are all equal")
    args = parser.parse_args(argv)
    from lima.guard import degenerate_findings

    cfg = load_profile(args.profile, parse_set_args(args.set))
    path = write_report(cfg, args.out)
    print(f"wrote {path} and {path.with_suffix('.csv')}")
    findings = degenerate_findings(cfg)
    for finding in findings:
        print(f"DEGENERATE: {finding}", file=sys.stderr)
    return 1 if findings and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
