"""Extractability control (issue 10, beyond the paper 2; Physics of LMs 3.1).

The same pipeline on a second base pretrained on the `single` web (lima/world/corpus.py: one biography per
person, one random phrasing, fixed attribute order, pronouns after the first mention) instead of the
`augmented` one. The world itself (people, prompts, rubrics, curated data) is the same: only `web.jsonl`
differs, which `condition_cfg` checks. Each condition has its own models folder — the augmented condition is
the main run's (`{models}/base`, `{models}/lima`, reused), the single one `{models}/experiments/
extractability/single/` with its world files beside it — and LIMA is fine-tuned on the same
`{processed}/train.jsonl` with the main recipe.

Three measures per condition and group, each with a person-resampled interval:
- `base_cloze`: the standard probe (the first phrasing, cut before the value, greedy; lima.world.probe);
- `base_own_text`: the person's own pretraining biography cut before each value — did the base store the
  sequence at all (a single-phrasing base can hold the text and still fail the standard probe);
- `lima_answers`: what the fine-tuned model says when asked (lima.world.probe.answer_accuracy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lima.world.probe import continuation_hits
from lima.world.world import ATTRIBUTES, Person

CONDITIONS = ("augmented", "single")
MEASURES = ("base_cloze", "base_own_text", "lima_answers")
COLUMNS = ["condition", "measure", "group", "accuracy", "ci_low", "ci_high", "n_people", "n_facts"]


def condition_cfg(profile: str, overrides: Mapping[str, Any], condition: str,
                  pretrain_steps: int | None = None) -> dict[str, Any]:
    """The profile for one condition: `augmented` is the main run; `single` moves models and world files to
    `{models}/experiments/extractability/single/` and sets `world.corpus_style: single`."""
    from lima.config import load_profile

    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
    main = load_profile(profile, dict(overrides))
    if condition == "augmented":
        return main
    root = Path(main["paths"]["models"]) / "experiments" / "extractability" / "single"
    extra: dict[str, Any] = {"paths.models": str(root), "world.corpus_style": "single",
                             "world.root": str(root / "world")}
    if pretrain_steps is not None:
        extra["model.smoke.pretrain_steps"] = int(pretrain_steps)
    return load_profile(profile, {**dict(overrides), **extra})


def check_same_world(main: Mapping[str, Any], other: Mapping[str, Any]) -> None:
    """The two conditions must differ in their web only: the same world.json and rubrics, a different base."""
    from lima.world import world_root

    a, b = world_root(main), world_root(other)
    for name in ("world.json", "rubrics.jsonl"):
        if (a / name).read_bytes() != (b / name).read_bytes():
            raise RuntimeError(f"{b / name} differs from {a / name}: the control must change the web only")
    if Path(main["paths"]["models"]).resolve() == Path(other["paths"]["models"]).resolve():
        raise RuntimeError("the two conditions share a models folder: the bases would overwrite each other")


def own_text_prefixes(person: Person, documents: Sequence[str]) -> list[tuple[str, str, str]]:
    """(attribute, prefix, value) from the person's first biography in the web: the text up to each value.

    A biography is a document that names the person and states all six values; a value at the very start
    of the document leaves no prefix and is skipped.
    """
    values = {a: person.value(a) for a in ATTRIBUTES}
    doc = next((d for d in documents if person.name in d and all(v in d for v in values.values())), None)
    if doc is None:
        return []
    out = []
    for attribute, value in values.items():
        cut = doc.find(value)
        if cut > 0:
            out.append((attribute, doc[:cut].rstrip(), value))
    return out


def summary_table(rows: Sequence[Mapping[str, Any]], n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Rows with `condition`, `measure`, `group`, `person`, `known` → accuracy per cell, people resampled."""
    from lima.world.probe import person_bootstrap_ci

    cells: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        cells.setdefault((str(r["condition"]), str(r["measure"]), str(r["group"])), []).append(r)
    order = {c: i for i, c in enumerate(CONDITIONS)} | {m: i for i, m in enumerate(MEASURES)}
    table = []
    for (condition, measure, group), cell in sorted(cells.items(), key=lambda kv: (
            order.get(kv[0][0], 99), order.get(kv[0][1], 99), kv[0][2])):
        mean, lo, hi = person_bootstrap_ci(cell, n_boot=n_boot, seed=seed)
        table.append({"condition": condition, "measure": measure, "group": group, "accuracy": round(mean, 4),
                      "ci_low": round(lo, 4), "ci_high": round(hi, 4),
                      "n_people": len({r["person"] for r in cell}), "n_facts": len(cell)})
    return table


