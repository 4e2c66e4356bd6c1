"""wikiHow (`wikihowAll.csv`: headline, title, text) → articles with a category.

The common dump has no category column; wikiHow has 19 top-level categories, so we assign one from the title with
a keyword mapping (`lima/resources/wikihow_categories.csv`, ours, configurable: first keyword found in the
lower-cased title wins; no match → "Uncategorized"). Curation samples a category uniformly, then an article in it.
Like the paper, a leading "This article …" becomes "The following answer …", and links and images are removed.
"""

from __future__ import annotations

import csv
import logging
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lima.io import InputError, write_jsonl

log = logging.getLogger(__name__)

REQUIRED = ("title", "headline", "text")
UNCATEGORIZED = "Uncategorized"
_IMAGES = [re.compile(p, re.I | re.S) for p in (r"<img\b[^>]*>", r"!\[[^\]]*\]\([^)]*\)", r"\[\[Image:[^\]]*\]\]",
                                                 r"\[Image:[^\]]*\]")]
_LINKS = [(re.compile(r"<a\b[^>]*>(.*?)</a>", re.I | re.S), r"\1"), (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
          (re.compile(r"\s*\(?https?://\S+\)?"), ""), (re.compile(r"\s*\bwww\.\S+"), "")]
_THIS_ARTICLE = re.compile(r"^(\s*)This article\b")


def load_categories(path: str | Path) -> list[tuple[str, str]]:
    """(keyword, category) pairs in file order from the mapping CSV (columns: keyword, category)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: category mapping not found")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.reader(handle) if r and not r[0].startswith("#")]
    if not rows or rows[0][:2] != ["keyword", "category"]:
        raise InputError(f"{path}: line 1: expected header 'keyword,category'")
    return [(r[0].strip().lower(), r[1].strip()) for r in rows[1:] if len(r) >= 2]


def categorize(title: str, mapping: list[tuple[str, str]]) -> str:
    words = f" {re.sub(r'[^a-z0-9]+', ' ', title.lower())} "
    for keyword, category in mapping:
        if f" {keyword} " in words:
            return category
    return UNCATEGORIZED


def clean_text(text: str) -> str:
    """The paper's edits: "This article…" → "The following answer…", and no links or images."""
    for pattern in _IMAGES:
        text = pattern.sub("", text)
    for pattern, repl in _LINKS:
        text = pattern.sub(repl, text)
    text = _THIS_ARTICLE.sub(r"\1The following answer", text.lstrip(" ,\n"))
    text = re.sub(r"[ \t]+\n", "\n", re.sub(r"[ \t]{2,}", " ", text))
    return text.strip()


def iter_articles(path: Path, mapping: list[tuple[str, str]], stats: Counter) -> Iterator[dict[str, Any]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: line 1: empty file (expected a header with {', '.join(REQUIRED)})")
    with open(path, newline="", encoding="utf-8", errors="strict") as handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise InputError(f"{path}: line 1: missing column(s) {missing}; header is {header}")
            for row in reader:
                stats["rows"] += 1
                title = " ".join((row.get("title") or "").split())
                text = row.get("text")
                if not title or not text or not text.strip():
                    stats["skipped_malformed"] += 1
                    continue
                category = categorize(title, mapping)
                stats[f"category:{category}"] += 1
                yield {"id": f"wikihow:{stats['rows']}", "title": title, "category": category,
                       "headline": (row.get("headline") or "").strip(), "text": clean_text(text)}
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: line {reader.line_num + 1}: invalid UTF-8 ({err.reason})") from None
        except csv.Error as err:
            raise InputError(f"{path}: line {reader.line_num}: malformed CSV ({err})") from None


def collect(path: str | Path, output: str | Path, categories: str | Path, config: Any = None) -> dict[str, int]:
    stats: Counter = Counter()
    mapping = load_categories(categories)
    stats["articles"] = write_jsonl(output, iter_articles(Path(path), mapping, stats), config=config,
                                    inputs=[path, categories], extra={"stats": stats})
    log.info("wikihow: %s", dict(stats))
    return dict(stats)
