"""Strict parsing of judge replies (text and logprob modes) and template rendering."""

from __future__ import annotations

import math

import pytest

from lima.judge.parse import parse_logprobs, parse_text
from lima.judge.prompts import load_template


@pytest.mark.parametrize(("text", "label"), [
    ("Response A answers fully.\nVerdict: A", "A"),
    ("reasons...\n**Verdict:** B", "B"),
    ("Verdict: neither", "neither"),
    ("Verdict: Neither.", "neither"),
    ("Final verdict: tie", "neither"),
    ("B", "B"),
    ("  A.  ", "A"),
    ("**A**", "A"),
    ("Verdict: A\nVerdict: A", "A"),
])
def test_pairwise_text_parses(text: str, label: str) -> None:
    parsed = parse_text("pairwise", text)
    assert (parsed.label, parsed.error) == (label, None)


@pytest.mark.parametrize("text", [
    "", "   ", None,
    "I think A is better overall.",             # label hidden in prose
    "Verdict: A\nVerdict: B",                     # conflicting
    "Verdict: C",                                 # unknown label
    "Verdict: A or B",
    "Both are fine",
    "\x00\xff garbage ###",
    "Verdict:\nA",                                # label not on the verdict line
])
def test_pairwise_text_garbage_is_unparsed_with_reason(text: str | None) -> None:
    parsed = parse_text("pairwise", text)
    assert parsed.label is None
    assert parsed.error


@pytest.mark.parametrize(("text", "label"), [
    ("Fine answer.\nRating: Pass", "pass"), ("Rating: EXCELLENT", "excellent"), ("Fail", "fail"),
])
def test_absolute_text(text: str, label: str) -> None:
    assert parse_text("absolute", text).label == label


@pytest.mark.parametrize(("text", "label"), [
    ("Clear and complete.\nScore: 5", "5"), ("Score: 6/6", "6"), ("Score: 3 out of 6", "3"), ("4", "4"),
    ("Score: 7", None), ("Score: 4.5", None), ("Score: 0", None), ("Score: 2\nScore: 5", None),
    ("It deserves a 5", None),
])
def test_helpfulness_text(text: str, label: str | None) -> None:
    assert parse_text("helpfulness", text).label == label


def test_logprobs_sum_mass_over_label_tokens() -> None:
    top = [{"A": math.log(0.3), " A": math.log(0.1), "B": math.log(0.35), "x": math.log(0.25)}]
    parsed = parse_logprobs("pairwise", top, "B")
    assert parsed.label == "A" and parsed.source == "logprobs"
    assert parsed.probs["A"] == pytest.approx(0.4)
    assert parsed.probs["B"] == pytest.approx(0.35)


def test_logprobs_skip_leading_whitespace_and_prefix_tokens() -> None:
    top = [{" ": -0.1, "A": -3.0}, {"Exc": -0.2, "Pa": -1.9}]
    parsed = parse_logprobs("absolute", top, " Excellent")
    assert parsed.label == "excellent"


def test_logprobs_without_labels_is_unparsed() -> None:
    parsed = parse_logprobs("pairwise", [{"the": -0.1, "hello": -1.0}], "the")
    assert parsed.label is None and "no label" in parsed.error


def test_logprobs_missing_falls_back_to_strict_text() -> None:
    assert parse_logprobs("helpfulness", None, "5").label == "5"
    assert parse_logprobs("helpfulness", None, "five stars").label is None


def test_logprobs_equal_mass_is_unparsed() -> None:
    parsed = parse_logprobs("pairwise", [{"A": -0.5, "B": -0.5}], "A")
    assert parsed.label is None


def test_template_renders_literally_and_versions() -> None:
    t = load_template("pairwise")
    text = t.render("text", prompt="P {x}", response_a="uses {response_b} literally", response_b="second")
    assert "uses {response_b} literally" in text and "second" in text and "Verdict: neither" in text
    assert "super-intelligent assistant" in text
    assert t.version == "pairwise-v1"
    assert t.sha("text") != t.sha("logprobs")
    with pytest.raises(ValueError, match="no value"):
        t.render("text", prompt="p")
    for protocol in ("absolute", "helpfulness"):
        assert load_template(protocol).render("logprobs", prompt="q", response="r")
