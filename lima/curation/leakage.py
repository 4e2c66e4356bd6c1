"""Leakage check: is any test or dev prompt (nearly) a training prompt?

Two tests on normalised text (NFKC, lower case, punctuation removed, whitespace collapsed): exact equality,
and near-duplicates found with datasketch's MinHash LSH over word n-gram shingles, each LSH candidate then
confirmed with the exact Jaccard similarity of the shingle sets (LSH alone has false positives). Texts with
fewer words than n are shingled as one n-gram of all their words. The report lists every hit; whether a hit
fails the run is `curation.leakage_action` (report | fail).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from datasketch import MinHash, MinHashLSH


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


def _minhash(items: set[str], num_perm: int) -> MinHash:
    m = MinHash(num_perm=num_perm, seed=1)
    m.update_batch([s.encode("utf-8") for s in items])
    return m


def first_user_turn(row: dict[str, Any]) -> str:
    return next((m["content"] for m in row.get("messages", []) if m.get("role") == "user"), "")


def check_leakage(queries: Sequence[dict[str, Any]], train: Sequence[dict[str, Any]], ngram: int = 3,
                  threshold: float = 0.5, num_perm: int = 128) -> dict[str, Any]:
    """`queries` are test/dev rows, `train` the training rows; compares first user turns."""
    exact_index: dict[str, list[str]] = {}
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    train_shingles: dict[str, set[str]] = {}
    for row in train:
        prompt = first_user_turn(row)
        exact_index.setdefault(normalise(prompt), []).append(row["id"])
        sh = shingles(prompt, ngram)
        if sh and row["id"] not in train_shingles:
            train_shingles[row["id"]] = sh
            lsh.insert(row["id"], _minhash(sh, num_perm))
    exact: list[dict[str, Any]] = []
    near: list[dict[str, Any]] = []
    for row in queries:
        prompt = first_user_turn(row)
        norm = normalise(prompt)
        for train_id in exact_index.get(norm, []) if norm else []:
            exact.append({"id": row["id"], "source": row.get("source"), "train_id": train_id, "prompt": prompt[:200]})
        sh = shingles(prompt, ngram)
        if not sh:
            continue
        exact_ids = set(exact_index.get(norm, []))
        for train_id in sorted(lsh.query(_minhash(sh, num_perm))):
            score = jaccard(sh, train_shingles[train_id])
            if score >= threshold and train_id not in exact_ids:
                near.append({"id": row["id"], "source": row.get("source"), "train_id": train_id,
                             "jaccard": round(score, 4), "prompt": prompt[:200]})
    return {"method": {"normalisation": "NFKC, lower case, punctuation removed, whitespace collapsed",
                       "near_duplicate": f"MinHash LSH ({num_perm} permutations) over word {ngram}-grams, "
                                         f"confirmed by exact Jaccard >= {threshold}"},
            "n_train": len(train), "n_checked": len(queries), "exact": exact, "near": near,
            "hits": len(exact) + len(near)}
