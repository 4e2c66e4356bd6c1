"""The three judge protocols on top of `LLMClient` (one request list per protocol, run concurrently).

Pairwise judging asks for both orders, (A,B) and (B,A): LLM judges favour a position (MT-Bench measured
GPT-4 flipping on about a third of pairs), so a verdict that changes with the order is recorded as a tie and
the share of such pairs is reported as the flip rate. Every row keeps the raw judge text and the parse error
if any, so unparsed judgments stay visible in the judgment files and in `parse_failures.json`.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lima.config import resolve, section
from lima.judge.parse import Parsed, parse_logprobs, parse_text
from lima.judge.prompts import LABELS, load_template

Row = dict[str, Any]


def _jc(cfg: dict[str, Any]) -> Any:
    from lima.judge import judge_config

    return judge_config(cfg)


@contextlib.contextmanager
def _client(cfg: dict[str, Any], endpoint: Any = None, client: Any = None, model: str | None = None) -> Iterator[Any]:
    """Use the caller's client, or a client on the caller's endpoint, or open the profile's judge endpoint."""
    from lima.judge import judge_endpoint
    from lima.llm_client import LLMClient

    if client is not None:
        yield client
        return
    jc = _jc(cfg)
    cache = resolve(jc.cache) if jc.cache else None
    with contextlib.ExitStack() as stack:
        if endpoint is None:
            endpoint = stack.enter_context(judge_endpoint(cfg, model=model))
        elif model is not None:
            import dataclasses

            endpoint = dataclasses.replace(endpoint, model=model)
        llm = LLMClient(endpoint, cache_path=cache)
        stack.callback(llm.close)
        yield llm


def prompt_text(row: Row) -> str:
    """The user prompt of a responses row (a string, or a message list whose user turns we join)."""
    prompt = row.get("prompt")
    if isinstance(prompt, list):
        return "\n\n".join(str(m.get("content", "")) for m in prompt if m.get("role", "user") == "user")
    if prompt is None:
        raise ValueError(f"responses row {row.get('prompt_id')!r} of {row.get('system')!r} has no 'prompt'")
    return str(prompt)


def _clip(text: str, limit: int | None) -> str:
    return text if not limit or len(text) <= limit else text[:limit] + " [...]"


def _mode(jc: Any) -> str:
    return "logprobs" if jc.logprobs else "text"


def _request(jc: Any, protocol: str, fields: dict[str, str], extra: dict[str, Any],
             temperature: float | None = None, seed: int | None = None) -> dict[str, Any]:
    template = load_template(protocol)
    mode = _mode(jc)
    content = template.render(mode, **{k: _clip(v, jc.max_response_chars) if k != "prompt" else v
                                       for k, v in fields.items()})
    req: dict[str, Any] = {"messages": [{"role": "user", "content": content}],
                           "temperature": jc.temperature if temperature is None else temperature,
                           "cache_extra": {**template.cache_tag(mode), **extra}}
    if seed is not None:
        req["seed"] = seed
    if mode == "logprobs":
        req.update(max_tokens=jc.logprob_max_tokens, logprobs=True, top_logprobs=jc.top_logprobs)
        if jc.guided_choice:
            req["extra_body"] = {"guided_choice": list(LABELS[protocol])}
    else:
        req["max_tokens"] = jc.max_tokens
    return req


def _parse(jc: Any, protocol: str, result: Any) -> Parsed:
    if jc.logprobs:
        return parse_logprobs(protocol, result.top_logprobs, result.text)
    return parse_text(protocol, result.text)


def _first_per_prompt(rows: Sequence[Row]) -> dict[str, Row]:
    """prompt_id → the row with the lowest sample index (pairwise compares one response per system)."""
    out: dict[str, Row] = {}
    for row in rows:
        pid = str(row["prompt_id"])
        if pid not in out or int(row.get("sample", 0) or 0) < int(out[pid].get("sample", 0) or 0):
            out[pid] = row
    return out


def _winner(label: str | None, first: str, second: str) -> str | None:
    """Position label (A = the response shown first) → winning system name, 'tie', or None."""
    return {"A": first, "B": second, "neither": "tie"}.get(label) if label else None


def combine_orders(winners: list[str | None], system_a: str) -> tuple[str | None, bool | None]:
    """(verdict a|b|tie|None, flipped) from the per-order winners; disagreement between orders is a tie."""
    if any(w is None for w in winners) or not winners:
        return None, None
    to_choice = {system_a: "a", "tie": "tie"}
    choices = [to_choice.get(w, "b") for w in winners]   # type: ignore[arg-type]
    if len(choices) == 1:
        return choices[0], None
    if len(set(choices)) == 1:
        return choices[0], False
    return "tie", True


