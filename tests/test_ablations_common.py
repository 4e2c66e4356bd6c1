"""The ablation recipe, prompt subsets, the mean/CI summary and the contract CSV writer."""

from __future__ import annotations

import csv
import json

import pytest
from ablation_fakes import FakeStages, make_cfg

from lima.ablations.common import (
    ablation_config,
    ablation_profile,
    ablation_prompts,
    draw_pool,
    summarise,
)
from lima.analysis import mean_ci
from lima.config import load_profile, section
from lima.io import manifest_path, write_csv


def test_paper_ablation_recipe_is_the_smaller_model_recipe():
    cfg = load_profile("paper")
    recipe = ablation_profile(cfg)
    assert recipe["model"]["base"] == "huggyllama/llama-7b"
    assert (recipe["train"]["residual_dropout"], recipe["train"]["batch_size"]) == (0.2, 64)
    assert recipe["train"]["epochs"] == 15                        # ablations.epochs: null keeps the recipe's
    assert recipe["generate"]["max_new_tokens"] == 2048
    assert (recipe["train"]["select"], recipe["train"]["save_epochs"]) == ("last", [])
    assert cfg["model"]["base"] == "huggyllama/llama-65b"         # the input profile is untouched
    assert cfg["train"]["residual_dropout"] == 0.3
    acfg = ablation_config(cfg)
    assert (acfg.examples_per_condition, acfg.samples_per_prompt) == (2000, 5)
    assert acfg.quantity_sizes == [2000, 4000, 8000, 16000, 32000]


def test_smoke_ablation_recipe_is_a_valid_train_section():
    from lima.train import TrainConfig

    recipe = ablation_profile(load_profile("smoke"))
    tcfg = section(recipe, "train", TrainConfig)
    assert (tcfg.epochs, tcfg.select, tcfg.save_optimizer) == (2, "last", False)
    assert recipe["generate"]["max_new_tokens"] == 48


def test_prompt_subset_is_seeded_and_keeps_file_order(tmp_path):
    cfg = make_cfg(tmp_path, n_test=10, max_test_prompts=4)
    first = [r["id"] for r in ablation_prompts(cfg)]
    assert len(first) == 4 and first == sorted(first, key=lambda x: int(x[1:]))
    assert first == [r["id"] for r in ablation_prompts(cfg)]
    other = make_cfg(tmp_path, n_test=10, max_test_prompts=4, seed=7)
    assert [r["id"] for r in ablation_prompts(other)] != first
    everything = make_cfg(tmp_path, n_test=10, max_test_prompts=None)
    assert len(ablation_prompts(everything)) == 10


def test_summary_counts_unparsed_grades_and_uses_the_t_interval():
    grades = [(f"p{i}", g) for i, g in enumerate([1, 2, None, 3, float("nan")])]   # one sample per prompt
    out = summarise(grades, 0.95, lambda v, ci: mean_ci(v, ci=ci))
    assert out["n"] == 3 and out["unparsed"] == 2 and out["n_prompts"] == 3
    assert out["mean"] == 2.0
    assert out["ci_low"] == pytest.approx(-0.48413771175033027) and out["ci_high"] == pytest.approx(4.48413771175033)
    empty = summarise([("p0", None)], 0.95, lambda v, ci: mean_ci(v, ci=ci))
    assert empty["n"] == 0 and empty["unparsed"] == 1


def test_correlated_samples_of_a_prompt_widen_the_interval():
    """Issue 10: 3 prompts × 5 identical samples are 3 independent values, not 15.

    Prompt means 2, 3, 4: mean 3, sd 1, t(0.975, 2) = 4.302653 → half-width 4.302653/√3 = 2.484138.
    Treating the 15 grades as independent (sd √(10/14), t(0.975, 14) = 2.144787, /√15) gives 0.468 — √5
    times too narrow and more.
    """
    grades = [(pid, g) for pid, g in (("a", 2.0), ("b", 3.0), ("c", 4.0)) for _ in range(5)]
    out = summarise(grades, 0.95, lambda v, ci: mean_ci(v, ci=ci))
    assert (out["n"], out["n_prompts"], out["mean"]) == (15, 3, 3.0)
    assert out["ci_high"] - out["mean"] == pytest.approx(2.484138, abs=1e-6)
    naive = mean_ci([g for _, g in grades])
    assert naive[2] - naive[0] == pytest.approx(2.144787 * (10 / 14) ** 0.5 / 15 ** 0.5, abs=1e-5)
    assert out["ci_high"] - out["mean"] > 5 * (naive[2] - naive[0])
    # independent samples (no prompt effect) are not widened: one sample per prompt is the plain t interval
    flat = summarise([(f"q{i}", g) for i, (_, g) in enumerate(grades)], 0.95, lambda v, ci: mean_ci(v, ci=ci))
    assert (flat["ci_low"], flat["ci_high"]) == pytest.approx((naive[1], naive[2]))


def test_train_generate_grade_intervals_are_over_prompts(tmp_path):
    """The chain's summary (Figs. 5/6) puts its interval on prompt means: identical samples add no width."""
    from lima.ablations.common import train_generate_grade

    cfg = make_cfg(tmp_path, n_test=3, samples_per_prompt=4, max_test_prompts=None)
    # grades cycle 2,2,2,2 | 3,3,3,3 | 4,4,4,4 → prompt means 2, 3, 4
    fakes = FakeStages(scores={"ablation_x": [2.0] * 4 + [3.0] * 4 + [4.0] * 4})
    prompts = ablation_prompts(cfg)
    out = train_generate_grade(cfg, "x", [{"id": "r", "messages": []}], prompts, fakes.stages())
    assert (out["n"], out["n_prompts"], out["mean"]) == (12, 3, 3.0)
    assert out["ci_high"] == pytest.approx(3 + 4.302653 / 3 ** 0.5, abs=1e-6)


def test_short_pool_error_names_the_ablation_and_the_pool_size(tmp_path):
    cfg = make_cfg(tmp_path)
    fakes = FakeStages(available={"wikihow": 7})
    with pytest.raises(ValueError, match=r"diversity: cannot draw 8 'wikihow' examples: only 7 wikihow"):
        draw_pool(cfg, "wikihow", 8, fakes.stages(), "diversity")
    assert len(draw_pool(cfg, "wikihow", 7, fakes.stages(), "diversity")) == 7
    assert fakes.calls["pool"][-1] == ("wikihow", 7, 1234)         # the smoke profile's seed


def test_contract_csv_has_the_columns_first_and_a_manifest(tmp_path):
    path = write_csv(tmp_path / "t.csv", [{"extra": 1, "b": 2.5, "a": "x"}, {"a": "y", "b": float("nan")}],
                     ["a", "b"], config={"k": 1})
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["a", "b", "extra"], ["x", "2.5", "1"], ["y", "", ""]]
    assert json.loads(manifest_path(path).read_text())["config"] == {"k": 1}
