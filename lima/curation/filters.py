"""The paper's Stack Exchange quality filters, each one a parameter, applied as a counted funnel.

Order (cheap first, so the Markdown conversion only runs on rows that can still pass): discarded site →
missing answer → answer score → answer length → first person → references to other answers → self-contained
title (only where the title becomes the prompt: with `prompt_from: body`, or the body half of `random`, the
title is never shown to the model, so the heuristic is not applied). `FilterReport` records per site how many
candidates each step removed, plus how many of the rows that passed the score filter would fail each later
filter on its own (the paper reports e.g. 352/400 within the length window and 53/400 with "I"/"my": the
`alone` numbers are that kind of statistic).

Lengths are measured in characters of the converted Markdown answer (what the model is trained on), not of
the raw HTML.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from lima.curation.markdown import html_to_markdown, language_from_tags, split_code
from lima.curation.sampling import choose_prompt_field
from lima.curation.sites import SiteGrouper

FILTERS = ("discarded_site", "missing_answer", "score", "length", "first_person", "references", "title")

QUESTION_WORDS = {"how", "what", "why", "when", "where", "which", "who", "whom", "whose", "is", "are", "was",
                  "were", "do", "does", "did", "can", "could", "should", "would", "will", "may", "might",
                  "must", "has", "have", "had", "am", "shall", "isn't", "aren't", "doesn't", "don't", "didn't",
                  "can't", "won't", "shouldn't", "wouldn't", "couldn't"}


def strip_code_and_math(markdown: str) -> str:
    """Prose only: `i`, `I` and `my` inside code or formulas (loop variables, identity matrices) are not
    the author speaking. Code is cut with the converter's own splitter, so a block holding ``` stays whole."""
    text = "".join(" " if code else piece for piece, code in split_code(markdown))
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    return re.sub(r"\$[^$\n]*\$", " ", text)


# "I" that is named, not spoken: the letter I, a quoted 'I', and the Roman numeral (World War I, Type I error,
# Part I and II, Henry I). Only these are removed before the pronoun search; any other "I" still counts.
_MENTIONED_I = re.compile(
    r"""(?:\b(?:the\s+)?(?:letters?|capital|upper-?case|lower-?case|roman\s+numeral|numeral|vowel|character"""
    r"""|glyph|symbol|variable|pronoun|word)\s+["'“‘]?I(?![\w/\-])["'”’]?)"""
    r"""|(?:["'“‘]I["'”’])"""
    r"""|(?:\b(?:World\s+War|[Tt]ype|Part|Phase|Chapter|Class|Stage|Grade|Level|Schedule|Volume|Book|Act|Article"""
    r"""|Title|Henry|Charles|Louis|Elizabeth|James|George|Edward|William|Mary|Richard|Peter|Nicholas|Alexander"""
    r"""|Napoleon|Francis|Frederick|Philip)\s+I(?![\w/\-]))"""
    r"""|(?:(?<![\w/\-])I(?=\s*(?:,|and|or|&|/|-|–|to)\s*II\b))""")


def _word_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """Whole words, case as given; a lower-case word also matches capitalised (sentence start). Slashes and
    hyphens count as word characters so "I/O" and "I-beam" are not the pronoun."""
    forms: set[str] = set()
    for word in words:
        forms.add(word)
        if word.islower():
            forms.add(word.capitalize())
    alternatives = "|".join(sorted((re.escape(w) for w in forms), key=len, reverse=True))
    return re.compile(rf"(?<![\w/\-])(?:{alternatives})(?![\w/\-])")


def has_first_person(markdown: str, words: Iterable[str] = ("I", "my")) -> bool:
    """The author speaks in the first person: one of `words` in the prose (not code or math), where "I"
    that names the letter or a Roman numeral (`_MENTIONED_I`) does not count."""
    words = list(words)
    if not words:
        return False
    prose = strip_code_and_math(markdown)
    if "I" in words:
        prose = _MENTIONED_I.sub(" ", prose)
    return bool(_word_pattern(words).search(prose))


