"""Known-answer tests for every statistic in lima.analysis (hand-computed small cases)."""

from __future__ import annotations

import math

import pytest
from sklearn.metrics import cohen_kappa_score

from lima.analysis import (
    agreement_table,
    bradley_terry,
    bradley_terry_table,
    cohen_kappa,
    length_controlled_win_rate,
    mean_ci,
    plain_agreement,
    preference_table,
    tie_discounted_accuracy,
    win_tie_loss,
)
from lima.analysis.preference import canonical

A = ["s1", "s1", "tie", "s2", "tie"]
B = ["s1", "s2", "s1", "tie", "tie"]


def test_tie_discounted_accuracy_hand_computed() -> None:
    # items: agree (1), opposite (0), one tie (.5), one tie (.5), both tie (1) -> 3 / 5
    assert tie_discounted_accuracy(A, B) == pytest.approx(0.6)
    assert tie_discounted_accuracy(["s1"], ["s2"]) == 0.0
    assert tie_discounted_accuracy(["tie"], ["s2"]) == 0.5


def test_plain_agreement_with_and_without_ties() -> None:
    assert plain_agreement(A, B) == pytest.approx(0.4)
    assert plain_agreement(A, B, ties=False) == pytest.approx(0.5)     # items 0 and 1 only
    assert math.isnan(plain_agreement(["tie"], ["s1"], ties=False))


def test_cohen_kappa_hand_computed_and_matches_sklearn() -> None:
    # p_o = .4; p_e = .4*.4 + .2*.2 + .4*.4 = .36; kappa = .04 / .64
    assert cohen_kappa(A, B) == pytest.approx(0.0625)
    assert cohen_kappa(A, B) == pytest.approx(cohen_kappa_score(A, B))
    assert cohen_kappa(["s1", "s2"], ["s1", "s2"]) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa(["s1", "s1"], ["s1", "s1"]))
    with pytest.raises(ValueError):
        cohen_kappa(["s1"], [])


def test_agreement_table_uses_shared_items_and_canonical_orientation() -> None:
    rows = [
        # the human saw lima as system_a, the LLM saw it as system_b: same item, same preference
        {"annotator": "ann1", "prompt_id": "p1", "system_a": "lima", "system_b": "gpt4", "choice": "a"},
        {"annotator": "llm:judge", "prompt_id": "p1", "system_a": "gpt4", "system_b": "lima", "choice": "b"},
        {"annotator": "ann1", "prompt_id": "p2", "system_a": "lima", "system_b": "gpt4", "choice": "tie"},
        {"annotator": "llm:judge", "prompt_id": "p2", "system_a": "lima", "system_b": "gpt4", "choice": "b"},
        {"annotator": "ann1", "prompt_id": "p3", "system_a": "lima", "system_b": "gpt4", "choice": "a"},  # unshared
        {"annotator": "ann2", "prompt_id": "p1", "system_a": "lima", "system_b": "gpt4", "choice": "b"},
    ]
    table = {(r["annotator_1"], r["annotator_2"]): r for r in agreement_table(rows)}
    human_llm = table[("ann1", "llm:judge")]
    assert human_llm["kind"] == "human-llm" and human_llm["n"] == 2
    assert human_llm["tie_discounted_accuracy"] == pytest.approx(0.75)
    assert human_llm["agreement"] == pytest.approx(0.5)
    assert human_llm["agreement_no_ties"] == pytest.approx(1.0) and human_llm["n_no_ties"] == 1
    human_human = table[("ann1", "ann2")]
    assert human_human["kind"] == "human-human" and human_human["n"] == 1
    assert human_human["tie_discounted_accuracy"] == 0.0
    assert canonical("p", "b", "a", "a") == (("p", "a", "b"), "b")


