"""Stack Exchange dumps → one row per question joined to its top-scored answer.

Input: a site `.7z` archive (`math.stackexchange.com.7z`, `stackoverflow.com-Posts.7z`), an extracted `Posts.xml`,
a site folder holding `Posts.xml`, or a folder of any of these. The site is the archive/folder name as a host
(`coffee` → `coffee.stackexchange.com`), which is also what the URL and the curation site groups use. A name
that is not a site (the flat layout an extracted `.7z` gives: `Downloads/Posts.xml`) is an error unless the site
comes from `--site` or from the one site archive lying beside it; it never becomes `Downloads.stackexchange.com`.

Memory stays flat on Stack Overflow's ~100 GB Posts.xml because nothing holds all bodies:
1. pass 1 scans the raw bytes (`lima.data.se_scan`) and keeps only integers: per question id the best answer's (score, id,
   byte range) and each question row's byte range, plus the row counts. It also checks the file's structure,
   because pass 2 does not parse every row.
2. pass 2 parses only the wanted rows (questions with a kept answer, and those answers) by byte range with lxml,
   in file order, and emits question + best answer. lxml's entity handling thus stays exactly as before.
Files outside the plain dump layout (other encodings, mixed content, truncation, bad bytes...) take the old,
slower path: lxml `iterparse` over every row, which also raises the exact error with its position.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from lima.data.se_scan import _CHUNK, _PARSER, FABRICATED_IDS, _as_int, _better, _Plan, _scan
from lima.io import InputError, write_jsonl

log = logging.getLogger(__name__)


def site_host(name: str) -> str:
    """`math.stackexchange.com.7z` / `stackoverflow.com-Posts.7z` / `coffee` → the site's host name."""
    name = re.sub(r"(-Posts)?\.7z$", "", name)
    return name if "." in name else f"{name}.stackexchange.com"


_HOST = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*\.(stackexchange\.com|stackoverflow\.com|com|net)$")


def site_from_name(name: str) -> str | None:
    """The site a file or folder name spells, or None when it does not name one.

    A full host (`coffee.stackexchange.com`, `stackoverflow.com-Posts.7z`, `mathoverflow.net`) is a site name;
    a bare word only when it is a site we know (`coffee`, `math`, `stackoverflow`), so the folder an archive was
    extracted into (`Downloads`, `stackexchange`, `dump`) never becomes `<folder>.stackexchange.com`."""
    from lima.curation.sites import load_site_groups, normalise_site

    stem = re.sub(r"(-Posts)?\.7z$", "", name.strip(), flags=re.I).lower()
    if "." in stem:
        return stem if _HOST.match(stem) and (stem.endswith(".stackexchange.com") or stem.endswith(
            ".stackoverflow.com") or stem in load_site_groups()) else None
    host = normalise_site(stem)
    return host if re.fullmatch(r"[a-z0-9-]+", stem) and host in load_site_groups() else None


def _site_hint(posts: Path) -> str:
    return (f"pass the site (--site coffee.stackexchange.com, or site=... in Python), or put the file in a folder "
            f"named after the site ({posts.parent.parent / 'coffee.stackexchange.com' / 'Posts.xml'})")


def _flat_site(posts: Path, site: str | None) -> str:
    """The site of a Posts.xml that sits directly in a folder: --site, the folder's name, or the one archive
    beside it that it was extracted from (`coffee.stackexchange.com.7z`); otherwise an error."""
    if site:
        return site_from_name(site) or site_host(site)
    if named := site_from_name(posts.parent.name):
        return named
    archives = {s for p in posts.parent.glob("*.7z") if (s := site_from_name(p.name))}
    if len(archives) == 1:
        return archives.pop()
    seen = f"the archives beside it name {sorted(archives)}" if archives else \
        f"its folder {posts.parent.name!r} is not a site name"
    raise InputError(f"{posts}: cannot tell which Stack Exchange site this Posts.xml belongs to ({seen}); "
                     f"{_site_hint(posts)}")


