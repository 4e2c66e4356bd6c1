"""Pushshift Reddit dumps → r/WritingPrompts prompt+story candidates (train) and r/AskReddit titles (test).

`RS_YYYY-MM.zst` holds submissions and `RC_YYYY-MM.zst` comments, one JSON object per line, compressed with a
2 GiB zstd window (`--long=31`) that a default decoder refuses; we decode with `max_window_size=2**31`, chunk by
chunk, and check the last frame completed (python-zstandard's stream reader ends silently on a truncated file).
Fields drift by year, so every key is optional; `[removed]`/`[deleted]` bodies are ignored.

The paper hand-picked these posts. We write the top candidates by score to a review CSV with an `accept` column
for a person to fill in (1/yes/x = accept). When that file holds decisions, selection takes the accepted rows
(`selection: "review"`); otherwise (smoke, or nobody has reviewed yet) it takes the top by score and says so in
the log and in each row's `selection: "top_by_score"`.

AskReddit titles must stand alone as test prompts. Heuristics (ours): the title ends with "?"; it does not point
at context we do not have ("this", "these", "OP", "edit", "update", "[serious]"-style tags are fine); no links;
not `over_18`; 15–300 characters.
"""

from __future__ import annotations

import csv
import heapq
import logging
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zstandard

from lima.io import InputError, atomic_write, parse_json_line, write_jsonl

log = logging.getLogger(__name__)

MAX_WINDOW = 2**31
GONE = {"[removed]", "[deleted]", ""}
ACCEPT_YES = {"1", "y", "yes", "x", "true", "accept"}
_CONTEXT = re.compile(r"\b(this|these|that one|op|edit|edited|update|above|below|pic|picture|video)\b|https?://|"
                      r"www\.|\[removed\]|\[deleted\]", re.I)


