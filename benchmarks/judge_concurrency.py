"""Judge throughput: 600 pairwise judge calls at concurrency 16 vs 1, then a re-run from the cache.

The server is the repo's OpenAI-compatible stub (tests/openai_stub.py) on loopback, in its own process (as a
real endpoint would be), answering every request after a fixed 20 ms, like a remote API whose latency
dominates. Every run goes through the real judge path (`judge_pairwise` → LLMClient → openai SDK → HTTP →
SQLite cache). `cached_rerun_requests` is the client's count of HTTP attempts on the re-run (must be 0).
Writes benchmarks/results/judge_concurrency.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from lima.judge import judge_pairwise  # noqa: E402
from lima.llm_client import EndpointConfig, LLMClient  # noqa: E402

N_PROMPTS = 300          # x 2 orders = 600 judge calls
LATENCY = 0.02


def _rows(system: str) -> list[dict]:
    return [{"system": system, "prompt_id": f"p{i}", "prompt": f"Question {i}?", "response": f"{system} answer {i}"}
            for i in range(N_PROMPTS)]


SERVER = f"""
import sys
sys.path.insert(0, {str(ROOT / "tests")!r}); sys.path.insert(0, {str(ROOT)!r})
from openai_stub import OpenAIStub
with OpenAIStub(default={{"content": "Verdict: A", "delay": {LATENCY}}}) as stub:
    print(stub.base_url, flush=True)
    sys.stdin.read()                      # serve until the benchmark closes our stdin
"""


def _run(base_url: str, concurrency: int, cache: Path) -> tuple[float, dict]:
    cfg = {"profile": "bench", "judge": {"model": "stub-model", "api_key_env": None, "cache": str(cache)}}
    endpoint = EndpointConfig(base_url=base_url, model="stub-model", concurrency=concurrency,
                              backoff_initial=0.05)
    client = LLMClient(endpoint, cache_path=cache)
    start = time.perf_counter()
    rows = judge_pairwise(cfg, _rows("lima"), _rows("baseline"), client=client, desc=False)
    elapsed = time.perf_counter() - start
    client.close()
    assert len(rows) == N_PROMPTS
    return elapsed, dict(client.stats)


def main() -> int:
    calls = 2 * N_PROMPTS
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            t16, s16 = _run(base_url, 16, tmp_path / "c16.sqlite")
            t1, s1 = _run(base_url, 1, tmp_path / "c1.sqlite")
            t_cached, s_cached = _run(base_url, 16, tmp_path / "c16.sqlite")
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    rerun_requests = int(s_cached["requests"])
    result = {"name": "judge_concurrency", "ours": round(calls / t16, 2), "baseline": round(calls / t1, 2),
              "ratio": round(t1 / t16, 2), "cached_rerun_requests": rerun_requests,
              "calls": calls, "server_latency_s": LATENCY, "seconds_c16": round(t16, 2), "seconds_c1": round(t1, 2),
              "seconds_cached_rerun": round(t_cached, 2), "cache_hits_rerun": int(s_cached["cache_hits"]),
              "requests_c16": int(s16["requests"]), "requests_c1": int(s1["requests"])}
    out = ROOT / "benchmarks" / "results" / "judge_concurrency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if rerun_requests == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