def findings(table: Sequence[Mapping[str, Any]], group: str = "held_out") -> str:
    """The "what this run shows" paragraph: extraction (LIMA's answers over the base probe) per condition."""
    cell = {(r["condition"], r["measure"]): r for r in table if r["group"] == group}

    def fmt(c: str, m: str) -> str:
        r = cell.get((c, m))
        return "n/a" if r is None else f"{r['accuracy']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"

    parts = []
    for c in CONDITIONS:
        if (c, "lima_answers") not in cell:
            continue
        stored = max((cell[(c, m)]["accuracy"] for m in ("base_cloze", "base_own_text") if (c, m) in cell),
                     default=float("nan"))
        ratio = cell[(c, "lima_answers")]["accuracy"] / stored if stored and stored == stored else float("nan")
        parts.append(f"{c} web: base cloze {fmt(c, 'base_cloze')}, own-text cloze {fmt(c, 'base_own_text')}, "
                     f"LIMA answers {fmt(c, 'lima_answers')} (extracted share of what the base stored: {ratio:.2f})")
    if not parts:
        return "No LIMA answers were measured: nothing to report."
    verdict = ""
    a, s = cell.get(("augmented", "lima_answers")), cell.get(("single", "lima_answers"))
    if a and s:
        if s["ci_high"] < a["ci_low"]:
            verdict = (" LIMA answers fewer held-out facts from the single-biography base than from the augmented "
                       "one, intervals apart: what the hypothesis needs (knowledge stored extractably) is a "
                       "property of the pretraining data, as Physics of LMs 3.1 found.")
        elif a["ci_high"] < s["ci_low"]:
            verdict = " LIMA answers more held-out facts from the single-biography base, intervals apart."
        else:
            verdict = " The two conditions' answer intervals overlap: no difference shown at this size."
    return f"Held-out people ({group}): " + "; ".join(parts) + "." + verdict


def measure(cfg: dict[str, Any], condition: str, lima_dir: str | Path, probe_people: int | None,
            groups: Sequence[str] = ("sft", "held_out")) -> list[dict[str, Any]]:
    """The three measures of one condition on its base and its LIMA model, as per-fact rows."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lima.train.base import ensure_base
    from lima.world import load_world, web_texts
    from lima.world.corpus import cloze
    from lima.world.probe import answer_accuracy

    world, docs = load_world(cfg), web_texts(cfg)
    people = [p for g in groups for p in world.group(g)[:probe_people]]
    base = ensure_base(cfg)
    model, tok = AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)
    standard = [(p.name, p.group, a, *cloze(p, a)) for p in people for a in ATTRIBUTES]
    own = [(p.name, p.group, a, prefix, v) for p in people for a, prefix, v in own_text_prefixes(p, docs)]
    rows = [{**r, "measure": "base_cloze"} for r in continuation_hits(model, tok, standard)]
    rows += [{**r, "measure": "base_own_text"} for r in continuation_hits(model, tok, own)]
    rows += [{**r, "measure": "lima_answers"} for r in answer_accuracy(lima_dir, cfg, world, people)]
    return [{**r, "condition": condition} for r in rows]


def run(profile: str, overrides: Mapping[str, Any], probe_people: int | None = None,
        pretrain_steps: int | None = None) -> dict[str, Any]:
    """Both conditions end to end (the augmented one reuses the main run's base and LIMA model)."""
    import json

    from lima.config import resolve
    from lima.experiments.runs import results_csv
    from lima.io import selected_checkpoint, write_csv, write_jsonl
    from lima.train import finetune
    from lima.train.base import ensure_base
    from lima.world import world_root, write_world

    cfgs = {c: condition_cfg(profile, overrides, c, pretrain_steps) for c in CONDITIONS}
    main, single = cfgs["augmented"], cfgs["single"]
    if not (world_root(single) / "world.json").exists():
        write_world(single)
    check_same_world(main, single)
    rows, logs = [], {}
    train_file = resolve(main["paths"]["processed"]) / "train.jsonl"
    for condition, cfg in cfgs.items():
        base = ensure_base(cfg)
        logs[condition] = json.loads((Path(base) / "pretrain_log.json").read_text())
        run_dir = resolve(cfg["paths"]["models"]) / "lima"
        lima_dir = selected_checkpoint(run_dir)
        if lima_dir is None:                       # the single condition (or a main run without LIMA yet)
            lima_dir = finetune(cfg, train_file, run_name="lima")
        rows += measure(cfg, condition, lima_dir, probe_people)
    bootstrap = int((main.get("analysis") or {}).get("bootstrap", 1000))
    table = summary_table(rows, n_boot=bootstrap, seed=int(main.get("seed", 0)))
    path = results_csv(main, "extractability")
    config = {"probe_people": probe_people, "pretrain": {c: {k: logs[c].get(k) for k in ("epochs", "seconds",
                                                                                         "documents")}
                                                         for c in logs}}
    write_jsonl(path.with_name("extractability_rows.jsonl"), rows, config=config)
    write_csv(path, table, COLUMNS, config=config)
    return {"table": table, "csv": path, "pretrain": config["pretrain"], "rows": len(rows)}


__all__ = ["COLUMNS", "CONDITIONS", "MEASURES", "check_same_world", "condition_cfg", "continuation_hits",
           "findings", "measure", "own_text_prefixes", "run", "summary_table"]