def iter_zst_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, JSON object) for each line of a Pushshift .zst file; bad input raises InputError."""
    dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)
    dobj = dctx.decompressobj()
    pending, lineno, consumed, frame_done, seen = b"", 0, 0, False, False
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            seen = True
            data = chunk
            while data:
                try:
                    out = dobj.decompress(data)
                except zstandard.ZstdError as err:
                    raise InputError(f"{path}: byte {consumed}: zstd error ({err})") from None
                data, frame_done = b"", dobj.eof
                if dobj.eof:
                    data, dobj = dobj.unused_data, dctx.decompressobj()
                lines = (pending + out).split(b"\n")
                pending = lines.pop()
                for raw in lines:
                    lineno += 1
                    if raw.strip():
                        yield lineno, parse_json_line(raw, f"{path}: line {lineno}")
            consumed += len(chunk)
    if not seen:
        raise InputError(f"{path}: byte 0: empty file")
    if not frame_done:
        raise InputError(f"{path}: byte {consumed}: truncated zstd stream (ended inside a frame, after line {lineno})")
    if pending.strip():
        yield lineno + 1, parse_json_line(pending, f"{path}: line {lineno + 1}")


def self_contained(post: dict[str, Any]) -> bool:
    """AskReddit title usable as a stand-alone prompt (heuristics in the module docstring)."""
    title = (post.get("title") or "").strip()
    return (title.endswith("?") and 15 <= len(title) <= 300 and not _CONTEXT.search(title)
            and not post.get("over_18") and post.get("removed_by_category") is None)


_KIND_OF = {"RS": "submissions", "RC": "comments"}
_PER_SUBREDDIT = re.compile(r"^(?P<sub>[A-Za-z0-9_]+?)_(?P<kind>submissions|comments)\.zst$")
NEEDED = ("WritingPrompts", "AskReddit")


def dump_kind(file: Path) -> tuple[str, str | None] | None:
    """("submissions" | "comments", subreddit or None) for a monthly `RS_2019-10.zst` / `RC_…` file or a
    per-subreddit `AskReddit_submissions.zst` / `WritingPrompts_comments.zst` file; None for anything else."""
    if file.suffix == ".zst" and file.name[:3] in ("RS_", "RC_"):
        return _KIND_OF[file.name[:2]], None
    if m := _PER_SUBREDDIT.match(file.name):
        return m["kind"], m["sub"]
    return None


def _files(path: Path, kind: str) -> list[tuple[Path, str | None]]:
    """The dump files of one kind (submissions | comments) at `path` (a file or a folder), sorted by name."""
    files = [path] if path.is_file() else sorted(path.glob("*.zst"))
    return [(f, k[1]) for f in files if (k := dump_kind(f)) is not None and k[0] == kind]


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def scan(path: Path, candidates: int, stats: Counter) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Top WritingPrompts posts (with their top-scored top-level story) and top self-contained AskReddit posts."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    rs, rc = _files(path, "submissions"), _files(path, "comments")
    if not rs:
        raise InputError(f"{path}: no submission files found (monthly RS_YYYY-MM.zst or per-subreddit "
                         f"<Subreddit>_submissions.zst)")
    keep = max(2 * candidates, candidates + 50)   # spare WritingPrompts posts in case their stories are gone
    wp: list[tuple[int, str, dict[str, Any]]] = []
    ask: list[tuple[int, str, dict[str, Any]]] = []
    for file, file_sub in rs:
        for _, post in iter_zst_lines(file):
            stats["submissions"] += 1
            sub = str(post.get("subreddit") or file_sub or "")
            stats[f"submissions:{sub}"] += 1
            if "id" not in post or "title" not in post:
                stats["skipped_malformed"] += 1
                continue
            item = (_int(post.get("score")), str(post["id"]), post)
            if sub.lower() == "writingprompts" and not post.get("over_18"):
                (heapq.heappush if len(wp) < keep else heapq.heappushpop)(wp, item)
            elif sub.lower() == "askreddit" and self_contained(post):
                (heapq.heappush if len(ask) < candidates else heapq.heappushpop)(ask, item)
            elif sub.lower() == "askreddit":
                stats["askreddit_not_self_contained"] += 1
    posts = {pid: post for _, pid, post in wp}
    stories: dict[str, dict[str, Any]] = {}
    for file, file_sub in rc:
        for _, com in iter_zst_lines(file):
            stats["comments"] += 1
            stats[f"comments:{com.get('subreddit') or file_sub or ''}"] += 1
            link = str(com.get("link_id") or "")
            pid = link[3:] if link.startswith("t3_") else None
            if pid not in posts or com.get("parent_id") != link or str(com.get("body") or "").strip() in GONE:
                continue
            best = stories.get(pid)
            if best is None or _int(com.get("score")) > _int(best.get("score")):
                stories[pid] = com
    wp_rows = [_wp_row(post, stories[pid]) for _, pid, post in sorted(wp, key=lambda t: (-t[0], t[1]))
               if pid in stories][:candidates]
    ask_rows = [_ask_row(post) for _, _, post in sorted(ask, key=lambda t: (-t[0], t[1]))]
    stats["writingprompts_without_story"] = len(wp) - len([p for p in posts if p in stories])
    _say_what_is_missing(path, [f for f, _ in rs], [f for f, _ in rc], stats, len(stories))
    return wp_rows, ask_rows


def _rows_of(stats: Counter, kind: str, subreddit: str) -> int:
    return sum(n for key, n in stats.items() if key.lower() == f"{kind}:{subreddit.lower()}")


def _say_what_is_missing(path: Path, rs: list[Path], rc: list[Path], stats: Counter, n_stories: int) -> None:
    """A needed subreddit with zero rows is named in a warning and in `stats["missing"]` (the manifest keeps it),
    with the subreddits the files did hold, so an empty writingprompts.jsonl never looks like a finished collect."""
    missing: list[str] = []
    seen = sorted(((n, k.split(":", 1)[1]) for k, n in stats.items() if k.startswith("submissions:")), reverse=True)
    held = ", ".join(f"r/{sub or '?'} ({n})" for n, sub in seen[:5]) or "none"
    for sub in NEEDED:
        if _rows_of(stats, "submissions", sub) == 0:
            missing.append(f"r/{sub} submissions")
            log.warning("reddit: no r/%s submissions in %s (%s); the files hold %s", sub, path,
                        ", ".join(f.name for f in rs), held)
    if _rows_of(stats, "submissions", "WritingPrompts") and not n_stories:
        missing.append("r/WritingPrompts comments")
        log.warning("reddit: no r/WritingPrompts story comments in %s (%s), so no prompt has a story; add the "
                    "matching RC_*.zst or WritingPrompts_comments.zst", path,
                    ", ".join(f.name for f in rc) or "no comment files")
    stats["missing"] = missing   # type: ignore[assignment]  # a list beside the counts, for the manifest


def _url(post: dict[str, Any]) -> str:
    link = post.get("permalink") or f"/r/{post.get('subreddit')}/comments/{post['id']}/"
    return "https://www.reddit.com" + link


def _wp_row(post: dict[str, Any], com: dict[str, Any]) -> dict[str, Any]:
    selftext = str(post.get("selftext") or "")
    return {"id": f"reddit:{post['id']}", "title": post["title"], "selftext": "" if selftext in GONE else selftext,
            "score": _int(post.get("score")), "story": com["body"], "story_score": _int(com.get("score")),
            "story_id": com.get("id"), "url": _url(post), "author": post.get("author"),
            "story_author": com.get("author")}


def _ask_row(post: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"reddit:{post['id']}", "title": post["title"].strip(), "score": _int(post.get("score")),
            "num_comments": _int(post.get("num_comments")), "url": _url(post)}


def read_review(path: Path) -> dict[str, bool] | None:
    """id → accepted, or None when the file is absent or nobody has filled in the `accept` column yet."""
    if not path.exists():
        return None
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "id" not in reader.fieldnames or "accept" not in reader.fieldnames:
            raise InputError(f"{path}: line 1: review file needs the columns 'id' and 'accept'")
        decisions = {row["id"]: (row["accept"] or "").strip().lower() for row in reader}
    if not any(decisions.values()):
        return None
    return {rid: value in ACCEPT_YES for rid, value in decisions.items()}


def write_review(path: Path, wp_rows: list[dict[str, Any]], ask_rows: list[dict[str, Any]]) -> None:
    with atomic_write(path) as handle:
        writer = csv.writer(handle)
        writer.writerow(["accept", "subreddit", "id", "score", "title", "story_excerpt", "url"])
        for sub, rows in (("WritingPrompts", wp_rows), ("AskReddit", ask_rows)):
            for row in rows:
                excerpt = " ".join(str(row.get("story", "")).split())[:200]
                writer.writerow(["", sub, row["id"], row["score"], row["title"], excerpt, row["url"]])


def select(rows: list[dict[str, Any]], review: dict[str, bool] | None) -> list[dict[str, Any]]:
    selection = "review" if review is not None else "top_by_score"
    return [{**row, "accepted": bool(review.get(row["id"], False)) if review is not None else True,
             "selection": selection} for row in rows]


def collect(path: str | Path, out_dir: str | Path, review: str | Path, candidates: int,
            config: Any = None) -> dict[str, int]:
    """Write writingprompts.jsonl and askreddit.jsonl (+ the review CSV when nobody has reviewed yet)."""
    stats: Counter = Counter()
    wp_rows, ask_rows = scan(Path(path), candidates, stats)
    review_path = Path(review)
    decisions = read_review(review_path)
    if decisions is None:
        write_review(review_path, wp_rows, ask_rows)
        log.warning("reddit: no reviewed selection in %s — taking the top %d by score per subreddit "
                    "(selection=top_by_score); fill in its 'accept' column to hand-pick as the paper did",
                    review_path, candidates)
    else:
        log.info("reddit: using the hand-picked selection in %s", review_path)
    out_dir = Path(out_dir)
    extra = {"stats": dict(stats), "selection": "review" if decisions is not None else "top_by_score"}
    stats["writingprompts"] = write_jsonl(out_dir / "writingprompts.jsonl", select(wp_rows, decisions),
                                          config=config, inputs=[path], extra=extra)
    stats["askreddit"] = write_jsonl(out_dir / "askreddit.jsonl", select(ask_rows, decisions), config=config,
                                     inputs=[path], extra=extra)
    stats["accepted"] = sum(1 for row in select(wp_rows + ask_rows, decisions) if row["accepted"])
    log.info("reddit: %s", dict(stats))
    return dict(stats)
