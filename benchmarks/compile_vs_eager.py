"""torch.compile (inductor, CPU) against eager on the fine-tune loop's own optimiser step, and bf16 against fp32.

What is measured: `lima.train.loop.optimizer_step` — the step the trainer runs (packed flat rows, per-example
`packed_sdpa` attention, output layer at trainable positions only, AdamW) — on the smoke-sized tiny Llama
(hidden 128, 4 layers, vocab 2,048, random init), 48 synthetic conversations of 40–450 tokens, batch 8,
micro-batch 4 × max length 512, dropout off, 1 thread. Contestants, interleaved in short blocks
(`benchmarks/interleave.py`): eager fp32 (reference), compiled fp32 (`nn.Module.compile(dynamic=True)` on the
decoder, as `train.compile: on` does), eager bf16 (CPU autocast, fp32 master weights). Every block starts
from the same initial weights and a fresh optimiser and runs the same steps, so the loss curves of the
contestants are comparable step by step; compile time is paid in a warm-up block and reported apart.
Throughput = trainable tokens/s. The machine is small and shared, so the per-block ratios are noisy: read
the median with its spread.

    python benchmarks/compile_vs_eager.py [--blocks 5] [--steps 4]
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from interleave import describe, run_blocks  # noqa: E402

from lima.io import write_json  # noqa: E402
from lima.model import SmokeModelConfig, add_eot_token, build_smoke_model, train_smoke_tokenizer  # noqa: E402
from lima.train import TrainConfig  # noqa: E402
from lima.train.data import encode_all  # noqa: E402
from lima.train.distributed import Runtime  # noqa: E402
from lima.train.loop import Data, optimizer_step  # noqa: E402
from lima.train.packed_attention import use_attention  # noqa: E402
from lima.train.precision import cpu_flags, maybe_compile, pick_dtype  # noqa: E402

WORDS = ["the", "river", "city", "guild", "baker", "lantern", "orchard", "north", "ferry", "clock", "stone", "market", "winter", "garden", "road", "copper", "harbour", "mill", "tower", "bridge", "school", "letter", "ribbon", "field", "meadow", "signal", "candle", "thread"]


def conversations(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))
    return [{"id": f"b{i}", "messages": [{"role": "user", "content": text(rng.randint(8, 60)) + "?"},
                                         {"role": "assistant", "content": text(rng.randint(30, 380)) + "."}]}
            for i in range(n)]


def build(seed: int = 0):
    cfg = SmokeModelConfig()
    rows = conversations(48, seed)
    corpus = [m["content"] for r in rows for m in r["messages"]]
    tokenizer = train_smoke_tokenizer(corpus, cfg.vocab_size, cfg.max_position_embeddings)
    model = build_smoke_model(cfg, tokenizer, seed)
    add_eot_token(tokenizer, model)
    use_attention(model, "packed_sdpa")
    model.config.use_cache = False
    tcfg = TrainConfig(batch_size=8, micro_batch_size=4, max_length=512, residual_dropout=0.0, max_grad_norm=None,
                       learning_rate=1e-3, final_learning_rate=1e-4)
    examples = encode_all(tokenizer, rows, tcfg.max_length, "assistant")
    data = Data(examples=examples, dev_examples=[], dev_rows=[], dropped_ids=[],
                steps_per_epoch=len(examples) // tcfg.batch_size, total_steps=len(examples) // tcfg.batch_size)
    return model, tokenizer, tcfg, data


def contestant(model, init: dict, tcfg: TrainConfig, data: Data, pad_id: int, dtype: torch.dtype, steps: int,
               curves: list[list[float]]):
    """One block: reset to `init`, fresh AdamW, `steps` optimiser steps; returns trainable tokens/s."""
    rt = Runtime()
    plans = [data.batches(step, tcfg, pad_id, flat=True) for step in range(steps)]

    def block() -> float:
        model.load_state_dict(init)
        optimizer = torch.optim.AdamW(model.parameters(), lr=tcfg.learning_rate, betas=(0.9, 0.95),
                                      weight_decay=0.1, foreach=True)
        losses, tokens = [], 0
        start = time.perf_counter()
        for step, batches in enumerate(plans):
            lr = tcfg.learning_rate + (tcfg.final_learning_rate - tcfg.learning_rate) * step / max(1, steps - 1)
            loss, n_trainable, _ = optimizer_step(model, optimizer, rt, batches, lr, dtype, True, None)
            losses.append(loss)
            tokens += n_trainable
        seconds = time.perf_counter() - start
        curves.append(losses)
        return tokens / seconds
    return block


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=5, help="measured blocks per contestant (default 5)")
    parser.add_argument("--steps", type=int, default=4, help="optimiser steps per block (default 4)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "compile_vs_eager.json")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    eager, tokenizer, tcfg, data = build()
    init = copy.deepcopy(eager.state_dict())
    compiled = copy.deepcopy(eager)
    maybe_compile(compiled.get_decoder(), "on", "cpu")
    pad_id = tokenizer.pad_token_id
    curves: dict[str, list[list[float]]] = {"eager_fp32": [], "compiled_fp32": [], "eager_bf16": []}
    blocks = {"eager_fp32": contestant(eager, init, tcfg, data, pad_id, torch.float32, args.steps,
                                       curves["eager_fp32"]),
              "compiled_fp32": contestant(compiled, init, tcfg, data, pad_id, torch.float32, args.steps,
                                          curves["compiled_fp32"]),
              "eager_bf16": contestant(eager, init, tcfg, data, pad_id, torch.bfloat16, args.steps,
                                       curves["eager_bf16"])}
    t0 = time.perf_counter()
    blocks["compiled_fp32"]()                    # compile (fwd + bwd graphs) outside the measured blocks
    compile_seconds = time.perf_counter() - t0
    for values in curves.values():
        values.clear()
    result = run_blocks(blocks, blocks=args.blocks, reference="eager_fp32", warmup_blocks=1)
    first = {name: values[0] for name, values in curves.items()}
    diff = {name: max(abs(a - b) for a, b in zip(first[name], first["eager_fp32"], strict=True))
            for name in first if name != "eager_fp32"}
    out = {"name": "compile_vs_eager", "ratio": result["ratios"]["compiled_fp32"]["median"],
           "bf16_vs_fp32": result["ratios"]["eager_bf16"]["median"],
           "max_loss_curve_diff": diff, "loss_curves": first, "compile_seconds_first_block": compile_seconds,
           "steps_per_block": args.steps, "torch": torch.__version__,
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "cpu_native_bf16_flags": sorted({"avx512_bf16", "amx_bf16"} & cpu_flags()),
           "pick_dtype_auto": str(pick_dtype("auto", "cpu")).removeprefix("torch."),
           "noise": "2 CPU cores shared with other jobs: per-block ratios vary; read the median and its spread",
           "interleaved": result}
    write_json(args.output, out)
    print(describe(result))
    print(f"max |loss - eager fp32| over {args.steps} steps: {diff}; compile {compile_seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
