"""The released LIMA data (GAIR/lima: `train.jsonl` 1,030 rows, `test.jsonl` 300 rows) and exporters.

Rows are `{"conversations": [user, assistant, user, ...], "source": ...}`. We load them from a local folder or
file, or from the hub (gated; needs `datasets`, network and an accepted licence — CC BY-NC-SA) and convert them to
this repo's `messages` rows, ShareGPT (`{"id", "conversations": [{"from": "human"|"gpt", "value"}], "source"}`)
or Alpaca (`{"instruction", "input", "output", "id", "source"}`; single-turn only, multi-turn rows are skipped
and counted). Any input format `lima.data.formats` reads is accepted (GAIR/lima, ShareGPT/FastChat JSON or JSONL,
Alpaca JSON, our own outputs), so an export can be read back and ids and `source` survive the round trip.

`python -m lima export --input PATH_OR_HUB_ID --split train --format sharegpt --output out.jsonl`
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lima.data.formats import read_rows
from lima.io import InputError, write_jsonl

HUB_ID = "GAIR/lima"
FORMATS = ("messages", "sharegpt", "alpaca")


def _to_messages(row: dict[str, Any], where: str, index: int, split: str) -> dict[str, Any]:
    turns = row.get("conversations")
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
        raise InputError(f"{where}: row {index}: 'conversations' must be a non-empty list of strings")
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    return {"id": f"lima-{split}:{index}", "messages": messages, "source": row.get("source") or "",
            "meta": {"released": True}}


def load_released(path: str | Path | None = None, split: str = "train") -> list[dict[str, Any]]:
    """Released rows as `messages` rows. `path`: a folder with <split>.jsonl, a file in any format
    `lima.data.formats` reads, or None → the hub."""
    if path is None or str(path) == HUB_ID:
        try:
            import datasets

            ds = datasets.load_dataset(HUB_ID, split=split)
        except Exception as err:   # gated / offline / not installed: say what to do instead
            raise InputError(f"{HUB_ID}: could not load split {split!r} from the hub ({err}); download "
                             f"train.jsonl/test.jsonl after accepting the licence and pass the folder") from None
        return [_to_messages(dict(r), HUB_ID, i, split) for i, r in enumerate(ds, start=1)]
    path = Path(path)
    file = path / f"{split}.jsonl" if path.is_dir() else path
    if not file.exists():
        raise InputError(f"{file}: not found")
    return read_rows(file, split)[0]


def _keep_ids(row: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """Carry `id` and `source` into formats that have no field for them, so a round trip keeps them."""
    return {**out, "id": row["id"], "source": row.get("source") or ""}


def to_sharegpt(row: dict[str, Any]) -> dict[str, Any]:
    who = {"user": "human", "assistant": "gpt", "system": "system"}
    return _keep_ids(row, {"conversations": [{"from": who[m["role"]], "value": m["content"]}
                                             for m in row["messages"]]})


def to_alpaca(row: dict[str, Any]) -> dict[str, Any] | None:
    msgs = row["messages"]
    if len(msgs) > 2 or msgs[0]["role"] != "user":
        return None
    return _keep_ids(row, {"instruction": msgs[0]["content"], "input": "",
                           "output": msgs[1]["content"] if len(msgs) == 2 else ""})


def export(rows: list[dict[str, Any]], fmt: str, output: str | Path, inputs: list[str] | None = None) -> dict[str, int]:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    if fmt == "messages":
        out = rows
    elif fmt == "sharegpt":
        out = [to_sharegpt(r) for r in rows]
    else:
        out = [a for a in (to_alpaca(r) for r in rows) if a is not None]
    n = write_jsonl(output, out, inputs=[p for p in inputs or [] if Path(p).exists()],
                    extra={"format": fmt, "skipped_multi_turn": len(rows) - len(out)})
    return {"rows": n, "skipped_multi_turn": len(rows) - len(out)}


def main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Load the released LIMA data (GAIR/lima) or a "
                                     "conversation file (GAIR/lima JSONL, ShareGPT/FastChat JSON or JSONL, Alpaca "
                                     "JSON or JSONL, this repo's messages JSONL such as data/processed/train.jsonl) "
                                     "and export it as messages, ShareGPT or Alpaca JSONL; ids and source are kept.")
    parser.add_argument("--input", default=HUB_ID, help=f"folder with train.jsonl/test.jsonl, a JSON/JSONL file, or "
                        f"{HUB_ID} for the hub (gated, needs network) (default: %(default)s)")
    parser.add_argument("--split", default="train", choices=("train", "test"))
    parser.add_argument("--format", default="messages", choices=FORMATS)
    parser.add_argument("--output", required=True, help="output JSONL file (written atomically)")
    args = parser.parse_args(argv)
    try:
        rows = load_released(None if args.input == HUB_ID else args.input, args.split)
        stats = export(rows, args.format, args.output, inputs=[args.input])
    except InputError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(stats))
    return 0
