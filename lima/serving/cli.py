"""`python -m lima serve`: an OpenAI-compatible server (chat, completions, streaming) for a local model directory.

    python -m lima serve --model models/lima/checkpoint-epoch-6 --port 8000
    python -m lima serve --model models/lima/checkpoint-epoch-6 --host 0.0.0.0 --api-key "$KEY"

Endpoints: POST /v1/chat/completions and /v1/completions (stream, n, logprobs, seed, stop, guided_choice),
GET /v1/models and /v1/models/{id}, GET /health. Concurrent requests share the forward passes (continuous
batching: they join and leave the running batch between decode steps).
docs/serving.md describes every choice (roles, context, cancellation, batching, unsupported fields).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

API_KEY_ENV = "LIMA_SERVE_API_KEY"


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a local model directory (e.g. models/lima/checkpoint-epoch-6)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: loopback only); "
                                                            "any other host needs --api-key")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--model-name", default=None, help="the name clients must send as `model` (default: the "
                                                           "directory name)")
    parser.add_argument("--dtype", default="float32", help="torch dtype to load the weights in (default float32)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--api-key", default=None,
                        help=f"require `Authorization: Bearer KEY` on /v1 (default: ${API_KEY_ENV} if set); "
                             "required when --host is not a loopback address")
    parser.add_argument("--default-max-tokens", type=int, default=512,
                        help="chat max_tokens when a request gives none, within the context (default 512; "
                             "/v1/completions defaults to 16 like OpenAI)")
    parser.add_argument("--max-tokens-cap", type=int, default=4096,
                        help="the largest max_tokens a request may ask for (default 4096); more is a 400")
    parser.add_argument("--max-model-len", type=int, default=None,
                        help="context length (default: the model's max_position_embeddings)")
    parser.add_argument("--max-batch-size", type=int, default=16,
                        help="rows (requests x n) batched into one generate call (default 16; 1 serialises)")
    parser.add_argument("--batching", choices=["continuous", "windowed"], default="continuous",
                        help="continuous: requests join and leave the running batch between decode steps (models "
                             "with a plain key/value cache; others fall back to windowed); windowed: each batch "
                             "is one generate() call (default continuous)")
    parser.add_argument("--batch-window-ms", type=float, default=10.0,
                        help="how long the first queued request waits for others to share its batch (default 10)")
    return parser


def main(argv: list[str], prog: str = "python -m lima serve") -> int:
    import uvicorn

    from lima.serving.app import create_app
    from lima.serving.http import is_loopback

    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if not Path(args.model).is_dir():
        parser.error(f"--model {args.model}: not a directory")
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    if not is_loopback(args.host) and not api_key:
        parser.error(f"--host {args.host} is reachable from other machines: set --api-key KEY (or ${API_KEY_ENV}) "
                     f"so that only clients holding the key are served")
    for flag, value in (("--max-tokens-cap", args.max_tokens_cap), ("--max-batch-size", args.max_batch_size),
                        ("--default-max-tokens", args.default_max_tokens)):
        if value < 1:
            parser.error(f"{flag} must be >= 1, got {value}")
    app = create_app(args.model, model_name=args.model_name, dtype=args.dtype,
                     default_max_tokens=args.default_max_tokens, api_key=api_key,
                     max_tokens_cap=args.max_tokens_cap, max_model_len=args.max_model_len,
                     max_batch_size=args.max_batch_size, batch_window=args.batch_window_ms / 1000,
                     device=args.device, batching=args.batching)
    card = app.state.card
    print(f"serving {args.model} as {card['id']!r} on http://{args.host}:{args.port}/v1 (context "
          f"{card['max_model_len']}, fingerprint {card['system_fingerprint']}, {card['batching']} batching, "
          f"{'API key required' if api_key else 'no API key'})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    app.state.engine.close()
    return 0
