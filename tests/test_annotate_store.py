"""The annotation store, the safe renderer and the CLI, without a server (real SQLite files in tmp dirs)."""

from __future__ import annotations

import csv
import json
import sqlite3

import pytest
from annotate_server import XSS_RESPONSE, make_store, write_responses

from lima.analysis.agreement import tie_discounted_accuracy
from lima.annotate import db, stats
from lima.annotate.cli import main, make_pairs
from lima.annotate.render import render_markdown
from lima.io import InputError


def test_render_keeps_markdown_and_makes_html_inert() -> None:
    html = str(render_markdown(XSS_RESPONSE + "\n\n# Title\n\n**bold** `code`\n\n<b onclick=x>b</b>\n\n"
                               "![img](http://example.com/x.png)\n\n[ok](https://example.com)"))
    assert "<script" not in html and "<img" not in html and "<b " not in html
    assert "href=\"javascript" not in html and "[click me](javascript:" in html   # left as plain text
    assert "&lt;script&gt;" in html and "onerror=" in html          # shown as escaped text, not as markup
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">ok</a>' in html


def test_tie_discounted_accuracy_known_values(tmp_path) -> None:
    """The admin view's agreement is lima.analysis.agreement's, on the pairs both annotators labelled."""
    assert tie_discounted_accuracy(["a", "a", "tie", "b"], ["a", "tie", "tie", "a"]) == (1 + 0.5 + 1 + 0) / 4
    assert tie_discounted_accuracy(["tie"], ["b"]) == 0.5
    with pytest.raises(ValueError):
        tie_discounted_accuracy(["a"], [])
    path, tokens = make_store(tmp_path, n_items=4, overlap=4, annotators=["x", "y", "z"])
    conn = db.connect(path)
    x, y, z = (db.annotator_for_token(conn, tokens[n]) for n in "xyz")
    items = [r["id"] for r in conn.execute("SELECT id FROM items ORDER BY position")]
    for who, shown in ((x, ["A", "B", "tie"]), (y, ["A", "tie", "tie", "A"])):
        for item, choice in zip(items, shown, strict=False):
            db.set_label(conn, who, item, choice)
    db.set_label(conn, z, items[3], "A")
    pairs, overall = stats.agreement(conn)
    by_pair = {(p["annotator_1"], p["annotator_2"]): p for p in pairs}
    assert sorted(by_pair) == [("x", "y"), ("y", "z")]                 # x and z share no item: no row
    assert by_pair[("x", "y")]["n"] == 3 and by_pair[("x", "y")]["tie_discounted_accuracy"] == 2.5 / 3
    assert by_pair[("y", "z")]["n"] == 1 and by_pair[("y", "z")]["tie_discounted_accuracy"] == 1.0
    assert overall == (2.5 + 1.0) / 4
    assert stats.fmt(by_pair[("y", "z")]["kappa"]) == "—"              # one category: κ undefined, not 0 or 1


def test_load_records_a_seeded_order_and_overlap(tmp_path) -> None:
    a = write_responses(tmp_path, "lima", 12)
    b = write_responses(tmp_path, "gpt4", 10)                   # p10, p11 only in lima: left out
    orders = []
    for name in ("one", "two"):
        path = tmp_path / f"{name}.sqlite"
        assert main(["load", "--db", str(path), "--a", str(a), "--b", str(b), "--overlap", "4", "--seed", "3"]) == 0
        conn = db.connect(path)
        rows = conn.execute("SELECT prompt_id, system_a, system_b, shown_left, position, overlap FROM items"
                            " ORDER BY position").fetchall()
        orders.append([tuple(r) for r in rows])
        conn.close()
    assert orders[0] == orders[1]                               # same seed, same recorded order and sides
    rows = orders[0]
    assert len(rows) == 10 and [r[4] for r in rows] == list(range(10))
    assert [r[5] for r in rows] == [1] * 4 + [0] * 6
    assert {r[1] for r in rows} == {"lima"} and {r[2] for r in rows} == {"gpt4"}
    assert {r[3] for r in rows} == {"a", "b"}
    assert [r[0] for r in rows] != [f"p{i}" for i in range(10)]   # shuffled
    # loading again adds nothing
    conn = db.connect(tmp_path / "one.sqlite")
    assert db.insert_items(conn, make_pairs(a, b), overlap=4, seed=3) == {"inserted": 0, "skipped": 10, "overlap": 0}


def test_load_rejects_bad_input_with_position(tmp_path) -> None:
    a = write_responses(tmp_path, "lima", 3)
    with open(a, "a") as handle:
        handle.write(json.dumps({"system": "lima", "prompt_id": "p1", "prompt": "x", "response": "y"}) + "\n")
    b = write_responses(tmp_path, "gpt4", 3)
    with pytest.raises(InputError, match=r"lima.jsonl:4: duplicate prompt_id 'p1'"):
        make_pairs(a, b)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"system": "x", "prompt_id": "p0", "prompt": "p"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:1: missing field\(s\) response"):
        make_pairs(bad, b)
    assert main(["load", "--db", str(tmp_path / "x.sqlite"), "--a", str(bad), "--b", str(b), "--overlap", "1",
                 "--seed", "1"]) == 2


