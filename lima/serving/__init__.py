"""`lima serve`, an OpenAI-compatible server for local model directories, in four parts.

    protocol.py     the wire format: validation (400s that name the field), roles, context, response bodies
    engine.py       the worker thread: continuous or windowed batching, per-row sampling, streaming, cancellation
    app.py          the FastAPI routes (create_app, serve_in_background)
    fingerprint.py  the checkpoint hash reported as system_fingerprint (the judge cache keys on it)
    http.py         background_server (uvicorn in a thread, loopback) and is_loopback
    cli.py          `python -m lima serve`

Only http.py is imported eagerly, so `from lima.serving import background_server` loads no torch.
"""

from __future__ import annotations

from typing import Any

from lima.serving.http import background_server, is_loopback


def create_app(*args: Any, **kwargs: Any) -> Any:
    from lima.serving.app import create_app as create

    return create(*args, **kwargs)


def serve_in_background(*args: Any, **kwargs: Any) -> Any:
    from lima.serving.app import serve_in_background as serve

    return serve(*args, **kwargs)


def main(argv: list[str], prog: str = "python -m lima serve") -> int:
    from lima.serving.cli import main as run

    return run(argv, prog)


__all__ = ["background_server", "create_app", "is_loopback", "main", "serve_in_background"]
