"""Leakage check: is any dev or test prompt (nearly) a prompt of something we train on?

Every training file is checked — `train.jsonl`, `train_multiturn.jsonl`, `pool_unfiltered.jsonl` in curation, and
each ablation pool when it is drawn (`guard_pool`) — and every user turn on both sides, so a test prompt hidden
in the third turn of a dialogue is found too. Assistant turns are not compared (a training answer may quote a
question; only prompts leak the evaluation).

Two tests on normalised text (NFKC, lower case, punctuation removed, whitespace collapsed): exact equality, and
near-duplicates: exact Jaccard similarity of word n-gram shingle sets >= the threshold. The dev/test side is
small (hundreds of turns), so its shingles go into an inverted index and each training turn is compared with
every dev/test turn it shares a shingle with: no MinHash approximation, so no near-duplicate is missed near the
threshold, and training files of any size stream through in one pass. Texts with fewer words than n are
shingled as one n-gram of all their words. Whether a hit stops the run is `curation.leakage_action`
(`report` | `fail`).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class LeakageError(RuntimeError):
    """Dev/test prompts found in a training file while `curation.leakage_action` is `fail`."""


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def shingles(text: str, n: int) -> set[str]:
    words = normalise(text).split()
    if len(words) <= n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i: i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def user_turns(row: Mapping[str, Any]) -> list[tuple[int, str]]:
    """(message index, content) of every user message of a row."""
    return [(i, str(m.get("content") or "")) for i, m in enumerate(row.get("messages") or [])
            if m.get("role") == "user"]


def first_user_turn(row: dict[str, Any]) -> str:
    return next((text for _, text in user_turns(row)), "")


class LeakageIndex:
    """Dev/test user turns, indexed by normalised text and by shingle, to stream training rows against."""

    def __init__(self, queries: Sequence[Mapping[str, Any]], ngram: int = 3, threshold: float = 0.5) -> None:
        self.ngram, self.threshold = ngram, threshold
        self.queries = list(queries)
        self.turns: list[tuple[Mapping[str, Any], int, str, set[str]]] = []
        self.exact: dict[str, list[int]] = {}
        self.postings: dict[str, list[int]] = {}
        for row in self.queries:
            for turn, text in user_turns(row):
                k = len(self.turns)
                sh = shingles(text, ngram)
                self.turns.append((row, turn, text, sh))
                if norm := normalise(text):
                    self.exact.setdefault(norm, []).append(k)
                for s in sh:
                    self.postings.setdefault(s, []).append(k)

    def _hit(self, k: int, file: str, row: Mapping[str, Any], turn: int) -> dict[str, Any]:
        qrow, qturn, text, _ = self.turns[k]
        return {"id": qrow.get("id"), "source": qrow.get("source"), "turn": qturn, "file": file,
                "train_id": row.get("id"), "train_turn": turn, "prompt": text[:200]}

    def check(self, rows: Iterable[Mapping[str, Any]], file: str) -> dict[str, Any]:
        """Hits of one training file: {"rows", "user_turns", "exact": [...], "near": [...]}."""
        exact: list[dict[str, Any]] = []
        near: list[dict[str, Any]] = []
        n_rows = n_turns = 0
        for row in rows:
            n_rows += 1
            for turn, text in user_turns(row):
                n_turns += 1
                same = self.exact.get(normalise(text), [])
                exact += [self._hit(k, file, row, turn) for k in same]
                sh = shingles(text, self.ngram)
                shared = Counter(k for s in sh for k in self.postings.get(s, ()))
                for k, inter in sorted(shared.items()):
                    if k in same:
                        continue
                    score = inter / (len(sh) + len(self.turns[k][3]) - inter)
                    if score >= self.threshold:
                        near.append({**self._hit(k, file, row, turn), "jaccard": round(score, 4)})
        return {"rows": n_rows, "user_turns": n_turns, "exact": exact, "near": near}


def check_files(queries: Sequence[Mapping[str, Any]], files: Mapping[str, Iterable[Mapping[str, Any]]],
                ngram: int = 3, threshold: float = 0.5) -> dict[str, Any]:
    """Every dev/test user turn against every user turn of each training file (name → rows)."""
    index = LeakageIndex(queries, ngram, threshold)
    per_file = {name: index.check(rows, name) for name, rows in files.items()}
    exact = [h for r in per_file.values() for h in r["exact"]]
    near = [h for r in per_file.values() for h in r["near"]]
    return {"method": {"normalisation": "NFKC, lower case, punctuation removed, whitespace collapsed",
                       "turns": "every user turn of every dev/test row against every user turn of each "
                                "training file",
                       "near_duplicate": f"exact Jaccard >= {threshold} of word {ngram}-gram shingle sets "
                                         f"(inverted index over the dev/test shingles, no approximation)"},
            "n_checked": len(index.queries), "n_checked_turns": len(index.turns),
            "n_train": sum(r["rows"] for r in per_file.values()),
            "files": {name: {k: (len(v) if isinstance(v, list) else v) for k, v in r.items()}
                      for name, r in per_file.items()},
            "exact": exact, "near": near, "hits": len(exact) + len(near),
            "leaked_prompts": len({(h["id"], h["turn"]) for h in exact + near})}


def check_leakage(queries: Sequence[Mapping[str, Any]], train: Iterable[Mapping[str, Any]], ngram: int = 3,
                  threshold: float = 0.5) -> dict[str, Any]:
    """One training set (`train`) against the dev/test `queries`; see `check_files`."""
    return check_files(queries, {"train": train}, ngram, threshold)


def enforce(report: Mapping[str, Any], action: str, what: str) -> None:
    """`leakage_action: fail` turns any hit into a LeakageError (before anything is written); `report` logs."""
    if not report["hits"]:
        return
    pairs = [(h["id"], h["file"], h["train_id"]) for h in [*report["exact"], *report["near"]]][:10]
    message = (f"{what}: {report['leaked_prompts']} dev/test prompt(s) match training prompts "
               f"({len(report['exact'])} exact, {len(report['near'])} near): {pairs}")
    if action == "fail":
        raise LeakageError(f"{message}; nothing was written (curation.leakage_action: fail)")
    log.warning("%s (curation.leakage_action: report)", message)


def guard_pool(cfg: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], name: str) -> dict[str, Any] | None:
    """Check an ablation pool against `{processed}`/dev.jsonl and test.jsonl when they exist.

    Under `report` the result is written to `{processed}/leakage_pools/<name>.json`; under `fail` a hit raises
    LeakageError before the pool reaches training. Returns the report (None when there is no dev/test yet)."""
    from lima.config import resolve
    from lima.curation import curation_config
    from lima.io import iter_jsonl, write_json

    ccfg = curation_config(dict(cfg))
    processed = resolve(cfg["paths"]["processed"])
    held_out = [processed / f for f in ("dev.jsonl", "test.jsonl") if (processed / f).exists()]
    if not held_out:
        log.warning("%s: no %s/dev.jsonl or test.jsonl to check for leakage (run curation first)", name, processed)
        return None
    queries = [row for path in held_out for row in iter_jsonl(path)]
    report = check_files(queries, {name: rows}, ccfg.leakage_ngram, ccfg.leakage_jaccard)
    enforce(report, ccfg.leakage_action, name)
    safe = re.sub(r"[^\w.-]+", "_", name)
    write_json(Path(processed) / "leakage_pools" / f"{safe}.json", report, inputs=held_out)
    return report