def test_mean_ci_two_sided_t() -> None:
    mean, low, high = mean_ci([1, 2, 3, 4, 5])
    half = 2.7764451051977987 * math.sqrt(2.5 / 5)            # t_{.975, 4} * s / sqrt(n)
    assert (mean, low, high) == pytest.approx((3.0, 3 - half, 3 + half))
    assert mean_ci([2.0]) == (2.0, 2.0, 2.0)
    assert all(math.isnan(v) for v in mean_ci([]))


def test_wilson_ci_hand_computed_stays_in_unit_interval_and_keeps_width() -> None:
    from lima.analysis.stats import prompt_mean_ci, wilson_ci

    # 2 of 10: centre (0.2 + 1.96²/20)/(1 + 1.96²/10), half-width from the Wilson formula
    mean, low, high = wilson_ci([1, 1] + [0] * 8)
    assert mean == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0567, 0.5098)
    # all zero: a t interval would be [0, 0]; Wilson keeps a width and stays inside [0, 1]
    _, low0, high0 = wilson_ci([0.0] * 20)
    assert low0 == 0.0 and round(high0, 4) == 0.1611
    _, low1, high1 = wilson_ci([1.0] * 20)
    assert round(low1, 4) == 0.8389 and high1 == 1.0
    with pytest.raises(ValueError, match="shares"):
        wilson_ci([0.5, 3.0])
    # over prompts: two samples of one prompt average first (n = 2 prompts, not 4 values)
    ci = prompt_mean_ci([("p", 1.0), ("p", 0.0), ("q", 1.0), ("q", 1.0)], interval=wilson_ci)
    assert ci["n_prompts"] == 2 and ci["mean"] == pytest.approx(0.75)


def test_win_tie_loss_point_ci_and_fixed_seed() -> None:
    outcomes = [("p1", "win"), ("p2", "win"), ("p3", "tie"), ("p4", "loss"), ("p5", "win"), ("p6", "loss")]
    stats = win_tie_loss(outcomes, n_boot=2000, seed=7)
    assert (stats["win"], stats["tie"], stats["loss"]) == pytest.approx((50.0, 100 / 6, 100 / 3))
    for name in ("win", "tie", "loss"):
        assert stats[f"{name}_low"] <= stats[name] <= stats[f"{name}_high"]
    again = win_tie_loss(outcomes, n_boot=2000, seed=7)
    assert again == stats                                    # fixed seed -> identical intervals
    # exact values for this seed (resampling 6 prompts: shares move in steps of 1/6)
    assert stats["win_low"] == pytest.approx(100 / 6) and stats["win_high"] == pytest.approx(100 * 5 / 6)
    assert stats["n"] == 6 and stats["n_prompts"] == 6
    unanimous = win_tie_loss([("p1", "win"), ("p2", "win")], n_boot=100)
    assert (unanimous["win_low"], unanimous["win_high"]) == (100.0, 100.0)


def test_win_tie_loss_resamples_prompts_not_judgments() -> None:
    # one prompt with 3 judgments: a prompt-level bootstrap can only draw that prompt -> zero-width CI
    stats = win_tie_loss([("p1", "win"), ("p1", "win"), ("p1", "loss")], n_boot=200)
    assert stats["win_low"] == stats["win_high"] == pytest.approx(200 / 3)


def test_preference_table_orients_on_the_focal_system() -> None:
    labels = [
        {"prompt_id": "p1", "system_a": "lima", "system_b": "alpaca", "choice": "a"},
        {"prompt_id": "p2", "system_a": "alpaca", "system_b": "lima", "choice": "a"},
        {"prompt_id": "p3", "system_a": "lima", "system_b": "alpaca", "choice": "tie"},
        {"prompt_id": "p4", "system_a": "lima", "system_b": "alpaca", "choice": None},     # unparsed: skipped
        {"prompt_id": "p1", "system_a": "lima", "system_b": "gpt4", "choice": "b"},
    ]
    rows = {r["baseline"]: r for r in preference_table(labels, "lima", n_boot=200)}
    assert rows["alpaca"]["n"] == 3
    assert (rows["alpaca"]["win"], rows["alpaca"]["tie"], rows["alpaca"]["loss"]) == pytest.approx(
        (100 / 3, 100 / 3, 100 / 3))
    assert rows["gpt4"]["loss"] == 100.0


