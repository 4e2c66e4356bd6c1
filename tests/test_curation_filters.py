"""Every Stack Exchange filter with exact counts, the title heuristic, and the HTML → Markdown conversion."""

from __future__ import annotations

import pytest
from curation_fixtures import filter_rows

from lima.config import load_profile
from lima.curation import curation_config
from lima.curation.filters import (
    filter_stackexchange,
    has_first_person,
    refers_to_other_answers,
    title_self_contained,
)
from lima.curation.markdown import html_to_markdown, language_from_tags
from lima.curation.sites import SiteGrouper, load_site_groups, normalise_site


@pytest.fixture(scope="module")
def ccfg():
    return curation_config(load_profile("test_smoke"))


def test_funnel_counts_per_filter(ccfg):
    groups, report = filter_stackexchange(filter_rows(), ccfg, SiteGrouper())
    rep = report.as_dict()
    coffee = rep["sites"]["coffee"]
    assert coffee["candidates"] == 11
    assert coffee["removed"] == {"discarded_site": 0, "missing_answer": 1, "score": 1, "length": 2,
                                 "first_person": 2, "references": 1, "title": 1}
    assert coffee["kept"] == 3
    assert rep["sites"]["ru.stackoverflow.com"]["removed"]["discarded_site"] == 1
    assert rep["totals"]["kept"] == 3 and rep["totals"]["candidates"] == 12
    # best first: equal scores, so the id breaks the tie (descending)
    assert [c.id for c in groups["other"]["coffee"]] == ["se:coffee:11", "se:coffee:10", "se:coffee:1"]
    # "alone": among the 9 rows that reached conversion, how many fail each filter on its own
    assert rep["alone_after_score"] == {"rows": 9, "fail": {"length": 2, "first_person": 2, "references": 1,
                                                            "title": 1}}


def test_filters_are_parameters(ccfg):
    loose = curation_config(load_profile("test_smoke", {
        "curation.min_answer_score": None, "curation.min_answer_chars": None, "curation.max_answer_chars": None,
        "curation.drop_first_person": False, "curation.drop_references_to_other_answers": False,
        "curation.require_self_contained_title": False}))
    _, report = filter_stackexchange(filter_rows(), loose, SiteGrouper())
    assert report.as_dict()["sites"]["coffee"]["kept"] == 10  # only the missing answer goes
    stricter = curation_config(load_profile("test_smoke", {"curation.min_answer_score": 21}))
    _, report = filter_stackexchange(filter_rows(), stricter, SiteGrouper())
    assert report.as_dict()["sites"]["coffee"]["removed"]["score"] == 11 - 1


def test_first_person_and_references():
    assert has_first_person("So I tried it.")
    assert has_first_person("My guess is no.")
    assert not has_first_person("Disk I/O and an I-beam; `i = my_var` and $I$ are fine.")
    assert not has_first_person("```\nI = 3\nmy = 4\n```\nNothing personal.")
    assert has_first_person("We think so.", words=["we"])
    phrases = ["as mentioned", "stack exchange", "other answer"]
    assert refers_to_other_answers("As   mentioned, it works.", phrases)
    assert refers_to_other_answers("See the Other Answer.", phrases)
    assert not refers_to_other_answers("Another answerable question.", phrases)


@pytest.mark.parametrize(("title", "ok"), [
    ("How should whole bean coffee be stored?", True),
    ("Does the hardness of water matter when making coffee", True),
    ("Explain the difference between latte and flat white", True),
    ("Why does this happen?", False),
    ("Is that right?", False),
    ("Help?", False),
    ("Coffee storage", False),
    ("What is " + "very " * 30 + "long?", False),
])
def test_title_self_contained(title, ok, ccfg):
    assert title_self_contained(title, ccfg.title_min_words, ccfg.title_max_words, ccfg.title_deictic_words,
                                ccfg.title_require_question_form, ccfg.imperative_verbs) is ok


def test_markdown_keeps_code_language_lists_and_drops_links_images():
    html = ("<p>Read <a href='https://e.com'>the manual</a> or <a href='https://e.com'>https://e.com</a>"
            "<img src='x.png' alt='enter image description here'> for $a_1 * b$.</p>"
            "<ul><li>one</li><li>two</li></ul><ol><li>first</li></ol><blockquote><p>quote</p></blockquote>"
            "<pre class='lang-py prettyprint-override'><code>x = [i for i in y]\n</code></pre>"
            "<!-- language: lang-js --><pre><code>var a = 1;</code></pre>"
            "<pre><code>plain()</code></pre>")
    md = html_to_markdown(html, default_language=language_from_tags(["rust", "cargo"]))
    assert md == ("Read the manual or for $a_1 * b$.\n\n- one\n- two\n\n1. first\n\n> quote\n\n"
                  "```python\nx = [i for i in y]\n```\n\n```javascript\nvar a = 1;\n```\n\n```rust\nplain()\n```")
    assert "http" not in md and "png" not in md and "image" not in md
    assert language_from_tags(["python", "java"]) is None


def test_site_groups_cover_the_network():
    groups = load_site_groups()
    assert len(groups) >= 170
    assert groups["stackoverflow.com"] == "stem" and groups["cooking.stackexchange.com"] == "other"
    assert normalise_site("math") == "math.stackexchange.com"
    assert normalise_site("https://superuser.com/questions/1") == "superuser.com"
    grouper = SiteGrouper()
    assert grouper.group("meta.math.stackexchange.com") == "discarded"
    assert grouper.group("brandnew") == "other" and grouper.unknown_sites == {"brandnew.stackexchange.com"}
    with pytest.raises(ValueError, match="not in the site-group mapping"):
        SiteGrouper(unknown="error").group("brandnew")
