"""Who sees which item next: the shared (overlap) set for everyone, the rest claimed one item at a time.

Claims are what keeps non-overlap items labelled exactly once, so they must not leak:
- skipping never claims: it records the skip and hands an unfinished claim of the skipped item back;
- a claim nobody finished expires after `claim_ttl` seconds and another annotator may take it over (even
  one whose share is full: an abandoned item needs someone);
- admins never claim (their labels on shared items are kept, marked with their role in the export);
- an admin can release or reassign any unfinished claim.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from lima.annotate.store import Annotator, get_item, now, stamp_before, valid_id, write_tx

DEFAULT_CLAIM_TTL = 2 * 3600.0

# "handled" = labelled or flagged by this annotator: either way the item is done for them
_HANDLED = ("(EXISTS (SELECT 1 FROM labels l WHERE l.item_id = {i} AND l.annotator_id = {a})"
            " OR EXISTS (SELECT 1 FROM flags f WHERE f.item_id = {i} AND f.annotator_id = {a}))")
_SKIPPED = "EXISTS (SELECT 1 FROM skips s WHERE s.item_id = {i} AND s.annotator_id = {a})"


def handled(item: str, who: str) -> str:
    return _HANDLED.format(i=item, a=who)


def quota(conn: sqlite3.Connection) -> int:
    """Non-overlap items each annotator may claim: the rest split evenly over the active non-admin annotators."""
    rest = conn.execute("SELECT COUNT(*) FROM items WHERE overlap = 0").fetchone()[0]
    people = conn.execute("SELECT COUNT(*) FROM annotators WHERE admin = 0 AND revoked IS NULL").fetchone()[0]
    return math.ceil(rest / max(people, 1))


def is_visible(conn: sqlite3.Connection, annotator: Annotator, item_id: int) -> bool:
    """An annotator may see an item of the overlap set or one assigned to them, nothing else."""
    if not valid_id(item_id):
        return False
    row = conn.execute(
        "SELECT i.overlap, a.annotator_id FROM items i LEFT JOIN assignments a ON a.item_id = i.id"
        " WHERE i.id = ?", (item_id,)).fetchone()
    return bool(row) and (row["overlap"] == 1 or row["annotator_id"] == annotator.id)


def _first(conn: sqlite3.Connection, where: str, params: tuple[Any, ...], order: str) -> int | None:
    row = conn.execute(f"SELECT i.id FROM items i LEFT JOIN assignments a ON a.item_id = i.id WHERE {where}"
                       f" ORDER BY {order} LIMIT 1", params).fetchone()
    return int(row[0]) if row else None


def next_item(conn: sqlite3.Connection, annotator: Annotator, claim_ttl: float = DEFAULT_CLAIM_TTL) -> int | None:
    """The next item this annotator has not handled, claiming at most one new item.

    Order: shared items not skipped, then own unfinished claims, then a new claim (an unclaimed item, or one
    whose claim expired; items this annotator skipped come last), then skipped shared items again.
    """
    me = annotator.id
    unhandled = f"NOT {handled('i.id', '?')}"
    fresh = _first(conn, f"i.overlap = 1 AND {unhandled} AND NOT {_SKIPPED.format(i='i.id', a='?')}",
                   (me, me, me), "i.position")
    if fresh is not None:
        return fresh
    own = _first(conn, f"i.overlap = 0 AND a.annotator_id = ? AND {unhandled}", (me, me, me), "i.position")
    if own is not None:
        return own
    if not annotator.admin:
        claimed = claim(conn, annotator, claim_ttl)
        if claimed is not None:
            return claimed
    skipped = conn.execute(
        f"SELECT i.id FROM items i JOIN skips s ON s.item_id = i.id AND s.annotator_id = ? WHERE i.overlap = 1"
        f" AND {unhandled} ORDER BY s.created, i.position LIMIT 1", (me, me, me)).fetchone()
    return int(skipped[0]) if skipped else None


def claim(conn: sqlite3.Connection, annotator: Annotator, claim_ttl: float) -> int | None:
    """Claim one non-overlap item in its own transaction: an unclaimed one while under the quota (fresh items
    first), else one whose claim expired unfinished."""
    me = annotator.id
    cutoff = stamp_before(claim_ttl)
    with write_tx(conn):
        count = conn.execute("SELECT COUNT(*) FROM assignments WHERE annotator_id = ?", (me,)).fetchone()[0]
        # within the quota: unclaimed or abandoned items; past it, only abandoned ones (they need someone)
        unclaimed = "a.item_id IS NULL OR " if count < quota(conn) else ""
        free = conn.execute(
            "SELECT i.id FROM items i LEFT JOIN assignments a ON a.item_id = i.id WHERE i.overlap = 0 AND"
            f" ({unclaimed}(a.created < ? AND a.annotator_id != ? AND NOT {handled('i.id', 'a.annotator_id')}))"
            f" AND NOT {handled('i.id', '?')}"
            f" ORDER BY {_SKIPPED.format(i='i.id', a='?')}, a.item_id IS NOT NULL, i.position LIMIT 1",
            (cutoff, me, me, me, me)).fetchone()
        if free is None:
            return None
        conn.execute("INSERT INTO assignments (item_id, annotator_id, created) VALUES (?,?,?) ON CONFLICT (item_id)"
                     " DO UPDATE SET annotator_id = excluded.annotator_id, created = excluded.created",
                     (free[0], me, now()))
    return int(free[0])


def skip(conn: sqlite3.Connection, annotator: Annotator, item_id: int) -> None:
    """Put the item at the end of this annotator's queue; an unfinished claim of it goes back to the pool."""
    with write_tx(conn):
        conn.execute("INSERT INTO skips (annotator_id, item_id, created) VALUES (?,?,?) ON CONFLICT"
                     " (annotator_id, item_id) DO UPDATE SET created = excluded.created", (annotator.id, item_id, now()))
        conn.execute(f"DELETE FROM assignments WHERE item_id = ? AND annotator_id = ? AND NOT {handled('?', '?')}",
                     (item_id, annotator.id, item_id, annotator.id, item_id, annotator.id))