def test_length_controlled_symmetric_case_is_fifty_percent() -> None:
    outcomes = ["win", "loss", "win", "loss", "tie", "tie"]
    lc = length_controlled_win_rate(outcomes, [300, 100, 100, 300, 200, 250], [100, 300, 300, 100, 250, 200])
    assert lc["lc_win_rate"] == pytest.approx(50.0, abs=1e-6)
    assert lc["win_rate"] == pytest.approx(50.0)


def test_length_controlled_equal_lengths_is_the_raw_rate() -> None:
    lc = length_controlled_win_rate(["win", "win", "win", "loss"], [5] * 4, [5] * 4)
    assert lc["lc_win_rate"] == pytest.approx(75.0, abs=0.05)   # logit(.75) = ln 3, ridge negligible


def test_length_controlled_removes_a_length_advantage() -> None:
    # longer answers win, shorter ones lose, and our system is usually the longer one
    diffs = [400, 300, 200, 100, 350, 250, -200, -300]
    outcomes = ["win", "win", "win", "loss", "win", "win", "loss", "loss"]
    lc = length_controlled_win_rate(outcomes, [1000 + d for d in diffs], [1000] * 8)
    assert lc["win_rate"] == pytest.approx(62.5)
    assert lc["lc_win_rate"] < lc["win_rate"] and lc["length_coef"] > 0


def test_bradley_terry_two_system_closed_form() -> None:
    ratings = bradley_terry([("x", "y", 1.0)] * 3 + [("x", "y", 0.0)])
    assert ratings["x"] - ratings["y"] == pytest.approx(400 * math.log10(3), abs=1e-6)
    assert ratings["x"] + ratings["y"] == pytest.approx(2000)
    # a tie is half a win for each side: W_x = 2.5, W_y = 1.5
    ratings = bradley_terry([("x", "y", 1.0), ("y", "x", 0.0), ("x", "y", 0.5), ("x", "y", 0.0)])
    assert ratings["x"] - ratings["y"] == pytest.approx(400 * math.log10(2.5 / 1.5), abs=1e-6)


def test_bradley_terry_ordering_and_table() -> None:
    comps = ([("a", "b", 1.0)] * 3 + [("a", "b", 0.0)] + [("b", "c", 1.0)] * 3 + [("b", "c", 0.0)]
             + [("a", "c", 1.0)] * 3 + [("a", "c", 0.5)])
    ratings = bradley_terry(comps)
    assert ratings["a"] > ratings["b"] > ratings["c"]
    items = [(f"p{i}", c) for i, c in enumerate(comps)]
    table = bradley_terry_table(items, prior=0.5, n_boot=200, seed=1)
    assert [r["system"] for r in table] == ["a", "b", "c"]
    assert {r["system"]: r["n_comparisons"] for r in table} == {"a": 8, "b": 8, "c": 8}
    for r in table:
        assert r["ci_low"] <= r["rating"] <= r["ci_high"]
    with pytest.raises(ValueError):
        bradley_terry([("a", "a", 1.0)])


def _glm_cells() -> tuple[list[str], list[int], list[int], list[float]]:
    """Four cells whose win rates are exactly additive in logit: θ = ln 2, φ·tanh(·) = ±ln 2, ψ·γ = ±ln 3.

    (longer, γ=+1): σ(ln 12) = 12/13 → 12 of 13 wins; (longer, γ=−1): σ(ln 4/3) = 4/7 → 4 of 7;
    (shorter, γ=+1): σ(ln 3) = 3/4 → 3 of 4; (shorter, γ=−1): σ(ln 1/3) = 1/4 → 1 of 4.
    The MLE reproduces every cell exactly, so θ, ψ are known and LC = mean_x σ(θ + ψ γ_x)
    = (17 · σ(ln 6) + 11 · σ(ln 2/3)) / 28 = (17 · 6/7 + 11 · 2/5) / 28.
    """
    outcomes, system, baseline, gamma = [], [], [], []
    for sign, g, n, wins in ((+1, 1.0, 13, 12), (+1, -1.0, 7, 4), (-1, 1.0, 4, 3), (-1, -1.0, 4, 1)):
        for i in range(n):
            outcomes.append("win" if i < wins else "loss")
            system.append(1000 + 100 * sign)
            baseline.append(1000)
            gamma.append(g)
    return outcomes, system, baseline, gamma


