"""GPU checks in one prepared script → benchmarks/results/gpu.json (`--toy`: tiny sizes on the CPU, < 1 minute).

Measurements, each with its settings, wall time and peak memory (`torch.cuda.max_memory_allocated`):
  matmul        the chip's bf16 rate from an 8192³ matmul in this run (the MFU denominator)
  full_ft_1b    ~1B Llama full fine-tune with our trainer (bf16 autocast, packed rows at 2,048, residual dropout):
                tokens/s and MFU (6·N·tokens/s ÷ the measured rate), interleaved with a bare PyTorch loop
  lora_7b       LoRA on a 7B-architecture model: tokens/s and peak memory at 2,048
  qlora_7b      QLoRA (NF4, bitsandbytes) on a 7B-architecture model: tokens/s and peak memory
  qlora_65b_estimate   65B QLoRA peak memory extrapolated from qlora_7b (labelled an estimate)
  generation    the 1B model, the paper's decoding: generated tokens/s at batch 1 and 64
  qlora_65b     65B QLoRA built layer by layer and trained a few steps: does it fit one H200 at 2,048
  world         pretraining of a larger LIMA-world base (when `lima.world` exists; else skipped with the reason)
Weights are random-init from configs (nothing downloaded); data is benchmarks/data/smoke_train.jsonl (see
gpu_common.py). The JSON is rewritten after every measurement, so a run cut short keeps what it measured; a
measurement that fails is recorded with its error and the rest go on. `--budget-s` skips what would start late.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from gpu_common import (  # noqa: E402
    DATA,
    SIZES,
    TOY_SIZES,
    Arch,
    load_rows,
    make_data,
    make_tokenizer,
    matmul_rate,
    measured,
    save_start,
)

ORDER = ("matmul", "full_ft_1b", "lora_7b", "qlora_7b", "qlora_65b_estimate", "generation", "qlora_65b", "world")


@dataclass
class Ctx:
    """Sizes and settings of one run (GPU or toy), shared by every measurement."""

    toy: bool
    device: str
    sizes: dict[str, Arch]
    tmp: Path
    rows: list[dict[str, Any]]
    data_file: Path
    tokenizer: Any = None
    dtype: str = "bfloat16"
    max_length: int = 2048
    batch_size: int = 64                    # examples per optimiser step (the paper: 64 for smaller models)
    micro_batch_size: int = 4               # flat packed rows of <= 4 x 2048 tokens per forward
    lora_batch: int = 8
    dropout: float = 0.2                    # the paper's residual dropout for smaller models (0.3 at 65B)
    warmup: int = 2
    steps: int = 10
    blocks: int = 2
    matmul_n: int = 8192
    max_new_tokens: int = 256
    max_prompt_tokens: int = 1024
    gen_prompts: tuple[int, int] = (8, 64)  # prompts at batch 1, at batch 64
    device_gib: float = 0.0
    peak_tflops: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def make_ctx(toy: bool, tmp: Path, data_file: Path, steps: int | None, blocks: int | None) -> Ctx:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)            # tiny models on shared cores: 1 thread (as the smoke profile)
    if not toy and device != "cuda":
        raise SystemExit("gpu.py: no CUDA device visible; use --toy for the CPU check")
    rows = load_rows(data_file)
    if toy:
        ctx = Ctx(toy=True, device=device, sizes=TOY_SIZES, tmp=tmp, rows=rows[:48], data_file=tmp / "train.jsonl",
                  dtype="float32" if device == "cpu" else "bfloat16", max_length=256, batch_size=8,
                  micro_batch_size=2, lora_batch=4, warmup=1, steps=2, blocks=2, matmul_n=256, max_new_tokens=8,
                  max_prompt_tokens=128, gen_prompts=(2, 8))
        from lima.io import write_jsonl

        write_jsonl(ctx.data_file, ctx.rows)
    else:
        ctx = Ctx(toy=False, device=device, sizes=SIZES, tmp=tmp, rows=rows, data_file=data_file)
    ctx.steps, ctx.blocks = steps or ctx.steps, blocks or ctx.blocks
    if device == "cuda":
        ctx.device_gib = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    ctx.tokenizer = make_tokenizer(rows, 512 if toy else 8192, ctx.max_length)
    return ctx


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "cuda": torch.version.cuda, "host": platform.node(), "cpu_count": __import__("os").cpu_count()}
    for name in ("transformers", "peft", "bitsandbytes"):
        try:
            info[name] = __import__(name).__version__
        except Exception as exc:  # noqa: BLE001 — recorded: a missing package is a finding here
            info[name] = f"unavailable ({type(exc).__name__})"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}")
    return info


def world(ctx: Ctx) -> dict[str, Any]:
    import importlib.util

    if importlib.util.find_spec("lima.world") is None:
        return {"status": "skipped", "reason": "lima.world does not exist in this checkout (the world issue has "
                                               "not landed), so there is no world base to pretrain"}
    return {"status": "skipped", "reason": "not wired yet: lima.world was being written alongside this script, "
                                           "with no stable base-pretraining entry point to time"}


def run(ctx: Ctx, only: list[str], budget_s: float, out: Path) -> dict[str, Any]:
    from gpu_lora import estimate_65b, lora, qlora
    from gpu_train import full_finetune, generation

    from lima.io import write_json

    t0 = time.perf_counter()
    result: dict[str, Any] = {"name": "gpu", "toy": ctx.toy,
                              "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "machine": machine(), "data": str(ctx.data_file.name), "examples": len(ctx.rows),
                              "budget_s": budget_s, "measurements": {}}
    m = result["measurements"]
    start: Path | None = None
    for name in ORDER:
        if only and name not in only:
            continue
        elapsed = time.perf_counter() - t0
        if elapsed > budget_s:
            m[name] = {"status": "skipped", "reason": f"time budget: {elapsed:.0f} s of {budget_s:.0f} s used"}
        elif name == "matmul":
            rec: dict[str, Any] = {"what": "bf16 matmul rate, n×n×n, mean of timed products after warm-up"}
            with measured(rec):
                rec.update(matmul_rate(ctx.matmul_n, ctx.device))
                ctx.peak_tflops = rec["tflops"]
            m[name] = rec
        elif name in {"full_ft_1b", "generation"}:
            if start is None:
                start = save_start(ctx.sizes["1b"], ctx.tokenizer, ctx.tmp / "start-1b", ctx.max_length, ctx.device)
            m[name] = (full_finetune if name == "full_ft_1b" else generation)(ctx, start)
        elif name == "lora_7b":
            m[name] = lora(ctx)
        elif name == "qlora_7b":
            m[name] = qlora(ctx, "7b")
        elif name == "qlora_65b_estimate":
            m[name] = estimate_65b(ctx, m.get("qlora_7b", {"status": "not run"}))
        elif name == "qlora_65b":
            m[name] = qlora(ctx, "65b")
        elif name == "world":
            m[name] = world(ctx)
        result["seconds"] = round(time.perf_counter() - t0, 1)
        write_json(out, result, config={"toy": ctx.toy, "only": only, "budget_s": budget_s})
        status = m[name].get("status")
        print(f"[{result['seconds']:7.1f} s] {name}: {status} {m[name].get('reason') or m[name].get('error') or ''}",
              flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy", action="store_true", help="tiny configs on the CPU (or a GPU), < 1 minute")
    parser.add_argument("--out", type=Path, help="default: results/gpu.json (toy: results/quick/gpu_toy.json)")
    parser.add_argument("--only", nargs="+", choices=ORDER, default=[], help="run only these measurements")
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="skip measurements that would start after this many seconds (default 480)")
    parser.add_argument("--steps", type=int, help="timed optimiser steps per block (default 10, toy 2)")
    parser.add_argument("--blocks", type=int, help="interleaved blocks (default 2)")
    parser.add_argument("--data", type=Path, default=DATA, help=f"training rows (default {DATA.relative_to(HERE)})")
    parser.add_argument("--make-data", action="store_true",
                        help=f"(re)make {DATA.relative_to(HERE)} with the smoke pipeline, then stop")
    opts = parser.parse_args(argv)
    if opts.make_data:
        print(make_data(opts.data))
        return 0
    out = opts.out or HERE / "results" / ("quick/gpu_toy.json" if opts.toy else "gpu.json")
    with tempfile.TemporaryDirectory(prefix="lima-gpu-") as tmp:
        ctx = make_ctx(opts.toy, Path(tmp), opts.data, opts.steps, opts.blocks)
        result = run(ctx, list(opts.only), opts.budget_s, out)
    failed = [k for k, v in result["measurements"].items() if v.get("status") == "failed"]
    print(f"wrote {out}; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
