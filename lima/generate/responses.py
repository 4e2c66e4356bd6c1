"""Resumable response files: `{results}/responses/<system>.jsonl`, one row per (prompt, sample).

Generation at paper scale takes hours, so rows are appended (and flushed) batch by batch; a re-run after a
crash reads what is already there and answers only the rest. At the end the file is rewritten atomically in
prompt order with a manifest — the manifest is what marks the file finished.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from lima.io import InputError, manifest_path, write_jsonl

# a batch producer gets the items [(prompt_row, sample_index)] and a seed, and returns one dict per item with
# at least "response"; "stop_reason", "n_tokens", "model" and "decoding" are taken from it when present
Producer = Callable[[list[tuple[dict[str, Any], int]], int], list[dict[str, Any]]]


def prompt_text(row: dict[str, Any]) -> str:
    """The last user turn of a test row (test rows hold only the prompt)."""
    messages = row.get("messages") or []
    users = [m.get("content", "") for m in messages if m.get("role") == "user"]
    if not users:
        raise InputError(f"prompt {row.get('id')!r} has no user turn")
    return users[-1]


def read_partial(path: Path) -> list[dict[str, Any]]:
    """Rows already written; a torn last line (the run was killed mid-write) is dropped, any other bad line is an error."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    lines = path.read_bytes().split(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rows.append(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if number >= len(lines) - 1:          # the last (unterminated) line: a write cut short
                print(f"{path}:{number}: dropping a partially written last line", file=sys.stderr)
                continue
            raise InputError(f"{path}:{number}: not a JSON object; delete the file to start over") from None
    return rows


def resumable_generate(output: str | os.PathLike[str], system: str, prompts: Sequence[dict[str, Any]],
                       produce: Producer, *, batch_size: int, samples_per_prompt: int = 1, seed: int = 0,
                       model: str | None = None, decoding: dict[str, Any] | None = None,
                       config: Any = None, inputs: Sequence[str | os.PathLike[str]] = (),
                       sort_key: Callable[[dict[str, Any]], int] | None = None) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    ids = [str(p["id"]) for p in prompts]
    if len(set(ids)) != len(ids):
        raise InputError(f"duplicate prompt ids in the prompts for {system}")
    wanted = {(pid, s) for pid in ids for s in range(samples_per_prompt)}
    done: dict[tuple[str, int], dict[str, Any]] = {}
    for row in read_partial(output):
        if row.get("system") != system:
            raise InputError(f"{output}: holds responses of system {row.get('system')!r}, not {system!r}")
        key = (str(row["prompt_id"]), int(row.get("sample", 0)))
        if key in wanted:
            done[key] = row
    todo = [(p, s) for p in prompts for s in range(samples_per_prompt) if (str(p["id"]), s) not in done]
    if todo and done:
        print(f"{system}: resuming, {len(done)} responses already in {output}, {len(todo)} to go", file=sys.stderr)
    if sort_key is not None:
        todo.sort(key=lambda item: -sort_key(item[0]))          # longest first: batches pad little
    if todo:
        # rewrite what we keep (drops a torn line), then append batch by batch
        with open(output, "w", encoding="utf-8") as handle:
            for row in done.values():
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        manifest_path(output).unlink(missing_ok=True)
        bar = tqdm(total=len(todo), desc=f"generate {system}", unit="response")
        with open(output, "a", encoding="utf-8") as handle:
            for start in range(0, len(todo), max(1, batch_size)):
                batch = todo[start:start + batch_size]
                batch_seed = seed + zlib.crc32(" ".join(f"{p['id']}#{s}" for p, s in batch).encode()) % 2**31
                produced = produce(batch, batch_seed)
                if len(produced) != len(batch):
                    raise RuntimeError(f"{system}: producer returned {len(produced)} results for {len(batch)}")
                for (prompt, sample), res in zip(batch, produced, strict=True):
                    row = _row(system, prompt, sample, res, model, decoding, samples_per_prompt)
                    done[(row["prompt_id"], sample)] = row
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
                bar.update(len(batch))
        bar.close()
    ordered = [done[(pid, s)] for pid in ids for s in range(samples_per_prompt)]
    write_jsonl(output, ordered, config=config, inputs=inputs,
                extra={"system": system, "model": model, "decoding": decoding, "samples_per_prompt": samples_per_prompt})
    return output


def context_fields(result: Any) -> dict[str, Any]:
    """What the context guard did to a prompt, for its response row (lima.generate.context)."""
    dropped = int(getattr(result, "prompt_tokens_dropped", 0) or 0)
    return {"prompt_trimmed": dropped > 0, "prompt_tokens_dropped": dropped,
            "max_new_tokens": getattr(result, "max_new_tokens", None)}


def _row(system: str, prompt: dict[str, Any], sample: int, res: dict[str, Any], model: str | None,
         decoding: dict[str, Any] | None, samples_per_prompt: int) -> dict[str, Any]:
    row = {"system": system, "prompt_id": str(prompt["id"]), "prompt": prompt_text(prompt),
           "response": res["response"], "decoding": res.get("decoding", decoding),
           "model": res.get("model", model),
           "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
           "stop_reason": res.get("stop_reason"), "n_tokens": res.get("n_tokens")}
    for key in ("prompt_trimmed", "prompt_tokens_dropped", "max_new_tokens"):   # the context guard, when it ran
        if key in res:
            row[key] = res[key]
    if samples_per_prompt > 1:
        row["sample"] = sample
    return row
