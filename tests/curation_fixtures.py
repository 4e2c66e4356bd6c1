"""Small hand-built `{interim}` files for the curation tests (the collection contract in docs/common)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lima.io import write_jsonl

WORDS = ["water", "grind", "roast", "temperature", "pressure", "extraction", "bean", "flavour", "acid", "body",
         "filter", "kettle", "brew", "ratio", "minute", "cup", "aroma", "crema", "burr", "dose", "basket", "steam"]


def prose(n_chars: int, salt: int = 0) -> str:
    """Neutral third-person text of about n_chars characters (no "I"/"my", no references)."""
    out: list[str] = []
    i = salt
    while sum(len(s) + 1 for s in out) < n_chars:
        a, b, c = WORDS[i % len(WORDS)], WORDS[(i * 7 + 3) % len(WORDS)], WORDS[(i * 11 + 5) % len(WORDS)]
        out.append(f"The {a} changes the {b} and the {c} in step {i}.")
        i += 1
    return " ".join(out)


def answer_html(n_chars: int = 1500, salt: int = 0, extra: str = "") -> str:
    return f"<p>{extra}{prose(n_chars, salt)}</p>"


def se_row(site: str, qid: int, *, title: str | None = None, answer: str | None = None, score: int = 20,
           qscore: int = 10, tags: list[str] | None = None) -> dict[str, Any]:
    host = site if "." in site else f"{site}.stackexchange.com"
    return {"id": f"se:{site}:{qid}", "site": site, "question_id": qid,
            "title": title if title is not None else f"How does the {WORDS[qid % len(WORDS)]} affect case {qid}?",
            "question_html": f"<p>Question body {qid} about the <a href='http://x'>{WORDS[qid % 5]}</a>.</p>",
            "tags": tags or ["brewing"], "question_score": qscore, "answer_id": qid + 100000,
            "answer_html": answer if answer is not None else answer_html(1500, qid), "answer_score": score,
            "url": f"https://{host}/q/{qid}", "answer_url": f"https://{host}/a/{qid + 100000}",
            "question_author": f"user{qid}", "answer_author": f"author{qid}", "license": "CC BY-SA 4.0",
            "created": "2020-01-01T00:00:00"}


def filter_rows() -> list[dict[str, Any]]:
    """One site ("coffee", group other) with one row per filter outcome, plus one discarded-site row.
    Expected: kept 3 (good, code-only "I", "I/O"), removed: missing 1, score 1, length 2, first_person 2,
    references 1, title 1; discarded_site 1 on ru.stackoverflow.com."""
    code_i = "<pre><code>for I in range(3): print(my_list[I])</code></pre>"
    return [
        se_row("coffee", 1),
        se_row("coffee", 2, score=9),
        se_row("coffee", 3, answer=answer_html(500, 3)),
        se_row("coffee", 4, answer=answer_html(5000, 4)),
        se_row("coffee", 5, answer=answer_html(1500, 5, "I think that ")),
        se_row("coffee", 6, answer=answer_html(1500, 6, "In my experience ")),
        se_row("coffee", 7, answer=answer_html(1500, 7, "As mentioned in the other answer, ")),
        se_row("coffee", 8, title="Why does this happen?"),
        se_row("coffee", 9, answer=""),
        se_row("coffee", 10, answer=answer_html(1500, 10) + code_i),
        se_row("coffee", 11, answer=answer_html(1500, 11, "Disk I/O matters. ")),
        se_row("ru.stackoverflow.com", 12),
    ]


def authored(rid: str, split: str, group: str, prompt: str, tags: list[str] | None = None,
             turns: int = 1) -> dict[str, Any]:
    messages = []
    for t in range(turns):
        messages += [{"role": "user", "content": f"{prompt} (turn {t})" if turns > 1 else prompt},
                     {"role": "assistant", "content": f"Here is a careful answer to: {prompt}. {prose(200, t)}"}]
    return {"id": rid, "split": split, "group": group, "messages": messages, "tags": tags or []}


SUBJECTS = ["volcanoes", "glaciers", "violins", "bridges", "tides", "orchids", "comets", "canals", "lanterns",
            "deserts", "beetles", "harbours", "pianos", "meadows", "castles", "rivers", "forests", "islands"]


def write_interim(root: Path) -> Path:
    """Enough candidates for the test profile's counts (5/5/5/4/2/5, dev 3, test 3+5, 2 dialogues)."""
    interim = root / "data" / "interim"
    se = filter_rows()
    for site, n, base in (("math", 6, 200), ("physics", 3, 300), ("cooking", 3, 400), ("brandnewsite", 1, 500)):
        se += [se_row(site, base + i, qscore=50 - i) for i in range(n)]
    write_jsonl(interim / "stackexchange.jsonl", se)
    cats = ["Food and Entertaining", "Home and Garden", "Sports and Fitness"]
    write_jsonl(interim / "wikihow.jsonl", [
        {"id": f"wikihow:{i}", "title": f"How to Care for {SUBJECTS[i].title()}", "category": cats[i % 3],
         "headline": "", "text": f"The following answer explains {SUBJECTS[i]}. {prose(800, i)}"} for i in range(8)])
    write_jsonl(interim / "writingprompts.jsonl", [
        {"id": f"reddit:wp{i}", "title": f"[WP] A story where {SUBJECTS[i]} learn to sing", "selftext": "",
         "score": 1000 - i, "story": prose(600, i), "story_score": 50, "story_id": f"c{i}",
         "url": f"https://reddit.com/wp{i}", "author": "a", "story_author": "b", "accepted": i != 0,
         "selection": "top_by_score"} for i in range(6)])
    write_jsonl(interim / "askreddit.jsonl", [
        {"id": f"reddit:ar{i}", "title": f"What is the best thing about {SUBJECTS[10 + i]}?", "score": 500 - i,
         "num_comments": 10, "url": f"https://reddit.com/ar{i}", "accepted": i != 1, "selection": "top_by_score"}
        for i in range(5)])
    write_jsonl(interim / "sni.jsonl", [
        {"id": f"sni:task{i:03d}_gen:0", "task": f"task{i:03d}_gen", "definition": f"Rewrite the {SUBJECTS[i]} text.",
         "input": f"Input about {SUBJECTS[i + 1]}.", "output": f"Output about {SUBJECTS[i + 2]}.",
         "categories": ["Paraphrasing"]} for i in range(4)])
    rows = [authored(f"authors:a{i}", "train", "A", f"Explain how {SUBJECTS[i]} form over many years.")
            for i in range(6)]
    rows += [authored(f"authors:s{i}", "train", "A", f"Tell me how to harm {SUBJECTS[i]}.", ["safety"])
             for i in range(2)]
    rows += [authored(f"authors:m{i}", "train", "A", f"Plan a trip to see {SUBJECTS[i]}.", ["multi_turn"], 3)
             for i in range(2)]
    rows += [authored(f"authors:d{i}", "dev", "A", f"Summarise the history of {SUBJECTS[i + 6]} briefly.")
             for i in range(4)]
    rows += [authored(f"authors:t{i}", "test", "B", f"Write a poem comparing {SUBJECTS[i]} and {SUBJECTS[i + 7]}.")
             for i in range(6)]
    write_jsonl(interim / "authored.jsonl", rows)
    return interim
