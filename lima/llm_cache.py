"""The judge client's response cache: the cache key, an endpoint's identity, and the SQLite store.

Why its own module: what a cached verdict is keyed on — the model, the messages, the parameters and *which
endpoint answered* (a checkpoint hash for `lima serve`, the server's reported model and fingerprint
elsewhere) — decides whether a re-run may reuse it, so it is kept apart from the transport and retry logic.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def cache_key(model: str, messages: Sequence[dict[str, Any]], params: dict[str, Any], cache_extra: Any = None,
              identity: dict[str, Any] | None = None) -> str:
    body = {"model": model, "messages": list(messages), "params": params, "extra": cache_extra}
    if identity is not None:
        body["endpoint"] = identity
    payload = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def normalize_base_url(url: str) -> str:
    """Scheme and host lower-cased, default port and trailing slash dropped: one spelling per endpoint."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    netloc = host if port in (None, default) else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


def identity_from_card(base_url: str, card: dict[str, Any] | None) -> dict[str, Any]:
    """The cache identity of an endpoint from its model card (`GET /models/{model}`), or from its URL alone."""
    card = card or {}
    fingerprint = card.get("checkpoint_sha256") or card.get("system_fingerprint")
    if card.get("owned_by") == "lima" and fingerprint:
        return {"checkpoint": str(fingerprint)}             # lima serve: the weights, wherever they are served
    out: dict[str, Any] = {"base_url": normalize_base_url(base_url)}
    for key in ("root", "system_fingerprint", "checkpoint_sha256"):
        if card.get(key):
            out[key] = str(card[key])
    return out


class ResponseCache:
    """A persistent key → JSON store; WAL mode so several processes (notebook + CLI) can share one file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (only an OS crash can lose the last commits), and a
        # full fsync per answer would serialise a concurrent judge run on the disk.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, "
                           "response TEXT NOT NULL, created REAL NOT NULL)")
        self._conn.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, response: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                               (key, model, json.dumps(response, ensure_ascii=False), time.time()))
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
