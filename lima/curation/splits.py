"""Turn candidates into the released-data row format and compose train / dev / test from the profile.

Row: `{"id", "messages": [{"role", "content"}...], "source", "meta"}`; `source` uses the released LIMA labels
(`stackexchange`, `wikihow`, `writingprompts`, `nlp`, `authors`, `multi_turn`) plus `askreddit`. Test rows hold
only the user turn. Ids are the interim ids, so an example keeps its id across runs and selectors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from lima.curation.filters import SECandidate
from lima.curation.markdown import html_to_markdown, language_from_tags
from lima.curation.sampling import check_count, choose_prompt_field, rng_for
from lima.curation.selectors import Item, select

TRAIN_KEYS = ("stackexchange_stem", "stackexchange_other", "wikihow", "writingprompts", "nlp", "authors")
DEV_KEYS = ("authors",)
TEST_KEYS = ("askreddit", "authors")
WIKIHOW_LICENSE = "CC BY-NC-SA 3.0 (wikiHow)"
SNI_LICENSE = "Apache-2.0 (Super-NaturalInstructions)"


def _row(rid: str, user: str, assistant: str | None, source: str, meta: dict[str, Any]) -> dict[str, Any]:
    messages = [{"role": "user", "content": user}]
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return {"id": rid, "messages": messages, "source": source, "meta": meta}


def se_row(cand: SECandidate, prompt_from: str, seed: int) -> dict[str, Any]:
    field = choose_prompt_field(prompt_from, seed, cand.id)
    prompt = cand.title
    if field == "body":
        body = html_to_markdown(cand.question_html, language_from_tags(cand.tags))
        prompt, field = (body, "body") if body.strip() else (cand.title, "title (empty body)")
    return _row(cand.id, prompt, cand.answer_markdown, "stackexchange", {**cand.meta, "prompt_from": field})


def wikihow_prompt(title: str) -> str:
    """The paper's prompt is the article title as a question ("How to …?")."""
    title = " ".join(str(title).split())
    return title if title.endswith(("?", ".", "!")) else f"{title}?"


def wikihow_row(r: Mapping[str, Any]) -> dict[str, Any]:
    return _row(str(r["id"]), wikihow_prompt(r["title"]), str(r["text"]).strip(), "wikihow",
                {"category": r.get("category"), "title": r.get("title"), "license": WIKIHOW_LICENSE})


_REDDIT_TAG = re.compile(r"^\s*(\[\s*[A-Za-z]{1,4}\s*\]\s*)+")


def writingprompts_row(r: Mapping[str, Any]) -> dict[str, Any]:
    """The `[WP]`-style tag is subreddit bookkeeping, not part of the request."""
    prompt = _REDDIT_TAG.sub("", str(r["title"])).strip()
    if str(r.get("selftext") or "").strip() not in {"", "[removed]", "[deleted]"}:
        prompt = f"{prompt}\n\n{str(r['selftext']).strip()}"
    meta = {k: r.get(k) for k in ("url", "author", "story_author", "story_id", "score", "story_score",
                                  "selection")}
    return _row(str(r["id"]), prompt, str(r["story"]).strip(), "writingprompts", meta)


def sni_row(r: Mapping[str, Any]) -> dict[str, Any]:
    output = r["output"][0] if isinstance(r.get("output"), list) else r["output"]
    prompt = f"{str(r['definition']).strip()}\n\n{str(r['input']).strip()}".strip()
    return _row(str(r["id"]), prompt, str(output).strip(), "nlp",
                {"task": r.get("task"), "categories": list(r.get("categories") or []), "license": SNI_LICENSE})


def authored_row(r: Mapping[str, Any], source: str = "authors", prompt_only: bool = False) -> dict[str, Any]:
    messages = [{"role": m["role"], "content": m["content"]} for m in r["messages"]]
    if prompt_only:
        messages = messages[:1]
    meta = {"group": r.get("group"), "split": r.get("split"), "tags": list(r.get("tags") or [])}
    return {"id": str(r["id"]), "messages": messages, "source": source, "meta": meta}


def askreddit_row(r: Mapping[str, Any]) -> dict[str, Any]:
    meta = {k: r.get(k) for k in ("url", "score", "num_comments", "selection")}
    return _row(str(r["id"]), str(r["title"]).strip(), None, "askreddit", meta)


def _check_keys(name: str, counts: Mapping[str, int], known: Sequence[str]) -> None:
    unknown = sorted(set(counts) - set(known))
    if unknown:
        raise ValueError(f"curation.{name}: unknown source(s) {unknown}; known: {list(known)}")


def _authored(rows: Sequence[Mapping[str, Any]], split: str, group: str) -> list[Mapping[str, Any]]:
    return [r for r in rows if r.get("split") == split and r.get("group", group) == group
            and "multi_turn" not in (r.get("tags") or [])]


