"""The annotation store's core: one SQLite file in WAL mode, the single source of truth for human labels.

Why SQLite/WAL: many annotators write at once (one writer at a time, readers never block), and a label is
durable the moment its own transaction commits (`synchronous=FULL`), so a crashed or killed server loses
nothing it has acknowledged. Every write opens `BEGIN IMMEDIATE` so two writers never deadlock on a lock
upgrade; `busy_timeout` makes them queue instead of failing.

Pairwise choices are stored twice on purpose: in terms of the underlying systems (`choice` a|b|tie relative
to `system_a`/`system_b`, what the statistics read) and in terms of what the annotator saw (`shown_choice`
A|B|tie, A being the left response), so position bias can be audited.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 2
TASKS = ("pairwise", "absolute", "per_turn")
RATINGS = ("fail", "pass", "excellent")
FLAGS = ("broken", "unsafe", "cannot_judge")
MAX_ID = 2**63 - 1            # SQLite's INTEGER range: a larger id can name no row (and must not reach SQLite)

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id          INTEGER PRIMARY KEY,
    task        TEXT NOT NULL DEFAULT 'pairwise' CHECK (task IN ('pairwise', 'absolute', 'per_turn')),
    item_key    TEXT NOT NULL UNIQUE,           -- task + prompt_id + sorted systems: a swapped pair is the same item
    prompt_id   TEXT NOT NULL,
    prompt      TEXT NOT NULL,                  -- plain text (a conversation rendered as "User: ..." turns)
    messages    TEXT,                           -- JSON message list of a multi-turn prompt / rated conversation
    system_a    TEXT NOT NULL,
    response_a  TEXT NOT NULL,
    system_b    TEXT,                           -- NULL for the single-response tasks
    response_b  TEXT,
    shown_left  TEXT NOT NULL CHECK (shown_left IN ('a', 'b')),   -- which system is displayed as "A" (left)
    position    INTEGER NOT NULL,               -- randomised presentation order (recorded)
    overlap     INTEGER NOT NULL CHECK (overlap IN (0, 1)),      -- 1: every annotator labels it (agreement)
    gold        TEXT,                           -- known answer of an attention check (a|b|tie or a rating)
    seed        INTEGER,
    created     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS annotators (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    token_hash  TEXT NOT NULL UNIQUE,
    admin       INTEGER NOT NULL DEFAULT 0,
    created     TEXT NOT NULL,
    revoked     TEXT,                           -- set: the link and every session stop working
    guidelines_seen INTEGER NOT NULL DEFAULT 0  -- the guidelines version this annotator last confirmed
);
CREATE TABLE IF NOT EXISTS sessions (            -- browser sessions: the cookie holds a session id, not the token
    id_hash      TEXT PRIMARY KEY,
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    created      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (         -- non-overlap items, claimed one at a time, expiring unless done
    item_id      INTEGER PRIMARY KEY REFERENCES items(id),
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    created      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    id           INTEGER PRIMARY KEY,
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    item_id      INTEGER NOT NULL REFERENCES items(id),
    choice       TEXT NOT NULL,                 -- a|b|tie, a rating, or a JSON list of per-turn ratings
    shown_choice TEXT NOT NULL,                 -- as displayed: A|B|tie (pairwise), else = choice
    shown_left   TEXT NOT NULL CHECK (shown_left IN ('a', 'b')),
    seconds      REAL,                          -- from the item being shown to this label
    created      TEXT NOT NULL,
    updated      TEXT NOT NULL,
    UNIQUE (annotator_id, item_id)
);
CREATE TABLE IF NOT EXISTS label_history (       -- every replaced label, so a relabel keeps the earlier one
    id           INTEGER PRIMARY KEY,
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    item_id      INTEGER NOT NULL REFERENCES items(id),
    choice       TEXT NOT NULL,
    shown_choice TEXT NOT NULL,
    seconds      REAL,
    labelled     TEXT NOT NULL,                 -- when that earlier label was given
    replaced     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS flags (
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    item_id      INTEGER NOT NULL REFERENCES items(id),
    reason       TEXT NOT NULL CHECK (reason IN ('broken', 'unsafe', 'cannot_judge')),
    comment      TEXT NOT NULL DEFAULT '',
    created      TEXT NOT NULL,
    PRIMARY KEY (annotator_id, item_id)
);
CREATE TABLE IF NOT EXISTS skips (
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    item_id      INTEGER NOT NULL REFERENCES items(id),
    created      TEXT NOT NULL,
    PRIMARY KEY (annotator_id, item_id)
);
CREATE TABLE IF NOT EXISTS views (               -- when an item was last shown to an annotator (time per item)
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    item_id      INTEGER NOT NULL REFERENCES items(id),
    shown        TEXT NOT NULL,
    PRIMARY KEY (annotator_id, item_id)
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS labels_item ON labels(item_id);
CREATE INDEX IF NOT EXISTS assignments_annotator ON assignments(annotator_id);
CREATE INDEX IF NOT EXISTS items_order ON items(overlap, position);
"""

SYNCHRONOUS = ("FULL", "NORMAL")


class SchemaError(RuntimeError):
    """The file is a store of an older, incompatible layout."""


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def seconds_since(stamp: str) -> float:
    return (_dt.datetime.now(_dt.UTC) - _dt.datetime.fromisoformat(stamp)).total_seconds()


def stamp_before(seconds: float) -> str:
    """The timestamp `seconds` ago, in the same sortable ISO format as `now()`."""
    moment = _dt.datetime.now(_dt.UTC) - _dt.timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds")


def hash_token(token: str) -> str:
    """Only the hash is stored, so a copied database file does not hand out working links or sessions."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def valid_id(item_id: int) -> bool:
    """Ids outside SQLite's integer range name no item; checked before any query (else OverflowError → 500)."""
    return 1 <= item_id <= MAX_ID


def connect(path: str | Path, init: bool = True, synchronous: str = "FULL") -> sqlite3.Connection:
    """Open the store; `init` creates the schema (and refuses a store of the older layout).

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
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        has_items = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='items'").fetchone()
        if has_items and version < SCHEMA_VERSION:
            conn.close()
            raise SchemaError(f"{path}: a store of the older annotation layout (version {version}); export its "
                              "labels with that version and load the pairs into a new store")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
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
    guidelines_seen: int = 0


def get_setting(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def get_item(conn: sqlite3.Connection, item_id: int) -> sqlite3.Row | None:
    if not valid_id(item_id):
        return None
    return conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
