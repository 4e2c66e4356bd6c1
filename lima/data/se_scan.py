"""Pass 1 over a Stack Exchange `Posts.xml`: a raw-bytes scan that keeps only integers.

For every question it records the best answer's (score, id, byte range) and the question row's byte range,
and it counts rows by type — without parsing XML, so it runs near disk speed even on Stack Overflow's
~100 GB file. It also checks the file's structure (prolog, one `<row …/>` per element, valid UTF-8, the
closing `</posts>`), because pass 2 (`lima.data.stackexchange`) then parses only the wanted rows; any file
outside the plain dump layout makes `_scan` return None and the caller falls back to a full lxml parse.
"""

from __future__ import annotations

import codecs
import re
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

FABRICATED_IDS = frozenset({1000000001, 1000000010})   # planted in the 2025-06-30 dumps; never real posts
_CHUNK = 1 << 20   # larger blocks only add page faults and copying
_WS = b" \t\r\n"
_PROLOG = re.compile(rb"(?:\xef\xbb\xbf)?\s*(<\?xml\s[^<>]*\?>)?\s*(?:<!DOCTYPE\s+posts\s*>)?\s*<posts\s*>")
_OTHER_ENCODING = re.compile(rb"""encoding\s*=\s*["'](?!utf-?8["'])""", re.IGNORECASE)
_HEAD = re.compile(rb'<row\s+Id="(\d+)"\s+PostTypeId="(\d+)"(?:\s+AcceptedAnswerId="\d*")?'   # the dumps' order
                   rb'(?:\s+ParentId="(\d+)")?(?:\s+CreationDate="[^"]*")?(?:\s+Score="(-?\d+)")?')
_END = re.compile(rb"</posts\s*>\s*")
_PARSER = etree.XMLParser(huge_tree=True, no_network=True)
_ROW_COUNTS = ("rows", "questions", "answers", "other_post_types", "skipped_malformed", "skipped_fabricated")


def _int_attr(buf: bytes, name: bytes, start: int, end: int) -> int | None:
    """Integer attribute `name` of the row buf[start:end], found without copying the row."""
    for quote in (b'"', b"'"):
        key = b" " + name + b"=" + quote
        at = buf.find(key, start, end)
        if at >= 0:
            first = at + len(key)
            try:
                return int(buf[first:buf.find(quote, first, end)])
            except ValueError:
                return None
    return None


def _as_int(value: str | bytes | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class _Plan:
    """What pass 1 learnt: integers only (best answer and byte range per question), plus the row counts."""
    best: dict[int, tuple[int, int, int, int]]   # question id → (score, answer id, row start, row end)
    questions: array = field(default_factory=lambda: array("q"))   # (id, start, end) per question row, flat
    counts: dict[str, int] = field(default_factory=dict)


def _better(best: dict[int, tuple[int, int, int, int]], parent: int, score: int, aid: int, span: tuple[int, int]) -> None:
    old = best.get(parent)
    if old is None or score > old[0] or (score == old[0] and aid < old[1]):   # ties: the earlier answer
        best[parent] = (score, aid, *span)


def _scan(path: Path, floor: int) -> _Plan | None:
    """Pass 1 over raw bytes; None when the file is not in the plain dump layout (then lxml parses all of it).

    Pass 2 parses only the rows recorded here, so this scan is also what guarantees the rest of the file is
    well formed: a BOM/declaration/`<posts>` prolog, then only whitespace and self-closing `<row .../>` elements
    without a stray `<`, valid UTF-8, and `</posts>` at the end. Attribute values in the dump are entity-escaped,
    so a literal `"`, `<` or `>` never occurs inside one and the `find`s below run at memory speed. Anything
    unusual (mixed content, `<row></row>`, other encodings, bad bytes, truncation) returns None, and the lxml
    path then either copes or raises the exact error with its position.
    """
    plan = _Plan({}, counts=dict.fromkeys(_ROW_COUNTS, 0))
    with open(path, "rb") as handle:
        buf = b""
        while (m := _PROLOG.match(buf)) is None:
            block = handle.read(_CHUNK)
            if not block or len(buf) > 1 << 16:
                return None
            buf += block
        if m[1] and _OTHER_ENCODING.search(m[1]):
            return None
        base, buf = m.end(), buf[m.end():]   # base: file offset of buf[0]
        while True:
            block = handle.read(_CHUNK)
            buf += block
            if (scanned := _scan_rows(buf, base, floor, plan)) is None:
                return None
            done, ended = scanned
            if not buf.isascii():
                try:
                    codecs.utf_8_decode(memoryview(buf)[:done], "strict", True)
                except UnicodeDecodeError:
                    return None
            if ended:
                tail = buf[done:] + handle.read(1 << 16)
                return plan if _END.fullmatch(tail) and not handle.read(1) else None
            if not block:
                return None   # truncated: no `</posts>`
            base, buf = base + done, buf[done:]


def _scan_rows(buf: bytes, base: int, floor: int, plan: _Plan) -> tuple[int, bool] | None:
    """Count and record the complete rows in buf; returns (where the rest starts, whether that is `</posts`)."""
    find, startswith, head_at = buf.find, buf.startswith, _HEAD.match
    best, questions, counts = plan.best, plan.questions, plan.counts
    n_rows = n_questions = n_answers = 0
    i = 0
    try:
        while (lt := find(b"<", i)) >= 0:
            if buf[i:lt].strip(_WS):
                return None
            if (gt := find(b">", lt)) < 0:
                break   # an incomplete row waits for the next block
            if startswith(b"</posts", lt):
                return lt, True
            if not startswith(b"<row", lt) or buf[lt + 4] not in _WS or buf[gt - 1] != 47 or find(b"<", lt + 1, gt) >= 0:
                return None   # 47 == "/"
            i = gt + 1
            n_rows += 1
            if (head := head_at(buf, lt)) is not None:
                pid, ptype, parent, score = int(head[1]), head[2], head[3], head[4]
            else:   # another attribute order: let lxml read this one row
                try:
                    attrib = etree.fromstring(buf[lt:i], _PARSER).attrib
                except etree.XMLSyntaxError:
                    return None
                pid, ptype, parent, score = (_as_int(attrib.get("Id")), attrib.get("PostTypeId"),
                                             attrib.get("ParentId"), attrib.get("Score"))
                ptype = ptype.encode() if ptype is not None else None
            if pid is None or ptype is None:
                counts["skipped_malformed"] += 1
            elif pid in FABRICATED_IDS:
                counts["skipped_fabricated"] += 1
            elif ptype == b"1":
                n_questions += 1
                questions.extend((pid, base + lt, base + i))
            elif ptype == b"2":
                n_answers += 1
                parent = _as_int(parent) if parent is not None or head is None else _int_attr(buf, b"ParentId", lt, gt)
                score = _as_int(score) if score is not None or head is None else _int_attr(buf, b"Score", lt, gt)
                if parent is not None and score is not None and score >= floor and parent not in FABRICATED_IDS:
                    _better(best, parent, score, pid, (base + lt, base + i))
            else:
                counts["other_post_types"] += 1
        else:
            if buf[i:].strip(_WS):
                return None
            i = len(buf)
    finally:
        counts["rows"] += n_rows
        counts["questions"] += n_questions
        counts["answers"] += n_answers
    return i, False
