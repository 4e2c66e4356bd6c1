"""The annotation app's workflow defects of issue 13, each reproduced over HTTP (in-process ASGI client).

Skip claiming for ever, claims never expiring, tokens in query strings, silent identity switches, ids ≥ 2^63,
admins claiming study items, raw JSON errors for people, CSV formula injection, swapped duplicates, and
multi-turn prompts that crashed `annotate load`.
"""

from __future__ import annotations

import csv
import io
import json
import time

from annotate_server import client_for, make_store, write_responses, write_rows

from lima.annotate import db
from lima.annotate.cli import main

BIG = 2**63


def count(path, sql: str, *params) -> int:
    conn = db.connect(path)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


def test_skipping_never_claims_and_skipped_items_stay_available(tmp_path) -> None:
    path, tokens = make_store(tmp_path, n_items=40, overlap=0, annotators=["a1", "a2"])
    one = client_for(path, tokens["a1"])
    first = one.get("/api/next").json()["item"]["id"]
    item = first
    for _ in range(30):                                   # the issue: 30 skips left 31 items claimed
        assert one.post(f"/api/items/{item}/skip").json() == {"ok": True}
        item = one.get("/api/next").json()["item"]["id"]
    assert count(path, "SELECT COUNT(*) FROM assignments") == 1          # only the item now on screen
    assert count(path, "SELECT COUNT(*) FROM labels") == 0
    # the skipped items went back to the pool: a2 gets the very first one a1 skipped
    two = client_for(path, tokens["a2"])
    assert two.get("/api/next").json()["item"]["id"] == first
    # the page route behaves the same (a POST; it redirects to the next item)
    page = client_for(path, tokens["a1"], bearer=False)
    page.post("/guidelines", data={"version": "1"})
    target = page.get("/annotate").headers["location"]
    assert page.post(f"{target}/skip").status_code == 303
    assert count(path, "SELECT COUNT(*) FROM assignments a JOIN annotators n ON n.id = a.annotator_id"
                       " WHERE n.name = 'a1'") == 0


def test_claims_expire_and_admin_releases_or_reassigns(tmp_path) -> None:
    path, tokens = make_store(tmp_path, n_items=2, overlap=0, annotators=["a1", "a2"], admins=("boss",))
    ttl = 0.5
    one, two = client_for(path, tokens["a1"], claim_ttl=ttl), client_for(path, tokens["a2"], claim_ttl=ttl)
    boss = client_for(path, tokens["boss"], claim_ttl=ttl)
    x = one.get("/api/next").json()["item"]["id"]                    # a1 claims x and walks away
    y = two.get("/api/next").json()["item"]["id"]
    assert two.post(f"/api/items/{y}/label", json={"choice": "A"}).json()["next"] is None   # x not expired yet
    time.sleep(ttl + 0.2)
    assert two.get("/api/next").json()["item"]["id"] == x            # expired: taken over (past a2's share)
    assert one.get(f"/api/items/{x}").status_code == 404
    assert one.post(f"/api/items/{x}/label", json={"choice": "A"}).status_code == 404
    assert "expired" not in boss.get("/admin").text.split("claims-table")[1].split("</table>")[0]
    # the admin hands x back, then gives it to a1 explicitly
    assert boss.post(f"/admin/claims/{x}/release").status_code == 303
    assert two.get(f"/api/items/{x}").status_code == 404
    assert boss.post(f"/admin/claims/{x}/release").status_code == 404              # nothing left to release
    one.get("/api/next")                                                             # a1 reclaims x ...
    assert boss.post(f"/admin/claims/{x}/reassign", data={"annotator": "a2"}).status_code == 303
    assert two.get(f"/api/items/{x}").status_code == 200 and one.get(f"/api/items/{x}").status_code == 404
    assert boss.post(f"/admin/claims/{x}/reassign", data={"annotator": "boss"}).status_code == 422   # no admins
    assert boss.post(f"/admin/claims/{y}/reassign", data={"annotator": "a1"}).status_code == 404     # y is done
    assert one.post(f"/admin/claims/{x}/release").status_code == 403


