"""Seeded sampling: temperature sampling over exchanges, category-then-article for wikiHow, prompt choice.

Every random choice takes an explicit `random.Random`, or derives one from (seed, purpose, id) with
`rng_for`, so that adding a source or changing one count does not reshuffle the others.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class ShortfallError(ValueError):
    """Fewer candidates than the configured count (the message names the source and both numbers)."""


def rng_for(seed: int, *parts: object) -> random.Random:
    """A generator that depends only on the seed and a purpose label (string seeds are hashed with sha512)."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


def temperature_probabilities(sizes: Mapping[K, float], temperature: float) -> dict[K, float]:
    """p_site ∝ n_site^(1/τ): τ = 1 is proportional to size, τ → ∞ uniform; sites with n = 0 get 0."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    weights = {k: (float(n) ** (1.0 / temperature) if n > 0 else 0.0) for k, n in sizes.items()}
    total = sum(weights.values())
    if total == 0:
        return {k: 0.0 for k in sizes}
    return {k: w / total for k, w in weights.items()}


def sample_sites(sizes: Mapping[K, float], temperature: float, k: int, rng: random.Random) -> list[K]:
    """k independent draws of a site (with replacement); used to check the empirical frequencies."""
    probs = temperature_probabilities(sizes, temperature)
    keys = list(probs)
    return rng.choices(keys, weights=[probs[key] for key in keys], k=k)


def check_count(source: str, available: int, wanted: int, allow_shortfall: bool) -> int:
    if available >= wanted:
        return wanted
    if allow_shortfall:
        return available
    raise ShortfallError(f"{source}: {wanted} examples requested but only {available} candidates are available "
                         f"(lower the count in the profile's curation section, add input data, or set "
                         f"curation.allow_shortfall=true to take fewer)")


def temperature_sample(pools: Mapping[K, Sequence[T]], n: int, temperature: float, rng: random.Random,
                       sizes: Mapping[K, float] | None = None, source: str = "stackexchange",
                       allow_shortfall: bool = False) -> list[tuple[K, T]]:
    """Draw n items: pick a site with p ∝ size^(1/τ) (renormalised over sites that still have items), then take
    that site's next item in pool order (the pools are sorted best-first, so each draw takes the
    highest-scoring remaining question). `sizes` defaults to the pool lengths."""
    remaining = {k: list(v) for k, v in pools.items() if len(v)}
    n = check_count(source, sum(len(v) for v in remaining.values()), n, allow_shortfall)
    size_of = {k: float(sizes.get(k, len(v)) if sizes else len(v)) for k, v in remaining.items()}
    cursor = dict.fromkeys(remaining, 0)
    out: list[tuple[K, T]] = []
    while len(out) < n:
        open_sites = [k for k in remaining if cursor[k] < len(remaining[k])]
        probs = temperature_probabilities({k: size_of[k] for k in open_sites}, temperature)
        site = rng.choices(open_sites, weights=[probs[k] for k in open_sites], k=1)[0]
        out.append((site, remaining[site][cursor[site]]))
        cursor[site] += 1
    return out


def category_then_article(by_category: Mapping[str, Sequence[T]], n: int, rng: random.Random,
                          source: str = "wikihow", allow_shortfall: bool = False) -> list[T]:
    """The paper's wikiHow rule: a category uniformly at random, then an article uniformly within it
    (without replacement; exhausted categories drop out)."""
    remaining = {c: list(v) for c, v in sorted(by_category.items()) if len(v)}
    n = check_count(source, sum(len(v) for v in remaining.values()), n, allow_shortfall)
    out: list[T] = []
    while len(out) < n:
        category = rng.choice(sorted(c for c, v in remaining.items() if v))
        items = remaining[category]
        out.append(items.pop(rng.randrange(len(items))))
    return out


def choose_prompt_field(prompt_from: str, seed: int, example_id: str) -> str:
    """"title" or "body" for one example; `random` is a fair coin keyed on (seed, id), so the choice for an
    example does not depend on which other examples were drawn."""
    if prompt_from in {"title", "body"}:
        return prompt_from
    if prompt_from != "random":
        raise ValueError(f"prompt_from must be title|body|random, got {prompt_from!r}")
    return "title" if rng_for(seed, "prompt", example_id).random() < 0.5 else "body"
