"""Strict verdict parsing: a judgment is either one unambiguous label or *unparsed* with a reason.

Text mode accepts exactly two shapes — a final `Verdict: X` / `Rating: X` / `Score: N` line (markdown
emphasis allowed), or a reply that is nothing but the label. Several labelled lines that disagree, a score
outside 1–6, or a label hidden in prose are failures, because guessing would turn judge noise into data.
Logprob mode reads the first content-bearing generated position's top_logprobs and sums the probability of
the tokens that spell the start of exactly one label. Failures carry an `error` string; callers count and
report them (`parse_failures.json`), they are never dropped silently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from lima.judge.prompts import KEYWORDS, LABELS

_DECOR = " \t\r\n*_`'\".:;,!()[]<>"


@dataclass
class Parsed:
    label: str | None                      # canonical label (LABELS values) or None when unparsed
    error: str | None = None
    source: str = "text"                   # "text" | "logprobs"
    probs: dict[str, float] = field(default_factory=dict)   # label → probability mass (logprob mode)


def _match_label(protocol: str, word: str, prefix_ok: bool = False) -> str | None:
    """The canonical label that `word` spells (case-insensitive); with prefix_ok a unique prefix suffices."""
    norm = word.strip(_DECOR).lower()
    if not norm:
        return None
    aliases = {k.lower(): v for k, v in LABELS[protocol].items()}
    if protocol == "pairwise":
        aliases["tie"] = "neither"                 # the paper's "neither is significantly better"
    if norm in aliases:
        return aliases[norm]
    if prefix_ok:
        hits = {v for k, v in aliases.items() if k.startswith(norm)}
        if len(hits) == 1:
            return hits.pop()
    return None


def parse_text(protocol: str, text: str | None) -> Parsed:
    if text is None or not text.strip():
        return Parsed(None, "empty reply")
    keyword = KEYWORDS[protocol]
    line_re = re.compile(rf"^[ \t*_#>-]*(?:final[ \t]+)?{keyword}[ \t*_]*[:=][ \t*_]*(?P<value>[^\n]*?)[ \t*_.]*$",
                         re.IGNORECASE | re.MULTILINE)
    found = []
    for m in line_re.finditer(text):
        value = m.group("value").strip()
        if protocol == "helpfulness":
            value = re.sub(r"\s*(/|out of)\s*6$", "", value, flags=re.IGNORECASE)
        label = _match_label(protocol, value)
        if label is None:
            return Parsed(None, f"{keyword} line with an unknown value: {value[:40]!r}")
        found.append(label)
    if len(set(found)) > 1:
        return Parsed(None, f"conflicting {keyword} lines: {found}")
    if found:
        return Parsed(found[0])
    bare = _match_label(protocol, text)
    if bare is not None and len(text.strip(_DECOR)) <= 12:
        return Parsed(bare)
    return Parsed(None, f"no '{keyword.capitalize()}:' line and not a bare label")


def parse_logprobs(protocol: str, top_logprobs: list[dict[str, float]] | None, text: str | None) -> Parsed:
    """Decide from the first position whose chosen token is not just whitespace/markup.

    Where the endpoint returned no logprobs at all, the reply text is parsed strictly instead (the label was
    requested alone, so a bare label parses).
    """
    if not top_logprobs:
        parsed = parse_text(protocol, text)
        parsed.source = "text"
        return parsed
    for position, candidates in enumerate(top_logprobs):
        if not candidates:
            continue
        chosen = max(candidates, key=lambda t: candidates[t])
        if not chosen.strip(_DECOR):
            continue                                 # a leading space / newline / "**" token
        mass: dict[str, float] = {}
        for token, logprob in candidates.items():
            label = _match_label(protocol, token, prefix_ok=True)
            if label is not None:
                mass[label] = mass.get(label, 0.0) + math.exp(logprob)
        if not mass:
            return Parsed(None, f"no label among the top-{len(candidates)} tokens at position {position}: "
                                f"{sorted(candidates, key=lambda t: -candidates[t])[:5]}", "logprobs")
        best = max(mass, key=lambda k: mass[k])
        if sum(1 for v in mass.values() if v == mass[best]) > 1:
            return Parsed(None, f"labels tie in probability at position {position}: {mass}", "logprobs", mass)
        return Parsed(best, None, "logprobs", mass)
    return Parsed(None, "only whitespace/markup tokens were generated", "logprobs")
