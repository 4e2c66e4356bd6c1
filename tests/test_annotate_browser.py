"""The annotation flow in real headless Chromium (Debian `chromium`, driven by Playwright's Python API).

Skipped when /usr/bin/chromium is missing, unless LIMA_REQUIRE_BROWSER=1 (CI), which turns the skip into a
failure. Playwright's own browser download is never used: the system chromium is launched by path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from annotate_server import Server, browser_or_skip, make_store

from lima.annotate import db

pytestmark = [pytest.mark.browser, pytest.mark.slow]
N_ITEMS = 5


@pytest.fixture(scope="module")
def browser():
    sync_playwright, executable, args = browser_or_skip()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=args)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Five items, all shared (so every annotator meets the one whose responses carry script payloads)."""
    folder = tmp_path_factory.mktemp("annotate_browser")
    path, tokens = make_store(folder, n_items=N_ITEMS, overlap=N_ITEMS, annotators=["kb", "mouse", "xss"],
                              admins=("boss",), xss_at=0)
    server = Server(path).start()
    yield server, tokens
    server.stop()


def open_page(browser, server, token, viewport=None):
    """Open the start link; a first visit shows the guidelines, which are confirmed here."""
    page = browser.new_page(viewport=viewport or {"width": 1400, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{server.base_url}/start?token={token}")
    if page.url.endswith("/guidelines"):
        with page.expect_navigation():
            page.click("#guidelines-start")
    return page, dialogs


def shot(page, name: str, full_page: bool = False) -> None:
    """A screenshot in /tmp; with LIMA_GALLERY=DIR (e.g. docs/gallery) also there, for the docs."""
    page.screenshot(path=f"/tmp/lima_{name}.png", full_page=full_page)
    if os.environ.get("LIMA_GALLERY"):
        page.screenshot(path=str(Path(os.environ["LIMA_GALLERY"]) / f"{name}.png"), full_page=full_page)


def labels_of(server, name: str) -> dict[int, str]:
    conn = db.connect(server.db_path)
    rows = conn.execute("SELECT l.item_id, l.shown_choice FROM labels l JOIN annotators n ON n.id = l.annotator_id"
                        " WHERE n.name = ?", (name,)).fetchall()
    conn.close()
    return {r[0]: r[1] for r in rows}


def item_id(page) -> int:
    return int(page.url.rstrip("/").split("/")[-1])


def test_keyboard_flow(browser, study) -> None:
    server, tokens = study
    page, _ = open_page(browser, server, tokens["kb"])
    keys = {"1": "A", "2": "B", "0": "tie"}
    expected: dict[int, str] = {}
    for n, key in enumerate("12012"):
        page.wait_for_selector("#choose-A")
        assert page.text_content("#progress").strip() == f"{n} / {N_ITEMS} labelled"
        expected[item_id(page)] = keys[key]
        with page.expect_navigation():
            page.keyboard.press(key)
    page.wait_for_selector("#done")
    page.screenshot(path="/tmp/lima_annotate_done.png")
    assert labels_of(server, "kb") == expected
    # change one label from "My labels": the existing choice is highlighted, key 0 replaces it
    page.goto(f"{server.base_url}/mine")
    first = min(expected)
    page.click(f"#my-labels a[href='/item/{first}']")
    assert page.get_attribute(f"#choose-{expected[first]}", "class") == "chosen"
    with page.expect_navigation():
        page.keyboard.press("0" if expected[first] != "tie" else "1")
    changed = labels_of(server, "kb")
    assert len(changed) == N_ITEMS and changed[first] == ("tie" if expected[first] != "tie" else "A")
    page.close()


def test_mouse_flow_with_skip_and_admin_view(browser, study) -> None:
    server, tokens = study
    page, _ = open_page(browser, server, tokens["mouse"])
    shot(page, "annotate_item_desktop")
    skipped = item_id(page)
    page.click("#skip")
    page.wait_for_url(lambda url: not url.endswith(f"/item/{skipped}"))
    chosen: dict[int, str] = {}
    for button in ["A", "B", "tie", "A", "B"]:                 # four after the skip, then the skipped one
        current = item_id(page)
        chosen[current] = button
        with page.expect_navigation():
            page.click(f"#choose-{button}")
    page.wait_for_selector("#done")
    assert labels_of(server, "mouse") == chosen and skipped in chosen
    # the admin sees both annotators' progress and their agreement on the shared items
    admin, _ = open_page(browser, server, tokens["boss"])
    admin.goto(f"{server.base_url}/admin")
    table = admin.text_content("#progress-table")
    assert "mouse" in table and "boss" in table
    assert admin.is_visible("#agreement-table") or admin.is_visible(".notice")
    shot(admin, "annotate_admin", full_page=True)
    admin.close()
    page.close()


def test_script_payloads_in_responses_stay_inert(browser, study) -> None:
    server, tokens = study
    conn = db.connect(server.db_path)
    target = conn.execute("SELECT id FROM items WHERE prompt_id = 'p0'").fetchone()[0]
    conn.close()
    page, dialogs = open_page(browser, server, tokens["xss"])
    page.goto(f"{server.base_url}/item/{target}")
    page.wait_for_selector("#response-A")
    page.wait_for_timeout(300)                                  # give any injected handler time to fire
    assert dialogs == []
    assert page.evaluate("typeof window.__pwned") == "undefined"
    for side in ("A", "B"):
        text = page.text_content(f"#response-{side} .md")
        assert '<script>window.__pwned = "script"' in text and "<img src=x onerror=" in text   # shown escaped
        assert page.locator(f"#response-{side} script, #response-{side} img").count() == 0
        assert page.locator(f"#response-{side} a[href^='javascript']").count() == 0
    # the page still works: label it by key
    with page.expect_navigation():
        page.keyboard.press("1")
    assert labels_of(server, "xss") == {target: "A"}
    assert page.evaluate("typeof window.__pwned") == "undefined" and dialogs == []
    page.close()


def test_browser_without_token_gets_401(browser, study) -> None:
    server, _ = study
    page = browser.new_page()
    response = page.goto(f"{server.base_url}/annotate")
    assert response is not None and response.status == 401
    assert page.is_visible("#unauthorized")
    page.close()
