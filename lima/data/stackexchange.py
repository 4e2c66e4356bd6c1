"""Stack Exchange dumps → one row per question joined to its top-scored answer.

Input: a site `.7z` archive (`math.stackexchange.com.7z`, `stackoverflow.com-Posts.7z`), an extracted `Posts.xml`,
a site folder holding `Posts.xml`, or a folder of any of these. The site is the archive/folder name as a host
(`coffee` → `coffee.stackexchange.com`), which is also what the URL and the curation site groups use.

Memory stays flat on Stack Overflow's ~100 GB Posts.xml because nothing holds all bodies:
1. pass 1 scans the raw bytes for answer rows (`PostTypeId="2"`) and keeps only integers: for each question id the
   best answer's (score, id). Attribute values in the dump are entity-escaped, so a literal `"` — and therefore a
   literal `PostTypeId="2"` — can never occur inside a Body; the scan runs at memory speed.
2. pass 2 streams the XML with lxml `iterparse`, clearing each element and deleting its previous siblings, and
   emits question + best answer; a question body is held only while its best answer is still ahead (answers
   normally follow their question), and vice versa.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from lima.io import InputError, write_jsonl

log = logging.getLogger(__name__)

FABRICATED_IDS = frozenset({1000000001, 1000000010})   # planted in the 2025-06-30 dumps; never real posts
_ANSWER_MARK = (b'PostTypeId="2"', b"PostTypeId='2'")
_CHUNK = 32 << 20


def site_host(name: str) -> str:
    """`math.stackexchange.com.7z` / `stackoverflow.com-Posts.7z` / `coffee` → the site's host name."""
    name = re.sub(r"(-Posts)?\.7z$", "", name)
    return name if "." in name else f"{name}.stackexchange.com"


def discover_sites(path: Path) -> list[tuple[str, Path]]:
    """(site host, Posts.xml or .7z) for a file, a site folder, or a folder of sites; sorted by site."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file():
        site = path.parent.name if path.suffix == ".xml" else path.name
        return [(site_host(site), path)]
    if (path / "Posts.xml").is_file():
        return [(site_host(path.name), path / "Posts.xml")]
    found: dict[str, Path] = {}
    for child in sorted(path.iterdir()):
        if child.is_dir() and (child / "Posts.xml").is_file():
            found[site_host(child.name)] = child / "Posts.xml"
        elif child.suffix == ".7z" and (child.name.endswith("-Posts.7z") or "-" not in child.name):
            found.setdefault(site_host(child.name), child)
    if not found:
        raise InputError(f"{path}: no Posts.xml, site folder or .7z archive found")
    return sorted(found.items())


@contextlib.contextmanager
def posts_xml(source: Path) -> Iterator[Path]:
    """Yield a Posts.xml path; a `.7z` member is extracted to a temp folder that is deleted afterwards."""
    if source.suffix != ".7z":
        yield source
        return
    import py7zr

    tmp = Path(tempfile.mkdtemp(prefix="lima-se-"))
    try:
        try:
            with py7zr.SevenZipFile(source, "r") as archive:
                names = [n for n in archive.getnames() if n.rsplit("/", 1)[-1] == "Posts.xml"]
                if not names:
                    raise InputError(f"{source}: archive holds no Posts.xml")
                archive.extract(path=tmp, targets=names[:1])
        except (py7zr.exceptions.Bad7zFile, EOFError, OSError) as err:
            raise InputError(f"{source}: unreadable 7z archive ({err})") from None
        yield tmp / names[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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


def best_answers(path: Path, min_answer_score: int | None = None) -> dict[int, tuple[int, int]]:
    """Pass 1: question id → (score, answer id) of its top answer; integers only (ties: the earlier answer)."""
    best: dict[int, tuple[int, int]] = {}
    floor = min_answer_score if min_answer_score is not None else -(1 << 62)
    with open(path, "rb") as handle:
        carry = b""
        while True:
            block = handle.read(_CHUNK)
            buf = carry + block
            done = 0   # everything before `done` is processed
            for mark in _ANSWER_MARK:
                pos = buf.find(mark)
                while pos >= 0:
                    start = buf.rfind(b"<row", 0, pos)
                    end = buf.find(b">", pos)
                    if end < 0:
                        break
                    aid = _int_attr(buf, b"Id", start, end)
                    parent = _int_attr(buf, b"ParentId", start, end)
                    score = _int_attr(buf, b"Score", start, end)
                    if (aid is not None and parent is not None and score is not None and score >= floor
                            and aid not in FABRICATED_IDS and parent not in FABRICATED_IDS):
                        old = best.get(parent)
                        if old is None or score > old[0] or (score == old[0] and aid < old[1]):
                            best[parent] = (score, aid)
                    done = max(done, end)
                    pos = buf.find(mark, end)
            if not block:
                break
            # keep the last (possibly incomplete) row for the next block
            cut = buf.rfind(b"<row", done)
            carry = buf[cut:] if cut >= 0 else buf[max(done, len(buf) - 3):]   # a "<ro" split across blocks
    return best


def _tags(raw: str | None) -> list[str]:
    if not raw:
        return []
    if raw.startswith("|"):
        return [t for t in raw.split("|") if t]
    return re.findall(r"<([^<>]+)>", raw)


def license_for(created: str | None) -> str:
    """Stack Exchange content licence by post date (CC BY-SA 2.5 → 3.0 on 2011-04-08 → 4.0 on 2018-05-02)."""
    day = (created or "9999")[:10]
    if day < "2011-04-08":
        return "CC BY-SA 2.5"
    if day < "2018-05-02":
        return "CC BY-SA 3.0"
    return "CC BY-SA 4.0"


def _author(site: str, attrib: Any) -> str | None:
    if uid := attrib.get("OwnerUserId"):
        return f"https://{site}/users/{uid}"
    return attrib.get("OwnerDisplayName")


def iter_rows(path: Path) -> Iterator[Any]:
    """Stream `<row>` elements with flat memory; XML errors become InputError naming file, line and column."""
    context = etree.iterparse(str(path), events=("end",), tag="row", huge_tree=True)   # no network, no DTD load
    try:
        for _, elem in context:
            yield elem
            elem.clear()
            while elem.getprevious() is not None:
                del elem.getparent()[0]
    except etree.XMLSyntaxError as err:
        line, col = (err.position if err.position else (0, 0))
        raise InputError(f"{path}: line {line}, column {col}: malformed XML ({err.msg})") from None
    finally:
        del context


def iter_pairs(site: str, path: Path, stats: dict[str, int],
               min_answer_score: int | None = None) -> Iterator[dict[str, Any]]:
    """Pass 2: yield question + top answer rows for one site's Posts.xml."""
    best = best_answers(path, min_answer_score)
    wanted = {aid: qid for qid, (_, aid) in best.items()}
    pending_q: dict[int, dict[str, Any]] = {}
    pending_a: dict[int, dict[str, Any]] = {}
    for elem in iter_rows(path):
        stats["rows"] += 1
        a = elem.attrib
        try:
            pid, ptype = int(a["Id"]), a["PostTypeId"]
        except (KeyError, ValueError):
            stats["skipped_malformed"] += 1
            continue
        if pid in FABRICATED_IDS:
            stats["skipped_fabricated"] += 1
            continue
        if ptype == "1":
            stats["questions"] += 1
            if pid not in best:
                continue
            if "Title" not in a or "Body" not in a:
                stats["skipped_malformed"] += 1
                continue
            q = {"title": a["Title"], "question_html": a["Body"], "tags": _tags(a.get("Tags")),
                 "question_score": int(a.get("Score") or 0), "question_author": _author(site, a),
                 "created": a.get("CreationDate")}
            answer = pending_a.pop(best[pid][1], None)
            if answer is None:
                pending_q[pid] = q
            else:
                yield _pair(site, pid, q, answer)
        elif ptype == "2":
            stats["answers"] += 1
            qid = wanted.get(pid)
            if qid is None:
                continue
            if "Body" not in a:
                stats["skipped_malformed"] += 1
                continue
            answer = {"answer_id": pid, "answer_html": a["Body"], "answer_score": int(a.get("Score") or 0),
                      "answer_author": _author(site, a), "answer_created": a.get("CreationDate")}
            q = pending_q.pop(qid, None)
            if q is None:
                pending_a[pid] = answer
            else:
                yield _pair(site, qid, q, answer)
        else:
            stats["other_post_types"] += 1
    stats["unjoined"] += len(pending_q) + len(pending_a)


