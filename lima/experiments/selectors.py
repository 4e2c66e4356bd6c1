"""Selectors side by side (issue 10, beyond the paper 4): LIMA's curation vs the longest responses ("Long Is
More", Zhao et al. 2024) vs the diversity selector vs random — the same pool, the same number of examples.

The pool is everything curation had in hand as single-turn training rows: LIMA's curated set
(`{processed}/train.jsonl`) and the unfiltered pool beside it (`pool_unfiltered.jsonl`: answered Stack Exchange
rows, wikiHow, WritingPrompts, SNI, drawn without quality filters), de-duplicated by id. Each selector draws n
rows from it: `lima` the curated rows (a seeded subset when n is smaller), `longest` the n longest responses,
`diversity` k-center greedy over TF-IDF (lima.curation.selectors), `random` uniform. Each set is fine-tuned with
the same recipe, answers the same test prompts, and LIMA is judged pairwise against each by the reference judge;
the win rate (ties half) has a prompt-level t interval, and the length-controlled win rate
(lima.analysis.length_control) asks whether a gap is only length.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from lima.curation.selectors import Item, select_diversity, select_lima, select_longest

SELECTORS = ("lima", "longest", "diversity", "random")
FOCAL = "lima"
COLUMNS = ["opponent", "n_examples", "n_prompts", "wins", "ties", "losses", "unparsed", "win_rate", "ci_low",
           "ci_high", "lc_win_rate", "lc_low", "lc_high", "length_coef", "mean_len_lima", "mean_len_opponent",
           "train_chars_lima", "train_chars_opponent"]


def response_of(row: Mapping[str, Any]) -> str:
    return next((str(m["content"]) for m in row.get("messages", []) if m.get("role") == "assistant"), "")


def candidate_pool(curated: Sequence[Mapping[str, Any]], unfiltered: Sequence[Mapping[str, Any]]
                   ) -> list[dict[str, Any]]:
    """Single-turn rows with an answer, curated first, each id once (a row in both files counts as curated)."""
    pool: dict[str, dict[str, Any]] = {}
    for origin, rows in (("curated", curated), ("unfiltered", unfiltered)):
        for i, row in enumerate(rows):
            if "id" not in row or not isinstance(row.get("messages"), list):
                raise ValueError(f"{origin} row {i}: not a training row (needs id and messages)")
            roles = [m.get("role") for m in row["messages"]]
            if roles != ["user", "assistant"] or not response_of(row).strip():
                continue
            pool.setdefault(str(row["id"]), {**row, "meta": {**(row.get("meta") or {}), "pool_origin": origin}})
    return list(pool.values())


def _items(pool: Sequence[Mapping[str, Any]]) -> list[Item]:
    return [Item(str(r["id"]), str(r.get("source")), (0,), f"{r['messages'][0]['content']}\n{response_of(r)}",
                 len(response_of(r)), r) for r in pool]


def pick(pool: Sequence[Mapping[str, Any]], selector: str, n: int, seed: int) -> list[dict[str, Any]]:
    """n rows of the pool by one selector; too small a pool (or too few curated rows for `lima`) is an error."""
    items = _items(pool)
    rng = random.Random(f"{seed}:selectors:{selector}")
    if selector == "lima":
        curated = [i for i in items if i.payload["meta"]["pool_origin"] == "curated"]
        chosen = select_lima(curated, n, "random", rng, source="selectors: lima (curated rows)").items
    elif selector == "longest":
        chosen = select_longest(items, n, source="selectors: longest").items
    elif selector == "diversity":
        chosen = select_diversity(items, n, rng, source="selectors: diversity").items
    elif selector == "random":
        chosen = select_lima(items, n, "random", rng, source="selectors: random").items
    else:
        raise ValueError(f"selector must be one of {SELECTORS}, got {selector!r}")
    return [dict(i.payload) for i in chosen]


def build_conditions(pool: Sequence[Mapping[str, Any]], n: int, seed: int,
                     selectors: Sequence[str] = SELECTORS) -> dict[str, list[dict[str, Any]]]:
    """Every selector's n rows from the one pool; checked: n distinct ids each, all from the pool."""
    if FOCAL not in selectors:
        raise ValueError(f"selectors must include {FOCAL!r} (every other set is judged against it)")
    ids = {str(r["id"]) for r in pool}
    out = {}
    for name in selectors:
        rows = pick(pool, name, n, seed)
        got = [str(r["id"]) for r in rows]
        if len(got) != n or len(set(got)) != n or not set(got) <= ids:
            raise RuntimeError(f"selector {name!r}: {len(set(got))} distinct rows of {n} from the pool")
        out[name] = rows
    return out


