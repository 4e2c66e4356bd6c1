"""Issue 13 in real headless Chromium: guidelines first, a multi-turn item, the absolute and per-turn tasks, a
flag with a comment, and the phone layout (390 px) where the choice panel must not cover Response B.
"""

from __future__ import annotations

import pytest
from annotate_server import Server, make_store, write_rows
from test_annotate_browser import browser, labels_of, open_page, shot  # noqa: F401  (browser: a fixture)

from lima.annotate import db
from lima.annotate.loading import conversation_items, insert_items, make_pairs, single_items

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHAT = [{"role": "user", "content": "Plan a day in Rome."}, {"role": "assistant", "content": "Start at the **Colosseum**."},
        {"role": "user", "content": "Cheaper, please."}]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Pairs (one of them multi-turn), absolute items and a per-turn conversation, all shared."""
    folder = tmp_path_factory.mktemp("annotate_tasks")
    path, tokens = make_store(folder, n_items=3, overlap=3, annotators=["g", "t", "f", "phone"], admins=("boss",))
    pair = [write_rows(folder / f"mt_{s}.jsonl", [{"system": s, "prompt_id": "mt", "prompt": CHAT,
                                                   "response": f"{s}: take the bus and bring a picnic."}])
            for s in ("lima", "alpaca")]
    convo = write_rows(folder / "conv.jsonl", [{"id": "c1", "system": "lima", "messages": [
        {"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "A haiku on rain."}, {"role": "assistant", "content": "Soft rain on the roof"}]}])
    conn = db.connect(path)
    insert_items(conn, make_pairs(*pair) + single_items(folder / "lima.jsonl") + conversation_items(convo),
                 overlap=99, seed=1)
    ids = {(r["task"], r["prompt_id"]): r["id"] for r in conn.execute("SELECT id, task, prompt_id FROM items")}
    conn.close()
    server = Server(path).start()
    yield server, tokens, ids
    server.stop()


def test_guidelines_shown_first_and_linked_from_every_item(browser, study) -> None:  # noqa: F811
    server, tokens, _ = study
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{server.base_url}/start?token={tokens['g']}")
    assert page.url.endswith("/guidelines")
    text = page.text_content("#guidelines")
    assert "Which answer best satisfies your needs?" in text and "Excellent" in text and "Flag" in text
    with page.expect_navigation():
        page.click("#guidelines-start")
    assert "/item/" in page.url
    with page.expect_navigation():
        page.click("#guidelines-link")
    assert page.url.endswith("/guidelines") and page.is_visible("#guidelines-back")
    page.close()


def test_multi_turn_item_shows_the_conversation(browser, study) -> None:  # noqa: F811
    server, tokens, ids = study
    page, _ = open_page(browser, server, tokens["t"])
    page.goto(f"{server.base_url}/item/{ids[('pairwise', 'mt')]}")
    turns = page.locator("#conversation li")
    assert turns.count() == 3
    assert turns.nth(1).text_content().strip().startswith("Assistant")
    assert page.locator("#conversation strong").text_content() == "Colosseum"
    assert "take the bus" in page.text_content("#response-A") and "take the bus" in page.text_content("#response-B")
    with page.expect_navigation():
        page.keyboard.press("2")
    assert labels_of(server, "t") == {ids[("pairwise", "mt")]: "B"}
    page.close()


def test_absolute_and_per_turn_rating(browser, study) -> None:  # noqa: F811
    server, tokens, ids = study
    page, _ = open_page(browser, server, tokens["t"])
    target = ids[("absolute", "p1")]
    page.goto(f"{server.base_url}/item/{target}")
    assert [page.text_content(f"#choose-{r}").split()[-1] for r in ("fail", "pass", "excellent")] == [
        "Fail", "Pass", "Excellent"]
    assert page.locator("#response-B").count() == 0
    with page.expect_navigation():
        page.keyboard.press("3")
    assert labels_of(server, "t")[target] == "excellent"
    page.goto(f"{server.base_url}/item/{target}")
    assert page.get_attribute("#choose-excellent", "class") == "chosen"
    convo = ids[("per_turn", "c1")]
    page.goto(f"{server.base_url}/item/{convo}")
    assert page.locator("fieldset.rating").count() == 2
    page.check("#rate-turn-1 input[value='pass']")
    page.click("#save-ratings")                                   # turn 2 unrated: the browser refuses
    assert convo not in labels_of(server, "t")
    page.check("#rate-turn-2 input[value='fail']")
    with page.expect_navigation():
        page.click("#save-ratings")
    assert labels_of(server, "t")[convo] == '["pass", "fail"]'
    page.close()


def test_flag_with_a_comment(browser, study) -> None:  # noqa: F811
    server, tokens, ids = study
    page, _ = open_page(browser, server, tokens["f"])
    target = ids[("pairwise", "p2")]
    page.goto(f"{server.base_url}/item/{target}")
    page.click("#flag-open")
    page.select_option("#flag-reason", "cannot_judge")
    page.fill("#flag-comment", "needs a lawyer <b>really</b>")
    with page.expect_navigation():
        page.click("#flag-submit")
    assert f"/item/{target}" not in page.url
    conn = db.connect(server.db_path)
    row = conn.execute("SELECT f.reason, f.comment FROM flags f JOIN annotators n ON n.id = f.annotator_id"
                       " WHERE n.name = 'f' AND f.item_id = ?", (target,)).fetchone()
    conn.close()
    assert tuple(row) == ("cannot_judge", "needs a lawyer <b>really</b>")
    page.goto(f"{server.base_url}/item/{target}")
    assert page.input_value("#flag-comment") == "needs a lawyer <b>really</b>"
    assert page.text_content("#flag-open").strip() == "Flagged: cannot judge"
    page.close()


def test_phone_layout_shows_both_responses_and_the_buttons(browser, study) -> None:  # noqa: F811
    server, tokens, ids = study
    page, _ = open_page(browser, server, tokens["phone"], viewport=PHONE)
    page.goto(f"{server.base_url}/item/{ids[('pairwise', 'p0')]}")
    page.wait_for_selector("#choose-B")
    boxes = {sel: page.locator(sel).bounding_box() for sel in
             ("#response-A", "#response-B", "#choose-A", "#choose-tie", "#choose-B", ".choices", "#skip")}
    for sel, box in boxes.items():
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], (sel, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (sel, box)
    b = boxes["#response-B"]
    assert boxes[".choices"]["y"] >= b["y"] + b["height"]          # the panel is below B, never on top of it
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]   # no sideways scrolling
    shot(page, "annotate_item_phone")
    with page.expect_navigation():
        page.click("#choose-B")
    assert labels_of(server, "phone") == {ids[("pairwise", "p0")]: "B"}
    page.close()
