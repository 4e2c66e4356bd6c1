"""Forgetting (issue 10, beyond the paper 5): why the recipe's learning rate is small.

The base's knowledge probe (lima.world.probe: cloze on the pretraining phrasing, greedy) is read before the
fine-tune and after every epoch of fine-tunes at several learning rates, beside format compliance on test
prompts (the taught opening and EOT, lima.world.metrics). Where the format is learnt while the held-out cloze
stays at the base's level, teaching the format was superficial; where the cloze falls, it erased what
pretraining stored. The probe reads the raw prefix without the chat template, as pretraining text is read.
Intervals: the cloze resamples people (person_bootstrap_ci), format compliance resamples prompts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

COLUMNS = ["learning_rate", "epoch", "group", "cloze", "cloze_low", "cloze_high", "cloze_drop", "n_people",
           "format_compliance", "format_low", "format_high", "n_prompts", "checkpoint"]


def forgetting_table(probe_rows: Sequence[Mapping[str, Any]], format_rows: Sequence[Mapping[str, Any]],
                     n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> list[dict[str, Any]]:
    """One row per (learning rate, epoch, group): cloze accuracy with a person-resampled interval, its drop from
    the base (epoch 0, learning rate None), and format compliance with a prompt-level interval.

    `probe_rows`: cloze_hits rows plus `learning_rate`, `epoch`, `checkpoint`; `format_rows`: per response
    `learning_rate`, `epoch`, `prompt_id`, `format_compliance`. The base must be among the probe rows.
    """
    from lima.analysis.stats import prompt_mean_ci, wilson_ci
    from lima.world.probe import person_bootstrap_ci

    def key(r: Mapping[str, Any]) -> tuple[float | None, int]:
        lr = r.get("learning_rate")
        return (None if lr is None else float(lr), int(r["epoch"]))

    cells: dict[tuple[float | None, int, str], list[Mapping[str, Any]]] = {}
    for r in probe_rows:
        cells.setdefault((*key(r), str(r["group"])), []).append(r)
    formats: dict[tuple[float | None, int], list[tuple[str, float]]] = {}
    for r in format_rows:
        formats.setdefault(key(r), []).append((str(r["prompt_id"]), float(r["format_compliance"])))
    base = {g: person_bootstrap_ci(rows, n_boot=n_boot, seed=seed)[0]
            for (lr, ep, g), rows in cells.items() if lr is None and ep == 0}
    if not base:
        raise ValueError("forgetting_table: no base probe rows (learning_rate None, epoch 0)")
    table = []
    for (lr, epoch, group), rows in sorted(cells.items(), key=lambda kv: (kv[0][0] or 0.0, kv[0][1], kv[0][2])):
        mean, lo, hi = person_bootstrap_ci(rows, n_boot=n_boot, seed=seed)
        fmt = prompt_mean_ci(formats.get((lr, epoch), []), ci, interval=wilson_ci)
        table.append({"learning_rate": lr, "epoch": epoch, "group": group, "cloze": round(mean, 4),
                      "cloze_low": round(lo, 4), "cloze_high": round(hi, 4),
                      "cloze_drop": round(base[group] - mean, 4) if group in base else float("nan"),
                      "n_people": len({r["person"] for r in rows}),
                      "format_compliance": round(fmt["mean"], 4), "format_low": round(fmt["ci_low"], 4),
                      "format_high": round(fmt["ci_high"], 4), "n_prompts": fmt["n_prompts"],
                      "checkpoint": str(rows[0].get("checkpoint") or "")})
    return table


def findings(table: Sequence[Mapping[str, Any]], group: str = "held_out", format_target: float = 0.5) -> str:
    """The "what this run shows" paragraph: per learning rate, when the format is learnt and what the held-out
    cloze is then and at the end, against the base; and the first learning rate whose cloze interval falls
    wholly below the base's accuracy."""
    rows = [r for r in table if r["group"] == group]
    base = next((r for r in rows if r["learning_rate"] is None), None)
    if base is None:
        return "No base probe: nothing to compare."
    parts, first_erasing = [], None
    for lr in sorted({r["learning_rate"] for r in rows if r["learning_rate"] is not None}):
        curve = sorted((r for r in rows if r["learning_rate"] == lr), key=lambda r: r["epoch"])
        learnt = next((r for r in curve if r["format_compliance"] >= format_target), None)
        last = curve[-1]
        erased = [r for r in curve if r["cloze_high"] < base["cloze"]]
        if erased and first_erasing is None:
            first_erasing = (lr, erased[0]["epoch"])
        when = (f"format compliance reaches {format_target:.0%} at epoch {learnt['epoch']} with held-out cloze "
                f"{learnt['cloze']:.2f}" if learnt else
                f"format compliance never reaches {format_target:.0%} (best {max(r['format_compliance'] for r in curve):.2f})")
        parts.append(f"lr {lr:g}: {when}; after epoch {last['epoch']} cloze {last['cloze']:.2f} "
                     f"[{last['cloze_low']:.2f}, {last['cloze_high']:.2f}], format {last['format_compliance']:.2f}")
    head = f"Base held-out cloze {base['cloze']:.2f} [{base['cloze_low']:.2f}, {base['cloze_high']:.2f}]. "
    tail = (f" The first fine-tune whose cloze interval lies wholly below the base is lr {first_erasing[0]:g} at "
            f"epoch {first_erasing[1]}: from there teaching the format erases stored facts."
            if first_erasing else " No fine-tune's cloze interval lies wholly below the base: no measurable "
            "forgetting at these learning rates and epochs.")
    return head + "; ".join(parts) + "." + tail


