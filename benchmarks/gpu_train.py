"""benchmarks/gpu.py, parts 1 and 4: the ~1B full fine-tune (our trainer vs a bare loop) and batched generation.

Our trainer is `lima.train.finetune` unchanged (bf16 autocast over fp32 master weights, packed padding-free rows
of real-length examples at max_length, residual dropout, clipping, AdamW); a step callback times it and stops
it after warm-up + timed steps, so no checkpoint is written. The bare loop does the same arithmetic on the same
model, data and micro-batches, pre-built, with nothing else: the limit our trainer is measured against.
The two run interleaved in blocks (`benchmarks/interleave.py`), each block from the same random-init start.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import torch
from gpu_common import Arch, arch_dict, free, measured, sync
from interleave import headline, run_blocks


class _Stop(Exception):
    """Raised from the step callback once the timed steps are done (the run is abandoned, nothing saved)."""


def train_overrides(ctx: Any, start: Path, run_name: str) -> dict[str, Any]:
    return {"paths.root": str(ctx.tmp / run_name), "model.base": str(start), "model.dtype": "bfloat16",
            "train.dtype": ctx.dtype, "train.compile": "off",
            "train.method": "full", "train.epochs": 100, "train.batch_size": ctx.batch_size,
            "train.micro_batch_size": ctx.micro_batch_size, "train.max_length": ctx.max_length,
            "train.packing": True, "train.attention": "packed_sdpa", "train.residual_dropout": ctx.dropout,
            "train.save_epochs": [], "train.save_final": False, "train.save_optimizer": False,
            "train.dev_quality": None, "train.tensorboard": False, "train.progress": False,
            "train.num_threads": 1 if ctx.toy else None, "train.max_grad_norm": 1.0, "train.learning_rate": 1e-5}


def ours_block(ctx: Any, start: Path, runs: list[dict]) -> float:
    """One block of our trainer: `warmup` untimed steps, then `steps` timed ones; real tokens/s."""
    from lima.config import load_profile
    from lima.train import finetune

    free()                                   # the previous block's model and optimiser
    stamps: list[float] = []
    records: list[dict] = []

    def on_step(record: dict) -> None:
        sync()
        stamps.append(time.perf_counter())
        records.append(record)
        if len(stamps) == ctx.warmup + ctx.steps:
            raise _Stop

    cfg = load_profile("smoke", train_overrides(ctx, start, f"ours-{len(runs)}"))
    with contextlib.suppress(_Stop):
        finetune(cfg, ctx.data_file, f"ours-{len(runs)}", dev_file=ctx.tmp / "no-dev.jsonl", callbacks=[on_step])
    free()
    timed = records[ctx.warmup:]
    seconds = stamps[-1] - stamps[ctx.warmup - 1]
    tokens = sum(r["tokens"] for r in timed)
    runs.append({"tokens": tokens, "trainable_tokens": sum(r["trainable_tokens"] for r in timed),
                 "timed_seconds": seconds, "tokens_per_s": tokens / seconds, "loss_first": records[0]["loss"],
                 "packing_efficiency": sum(r["packing_efficiency"] for r in timed) / len(timed)})
    return tokens / seconds


def bare_block(ctx: Any, start: Path, runs: list[dict]) -> float:
    """The same steps as `ours_block` (same order, micro-batches, dropout, clipping, AdamW), pre-built, bare."""
    import math

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lima.train.checkpoints import token_loss_sum
    from lima.train.data import drop_untrainable, encode_all, plan_step, step_token_count
    from lima.train.dropout import ResidualDropout
    from lima.train.loop import epoch_order
    from lima.train.packed_attention import use_attention

    free()
    tok = AutoTokenizer.from_pretrained(start)
    examples, _ = drop_untrainable(encode_all(tok, ctx.rows, ctx.max_length, "assistant"), ctx.rows)
    per_epoch = math.ceil(len(examples) / ctx.batch_size)
    steps = []
    for step in range(ctx.warmup + ctx.steps):
        epoch, k = divmod(step, per_epoch)
        order = epoch_order(len(examples), 42, epoch)
        batches = plan_step([examples[i] for i in order[k * ctx.batch_size:(k + 1) * ctx.batch_size]], True,
                            ctx.micro_batch_size, ctx.max_length, tok.pad_token_id, flat=True)
        steps.append((batches, step_token_count(batches), sum(int(b["n_real"]) for b in batches)))
    torch.manual_seed(42)
    model = AutoModelForCausalLM.from_pretrained(start, dtype=torch.float32).to(ctx.device)
    use_attention(model, "packed_sdpa")
    model.config.use_cache = False
    ResidualDropout(model, ctx.dropout)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                            lr=1e-5, betas=(0.9, 0.95), foreach=True)
    amp = torch.autocast(ctx.device, dtype=torch.bfloat16, enabled=ctx.dtype == "bfloat16")

    def one(i: int) -> int:
        batches, n_trainable, n_real = steps[i]
        for b in batches:
            b = {key: value.to(ctx.device) for key, value in b.items()}
            with amp:
                loss = token_loss_sum(model, b)
            (loss / n_trainable).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return n_real

    for i in range(ctx.warmup):
        one(i)
    sync()
    t0 = time.perf_counter()
    tokens = sum(one(ctx.warmup + i) for i in range(ctx.steps))
    sync()
    seconds = time.perf_counter() - t0
    runs.append({"tokens": tokens, "timed_seconds": seconds, "tokens_per_s": tokens / seconds})
    return tokens / seconds


def flops_per_token(arch: Arch) -> int:
    """6·N with N = parameters less the input embedding (a lookup, no matmul): the issue's MFU convention."""
    return 6 * (arch.params() - arch.vocab_size * arch.hidden_size)


