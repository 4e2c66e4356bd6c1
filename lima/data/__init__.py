"""Data collection: raw community dumps → candidate JSONL files under `{interim}`.

Each reader streams its dump (Stack Exchange `Posts.xml` / `.7z`, Pushshift `.zst`, `wikihowAll.csv`,
Super-NaturalInstructions task files, hand-written JSONL) and writes one candidate file with `lima.io.write_jsonl`,
so a failing reader leaves nothing half-written. Curation (another stage) applies the paper's filters; collection
only parses, joins and keeps attribution.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.config import resolve, section

log = logging.getLogger(__name__)

INTERIM_FILES = {
    "stackexchange": "stackexchange.jsonl",
    "writingprompts": "writingprompts.jsonl",
    "askreddit": "askreddit.jsonl",
    "wikihow": "wikihow.jsonl",
    "sni": "sni.jsonl",
    "authored": "authored.jsonl",
}


@dataclass
class SyntheticSizes:
    """How big the generated miniature dumps are (smoke). Sized so curation has enough candidates per filter."""

    se_questions_per_site: int = 48       # per Stack Exchange site (13 sites)
    se_answers_per_question: int = 3
    writingprompts_posts: int = 90
    askreddit_posts: int = 70
    other_reddit_posts: int = 40          # other subreddits, must be ignored
    wikihow_articles: int = 160
    sni_generation_tasks: int = 16
    sni_other_tasks: int = 6              # classification-style tasks, must not be picked
    sni_instances_per_task: int = 5


@dataclass
class DataConfig:
    """The `data` section of a profile."""

    synthetic: bool = False
    stackexchange: str = "data/raw/stackexchange"
    reddit: str = "data/raw/reddit"
    wikihow: str = "data/raw/wikihow/wikihowAll.csv"
    wikihow_categories: str = "lima/resources/wikihow_categories.csv"
    sni: str = "data/raw/natural-instructions/tasks"
    authored: str = "lima/resources/authored"
    reddit_review: str = "data/interim/reddit_review.csv"
    alpaca_json: str | None = None            # Alpaca's alpaca_data.json: the paper's Alpaca baseline trains on it
    reddit_candidates: int = 2000
    se_min_answer_score: int | None = None   # cheap collect-time prefilter; curation applies the real filters
    sni_tasks: int = 50                       # distinct generation tasks, one instance each
    synthetic_sizes: SyntheticSizes = field(default_factory=SyntheticSizes)


def data_config(cfg: dict[str, Any]) -> DataConfig:
    return section(cfg, "data", DataConfig)


def interim_dir(cfg: dict[str, Any]) -> Path:
    return resolve(cfg["paths"]["interim"])


def collect_all(cfg: dict[str, Any]) -> dict[str, int]:
    """Run every reader into `{interim}`; returns row counts per output file (name without .jsonl)."""
    from lima.data import authored, reddit, sni, stackexchange, wikihow

    dc = data_config(cfg)
    out = interim_dir(cfg)
    seed = int(cfg.get("seed", 0))
    config = dataclasses.asdict(dc)
    counts: dict[str, int] = {}
    stats = stackexchange.collect(resolve(dc.stackexchange), out / INTERIM_FILES["stackexchange"],
                                  min_answer_score=dc.se_min_answer_score, config=config)
    counts["stackexchange"] = stats["pairs"]
    rstats = reddit.collect(resolve(dc.reddit), out, review=resolve(dc.reddit_review),
                            candidates=dc.reddit_candidates, config=config)
    counts["writingprompts"] = rstats["writingprompts"]
    counts["askreddit"] = rstats["askreddit"]
    counts["wikihow"] = wikihow.collect(resolve(dc.wikihow), out / INTERIM_FILES["wikihow"],
                                        categories=resolve(dc.wikihow_categories), config=config)["articles"]
    counts["sni"] = sni.collect(resolve(dc.sni), out / INTERIM_FILES["sni"], n_tasks=dc.sni_tasks, seed=seed,
                                config=config)["tasks"]
    counts["authored"] = authored.collect(resolve(dc.authored), out / INTERIM_FILES["authored"],
                                          config=config)["rows"]
    log.info("collected %s into %s", counts, out)
    return counts


__all__ = ["DataConfig", "SyntheticSizes", "collect_all", "data_config", "INTERIM_FILES"]