def refers_to_other_answers(markdown: str, phrases: Iterable[str]) -> bool:
    text = " ".join(strip_code_and_math(markdown).lower().split())
    return any(re.search(rf"(?<!\w){re.escape(p.lower())}(?!\w)", text) for p in phrases)


def answer_length_ok(markdown: str, min_chars: int | None, max_chars: int | None) -> bool:
    n = len(markdown)
    return (min_chars is None or n >= min_chars) and (max_chars is None or n <= max_chars)


def title_self_contained(title: str, min_words: int = 3, max_words: int = 30,
                         deictic_words: Iterable[str] = (), require_question_form: bool = True,
                         imperative_verbs: Iterable[str] = ()) -> bool:
    """Heuristic for "the title alone is a complete request" (ours; the paper gives no rule):
    word count within bounds; no deictic word that points at something outside the title ("this code",
    "the following", "here"), nor "that" among the first three words or last ("Is that right?"); and, if required,
    a question form: ends with '?', or starts with a question word or an imperative verb."""
    words = re.findall(r"[\w'+#.-]+", title.lower())
    if not (min_words <= len(words) <= max_words):
        return False
    deictic = {w.lower() for w in deictic_words}
    if deictic & set(words) or "that" in words[:3] or words[-1] == "that":
        return False
    if not require_question_form:
        return True
    return (title.rstrip().endswith("?") or words[0] in QUESTION_WORDS
            or words[0] in {v.lower() for v in imperative_verbs})


@dataclass
class SECandidate:
    """A question/top-answer pair that survived the filters, with the Markdown the rows will carry."""

    id: str
    site: str
    group: str
    question_score: int
    answer_score: int
    title: str
    question_html: str
    answer_markdown: str
    tags: list[str]
    meta: dict[str, Any]

    @property
    def rank_key(self) -> tuple[int, int, str]:
        return (self.question_score, self.answer_score, self.id)

    def __lt__(self, other: SECandidate) -> bool:  # for the bounded per-site heaps
        return self.rank_key < other.rank_key


@dataclass
class FilterReport:
    sites: dict[str, dict[str, Any]] = field(default_factory=dict)
    alone: dict[str, int] = field(default_factory=lambda: {f: 0 for f in FILTERS[3:]})
    reached_conversion: int = 0

    def site(self, site: str, group: str) -> dict[str, Any]:
        if site not in self.sites:
            self.sites[site] = {"group": group, "candidates": 0, "removed": {f: 0 for f in FILTERS}, "kept": 0}
        return self.sites[site]

    def as_dict(self) -> dict[str, Any]:
        totals = {"candidates": 0, "removed": {f: 0 for f in FILTERS}, "kept": 0}
        by_group: dict[str, dict[str, int]] = {}
        for entry in self.sites.values():
            totals["candidates"] += entry["candidates"]
            totals["kept"] += entry["kept"]
            for f in FILTERS:
                totals["removed"][f] += entry["removed"][f]
            g = by_group.setdefault(entry["group"], {"sites": 0, "candidates": 0, "kept": 0})
            g["sites"] += 1
            g["candidates"] += entry["candidates"]
            g["kept"] += entry["kept"]
        return {"filters_in_order": list(FILTERS), "sites": dict(sorted(self.sites.items())), "totals": totals,
                "groups": by_group, "alone_after_score": {"rows": self.reached_conversion, "fail": self.alone}}


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def se_meta(row: Mapping[str, Any], group: str) -> dict[str, Any]:
    """Attribution travels with every example (CC BY-SA: site, URL, author, licence)."""
    return {"site": row.get("site"), "url": row.get("url"), "answer_url": row.get("answer_url"),
            "license": row.get("license"), "question_author": row.get("question_author"),
            "author": row.get("answer_author"), "question_id": row.get("question_id"),
            "answer_id": row.get("answer_id"), "question_score": row.get("question_score"),
            "answer_score": row.get("answer_score"), "tags": list(row.get("tags") or []), "domain": group}


