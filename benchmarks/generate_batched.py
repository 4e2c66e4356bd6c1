"""Batched vs one-by-one generation with the paper's decoding: 16 test prompts, the smoke-size model, CPU.

Both arms use the same HFGenerator and the same decoding (nucleus 0.9, temperature 0.7, generated-only
repetition penalty 1.2, stop at EOT, 64 new tokens); only the batch size differs (16 vs 1). Throughput counts
the response tokens each arm actually produced (padding after a row's EOT is not counted). The arms run
interleaved (`benchmarks/interleave.py`): one block generates all prompts once, batched or one by one, with the
same seed, so every block does the same work. `--quick`: 4 prompts, 16 new tokens, 2 blocks.
Writes benchmarks/results/generate_batched.json (ratio = median of per-block ratios; every block kept).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from interleave import describe, headline, run_blocks  # noqa: E402

from lima.generate import DecodingConfig, HFGenerator  # noqa: E402
from lima.io import read_jsonl, write_json  # noqa: E402
from lima.model import SmokeModelConfig, add_eot_token, build_smoke_base, load_model  # noqa: E402

FULL = {"prompts": 16, "max_new_tokens": 64, "blocks": 3}
QUICK = {"prompts": 4, "max_new_tokens": 16, "blocks": 2}


def prompts(n: int) -> list[list[dict[str, str]]]:
    """The first `n` smoke test prompts when the pipeline has made them, else `n` fixed questions."""
    test = ROOT / "data" / "processed" / "test.jsonl"
    if test.exists():
        rows = read_jsonl(test)[:n]
        if len(rows) == n:
            return [r["messages"] for r in rows]
    topics = ["tides", "bread", "prime numbers", "sleep", "volcanoes", "taxes", "jazz", "compilers"]
    return [[{"role": "user", "content": f"Can you explain {topics[i % 8]} to a {10 + i}-year-old, with an example?"}]
            for i in range(n)]


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


def run(gen: HFGenerator, convs: list, batch_size: int, log: list[dict]) -> float:
    """One block: every prompt once at `batch_size`; returns generated tokens/s and logs tokens and seconds."""
    start = time.perf_counter()
    results = gen.generate(convs, seed=0, batch_size=batch_size)
    seconds = time.perf_counter() - start
    tokens = sum(r.n_tokens + (r.stop_reason == "eot") for r in results)
    log.append({"batch_size": batch_size, "tokens": tokens, "seconds": round(seconds, 3)})
    return tokens / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"fewer prompts, tokens and blocks: {QUICK}")
    parser.add_argument("--blocks", type=int, help="interleaved blocks (default: 3, quick 2)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "generate_batched.json")
    opts = parser.parse_args(argv)
    settings = dict(QUICK if opts.quick else FULL, quick=opts.quick)
    if opts.blocks:
        settings["blocks"] = opts.blocks
    torch.manual_seed(0)
    n, convs = settings["prompts"], prompts(settings["prompts"])
    log: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(Path(tmp) / "model")
        gen = HFGenerator(model_dir, DecodingConfig(max_new_tokens=settings["max_new_tokens"], batch_size=n),
                          device="cpu")
        gen.generate(convs[:2], seed=0)                                   # warm-up
        blocks = run_blocks({"batched": lambda: run(gen, convs, n, log), "one_by_one": lambda: run(gen, convs, 1, log)},
                            settings["blocks"], reference="one_by_one")
    result = {"name": "generate_batched", **headline(blocks, "batched", 2), "unit": "generated tokens/s",
              "prompts": n, "max_new_tokens": settings["max_new_tokens"], "torch_threads": torch.get_num_threads(),
              "settings": settings, "target_ratio": 6, "runs": log, "interleave": blocks}
    write_json(opts.out, result, config=settings)
    print(describe(blocks))
    print(json.dumps({k: v for k, v in result.items() if k not in {"interleave", "runs"}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
