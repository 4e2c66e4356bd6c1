"""Helpers for the annotation tests: a real `python -m lima annotate serve` subprocess and a seeded store.

The server runs as its own process (not a thread) so a test can SIGKILL it like a crashed machine would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lima.annotate import db
from lima.annotate.cli import make_pairs

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("LIMA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
XSS_RESPONSE = ('Look: <script>window.__pwned = "script"; alert("script")</script>\n\n'
                '<img src=x onerror="window.__pwned = \'img\'; alert(\'img\')">\n\n'
                '[click me](javascript:window.__pwned=\'link\')')


def write_responses(folder: Path, system: str, n: int, xss_at: int | None = None) -> Path:
    """A responses file in the generation contract; prompt p{i} is shared by every system."""
    path = folder / f"{system}.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            text = XSS_RESPONSE if i == xss_at else (
                f"**{system}** answers question {i}.\n\n- first point\n- second point\n\n"
                f"```python\nprint({i})\n```\n\nA closing sentence from {system}.")
            handle.write(json.dumps({"system": system, "prompt_id": f"p{i}", "prompt": f"How do I do thing {i}?",
                                     "response": text, "decoding": {}, "model": system, "created": "x",
                                     "stop_reason": "eot", "n_tokens": 10}) + "\n")
    return path


def make_store(folder: Path, n_items: int, overlap: int, annotators: list[str], admins: tuple[str, ...] = (),
               seed: int = 7, xss_at: int | None = None) -> tuple[Path, dict[str, str]]:
    """A loaded store plus {name: token}."""
    a = write_responses(folder, "lima", n_items, xss_at=xss_at)
    b = write_responses(folder, "alpaca", n_items, xss_at=xss_at)
    path = folder / "annotations.sqlite"
    conn = db.connect(path)
    db.insert_items(conn, make_pairs(a, b), overlap=overlap, seed=seed)
    tokens = {name: db.add_annotator(conn, name) for name in annotators}
    tokens.update({name: db.add_annotator(conn, name, admin=True) for name in admins})
    conn.close()
    return path, tokens


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m lima annotate serve` on a free loopback port."""

    def __init__(self, db_path: Path, synchronous: str = "FULL") -> None:
        self.db_path = db_path
        self.synchronous = synchronous
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""

    def start(self, timeout: float = 30.0) -> Server:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lima", "annotate", "serve", "--db", str(self.db_path), "--port", str(port),
             "--synchronous", self.synchronous],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("annotation server did not come up")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, exactly like a crash."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def browser_or_skip():
    """Launch Debian chromium through Playwright; skip when it is missing unless LIMA_REQUIRE_BROWSER=1."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("LIMA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"LIMA_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("LIMA_REQUIRE_BROWSER") == "1":
            raise
        pytest.skip("playwright not installed")
    return sync_playwright, CHROMIUM, CHROMIUM_ARGS


def write_rows(path: Path, rows: list[dict]) -> Path:
    """A JSONL file of the given rows (responses, conversations or gold answers)."""
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


def client_for(db_path: Path, token: str | None = None, claim_ttl: float = 3600.0, bearer: bool = True):
    """An in-process HTTP client of the app (real requests through the ASGI stack; 500s come back as 500)."""
    from fastapi.testclient import TestClient

    from lima.annotate.app import create_app

    client = TestClient(create_app(db_path, synchronous="NORMAL", claim_ttl=claim_ttl),
                        raise_server_exceptions=False, follow_redirects=False)
    if token and bearer:
        client.headers["Authorization"] = f"Bearer {token}"
    elif token:
        assert client.get(f"/start?token={token}").status_code == 303
    return client
