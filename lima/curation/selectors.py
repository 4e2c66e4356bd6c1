"""Which candidates of a source become training examples (`curation.selector`).

- `lima` (the paper): Stack Exchange by temperature sampling over sites taking each site's best question;
  wikiHow category-then-article; WritingPrompts the top accepted posts by score; SNI random distinct tasks.
- `longest`: the n candidates with the longest responses ("Long Is More for Alignment", Zhao et al. 2024 —
  there a 1k pool of the longest responses beat LIMA's hand curation). Applied per source over the same
  candidate sets, so the mix of sources stays the paper's and only the within-source rule changes.
- `diversity`: k-center greedy (farthest-first) over embeddings of prompt + response: each pick is the
  candidate farthest from everything picked so far. Embeddings come from a sentence-transformers model when
  `curation.embedding_model` names one that is installed; otherwise TF-IDF vectors (scikit-learn), and the
  report says which was used.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lima.curation.sampling import category_then_article, check_count, temperature_sample

log = logging.getLogger(__name__)
SELECTORS = ("lima", "longest", "diversity")


@dataclass
class Item:
    """A candidate as the selectors see it: its group (site / category / task), ranking key, and text."""

    id: str
    group: str
    rank: tuple[Any, ...]
    text: str
    response_chars: int
    payload: Any = field(default=None, repr=False)


@dataclass
class Selection:
    items: list[Item]
    info: dict[str, Any]


def select_lima(items: Sequence[Item], n: int, rule: str, rng: random.Random, *, temperature: float = 3.0,
                sizes: dict[str, float] | None = None, source: str = "", allow_shortfall: bool = False) -> Selection:
    if rule == "temperature":
        pools: dict[str, list[Item]] = {}
        for item in sorted(items, key=lambda i: i.rank, reverse=True):
            pools.setdefault(item.group, []).append(item)
        drawn = temperature_sample(pools, n, temperature, rng, sizes=sizes, source=source,
                                   allow_shortfall=allow_shortfall)
        return Selection([item for _, item in drawn], {"rule": f"temperature sampling over sites (tau={temperature})"})
    if rule == "category":
        by_cat: dict[str, list[Item]] = {}
        for item in sorted(items, key=lambda i: i.id):
            by_cat.setdefault(item.group, []).append(item)
        return Selection(category_then_article(by_cat, n, rng, source, allow_shortfall),
                         {"rule": "category uniformly, then article uniformly"})
    if rule == "top":
        k = check_count(source, len(items), n, allow_shortfall)
        return Selection(sorted(items, key=lambda i: (i.rank, i.id), reverse=True)[:k], {"rule": "top by score"})
    if rule == "random":
        k = check_count(source, len(items), n, allow_shortfall)
        return Selection(rng.sample(sorted(items, key=lambda i: i.id), k), {"rule": "uniform random"})
    raise ValueError(f"unknown lima rule {rule!r}")


def select_longest(items: Sequence[Item], n: int, source: str = "", allow_shortfall: bool = False) -> Selection:
    k = check_count(source, len(items), n, allow_shortfall)
    chosen = sorted(items, key=lambda i: (-i.response_chars, i.id))[:k]
    return Selection(chosen, {"rule": "longest responses"})


def embed(texts: Sequence[str], embedding_model: str | None = None) -> tuple[np.ndarray, str]:
    """Unit-normalised vectors and the name of what made them."""
    if embedding_model:
        try:
            from sentence_transformers import SentenceTransformer  # optional

            model = SentenceTransformer(embedding_model)
            vectors = np.asarray(model.encode(list(texts), normalize_embeddings=True), dtype=np.float32)
            return vectors, f"sentence-transformers:{embedding_model}"
        except Exception as err:  # noqa: BLE001 - any failure falls back, and says so
            log.warning("embedding model %r unavailable (%s); using TF-IDF", embedding_model, err)
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(sublinear_tf=True, min_df=1).fit_transform(texts)
    return matrix.toarray().astype(np.float32), "tfidf"


def k_center_greedy(vectors: np.ndarray, k: int, first: int) -> list[int]:
    """Farthest-first traversal on cosine distance (vectors are L2-normalised)."""
    chosen = [first]
    dist = 1.0 - vectors @ vectors[first]
    dist[first] = -np.inf
    while len(chosen) < k:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, 1.0 - vectors @ vectors[nxt])
        dist[chosen] = -np.inf
    return chosen


def select_diversity(items: Sequence[Item], n: int, rng: random.Random, embedding_model: str | None = None,
                     source: str = "", allow_shortfall: bool = False) -> Selection:
    k = check_count(source, len(items), n, allow_shortfall)
    ordered = sorted(items, key=lambda i: i.id)
    if k == 0:
        return Selection([], {"rule": "k-center greedy", "embedding": None})
    vectors, how = embed([i.text for i in ordered], embedding_model)
    picks = k_center_greedy(vectors, k, rng.randrange(len(ordered)))
    return Selection([ordered[i] for i in picks], {"rule": "k-center greedy", "embedding": how})


def select(selector: str, items: Sequence[Item], n: int, lima_rule: str, rng: random.Random, *,
           temperature: float = 3.0, sizes: dict[str, float] | None = None, embedding_model: str | None = None,
           source: str = "", allow_shortfall: bool = False) -> Selection:
    if selector == "lima":
        return select_lima(items, n, lima_rule, rng, temperature=temperature, sizes=sizes, source=source,
                           allow_shortfall=allow_shortfall)
    if selector == "longest":
        return select_longest(items, n, source, allow_shortfall)
    if selector == "diversity":
        return select_diversity(items, n, rng, embedding_model, source, allow_shortfall)
    raise ValueError(f"curation.selector must be one of {SELECTORS}, got {selector!r}")
