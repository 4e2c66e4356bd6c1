"""Read the conversation formats people actually have, into this repo's `messages` rows.

`lima export` is often the first thing run on a downloaded file, so a file in another format must say what it
looks like rather than fail with "line 1: invalid JSON". Accepted (a UTF-8 BOM is tolerated everywhere):

- GAIR/lima JSONL: `{"conversations": ["user", "assistant", ...], "source": ...}`;
- FastChat / ShareGPT, as a JSON array (FastChat's own files) or JSONL:
  `{"id", "conversations": [{"from": "human"|"gpt"|"system", "value"}]}`;
- Alpaca, as a JSON array (`alpaca_data.json`) or JSONL: `{"instruction", "input", "output"}`;
- this repo's rows (`{"id", "messages": [{"role", "content"}], "source", "meta"}`) and its own exports, so
  messages → ShareGPT → Alpaca → messages round trips with ids and `source` kept.

Rows without an id get `<file stem>:<row number>` (GAIR/lima rows: `lima-<split>:<n>`, as the loader always did).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lima.io import InputError

ROW_FORMATS = ("messages", "lima", "sharegpt", "alpaca")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "chatgpt": "assistant", "bard": "assistant", "bing": "assistant", "model": "assistant",
                   "system": "system"}
_MAGIC = ((b"PAR1", "a Parquet file"), (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
          (b"\x1f\x8b", "gzip-compressed data"), (b"PK\x03\x04", "a zip archive"),
          (b"7z\xbc\xaf\x27\x1c", "a 7z archive"), (b"SQLite format 3", "an SQLite database"))
_EXPECTED = ("expected GAIR/lima JSONL (conversations: [str]), ShareGPT/FastChat JSON or JSONL (conversations: "
             "[{from, value}]), Alpaca JSON or JSONL (instruction/input/output) or messages JSONL "
             "(messages: [{role, content}])")


def row_format(row: Any) -> str | None:
    """Which of ROW_FORMATS one decoded row is, or None."""
    if not isinstance(row, dict):
        return None
    msgs = row.get("messages")
    if isinstance(msgs, list) and msgs and all(isinstance(m, dict) and "role" in m and "content" in m for m in msgs):
        return "messages"
    turns = row.get("conversations")
    if isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns):
        return "lima"
    if isinstance(turns, list) and turns and all(isinstance(t, dict) and "from" in t and "value" in t for t in turns):
        return "sharegpt"
    if "instruction" in row and "output" in row:
        return "alpaca"
    return None


def _describe_row(row: Any) -> str:
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}"
    return f"an object with keys {sorted(row)[:12]}"


def _sniff_binary(head: bytes) -> str | None:
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<"):
        return "XML/HTML"
    return None


def _decode(file: Path) -> str:
    raw = file.read_bytes()
    if not raw.strip():
        raise InputError(f"{file}: line 1: empty file")
    if (what := _sniff_binary(raw[:64])) is not None:
        raise InputError(f"{file}: this is {what}, not conversation rows; {_EXPECTED}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InputError(f"{file}: line {line}: invalid UTF-8 (byte {err.start}); {_EXPECTED}") from None


def _records(file: Path, text: str) -> Iterator[tuple[str, Any]]:
    """(position, decoded record): a JSON array's items, or one JSON value per non-blank line."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{file}: line {err.lineno}, column {err.colno}: a JSON array that does not "
                             f"parse ({err.msg})") from None
        for i, item in enumerate(data, start=1):
            yield f"item {i}", item
        return
    if stripped.startswith("{") and "\n" in stripped.rstrip():
        try:   # one pretty-printed row (a single conversation saved with indent)
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None
        if row_format(whole) is not None:
            yield "line 1", whole
            return
    lines = text.splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield f"line {lineno}", json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{file}: line {lineno}: {_what_instead(file, text, lineno, err)}") from None


def _what_instead(file: Path, text: str, lineno: int, err: json.JSONDecodeError) -> str:
    """The message for a line that is not JSON: name the format the file does look like."""
    if lineno == 1:
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):
            lists = sorted(k for k, v in whole.items() if isinstance(v, list))
            return (f"a single JSON object with keys {sorted(whole)[:12]}, not rows"
                    + (f" (the rows may be under {lists[0]!r})" if lists else "") + f"; {_EXPECTED}")
        first = text.splitlines()[0]
        if "," in first and "{" not in first or "\t" in first:
            return f"this looks like CSV/TSV text (header {first[:80]!r}), not JSON rows; {_EXPECTED}"
        return f"not JSON ({err.msg}, column {err.colno}): not a JSON array or JSONL file; {_EXPECTED}"
    return f"invalid JSON ({err.msg}, column {err.colno})"


def _from_lima(row: dict[str, Any], rid: str) -> dict[str, Any]:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t}
                for i, t in enumerate(row["conversations"])]
    return {"id": str(row.get("id") or rid), "messages": messages, "source": row.get("source") or "",
            "meta": {"released": True}}


def _from_sharegpt(row: dict[str, Any], rid: str, where: str) -> dict[str, Any]:
    messages = []
    for turn in row["conversations"]:
        role = _SHAREGPT_ROLES.get(str(turn["from"]).lower())
        if role is None:
            raise InputError(f"{where}: ShareGPT turn 'from' {turn['from']!r} is not one of "
                             f"{sorted(_SHAREGPT_ROLES)}")
        messages.append({"role": role, "content": str(turn["value"])})
    out = {"id": str(row.get("id") or rid), "messages": messages, "source": row.get("source") or ""}
    return {**out, "meta": row["meta"]} if isinstance(row.get("meta"), dict) else out


def _from_alpaca(row: dict[str, Any], rid: str) -> dict[str, Any]:
    user = str(row["instruction"]).strip()
    if str(row.get("input") or "").strip():
        user = f"{user}\n\n{str(row['input']).strip()}"
    out = {"id": str(row.get("id") or rid),
           "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": str(row["output"])}],
           "source": row.get("source") or ""}
    return {**out, "meta": row["meta"]} if isinstance(row.get("meta"), dict) else out


def read_rows(path: str | Path, split: str = "train") -> tuple[list[dict[str, Any]], str]:
    """All rows of a file in any accepted format as `messages` rows, and the format found.

    One file holds one format; a row of another format (or of none) raises InputError naming its position and
    what it looks like."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file}: not found")
    text = _decode(file)
    rows: list[dict[str, Any]] = []
    found: str | None = None
    for n, (pos, record) in enumerate(_records(file, text), start=1):
        where = f"{file}: {pos}"
        kind = row_format(record)
        if kind is None:
            raise InputError(f"{where}: {_describe_row(record)} is none of the known row formats; {_EXPECTED}")
        if found is not None and kind != found:
            raise InputError(f"{where}: this row is {kind}, but the earlier rows are {found} (one format per file)")
        found = kind
        if kind == "messages":
            rows.append({**record, "id": str(record.get("id") or f"{file.stem}:{n}")})
        elif kind == "lima":
            rows.append(_from_lima(record, f"lima-{split}:{n}"))
        elif kind == "sharegpt":
            rows.append(_from_sharegpt(record, f"{file.stem}:{n}", where))
        else:
            rows.append(_from_alpaca(record, f"{file.stem}:{n}"))
    if found is None:
        raise InputError(f"{file}: line 1: no rows (an empty JSON array)")
    return rows, found