def outcome(verdict: str | None, focal: str, opponent: str) -> str | None:
    """The focal system's win / tie / loss from a pairwise verdict (None: the judge gave none)."""
    if verdict is None:
        return None
    if verdict == "tie":
        return "tie"
    if verdict in ("a", "b"):        # judge_pairwise's verdicts are from system_a's side (system_a = the focal)
        return "win" if verdict == "a" else "loss"
    if verdict not in (focal, opponent):
        raise ValueError(f"verdict {verdict!r} names neither {focal!r} nor {opponent!r}")
    return "win" if verdict == focal else "loss"


def win_table(judged: Mapping[str, Sequence[Mapping[str, Any]]], train_sets: Mapping[str, Sequence[Mapping[str, Any]]],
              ci: float = 0.95, n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """One row per opponent from the pairwise rows (lima.judge.protocols.judge_pairwise, system_a = LIMA):
    LIMA's win rate (%, ties half) with a prompt-level t interval, and the length-controlled win rate with its
    prompt bootstrap interval."""
    from lima.analysis.length_control import length_controlled_table
    from lima.analysis.stats import prompt_mean_ci

    score = {"win": 100.0, "tie": 50.0, "loss": 0.0}
    items: list[dict[str, Any]] = []
    per_opponent: dict[str, list[dict[str, Any]]] = {}
    for opponent, rows in judged.items():
        for r in rows:
            if r["system_a"] != FOCAL or r["system_b"] != opponent:
                raise ValueError(f"pairwise row {r['prompt_id']}: {r['system_a']} vs {r['system_b']}, "
                                 f"expected {FOCAL} vs {opponent}")
            o = outcome(r["verdict"], FOCAL, opponent)
            per_opponent.setdefault(opponent, []).append({**r, "outcome": o})
            if o is not None:
                items.append({"baseline": opponent, "prompt_id": r["prompt_id"], "outcome": o,
                              "len_system": r["len_a"], "len_baseline": r["len_b"]})
    lc = {row["baseline"]: row for row in length_controlled_table(items, n_boot=n_boot, ci=ci, seed=seed)} \
        if items else {}
    chars = {k: sum(len(response_of(r)) for r in v) / max(1, len(v)) for k, v in train_sets.items()}
    table = []
    for opponent, rows in per_opponent.items():
        parsed = [r for r in rows if r["outcome"] is not None]
        wr = prompt_mean_ci([(r["prompt_id"], score[r["outcome"]]) for r in parsed], ci)
        fit = lc.get(opponent, {})
        table.append({
            "opponent": opponent, "n_examples": len(train_sets.get(opponent, [])), "n_prompts": wr["n_prompts"],
            "wins": sum(r["outcome"] == "win" for r in parsed), "ties": sum(r["outcome"] == "tie" for r in parsed),
            "losses": sum(r["outcome"] == "loss" for r in parsed), "unparsed": len(rows) - len(parsed),
            "win_rate": round(wr["mean"], 2), "ci_low": round(wr["ci_low"], 2), "ci_high": round(wr["ci_high"], 2),
            "lc_win_rate": round(fit.get("lc_win_rate", float("nan")), 2),
            "lc_low": round(fit.get("lc_low", float("nan")), 2), "lc_high": round(fit.get("lc_high", float("nan")), 2),
            "length_coef": round(fit.get("length_coef", float("nan")), 4),
            "mean_len_lima": round(sum(r["len_a"] for r in rows) / max(1, len(rows)), 1),
            "mean_len_opponent": round(sum(r["len_b"] for r in rows) / max(1, len(rows)), 1),
            "train_chars_lima": round(chars.get(FOCAL, float("nan")), 1),
            "train_chars_opponent": round(chars.get(opponent, float("nan")), 1)})
    return table


def findings(table: Sequence[Mapping[str, Any]]) -> str:
    """The "what this run shows" paragraph, computed from the table."""
    parts = []
    for row in table:
        lo, hi = row["ci_low"], row["ci_high"]
        verdict = "beats" if lo > 50 else "loses to" if hi < 50 else "is not distinguishable from"
        lc = row["lc_win_rate"]
        lc_note = (f"; length-controlled {lc:.1f}% [{row['lc_low']:.1f}, {row['lc_high']:.1f}]"
                   if lc == lc else "")
        parts.append(f"LIMA's set {verdict} the {row['opponent']} set: win rate {row['win_rate']:.1f}% "
                     f"[{lo:.1f}, {hi:.1f}] over {row['n_prompts']} prompts ({row['wins']}/{row['ties']}/"
                     f"{row['losses']} W/T/L{lc_note}; training responses {row['train_chars_opponent']:.0f} vs "
                     f"LIMA's {row['train_chars_lima']:.0f} characters on average)")
    if not parts:
        return "No pairwise verdicts: nothing to report."
    return ("Same pool, same size, same recipe: " + "; ".join(parts) + ". A win rate whose interval holds 50% is "
            "no evidence either way at this number of prompts.")


def run(cfg: dict[str, Any], n: int, selectors: Sequence[str] = SELECTORS, epochs: int | None = None,
        max_test_prompts: int | None = None) -> dict[str, Any]:
    """Draw, fine-tune, answer and judge every condition; writes `{results}/experiments/selectors.csv`."""
    from lima.config import resolve
    from lima.experiments.runs import answer, recipe, results_csv, run_name, subset
    from lima.io import read_jsonl, write_csv, write_jsonl
    from lima.judge import judge_config, judge_endpoint
    from lima.judge.protocols import judge_pairwise
    from lima.llm_client import LLMClient
    from lima.train import finetune

    seed = int(cfg.get("seed", 0))
    processed = resolve(cfg["paths"]["processed"])
    pool = candidate_pool(read_jsonl(processed / "train.jsonl"), read_jsonl(processed / "pool_unfiltered.jsonl"))
    sets = build_conditions(pool, n, seed, selectors)
    prompts = subset(read_jsonl(processed / "test.jsonl"), max_test_prompts, seed, "selectors test prompts")
    rec = recipe(cfg, epochs=epochs)
    out = results_csv(cfg, "selectors").parent / "selectors"
    responses = {}
    for name, rows in sets.items():
        train_file = out / "train" / f"{name}.jsonl"
        write_jsonl(train_file, rows, config={"selector": name, "n": n, "pool": len(pool), "seed": seed})
        model = finetune(rec, train_file, run_name=run_name("selectors", name))
        responses[name] = answer(rec, name, model, prompts, out / "responses" / f"{name}.jsonl")
    jc = judge_config(cfg)
    judged = {}
    with judge_endpoint(cfg) as endpoint:
        client = LLMClient(endpoint, cache_path=resolve(jc.cache) if jc.cache else None)
        try:
            for name in sets:
                if name != FOCAL:
                    judged[name] = judge_pairwise(cfg, responses[FOCAL], responses[name], client=client)
                    write_jsonl(out / "judged" / f"{FOCAL}_vs_{name}.jsonl", judged[name], config=jc)
        finally:
            client.close()
    bootstrap = int((cfg.get("analysis") or {}).get("bootstrap", 1000))
    table = win_table(judged, sets, n_boot=bootstrap, seed=seed)
    path = results_csv(cfg, "selectors")
    write_csv(path, table, COLUMNS, config={"n": n, "selectors": list(selectors), "epochs": rec["train"]["epochs"],
                                            "test_prompts": len(prompts), "pool": len(pool)})
    return {"table": table, "csv": path, "pool": len(pool), "prompts": len(prompts), "sets": sets,
            "responses": responses}


__all__ = ["COLUMNS", "FOCAL", "SELECTORS", "build_conditions", "candidate_pool", "findings", "outcome", "pick",
           "run", "win_table"]
