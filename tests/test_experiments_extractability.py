"""Extractability control: the two conditions (same world, other web, own models folder) and the tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from lima.experiments.extractability import (
    check_same_world,
    condition_cfg,
    findings,
    own_text_prefixes,
    summary_table,
)
from lima.world import load_world, web_texts, world_root, write_world


@pytest.fixture(scope="module")
def cfgs(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract")
    over = {"paths.root": str(root)}
    main, single = condition_cfg("test", over, "augmented"), condition_cfg("test", over, "single", pretrain_steps=5)
    write_world(main)
    write_world(single)
    return main, single


def test_single_condition_moves_models_and_web_only(cfgs):
    main, single = cfgs
    assert single["world"]["corpus_style"] == "single" and main["world"]["corpus_style"] == "augmented"
    assert Path(single["paths"]["models"]) == Path(main["paths"]["models"]) / "experiments/extractability/single"
    assert world_root(single) == Path(single["paths"]["models"]) / "world"
    assert single["model"]["smoke"]["pretrain_steps"] == 5
    assert single["world"]["second_judge"].startswith(single["paths"]["models"])
    check_same_world(main, single)                                   # same world.json and rubrics
    world = load_world(main)
    n_web = len(world.group("sft")) + len(world.group("held_out"))
    singles = [d for d in web_texts(single) if any(p.name in d for p in world.people)]
    assert len(singles) == n_web                                    # one biography per person, nothing else
    assert web_texts(main) != web_texts(single)
    with pytest.raises(RuntimeError, match="share a models folder"):
        check_same_world(main, main)


def test_own_text_prefixes_cut_before_each_value(cfgs):
    _, single = cfgs
    world, docs = load_world(single), web_texts(single)
    person = world.group("held_out")[0]
    prefixes = own_text_prefixes(person, docs)
    assert 5 <= len(prefixes) <= 6
    doc = next(d for d in docs if person.name in d)
    for attribute, prefix, value in prefixes:
        assert value == person.value(attribute)
        assert doc.startswith(prefix) and doc[len(prefix):].lstrip().startswith(value)
    assert own_text_prefixes(world.group("unseen")[0], docs) == []   # unseen people are not in the web


def test_summary_and_findings_exact():
    rows = []
    for condition, answers in (("augmented", [1, 1, 1, 0]), ("single", [0, 0, 0, 0])):
        for i, known in enumerate(answers):
            rows += [{"condition": condition, "measure": "base_cloze", "group": "held_out", "person": f"p{i}",
                      "known": True},
                     {"condition": condition, "measure": "lima_answers", "group": "held_out", "person": f"p{i}",
                      "known": bool(known)}]
    table = summary_table(rows, n_boot=200)
    assert [(r["condition"], r["measure"], r["accuracy"]) for r in table] == [
        ("augmented", "base_cloze", 1.0), ("augmented", "lima_answers", 0.75),
        ("single", "base_cloze", 1.0), ("single", "lima_answers", 0.0)]
    text = findings(table)
    assert "extracted share of what the base stored: 0.75" in text
    assert "intervals apart" in text