def test_overlap_for_everyone_and_the_rest_split_once(tmp_path) -> None:
    path, tokens = make_store(tmp_path, n_items=10, overlap=4, annotators=["ann1", "ann2", "ann3"])
    conn = db.connect(path)
    assert db.quota(conn) == 2
    seen: dict[str, list[int]] = {}
    for name, token in tokens.items():
        who = db.annotator_for_token(conn, token)
        assert who is not None and who.name == name
        assert db.progress(conn, who)["total"] == 6
        while (item := db.next_item(conn, who)) is not None:
            db.set_label(conn, who, item, "tie")
            seen.setdefault(name, []).append(item)
        assert db.progress(conn, who)["done"] == 6
    overlap = {r[0] for r in conn.execute("SELECT id FROM items WHERE overlap = 1")}
    rest = [set(items) - overlap for items in seen.values()]
    assert all(set(items) >= overlap for items in seen.values())
    assert [len(r) for r in rest] == [2, 2, 2] and len(set.union(*rest)) == 6       # split, never twice
    # another annotator cannot label a claimed item of someone else
    ann1 = db.annotator_for_token(conn, tokens["ann1"])
    foreign = next(iter(rest[1]))
    with pytest.raises(PermissionError):
        db.set_label(conn, ann1, foreign, "A")
    assert conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == 18


def test_label_maps_displayed_side_to_system_and_changes_in_place(tmp_path) -> None:
    path, tokens = make_store(tmp_path, n_items=4, overlap=4, annotators=["ann1"])
    conn = db.connect(path)
    who = db.annotator_for_token(conn, tokens["ann1"])
    for item in conn.execute("SELECT id, shown_left FROM items").fetchall():
        other = "b" if item["shown_left"] == "a" else "a"
        assert db.set_label(conn, who, item["id"], "A")["choice"] == item["shown_left"]
        first = db.own_label(conn, who, item["id"])
        assert db.set_label(conn, who, item["id"], "B")["choice"] == other
        again = db.own_label(conn, who, item["id"])
        assert again["created"] == first["created"] and again["shown_choice"] == "B"
    assert conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == 4
    with pytest.raises(ValueError):
        db.set_label(conn, who, 1, "C")
    with pytest.raises(sqlite3.IntegrityError):     # the schema itself refuses a second row per annotator×item
        conn.execute("INSERT INTO labels (annotator_id, item_id, choice, shown_choice, shown_left, created, updated)"
                     " VALUES (?, 1, 'a', 'A', 'a', 'x', 'x')", (who.id,))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_cli_add_annotator_and_export(tmp_path, capsys) -> None:
    path, tokens = make_store(tmp_path, n_items=3, overlap=3, annotators=["ann1"])
    assert main(["add-annotator", "--db", str(path), "boss", "--admin", "--base-url", "http://h:9"]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith("http://h:9/start?token=")
    conn = db.connect(path)
    boss = db.annotator_for_token(conn, link.split("token=")[1])
    assert boss is not None and boss.admin and boss.name == "boss"
    assert main(["add-annotator", "--db", str(path), "boss"]) == 2          # names are unique
    ann1 = db.annotator_for_token(conn, tokens["ann1"])
    items = conn.execute("SELECT * FROM items ORDER BY position").fetchall()
    for item, shown in zip(items, ["A", "B", "tie"], strict=True):
        db.set_label(conn, ann1, item["id"], shown)
    db.set_label(conn, boss, items[0]["id"], "B")
    for suffix in ("csv", "jsonl"):
        out = tmp_path / f"labels.{suffix}"
        assert main(["export", "--db", str(path), "--output", str(out)]) == 0
        assert (tmp_path / f"labels.{suffix}.manifest.json").exists()
        if suffix == "csv":
            with open(out, newline="") as handle:
                rows = list(csv.DictReader(handle))
            assert list(rows[0])[:9] == ["item_id", "annotator", "prompt_id", "prompt", "system_a", "system_b",
                                         "shown_left", "choice", "created"]
        else:
            rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 4
        first = [r for r in rows if str(r["item_id"]) == str(items[0]["id"])]
        assert [r["annotator"] for r in first] == ["ann1", "boss"]
        left = items[0]["shown_left"]
        assert [r["choice"] for r in first] == [left, "b" if left == "a" else "a"]
        assert {r["system_a"] for r in rows} == {"lima"} and {r["system_b"] for r in rows} == {"alpaca"}
        tie_row = next(r for r in rows if str(r["item_id"]) == str(items[2]["id"]))
        assert tie_row["choice"] == "tie" and tie_row["prompt_id"] == items[2]["prompt_id"]


def test_a_store_of_the_older_layout_is_refused_with_a_message(tmp_path, capsys) -> None:
    old = tmp_path / "old.sqlite"
    conn = sqlite3.connect(old)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, prompt_id TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(db.SchemaError, match="older annotation layout"):
        db.connect(old)
    assert main(["annotators", "--db", str(old)]) == 2
    assert "older annotation layout" in capsys.readouterr().err