def test_token_only_on_the_start_link_then_a_session_cookie(tmp_path) -> None:
    path, tokens = make_store(tmp_path, n_items=4, overlap=4, annotators=["ann1", "ann2"])
    anon = client_for(path)
    for url in ["/annotate", "/mine", "/guidelines", "/item/1", "/api/next", "/api/labels"]:
        assert anon.get(f"{url}?token={tokens['ann1']}").status_code == 401, url
    start = anon.get(f"/start?token={tokens['ann1']}")
    assert start.status_code == 303
    cookie = anon.cookies.get("lima_session")
    assert cookie and tokens["ann1"] not in cookie and tokens["ann1"] not in start.headers["set-cookie"]
    assert "httponly" in start.headers["set-cookie"].lower() and "samesite=strict" in start.headers["set-cookie"].lower()
    assert anon.get("/guidelines").status_code == 200
    # another annotator's start link: asked, not switched
    other = anon.get(f"/start?token={tokens['ann2']}")
    assert other.status_code == 409 and "This link belongs to someone else" in other.text
    assert 'id="who">ann1<' in anon.get("/guidelines").text
    switched = anon.post("/start", data={"token": tokens["ann2"]})
    assert switched.status_code == 303 and 'id="who">ann2<' in anon.get("/guidelines").text
    assert anon.get(f"/start?token={tokens['ann2']}").status_code == 303                # own link: no question
    assert anon.post("/logout").status_code == 303 and anon.get("/guidelines").status_code == 401


def test_item_ids_beyond_sqlite_integers_are_404_not_500(tmp_path) -> None:
    path, tokens = make_store(tmp_path, n_items=2, overlap=2, annotators=["ann1"], admins=("boss",))
    api, boss = client_for(path, tokens["ann1"]), client_for(path, tokens["boss"])
    for item in (BIG, BIG * 10**5, 2**63 - 1, 0, -BIG):
        assert api.get(f"/api/items/{item}").status_code == 404, item
        assert api.post(f"/api/items/{item}/label", json={"choice": "A"}).status_code == 404
        assert api.post(f"/api/items/{item}/flag", json={"reason": "broken"}).status_code == 404
        assert api.post(f"/api/items/{item}/skip").status_code == 404
        page = api.get(f"/item/{item}")
        assert page.status_code == 404 and 'id="error"' in page.text
        assert boss.post(f"/admin/claims/{item}/release").status_code == 404
        assert boss.post(f"/admin/claims/{item}/reassign", data={"annotator": "ann1"}).status_code == 404


def test_admins_claim_nothing_and_their_labels_are_marked(tmp_path) -> None:
    path, tokens = make_store(tmp_path, n_items=6, overlap=2, annotators=["ann1"], admins=("boss",))
    boss = client_for(path, tokens["boss"])
    seen = []
    while (item := boss.get("/api/next").json()["item"]) is not None:
        seen.append(item["overlap"])
        boss.post(f"/api/items/{item['id']}/label", json={"choice": "B"})
    assert seen == [True, True]                                       # shared items only, no claims
    assert count(path, "SELECT COUNT(*) FROM assignments") == 0
    assert boss.get("/api/next").json()["progress"] == {"done": 2, "total": 2, "overlap": 2, "claimed": 0}
    rows = [json.loads(line) for line in boss.get("/admin/export.jsonl").text.splitlines()]
    assert [r["role"] for r in rows] == ["admin", "admin"] and all(r["overlap"] == 1 for r in rows)
    conn = db.connect(path)
    assert db.quota(conn) == 4                                        # the rest is ann1's alone


