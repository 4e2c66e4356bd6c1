"""Hand-written examples (the paper's Group A train/dev, Group B test, refusals, multi-turn dialogues).

They are plain JSONL files a person writes, one object per line:
`{"id", "split": "train"|"dev"|"test", "group": "A"|"B", "messages": [{"role", "content"}, ...], "tags": [...]}`
(tags: "safety" for refusals or safety-sensitive prompts, "structure" for complex-structure examples, "ood" for
out-of-distribution test prompts, "multi_turn" for dialogues). Test rows hold only the user turn.

The repo ships a SMALL set written for it (`lima/resources/authored/`, one consistent style: acknowledge the
question, then answer) so the smoke pipeline is complete. At paper scale (200 train + 50 dev + 230 test, 13
refusals, 30 dialogues) users point `data.authored` at their own files or train on the released GAIR/lima data
(`lima.data.released`).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from lima.io import InputError, iter_jsonl, write_jsonl

log = logging.getLogger(__name__)

SPLITS = {"train", "dev", "test"}
ROLES = {"user", "assistant"}


def validate(row: dict[str, Any], where: str) -> dict[str, Any]:
    for key in ("id", "split", "group", "messages"):
        if key not in row:
            raise InputError(f"{where}: missing key {key!r}")
    if row["split"] not in SPLITS or row["group"] not in {"A", "B"}:
        raise InputError(f"{where}: split must be train/dev/test and group A/B, got {row['split']!r}/{row['group']!r}")
    msgs = row["messages"]
    if not msgs or not all(isinstance(m, dict) and m.get("role") in ROLES and str(m.get("content", "")).strip()
                           for m in msgs):
        raise InputError(f"{where}: messages must be non-empty {{role: user|assistant, content}} objects")
    expected = ["user", "assistant"] * len(msgs)
    if [m["role"] for m in msgs] != expected[: len(msgs)]:
        raise InputError(f"{where}: messages must alternate user/assistant starting with user")
    if row["split"] == "test" and len(msgs) != 1:
        raise InputError(f"{where}: test rows hold only the user turn")
    if row["split"] != "test" and msgs[-1]["role"] != "assistant":
        raise InputError(f"{where}: train/dev rows must end with an assistant turn")
    return {"id": row["id"], "split": row["split"], "group": row["group"],
            "messages": [{"role": m["role"], "content": m["content"]} for m in msgs],
            "tags": list(row.get("tags") or [])}


def read_authored(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not files[0].exists():
        raise InputError(f"{path}: no authored *.jsonl files found")
    rows, seen = [], set()
    for file in files:
        for lineno, row in enumerate(iter_jsonl(file), start=1):
            item = validate(row, f"{file}: row {lineno}")
            if item["id"] in seen:
                raise InputError(f"{file}: row {lineno}: duplicate id {item['id']!r}")
            seen.add(item["id"])
            rows.append(item)
    return rows


def collect(path: str | Path, output: str | Path, config: Any = None) -> dict[str, int]:
    rows = read_authored(path)
    stats = Counter(f"{r['split']}:{r['group']}" for r in rows)
    stats.update(f"tag:{t}" for r in rows for t in r["tags"])
    stats["rows"] = write_jsonl(output, rows, config=config, inputs=[path], extra={"stats": stats})
    log.info("authored: %s", dict(stats))
    return dict(stats)
