"""Forgetting experiment: the table that aggregates probes and format compliance (no training)."""

from __future__ import annotations

import pytest

from lima.experiments.forgetting import findings, forgetting_table


def _probe(lr, epoch, known_per_person):
    return [{"person": f"p{i}", "group": "held_out", "attribute": a, "known": k, "learning_rate": lr,
             "epoch": epoch, "checkpoint": f"ck-{lr}-{epoch}"}
            for i, ks in enumerate(known_per_person) for a, k in zip("ab", ks, strict=True)]


def _fmt(lr, epoch, values):
    return [{"prompt_id": f"q{i}", "learning_rate": lr, "epoch": epoch, "format_compliance": v}
            for i, v in enumerate(values)]


def test_table_exact_numbers_and_drop():
    probes = _probe(None, 0, [(1, 1)] * 4) + _probe(1e-3, 1, [(1, 1), (1, 0), (1, 0), (0, 0)]) \
        + _probe(1e-3, 2, [(0, 0)] * 4)
    formats = _fmt(1e-3, 1, [0, 1, 1, 1]) + _fmt(1e-3, 2, [1, 1, 1, 1])
    table = forgetting_table(probes, formats, n_boot=200)
    assert [(r["learning_rate"], r["epoch"]) for r in table] == [(None, 0), (0.001, 1), (0.001, 2)]
    base, one, two = table
    assert base["cloze"] == 1.0 and base["cloze_drop"] == 0.0 and base["n_prompts"] == 0
    assert one["cloze"] == 0.5 and one["cloze_drop"] == 0.5 and one["n_people"] == 4
    assert one["format_compliance"] == 0.75 and one["n_prompts"] == 4
    assert two["cloze"] == 0.0 and two["cloze_high"] == 0.0 and two["format_compliance"] == 1.0
    text = findings(table)
    assert "format compliance reaches 50% at epoch 1 with held-out cloze 0.50" in text
    assert one["cloze_high"] < 1.0 and "lr 0.001 at epoch 1" in text


def test_table_needs_the_base():
    with pytest.raises(ValueError, match="no base probe"):
        forgetting_table(_probe(1e-3, 1, [(1, 1)]), [])
