"""Atomic artefact writing, manifests and strict JSONL reading.

Every file the pipeline produces is written to a temporary sibling and renamed into place, so an
interrupted or failing step never leaves a file that looks complete. Beside it goes a small manifest
(config, git commit, input hashes) so that a reader can check how an artefact was made.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

MANIFEST_SUFFIX = ".manifest.json"
_UMASK = os.umask(0)
os.umask(_UMASK)


class InputError(ValueError):
    """Bad input data: the message names the file and the position (line or byte)."""


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temp file beside `path`; rename it over `path` only if the block finishes without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; artefacts should get the usual permissions
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def path_fingerprint(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, or of the sorted (relative name, sha256) list of a directory's files."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.endswith(MANIFEST_SUFFIX)):
        digest.update(f"{child.relative_to(path)}:{file_sha256(child)}\n".encode())
    return digest.hexdigest()


def git_commit() -> str | None:
    """The commit of the checkout (with '-dirty' when there are uncommitted changes), or None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


def manifest_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path / "manifest.json" if path.is_dir() else path.with_name(path.name + MANIFEST_SUFFIX)


def write_manifest(path: str | os.PathLike[str], config: Any = None,
                   inputs: Iterable[str | os.PathLike[str]] = (), extra: dict[str, Any] | None = None) -> Path:
    """Record how `path` was made: its hash, the config, the git commit and the hashes of its inputs."""
    path = Path(path)
    manifest = {
        "artifact": str(path),
        "sha256": path_fingerprint(path),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "config": _jsonable(config),
        "inputs": {str(p): path_fingerprint(p) for p in inputs if Path(p).exists()},
    }
    if extra:
        manifest.update(_jsonable(extra))
    target = manifest_path(path)
    with atomic_write(target) as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return target


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]], config: Any = None,
                inputs: Iterable[str | os.PathLike[str]] = (), extra: dict[str, Any] | None = None) -> int:
    """Write rows atomically (all or nothing) plus a manifest; returns the row count."""
    count = 0
    with atomic_write(path, "wb") as handle:
        for row in rows:
            handle.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS))
            count += 1
    write_manifest(path, config=config, inputs=inputs, extra={"rows": count, **(extra or {})})
    return count


def write_json(path: str | os.PathLike[str], obj: Any, config: Any = None,
               inputs: Iterable[str | os.PathLike[str]] = (), manifest: bool = True) -> None:
    with atomic_write(path) as handle:
        json.dump(_jsonable(obj), handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    if manifest:
        write_manifest(path, config=config, inputs=inputs)


def write_csv(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
              config: Any = None, inputs: Iterable[str | os.PathLike[str]] = (), digits: int = 6) -> Path:
    """A contract table: atomic CSV with exactly `columns` first (extra keys after), plus its manifest.

    Floats are rounded to `digits` and NaN is written empty, so a table diffs cleanly between runs.
    """
    import csv

    extra = [k for row in rows for k in row if k not in columns]
    header = list(columns) + list(dict.fromkeys(extra))

    def cell(value: Any) -> Any:
        if isinstance(value, float):
            return "" if math.isnan(value) else round(value, digits)
        return value

    with atomic_write(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: cell(row.get(k)) for k in header})
    write_manifest(path, config=config, inputs=list(inputs))
    return Path(path)


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield JSON objects, one per non-blank line; a bad line raises InputError naming file and line."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if raw.strip():
                yield parse_json_line(raw, f"{path}:{lineno}")


def parse_json_line(raw: bytes, where: str) -> dict[str, Any]:
    """One JSON-lines record; a bad one raises InputError starting with `where` (file and line)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{where}: invalid UTF-8 at byte {err.start} of the line") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{where}: invalid JSON ({err.msg}, column {err.colno})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return obj


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    return list(iter_jsonl(path))


def selected_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint a training run's `selected.json` names, or None when the run has no such file.

    The stored path may be absolute, relative to the working directory at training time, or relative to the
    run directory (a run folder that was moved); the first one that exists wins.
    """
    run_dir = Path(run_dir)
    selected = run_dir / "selected.json"
    if not selected.exists():
        return None
    try:
        chosen = Path(json.loads(selected.read_text(encoding="utf-8"))["path"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputError(f"{selected}: expected JSON with a 'path' key ({err})") from None
    from lima.config import resolve

    for candidate in (chosen, run_dir / chosen, resolve(chosen), run_dir / chosen.name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"{selected}: selected checkpoint {chosen} does not exist")
