"""Curation: interim candidates → the LIMA splits (train / dev / test), Table 1 and the reports.

`curate(cfg)` reads `{interim}` (the collection contract), applies the paper's Stack Exchange filters as a
counted funnel, samples sites with temperature τ, composes the splits from the profile's counts, checks
test/dev prompts for leakage into train, and writes every `{processed}` artefact atomically with a manifest.
Nothing is written unless every step succeeded, so a shortfall or leakage failure leaves the old files intact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.config import resolve, section

log = logging.getLogger(__name__)

INTERIM_FILES = {"stackexchange": "stackexchange.jsonl", "writingprompts": "writingprompts.jsonl",
                 "askreddit": "askreddit.jsonl", "wikihow": "wikihow.jsonl", "sni": "sni.jsonl",
                 "authored": "authored.jsonl"}
OUTPUT_FILES = ("train.jsonl", "dev.jsonl", "test.jsonl", "train_multiturn.jsonl", "pool_unfiltered.jsonl",
                "table1.csv", "table1.md", "curation_report.json", "leakage_report.json")

DEFAULT_REFERENCE_PHRASES = [
    "as mentioned", "as others have", "as other answers", "other answer", "other answers", "another answer",
    "above answer", "answer above", "answer below", "previous answer", "accepted answer", "top answer",
    "my answer", "this answer", "stack exchange", "stackexchange", "as noted above", "mentioned above",
    "said above", "in the comments", "see the comments", "upvote", "downvote",
]
DEFAULT_DEICTIC = ["this", "these", "those", "above", "following", "here", "attached", "pictured", "below"]
DEFAULT_IMPERATIVES = [
    "explain", "describe", "list", "find", "prove", "show", "compute", "calculate", "write", "give", "compare",
    "recommend", "suggest", "identify", "convert", "evaluate", "solve", "determine", "derive", "create", "make",
    "help", "tell", "name", "define", "choose", "avoid", "use", "get", "keep", "stop", "prevent", "remove",
    "set", "install", "configure", "store", "clean", "fix", "improve", "learn",
]


@dataclass
class CurationConfig:
    """The `curation` section. Paper values are the defaults; `(ours)` marks choices the paper does not make."""

    min_answer_score: int | None = 10           # None disables a filter
    min_answer_chars: int | None = 1200         # measured on the converted Markdown answer
    max_answer_chars: int | None = 4096
    drop_first_person: bool = True
    first_person_words: list[str] = field(default_factory=lambda: ["I", "my"])
    drop_references_to_other_answers: bool = True
    reference_phrases: list[str] = field(default_factory=lambda: list(DEFAULT_REFERENCE_PHRASES))
    require_self_contained_title: bool = True
    title_min_words: int = 3                    # (ours) the title heuristic, see filters.title_self_contained
    title_max_words: int = 30
    title_deictic_words: list[str] = field(default_factory=lambda: list(DEFAULT_DEICTIC))
    title_require_question_form: bool = True
    imperative_verbs: list[str] = field(default_factory=lambda: list(DEFAULT_IMPERATIVES))
    site_groups: str = "lima/resources/se_site_groups.csv"
    unknown_site_group: str = "other"           # other | stem | discarded | error
    site_size_from: str = "interim"             # n_site for tau sampling: interim rows | filtered candidates
    max_candidates_per_site: int | None = 20000  # best-ranked candidates held per site (memory bound)
    temperature: float = 3.0
    prompt_from: str = "random"                 # title | body | random
    selector: str = "lima"                      # lima | longest | diversity
    embedding_model: str | None = None          # sentence-transformers model for `diversity`; else TF-IDF
    train: dict[str, int] = field(default_factory=lambda: {
        "stackexchange_stem": 200, "stackexchange_other": 200, "wikihow": 200, "writingprompts": 150,
        "nlp": 50, "authors": 200})
    dev: dict[str, int] = field(default_factory=lambda: {"authors": 50})
    test: dict[str, int] = field(default_factory=lambda: {"askreddit": 70, "authors": 230})
    safety_refusals: int = 13
    multi_turn: int = 30
    allow_shortfall: bool = False               # take fewer than requested (recorded in the report)
    leakage_ngram: int = 3
    leakage_jaccard: float = 0.5
    leakage_action: str = "report"              # report | fail
    table1_tokenizer: str | None = None         # HF id/path; None → word proxy (labelled)
    pool_unfiltered_size: int | None = None     # rows in pool_unfiltered.jsonl (None = every candidate)


def curation_config(cfg: dict[str, Any]) -> CurationConfig:
    ccfg = section(cfg, "curation", CurationConfig)
    checks = {"prompt_from": ("title", "body", "random"), "selector": ("lima", "longest", "diversity"),
              "site_size_from": ("interim", "filtered"), "leakage_action": ("report", "fail"),
              "unknown_site_group": ("stem", "other", "discarded", "error")}
    for name, allowed in checks.items():
        if getattr(ccfg, name) not in allowed:
            raise ValueError(f"curation.{name} must be one of {allowed}, got {getattr(ccfg, name)!r}")
    return ccfg


def interim_path(cfg: dict[str, Any], source: str) -> Path:
    return resolve(cfg["paths"]["interim"]) / INTERIM_FILES[source]


def curate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run curation for a loaded profile; returns {"counts", "report", "leakage", "table1", "paths"}."""
    from lima.curation.pipeline import run_curation

    return run_curation(cfg)


__all__ = ["CurationConfig", "curate", "curation_config", "INTERIM_FILES", "OUTPUT_FILES"]
