"""The knowledge probe: what a model knows, read by cloze on the pretraining text's own phrasing.

For each person and attribute the probe feeds the first biography phrasing cut before the value ("Mira Talvek
was born in the city of") and greedily decodes a few tokens; the fact is known when the continuation starts
with the true value. Accuracy per group and attribute, with a 95% interval that resamples people (the unit that
was drawn), is what notebook 03 shows next to LIMA's answers about the same facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lima.world.corpus import cloze, howto_cloze
from lima.world.grade import ordered_share
from lima.world.world import ATTRIBUTES, Person, World


@torch.no_grad()
def continuation_hits(model: Any, tokenizer: Any, items: Sequence[tuple[str, str, str, str, str]],
                      batch_size: int = 64, max_new_tokens: int = 8) -> list[dict[str, Any]]:
    """Greedy continuation of each (subject, group, attribute, prefix, value) — a person's name or a procedure's
    id: one row each, `known` when it starts with the value."""
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    rows = []
    try:
        model.eval()
        for i in range(0, len(items), batch_size):
            chunk = items[i:i + batch_size]
            enc = tokenizer([prefix for *_, prefix, _ in chunk], return_tensors="pt", padding=True)
            enc.pop("token_type_ids", None)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            for (subject, group, attribute, prefix, answer), ids in zip(chunk, out, strict=True):
                text = tokenizer.decode(ids[enc["input_ids"].shape[1]:], skip_special_tokens=True)
                rows.append({"person": subject, "group": group, "attribute": attribute,
                             "prefix": prefix, "continuation": text, "answer": answer,
                             "known": text.strip().startswith(answer)})
    finally:
        tokenizer.padding_side = side
    return rows


def cloze_hits(model: Any, tokenizer: Any, people: Sequence[Person], attributes: Sequence[str] = ATTRIBUTES,
               batch_size: int = 64, max_new_tokens: int = 8) -> list[dict[str, Any]]:
    """One row per (person, attribute): the probe phrasing's prefix, the continuation, whether it was right."""
    items = [(p.name, p.group, a, *cloze(p, a)) for p in people for a in attributes]
    return continuation_hits(model, tokenizer, items, batch_size, max_new_tokens)


def person_bootstrap_ci(rows: Sequence[dict[str, Any]], key: str = "known", n_boot: int = 1000,
                        seed: int = 0) -> tuple[float, float, float]:
    """Mean of `key` with a 95% percentile interval that resamples people, not (person, attribute) cells."""
    by_person: dict[str, list[float]] = {}
    for r in rows:
        by_person.setdefault(r["person"], []).append(float(r[key]))
    if not by_person:
        return float("nan"), float("nan"), float("nan")
    sums = np.array([sum(v) for v in by_person.values()])
    counts = np.array([len(v) for v in by_person.values()])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(sums), size=(n_boot, len(sums)))
    boot = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    return float(sums.sum() / counts.sum()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def probe_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Accuracy per group × attribute (and 'all'), each with its person-resampled 95% interval."""
    out = []
    for group in sorted({r["group"] for r in rows}):
        for attribute in [*ATTRIBUTES, "all"]:
            sub = [r for r in rows if r["group"] == group and attribute in (r["attribute"], "all")]
            mean, lo, hi = person_bootstrap_ci(sub)
            out.append({"group": group, "attribute": attribute, "n": len(sub), "accuracy": round(mean, 4),
                        "ci_low": round(lo, 4), "ci_high": round(hi, 4)})
    return out


def probe_world(model: Any, tokenizer: Any, world: World, groups: Sequence[str] = ("sft", "held_out"),
                max_people: int | None = None) -> list[dict[str, Any]]:
    people = [p for g in groups for p in world.group(g)[:max_people]]
    return cloze_hits(model, tokenizer, people)


def answer_accuracy(model_dir: Any, cfg: dict[str, Any], world: World, people: Sequence[Person],
                    attributes: Sequence[str] = ATTRIBUTES, max_new_tokens: int = 48) -> list[dict[str, Any]]:
    """What a chat model *says* about the probed facts: it is asked each one (greedy) and graded.

    The rows have the probe's shape (`known` = the answer was right), so `probe_table` and the person-resampled
    interval apply unchanged, and the two tables line up fact by fact.
    """
    from dataclasses import replace

    from lima.generate import decoding_of, load_generator
    from lima.world.assistant import fact_question
    from lima.world.grade import attribute_correct

    decoding = replace(decoding_of(cfg), do_sample=False, max_new_tokens=max_new_tokens)
    generator = load_generator(model_dir, decoding)
    items = [(p, a) for p in people for a in attributes]
    results = generator.generate([[{"role": "user", "content": fact_question(p, a)}] for p, a in items], seed=0)
    return [{"person": p.name, "group": p.group, "attribute": a, "prefix": fact_question(p, a),
             "continuation": r.text, "answer": p.value(a),
             "known": attribute_correct(world, r.text, a, p.value(a), p.name)}
            for (p, a), r in zip(items, results, strict=True)]


@torch.no_grad()
def procedure_probe(model: Any, tokenizer: Any, world: World, groups: Sequence[str] = ("sft", "held_out"),
                    max_new_tokens: int = 40) -> list[dict[str, Any]]:
    """What the base knows of each procedure: its how-to page's intro, then a greedy continuation, graded as the
    answers are (the ordered share of true steps, `lima.world.grade`) — the probe beside procedure accuracy."""
    procedures = [p for p in world.procedures if p.group in groups]
    items = [(p.id, p.group, "procedure", *howto_cloze(p)) for p in procedures]
    rows = continuation_hits(model, tokenizer, items, max_new_tokens=max_new_tokens)
    for row, proc in zip(rows, procedures, strict=True):
        row["steps_known"] = ordered_share(row["continuation"], proc.steps)
    return rows


def procedure_probe_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per group: first step right, and the ordered share of steps, with a Wilson interval over procedures."""
    from lima.analysis.stats import wilson_ci

    out = []
    for group in sorted({r["group"] for r in rows}):
        sub = [r for r in rows if r["group"] == group]
        for metric, key in (("first_step", "known"), ("steps_in_order", "steps_known")):
            mean, low, high = wilson_ci([float(r[key]) for r in sub])
            out.append({"group": group, "metric": metric, "n": len(sub), "accuracy": round(mean, 4),
                        "ci_low": round(low, 4), "ci_high": round(high, 4)})
    return out
