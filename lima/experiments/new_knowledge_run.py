"""Running the new-knowledge experiment (lima.experiments.new_knowledge): classify, fine-tune, evaluate, report.

Split from the logic module so the classification and the set building stay testable without a model.
Writes `{results}/experiments/new_knowledge.csv` (per share × epoch × metric, 95% intervals over prompts),
`new_knowledge_facts.csv` (the base's category of every candidate fact), `new_knowledge_answers.jsonl`
(every graded answer) and the figure `{figures}/exp_new_knowledge.{png,pdf}`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from lima.experiments.new_knowledge import (
    NAME,
    Pools,
    classify_facts,
    condition_rows,
    eval_prompts,
    grade_answers,
    hf_completer,
    split_unseen,
    summarise,
)
from lima.experiments.runs import models_root, recipe, results_csv, run_name
from lima.io import atomic_write, write_jsonl, write_manifest
from lima.world.world import ATTRIBUTES


def condition_name(share: float) -> str:
    return f"unknown_{round(100 * share):03d}"


def classify_pools(cfg: dict[str, Any], k_samples: int, temperature: float, max_pool_people: int | None,
                   eval_people: int | None) -> tuple[Any, Pools, list[dict[str, Any]]]:
    """The world, its pools, and the base's classification of every candidate fine-tune fact."""
    from lima.model import load_model
    from lima.train.base import ensure_base
    from lima.world import load_world

    world = load_world(cfg)
    model, tok = load_model(ensure_base(cfg), "float32")
    complete = hf_completer(model, tok, temperature=temperature, seed=int(cfg.get("seed", 0)))
    train_unseen, test_unseen = split_unseen(world)
    facts = classify_facts(complete, world.group("sft")[:max_pool_people] + train_unseen, k_samples=k_samples)
    pools = Pools(known=[f for f in facts if f["group"] == "sft" and f["known"]],
                  unknown=[f for f in facts if f["group"] == "unseen" and f["category"] == "Unknown"],
                  abstain=world.group("unknown_sft"), held_out=world.group("held_out")[:eval_people],
                  unseen_test=test_unseen)
    return world, pools, facts


def answer_checkpoint(cfg: dict[str, Any], checkpoint: Any, prompts: Sequence[Mapping[str, Any]],
                      max_new_tokens: int) -> tuple[list[str], list[str]]:
    """Greedy answers of one checkpoint (deterministic: one answer per prompt, so prompts are the unit)."""
    from lima.generate import decoding_of, load_generator

    decoding = replace(decoding_of(cfg), do_sample=False, max_new_tokens=max_new_tokens)
    results = load_generator(checkpoint, decoding).generate(
        [[{"role": "user", "content": p["prompt"]}] for p in prompts], seed=0)
    return [r.text for r in results], [r.stop_reason for r in results]