def record_view(conn: sqlite3.Connection, annotator: Annotator, item_id: int) -> None:
    """Remember when the item was shown, so the label can carry the time spent on it."""
    with write_tx(conn):
        conn.execute("INSERT INTO views (annotator_id, item_id, shown) VALUES (?,?,?) ON CONFLICT"
                     " (annotator_id, item_id) DO UPDATE SET shown = excluded.shown", (annotator.id, item_id, now()))


def open_claims(conn: sqlite3.Connection, claim_ttl: float = DEFAULT_CLAIM_TTL) -> list[dict[str, Any]]:
    """Unfinished claims (claimed, neither labelled nor flagged by the claimant), oldest first."""
    cutoff = stamp_before(claim_ttl)
    rows = conn.execute(
        "SELECT a.item_id, n.name AS annotator, a.created, i.prompt_id FROM assignments a"
        " JOIN annotators n ON n.id = a.annotator_id JOIN items i ON i.id = a.item_id"
        f" WHERE NOT {handled('a.item_id', 'a.annotator_id')} ORDER BY a.created").fetchall()
    return [dict(r) | {"expired": r["created"] < cutoff} for r in rows]


def _open_claim(conn: sqlite3.Connection, item_id: int) -> sqlite3.Row:
    row = conn.execute(f"SELECT a.* FROM assignments a WHERE a.item_id = ? AND NOT {handled('a.item_id', 'a.annotator_id')}",
                       (item_id,)).fetchone() if valid_id(item_id) else None
    if row is None:
        raise LookupError(f"item {item_id} has no unfinished claim")
    return row


def release(conn: sqlite3.Connection, item_id: int) -> str:
    """Admin: hand an unfinished claim back to the pool; returns the former claimant's name."""
    with write_tx(conn):
        row = _open_claim(conn, item_id)
        name = conn.execute("SELECT name FROM annotators WHERE id = ?", (row["annotator_id"],)).fetchone()[0]
        conn.execute("DELETE FROM assignments WHERE item_id = ?", (item_id,))
    return str(name)


def reassign(conn: sqlite3.Connection, item_id: int, name: str) -> None:
    """Admin: move an unfinished claim to another active, non-admin annotator (it restarts their clock)."""
    with write_tx(conn):
        _open_claim(conn, item_id)
        target = conn.execute("SELECT id, admin, revoked FROM annotators WHERE name = ?", (name,)).fetchone()
        if target is None or target["admin"] or target["revoked"]:
            raise ValueError(f"{name!r} is not an active non-admin annotator")
        if conn.execute(f"SELECT {handled('?', '?')}", (item_id, target["id"], item_id, target["id"])).fetchone()[0]:
            raise ValueError(f"{name!r} already labelled or flagged item {item_id}")
        conn.execute("UPDATE assignments SET annotator_id = ?, created = ? WHERE item_id = ?",
                     (target["id"], now(), item_id))


def progress(conn: sqlite3.Connection, annotator: Annotator) -> dict[str, int]:
    """Done and target counts: the overlap set plus this annotator's share of the rest (none for admins)."""
    me = annotator.id
    n_overlap = conn.execute("SELECT COUNT(*) FROM items WHERE overlap = 1").fetchone()[0]
    done = conn.execute(f"SELECT COUNT(*) FROM items i WHERE {handled('i.id', '?')}", (me, me)).fetchone()[0]
    claimed = conn.execute("SELECT COUNT(*) FROM assignments WHERE annotator_id = ?", (me,)).fetchone()[0]
    unclaimed = conn.execute("SELECT COUNT(*) FROM items i WHERE i.overlap = 0"
                             " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id)").fetchone()[0]
    share = claimed if annotator.admin else claimed + min(max(quota(conn) - claimed, 0), unclaimed)
    return {"done": done, "total": n_overlap + share, "overlap": n_overlap, "claimed": claimed}


__all__ = ["DEFAULT_CLAIM_TTL", "claim", "get_item", "is_visible", "next_item", "open_claims", "progress", "quota",
           "reassign", "record_view", "release", "skip"]