def judge_pairwise(cfg: dict[str, Any], a_rows: Sequence[Row], b_rows: Sequence[Row], *,
                   endpoint: Any = None, client: Any = None, desc: str | None = None) -> list[Row]:
    """One row per prompt answered by both systems: raw judge texts per order, parsed verdict, flip."""
    jc = _jc(cfg)
    a_by, b_by = _first_per_prompt(a_rows), _first_per_prompt(b_rows)
    shared = [pid for pid in a_by if pid in b_by]
    if not shared:
        raise ValueError("the two systems share no prompt_id: nothing to judge")
    system_a, system_b = str(a_rows[0]["system"]), str(b_rows[0]["system"])
    if system_a == system_b:
        raise ValueError(f"both response sets come from system {system_a!r}")
    plan: list[tuple[str, str]] = []          # (prompt_id, order)
    requests = []
    for pid in shared:
        a, b = a_by[pid], b_by[pid]
        if jc.both_orders:
            orders = ["ab", "ba"]
        else:
            orders = ["ba" if random.Random(f"{jc.seed}:{pid}").random() < 0.5 else "ab"]
        for order in orders:
            first, second = (a, b) if order == "ab" else (b, a)
            requests.append(_request(jc, "pairwise", {"prompt": prompt_text(a), "response_a": str(first["response"]),
                                                      "response_b": str(second["response"])}, {"order": order}))
            plan.append((pid, order))
    with _client(cfg, endpoint, client) as llm:
        results = llm.chat_many(requests, desc=f"judge {system_a} vs {system_b}" if desc is None else desc)
        judge_model = llm.endpoint.model
    per_prompt: dict[str, list[dict[str, Any]]] = {}
    for (pid, order), result in zip(plan, results, strict=True):
        parsed = _parse(jc, "pairwise", result)
        first, second = (system_a, system_b) if order == "ab" else (system_b, system_a)
        per_prompt.setdefault(pid, []).append({
            "order": order, "raw": result.text, "label": parsed.label, "winner": _winner(parsed.label, first, second),
            "error": parsed.error, "source": parsed.source, "probs": parsed.probs or None,
            "finish_reason": result.finish_reason, "cached": result.cached})
    rows = []
    template = load_template("pairwise")
    for pid in shared:
        orders = per_prompt[pid]
        verdict, flipped = combine_orders([o["winner"] for o in orders], system_a)
        rows.append({"protocol": "pairwise", "prompt_id": pid, "system_a": system_a, "system_b": system_b,
                     "judge": judge_model, "template": template.version, "mode": _mode(jc),
                     "prompt": prompt_text(a_by[pid]), "len_a": len(str(a_by[pid]["response"])),
                     "len_b": len(str(b_by[pid]["response"])), "orders": orders, "verdict": verdict,
                     "flipped": flipped, "n_unparsed": sum(o["label"] is None for o in orders)})
    return rows


def rate_absolute(cfg: dict[str, Any], rows: Sequence[Row], *, tags: dict[str, list[str]] | None = None,
                  endpoint: Any = None, client: Any = None, desc: str | None = None) -> list[Row]:
    """Fail / Pass / Excellent per response; `tags` (prompt_id → tags such as ood/safety) are copied along."""
    jc = _jc(cfg)
    requests = [_request(jc, "absolute", {"prompt": prompt_text(r), "response": str(r["response"])}, {})
                for r in rows]
    with _client(cfg, endpoint, client) as llm:
        results = llm.chat_many(requests, desc="absolute ratings" if desc is None else desc) if requests else []
        judge_model = llm.endpoint.model
    out = []
    for row, result in zip(rows, results, strict=True):
        parsed = _parse(jc, "absolute", result)
        out.append({"protocol": "absolute", "prompt_id": str(row["prompt_id"]), "system": row.get("system"),
                    "sample": row.get("sample", 0), "judge": judge_model,
                    "template": load_template("absolute").version, "mode": _mode(jc),
                    "tags": list((tags or {}).get(str(row["prompt_id"]), [])), "raw": result.text,
                    "label": parsed.label, "error": parsed.error, "source": parsed.source,
                    "probs": parsed.probs or None, "cached": result.cached})
    return out


@dataclass
class AbsoluteConfig:
    """The profile's `absolute` section: which test prompts the Fail/Pass/Excellent protocol rates (§4.3).

    The paper rated 50 random test prompts ("all" in Fig. 3), 20 out-of-distribution prompts and 30
    safety-sensitive prompts — not every test prompt. A subset with fewer tagged prompts than asked is rated
    whole; None rates every prompt of that subset.
    """

    random_prompts: int | None = 50        # "all": a seeded random sample of the test prompts
    ood_prompts: int | None = 20           # prompts tagged "ood"
    safety_prompts: int | None = 30        # prompts tagged "safety"
    seed: int | None = None                # None: the profile's top-level seed