def run_new_knowledge(cfg: dict[str, Any], shares: Sequence[float] = (0.0, 0.5, 1.0), epochs: int = 4,
                      n_facts: int | None = None, k_samples: int = 8, temperature: float = 0.5,
                      max_pool_people: int | None = None, eval_people: int | None = None,
                      attributes: Sequence[str] = ATTRIBUTES, max_new_tokens: int = 48) -> dict[str, Any]:
    """Classify with the base, fine-tune one model per share (a checkpoint per epoch), grade every epoch."""
    from lima.train import finetune

    seed = int(cfg.get("seed", 0))
    world, pools, facts = classify_pools(cfg, k_samples, temperature, max_pool_people, eval_people)
    n = n_facts if n_facts is not None else min(len(pools.known), len(pools.unknown))
    if n < 1:
        raise ValueError(f"{NAME}: no fact pool to build from ({len(pools.known)} Known sft facts, "
                         f"{len(pools.unknown)} Unknown unseen facts)")
    rcfg = recipe(cfg, epochs=epochs, save_every_epoch=True)
    out_csv = results_csv(cfg, NAME)
    graded: list[dict[str, Any]] = []
    for share in shares:
        cond = condition_name(share)
        rows = condition_rows(world, pools, share, n, seed)
        train_file = models_root(cfg, NAME) / f"{cond}.train.jsonl"
        write_jsonl(train_file, rows, config={"share": share, "n_facts": n, "k_samples": k_samples})
        finetune(rcfg, train_file, run_name=run_name(NAME, cond))
        train_facts = [r for r in rows if r["category"] != "abstain"]
        prompts = eval_prompts(world, pools, attributes, train_facts)
        for epoch in range(1, epochs + 1):
            ckpt = models_root(cfg, NAME) / cond / f"checkpoint-epoch-{epoch}"
            texts, stops = answer_checkpoint(rcfg, ckpt, prompts, max_new_tokens)
            graded += [{**r, "share": share, "epoch": epoch}
                       for r in grade_answers(world, prompts, texts, stops)]
    table = pd.DataFrame(summarise(graded))
    with atomic_write(out_csv) as handle:
        table.to_csv(handle, index=False)
    extra = {"n_facts": n, "shares": list(shares), "epochs": epochs, "k_samples": k_samples,
             "temperature": temperature, "pools": {"known": len(pools.known), "unknown": len(pools.unknown),
                                                   "held_out_people": len(pools.held_out),
                                                   "unseen_test_people": len(pools.unseen_test)}}
    write_manifest(out_csv, config=rcfg, extra=extra)
    facts_csv = out_csv.with_name(f"{NAME}_facts.csv")
    with atomic_write(facts_csv) as handle:
        pd.DataFrame(facts).to_csv(handle, index=False)
    write_manifest(facts_csv, config=rcfg, extra=extra)
    write_jsonl(out_csv.with_name(f"{NAME}_answers.jsonl"), graded, config=rcfg, extra=extra)
    return {"table": table, "facts": pd.DataFrame(facts), "answers": graded, "csv": out_csv, **extra}


def findings(table: pd.DataFrame) -> str:
    """The notebook's closing paragraph, computed from the table (last epoch and best epoch per share)."""
    if table.empty:
        return "No results."

    def at(metric: str, share: float, epoch: int) -> dict[str, Any] | None:
        sub = table[(table["metric"] == metric) & (table["share"] == share) & (table["epoch"] == epoch)]
        return None if sub.empty else sub.iloc[0].to_dict()

    def fmt(r: dict[str, Any] | None) -> str:
        if r is None or r["mean"] is None or (isinstance(r["mean"], float) and math.isnan(r["mean"])):
            return "n/a"
        return f"{r['mean']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"

    shares = sorted(table["share"].unique())
    last = int(table["epoch"].max())
    parts = []
    for metric in ("held-out fact accuracy", "hallucination rate", "fit: Unknown fine-tune facts"):
        cells = ", ".join(f"{100 * s:.0f}% Unknown {fmt(at(metric, s, last))}" for s in shares)
        parts.append(f"{metric} at epoch {last}: {cells}")
    acc = table[table["metric"] == "held-out fact accuracy"]
    best = ", ".join(f"{100 * s:.0f}% → epoch {int(g.loc[g['mean'].idxmax(), 'epoch'])}"
                     for s, g in acc.groupby("share") if g["mean"].notna().any())
    lo, hi = at("held-out fact accuracy", shares[0], last), at("held-out fact accuracy", shares[-1], last)
    lo_h, hi_h = at("hallucination rate", shares[0], last), at("hallucination rate", shares[-1], last)

    def verdict(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
        if a is None or b is None or any(math.isnan(float(x)) for x in (a["ci_low"], b["ci_high"])):
            return "not measurable"
        return "yes" if a["ci_low"] > b["ci_high"] else "no (intervals overlap)" if a["ci_high"] >= b["ci_low"] \
            else "no (the opposite)"
    return ("; ".join(parts) + f". Epoch of best held-out accuracy: {best}. "
            f"More Unknown facts in the fine-tune lower held-out accuracy (Gekhman et al.): **{verdict(lo, hi)}**; "
            f"they raise hallucination on unseen people: **{verdict(hi_h, lo_h)}** "
            f"(95% intervals over prompts, {int(lo['n_prompts']) if lo else 0} held-out prompts).")
