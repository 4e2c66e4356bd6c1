"""Import a system's responses from a file: our JSONL contract, any JSONL with an id/response, or AlpacaEval.

AlpacaEval's `model_outputs.json` is a JSON list of {"instruction", "output", "generator", ...} with no ids,
so rows are matched to our prompts by the exact (whitespace-trimmed) prompt text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lima.generate.responses import prompt_text
from lima.io import InputError, iter_jsonl, write_jsonl

_ID_KEYS = ("prompt_id", "id")
_TEXT_KEYS = ("response", "output", "completion")
_PROMPT_KEYS = ("prompt", "instruction")


def _read(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return list(iter_jsonl(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InputError(f"{path}: expected a JSON list of objects (AlpacaEval model_outputs.json layout)")
    return data


def import_responses(path: str | Path, system: str, prompts: list[dict[str, Any]], output: str | Path) -> Path:
    """Write `output` in the responses contract for the prompts the file answers; error when it answers none."""
    path = Path(path)
    rows = _read(path)
    by_id: dict[str, dict[str, Any]] = {}
    by_text: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(rows, start=1):
        text_key = next((k for k in _TEXT_KEYS if isinstance(row.get(k), str)), None)
        if text_key is None:
            raise InputError(f"{path}: row {number}: no response text (one of {list(_TEXT_KEYS)})")
        if (pid := next((row[k] for k in _ID_KEYS if row.get(k) is not None), None)) is not None:
            by_id.setdefault(str(pid), row)
        if (ptext := next((row[k] for k in _PROMPT_KEYS if isinstance(row.get(k), str)), None)) is not None:
            by_text.setdefault(ptext.strip(), row)
    out, missing = [], []
    for prompt in prompts:
        text = prompt_text(prompt)
        row = by_id.get(str(prompt["id"])) or by_text.get(text.strip())
        if row is None:
            missing.append(prompt["id"])
            continue
        response = next(row[k] for k in _TEXT_KEYS if isinstance(row.get(k), str))
        out.append({"system": system, "prompt_id": str(prompt["id"]), "prompt": text, "response": response,
                    "decoding": row.get("decoding"), "model": row.get("model") or row.get("generator"),
                    "created": row.get("created"), "stop_reason": row.get("stop_reason", "imported"),
                    "n_tokens": row.get("n_tokens")})
    if not out:
        raise InputError(f"{path}: none of its {len(rows)} rows matches any of the {len(prompts)} prompts "
                         f"(by prompt_id/id or by prompt text)")
    if missing:
        print(f"{system}: {path} answers {len(out)} of {len(prompts)} prompts; missing e.g. {missing[:3]}",
              file=sys.stderr)
    write_jsonl(output, out, inputs=[path], extra={"system": system, "imported_from": str(path),
                                                   "missing_prompt_ids": missing})
    return Path(output)
