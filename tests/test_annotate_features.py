"""What a study tool needs beyond the labels (issue 13): guidelines, time per item, attention checks, flags,
label history, annotator management, the absolute and per-turn task types, position bias, texts in exports.
"""

from __future__ import annotations

import json
import time

import pytest
from annotate_server import client_for, make_store, write_responses, write_rows

from lima.annotate import db
from lima.annotate.cli import main


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_guidelines_before_the_first_item_and_after_every_edit(tmp_path, capsys) -> None:
    path, tokens = make_store(tmp_path, n_items=3, overlap=3, annotators=["ann1"], admins=("boss",))
    web = client_for(path, tokens["ann1"], bearer=False)
    assert web.get("/annotate").headers["location"] == "/guidelines"
    page = web.get("/guidelines").text
    assert "Which answer best satisfies your needs?" in page and "Excellent" in page and 'id="guidelines-start"' in page
    assert web.post("/guidelines", data={"version": "1"}).headers["location"] == "/annotate"
    item = web.get("/annotate").headers["location"]
    assert item.startswith("/item/") and 'href="/guidelines"' in web.get(item).text       # linked from each item
    assert 'id="guidelines-start"' not in web.get("/guidelines").text                     # already confirmed
    # the organiser edits them (web form or CLI): a new version, shown again before the next item
    assert web.post("/admin/guidelines", data={"text": "x"}).status_code == 403
    boss = client_for(path, tokens["boss"])
    assert boss.post("/admin/guidelines", data={"text": "# Ours\r\n\nBe *strict*."}).status_code == 303
    assert web.get("/annotate").headers["location"] == "/guidelines"
    assert "<em>strict</em>" in web.get("/guidelines").text
    new = tmp_path / "g.md"
    new.write_text("# Third version\n", encoding="utf-8")
    assert main(["guidelines", "--db", str(path), "--file", str(new)]) == 0
    assert main(["guidelines", "--db", str(path)]) == 0
    assert capsys.readouterr().out.endswith("# Third version\n\n")
    assert boss.post("/admin/guidelines", data={"text": "  "}).status_code == 422


def test_time_per_item_history_and_flags_reach_the_exports(tmp_path) -> None:
    path, tokens = make_store(tmp_path, n_items=3, overlap=3, annotators=["ann1"], admins=("boss",))
    api, boss = client_for(path, tokens["ann1"]), client_for(path, tokens["boss"])
    item = api.get("/api/next").json()["item"]["id"]
    time.sleep(0.3)
    first = api.post(f"/api/items/{item}/label", json={"choice": "A"}).json()
    assert 0.3 <= first["seconds"] < 5
    api.get(f"/api/items/{item}")
    assert api.post(f"/api/items/{item}/label", json={"choice": "tie"}).json()["choice"] == "tie"     # relabel
    flagged = first["next"]["id"]
    assert api.post(f"/api/items/{flagged}/flag", json={"reason": "unsafe", "comment": "graphic"}).json()["ok"]
    assert api.post(f"/api/items/{flagged}/flag", json={"reason": "spam"}).status_code == 422
    assert api.post(f"/api/items/{flagged}/flag", json={"reason": "broken", "comment": "x" * 2001}).status_code == 422
    assert api.get("/api/next").json()["progress"]["done"] == 2                # a flagged item counts as done
    labels = jsonl(boss.get("/admin/export.jsonl").text)
    assert len(labels) == 1 and labels[0]["revisions"] == 1 and labels[0]["shown_choice"] == "tie"
    assert isinstance(labels[0]["seconds"], float)
    history = jsonl(boss.get("/admin/export/history.jsonl").text)
    assert [(h["item_id"], h["shown_choice"], h["seconds"]) for h in history] == [(item, "A", first["seconds"])]
    flags = jsonl(boss.get("/admin/export/flags.jsonl").text)
    assert [(f["item_id"], f["flag"], f["comment"]) for f in flags] == [(flagged, "unsafe", "graphic")]
    assert "graphic" in boss.get("/admin").text
    texts = boss.get("/admin/export.csv?texts=true").text
    assert texts.splitlines()[0].endswith(',role,response_a,response_b') and "closing sentence" in texts


