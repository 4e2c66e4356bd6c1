"""A checkpoint's identity: a hash of the files that decide what the model answers.

`lima serve` reports it as `system_fingerprint` (in every completion and in its model card, `GET /v1/models/
{id}`), and the judge client keys its cache on it: a retrained judge served under the same name gets new
cache keys, while the same checkpoint restarted on another port hits the old ones.

Hashed: every file under the model directory except training state (`training_state.pt`, optimiser,
scheduler and RNG files, which do not change an answer). Up to `FULL_HASH_BYTES` in all, every byte is hashed;
above it (a 7B model and up, where hashing every byte would add minutes to a server start), each file
contributes its size, its first and last MiB and 64 evenly spaced 64 KiB blocks — fine-tuning changes every
weight tensor, so a retrained checkpoint cannot keep all of those bytes. The method is part of the result.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

FULL_HASH_BYTES = 2 * 1024**3
SKIP_PREFIXES = ("training_state", "optimizer", "scheduler", "rng_state", "trainer_state", "training_args")
_EDGE, _BLOCK, _BLOCKS = 1 << 20, 64 << 10, 64


def _files(model_dir: Path) -> list[Path]:
    out = []
    for path in sorted(model_dir.rglob("*")):
        if path.is_file() and not path.name.startswith(SKIP_PREFIXES) and not path.name.startswith("."):
            out.append(path)
    return out


def checkpoint_fingerprint(model_dir: str | os.PathLike[str]) -> tuple[str, str]:
    """(sha256 hex digest, method) of a model directory; method is "sha256-full" or "sha256-sampled"."""
    root = Path(model_dir)
    files = _files(root)
    total = sum(p.stat().st_size for p in files)
    full = total <= FULL_HASH_BYTES
    digest = hashlib.sha256(b"lima-checkpoint-v1\0")
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.relative_to(root).as_posix()}\0{size}\0".encode())
        with open(path, "rb") as handle:
            if full or size <= 2 * _EDGE + _BLOCKS * _BLOCK:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
                continue
            offsets = [0, size - _EDGE] + [(size * k) // (_BLOCKS + 1) for k in range(1, _BLOCKS + 1)]
            for offset in offsets:
                handle.seek(offset)
                digest.update(handle.read(_EDGE if offset in (0, size - _EDGE) else _BLOCK))
    return digest.hexdigest(), "sha256-full" if full else "sha256-sampled"


def system_fingerprint(sha: str) -> str:
    """The short form clients see (OpenAI's fingerprints look like `fp_44709d6fcb`)."""
    return f"fp_lima_{sha[:16]}"
