"""Batched vs one-by-one generation with the paper's decoding: 16 test prompts, the smoke-size model, CPU.

Both arms use the same HFGenerator and the same decoding (nucleus 0.9, temperature 0.7, generated-only
repetition penalty 1.2, stop at EOT, 64 new tokens); only the batch size differs (16 vs 1). Throughput counts
the response tokens each arm actually produced (padding after a row's EOT is not counted).
Writes benchmarks/results/generate_batched.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lima.generate import DecodingConfig, HFGenerator  # noqa: E402
from lima.model import SmokeModelConfig, add_eot_token, build_smoke_base, load_model  # noqa: E402

N_PROMPTS = 16
MAX_NEW = 64


def prompts() -> list[list[dict[str, str]]]:
    test = ROOT / "data" / "processed" / "test.jsonl"
    if test.exists():
        rows = [json.loads(line) for line in test.read_text().splitlines() if line.strip()][:N_PROMPTS]
        if len(rows) == N_PROMPTS:
            return [r["messages"] for r in rows]
    topics = ["tides", "bread", "prime numbers", "sleep", "volcanoes", "taxes", "jazz", "compilers"]
    return [[{"role": "user", "content": f"Can you explain {topics[i % 8]} to a {10 + i}-year-old, with an example?"}]
            for i in range(N_PROMPTS)]


def build_model(out: Path) -> Path:
    corpus = [f"Question {i}: how does {w} work? Answer: {w} works because of many small steps. " * 3
              for i, w in enumerate(["tides", "bread", "primes", "sleep", "music", "rain"] * 20)]
    build_smoke_base(SmokeModelConfig(pretrain_steps=20), corpus, out)
    model, tok = load_model(out)
    add_eot_token(tok, model)
    model.generation_config.eos_token_id = [tok.convert_tokens_to_ids("<|eot|>")]
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def run(gen: HFGenerator, convs: list, batch_size: int) -> tuple[float, int]:
    start = time.perf_counter()
    results = gen.generate(convs, seed=0, batch_size=batch_size)
    return time.perf_counter() - start, sum(r.n_tokens + (r.stop_reason == "eot") for r in results)


def main() -> int:
    torch.manual_seed(0)
    convs = prompts()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(Path(tmp) / "model")
        gen = HFGenerator(model_dir, DecodingConfig(max_new_tokens=MAX_NEW, batch_size=N_PROMPTS), device="cpu")
        gen.generate(convs[:2], seed=0)                                   # warm-up
        t_one, n_one = run(gen, convs, batch_size=1)
        t_batch, n_batch = run(gen, convs, batch_size=N_PROMPTS)
    ours, baseline = n_batch / t_batch, n_one / t_one
    result = {"name": "generate_batched", "ours": round(ours, 1), "baseline": round(baseline, 1),
              "ratio": round(ours / baseline, 2), "unit": "generated tokens/s",
              "prompts": len(convs), "max_new_tokens": MAX_NEW, "batched_tokens": n_batch, "batched_s": round(t_batch, 2),
              "one_by_one_tokens": n_one, "one_by_one_s": round(t_one, 2), "torch_threads": torch.get_num_threads(),
              "target_ratio": 6}
    out = ROOT / "benchmarks" / "results" / "generate_batched.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