def test_length_controlled_glm_with_difficulty_hand_computed() -> None:
    outcomes, system, baseline, gamma = _glm_cells()
    lc = length_controlled_win_rate(outcomes, system, baseline, difficulty=gamma, ridge=0.0)
    assert lc["win_rate"] == pytest.approx(100 * 20 / 28)
    assert lc["intercept"] == pytest.approx(math.log(2), abs=1e-9)
    assert lc["difficulty_coef"] == pytest.approx(math.log(3), abs=1e-9)
    # Δlen = ±100 with 20 longer and 8 shorter: σ_len (ddof 1) = 200·√(20·8/(28·27)) ; φ·tanh(100/σ) = ln 2
    sd = 200 * math.sqrt(20 * 8 / (28 * 27))
    assert lc["length_coef"] * math.tanh(100 / sd) == pytest.approx(math.log(2), abs=1e-9)
    assert lc["lc_win_rate"] == pytest.approx(100 * (17 * 6 / 7 + 11 * 2 / 5) / 28, abs=1e-9)   # 67.755…
    # without the difficulty term the same data give a different (length-only) answer
    assert length_controlled_win_rate(outcomes, system, baseline, ridge=0.0)["lc_win_rate"] != pytest.approx(
        lc["lc_win_rate"], abs=0.5)


def test_length_controlled_bootstrap_resamples_instructions() -> None:
    outcomes, system, baseline, gamma = _glm_cells()
    lc = length_controlled_win_rate(outcomes, system, baseline, difficulty=gamma, n_boot=300, seed=3)
    assert lc["lc_low"] < lc["lc_win_rate"] < lc["lc_high"]
    assert lc == length_controlled_win_rate(outcomes, system, baseline, difficulty=gamma, n_boot=300, seed=3)
    # every item on one instruction: a resample can only draw that instruction → a zero-width interval
    one = length_controlled_win_rate(outcomes, system, baseline, difficulty=gamma, prompt_ids=["p"] * 28,
                                     n_boot=50)
    assert one["n_prompts"] == 1
    assert one["lc_low"] == pytest.approx(one["lc_win_rate"], abs=1e-6) == pytest.approx(one["lc_high"], abs=1e-6)


def test_length_controlled_table_difficulty_leaves_the_fitted_pair_out() -> None:
    from lima.analysis.length_control import leave_one_out_difficulty, length_controlled_table

    items = [{"baseline": b, "prompt_id": p, "outcome": o, "len_system": 10, "len_baseline": 10}
             for b, p, o in (("x", "p1", "win"), ("x", "p2", "loss"), ("y", "p1", "win"), ("y", "p2", "win"),
                             ("z", "p1", "tie"), ("z", "p2", "loss"))]
    # row x: from y (mean 1: deviations 0, 0) and z (mean .25: +.25, −.25) → γ_p1 = −.125, γ_p2 = +.125
    assert leave_one_out_difficulty(items, "x") == pytest.approx({"p1": -0.125, "p2": 0.125})
    table = {r["baseline"]: r for r in length_controlled_table(items, n_boot=20)}
    assert set(table) == {"x", "y", "z"} and table["x"]["n_prompts"] == 2
    assert all(r["lc_low"] <= r["lc_win_rate"] <= r["lc_high"] for r in table.values())
