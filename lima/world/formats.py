"""The world's dumps in their real formats (Posts.xml / .7z, Pushshift .zst, wikihowAll.csv, SNI tasks).

The format writers and their quirks (BOM, CRLF, DOCTYPE, both tag formats, fabricated Ids, a `.7z` site, the
2 GiB zstd window) are `lima.data.synthetic`'s; only what the posts say comes from the world (`lima.world.dumps`).
The planted cases the paper's filters remove stay: first-person answers, answers that refer to other answers,
answers too short or too long, and titles that are not self-contained.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from lima.data.synthetic import _date, _row, _zst, write_site
from lima.io import atomic_write
from lima.world import WorldConfig
from lima.world.dumps import se_threads, sni_tasks, wikihow_articles, writing_prompts
from lima.world.prompts import askreddit_titles
from lima.world.world import World

# Sites the world's threads are spread over (names from lima/resources/se_site_groups.csv: 6 stem, 6 other)
SITES = ["physics", "chemistry", "biology", "cs", "stats", "engineering",
         "travel", "history", "genealogy", "cooking", "diy", "writing"]
_PLANTS = {
    "first_person": lambda t: f"I looked into this myself and my notes say the same. {t}",
    "reference": lambda t: f"As mentioned in the other answer, {t[0].lower()}{t[1:]}",
    "long": lambda t: t + "\n\n" + " ".join([t] * 12),
}


def _html(text: str) -> str:
    from html import escape

    blocks = text.split("\n\n")
    out = []
    for block in blocks:
        lines = block.splitlines()
        if lines and all(line[:1].isdigit() and ". " in line for line in lines):
            out.append("<ol>" + "".join(f"<li>{escape(line.split('. ', 1)[1])}</li>" for line in lines) + "</ol>")
        else:
            out.append(f"<p>{escape(block)}</p>")
    return "\n".join(out)


def _site_rows(threads: list[dict[str, Any]], rng: random.Random, pipe_tags: bool) -> list[str]:
    rows: list[str] = []
    pid = 1
    for qn, thread in enumerate(threads):
        qid, pid = pid, pid + 1
        plant = rng.choice([None] * 12 + list(_PLANTS))
        answers = []
        for answer in thread["answers"]:
            aid, pid = pid, pid + 1
            text = answer.text
            if plant and answer.quality == "good":
                text = _PLANTS[plant](text)
            answers.append(_row(Id=aid, PostTypeId=2, ParentId=qid, CreationDate=_date(rng), Score=answer.score,
                                Body=_html(text), OwnerUserId=rng.randint(2, 900), CommentCount=rng.randint(0, 4)))
        rng.shuffle(answers)
        title = thread["title"] if qn % 17 else "Question about this?"     # not self-contained: needs the body
        tags = "|world|facts|" if pipe_tags else "<world><facts>"
        rows.append(_row(Id=qid, PostTypeId=1, CreationDate=_date(rng), Score=rng.randint(1, 80),
                         ViewCount=rng.randint(10, 9000), Body=thread["body"], Title=title, Tags=tags,
                         AnswerCount=len(answers), OwnerUserId=rng.randint(2, 900)))
        rows += answers
    rows.append(_row(Id=pid, PostTypeId=4, CreationDate=_date(rng), Score=0, Body=""))
    rows.append(_row(Id=1000000001, PostTypeId=1, CreationDate=_date(rng), Score=999, Title="Fabricated question",
                     Body="<p>fabricated</p>", Tags=""))
    rows.append(_row(Id=1000000010, PostTypeId=2, ParentId=1000000001, CreationDate=_date(rng), Score=999,
                     Body="<p>fabricated</p>"))
    return rows


def write_stackexchange(root: Path, world: World, wc: WorldConfig, rng: random.Random) -> dict[str, int]:
    threads = se_threads(world, rng, wc.se_threads, wc.score_noise)
    counts = {}
    for i, short in enumerate(SITES):
        host = f"{short}.stackexchange.com"
        rows = _site_rows(threads[i::len(SITES)], rng, pipe_tags=i % 2 == 1)
        write_site(root, host, rows, i)
        counts[host] = len(rows)
    return counts


def write_reddit(root: Path, world: World, wc: WorldConfig, seed: int, rng: random.Random) -> dict[str, int]:
    subs: list[dict[str, Any]] = []
    comments: list[dict[str, Any]] = []

    def post(sub: str, title: str, score: int) -> dict[str, Any]:
        n = len(subs) + 1
        obj = {"id": f"w{n:05d}", "subreddit": sub, "title": title, "selftext": "", "score": score,
               "author": f"world_user{rng.randint(1, 500)}", "created_utc": 1420070400 + n * 97,
               "num_comments": rng.randint(0, 3000), "permalink": f"/r/{sub}/comments/w{n:05d}/", "over_18": False}
        subs.append(obj)
        return obj

    for premise, stories in writing_prompts(world, rng, wc.writingprompts):
        p = post("WritingPrompts", f"[WP] {premise}", rng.randint(200, 40000))
        for c, body in enumerate(stories):
            comments.append({"id": f"c{len(comments):06d}", "link_id": f"t3_{p['id']}", "parent_id": f"t3_{p['id']}",
                             "body": body, "score": rng.randint(500, 9000) if c == 0 else rng.randint(1, 50),
                             "subreddit": "WritingPrompts", "author": f"world_writer{rng.randint(1, 400)}"})
    for title, _ in askreddit_titles(world, wc.prompts, seed):
        post("AskReddit", title, rng.randint(50, 60000))
    for _ in range(10):
        post("world_other", "An unrelated post in another subreddit?", rng.randint(1, 90000))
    _zst(root / "RS_2019-10.zst", subs)
    _zst(root / "RC_2019-10.zst", comments)
    return {"submissions": len(subs), "comments": len(comments)}


def write_wikihow(path: Path, world: World, rng: random.Random) -> int:
    articles = wikihow_articles(world, rng)
    with atomic_write(path) as handle:
        writer = csv.writer(handle)
        writer.writerow(["headline", "title", "text"])
        for i, (title, headline, text) in enumerate(articles):
            if i % 4 == 0:
                text = "This article explains the steps.\n" + text
            writer.writerow([headline, title, text])
    return len(articles)


def write_sni(root: Path, world: World, rng: random.Random, n_tasks: int, per_task: int) -> int:
    root.mkdir(parents=True, exist_ok=True)
    tasks = sni_tasks(world, rng, n_tasks, per_task)
    for i, (name, category, definition, instances) in enumerate(tasks, start=1):
        task = {"Contributors": ["lima-world"], "Source": ["synthetic"], "Definition": [definition],
                "Categories": [category], "Input_language": ["English"], "Output_language": ["English"],
                "Positive Examples": [{"input": instances[0][0], "output": instances[0][1][0], "explanation": ""}],
                "Negative Examples": [],
                "Instances": [{"id": f"task{i:03d}-{k}", "input": inp, "output": out}
                              for k, (inp, out) in enumerate(instances)]}
        with atomic_write(root / f"task{i:03d}_{name}.json") as handle:
            json.dump(task, handle, indent=1)
    return len(tasks)
