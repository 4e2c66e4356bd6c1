"""Turning responses files into items: pairs (pairwise), single responses (absolute), conversations (per-turn).

A prompt may be a string or a message list (a multi-turn prompt); either way the item keeps a plain-text
prompt (for exports) and, for a list, the messages as JSON so the page shows the whole conversation. An
item's key is its task, prompt id and *sorted* systems, so loading a pair with `--a`/`--b` swapped finds the
item already there instead of adding it again.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
from pathlib import Path
from typing import Any

from lima.annotate.store import RATINGS, TASKS, now, write_tx
from lima.io import InputError, iter_jsonl

ROLE_NAMES = {"user": "User", "assistant": "Assistant", "system": "System"}


def _messages(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: a multi-turn prompt must be a non-empty list of messages")
    out = []
    for n, msg in enumerate(value):
        if not isinstance(msg, dict) or not isinstance(msg.get("content"), str):
            raise InputError(f"{where}: message {n} needs a string 'content' (and a 'role')")
        out.append({"role": str(msg.get("role", "user")), "content": msg["content"]})
    return out


def render_conversation(messages: list[dict[str, str]]) -> str:
    """A message list as plain text ("User: ...\\n\\nAssistant: ..."), for exports and searching."""
    return "\n\n".join(f"{ROLE_NAMES.get(m['role'], m['role'])}: {m['content']}" for m in messages)


def prompt_fields(prompt: Any, where: str) -> tuple[str, list[dict[str, str]] | None]:
    """(plain-text prompt, messages or None) from a string prompt or a message list."""
    if isinstance(prompt, str):
        return prompt, None
    messages = _messages(prompt, where)
    return render_conversation(messages), messages


def read_responses(path: str | Path) -> dict[str, dict[str, Any]]:
    """Responses rows keyed by prompt_id (first sample only); duplicates and missing fields are input errors."""
    rows: dict[str, dict[str, Any]] = {}
    for lineno, row in enumerate(iter_jsonl(path), start=1):
        missing = [k for k in ("system", "prompt_id", "prompt", "response") if k not in row]
        if missing:
            raise InputError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}")
        if int(row.get("sample", 0) or 0) != 0:
            continue
        key = str(row["prompt_id"])
        if key in rows:
            raise InputError(f"{path}:{lineno}: duplicate prompt_id {key!r}")
        text, messages = prompt_fields(row["prompt"], f"{path}:{lineno}")
        rows[key] = row | {"prompt": text, "messages": messages, "response": str(row["response"])}
    return rows


def make_pairs(a_file: str | Path, b_file: str | Path) -> list[dict[str, Any]]:
    """Pair two systems' responses on prompt_id; prompts only one file has are left out and reported."""
    a_rows, b_rows = read_responses(a_file), read_responses(b_file)
    shared = [pid for pid in a_rows if pid in b_rows]
    if not shared:
        raise InputError(f"{a_file} and {b_file} share no prompt_id")
    pairs = []
    for pid in shared:
        a, b = a_rows[pid], b_rows[pid]
        if a["prompt"] != b["prompt"]:
            raise InputError(f"prompt_id {pid!r}: the prompt text differs between {a_file} and {b_file}")
        if a["system"] == b["system"]:
            raise InputError(f"prompt_id {pid!r}: both files are system {a['system']!r}")
        pairs.append({"task": "pairwise", "prompt_id": pid, "prompt": a["prompt"], "messages": a["messages"],
                      "system_a": str(a["system"]), "response_a": a["response"], "system_b": str(b["system"]),
                      "response_b": b["response"]})
    only = len(a_rows) + len(b_rows) - 2 * len(shared)
    if only:
        print(f"note: {only} prompt(s) appear in only one file and were left out", file=sys.stderr)
    return pairs


def single_items(path: str | Path) -> list[dict[str, Any]]:
    """One absolute-rating item (Fail / Pass / Excellent) per response of one system."""
    return [{"task": "absolute", "prompt_id": pid, "prompt": r["prompt"], "messages": r["messages"],
             "system_a": str(r["system"]), "response_a": r["response"]} for pid, r in read_responses(path).items()]


