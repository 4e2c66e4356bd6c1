"""World base pretraining: our loop (`lima.train.base.pretrain_loop`) against a bare PyTorch loop, interleaved.

Same model architecture, same token windows, same batch and steps per block; the bare loop is the minimal
AdamW + causal-LM step a reader would write. Variants of ours (bf16 autocast, `torch.compile`) run as further
contestants, so the precision and compile choices of `configs/world.yaml` rest on a measurement made in one
run on this machine. `--quick`: a few steps and 2 blocks. Writes benchmarks/results/pretrain_base.json.
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
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from interleave import describe, headline, run_blocks  # noqa: E402

from lima.config import load_profile  # noqa: E402
from lima.io import write_json  # noqa: E402
from lima.model import SmokeModelConfig, build_smoke_model, train_smoke_tokenizer  # noqa: E402
from lima.train.base import epoch_windows, pretrain_loop, tokenize_documents  # noqa: E402
from lima.world import web_texts, write_world  # noqa: E402


def bare_loop(model: torch.nn.Module, windows: torch.Tensor, steps: int, lr: float, batch: int) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    for step in range(steps):
        x = windows[(step * batch) % (len(windows) - batch):][:batch]
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 steps per block, 2 blocks, no compile variant")
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--steps", type=int, default=40, help="optimiser steps per block")
    parser.add_argument("--variants", default="bf16,compile,bf16_compile",
                        help="extra contestants of ours (comma list of bf16, compile, bf16_compile)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pretrain_base.json")
    opts = parser.parse_args(argv)
    blocks, steps = (2, 8) if opts.quick else (opts.blocks, opts.steps)
    variants = [] if opts.quick else [v for v in opts.variants.split(",") if v]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as root:
        cfg = load_profile("world", {"paths.root": root})
        write_world(cfg)
        texts = web_texts(cfg)
    scfg = SmokeModelConfig(**{**cfg["model"]["smoke"]})
    tokenizer = train_smoke_tokenizer(texts, scfg.vocab_size, scfg.max_position_embeddings)
    documents = tokenize_documents(tokenizer, texts)
    windows = epoch_windows(documents, scfg.pretrain_seq_len, torch.Generator().manual_seed(0))
    batch, lr = scfg.pretrain_batch_size, scfg.pretrain_learning_rate
    tokens = steps * batch * scfg.pretrain_seq_len

    def model() -> torch.nn.Module:
        return build_smoke_model(scfg, tokenizer, seed=0).train()

    models = {"ours": model(), "bare": model(), "ours_bf16": model(), "ours_compile": model(),
              "ours_bf16_compile": model()}
    compile_seconds, loss_gap = {}, None
    for name, dtype in (("ours_compile", torch.float32), ("ours_bf16_compile", torch.bfloat16)):
        if name.removeprefix("ours_") not in variants:
            continue
        start = time.perf_counter()
        models[name] = torch.compile(models[name])
        pretrain_loop(models[name], documents, 2, lr, batch, scfg.pretrain_seq_len, 0.0, dtype, 0, progress=False)
        compile_seconds[name] = round(time.perf_counter() - start, 1)
    if "compile" in variants:   # the loss curve of the compiled loop against eager, from the same weights
        eager, compiled = model(), model()
        compiled.load_state_dict(eager.state_dict())
        compiled = torch.compile(compiled)
        curves = [pretrain_loop(m, documents, 30, lr, batch, scfg.pretrain_seq_len, 0.0, torch.float32, 0,
                                progress=False)["losses"] for m in (eager, compiled)]
        loss_gap = max(abs(a - b) for a, b in zip(*curves, strict=True))

    def ours(name: str, dtype: torch.dtype) -> float:
        log = pretrain_loop(models[name], documents, steps, lr, batch, scfg.pretrain_seq_len, 0.0, dtype, 0,
                            progress=False)
        return log["tokens"] / log["seconds"]

    def bare() -> float:
        start = time.perf_counter()
        bare_loop(models["bare"], windows, steps, lr, batch)
        return tokens / (time.perf_counter() - start)

    contestants = {"ours": lambda: ours("ours", torch.float32), "bare": bare}
    if "bf16" in variants:
        contestants["ours_bf16"] = lambda: ours("ours_bf16", torch.bfloat16)
    if "compile" in variants:
        contestants["ours_compile"] = lambda: ours("ours_compile", torch.float32)
    if "bf16_compile" in variants:
        contestants["ours_bf16_compile"] = lambda: ours("ours_bf16_compile", torch.bfloat16)
    result_blocks = run_blocks(contestants, blocks=blocks, reference="bare")
    print(describe(result_blocks))
    params = sum(p.numel() for p in models["ours"].parameters())
    result = {"name": "pretrain_base", **headline(result_blocks, "ours", 3), "unit": "training tokens/s",
              "variants": {k: round(v["median"], 3) for k, v in result_blocks["ratios"].items() if k != "ours"},
              "compile_seconds": compile_seconds, "compile_loss_gap_30_steps": loss_gap, "params": params, "steps_per_block": steps, "batch": batch,
              "seq_len": scfg.pretrain_seq_len, "threads": 1, "interleave": result_blocks}
    write_json(opts.out, result, config={"quick": opts.quick, "variants": variants})
    print(json.dumps({k: v for k, v in result.items() if k != "interleave"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