def test_gold_items_give_a_pass_rate_and_stay_out_of_the_study_export(tmp_path) -> None:
    a, b = write_responses(tmp_path, "lima", 6), write_responses(tmp_path, "bad", 6)
    gold = write_rows(tmp_path / "gold.jsonl", [{"prompt_id": "p0", "answer": "lima"},
                                                {"prompt_id": "p1", "answer": "tie"}])
    path = tmp_path / "s.sqlite"
    assert main(["load", "--db", str(path), "--a", str(a), "--b", str(b), "--gold", str(gold), "--overlap", "1",
                 "--seed", "4"]) == 0
    conn = db.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM items WHERE overlap = 1").fetchone()[0] == 3    # 2 gold + 1 shared
    tokens = {n: db.add_annotator(conn, n) for n in ("good", "careless")}
    boss = db.add_annotator(conn, "boss", admin=True)
    sides = {r["prompt_id"]: r for r in conn.execute("SELECT * FROM items")}
    right = {"p0": "A" if sides["p0"]["shown_left"] == ("a" if sides["p0"]["system_a"] == "lima" else "b") else "B",
             "p1": "tie"}
    for name, answers in (("good", right), ("careless", {"p0": "B" if right["p0"] == "A" else "A", "p1": "tie"})):
        who = db.annotator_for_token(conn, tokens[name])
        for pid, shown in answers.items():
            db.set_label(conn, who, sides[pid]["id"], shown)
    admin = client_for(path, boss)
    rows = {r["annotator"]: r for r in jsonl(admin.get("/admin/export/gold.jsonl").text) if r["prompt_id"] == "p0"}
    assert rows["good"]["correct"] == 1 and rows["careless"]["correct"] == 0
    page = admin.get("/admin").text
    assert "100% <span class=\"hint\">(2/2)" in page and "50% <span class=\"hint\">(1/2)" in page
    assert admin.get("/admin/export.jsonl").text == ""                        # attention checks are not study data
    bad_gold = write_rows(tmp_path / "bad_gold.jsonl", [{"prompt_id": "p2", "answer": "gpt4"}])
    assert main(["load", "--db", str(path), "--a", str(a), "--b", str(b), "--gold", str(bad_gold), "--overlap",
                 "1", "--seed", "4"]) == 2


def test_revoke_and_reissue_keep_the_identity(tmp_path, capsys) -> None:
    path, tokens = make_store(tmp_path, n_items=6, overlap=2, annotators=["ann1", "ann2"], admins=("boss",))
    one, boss = client_for(path, tokens["ann1"]), client_for(path, tokens["boss"])
    web = client_for(path, tokens["ann1"], bearer=False)
    for _ in range(3):                                   # two shared items labelled, then a claim left open
        item = one.get("/api/next").json()["item"]
        if item["overlap"]:
            one.post(f"/api/items/{item['id']}/label", json={"choice": "A"})
    assert "ann1" in boss.get("/admin/annotators").text
    assert boss.post("/admin/annotators/ann1/revoke").status_code == 303
    assert one.get("/api/next").status_code == 401 and web.get("/mine").status_code == 401
    conn = db.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM assignments").fetchone()[0] == 0           # the open claim released
    page = boss.post("/admin/annotators/ann1/reissue")
    link = page.text.split('id="link">')[1].split("<")[0]
    assert link.startswith("http://testserver/start?token=")
    again = client_for(path, link.split("token=")[1])
    assert [lab["choice"] for lab in again.get("/api/labels").json()["labels"]] == ["A", "A"]   # same identity
    assert client_for(path).get(f"/start?token={tokens['ann1']}").status_code == 401          # old link dead
    assert boss.post("/admin/annotators/boss/revoke").status_code == 422
    assert boss.post("/admin/annotators/nobody/reissue").status_code == 404
    added = boss.post("/admin/annotators", data={"name": "ann3"})
    assert added.status_code == 200 and "/start?token=" in added.text
    assert main(["reissue", "--db", str(path), "ann2", "--base-url", "http://h:1"]) == 0
    assert capsys.readouterr().out.startswith("http://h:1/start?token=")
    assert main(["revoke", "--db", str(path), "ann2"]) == 0 and main(["annotators", "--db", str(path)]) == 0
    assert "ann2\tannotator\t" in capsys.readouterr().out


