"""Versioned judge prompt templates (texts in `lima/resources/judge/*.md`, written for this repo).

Each template file starts with a `version:` line and a `---` separator. The version string and a hash of
the full text (template + answer-format instruction) go into the response cache key, so editing a prompt
can never serve stale verdicts from the cache. Placeholders are filled by plain substitution, never
`str.format`, because responses routinely contain braces (code, LaTeX).
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources" / "judge"

PROTOCOLS = ("pairwise", "absolute", "helpfulness")

# Label sets: the spelling the judge is asked to write → the canonical label we store.
LABELS: dict[str, dict[str, str]] = {
    "pairwise": {"A": "A", "B": "B", "neither": "neither"},
    "absolute": {"Fail": "fail", "Pass": "pass", "Excellent": "excellent"},
    "helpfulness": {str(i): str(i) for i in range(1, 7)},
}
# How the judge must finish its answer. "text": free text ending in a labelled line (parsed strictly);
# "logprobs": the label alone, so that the first generated token's top_logprobs carry the decision.
ANSWER_FORMATS: dict[str, dict[str, str]] = {
    "pairwise": {
        "text": "Explain your reasoning briefly, then end with one final line of exactly one of these forms:\n"
                "Verdict: A\nVerdict: B\nVerdict: neither",
        "logprobs": "Answer with the option label only (A, B or neither) and nothing else.",
    },
    "absolute": {
        "text": "Explain your reasoning briefly, then end with one final line of exactly one of these forms:\n"
                "Rating: Fail\nRating: Pass\nRating: Excellent",
        "logprobs": "Answer with the rating only (Fail, Pass or Excellent) and nothing else.",
    },
    "helpfulness": {
        "text": "First explain your reasoning in a few sentences. Then end with one final line of the form\n"
                "Score: N\nwhere N is a whole number from 1 to 6.",
        "logprobs": "Answer with the score only, a single digit from 1 to 6, and nothing else.",
    },
}
# The keyword that introduces the label on the final line in text mode.
KEYWORDS = {"pairwise": "verdict", "absolute": "rating", "helpfulness": "score"}


@dataclass(frozen=True)
class Template:
    protocol: str
    version: str
    body: str

    def sha(self, mode: str) -> str:
        text = self.body + "\n" + ANSWER_FORMATS[self.protocol][mode]
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def render(self, mode: str, **fields: str) -> str:
        if mode not in ANSWER_FORMATS[self.protocol]:
            raise ValueError(f"mode must be one of {sorted(ANSWER_FORMATS[self.protocol])}, got {mode!r}")
        text = self.body
        # substitute the answer format first so that nothing inside a response is ever treated as a slot
        text = text.replace("{answer_format}", ANSWER_FORMATS[self.protocol][mode])
        slots = {f"{{{name}}}" for name in fields}
        missing = [s for s in ("{prompt}", "{response}", "{response_a}", "{response_b}")
                   if s in text and s not in slots]
        if missing:
            raise ValueError(f"template {self.version}: no value for {missing}")
        # one pass over the template, so a response that itself contains "{response_b}" is left alone
        pattern = re.compile("|".join(re.escape(f"{{{name}}}") for name in fields))
        return pattern.sub(lambda m: fields[m.group(0)[1:-1]], text) if fields else text

    def cache_tag(self, mode: str) -> dict[str, str]:
        return {"template": self.version, "template_sha": self.sha(mode), "mode": mode}


@functools.cache
def load_template(protocol: str) -> Template:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    path = RESOURCES / f"{protocol}.md"
    raw = path.read_text(encoding="utf-8")
    header, sep, body = raw.partition("\n---\n")
    if not sep or not header.startswith("version:"):
        raise ValueError(f"{path}:1: a judge template must start with 'version: ...' and a '---' line")
    return Template(protocol=protocol, version=header.split(":", 1)[1].strip(), body=body.strip("\n"))
