"""The admin view's numbers: progress, position bias, attention-check pass rate, time, agreement.

Agreement (tie-discounted accuracy and Cohen's κ) comes from `lima.analysis.agreement`, the one
implementation the paper's tables use, fed with the same rows as the `labels` export; the app keeps no copy.
"""

from __future__ import annotations

import math
import sqlite3
import statistics
from typing import Any

from lima.analysis.agreement import agreement_table
from lima.annotate.export import export_rows
from lima.annotate.queue import DEFAULT_CLAIM_TTL, open_claims, progress
from lima.annotate.store import Annotator


def position_bias(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Per annotator, on pairwise study items: how often the left (A) response won among decisive labels.

    0.5 is no bias; the displayed side is random per item, so a share far from 0.5 over many labels is the
    annotator's, not the systems'.
    """
    rows = conn.execute(
        "SELECT n.name, l.shown_choice, COUNT(*) AS k FROM labels l JOIN items i ON i.id = l.item_id"
        " JOIN annotators n ON n.id = l.annotator_id WHERE i.task = 'pairwise' AND i.gold IS NULL"
        " GROUP BY n.name, l.shown_choice").fetchall()
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        out.setdefault(r["name"], {"A": 0, "B": 0, "tie": 0})[r["shown_choice"]] = r["k"]
    for counts in out.values():
        decisive = counts["A"] + counts["B"]
        counts["left_share"] = counts["A"] / decisive if decisive else None
    return out


def gold_pass_rates(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Per annotator: attention checks answered, and the share answered as known."""
    out: dict[str, dict[str, Any]] = {}
    for row in export_rows(conn, "gold"):
        entry = out.setdefault(row["annotator"], {"n": 0, "passed": 0})
        entry["n"] += 1
        entry["passed"] += row["correct"]
    for entry in out.values():
        entry["rate"] = entry["passed"] / entry["n"]
    return out


def median_seconds(conn: sqlite3.Connection) -> dict[str, float]:
    per: dict[str, list[float]] = {}
    for r in conn.execute("SELECT n.name, l.seconds FROM labels l JOIN annotators n ON n.id = l.annotator_id"
                          " WHERE l.seconds IS NOT NULL"):
        per.setdefault(r["name"], []).append(float(r["seconds"]))
    return {name: statistics.median(values) for name, values in per.items()}


def annotator_summary(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """One row per annotator for the admin table."""
    bias, gold, secs = position_bias(conn), gold_pass_rates(conn), median_seconds(conn)
    flags = dict(conn.execute("SELECT n.name, COUNT(*) FROM flags f JOIN annotators n ON n.id = f.annotator_id"
                              " GROUP BY n.name").fetchall())
    out = []
    for row in conn.execute("SELECT id, name, admin, revoked, guidelines_seen FROM annotators ORDER BY name"):
        who = Annotator(row["id"], row["name"], bool(row["admin"]))
        last = conn.execute("SELECT MAX(updated) FROM labels WHERE annotator_id = ?", (who.id,)).fetchone()[0]
        out.append({"name": who.name, "admin": who.admin, "revoked": row["revoked"], **progress(conn, who),
                    "last": last, "bias": bias.get(who.name), "gold": gold.get(who.name),
                    "median_seconds": secs.get(who.name), "flags": flags.get(who.name, 0)})
    return out


def agreement(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], float | None]:
    """Pairwise agreement rows (analysis' table) and the tie-discounted accuracy weighted by shared items."""
    pairs = agreement_table(export_rows(conn, "labels"))
    total = sum(p["n"] for p in pairs)
    overall = sum(p["tie_discounted_accuracy"] * p["n"] for p in pairs) / total if total else None
    return pairs, overall


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for the page; NaN (e.g. κ with a single label category) and None show as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def admin_context(conn: sqlite3.Connection, claim_ttl: float = DEFAULT_CLAIM_TTL) -> dict[str, Any]:
    pairs, overall = agreement(conn)
    counts = {task: n for task, n in conn.execute("SELECT task, COUNT(*) FROM items GROUP BY task")}
    return {"people": annotator_summary(conn), "pairs": pairs, "overall": overall, "claims": open_claims(conn, claim_ttl),
            "n_items": sum(counts.values()), "tasks": counts,
            "n_labels": conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0],
            "flags": export_rows(conn, "flags"),
            "active": [r["name"] for r in conn.execute("SELECT name FROM annotators WHERE admin = 0 AND revoked IS NULL"
                                                       " ORDER BY name")]}