def title_is_prompt(row: Mapping[str, Any], prompt_from: str, seed: int | None) -> bool:
    """Whether this row's prompt will be its title (what `splits.se_row` does), so the title heuristic
    only judges titles that become prompts. Without a seed, `random` cannot be resolved: assume the title."""
    if prompt_from == "title" or (prompt_from == "random" and seed is None):
        return True
    rid = str(row.get("id") or f"se:{row.get('site')}:{row.get('question_id')}")
    if prompt_from == "random" and choose_prompt_field(prompt_from, seed, rid) == "title":  # type: ignore[arg-type]
        return True
    # the body is the prompt, unless it converts to nothing (then se_row falls back to the title)
    body = html_to_markdown(str(row.get("question_html") or ""), language_from_tags(list(row.get("tags") or [])))
    return not body.strip()


def filter_stackexchange(rows: Iterable[Mapping[str, Any]], ccfg: Any, grouper: SiteGrouper,
                         apply_filters: bool = True, seed: int | None = None,
                         ) -> tuple[dict[str, dict[str, list[SECandidate]]], FilterReport]:
    """Run the funnel over interim rows. Returns {group: {site: candidates sorted best-first}} and the report.

    `apply_filters=False` keeps every row with an answer (the "unfiltered Stack Exchange" ablation pool).
    At most `ccfg.max_candidates_per_site` best-ranked rows are held per site, so memory stays bounded on
    Stack Overflow-sized inputs. `seed` (the one the rows' prompts will be drawn with) lets the title check
    skip rows whose body is the prompt under `prompt_from: random`; without it every title is checked.
    """
    report = FilterReport()
    heaps: dict[tuple[str, str], list[SECandidate]] = {}
    cap = ccfg.max_candidates_per_site
    for row in tqdm(rows, desc="stackexchange filters", unit="rows", mininterval=2.0, leave=False):
        site = str(row.get("site") or "unknown")
        group = grouper.group(site)
        entry = report.site(site, group)
        entry["candidates"] += 1
        if group == "discarded":
            entry["removed"]["discarded_site"] += 1
            continue
        if not row.get("answer_html"):
            entry["removed"]["missing_answer"] += 1
            continue
        score = _as_int(row.get("answer_score"))
        if apply_filters and ccfg.min_answer_score is not None and score < ccfg.min_answer_score:
            entry["removed"]["score"] += 1
            continue
        tags = list(row.get("tags") or [])
        answer = html_to_markdown(str(row["answer_html"]), language_from_tags(tags))
        title = str(row.get("title") or "")
        failed: list[str] = []
        if apply_filters:
            report.reached_conversion += 1
            checks = {
                "length": not answer_length_ok(answer, ccfg.min_answer_chars, ccfg.max_answer_chars),
                "first_person": ccfg.drop_first_person and has_first_person(answer, ccfg.first_person_words),
                "references": ccfg.drop_references_to_other_answers
                and refers_to_other_answers(answer, ccfg.reference_phrases),
                "title": ccfg.require_self_contained_title
                and not title_self_contained(title, ccfg.title_min_words, ccfg.title_max_words,
                                             ccfg.title_deictic_words, ccfg.title_require_question_form,
                                             ccfg.imperative_verbs)
                and title_is_prompt(row, ccfg.prompt_from, seed),   # after the cheap check: may convert the body
            }
            failed = [name for name, bad in checks.items() if bad]
            for name in failed:
                report.alone[name] += 1
        if failed:
            entry["removed"][failed[0]] += 1
            continue
        if not answer.strip():
            entry["removed"]["missing_answer"] += 1
            continue
        entry["kept"] += 1
        cand = SECandidate(id=str(row.get("id") or f"se:{site}:{row.get('question_id')}"), site=site, group=group,
                           question_score=_as_int(row.get("question_score")), answer_score=score, title=title,
                           question_html=str(row.get("question_html") or ""), answer_markdown=answer, tags=tags,
                           meta=se_meta(row, group))
        heap = heaps.setdefault((group, site), [])
        if cap is None or len(heap) < cap:
            heapq.heappush(heap, cand)
        elif heap[0] < cand:
            heapq.heapreplace(heap, cand)
    out: dict[str, dict[str, list[SECandidate]]] = {}
    for (group, site), heap in sorted(heaps.items()):
        out.setdefault(group, {})[site] = sorted(heap, key=lambda c: c.rank_key, reverse=True)
    return out, report