def test_absolute_rating_task(tmp_path) -> None:
    responses = write_responses(tmp_path, "lima", 4)
    path = tmp_path / "s.sqlite"
    assert main(["load", "--db", str(path), "--task", "absolute", "--a", str(responses), "--overlap", "4",
                 "--seed", "1"]) == 0
    assert main(["load", "--db", str(path), "--task", "absolute", "--a", str(responses), "--overlap", "4",
                 "--seed", "1"]) == 0
    conn = db.connect(path)
    assert conn.execute("SELECT COUNT(*), MIN(task), MAX(system_b IS NULL) FROM items").fetchone()[:] == (4, "absolute", 1)
    api = client_for(path, db.add_annotator(conn, "ann1"))
    boss = client_for(path, db.add_annotator(conn, "boss", admin=True))
    item = api.get("/api/next").json()["item"]
    assert item["task"] == "absolute" and item["response_B"] is None
    assert api.post(f"/api/items/{item['id']}/label", json={"choice": "A"}).status_code == 422
    assert api.post(f"/api/items/{item['id']}/label", json={"choice": "Excellent"}).json()["choice"] == "excellent"
    html = api.get(f"/item/{item['id']}").text
    assert 'id="choose-fail"' in html and 'class="chosen"' in html.split('id="choose-excellent"')[1][:20]
    rows = jsonl(boss.get("/admin/export/ratings.jsonl?texts=true").text)
    assert [(r["system"], r["rating"], r["item_id"]) for r in rows] == [("lima", "excellent", item["id"])]
    assert rows[0]["response"].startswith("**lima** answers")
    assert boss.get("/admin/export.jsonl").text == ""                       # not pairwise: not in `labels`


def test_per_turn_rating_task(tmp_path) -> None:
    convo = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": "A haiku?"}, {"role": "assistant", "content": "Leaves fall..."}]
    conversations = write_rows(tmp_path / "t.jsonl", [{"id": "c1", "condition": "zero_shot", "messages": convo}])
    path = tmp_path / "s.sqlite"
    assert main(["load", "--db", str(path), "--task", "per_turn", "--a", str(conversations), "--overlap", "1",
                 "--seed", "1"]) == 0
    conn = db.connect(path)
    api = client_for(path, db.add_annotator(conn, "ann1"))
    boss = client_for(path, db.add_annotator(conn, "boss", admin=True))
    item = api.get("/api/next").json()["item"]
    assert item["task"] == "per_turn" and item["messages"] == convo
    for bad in (["pass"], ["pass", "great"], None):
        assert api.post(f"/api/items/{item['id']}/label", json={"ratings": bad}).status_code == 422
    assert api.post(f"/api/items/{item['id']}/label", json={"ratings": ["pass", "excellent"]}).status_code == 200
    rows = jsonl(boss.get("/admin/export/turns.jsonl").text)
    assert [(r["prompt_id"], r["system"], r["turn"], r["rating"]) for r in rows] == [
        ("c1", "zero_shot", 1, "pass"), ("c1", "zero_shot", 2, "excellent")]
    html = api.get(f"/item/{item['id']}").text
    assert html.count('name="turn_1"') == 3 and html.count('name="turn_2"') == 3 and "checked" in html
    with pytest.raises(Exception, match="no assistant turn"):
        from lima.annotate.loading import conversation_items

        conversation_items(write_rows(tmp_path / "u.jsonl", [{"id": "c2", "system": "s", "messages": convo[:1]}]))


def test_admin_view_position_bias_and_kappa(tmp_path) -> None:
    path, tokens = make_store(tmp_path, n_items=4, overlap=4, annotators=["left", "fair"], admins=("boss",))
    conn = db.connect(path)
    ids = [r[0] for r in conn.execute("SELECT id FROM items ORDER BY position")]
    for name, shown in (("left", ["A", "A", "A", "B"]), ("fair", ["A", "B", "tie", "B"])):
        who = db.annotator_for_token(conn, tokens[name])
        for item, choice in zip(ids, shown, strict=True):
            db.set_label(conn, who, item, choice)
    page = client_for(path, tokens["boss"]).get("/admin").text
    rows = page.split('id="progress-table"')[1].split("</table>")[0]
    left = rows.split("<td>left</td>")[1].split("</tr>")[0]
    fair = rows.split("<td>fair</td>")[1].split("</tr>")[0]
    assert "0.75 <span" in left and "(3 A · 1 B · 0 tie)" in left
    assert "0.33 <span" in fair and "(1 A · 2 B · 1 tie)" in fair
    agreement = page.split('id="agreement-table"')[1].split("</table>")[0]
    # shared 4 items: same label on items 1 and 4, one "neither" vs a side: tda = (1 + 0 + .5 + 1) / 4
    assert "<td>0.625</td>" in agreement
    from lima.analysis.agreement import cohen_kappa

    labels = {n: [r["choice"] for r in db.export_rows(conn) if r["annotator"] == n] for n in ("left", "fair")}
    assert f'class="kappa">{cohen_kappa(labels["fair"], labels["left"]):.3f}<' in agreement