def conversation_items(path: str | Path) -> list[dict[str, Any]]:
    """Per-turn items from conversation rows `{id, messages, system|condition}` (the Fig. 7 transcripts)."""
    items = []
    for lineno, row in enumerate(iter_jsonl(path), start=1):
        where = f"{path}:{lineno}"
        system = row.get("system", row.get("condition"))
        if row.get("id") is None or system is None:
            raise InputError(f"{where}: a conversation row needs 'id' and 'system' (or 'condition')")
        messages = _messages(row.get("messages"), where)
        if not any(m["role"] == "assistant" for m in messages):
            raise InputError(f"{where}: the conversation has no assistant turn to rate")
        last = next(m["content"] for m in reversed(messages) if m["role"] == "assistant")
        items.append({"task": "per_turn", "prompt_id": str(row["id"]), "prompt": render_conversation(messages),
                      "messages": messages, "system_a": str(system), "response_a": last})
    if not items:
        raise InputError(f"{path}: no conversations")
    return items


def apply_gold(items: list[dict[str, Any]], gold_path: str | Path) -> int:
    """Mark attention-check items from `{prompt_id, answer}` rows; returns how many items became gold.

    `answer` is the better system's name or "tie" (pairwise) or fail/pass/excellent (absolute); it is stored
    relative to the item's own system_a/system_b.
    """
    by_id = {str(it["prompt_id"]): it for it in items}
    marked = 0
    for lineno, row in enumerate(iter_jsonl(gold_path), start=1):
        where = f"{gold_path}:{lineno}"
        item = by_id.get(str(row.get("prompt_id")))
        if item is None:
            raise InputError(f"{where}: prompt_id {row.get('prompt_id')!r} is not among the loaded items")
        answer = str(row.get("answer", "")).strip()
        if item["task"] == "pairwise":
            sides = {item["system_a"]: "a", item["system_b"]: "b", "tie": "tie"}
            if answer not in sides:
                raise InputError(f"{where}: answer must be {item['system_a']!r}, {item['system_b']!r} or 'tie'")
            item["gold"] = sides[answer]
        elif item["task"] == "absolute" and answer.lower() in RATINGS:
            item["gold"] = answer.lower()
        else:
            raise InputError(f"{where}: answer must be one of {RATINGS} for an absolute item"
                             if item["task"] == "absolute" else f"{where}: per-turn items have no gold answers")
        marked += 1
    return marked


def item_key(item: dict[str, Any]) -> str:
    systems = sorted((item["system_a"], item["system_b"])) if item["task"] == "pairwise" else [item["system_a"]]
    return "\x1f".join([item["task"], str(item["prompt_id"]), *systems])


def insert_items(conn: sqlite3.Connection, items: list[dict[str, Any]], overlap: int, seed: int) -> dict[str, int]:
    """Insert items in a seeded random order, pairs with a random displayed side, in one transaction.

    The first `overlap` non-gold items of the shuffled order form the agreement set that every annotator sees;
    gold items are always shown to everyone. Items already in the store (same key, whichever order the pair's
    systems came in) are skipped so that a repeated load is harmless.
    """
    rng = random.Random(seed)
    order = list(range(len(items)))
    rng.shuffle(order)
    sides = [rng.choice("ab") for _ in items]
    created = now()
    inserted = skipped = n_overlap = rank = 0
    with write_tx(conn):
        start = conn.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM items").fetchone()[0]
        for position, index in enumerate(order):
            item = {"task": "pairwise", "messages": None, "system_b": None, "response_b": None, "gold": None,
                    **items[index]}
            if item["task"] not in TASKS:
                raise ValueError(f"task must be one of {TASKS}, got {item['task']!r}")
            is_overlap = 1 if item["gold"] is not None else int(rank < overlap)
            rank += item["gold"] is None
            side = sides[index] if item["task"] == "pairwise" else "a"
            messages = json.dumps(item["messages"], ensure_ascii=False) if item["messages"] else None
            cur = conn.execute(
                "INSERT OR IGNORE INTO items (task, item_key, prompt_id, prompt, messages, system_a, response_a,"
                " system_b, response_b, shown_left, position, overlap, gold, seed, created)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (item["task"], item_key(item), str(item["prompt_id"]), item["prompt"], messages, item["system_a"],
                 item["response_a"], item["system_b"], item["response_b"], side, start + position, is_overlap,
                 item["gold"], seed, created))
            if cur.rowcount:
                inserted += 1
                n_overlap += is_overlap
            else:
                skipped += 1
    return {"inserted": inserted, "skipped": skipped, "overlap": n_overlap}
