"""Labels (one current label per annotator × item, earlier ones kept in `label_history`) and flags.

Three task types share the table: `pairwise` (A / B / neither, stored relative to the systems), `absolute`
(Fail / Pass / Excellent of one response, the paper's Fig. 3) and `per_turn` (one rating per assistant turn
of a conversation, Fig. 7; stored as a JSON list). The annotator is always the caller's, never a request
field, so no request can name another annotator's label.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from lima.annotate.queue import is_visible
from lima.annotate.store import FLAGS, RATINGS, Annotator, get_item, now, seconds_since, write_tx

SHOWN_CHOICES = ("A", "B", "tie")
MAX_COMMENT = 2000


def assistant_turns(item: sqlite3.Row) -> int:
    """How many assistant turns a per-turn item asks ratings for."""
    return sum(1 for m in json.loads(item["messages"] or "[]") if m.get("role") == "assistant")


def _decode(item: sqlite3.Row, value: str | Sequence[str]) -> tuple[str, str]:
    """(choice, shown_choice) for the item's task, or ValueError naming what is allowed."""
    task = item["task"]
    if task == "pairwise":
        if value not in SHOWN_CHOICES:
            raise ValueError(f"choice must be one of {SHOWN_CHOICES}, got {value!r}")
        left = item["shown_left"]
        choice = {"A": left, "B": "b" if left == "a" else "a", "tie": "tie"}[str(value)]
        return choice, str(value)
    if task == "absolute":
        value = str(value).lower() if isinstance(value, str) else value
        if value not in RATINGS:
            raise ValueError(f"rating must be one of {RATINGS}, got {value!r}")
        return str(value), str(value)
    ratings = [value] if isinstance(value, str) else list(value)
    want = assistant_turns(item)
    if len(ratings) != want or any(r not in RATINGS for r in ratings):
        raise ValueError(f"this conversation needs {want} rating(s), each one of {RATINGS}; got {ratings!r}")
    encoded = json.dumps(ratings)
    return encoded, encoded


def set_label(conn: sqlite3.Connection, annotator: Annotator, item_id: int,
              value: str | Sequence[str]) -> dict[str, Any]:
    """Record (or change) this annotator's label in one transaction; a replaced label goes to the history.

    `seconds` is the time since the item was last shown to this annotator (None if it never was, e.g. a
    script that labels without fetching).
    """
    with write_tx(conn):
        item = get_item(conn, item_id)
        if item is None or not is_visible(conn, annotator, item_id):
            raise PermissionError(f"item {item_id} is not assigned to {annotator.name}")
        choice, shown = _decode(item, value)
        stamp = now()
        view = conn.execute("SELECT shown FROM views WHERE annotator_id = ? AND item_id = ?",
                            (annotator.id, item_id)).fetchone()
        seconds = round(seconds_since(view[0]), 3) if view else None
        old = conn.execute("SELECT * FROM labels WHERE annotator_id = ? AND item_id = ?",
                           (annotator.id, item_id)).fetchone()
        if old is not None:
            conn.execute("INSERT INTO label_history (annotator_id, item_id, choice, shown_choice, seconds, labelled,"
                         " replaced) VALUES (?,?,?,?,?,?,?)", (annotator.id, item_id, old["choice"],
                                                               old["shown_choice"], old["seconds"], old["updated"],
                                                               stamp))
        conn.execute(
            "INSERT INTO labels (annotator_id, item_id, choice, shown_choice, shown_left, seconds, created, updated)"
            " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (annotator_id, item_id) DO UPDATE SET choice = excluded.choice,"
            " shown_choice = excluded.shown_choice, seconds = excluded.seconds, updated = excluded.updated",
            (annotator.id, item_id, choice, shown, item["shown_left"], seconds, stamp, stamp))
    return {"item_id": item_id, "choice": choice, "shown_choice": shown, "shown_left": item["shown_left"],
            "seconds": seconds}


def set_flag(conn: sqlite3.Connection, annotator: Annotator, item_id: int, reason: str,
             comment: str = "") -> dict[str, Any]:
    """Flag an item (broken / unsafe / cannot judge) with an optional comment; it counts as done for them."""
    if reason not in FLAGS:
        raise ValueError(f"flag must be one of {FLAGS}, got {reason!r}")
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise ValueError(f"the comment is {len(comment)} characters; at most {MAX_COMMENT}")
    with write_tx(conn):
        if get_item(conn, item_id) is None or not is_visible(conn, annotator, item_id):
            raise PermissionError(f"item {item_id} is not assigned to {annotator.name}")
        conn.execute("INSERT INTO flags (annotator_id, item_id, reason, comment, created) VALUES (?,?,?,?,?)"
                     " ON CONFLICT (annotator_id, item_id) DO UPDATE SET reason = excluded.reason,"
                     " comment = excluded.comment, created = excluded.created",
                     (annotator.id, item_id, reason, comment, now()))
    return {"item_id": item_id, "flag": reason, "comment": comment}


def own_flag(conn: sqlite3.Connection, annotator: Annotator, item_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM flags WHERE annotator_id = ? AND item_id = ?",
                        (annotator.id, item_id)).fetchone()


def own_label(conn: sqlite3.Connection, annotator: Annotator, item_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM labels WHERE annotator_id = ? AND item_id = ?",
                        (annotator.id, item_id)).fetchone()


def own_labels(conn: sqlite3.Connection, annotator: Annotator) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT l.*, i.prompt, i.prompt_id, i.position, i.task FROM labels l JOIN items i ON i.id = l.item_id"
        " WHERE l.annotator_id = ? ORDER BY i.overlap DESC, i.position", (annotator.id,)).fetchall()


def history(conn: sqlite3.Connection, annotator: Annotator, item_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM label_history WHERE annotator_id = ? AND item_id = ? ORDER BY id",
                        (annotator.id, item_id)).fetchall()