def build_splits(ccfg: Any, seed: int, se: Mapping[str, Mapping[str, list[SECandidate]]],
                 site_sizes: Mapping[str, float], interim: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Compose the three splits (and train + dialogues) from the candidates; returns rows and selection info."""
    _check_keys("train", ccfg.train, TRAIN_KEYS)
    _check_keys("dev", ccfg.dev, DEV_KEYS)
    _check_keys("test", ccfg.test, TEST_KEYS)
    allow = ccfg.allow_shortfall
    info: dict[str, Any] = {"selector": ccfg.selector, "sources": {}, "shortfalls": {}}

    def pick(key: str, items: list[Item], rule: str, n: int, selector: str | None = None) -> list[Any]:
        """`selector` None = the configured training selector; the test split always uses the paper's rule."""
        if n <= 0:
            return []
        chosen = select(selector or ccfg.selector, items, n, rule, rng_for(seed, "select", key),
                        temperature=ccfg.temperature, sizes=dict(site_sizes), embedding_model=ccfg.embedding_model,
                        source=key, allow_shortfall=allow)
        info["sources"][key] = {**chosen.info, "candidates": len(items), "requested": n, "taken": len(chosen.items)}
        if len(chosen.items) < n:
            info["shortfalls"][key] = {"requested": n, "available": len(items)}
        return [i.payload for i in chosen.items]

    train: list[dict[str, Any]] = []
    for group in ("stem", "other"):
        key = f"stackexchange_{group}"
        items = [Item(c.id, c.site, c.rank_key, f"{c.title}\n{c.answer_markdown}", len(c.answer_markdown), c)
                 for site_cands in se.get(group, {}).values() for c in site_cands]
        train += [se_row(c, ccfg.prompt_from, seed) for c in pick(key, items, "temperature", ccfg.train.get(key, 0))]

    wh = [Item(str(r["id"]), str(r.get("category") or "uncategorised"), (0,), f"{r['title']}\n{r['text']}",
               len(str(r["text"])), r) for r in interim.get("wikihow", [])]
    train += [wikihow_row(r) for r in pick("wikihow", wh, "category", ccfg.train.get("wikihow", 0))]

    wp_rows = [r for r in interim.get("writingprompts", []) if r.get("accepted", True) and r.get("story")]
    wp = [Item(str(r["id"]), "writingprompts", (int(r.get("score") or 0), int(r.get("story_score") or 0)),
               f"{r['title']}\n{r['story']}", len(str(r["story"])), r) for r in wp_rows]
    train += [writingprompts_row(r) for r in pick("writingprompts", wp, "top", ccfg.train.get("writingprompts", 0))]

    sni: dict[str, Mapping[str, Any]] = {}
    for r in interim.get("sni", []):  # one instance per task, as in the paper
        sni.setdefault(str(r.get("task")), r)
    nlp = [Item(str(r["id"]), str(r.get("task")), (0,), f"{r['definition']}\n{r['input']}\n{r['output']}",
                len(str(r["output"])), r) for r in sni.values()]
    train += [sni_row(r) for r in pick("nlp", nlp, "random", ccfg.train.get("nlp", 0))]

    authored = interim.get("authored", [])
    train += _authored_train(authored, ccfg, seed, info)

    dev_pool = _authored(authored, "dev", "A")
    n_dev = check_count("dev authors (Group A)", len(dev_pool), ccfg.dev.get("authors", 0), allow)
    dev = [authored_row(r) for r in sorted(dev_pool, key=lambda r: str(r["id"]))[:n_dev]]

    ask = [r for r in interim.get("askreddit", []) if r.get("accepted", True)]
    ask_items = [Item(str(r["id"]), "askreddit", (int(r.get("score") or 0),), str(r["title"]), 0, r) for r in ask]
    test = [askreddit_row(r) for r in pick("askreddit", ask_items, "top", ccfg.test.get("askreddit", 0), "lima")]
    test_pool = _authored(authored, "test", "B")
    n_test = check_count("test authors (Group B)", len(test_pool), ccfg.test.get("authors", 0), allow)
    test += [authored_row(r, prompt_only=True) for r in sorted(test_pool, key=lambda r: str(r["id"]))[:n_test]]

    dialogues = sorted((r for r in authored if r.get("split", "train") == "train"
                        and "multi_turn" in (r.get("tags") or [])), key=lambda r: str(r["id"]))
    n_dialogues = check_count("multi_turn dialogues", len(dialogues), ccfg.multi_turn, allow)
    multiturn = train + [authored_row(r, source="multi_turn") for r in dialogues[:n_dialogues]]
    for name, n, avail in (("dev_authors", ccfg.dev.get("authors", 0), len(dev_pool)),
                           ("test_authors", ccfg.test.get("authors", 0), len(test_pool)),
                           ("multi_turn", ccfg.multi_turn, len(dialogues))):
        if avail < n:
            info["shortfalls"][name] = {"requested": n, "available": avail}
    return {"train": train, "dev": dev, "test": test, "train_multiturn": multiturn, "info": info}


def _authored_train(authored: Sequence[Mapping[str, Any]], ccfg: Any, seed: int,
                    info: dict[str, Any]) -> list[dict[str, Any]]:
    """Group A train examples, of which `safety_refusals` must be refusals (tag "safety")."""
    n = ccfg.train.get("authors", 0)
    pool = sorted(_authored(authored, "train", "A"), key=lambda r: str(r["id"]))
    safety = [r for r in pool if "safety" in (r.get("tags") or [])]
    rest = [r for r in pool if "safety" not in (r.get("tags") or [])]
    n_safety = check_count("train authors: safety refusals", len(safety), min(ccfg.safety_refusals, n),
                           ccfg.allow_shortfall)
    n_rest = check_count("train authors (Group A, non-refusal)", len(rest), n - n_safety, ccfg.allow_shortfall)
    rng = rng_for(seed, "select", "authors")
    chosen = rng.sample(safety, n_safety) + rng.sample(rest, n_rest)
    info["sources"]["authors"] = {"rule": "all Group A train (seeded when more exist)", "candidates": len(pool),
                                  "requested": n, "taken": len(chosen), "safety_refusals": n_safety}
    if len(chosen) < n:
        info["shortfalls"]["authors"] = {"requested": n, "available": len(pool)}
    return [authored_row(r) for r in chosen]
