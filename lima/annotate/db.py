"""The annotation store: one SQLite file in WAL mode that is the single source of truth for human labels.

Why SQLite/WAL: many annotators write at once (one writer at a time, readers never block), and a label is
durable the moment its own transaction commits (`synchronous=FULL`), so a crashed or killed server loses
nothing it has acknowledged. Every write opens `BEGIN IMMEDIATE` so two writers never deadlock on a lock
upgrade; `busy_timeout` makes them queue instead of failing.

Choices are stored twice on purpose: in terms of the underlying systems (`choice` a|b|tie relative to
`system_a`/`system_b`, what the statistics read) and in terms of what the annotator saw (`shown_choice`
A|B|tie, A being the left response), so position bias can be audited later.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import math
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id          INTEGER PRIMARY KEY,
    prompt_id   TEXT NOT NULL,
    prompt      TEXT NOT NULL,
    system_a    TEXT NOT NULL,
    response_a  TEXT NOT NULL,
    system_b    TEXT NOT NULL,
    response_b  TEXT NOT NULL,
    shown_left  TEXT NOT NULL CHECK (shown_left IN ('a', 'b')),   -- which system is displayed as "A" (left)
    position    INTEGER NOT NULL,                                -- randomised presentation order (recorded)
    overlap     INTEGER NOT NULL CHECK (overlap IN (0, 1)),      -- 1: every annotator labels it (agreement)
    seed        INTEGER,
    created     TEXT NOT NULL,
    UNIQUE (prompt_id, system_a, system_b)
);
CREATE TABLE IF NOT EXISTS annotators (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    token_hash  TEXT NOT NULL UNIQUE,
    admin       INTEGER NOT NULL DEFAULT 0,
    created     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (            -- non-overlap items, claimed first come first served
    item_id      INTEGER PRIMARY KEY REFERENCES items(id),
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    created      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    id           INTEGER PRIMARY KEY,
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    item_id      INTEGER NOT NULL REFERENCES items(id),
    choice       TEXT NOT NULL CHECK (choice IN ('a', 'b', 'tie')),
    shown_choice TEXT NOT NULL CHECK (shown_choice IN ('A', 'B', 'tie')),
    shown_left   TEXT NOT NULL CHECK (shown_left IN ('a', 'b')),
    created      TEXT NOT NULL,
    updated      TEXT NOT NULL,
    UNIQUE (annotator_id, item_id)
);
CREATE INDEX IF NOT EXISTS labels_item ON labels(item_id);
CREATE INDEX IF NOT EXISTS assignments_annotator ON assignments(annotator_id);
"""