def discover_sites(path: Path, site: str | None = None) -> list[tuple[str, Path]]:
    """(site host, Posts.xml or .7z) for a file, a site folder, or a folder of sites; sorted by site.

    `site` names the site of a single Posts.xml or archive (the flat layout an extracted .7z gives)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file() and path.suffix == ".xml":
        return [(_flat_site(path, site), path)]
    if path.is_file():
        host = (site_from_name(site) or site_host(site)) if site else site_from_name(path.name)
        if host is None:
            raise InputError(f"{path}: the archive name does not name a Stack Exchange site; rename it to the "
                             f"dump's name (coffee.stackexchange.com.7z) or pass --site")
        return [(host, path)]
    if (path / "Posts.xml").is_file():
        return [(_flat_site(path / "Posts.xml", site), path / "Posts.xml")]
    found: dict[str, Path] = {}
    unnamed: list[str] = []
    for child in sorted(path.iterdir()):
        if child.is_dir() and (child / "Posts.xml").is_file():
            if (host := site_from_name(child.name)) is None:
                unnamed.append(child.name)
            else:
                found[host] = child / "Posts.xml"
        elif child.suffix == ".7z" and (child.name.endswith("-Posts.7z") or "-" not in child.name):
            if (host := site_from_name(child.name)) is None:
                unnamed.append(child.name)
            else:
                found.setdefault(host, child)
    if unnamed:
        raise InputError(f"{path}: cannot tell which Stack Exchange site {unnamed[:5]} hold; name each folder or "
                         f"archive after its site (coffee.stackexchange.com/Posts.xml, coffee.stackexchange.com.7z)")
    if not found:
        raise InputError(f"{path}: no Posts.xml, site folder or .7z archive found")
    if site and len(found) > 1:
        raise InputError(f"{path}: --site names one site, but this folder holds {len(found)}")
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


def _best_by_parsing(path: Path, floor: int) -> dict[int, tuple[int, int]]:
    """Pass 1 for files outside the plain dump layout: slower, but lxml raises on anything malformed."""
    best: dict[int, tuple[int, int, int, int]] = {}
    for elem in iter_rows(path):
        a = elem.attrib
        aid, parent, score = _as_int(a.get("Id")), _as_int(a.get("ParentId")), _as_int(a.get("Score"))
        if (a.get("PostTypeId") == "2" and aid is not None and parent is not None and score is not None
                and score >= floor and aid not in FABRICATED_IDS and parent not in FABRICATED_IDS):
            _better(best, parent, score, aid, (0, 0))
    return {qid: value[:2] for qid, value in best.items()}


def best_answers(path: Path, min_answer_score: int | None = None) -> dict[int, tuple[int, int]]:
    """Pass 1: question id → (score, answer id) of its top answer; integers only (ties: the earlier answer)."""
    floor = min_answer_score if min_answer_score is not None else -(1 << 62)
    plan = _scan(path, floor)
    if plan is None:
        return _best_by_parsing(path, floor)
    return {qid: value[:2] for qid, value in plan.best.items()}


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


def _line_col(path: Path, offset: int) -> tuple[int, int]:
    """1-based line and column of a byte offset; only computed when reporting an error."""
    line, last_nl, done = 1, -1, 0
    with open(path, "rb") as handle:
        while done < offset and (block := handle.read(min(_CHUNK, offset - done))):
            line += block.count(b"\n")
            if (nl := block.rfind(b"\n")) >= 0:
                last_nl = done + nl
            done += len(block)
    return line, offset - last_nl


def _targeted_rows(path: Path, plan: _Plan) -> Iterator[Any]:
    """Pass 2 of the fast path: parse only the wanted rows, read by byte range in file order."""
    q = plan.questions
    wanted_q = ((q[k + 1], q[k + 2]) for k in range(0, len(q), 3) if q[k] in plan.best)
    answers = sorted((start, end) for _, _, start, end in plan.best.values())
    fd = os.open(path, os.O_RDONLY)
    try:
        for start, end in heapq.merge(wanted_q, answers):
            try:
                yield etree.fromstring(os.pread(fd, end - start, start), _PARSER).attrib
            except etree.XMLSyntaxError as err:
                line, col = _line_col(path, start)
                col += (err.position[1] - 1) if err.position else 0
                raise InputError(f"{path}: line {line}, column {col}: malformed XML ({err.msg})") from None
    finally:
        os.close(fd)


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
    """Pass 2: yield question + top answer rows for one site's Posts.xml.

    A question body is held only while its best answer is still ahead (answers normally follow their question),
    and vice versa. On the fast path pass 1 already counted every row, so only the wanted rows come here.
    """
    floor = min_answer_score if min_answer_score is not None else -(1 << 62)
    plan = _scan(path, floor)
    if plan is None:
        log.info("%s: not in the plain dump layout; parsing every row with lxml", path)
        best, rows, count = _best_by_parsing(path, floor), (e.attrib for e in iter_rows(path)), True
    else:
        best, rows, count = plan.best, _targeted_rows(path, plan), False
        for key, value in plan.counts.items():
            stats[key] += value
    wanted = {value[1]: qid for qid, value in best.items()}
    pending_q: dict[int, dict[str, Any]] = {}
    pending_a: dict[int, dict[str, Any]] = {}
    for a in rows:
        stats["rows"] += count
        try:
            pid, ptype = int(a["Id"]), a["PostTypeId"]
        except (KeyError, ValueError):
            stats["skipped_malformed"] += 1
            continue
        if pid in FABRICATED_IDS:
            stats["skipped_fabricated"] += 1
            continue
        if ptype == "1":
            stats["questions"] += count
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
            stats["answers"] += count
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
            stats["other_post_types"] += count
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


def iter_collect(path: Path, stats: dict[str, int], min_answer_score: int | None = None,
                 site: str | None = None) -> Iterator[dict[str, Any]]:
    from tqdm import tqdm

    sites = discover_sites(path, site)
    for site, source in tqdm(sites, desc="stackexchange sites", disable=len(sites) < 2):
        stats["sites"] += 1
        with posts_xml(source) as xml:
            for row in iter_pairs(site, xml, stats, min_answer_score):
                stats["pairs"] += 1
                yield row


def collect(path: str | Path, output: str | Path, min_answer_score: int | None = None,
            config: Any = None, site: str | None = None) -> dict[str, int]:
    """Write `stackexchange.jsonl` atomically; returns counts (rows, questions, answers, pairs, skipped...).

    `site` names the site of a lone Posts.xml (see `discover_sites`)."""
    stats = new_stats()
    # inputs are fingerprinted by size and mtime, not hashed: hashing a 100 GB dump would dominate the run
    sources = {str(src): {"bytes": src.stat().st_size, "mtime": src.stat().st_mtime}
               for _, src in discover_sites(Path(path), site)}
    write_jsonl(output, iter_collect(Path(path), stats, min_answer_score, site), config=config,
                extra={"stats": stats, "sources": sources})
    log.info("stackexchange: %s", stats)
    return stats
