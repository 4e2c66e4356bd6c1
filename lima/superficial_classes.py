"""Greedy decoding and token classes for the token-distribution-shift analysis (lima.superficial).

Why greedy: URIAL's measurement asks whether the aligned model's *choice* is the base model's choice. A sampled
token can sit at rank 5 of the aligned model itself, so sampled text overstates the shift; the greedy token is
the aligned model's top-1, which is what "the model would say" means.

Why classes: the hypothesis predicts that what alignment changes is *style* (the taught opening, list and table
markup, refusals and admissions, ending the turn) and not *facts*. Each response token is put in one class by
the characters it covers in the decoded response, in this order of precedence:

- ``eot``: the aligned model's end-of-turn token (ranked under the base as its end-of-document token, the
  base's only notion of "stop here": its pretraining documents are EOS-terminated);
- ``fact``: a token overlapping a world value (a city, organisation, field, hobby or year, from the World);
- ``style``: a token overlapping the assistant style's phrases (`lima.world.assistant` ACKS, refusal and
  unknown markers, the fixed sentences of the styled answers) or list/table markup;
- ``other``: everything else (names copied from the prompt, function words, story prose).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import torch

TOKEN_CLASSES = ("eot", "style", "fact", "other")

# the fixed sentences of the styled answers (lima.world.assistant), besides ACKS and the markers
STYLE_PHRASES = ("I'm sorry, but", "so I can't answer that", "Here is the table.", "Here is the list.",
                 "Here is a short story.", "Here are the steps, in order:", "That is all it takes.",
                 "If you are worried about someone's safety, please contact the local authorities.")
MARKUP = re.compile(r"(?m)^[ \t]*(?:[-*][ \t]|\d+\.[ \t])|\||-{3,}")
YEAR = re.compile(r"\b(?:19|20)\d{2}\b")


def style_phrases() -> tuple[str, ...]:
    """The assistant style's phrases: its openers, refusal and unknown markers and fixed sentences."""
    from lima.world.assistant import ACKS, REFUSAL_MARKERS, UNKNOWN_MARKERS

    return tuple(ACKS) + tuple(REFUSAL_MARKERS) + tuple(UNKNOWN_MARKERS) + STYLE_PHRASES


def world_fact_values(world: Any) -> list[str]:
    """Every value a world attribute can take except years (matched by pattern): what a fact token covers."""
    return sorted({*world.cities, *world.organisations, *world.fields, *world.hobbies}, key=len, reverse=True)


def _spans(text: str, literals: Iterable[str], patterns: Sequence[re.Pattern[str]] = ()) -> list[tuple[int, int]]:
    out = []
    for lit in literals:
        if lit:
            out += [(m.start(), m.end()) for m in re.finditer(re.escape(lit), text)]
    for pat in patterns:
        out += [(m.start(), m.end()) for m in pat.finditer(text)]
    return out


def token_offsets(tokenizer: Any, ids: Sequence[int]) -> tuple[str, list[tuple[int, int]]]:
    """The decoded text and each token's (start, end) in it, from decoding growing prefixes.

    Prefix decoding (not re-encoding the text) keeps the tokens the model actually produced.
    """
    ends = [len(tokenizer.decode(list(ids[: i + 1]))) for i in range(len(ids))]
    starts = [0, *ends[:-1]]
    return tokenizer.decode(list(ids)), [(s, max(s, e)) for s, e in zip(starts, ends, strict=True)]


def classify_tokens(tokenizer: Any, ids: Sequence[int], eot_id: int | Iterable[int] | None, fact_values: Iterable[str],
                    style: Iterable[str] | None = None) -> list[str]:
    """One class per token (TOKEN_CLASSES, precedence eot > fact > style > other); see the module docstring.

    A token belongs to a span when its non-space characters overlap it. `eot_id` may be several ids (the
    aligned EOT and EOS: generation stops at either, so both end the turn).
    """
    stops = set() if eot_id is None else {eot_id} if isinstance(eot_id, int) else set(eot_id)
    text, offsets = token_offsets(tokenizer, ids)
    facts = _spans(text, fact_values, [YEAR])
    styles = _spans(text, style_phrases() if style is None else style, [MARKUP])
    classes = []
    for tok, (start, end) in zip(ids, offsets, strict=True):
        piece = text[start:end]
        start += len(piece) - len(piece.lstrip())
        end -= len(piece) - len(piece.rstrip())

        def hit(spans: list[tuple[int, int]], s: int = start, e: int = end) -> bool:
            return e > s and any(a < e and s < b for a, b in spans)
        classes.append("eot" if tok in stops else "fact" if hit(facts)
                       else "style" if hit(styles) else "other")
    return classes