SHOWN_CHOICES = ("A", "B", "tie")


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def hash_token(token: str) -> str:
    """Only the hash is stored, so a copied database file does not hand out working links."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


SYNCHRONOUS = ("FULL", "NORMAL")


def connect(path: str | Path, init: bool = True, synchronous: str = "FULL") -> sqlite3.Connection:
    """Open the store; `init` creates the schema.

    `synchronous=FULL` (default) fsyncs every commit, so an acknowledged label survives even power loss;
    `NORMAL` still survives any crash or kill of the server process (WAL), not an OS crash, and commits
    about 100x faster on slow disks.
    """
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS}, got {synchronous!r}")
    if init:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=60000")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    if init:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
    return conn


@contextlib.contextmanager
def write_tx(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: all of it commits or none of it does."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@dataclass(frozen=True)
class Annotator:
    id: int
    name: str
    admin: bool


# ---- loading -------------------------------------------------------------------------------------------

def insert_items(conn: sqlite3.Connection, pairs: list[dict[str, Any]], overlap: int, seed: int) -> dict[str, int]:
    """Insert (prompt, response A, response B) pairs in a seeded random order with a random displayed side.

    The first `overlap` items of the shuffled order form the agreement set that every annotator sees. Pairs
    already in the store (same prompt_id and systems) are skipped so that a repeated load is harmless.
    """
    import random

    rng = random.Random(seed)
    order = list(range(len(pairs)))
    rng.shuffle(order)
    sides = [rng.choice("ab") for _ in pairs]
    created = now()
    inserted = skipped = n_overlap = 0
    with write_tx(conn):
        start = conn.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM items").fetchone()[0]
        for rank, index in enumerate(order):
            pair = pairs[index]
            is_overlap = int(rank < overlap)
            cur = conn.execute(
                "INSERT OR IGNORE INTO items (prompt_id, prompt, system_a, response_a, system_b, response_b,"
                " shown_left, position, overlap, seed, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (pair["prompt_id"], pair["prompt"], pair["system_a"], pair["response_a"], pair["system_b"],
                 pair["response_b"], sides[index], start + rank, is_overlap, seed, created))
            if cur.rowcount:
                inserted += 1
                n_overlap += is_overlap
            else:
                skipped += 1
    return {"inserted": inserted, "skipped": skipped, "overlap": n_overlap}


def add_annotator(conn: sqlite3.Connection, name: str, admin: bool = False) -> str:
    """Create an annotator and return their secret token (shown once; only its hash is kept)."""
    token = secrets.token_urlsafe(24)
    with write_tx(conn):
        if conn.execute("SELECT 1 FROM annotators WHERE name = ?", (name,)).fetchone():
            raise ValueError(f"annotator {name!r} already exists")
        conn.execute("INSERT INTO annotators (name, token_hash, admin, created) VALUES (?,?,?,?)",
                     (name, hash_token(token), int(admin), now()))
    return token


def annotator_for_token(conn: sqlite3.Connection, token: str | None) -> Annotator | None:
    if not token:
        return None
    row = conn.execute("SELECT id, name, admin FROM annotators WHERE token_hash = ?",
                       (hash_token(token),)).fetchone()
    return Annotator(row["id"], row["name"], bool(row["admin"])) if row else None


# ---- assignment ----------------------------------------------------------------------------------------

def quota(conn: sqlite3.Connection) -> int:
    """Non-overlap items each annotator may claim: the rest split evenly over the non-admin annotators."""
    rest = conn.execute("SELECT COUNT(*) FROM items WHERE overlap = 0").fetchone()[0]
    people = conn.execute("SELECT COUNT(*) FROM annotators WHERE admin = 0").fetchone()[0]
    return math.ceil(rest / max(people, 1))


def is_visible(conn: sqlite3.Connection, annotator: Annotator, item_id: int) -> bool:
    """An annotator may see an item of the overlap set or one assigned to them, nothing else."""
    row = conn.execute(
        "SELECT i.overlap, a.annotator_id FROM items i LEFT JOIN assignments a ON a.item_id = i.id"
        " WHERE i.id = ?", (item_id,)).fetchone()
    return bool(row) and (row["overlap"] == 1 or row["annotator_id"] == annotator.id)


def next_item(conn: sqlite3.Connection, annotator: Annotator, after: int | None = None) -> int | None:
    """The next item without this annotator's label: overlap set first, then own claims, then a new claim.

    `after` (a position) skips forward past the current item so "next" never returns the same one.
    """
    floor = -1 if after is None else after
    query = (
        "SELECT i.id FROM items i LEFT JOIN assignments a ON a.item_id = i.id"
        " WHERE (i.overlap = 1 OR a.annotator_id = ?) AND i.position > ?"
        " AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.item_id = i.id AND l.annotator_id = ?)"
        " ORDER BY i.overlap DESC, i.position LIMIT 1")
    row = conn.execute(query, (annotator.id, floor, annotator.id)).fetchone()
    if row:
        return int(row[0])
    with write_tx(conn):
        claimed = conn.execute("SELECT COUNT(*) FROM assignments WHERE annotator_id = ?",
                               (annotator.id,)).fetchone()[0]
        if claimed >= quota(conn):
            free = None
        else:
            free = conn.execute(
                "SELECT i.id FROM items i WHERE i.overlap = 0 AND i.position > ?"
                " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id)"
                " ORDER BY i.position LIMIT 1", (floor,)).fetchone()
            if free:
                conn.execute("INSERT INTO assignments (item_id, annotator_id, created) VALUES (?,?,?)",
                             (free[0], annotator.id, now()))
    if free:
        return int(free[0])
    return None if after is None else next_item(conn, annotator, None)


def get_item(conn: sqlite3.Connection, item_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()


# ---- labels --------------------------------------------------------------------------------------------

def set_label(conn: sqlite3.Connection, annotator: Annotator, item_id: int, shown_choice: str) -> dict[str, Any]:
    """Record (or change) this annotator's own label in its own transaction; returns the stored label.

    The unique (annotator, item) key and the annotator taken from the token make a label changeable only by
    its owner: no request can name another annotator's label.
    """
    if shown_choice not in SHOWN_CHOICES:
        raise ValueError(f"choice must be one of {SHOWN_CHOICES}, got {shown_choice!r}")
    with write_tx(conn):
        item = get_item(conn, item_id)
        if item is None or not is_visible(conn, annotator, item_id):
            raise PermissionError(f"item {item_id} is not assigned to {annotator.name}")
        left = item["shown_left"]
        right = "b" if left == "a" else "a"
        choice = {"A": left, "B": right, "tie": "tie"}[shown_choice]
        stamp = now()
        conn.execute(
            "INSERT INTO labels (annotator_id, item_id, choice, shown_choice, shown_left, created, updated)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT (annotator_id, item_id) DO UPDATE SET"
            " choice = excluded.choice, shown_choice = excluded.shown_choice, updated = excluded.updated",
            (annotator.id, item_id, choice, shown_choice, left, stamp, stamp))
    return {"item_id": item_id, "choice": choice, "shown_choice": shown_choice, "shown_left": left}


def own_label(conn: sqlite3.Connection, annotator: Annotator, item_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM labels WHERE annotator_id = ? AND item_id = ?",
                        (annotator.id, item_id)).fetchone()


def own_labels(conn: sqlite3.Connection, annotator: Annotator) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT l.*, i.prompt, i.prompt_id, i.position FROM labels l JOIN items i ON i.id = l.item_id"
        " WHERE l.annotator_id = ? ORDER BY i.overlap DESC, i.position", (annotator.id,)).fetchall()


def progress(conn: sqlite3.Connection, annotator: Annotator) -> dict[str, int]:
    """Done and target counts: the overlap set plus this annotator's share of the rest."""
    n_overlap = conn.execute("SELECT COUNT(*) FROM items WHERE overlap = 1").fetchone()[0]
    done = conn.execute("SELECT COUNT(*) FROM labels WHERE annotator_id = ?", (annotator.id,)).fetchone()[0]
    claimed = conn.execute("SELECT COUNT(*) FROM assignments WHERE annotator_id = ?",
                           (annotator.id,)).fetchone()[0]
    unclaimed = conn.execute(
        "SELECT COUNT(*) FROM items i WHERE i.overlap = 0"
        " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id)").fetchone()[0]
    share = claimed + min(max(quota(conn) - claimed, 0), unclaimed)
    return {"done": done, "total": n_overlap + share, "overlap": n_overlap, "claimed": claimed}