def run(cfg: dict[str, Any], learning_rates: Sequence[float], epochs: int | None = None,
        train_examples: int | None = None, probe_people: int | None = None,
        max_test_prompts: int | None = None) -> dict[str, Any]:
    """Probe the base, fine-tune at each learning rate with a checkpoint per epoch, probe and answer with each;
    writes `{results}/experiments/forgetting.csv` (and the per-row probe and format files beside it)."""
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lima.config import resolve
    from lima.experiments.runs import answer, format_compliance_rows, recipe, results_csv, run_name, subset
    from lima.io import read_jsonl, write_csv, write_jsonl
    from lima.train import finetune
    from lima.train.base import ensure_base
    from lima.world import load_world
    from lima.world.probe import probe_world

    seed = int(cfg.get("seed", 0))
    processed = resolve(cfg["paths"]["processed"])
    world = load_world(cfg)
    train = subset(read_jsonl(processed / "train.jsonl"), train_examples, seed, "forgetting train")
    prompts = subset(read_jsonl(processed / "test.jsonl"), max_test_prompts, seed, "forgetting test prompts")
    out = results_csv(cfg, "forgetting").parent / "forgetting"
    train_file = out / "train.jsonl"
    write_jsonl(train_file, train, config={"n": len(train), "seed": seed})

    def probe(path: str, lr: float | None, epoch: int) -> list[dict[str, Any]]:
        model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
        return [{**r, "learning_rate": lr, "epoch": epoch, "checkpoint": path}
                for r in probe_world(model, tok, world, max_people=probe_people)]

    base = ensure_base(recipe(cfg))
    probes, formats = probe(base, None, 0), []
    for lr in learning_rates:
        rec = recipe(cfg, epochs=epochs, learning_rate=lr, save_every_epoch=True)
        name = run_name("forgetting", f"lr_{lr:g}")
        finetune(rec, train_file, run_name=name)
        records = json.loads((resolve(cfg["paths"]["models"]) / name / "checkpoints.json").read_text())
        for record in sorted(records, key=lambda r: r["epoch"]):
            probes += probe(record["path"], lr, int(record["epoch"]))
            rows = answer(rec, f"forgetting_lr_{lr:g}", record["path"], prompts,
                          out / "responses" / f"lr_{lr:g}_epoch_{record['epoch']}.jsonl")
            formats += [{**r, "learning_rate": lr, "epoch": int(record["epoch"])}
                        for r in format_compliance_rows(cfg, rows)]
    bootstrap = int((cfg.get("analysis") or {}).get("bootstrap", 1000))
    table = forgetting_table(probes, formats, n_boot=bootstrap, seed=seed)
    config = {"learning_rates": list(learning_rates), "epochs": epochs, "train_examples": len(train),
              "probe_people": probe_people, "test_prompts": len(prompts)}
    write_jsonl(out / "probe_rows.jsonl", probes, config=config)
    write_jsonl(out / "format_rows.jsonl", formats, config=config)
    path = write_csv(results_csv(cfg, "forgetting"), table, COLUMNS, config=config, inputs=[train_file])
    return {"table": table, "csv": path, "train_examples": len(train), "prompts": len(prompts)}


__all__ = ["COLUMNS", "findings", "forgetting_table", "run"]