ABSOLUTE_SUBSETS = ("all", "ood", "safety")


def absolute_sample(cfg: Mapping[str, Any], prompt_ids: Sequence[str],
                    tags: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """prompt id → the protocol subsets it is rated for ("all" = the random sample, "ood", "safety").

    Each subset is drawn from the sorted ids with its own seeded generator, so adding a subset or changing
    one size leaves the others' draws unchanged.
    """
    acfg = section(cfg, "absolute", AbsoluteConfig)
    seed = acfg.seed if acfg.seed is not None else int(cfg.get("seed", 0) or 0)
    ids = sorted({str(p) for p in prompt_ids})
    pools = {"all": ids, "ood": [p for p in ids if "ood" in tags.get(p, ())],
             "safety": [p for p in ids if "safety" in tags.get(p, ())]}
    sizes = {"all": acfg.random_prompts, "ood": acfg.ood_prompts, "safety": acfg.safety_prompts}
    chosen: dict[str, list[str]] = {}
    for subset in ABSOLUTE_SUBSETS:
        pool, size = pools[subset], sizes[subset]
        picked = pool if size is None or size >= len(pool) else random.Random(f"{seed}:{subset}").sample(pool, size)
        for pid in picked:
            chosen.setdefault(pid, []).append(subset)
    return {pid: chosen[pid] for pid in ids if pid in chosen}


def in_subset(row: Mapping[str, Any], subset: str) -> bool:
    """Whether an absolute rating counts towards `subset` of Fig. 3 (rows from before `subsets`: by tags)."""
    if "subsets" in row:
        return subset in row["subsets"]
    return subset == "all" or subset in (row.get("tags") or [])


def rate_absolute_protocol(cfg: dict[str, Any], rows: Sequence[Row], tags: Mapping[str, Sequence[str]], *,
                           endpoint: Any = None, client: Any = None, desc: str | None = None) -> list[Row]:
    """The paper's absolute protocol: one response per prompt, only for the prompts `absolute_sample` picks.

    Every rating row carries `subsets`, the parts of Fig. 3 it counts towards; a prompt in several subsets
    is rated once.
    """
    first = _first_per_prompt(rows)
    plan = absolute_sample(cfg, list(first), tags)
    rated = rate_absolute(cfg, [first[pid] for pid in plan], tags={k: list(v) for k, v in tags.items()},
                          endpoint=endpoint, client=client, desc=desc)
    return [{**row, "subsets": plan[row["prompt_id"]]} for row in rated]


def grade_helpfulness(cfg: dict[str, Any], rows: Sequence[Row], samples: int = 1, *, endpoint: Any = None,
                      client: Any = None, desc: str | None = None) -> list[Row]:
    """1–6 helpfulness per response, `samples` judge samples each (seeded); `score` is their mean or None."""
    jc = _jc(cfg)
    samples = max(1, int(samples))
    temperature = jc.temperature if samples == 1 else jc.helpfulness_temperature
    requests, plan = [], []
    for i, row in enumerate(rows):
        for s in range(samples):
            requests.append(_request(jc, "helpfulness", {"prompt": prompt_text(row), "response": str(row["response"])},
                                     {"judge_sample": s}, temperature=temperature, seed=s))
            plan.append(i)
    model = jc.helpfulness_model or None
    with _client(cfg, endpoint, client, model=model) as llm:
        results = llm.chat_many(requests, desc="helpfulness grades" if desc is None else desc) if requests else []
        judge_model = llm.endpoint.model
    grouped: dict[int, list[tuple[Any, Parsed]]] = {}
    for i, result in zip(plan, results, strict=True):
        grouped.setdefault(i, []).append((result, _parse(jc, "helpfulness", result)))
    out = []
    for i, row in enumerate(rows):
        judged = grouped.get(i, [])
        scores = [int(p.label) if p.label else None for _, p in judged]
        valid = [s for s in scores if s is not None]
        out.append({"protocol": "helpfulness", "prompt_id": str(row["prompt_id"]), "system": row.get("system"),
                    "sample": row.get("sample", 0), "judge": judge_model,
                    "template": load_template("helpfulness").version, "mode": _mode(jc),
                    "scores": scores, "score": sum(valid) / len(valid) if valid else None,
                    "raw": [r.text for r, _ in judged], "errors": [p.error for _, p in judged if p.error],
                    "n_unparsed": len(scores) - len(valid)})
    return out
