"""Annotators, their secret links and browser sessions, and the study guidelines they confirm.

A link carries the annotator's token once (`/start?token=...`); the browser then holds only a random session
id in a cookie, so the token never travels again. Revoking an annotator ends the link and every session;
reissuing gives a new link for the same identity (labels, claims and history stay theirs).
"""

from __future__ import annotations

import secrets
import sqlite3
from importlib import resources
from typing import Any

from lima.annotate.store import Annotator, get_setting, hash_token, now, write_tx

_ANNOTATOR = "SELECT id, name, admin, guidelines_seen FROM annotators"


def _annotator(row: sqlite3.Row | None) -> Annotator | None:
    return Annotator(row["id"], row["name"], bool(row["admin"]), int(row["guidelines_seen"])) if row else None


def add_annotator(conn: sqlite3.Connection, name: str, admin: bool = False) -> str:
    """Create an annotator and return their secret token (shown once; only its hash is kept)."""
    name = name.strip()
    if not name:
        raise ValueError("an annotator needs a non-empty name")
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
    return _annotator(conn.execute(f"{_ANNOTATOR} WHERE token_hash = ? AND revoked IS NULL",
                                   (hash_token(token),)).fetchone())


def annotator_by_name(conn: sqlite3.Connection, name: str) -> Annotator | None:
    return _annotator(conn.execute(f"{_ANNOTATOR} WHERE name = ?", (name,)).fetchone())


def new_session(conn: sqlite3.Connection, annotator: Annotator) -> str:
    """A fresh session id for the cookie; only its hash is stored."""
    session = secrets.token_urlsafe(32)
    with write_tx(conn):
        conn.execute("INSERT INTO sessions (id_hash, annotator_id, created) VALUES (?,?,?)",
                     (hash_token(session), annotator.id, now()))
    return session


def annotator_for_session(conn: sqlite3.Connection, session: str | None) -> Annotator | None:
    if not session:
        return None
    return _annotator(conn.execute(
        "SELECT n.id, n.name, n.admin, n.guidelines_seen FROM sessions s JOIN annotators n ON n.id = s.annotator_id"
        " WHERE s.id_hash = ? AND n.revoked IS NULL", (hash_token(session),)).fetchone())


def end_session(conn: sqlite3.Connection, session: str) -> None:
    with write_tx(conn):
        conn.execute("DELETE FROM sessions WHERE id_hash = ?", (hash_token(session),))


def _require(conn: sqlite3.Connection, name: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM annotators WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise ValueError(f"no annotator named {name!r}")
    return row


def reissue(conn: sqlite3.Connection, name: str) -> str:
    """A new link for the same identity: the old token and every open session stop working, nothing else changes.

    A revoked annotator is reinstated by this (their labels were never removed).
    """
    token = secrets.token_urlsafe(24)
    with write_tx(conn):
        row = _require(conn, name)
        conn.execute("UPDATE annotators SET token_hash = ?, revoked = NULL WHERE id = ?", (hash_token(token), row["id"]))
        conn.execute("DELETE FROM sessions WHERE annotator_id = ?", (row["id"],))
    return token


def revoke(conn: sqlite3.Connection, name: str) -> int:
    """End the annotator's link and sessions and release their unfinished claims; returns claims released.

    Their labels stay in the store and the export (they were given in good faith); an admin who wants them out
    filters on the annotator column.
    """
    with write_tx(conn):
        row = _require(conn, name)
        conn.execute("UPDATE annotators SET revoked = ? WHERE id = ?", (now(), row["id"]))
        conn.execute("DELETE FROM sessions WHERE annotator_id = ?", (row["id"],))
        released = conn.execute(
            "DELETE FROM assignments WHERE annotator_id = ? AND NOT EXISTS (SELECT 1 FROM labels l WHERE"
            " l.item_id = assignments.item_id AND l.annotator_id = assignments.annotator_id) AND NOT EXISTS"
            " (SELECT 1 FROM flags f WHERE f.item_id = assignments.item_id"
            " AND f.annotator_id = assignments.annotator_id)", (row["id"],)).rowcount
    return released


def list_annotators(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT id, name, admin, created, revoked FROM annotators ORDER BY name").fetchall()
    return [dict(r) | {"admin": bool(r["admin"])} for r in rows]


# ---- guidelines ----------------------------------------------------------------------------------------

def default_guidelines() -> str:
    return (resources.files("lima") / "resources" / "annotate" / "guidelines.md").read_text(encoding="utf-8")


def guidelines(conn: sqlite3.Connection) -> tuple[str, int]:
    """(Markdown text, version); version 1 is the shipped text until the organiser edits it."""
    text = get_setting(conn, "guidelines")
    version = int(get_setting(conn, "guidelines_version") or 1)
    return (text if text is not None else default_guidelines()), version


def set_guidelines(conn: sqlite3.Connection, text: str) -> int:
    """Replace the guidelines; the version goes up so every annotator sees the new text before their next item."""
    if not text.strip():
        raise ValueError("the guidelines must not be empty")
    with write_tx(conn):
        _, version = guidelines(conn)
        conn.executemany("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET"
                         " value = excluded.value", [("guidelines", text), ("guidelines_version", str(version + 1))])
    return version + 1


def confirm_guidelines(conn: sqlite3.Connection, annotator: Annotator, version: int) -> None:
    with write_tx(conn):
        conn.execute("UPDATE annotators SET guidelines_seen = ? WHERE id = ?", (version, annotator.id))
