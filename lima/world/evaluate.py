"""The world's evaluation beside the judge: per-response metrics, and the second judge measured against the first.

The paper reports GPT-4's agreement with humans instead of assuming it; here the tiny LM judge (the fine-tuned
world model served by `lima serve`, `world.second_judge`) judges the same pairs as the reference judge, and its
agreement with the reference is reported with the paper's statistics (tie-discounted accuracy, plain
agreement, Cohen's κ) and its own flip rate. No human label is ever simulated: human rows come only from the
annotation app.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from lima.analysis.agreement import cohen_kappa, plain_agreement, tie_discounted_accuracy
from lima.config import resolve
from lima.io import iter_jsonl, read_jsonl, write_csv, write_jsonl
from lima.world import load_rubrics, load_world, world_config
from lima.world.metrics import metrics_table


def results_dir(cfg: dict[str, Any]) -> Path:
    return resolve(cfg["paths"]["results"]) / "world"


def responses_by_system(cfg: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    folder = resolve(cfg["paths"]["results"]) / "responses"
    return {p.stem: read_jsonl(p) for p in sorted(folder.glob("*.jsonl"))}


def write_metrics(cfg: dict[str, Any]) -> Path:
    """`{results}/world/metrics.csv`: one row per system × metric, 95% CI over prompts."""
    responses = responses_by_system(cfg)
    table = metrics_table(load_world(cfg), load_rubrics(cfg), responses)
    folder = resolve(cfg["paths"]["results"]) / "responses"
    return write_csv(results_dir(cfg) / "metrics.csv", table,
                     ["system", "metric", "n_prompts", "mean", "ci_low", "ci_high"],
                     config=cfg.get("world"), inputs=sorted(folder.glob("*.jsonl")))




def second_judge_agreement(cfg: dict[str, Any], focal: str, baselines: list[str]) -> list[dict[str, Any]]:
    """Judge focal-vs-baseline pairs again with the second judge; agreement with the reference per baseline."""
    from lima.judge import judge_endpoint
    from lima.judge.cli import judgments_dir, load_responses
    from lima.judge.protocols import judge_pairwise
    from lima.llm_client import LLMClient

    wc = world_config(cfg)
    if not wc.second_judge:
        return []
    second = copy.deepcopy(cfg)
    second["judge"].update(local_model=wc.second_judge, model="world-lm-judge", logprobs=True, guided_choice=True,
                           max_response_chars=400)
    out_dir = results_dir(cfg) / "second_judge"
    table = []
    with judge_endpoint(second) as endpoint:
        client = LLMClient(endpoint, cache_path=resolve(cfg["judge"]["cache"]) if cfg["judge"].get("cache") else None)
        try:
            for baseline in baselines:
                reference_file = judgments_dir(cfg) / f"pairwise__{focal}__{baseline}.jsonl"
                if not reference_file.exists():
                    continue
                reference = {r["prompt_id"]: r for r in iter_jsonl(reference_file)}
                rows = judge_pairwise(second, load_responses(cfg, focal), load_responses(cfg, baseline),
                                      client=client, desc=f"second judge {focal} vs {baseline}")
                write_jsonl(out_dir / f"pairwise__{focal}__{baseline}.jsonl", rows, config=second.get("judge"))
                shared = [r for r in rows if r["verdict"] and (reference.get(r["prompt_id"]) or {}).get("verdict")]
                if not shared:
                    continue
                a = [reference[r["prompt_id"]]["verdict"] for r in shared]   # a | b | tie, system A's side
                b = [r["verdict"] for r in shared]
                table.append({"baseline": baseline, "n": len(shared), "unparsed": len(rows) - len(shared),
                              "tie_discounted_accuracy": round(tie_discounted_accuracy(a, b), 4),
                              "plain_agreement": round(plain_agreement(a, b), 4),
                              "kappa": round(cohen_kappa(a, b), 4),
                              "second_judge_flip_rate": round(sum(bool(r["flipped"]) for r in shared) / len(shared), 4),
                              "second_judge_ties": round(b.count("tie") / len(b), 4),
                              "reference_ties": round(a.count("tie") / len(a), 4)})
        finally:
            client.close()
    write_csv(results_dir(cfg) / "judge_agreement.csv", table, list(table[0]) if table else ["baseline"],
              config={"second_judge": wc.second_judge, "reference": "lima.world.judge"})
    return table
