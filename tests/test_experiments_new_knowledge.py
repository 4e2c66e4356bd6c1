"""New knowledge in the fine-tune (lima.experiments.new_knowledge): Known/Unknown on a base with planted knowledge."""

from __future__ import annotations

import pandas as pd
import pytest

from lima.experiments.new_knowledge import (
    Pools,
    category,
    classify_facts,
    cloze_prompts,
    condition_rows,
    eval_prompts,
    grade_answers,
    split_unseen,
    summarise,
)
from lima.world.assistant import unknown_answer
from lima.world.world import WorldSizes, build_world

SIZES = WorldSizes(sft_people=6, held_out_people=3, unseen_people=4, unknown_sft_people=2, cities=8,
                   organisations=5, sft_procedures=2, held_out_procedures=1)


@pytest.fixture(scope="module")
def world():
    return build_world(7, SIZES)


class PlantedBase:
    """A fake base: greedy is right on the phrasings listed per (person, attribute); a sample is right on the
    listed sample indices. Everything else answers a value that is always wrong ("Nowhere")."""

    def __init__(self, world, greedy: dict, samples: dict) -> None:
        self.world, self.greedy, self.samples = world, greedy, samples
        self.calls: list[tuple[int, bool, int]] = []

    def _fact(self, prompt: str):
        for p in self.world.people:
            for a in ("birth_city", "birth_year", "field", "employer", "employer_city", "hobby"):
                if prompt in cloze_prompts(p, a):
                    return p, a, cloze_prompts(p, a).index(prompt)
        raise AssertionError(prompt)

    def __call__(self, prompts, do_sample, n):
        self.calls.append((len(prompts), do_sample, n))
        out = []
        for q in prompts:
            p, a, k = self._fact(q)
            if do_sample:
                right = self.samples.get((p.name, a), set())
                out.append([f" {p.value(a)}." if i in right else " Nowhere." for i in range(n)])
            else:
                out.append([f" {p.value(a)}." if k in self.greedy.get((p.name, a), set()) else " Nowhere."])
        return out


def test_gekhman_categories_from_greedy_and_samples() -> None:
    assert category([True, True, True], []) == "HighlyKnown"
    assert category([True, False], [False]) == "MaybeKnown"
    assert category([False, False], [False, True]) == "WeaklyKnown"
    assert category([False], [False] * 8) == "Unknown"
    assert category([], []) == "Unknown"


def test_cloze_prompts_are_the_phrasings_ending_on_the_value(world) -> None:
    p = world.people[0]
    assert cloze_prompts(p, "birth_city") == [f"{p.name} was born in the city of", f"The birthplace of {p.name} is",
                                              f"{p.name} came into the world in", f"{p.name}'s home town is"]
    assert len(cloze_prompts(p, "birth_year")) == 3     # "arrived in {v}, the year …" and "In {v}, …" do not end on it


def test_known_unknown_on_a_base_with_planted_knowledge_exact(world) -> None:
    a, b, c, d = world.group("sft")[:4]
    greedy = {(a.name, "birth_city"): {0, 1, 2, 3},        # every phrasing → HighlyKnown
              (b.name, "birth_city"): {0},                 # one of four → MaybeKnown
              (d.name, "hobby"): {0, 1, 2, 3}}             # all four hobby phrasings ending on the value
    samples = {(c.name, "birth_city"): {5},                # greedy never, one sample of 8 → WeaklyKnown
               (a.name, "birth_city"): {0, 1}}
    base = PlantedBase(world, greedy, samples)
    rows = classify_facts(base, [a, b, c, d], attributes=["birth_city", "hobby"], k_samples=8)
    got = {(r["person"], r["attribute"]): (r["category"], r["p_greedy"], r["p_sample"], r["known"]) for r in rows}
    assert got == {
        (a.name, "birth_city"): ("HighlyKnown", 1.0, 0.25, True),
        (a.name, "hobby"): ("Unknown", 0.0, 0.0, False),
        (b.name, "birth_city"): ("MaybeKnown", 0.25, 0.0, True),
        (b.name, "hobby"): ("Unknown", 0.0, 0.0, False),
        (c.name, "birth_city"): ("WeaklyKnown", 0.0, 0.125, True),
        (c.name, "hobby"): ("Unknown", 0.0, 0.0, False),
        (d.name, "birth_city"): ("Unknown", 0.0, 0.0, False),
        (d.name, "hobby"): ("HighlyKnown", 1.0, 0.0, True),
    }
    # one greedy pass over every phrasing (4 + 4 per person), one sampled pass of 8 per fact
    assert base.calls == [(4 * 8, False, 1), (8, True, 8)]