def _pair(site: str, qid: int, q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"se:{site}:{qid}", "site": site, "question_id": qid, "title": q["title"],
        "question_html": q["question_html"], "tags": q["tags"], "question_score": q["question_score"],
        "answer_id": a["answer_id"], "answer_html": a["answer_html"], "answer_score": a["answer_score"],
        "url": f"https://{site}/q/{qid}", "answer_url": f"https://{site}/a/{a['answer_id']}",
        "question_author": q["question_author"], "answer_author": a["answer_author"],
        "license": license_for(a["answer_created"] or q["created"]), "created": q["created"],
    }


def new_stats() -> dict[str, int]:
    return dict.fromkeys(("sites", "rows", "questions", "answers", "other_post_types", "pairs",
                          "skipped_malformed", "skipped_fabricated", "unjoined"), 0)


def iter_collect(path: Path, stats: dict[str, int], min_answer_score: int | None = None) -> Iterator[dict[str, Any]]:
    from tqdm import tqdm

    sites = discover_sites(path)
    for site, source in tqdm(sites, desc="stackexchange sites", disable=len(sites) < 2):
        stats["sites"] += 1
        with posts_xml(source) as xml:
            for row in iter_pairs(site, xml, stats, min_answer_score):
                stats["pairs"] += 1
                yield row


def collect(path: str | Path, output: str | Path, min_answer_score: int | None = None,
            config: Any = None) -> dict[str, int]:
    """Write `stackexchange.jsonl` atomically; returns counts (rows, questions, answers, pairs, skipped...)."""
    stats = new_stats()
    # inputs are fingerprinted by size and mtime, not hashed: hashing a 100 GB dump would dominate the run
    sources = {str(src): {"bytes": src.stat().st_size, "mtime": src.stat().st_mtime}
               for _, src in discover_sites(Path(path))}
    write_jsonl(output, iter_collect(Path(path), stats, min_answer_score), config=config,
                extra={"stats": stats, "sources": sources})
    log.info("stackexchange: %s", stats)
    return stats