# ---- export and admin ----------------------------------------------------------------------------------

EXPORT_COLUMNS = ["item_id", "annotator", "prompt_id", "prompt", "system_a", "system_b", "shown_left", "choice",
                  "created", "updated", "shown_choice", "overlap"]


def export_rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every label with its item, in the column order analysis code reads (choice relative to system_a/b)."""
    rows = conn.execute(
        "SELECT l.item_id, n.name AS annotator, i.prompt_id, i.prompt, i.system_a, i.system_b, l.shown_left,"
        " l.choice, l.created, l.updated, l.shown_choice, i.overlap FROM labels l"
        " JOIN items i ON i.id = l.item_id JOIN annotators n ON n.id = l.annotator_id"
        " ORDER BY l.item_id, n.name").fetchall()
    return [{col: row[col] for col in EXPORT_COLUMNS} for row in rows]


def annotator_summary(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    people = conn.execute("SELECT id, name, admin FROM annotators ORDER BY name").fetchall()
    out = []
    for row in people:
        who = Annotator(row["id"], row["name"], bool(row["admin"]))
        prog = progress(conn, who)
        last = conn.execute("SELECT MAX(updated) FROM labels WHERE annotator_id = ?", (who.id,)).fetchone()[0]
        out.append({"name": who.name, "admin": who.admin, **prog, "last": last})
    return out


def labels_by_annotator(conn: sqlite3.Connection) -> dict[str, dict[int, str]]:
    result: dict[str, dict[int, str]] = {}
    for row in conn.execute("SELECT n.name, l.item_id, l.choice FROM labels l"
                            " JOIN annotators n ON n.id = l.annotator_id"):
        result.setdefault(row["name"], {})[row["item_id"]] = row["choice"]
    return result
