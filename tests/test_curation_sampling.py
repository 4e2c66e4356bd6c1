"""Temperature sampling (exact probabilities and empirical frequencies), wikiHow sampling, prompt choice,
selectors and leakage."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from lima.curation.leakage import check_leakage, normalise
from lima.curation.sampling import (
    ShortfallError,
    category_then_article,
    choose_prompt_field,
    sample_sites,
    temperature_probabilities,
    temperature_sample,
)
from lima.curation.selectors import Item, k_center_greedy, select


def test_temperature_probabilities_exact():
    probs = temperature_probabilities({"so": 1000, "math": 8, "coffee": 1}, 3.0)
    # 1000^(1/3) = 10, 8^(1/3) = 2, 1^(1/3) = 1  →  10/13, 2/13, 1/13
    assert probs == pytest.approx({"so": 10 / 13, "math": 2 / 13, "coffee": 1 / 13})
    assert temperature_probabilities({"a": 30, "b": 10}, 1.0) == pytest.approx({"a": 0.75, "b": 0.25})
    assert temperature_probabilities({"a": 0, "b": 5}, 3.0) == {"a": 0.0, "b": 1.0}
    with pytest.raises(ValueError):
        temperature_probabilities({"a": 1}, 0)


def test_temperature_sampling_empirical_frequencies():
    draws = Counter(sample_sites({"so": 1000, "math": 8, "coffee": 1}, 3.0, 20000, random.Random(7)))
    assert abs(draws["so"] / 20000 - 10 / 13) < 0.01
    assert abs(draws["math"] / 20000 - 2 / 13) < 0.01
    assert abs(draws["coffee"] / 20000 - 1 / 13) < 0.01


def test_temperature_sample_takes_best_first_and_is_seeded():
    pools = {"big": [f"b{i}" for i in range(50)], "small": ["s0", "s1"]}
    a = temperature_sample(pools, 10, 3.0, random.Random(1))
    assert a == temperature_sample(pools, 10, 3.0, random.Random(1))
    big = [x for site, x in a if site == "big"]
    assert big == [f"b{i}" for i in range(len(big))]  # each site in its order (best first)
    assert len(temperature_sample(pools, 52, 3.0, random.Random(1))) == 52  # exhausts both
    with pytest.raises(ShortfallError, match=r"stackexchange: 53 examples requested but only 52"):
        temperature_sample(pools, 53, 3.0, random.Random(1))
    assert len(temperature_sample(pools, 60, 3.0, random.Random(1), allow_shortfall=True)) == 52


def test_category_then_article_uniform_over_categories():
    cats = {"big": list(range(1000)), "small": list(range(1000, 1010))}
    picked = category_then_article(cats, 20, random.Random(3))
    n_small = sum(1 for p in picked if p >= 1000)
    assert 5 <= n_small <= 10  # about half from the small category despite 1% of the articles
    assert len(set(picked)) == 20


def test_prompt_field_choice_is_seeded_and_reproducible():
    ids = [f"se:x:{i}" for i in range(200)]
    first = [choose_prompt_field("random", 42, i) for i in ids]
    assert first == [choose_prompt_field("random", 42, i) for i in ids]
    assert first != [choose_prompt_field("random", 43, i) for i in ids]
    assert 70 < first.count("title") < 130
    assert choose_prompt_field("body", 1, "x") == "body"
    with pytest.raises(ValueError):
        choose_prompt_field("both", 1, "x")


def _items() -> list[Item]:
    texts = ["coffee grind size espresso", "coffee grind size filter", "tax return deadline form",
             "guitar string tuning", "coffee grind burr espresso", "mountain hiking boots"]
    return [Item(f"i{n}", "g", (n,), t, len(t) * (n + 1)) for n, t in enumerate(texts)]


def test_selectors():
    items = _items()
    longest = select("longest", items, 2, "random", random.Random(0))
    assert [i.id for i in longest.items] == ["i4", "i5"]  # 130 and 126 characters
    div = select("diversity", items, 4, "random", random.Random(0))
    assert div.info["embedding"] == "tfidf" and len({i.id for i in div.items}) == 4
    # the four most different topics: at most one of the three coffee items is chosen... plus one more
    coffee = sum("coffee" in i.text for i in div.items)
    assert coffee <= 2
    with pytest.raises(ShortfallError):
        select("longest", items, 7, "random", random.Random(0), source="x")
    with pytest.raises(ValueError, match="selector"):
        select("best", items, 1, "random", random.Random(0))
    import numpy as np

    vectors = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0], [-1.0, 0.0]])
    assert k_center_greedy(vectors, 3, 0) == [0, 3, 2]


def _row(rid: str, prompt: str) -> dict:
    return {"id": rid, "messages": [{"role": "user", "content": prompt}], "source": "x"}


def test_leakage_exact_and_near_duplicates_without_false_hits():
    train = [_row("t1", "How do I descale an espresso machine with citric acid safely at home?"),
             _row("t2", "What is the capital city of Australia and why was it chosen over Sydney?"),
             _row("t3", "Explain the rules of cricket to someone who has only ever watched baseball games.")]
    queries = [_row("q_exact", "how do i DESCALE an espresso machine, with citric acid safely at home"),
               _row("q_near", "What is the capital city of Australia and why was it picked over Sydney?"),
               _row("q_clean", "Write a haiku about a lighthouse keeper on a stormy winter night.")]
    assert normalise("Hello,  World!") == "hello world"
    rep = check_leakage(queries, train, ngram=3, threshold=0.5)
    assert [(h["id"], h["train_id"]) for h in rep["exact"]] == [("q_exact", "t1")]
    assert [(h["id"], h["train_id"]) for h in rep["near"]] == [("q_near", "t2")]
    assert rep["near"][0]["jaccard"] == 0.6  # 9 shared of 15 word trigrams
    assert rep["hits"] == 2 and rep["n_checked"] == 3
