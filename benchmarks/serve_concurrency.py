"""`lima serve` throughput: 16 concurrent clients, batched vs serialised, in interleaved blocks.

Three servers of the same smoke-size model run in this process on loopback: `batched` (the default:
continuous batching, up to 16 rows, requests join and leave the running batch between decode steps),
`windowed` (each batch one generate() call; reported for comparison) and `serialised` (`max_batch_size=1`,
exactly the old one-request-at-a-time lock). Each block sends the same 32 chat requests (16 client threads,
2 requests each, back to back) to one server; blocks rotate through the servers (benchmarks/interleave.py) and
`ratio` is the median of the per-block batched/serialised requests/s ratios. Requests use the paper's decoding (T 0.7, top-p 0.9), a seed each, and
lengths from 16 to 46 tokens (`ignore_eos`, so both arms generate exactly the same number of tokens and
rows of one batch finish at different steps, as real replies do). `identical_replies` is the share of
seeded replies that came back the same from all three servers (batch composition does not change a row's
tokens, up to float rounding of the padded batch). Writes benchmarks/results/serve_concurrency.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from interleave import describe, headline, run_blocks  # noqa: E402

from lima.io import write_json  # noqa: E402
from lima.model import SmokeModelConfig, add_eot_token, build_smoke_base, load_model  # noqa: E402
from lima.serve import background_server, create_app  # noqa: E402

CLIENTS = 16
FULL = {"requests_per_client": 2, "blocks": 5}
QUICK = {"requests_per_client": 1, "blocks": 3}
TOPICS = ["tides", "bread", "prime numbers", "sleep", "volcanoes", "taxes", "jazz", "compilers"]


def build_model(out: Path) -> Path:
    corpus = [f"Question {i}: how does {w} work? Answer: {w} works because of many small steps. " * 3
              for i, w in enumerate(["tides", "bread", "primes", "sleep", "music", "rain"] * 20)]
    build_smoke_base(SmokeModelConfig(pretrain_steps=20), corpus, out)
    model, tok = load_model(out)
    add_eot_token(tok, model)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def requests(per_client: int) -> list[list[dict]]:
    """One list of request bodies per client; the same bodies every block and for both servers."""
    out = []
    for c in range(CLIENTS):
        bodies = []
        for r in range(per_client):
            i = c * per_client + r
            bodies.append({"model": "bench", "max_tokens": 16 + (7 * i) % 31, "temperature": 0.7, "top_p": 0.9,
                           "seed": 1000 + i, "ignore_eos": True,
                           "messages": [{"role": "user", "content": f"Can you explain {TOPICS[i % 8]} to a "
                                                                    f"{10 + i}-year-old, with an example?"}]})
        out.append(bodies)
    return out


def run_block(url: str, plan: list[list[dict]], clients: list[httpx.Client], replies: dict[int, str],
              latencies: list[float]) -> float:
    """All clients at once (a barrier), each sending its requests back to back; returns requests/s."""
    barrier = threading.Barrier(CLIENTS + 1)
    errors: list[BaseException] = []

    def client(bodies: list[dict], http: httpx.Client) -> None:
        barrier.wait()
        for body in bodies:
            start = time.perf_counter()
            try:
                reply = http.post(f"{url}/chat/completions", json=body)
                reply.raise_for_status()
            except BaseException as err:  # noqa: BLE001 - reported after the block
                errors.append(err)
                return
            latencies.append(time.perf_counter() - start)
            replies[body["seed"]] = reply.json()["choices"][0]["message"]["content"]

    threads = [threading.Thread(target=client, args=(bodies, http)) for bodies, http in zip(plan, clients, strict=True)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed; first: {errors[0]!r}")
    return sum(len(b) for b in plan) / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"fewer requests and blocks: {QUICK}")
    parser.add_argument("--blocks", type=int, help="interleaved blocks (default: 5, quick 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve_concurrency.json")
    opts = parser.parse_args(argv)
    settings = dict(QUICK if opts.quick else FULL, quick=opts.quick, clients=CLIENTS, max_batch_size=16,
                    batch_window_ms=10, torch_threads=torch.get_num_threads())
    if opts.blocks:
        settings["blocks"] = opts.blocks
    plan = requests(settings["requests_per_client"])
    arms = ("batched", "windowed", "serialised")
    replies: dict[str, dict[int, str]] = {name: {} for name in arms}
    latencies: dict[str, list[float]] = {name: [] for name in arms}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(Path(tmp) / "model")
        apps = {"batched": create_app(model_dir, model_name="bench", max_batch_size=16, batch_window=0.01),
                "windowed": create_app(model_dir, model_name="bench", max_batch_size=16, batch_window=0.01,
                                       batching="windowed"),
                "serialised": create_app(model_dir, model_name="bench", max_batch_size=1)}
        with contextlib.ExitStack() as stack:
            urls = {name: stack.enter_context(background_server(app)) + "/v1" for name, app in apps.items()}
            # one keep-alive HTTP client per simulated client and arm, made once: blocks time requests only
            # (idle connections are dropped after 1 s, before the server's 5 s keep-alive timeout can race them)
            limits = httpx.Limits(keepalive_expiry=1.0)
            http = {name: [httpx.Client(timeout=600, limits=limits) for _ in range(CLIENTS)] for name in urls}

            def arm(name: str) -> float:
                return run_block(urls[name], plan, http[name], replies[name], latencies[name])

            blocks = run_blocks({name: (lambda name=name: arm(name)) for name in arms}, settings["blocks"],
                                reference="serialised", warmup_blocks=1)
            stats = {name: dict(app.state.engine.stats) for name, app in apps.items()}
            for clients in http.values():
                for c in clients:
                    c.close()
        for app in apps.values():
            app.state.engine.close()
    same = sum(replies["batched"][s] == replies["serialised"][s] == replies["windowed"][s] for s in replies["batched"])
    p50 = {name: round(statistics.median(v), 3) for name, v in latencies.items()}
    windowed = blocks["ratios"]["windowed"]
    result = {"name": "serve_concurrency", **headline(blocks, "batched", 2), "unit": "requests/s",
              "target_ratio": 4, "windowed_ratio": round(windowed["median"], 2),
              "windowed_ratio_spread": {k: round(windowed[k], 2) for k in ("min", "q25", "q75", "max")},
              "requests_per_block": sum(len(b) for b in plan),
              "generated_tokens_per_block": sum(b["max_tokens"] for c in plan for b in c),
              **{f"p50_latency_s_{name}": p50[name] for name in arms},
              "identical_replies": round(same / max(1, len(replies["batched"])), 3),
              "mean_rows_per_step": round(stats["batched"]["generated_tokens"] / max(1, stats["batched"]["steps"]
                                                                                    + stats["batched"]["batches"]), 2),
              "settings": settings, "engine_stats": stats, "interleave": blocks}
    write_json(opts.out, result, config=settings)
    print(describe(blocks))
    print(json.dumps({k: v for k, v in result.items() if k not in {"interleave", "engine_stats"}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
