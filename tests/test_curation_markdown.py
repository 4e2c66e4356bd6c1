"""HTML → Markdown cases from real posts (strikethrough, <br>, inline-code spacing, code holding backticks), the
prompt-aware title heuristic, and "I" that names the letter or a numeral rather than the author."""

from __future__ import annotations

import pytest
from curation_fixtures import se_row

from lima.config import load_profile
from lima.curation import curation_config
from lima.curation.filters import filter_stackexchange, has_first_person, strip_code_and_math, title_is_prompt
from lima.curation.markdown import html_to_markdown, split_code
from lima.curation.sampling import choose_prompt_field
from lima.curation.sites import SiteGrouper


@pytest.mark.parametrize(("html", "markdown"), [
    ("<p>It is <del>500</del> <s>450</s> <strike>400</strike> 350 ml.</p>", "It is ~~500~~ ~~450~~ ~~400~~ 350 ml."),
    ("<p>Roses are red<br>violets are blue<br/>done</p>", "Roses are red\\\nviolets are blue\\\ndone"),
    ("<p>Write <code>x  =  1</code> with two spaces, or <code>a\nb</code>.</p>",
     "Write `x  =  1` with two spaces, or `a b`."),
    ("<p>Type <code>``</code> then <code>a`b</code>.</p>", "Type ``` `` ``` then `` a`b ``."),
    ("<p>In Markdown:</p><pre><code>```python\nprint(1)\n```\n</code></pre><p>Done  now.</p>",
     "In Markdown:\n\n````\n```python\nprint(1)\n```\n````\n\nDone now."),
])
def test_markdown_cases(html, markdown):
    assert html_to_markdown(html) == markdown


def test_split_code_keeps_a_block_with_inner_fences_whole():
    md = "Say `I  am`.\n\n````\n```\nI = 1\n```\n````\n\nAnd I."
    pieces = split_code(md)
    assert [p for p, code in pieces if code] == ["`I  am`", "````\n```\nI = 1\n```\n````\n"]
    assert "I = 1" not in strip_code_and_math(md) and strip_code_and_math(md).endswith("And I.")


@pytest.mark.parametrize(("text", "first_person"), [
    ("Words with the letter I are common.", False),
    ('Replace the "I" with a lower-case one.', False),
    ("Before World War I, coffee was rationed; a Type I error follows.", False),
    ("Parts I and II disagree.", False),
    ("Henry I liked tea.", False),
    ("The letter I is fine, but I prefer tea.", True),
    ('He said "I am done" and left.', True),
    ("I think so.", True),
])
def test_letter_i_is_not_first_person(text, first_person):
    assert has_first_person(text) is first_person


def _ccfg(prompt_from):
    return curation_config(load_profile("test_smoke", {"curation.prompt_from": prompt_from}))


def test_title_heuristic_only_where_the_title_is_the_prompt():
    bad = [se_row("coffee", i, title="Why does this happen?") for i in range(1, 9)]
    kept = lambda ccfg, seed=None: sum(  # noqa: E731
        len(c) for g in filter_stackexchange(bad, ccfg, SiteGrouper(), seed=seed)[0].values() for c in g.values())
    assert kept(_ccfg("title")) == 0
    assert kept(_ccfg("body")) == 8   # the title never reaches the model
    body_ids = [r["id"] for r in bad if choose_prompt_field("random", 7, r["id"]) == "body"]
    assert 0 < len(body_ids) < 8
    assert kept(_ccfg("random"), seed=7) == len(body_ids)
    assert kept(_ccfg("random")) == 0   # no seed: every title is checked, as before
    empty_body = {**bad[0], "question_html": "<p> </p>"}   # se_row falls back to the title
    assert title_is_prompt(empty_body, "body", 7) and not title_is_prompt(bad[0], "body", 7)
