"""`lima serve`, an OpenAI-compatible server for local model directories.

    protocol.py     the wire format: parsing chat and completions requests, roles, context; re-exports below
    fields.py       the shared request checks: APIError/bad, field tables (400s that name the field), Sampling
    responses.py    the response bodies, logprobs shapes and server-sent events
    engine.py       the worker thread: continuous or windowed batching, the forward passes, guided choice
    scheduler.py    the engine's queue: submit/close, stats, which queued requests run next
    replies.py      what a row's tokens become: stop strings, visible text, streamed deltas, finish events
    rows.py         per-request state: rows, jobs, the per-row sampler and stopping criterion, seeds
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