def test_people_get_html_errors_scripts_get_json(tmp_path) -> None:
    path, tokens = make_store(tmp_path, n_items=2, overlap=2, annotators=["ann1"])
    web = client_for(path, tokens["ann1"], bearer=False)
    web.post("/guidelines", data={"version": "1"})
    item = web.get("/annotate").headers["location"]
    bad = web.post(f"{item}/label", data={"choice": "C"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    assert 'id="error-message">Choice must be one of' in bad.text and "Go to your next item" in bad.text
    missing = web.post(f"{item}/flag", data={})
    assert missing.status_code == 422 and "invalid value for: reason" in missing.text
    for url in ["/no/such/page", "/item/99999", "/admin"]:
        response = web.get(url)
        assert response.status_code in (403, 404) and 'id="error"' in response.text, url
        assert "script-src 'self'" in response.headers["content-security-policy"]
    api = client_for(path, tokens["ann1"])
    assert api.get("/api/items/99999").json() == {"detail": "there is no such item for you (it may have been "
                                                            "released after a long pause)"}
    assert api.post("/api/items/1/label", json={"choice": "C"}).status_code == 422


def test_csv_exports_neutralise_formulas(tmp_path) -> None:
    rows = {s: [{"system": s, "prompt_id": "=1+1", "prompt": "=HYPERLINK(\"http://x\",\"y\")",
                 "response": "fine"},
                {"system": s, "prompt_id": "-2", "prompt": "@SUM(A1)", "response": "fine"},
                {"system": s, "prompt_id": "p3", "prompt": "\tTab;=cmd|' /C calc'!A0", "response": "ok"}]
            for s in ("+sysA", "sysB")}
    a, b = (write_rows(tmp_path / f"{s}.jsonl", r) for s, r in rows.items())
    path = tmp_path / "s.sqlite"
    assert main(["load", "--db", str(path), "--a", str(a), "--b", str(b), "--overlap", "3", "--seed", "1"]) == 0
    conn = db.connect(path)
    tokens = {n: db.add_annotator(conn, n) for n in ("-eve", "bob")}
    boss = db.add_annotator(conn, "boss", admin=True)
    for token in tokens.values():
        who = db.annotator_for_token(conn, token)
        for item in conn.execute("SELECT id FROM items").fetchall():
            db.set_label(conn, who, item[0], "A")
    out = tmp_path / "labels.csv"
    assert main(["export", "--db", str(path), "--output", str(out)]) == 0
    web = client_for(path, boss).get("/admin/export.csv").text
    for text in (out.read_text(encoding="utf-8"), web):
        cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
        assert "'=1+1" in cells and "'-2" in cells and "'-eve" in cells and "'+sysA" in cells
        assert "'=HYPERLINK(\"http://x\",\"y\")" in cells and "'@SUM(A1)" in cells
        assert '"\'\tTab;=cmd|\' /C calc\'!A0"' in text                    # quoted: a ;-reader splits nothing
    jsonl = tmp_path / "labels.jsonl"
    assert main(["export", "--db", str(path), "--output", str(jsonl)]) == 0
    assert {json.loads(line)["prompt_id"] for line in jsonl.read_text().splitlines()} == {"=1+1", "-2", "p3"}


def test_a_pair_loaded_swapped_is_the_same_item(tmp_path) -> None:
    a, b = write_responses(tmp_path, "lima", 5), write_responses(tmp_path, "gpt4", 5)
    path = str(tmp_path / "s.sqlite")
    assert main(["load", "--db", path, "--a", str(a), "--b", str(b), "--overlap", "2", "--seed", "1"]) == 0
    assert main(["load", "--db", path, "--a", str(b), "--b", str(a), "--overlap", "2", "--seed", "2"]) == 0
    assert count(tmp_path / "s.sqlite", "SELECT COUNT(*) FROM items") == 5
    assert count(tmp_path / "s.sqlite", "SELECT COUNT(DISTINCT system_a) FROM items") == 1


def test_multi_turn_prompts_load_and_show_as_a_conversation(tmp_path) -> None:
    chat = [{"role": "user", "content": "Plan a trip to Rome."}, {"role": "assistant", "content": "Day 1: *Colosseum*."},
            {"role": "user", "content": "Make it cheaper."}]
    files = [write_rows(tmp_path / f"{s}.jsonl", [{"system": s, "prompt_id": "c1", "prompt": chat,
                                                   "response": f"{s}: walk and picnic."}]) for s in ("lima", "gpt4")]
    path = tmp_path / "s.sqlite"
    assert main(["load", "--db", str(path), "--a", str(files[0]), "--b", str(files[1]), "--overlap", "1",
                 "--seed", "1"]) == 0
    conn = db.connect(path)
    item = conn.execute("SELECT * FROM items").fetchone()
    assert item["prompt"] == ("User: Plan a trip to Rome.\n\nAssistant: Day 1: *Colosseum*.\n\n"
                              "User: Make it cheaper.")
    assert json.loads(item["messages"]) == chat
    token = db.add_annotator(conn, "ann1")
    html = client_for(path, token).get(f"/item/{item['id']}").text
    conversation = html.split('id="conversation"')[1].split("</ol>")[0]
    assert conversation.count('class="turn turn-user"') == 2 and conversation.count("turn-assistant") == 1
    assert "<em>Colosseum</em>" in conversation and "Make it cheaper." in conversation
    assert "lima: walk and picnic." in html and "gpt4: walk and picnic." in html
    bad = write_rows(tmp_path / "bad.jsonl", [{"system": "x", "prompt_id": "c1", "prompt": [{"role": "user"}],
                                               "response": "r"}])
    assert main(["load", "--db", str(path), "--a", str(bad), "--b", str(files[1]), "--overlap", "1",
                 "--seed", "1"]) == 2