def test_condition_sets_hold_the_asked_share_of_unknown_facts(world) -> None:
    sft, (u1, u2) = world.group("sft"), split_unseen(world)[0]
    known = [{"person": p.name, "attribute": "field", "category": "HighlyKnown", "value": p.field} for p in sft[:4]]
    unknown = [{"person": p.name, "attribute": at, "category": "Unknown", "value": p.value(at)}
               for p in (u1, u2) for at in ("hobby", "employer")]
    pools = Pools(known=known, unknown=unknown, abstain=world.group("unknown_sft"),
                  held_out=world.group("held_out"), unseen_test=split_unseen(world)[1])
    for share, n_unknown in ((0.0, 0), (0.5, 2), (1.0, 4)):
        rows = condition_rows(world, pools, share, 4, seed=1)
        cats = [r["category"] for r in rows]
        assert cats.count("Unknown") == n_unknown and cats.count("HighlyKnown") == 4 - n_unknown
        assert cats.count("abstain") == 2
        for r in rows:
            person = world.person(r["person"])
            assert person.name in r["messages"][0]["content"]
            if r["category"] != "abstain":
                assert person.value(r["attribute"]) in r["messages"][1]["content"]
    assert condition_rows(world, pools, 0.5, 4, seed=1) == condition_rows(world, pools, 0.5, 4, seed=1)
    with pytest.raises(ValueError, match="needs 5 Unknown"):
        condition_rows(world, pools, 1.0, 5, seed=1)
    prompts = eval_prompts(world, pools, ["birth_city"], [r for r in condition_rows(world, pools, 0.5, 4, 1)
                                                          if r["category"] != "abstain"])
    assert [p["subset"] for p in prompts].count("held_out") == 3
    assert [p["subset"] for p in prompts].count("unseen") == 2
    assert sorted(p["subset"] for p in prompts if p["subset"].startswith("train")) == ["train_known"] * 2 + \
        ["train_unknown"] * 2


def test_grading_and_prompt_level_summary_exact(world) -> None:
    held, unseen = world.group("held_out")[0], split_unseen(world)[1][0]
    prompts = [{"prompt_id": "h1", "subset": "held_out", "person": held.name, "attribute": "birth_city"},
               {"prompt_id": "h2", "subset": "held_out", "person": held.name, "attribute": "hobby"},
               {"prompt_id": "u1", "subset": "unseen", "person": unseen.name, "attribute": "birth_city"},
               {"prompt_id": "u2", "subset": "unseen", "person": unseen.name, "attribute": "hobby"}]
    wrong_city = next(c for c in world.cities if c != held.birth_city)
    texts = [f"Sure. {held.name} was born in the city of {held.birth_city}.", f"Sure. It is {wrong_city}.",
             f"Sure. {unseen.name} was born in the city of {world.cities[0]}.", unknown_answer(unseen.name)]
    graded = grade_answers(world, prompts, texts, ["eot"] * 4)
    assert [g.get("correct") for g in graded] == [1.0, 0.0, None, None]
    assert [g.get("hallucinated") for g in graded] == [None, None, 1.0, 0.0]
    assert [g.get("admits") for g in graded] == [None, None, 0.0, 1.0]
    table = pd.DataFrame(summarise([{**g, "share": 0.5, "epoch": 1} for g in graded]))
    acc = table[table["metric"] == "held-out fact accuracy"].iloc[0]
    assert acc["mean"] == 0.5 and acc["n_prompts"] == 2
    # two prompts, values 1 and 0: the Wilson interval for 1 of 2 (a t interval would be 0.5 ± 6.35)
    assert (round(acc["ci_low"], 4), round(acc["ci_high"], 4)) == (0.0945, 0.9055)
    assert set(table["metric"]) == {"held-out fact accuracy", "hallucination rate", "admits not knowing"}


def test_findings_paragraph_is_computed_from_the_table() -> None:
    from lima.experiments.new_knowledge_run import findings

    rows = []
    for share, acc, hall in ((0.0, 0.8, 0.1), (1.0, 0.3, 0.7)):
        for epoch in (1, 2):
            rows += [{"share": share, "epoch": epoch, "metric": "held-out fact accuracy", "subset": "held_out",
                      "mean": acc + 0.05 * epoch, "ci_low": acc - 0.1, "ci_high": acc + 0.1, "n_prompts": 30},
                     {"share": share, "epoch": epoch, "metric": "hallucination rate", "subset": "unseen",
                      "mean": hall, "ci_low": hall - 0.1, "ci_high": hall + 0.1, "n_prompts": 10}]
    text = findings(pd.DataFrame(rows))
    assert "held-out fact accuracy at epoch 2: 0% Unknown 0.90 [0.70, 0.90], 100% Unknown 0.40 [0.20, 0.40]" in text
    assert "lower held-out accuracy (Gekhman et al.): **yes**" in text
    assert "raise hallucination on unseen people: **yes**" in text
    assert "0% → epoch 2" in text