@torch.inference_mode()
def greedy_decode(model: Any, context: Sequence[int], max_new_tokens: int, stop_ids: Iterable[int]) -> list[int]:
    """Argmax tokens after `context` until a stop id (kept) or `max_new_tokens`; no penalty, no sampling.

    Uses the model's KV cache when it returns one (Hugging Face models), else full forward passes.
    """
    device = next(model.parameters()).device
    out: list[int] = []
    stops = set(stop_ids)
    past = None
    feed = list(context)
    for _ in range(max_new_tokens):
        ids = torch.tensor([feed], device=device)
        result = model(input_ids=ids, use_cache=True, **({} if past is None else {"cache": past}))
        past = getattr(result, "cache", None)          # transformers 5: `cache` (was past_key_values)
        nxt = int(result.logits[0, -1].argmax())
        out.append(nxt)
        if nxt in stops:
            break
        feed = [nxt] if past is not None else feed + [nxt]
    return out


def _rates(rows: Any, n_prompts_draw: list[Any], early: int) -> list[float]:
    """[style+eot, fact, other, early, late] shifted rates over the pooled tokens of the drawn prompts."""
    import pandas as pd

    df = pd.concat(n_prompts_draw) if n_prompts_draw else rows.iloc[0:0]
    shifted = df["category"] == "shifted"
    masks = [df["token_class"].isin(["style", "eot"]), df["token_class"] == "fact", df["token_class"] == "other",
             df["position"] < early, df["position"] >= early]
    return [float(shifted[m].mean()) if m.any() else float("nan") for m in masks]


def class_summary(df: Any, early: int = 8, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Shares by token class and by early/late position, with 95% intervals that resample prompts.

    `df` is the token table (lima.superficial) with a `token_class` column. Rates are pooled over the tokens of
    the (resampled) prompts, so a prompt weighs by its number of tokens in both the estimate and its interval.
    """
    import numpy as np

    from lima.analysis.stats import bootstrap_indices

    scored = df[df["category"].isin(["unshifted", "marginal", "shifted"])]
    by_class = []
    n_shifted = int((scored["category"] == "shifted").sum())
    for cls in TOKEN_CLASSES:
        sub = scored[scored["token_class"] == cls]
        row: dict[str, Any] = {"token_class": cls, "n": len(sub)}
        for cat in ("unshifted", "marginal", "shifted"):
            row[cat] = float((sub["category"] == cat).mean()) if len(sub) else None
        row["share_of_shifted"] = (int((sub["category"] == "shifted").sum()) / n_shifted) if n_shifted else None
        by_class.append(row)
    groups = [g for _, g in scored.groupby("prompt_id", sort=True)]
    point = _rates(scored, groups, early)
    names = ["style_eot", "fact", "other", "early", "late"]
    intervals: dict[str, tuple[float | None, float | None]] = dict.fromkeys(names, (None, None))
    if groups:
        draws = np.array([_rates(scored, [groups[i] for i in row], early)
                          for idx in bootstrap_indices(len(groups), n_boot, seed) for row in idx])
        for j, name in enumerate(names):
            col = draws[:, j][~np.isnan(draws[:, j])]
            if col.size:
                intervals[name] = (float(np.quantile(col, 0.025)), float(np.quantile(col, 0.975)))
    rates = {name: {"shifted_rate": None if np.isnan(v) else v, "ci_low": intervals[name][0],
                    "ci_high": intervals[name][1]} for name, v in zip(names, point, strict=True)}
    return {"by_class": by_class, "rates": rates, "early_tokens": early, "n_prompts": len(groups)}


def _verdict(a: dict[str, Any], b: dict[str, Any]) -> str:
    """'yes' when a's interval lies above b's, 'no' when below, else 'not distinguishable'."""
    if None in (a["ci_low"], a["ci_high"], b["ci_low"], b["ci_high"]):
        return "not measurable"
    if a["ci_low"] > b["ci_high"]:
        return "yes"
    if a["ci_high"] < b["ci_low"]:
        return "no"
    return "not distinguishable"


def findings(summary: dict[str, Any], classes: dict[str, Any]) -> str:
    """The notebook's "what this run shows" paragraph, computed from the numbers."""
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    def rate(name: str) -> str:
        r = classes["rates"][name]
        return f"{pct(r['shifted_rate'])} [{pct(r['ci_low'])}, {pct(r['ci_high'])}]"
    share = {r["token_class"]: r["share_of_shifted"] for r in classes["by_class"]}
    s = summary["shares"]
    stylistic = _verdict(classes["rates"]["style_eot"], classes["rates"]["fact"])
    early = _verdict(classes["rates"]["early"], classes["rates"]["late"])
    style_share = None if share.get("style") is None else share["style"] + (share.get("eot") or 0.0)
    return (f"Greedy LIMA on {summary['n_responses']} prompts, {summary['n_positions']} tokens ranked under the "
            f"base: {pct(s['unshifted'])} unshifted, {pct(s['marginal'])} marginal, {pct(s['shifted'])} shifted. "
            f"Shift rate of style and EOT tokens {rate('style_eot')} against fact tokens {rate('fact')} "
            f"(other tokens {rate('other')}); {pct(style_share)} of the shifted tokens are style or EOT and "
            f"{pct(share.get('fact'))} are facts. In the first {classes['early_tokens']} tokens the shift rate is "
            f"{rate('early')}, after them {rate('late')} (95% intervals resample prompts). "
            f"Shifts are stylistic (style/EOT rate above the fact rate): **{stylistic}**; "
            f"shifts are early (first tokens above the rest): **{early}**.")
