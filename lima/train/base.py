"""The base model a fine-tune starts from: an HF id/path, or the smoke profile's tiny Llama built locally."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lima.config import resolve, section
from lima.io import iter_jsonl
from lima.model import SMOKE_BASE, ModelConfig, SmokeModelConfig, build_smoke_base

_TAG = re.compile(r"<[^>]+>")
_TEXT_FIELDS = ("title", "question_html", "answer_html", "selftext", "story", "headline", "text",
                "definition", "input", "output")


def _strip_html(text: str) -> str:
    return html.unescape(_TAG.sub(" ", text))


def corpus_texts(interim: str | Path) -> Iterator[str]:
    """Every text of the interim corpus (titles, bodies, stories, wikiHow, SNI, authored), HTML stripped."""
    for path in sorted(Path(interim).glob("*.jsonl")):
        for row in iter_jsonl(path):
            if not isinstance(row, dict):
                continue
            for key in _TEXT_FIELDS:
                value = row.get(key)
                if isinstance(value, str) and value.strip():
                    yield _strip_html(value) if key.endswith("_html") else value
            for message in row.get("messages") or []:
                if isinstance(message, dict) and isinstance(message.get("content"), str):
                    yield message["content"]


def ensure_base(cfg: dict[str, Any]) -> str:
    """Path or id of the base model; builds `{models}/base` once for `model.base == "smoke-tiny-llama"`.

    Delete `{models}/base` to rebuild it (e.g. after regenerating the corpus).
    """
    mcfg = section(cfg, "model", ModelConfig)
    if mcfg.base != SMOKE_BASE:
        return mcfg.base
    out = resolve(cfg["paths"]["models"]) / "base"
    if (out / "config.json").exists():
        return str(out)
    interim = resolve(cfg["paths"]["interim"])
    texts = list(corpus_texts(interim))
    if not texts:
        raise FileNotFoundError(f"no corpus to build the smoke base model from: {interim}/*.jsonl is empty or "
                                f"missing (run the data step, notebook 01, first)")
    build_smoke_base(mcfg.smoke or SmokeModelConfig(), texts, out, seed=int(cfg.get("seed", 0)))
    return str(out)