def full_finetune(ctx: Any, start: Path) -> dict[str, Any]:
    arch = ctx.sizes["1b"]
    record: dict[str, Any] = {"what": "full fine-tune, our trainer (lima.train.finetune) vs a bare PyTorch loop",
                              "arch": arch_dict(arch),
                              "settings": {"precision": f"{ctx.dtype} autocast, fp32 master weights + AdamW",
                                           "max_length": ctx.max_length, "packing": "flat rows (packed_sdpa)",
                                           "batch_size": ctx.batch_size, "micro_batch_size": ctx.micro_batch_size,
                                           "residual_dropout": ctx.dropout, "max_grad_norm": 1.0,
                                           "warmup_steps": ctx.warmup, "timed_steps": ctx.steps,
                                           "blocks": ctx.blocks, "device": ctx.device}}
    with measured(record):
        ours_runs: list[dict] = []
        bare_runs: list[dict] = []
        blocks = run_blocks({"ours": lambda: ours_block(ctx, start, ours_runs),
                             "bare": lambda: bare_block(ctx, start, bare_runs)}, ctx.blocks, reference="bare")
        head = headline(blocks, "ours")
        fpt = flops_per_token(arch)
        record.update({"tokens_per_s": head["ours"], "bare_tokens_per_s": head["baseline"],
                       "limit_ratio": head["ratio"], "limit_ratio_spread": head["ratio_spread"],
                       "flops_per_token": fpt, "flops_rule": "6·N, N = params less the input embedding",
                       "achieved_tflops": fpt * blocks["throughput_median"]["ours"] / 1e12,
                       "ours_runs": ours_runs, "bare_runs": bare_runs, "interleave": blocks})
        if ctx.peak_tflops:
            record["mfu"] = round(record["achieved_tflops"] / ctx.peak_tflops, 4)
            record["bare_mfu"] = round(fpt * blocks["throughput_median"]["bare"] / 1e12 / ctx.peak_tflops, 4)
    return record


def generation(ctx: Any, start: Path) -> dict[str, Any]:
    """Generated tokens/s of the 1B model with the paper's decoding, batch 1 vs batch 64, interleaved."""
    from lima.generate import DecodingConfig, HFGenerator

    n_one, n_batch = ctx.gen_prompts
    record: dict[str, Any] = {"what": "batched generation, paper's decoding (nucleus 0.9, T 0.7, penalty 1.2)",
                              "arch": arch_dict(ctx.sizes["1b"]),
                              "settings": {"max_new_tokens": ctx.max_new_tokens, "batch_1_prompts": n_one,
                                           "batch_64_prompts": n_batch, "dtype": ctx.dtype,
                                           "blocks": ctx.blocks, "device": ctx.device,
                                           "weights": "random init: rows rarely stop early, so ~max_new each"}}
    with measured(record):
        gen = HFGenerator(start, DecodingConfig(max_new_tokens=ctx.max_new_tokens, batch_size=64,
                                                dtype=ctx.dtype), device=ctx.device)
        tok = gen.tokenizer
        prompts = [[r["messages"][0]] for r in ctx.rows
                   if len(tok(r["messages"][0]["content"])["input_ids"]) <= ctx.max_prompt_tokens]
        if not prompts:
            raise ValueError(f"{ctx.data_file}: no prompt of at most {ctx.max_prompt_tokens} tokens")
        prompts = (prompts * (n_batch // len(prompts) + 1))[:n_batch]
        runs: list[dict] = []

        def arm(batch: int, convs: list) -> float:
            sync()
            t0 = time.perf_counter()
            out = gen.generate(convs, seed=0, batch_size=batch)
            sync()
            seconds = time.perf_counter() - t0
            tokens = sum(r.n_tokens + (r.stop_reason == "eot") for r in out)
            runs.append({"batch_size": batch, "prompts": len(convs), "tokens": tokens, "seconds": seconds})
            return tokens / seconds

        gen.generate(prompts[:2], seed=0, batch_size=2, max_new_tokens=4)        # warm-up
        blocks = run_blocks({"batch_64": lambda: arm(64, prompts), "batch_1": lambda: arm(1, prompts[:n_one])},
                            ctx.blocks, reference="batch_1")
        head = headline(blocks, "batch_64", 2)
        record.update({"batch_1_tokens_per_s": head["baseline"], "batch_64_tokens_per_s": head["ours"],
                       "ratio": head["ratio"], "ratio_spread": head["ratio_spread"], "runs": runs,
                       "interleave": blocks})
    return record
