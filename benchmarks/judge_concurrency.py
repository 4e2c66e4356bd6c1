"""Judge throughput: pairwise judge calls at concurrency 16 vs 1, interleaved in blocks, then a cached re-run.

The server is the repo's OpenAI-compatible stub (tests/openai_stub.py) on loopback, in its own process (as a
real endpoint would be), answering every request after a fixed 20 ms, like a remote API whose latency
dominates. Every run goes through the real judge path (`judge_pairwise` → LLMClient → openai SDK → HTTP →
SQLite cache). One block is 300 judge calls (150 prompts x 2 orders; `--quick`: 60) into a fresh cache, at
concurrency 16 and at 1, interleaved (`benchmarks/interleave.py`); ratio = median of the per-block ratios.
`cached_rerun_requests` is the client's count of HTTP attempts when the last concurrency-16 block is re-run
from its cache (must be 0). Writes benchmarks/results/judge_concurrency.json (every block kept).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from interleave import describe, headline, run_blocks  # noqa: E402

from lima.io import write_json  # noqa: E402
from lima.judge import judge_pairwise  # noqa: E402
from lima.llm_client import EndpointConfig, LLMClient  # noqa: E402

FULL = {"prompts": 150, "blocks": 5}     # x 2 orders = 300 judge calls per block and arm
QUICK = {"prompts": 30, "blocks": 3}
LATENCY = 0.02


def _rows(system: str, n: int) -> list[dict]:
    return [{"system": system, "prompt_id": f"p{i}", "prompt": f"Question {i}?", "response": f"{system} answer {i}"}
            for i in range(n)]


SERVER = f"""
import sys
sys.path.insert(0, {str(ROOT / "tests")!r}); sys.path.insert(0, {str(ROOT)!r})
from openai_stub import OpenAIStub
with OpenAIStub(default={{"content": "Verdict: A", "delay": {LATENCY}}}) as stub:
    print(stub.base_url, flush=True)
    sys.stdin.read()                      # serve until the benchmark closes our stdin
"""


def _run(base_url: str, concurrency: int, cache: Path, n: int) -> tuple[float, dict]:
    cfg = {"profile": "bench", "judge": {"model": "stub-model", "api_key_env": None, "cache": str(cache)}}
    endpoint = EndpointConfig(base_url=base_url, model="stub-model", concurrency=concurrency,
                              backoff_initial=0.05)
    client = LLMClient(endpoint, cache_path=cache)
    start = time.perf_counter()
    rows = judge_pairwise(cfg, _rows("lima", n), _rows("baseline", n), client=client, desc=False)
    elapsed = time.perf_counter() - start
    client.close()
    if len(rows) != n:
        raise RuntimeError(f"judge_pairwise returned {len(rows)} judgments for {n} prompts")
    return elapsed, dict(client.stats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"fewer calls and blocks: {QUICK}")
    parser.add_argument("--blocks", type=int, help="interleaved blocks (default: 5, quick 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "judge_concurrency.json")
    opts = parser.parse_args(argv)
    settings = dict(QUICK if opts.quick else FULL, quick=opts.quick, server_latency_s=LATENCY)
    if opts.blocks:
        settings["blocks"] = opts.blocks
    n = settings["prompts"]
    calls = 2 * n
    runs: list[dict] = []
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)

            def arm(concurrency: int) -> float:
                cache = tmp_path / f"c{concurrency}-{len(runs)}.sqlite"          # fresh cache: every call is sent
                seconds, stats = _run(base_url, concurrency, cache, n)
                runs.append({"concurrency": concurrency, "seconds": round(seconds, 3), "cache": cache.name,
                             "requests": int(stats["requests"])})
                return calls / seconds

            blocks = run_blocks({"c16": lambda: arm(16), "c1": lambda: arm(1)}, settings["blocks"], reference="c1")
            last16 = next(r for r in reversed(runs) if r["concurrency"] == 16)
            t_cached, s_cached = _run(base_url, 16, tmp_path / last16["cache"], n)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    rerun_requests = int(s_cached["requests"])
    result = {"name": "judge_concurrency", **headline(blocks, "c16", 2), "unit": "judge calls/s",
              "cached_rerun_requests": rerun_requests, "calls_per_block": calls, "server_latency_s": LATENCY,
              "seconds_cached_rerun": round(t_cached, 3), "cache_hits_rerun": int(s_cached["cache_hits"]),
              "settings": settings, "target_ratio": 8, "runs": runs, "interleave": blocks}
    write_json(opts.out, result, config=settings)
    print(describe(blocks))
    print(json.dumps({k: v for k, v in result.items() if k not in {"interleave", "runs"}}, indent=2))
    return 0 if rerun_requests == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
