"""The annotation app over real HTTP: `python -m lima annotate serve` as a subprocess on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from annotate_server import Server, make_store

from lima.annotate import db


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """10 items, 4 shared, ann1/ann2 and an admin; one server for the auth and isolation tests."""
    folder = tmp_path_factory.mktemp("annotate_small")
    path, tokens = make_store(folder, n_items=10, overlap=4, annotators=["ann1", "ann2"], admins=("boss",))
    server = Server(path).start()
    yield server, tokens
    server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_or_bad_token_is_401(small) -> None:
    server, _ = small
    with httpx.Client(base_url=server.base_url) as client:
        for url in ["/", "/annotate", "/item/1", "/mine", "/admin", "/admin/export.csv", "/api/next",
                    "/api/labels", "/start?token=wrong"]:
            assert client.get(url).status_code == 401, url
            assert client.get(url, headers=bearer("wrong")).status_code == 401, url
        assert client.post("/api/items/1/label", json={"choice": "A"}).status_code == 401
        assert client.post("/item/1/label", data={"choice": "A"}).status_code == 401
        page = client.get("/annotate")
        assert "valid annotator link" in page.text and page.headers["www-authenticate"] == "Bearer"
        assert "script-src 'self'" in page.headers["content-security-policy"]
    conn = db.connect(server.db_path)
    assert conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == 0


def test_annotator_sees_and_changes_only_own_labels(small) -> None:
    server, tokens = small
    one = httpx.Client(base_url=server.base_url, headers=bearer(tokens["ann1"]))
    two = httpx.Client(base_url=server.base_url, headers=bearer(tokens["ann2"]))
    conn = db.connect(server.db_path)
    claimed = None
    for _ in range(5):                                  # 4 shared items, then ann1's first own claim
        item = one.get("/api/next").json()["item"]
        assert set(item) == {"id", "task", "prompt", "messages", "response_A", "response_B", "overlap"}   # blind
        assert one.post(f"/api/items/{item['id']}/label", json={"choice": "A"}).json()["ok"]
        claimed = item
    assert claimed is not None and not claimed["overlap"]
    # ann2 cannot see, label or even learn about ann1's claimed item
    assert two.get(f"/api/items/{claimed['id']}").status_code == 404
    assert two.get(f"/item/{claimed['id']}").status_code == 404
    assert two.post(f"/api/items/{claimed['id']}/label", json={"choice": "B"}).status_code == 404
    # ann2 labels a shared item: ann1's label on it stays as it was
    shared = two.get("/api/next").json()["item"]
    assert shared["overlap"]
    assert two.post(f"/api/items/{shared['id']}/label", json={"choice": "B"}).status_code == 200
    assert two.post(f"/api/items/{shared['id']}/label", json={"choice": "tie"}).status_code == 200   # own change
    assert one.get(f"/api/items/{shared['id']}").json()["label"] == "A"
    assert two.get(f"/api/items/{shared['id']}").json()["label"] == "tie"
    assert [lab["item_id"] for lab in two.get("/api/labels").json()["labels"]] == [shared["id"]]
    assert len(one.get("/api/labels").json()["labels"]) == 5
    assert two.post(f"/api/items/{shared['id']}/label", json={"choice": "C"}).status_code == 422
    # the admin view and export are for admin tokens only
    assert one.get("/admin").status_code == 403 and one.get("/admin/export.jsonl").status_code == 403
    admin = httpx.Client(base_url=server.base_url, headers=bearer(tokens["boss"]))
    page = admin.get("/admin")
    assert page.status_code == 200 and "ann1" in page.text and "0.500" in page.text   # one shared item: A vs tie
    assert len(admin.get("/admin/export.jsonl").text.splitlines()) == 6
    assert admin.get("/admin/export.csv").text.startswith("item_id,annotator,prompt_id,prompt,system_a,system_b,"
                                                          "shown_left,choice,created")
    rows = conn.execute("SELECT n.name, COUNT(*) FROM labels l JOIN annotators n ON n.id = l.annotator_id"
                        " GROUP BY n.name ORDER BY n.name").fetchall()
    assert [tuple(r) for r in rows] == [("ann1", 5), ("ann2", 1)]


def annotate_until_done(base_url: str, token: str, limit: int, acked: list | None = None,
                        stop: threading.Event | None = None) -> int:
    """One annotator working through their queue over HTTP; returns the number of acknowledged labels."""
    n = 0
    with httpx.Client(base_url=base_url, headers=bearer(token), timeout=60.0) as client:
        try:
            item = client.get("/api/next").json()["item"]
        except httpx.TransportError:
            return 0
        while item is not None and n < limit and not (stop and stop.is_set()):
            choice = ("A", "B", "tie")[item["id"] % 3]
            try:
                response = client.post(f"/api/items/{item['id']}/label", json={"choice": choice})
                body = response.json()
            except (httpx.TransportError, ValueError):
                break                                  # the server was killed: stop, keep what was acked
            if response.status_code != 200 or not body["ok"]:
                break
            n += 1
            if acked is not None:
                acked.append((token, item["id"], choice))
            item = body["next"]
    return n


def test_twenty_concurrent_annotators_lose_no_label(tmp_path) -> None:
    """Locking, not fsync, is under test here: NORMAL keeps it fast; the SIGKILL test below runs FULL."""
    names = [f"ann{i:02d}" for i in range(20)]
    path, tokens = make_store(tmp_path, n_items=430, overlap=30, annotators=names)   # 30 shared + 400/20 each
    server = Server(path, synchronous="NORMAL").start()
    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(20) as pool:
            counts = list(pool.map(lambda n: annotate_until_done(server.base_url, tokens[n], 1000), names))
        elapsed = time.perf_counter() - start
        print(f"1000 labels from 20 concurrent annotators in {elapsed:.1f}s")
        assert counts == [50] * 20
        with httpx.Client(base_url=server.base_url, headers=bearer(tokens["ann00"])) as client:
            assert client.get("/api/next").json()["item"] is None
    finally:
        server.stop()
    conn = db.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == 1000
    assert conn.execute("SELECT COUNT(DISTINCT annotator_id || ':' || item_id) FROM labels").fetchone()[0] == 1000
    per_item = conn.execute("SELECT i.overlap, COUNT(*) FROM labels l JOIN items i ON i.id = l.item_id"
                            " GROUP BY l.item_id").fetchall()
    assert sorted({(r[0], r[1]) for r in per_item}) == [(0, 1), (1, 20)]   # rest labelled once, shared by all
    assert conn.execute("SELECT COUNT(*) FROM assignments").fetchone()[0] == 400


def test_sigkill_mid_run_loses_no_acknowledged_label(tmp_path) -> None:
    names = [f"ann{i}" for i in range(4)]
    path, tokens = make_store(tmp_path, n_items=400, overlap=0, annotators=names)
    server = Server(path).start()
    acked: list[tuple[str, int, str]] = []
    stop = threading.Event()
    threads = [threading.Thread(target=annotate_until_done, args=(server.base_url, tokens[n], 100, acked, stop))
               for n in names]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acked) < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()                                      # mid-run: requests are in flight
    n_acked_at_kill = len(acked)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert n_acked_at_kill >= 60 and len(acked) < 400
    server.start()                                     # restart on the same store
    try:
        for name in names:
            with httpx.Client(base_url=server.base_url, headers=bearer(tokens[name])) as client:
                stored = {(lab["item_id"], lab["choice"]) for lab in client.get("/api/labels").json()["labels"]}
            mine = {(item, choice) for token, item, choice in acked if token == tokens[name]}
            assert mine <= stored, f"{name} lost {len(mine - stored)} acknowledged label(s)"
    finally:
        server.stop()
