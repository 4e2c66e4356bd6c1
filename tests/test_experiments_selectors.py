"""Selectors experiment: one pool, equal-size sets, and the win-rate table (no training)."""

from __future__ import annotations

import pytest

from lima.experiments.selectors import build_conditions, candidate_pool, findings, outcome, win_table


def _row(i: int, origin: str, chars: int, source: str = "stackexchange") -> dict:
    return {"id": f"{origin}{i}", "source": source,
            "messages": [{"role": "user", "content": f"question {i} about topic {i % 3}"},
                         {"role": "assistant", "content": f"word{i} " * chars}]}


def _pool() -> list[dict]:
    curated = [_row(i, "c", 2 + i) for i in range(6)]
    unfiltered = [_row(i, "u", 20 + i) for i in range(10)] + [curated[0]]          # an overlap
    unfiltered.append({"id": "multi", "messages": [{"role": "user", "content": "a"},
                                                   {"role": "assistant", "content": "b"},
                                                   {"role": "user", "content": "c"},
                                                   {"role": "assistant", "content": "d"}]})
    return candidate_pool(curated, unfiltered)


def test_pool_dedupes_keeps_single_turn_and_marks_origin():
    pool = _pool()
    assert len(pool) == 16
    assert [r["meta"]["pool_origin"] for r in pool].count("curated") == 6
    assert "multi" not in {r["id"] for r in pool}


def test_conditions_equal_size_from_one_pool():
    pool = _pool()
    sets = build_conditions(pool, 4, seed=1)
    ids = {r["id"] for r in pool}
    assert set(sets) == {"lima", "longest", "diversity", "random"}
    for rows in sets.values():
        assert len(rows) == 4 and len({r["id"] for r in rows}) == 4 and {r["id"] for r in rows} <= ids
    assert {r["id"] for r in sets["lima"]} <= {f"c{i}" for i in range(6)}
    assert [r["id"] for r in sets["longest"]] == ["u9", "u8", "u7", "u6"]
    assert build_conditions(pool, 4, seed=1) == sets                                  # seeded
    with pytest.raises(Exception, match="lima"):
        build_conditions(pool, 7, seed=1)                                             # only 6 curated rows


def test_outcome_and_win_table_exact():
    assert outcome("lima", "lima", "longest") == "win" and outcome("tie", "lima", "x") == "tie"
    assert outcome(None, "lima", "x") is None
    assert outcome("a", "lima", "longest") == "win" and outcome("b", "lima", "longest") == "loss"   # judge_pairwise form
    with pytest.raises(ValueError):
        outcome("other", "lima", "longest")
    verdicts = ["lima", "lima", "tie", "longest", None]
    judged = {"longest": [{"prompt_id": f"p{i}", "system_a": "lima", "system_b": "longest", "verdict": v,
                           "len_a": 10 + i, "len_b": 30} for i, v in enumerate(verdicts)]}
    sets = {"lima": [_row(0, "c", 2)], "longest": [_row(1, "u", 5)]}
    [row] = win_table(judged, sets, n_boot=50)
    assert (row["wins"], row["ties"], row["losses"], row["unparsed"], row["n_prompts"]) == (2, 1, 1, 1, 4)
    assert row["win_rate"] == 62.5
    assert row["ci_low"] < 62.5 < row["ci_high"]
    assert row["mean_len_lima"] == 12.0 and row["mean_len_opponent"] == 30.0
    assert "not distinguishable" in findings([row])
