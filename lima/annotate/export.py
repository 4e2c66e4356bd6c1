"""What leaves the store: label tables for `lima.analysis` and the organiser, as CSV or JSONL.

Tables: `labels` (pairwise, what `python -m lima analyze` reads; attention checks left out), `ratings`
(absolute Fail/Pass/Excellent), `turns` (one row per rated assistant turn), `gold` (attention checks with
the known answer), `flags`, `history` (replaced labels). `texts=True` adds the response texts.

CSV cells are neutralised against formula injection by OWASP's rule: a text cell starting with `=`, `+`,
`-`, `@`, tab or carriage return gets a leading `'` so a spreadsheet shows it as text instead of running it.
JSONL is written verbatim (it is not opened by spreadsheets, and analysis should read it for exact ids).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from typing import Any

EXPORT_COLUMNS = ["item_id", "annotator", "prompt_id", "prompt", "system_a", "system_b", "shown_left", "choice",
                  "created", "updated", "shown_choice", "overlap", "seconds", "flag", "comment", "revisions", "role"]
TEXT_COLUMNS = ["response_a", "response_b"]
TABLES: dict[str, list[str]] = {
    "labels": EXPORT_COLUMNS,
    "ratings": ["item_id", "annotator", "prompt_id", "prompt", "system", "rating", "created", "updated", "overlap",
                "seconds", "flag", "comment", "revisions", "role"],
    "turns": ["item_id", "annotator", "prompt_id", "system", "turn", "rating", "created", "updated", "seconds",
              "role"],
    "gold": ["item_id", "annotator", "prompt_id", "task", "expected", "given", "correct", "updated", "role"],
    "flags": ["item_id", "annotator", "prompt_id", "task", "flag", "comment", "created", "role"],
    "history": ["item_id", "annotator", "prompt_id", "task", "choice", "shown_choice", "seconds", "labelled",
                "replaced"],
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")   # + full-width forms

_LABELS = (
    "SELECT l.item_id, n.name AS annotator, CASE n.admin WHEN 1 THEN 'admin' ELSE 'annotator' END AS role,"
    " i.prompt_id, i.prompt, i.task, i.system_a, i.system_b, i.response_a, i.response_b, i.gold, l.shown_left,"
    " l.choice, l.shown_choice, l.created, l.updated, i.overlap, l.seconds, f.reason AS flag,"
    " COALESCE(f.comment, '') AS comment,"
    " (SELECT COUNT(*) FROM label_history h WHERE h.annotator_id = l.annotator_id AND h.item_id = l.item_id)"
    " AS revisions FROM labels l JOIN items i ON i.id = l.item_id JOIN annotators n ON n.id = l.annotator_id"
    " LEFT JOIN flags f ON f.item_id = l.item_id AND f.annotator_id = l.annotator_id")


def _pick(row: sqlite3.Row | dict[str, Any], columns: list[str], texts: bool) -> dict[str, Any]:
    keys = columns + (TEXT_COLUMNS if texts else [])
    return {k: row[k] for k in keys}


def export_rows(conn: sqlite3.Connection, table: str = "labels", texts: bool = False) -> list[dict[str, Any]]:
    """One table's rows in its column order (pairwise `choice` relative to system_a/system_b)."""
    if table not in TABLES:
        raise ValueError(f"export table must be one of {sorted(TABLES)}, got {table!r}")
    columns = TABLES[table]
    order = " ORDER BY l.item_id, n.name"
    if table == "labels":
        rows = conn.execute(f"{_LABELS} WHERE i.task = 'pairwise' AND i.gold IS NULL{order}").fetchall()
        return [_pick(r, columns, texts) for r in rows]
    if table == "ratings":
        rows = conn.execute(f"{_LABELS} WHERE i.task = 'absolute' AND i.gold IS NULL{order}").fetchall()
        return [_pick(dict(r) | {"system": r["system_a"], "rating": r["choice"]}, columns, False)
                | ({"response": r["response_a"]} if texts else {}) for r in rows]
    if table == "turns":
        out = []
        for r in conn.execute(f"{_LABELS} WHERE i.task = 'per_turn'{order}").fetchall():
            for turn, rating in enumerate(json.loads(r["choice"]), start=1):
                out.append(_pick(dict(r) | {"system": r["system_a"], "turn": turn, "rating": rating}, columns, False))
        return out
    if table == "gold":
        rows = conn.execute(f"{_LABELS} WHERE i.gold IS NOT NULL{order}").fetchall()
        return [_pick(dict(r) | {"expected": r["gold"], "given": r["choice"], "correct": int(r["gold"] == r["choice"])},
                      columns, False) for r in rows]
    if table == "flags":
        rows = conn.execute(
            "SELECT f.item_id, n.name AS annotator, i.prompt_id, i.task, f.reason AS flag, f.comment, f.created,"
            " CASE n.admin WHEN 1 THEN 'admin' ELSE 'annotator' END AS role FROM flags f"
            " JOIN items i ON i.id = f.item_id JOIN annotators n ON n.id = f.annotator_id"
            " ORDER BY f.item_id, n.name").fetchall()
        return [_pick(r, columns, False) for r in rows]
    rows = conn.execute(
        "SELECT h.item_id, n.name AS annotator, i.prompt_id, i.task, h.choice, h.shown_choice, h.seconds,"
        " h.labelled, h.replaced FROM label_history h JOIN items i ON i.id = h.item_id"
        " JOIN annotators n ON n.id = h.annotator_id ORDER BY h.item_id, n.name, h.id").fetchall()
    return [_pick(r, columns, False) for r in rows]


def neutralise(value: Any) -> Any:
    """OWASP CSV-injection rule: prefix a text cell that a spreadsheet would read as a formula with `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Rows as CSV text, every text cell neutralised and quoted (so a `;`-separated reader splits nothing)."""
    header = list(columns or (list(rows[0]) if rows else EXPORT_COLUMNS))
    for row in rows:
        header += [k for k in row if k not in header]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(header)
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerows({k: "" if v is None else neutralise(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def to_jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
