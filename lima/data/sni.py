"""Super-NaturalInstructions task files → one random instance from each of N distinct generation tasks.

The paper took 50 generation tasks (summarisation, paraphrasing, style transfer, …). SNI labels each task with
`Categories`; we treat a task as generation when one of its categories is in GENERATION_CATEGORIES (ours, listed
below) and its input and output languages are English. Tasks are picked in a seeded random order, one seeded
random instance each (first listed output).
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

from lima.io import InputError, write_jsonl

log = logging.getLogger(__name__)

GENERATION_CATEGORIES = frozenset({
    "Summarization", "Title Generation", "Question Generation", "Paraphrasing", "Text Simplification",
    "Style Transfer", "Dialogue Generation", "Story Composition", "Sentence Composition", "Data to Text",
    "Question Rewriting", "Text Completion", "Explanation", "Poem Generation", "Sentence Expansion",
    "Code to Text", "Answer Generation", "Information Extraction", "Sentence Compression", "Grammar Error Correction",
})


def load_task(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    if not raw.strip():
        raise InputError(f"{path}: byte 0: empty file")
    try:
        task = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: byte {err.start}: invalid UTF-8") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: line {err.lineno}, column {err.colno}: invalid JSON ({err.msg})") from None
    if not isinstance(task, dict) or "Definition" not in task or "Instances" not in task:
        raise InputError(f"{path}: line 1: not an SNI task file (needs 'Definition' and 'Instances')")
    return task


def is_generation(task: dict[str, Any]) -> bool:
    english = all(task.get(k, ["English"]) == ["English"] for k in ("Input_language", "Output_language"))
    return english and bool(GENERATION_CATEGORIES & set(task.get("Categories") or []))


def collect(path: str | Path, output: str | Path, n_tasks: int, seed: int, config: Any = None) -> dict[str, int]:
    path = Path(path)
    files = sorted(path.glob("task*.json")) if path.is_dir() else [path]
    if not files or not files[0].exists():
        raise InputError(f"{path}: no SNI task*.json files found")
    stats: Counter = Counter(files=len(files))
    generation = []
    for file in files:
        task = load_task(file)
        if is_generation(task):
            generation.append((file.stem, task))
    stats["generation_tasks"] = len(generation)
    rng = random.Random(seed)
    rng.shuffle(generation)
    rows = []
    for name, task in generation:
        if len(rows) >= n_tasks:
            break
        instances = [i for i in task["Instances"] if i.get("input") and i.get("output")]
        if not instances:
            stats["skipped_malformed"] += 1
            continue
        inst = rng.choice(instances)
        definition = task["Definition"]
        rows.append({"id": f"sni:{name}:{inst.get('id', '0')}", "task": name,
                     "definition": " ".join(definition) if isinstance(definition, list) else str(definition),
                     "input": inst["input"], "output": inst["output"][0] if isinstance(inst["output"], list)
                     else str(inst["output"]), "categories": list(task.get("Categories") or [])})
    if len(rows) < n_tasks:
        log.warning("sni: wanted %d distinct generation tasks, found %d", n_tasks, len(rows))
    stats["tasks"] = write_jsonl(output, rows, config=config, inputs=[path], extra={"stats": stats})
    log.info("sni: %s", dict(stats))
    return dict(stats)
