"""`python -m lima serve`: an OpenAI-compatible server (chat, completions, streaming) for a local model directory.

The implementation lives in the `lima.serving` package (protocol, engine, app, fingerprint); this module
keeps the command and the names other code imports (`serve_in_background`, `background_server`,
`create_app`). docs/serving.md describes the server.
"""

from __future__ import annotations

from lima.serving import background_server, create_app, is_loopback, main, serve_in_background

__all__ = ["background_server", "create_app", "is_loopback", "main", "serve_in_background"]
