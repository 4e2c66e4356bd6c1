"""Fine-tuning with the LIMA recipe (paper §3): full fine-tune, LoRA or QLoRA, on one CPU or many GPUs.

`finetune(cfg, train_file)` is the one entry point the notebooks, the CLI and `accelerate launch` share.
The `train:` section of a profile is read into `TrainConfig`; every number of the paper lives in
`configs/paper.yaml`, the smoke profile only scales them down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


@dataclass
class TrainConfig:
    method: Literal["full", "lora", "qlora"] = "full"
    epochs: int = 15
    learning_rate: float = 1e-5
    final_learning_rate: float = 1e-6          # linear decay over all optimiser steps, no warm-up
    warmup_steps: int = 0                      # the paper uses none; kept so a sweep can state it
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    weight_decay: float = 0.1
    batch_size: int = 32                       # examples per optimiser step (the paper's batch)
    micro_batch_size: int = 1                  # rows per forward pass; accumulation = the rest
    max_length: int = 2048                     # tokens per example (trimmed at the end) and per packed row
    loss_on: Literal["assistant", "all"] = "assistant"
    packing: bool = True                       # exact: no attention across examples
    attention: str = "packed_sdpa"             # packed_sdpa (per-example SDPA, flat rows) | sdpa | eager | flash_*
    residual_dropout: float = 0.3              # rate at the top layer, 0.0 at the bottom
    save_epochs: list[int] = field(default_factory=lambda: [5, 6, 7, 8, 9, 10])
    save_final: bool = True                    # also save the last epoch (needed by select: last)
    save_every_steps: int | None = None        # mid-epoch resume points (checkpoint-step-N, latest kept)
    save_optimizer: bool = True                # optimiser + RNG state beside each checkpoint (resume)
    select: str = "best_dev_quality"           # last | best_dev_quality | epoch:N
    select_epochs: list[int] = field(default_factory=lambda: [5, 10])  # inclusive window (paper: 5–10)
    dev_quality: str | None = None             # "module:function" (cfg, checkpoint_dir, dev_rows) -> float
    max_grad_norm: float | None = 1.0          # (ours) the paper does not say; null disables clipping
    max_steps: int | None = None               # stop early (tests, quick looks); schedule still spans all
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                                     "gate_proj", "up_proj", "down_proj"])
    log_every_steps: int = 1
    tensorboard: bool = True
    progress: bool = True
    num_threads: int | None = None             # torch CPU threads (None = torch's default)
    dtype: str = "auto"                        # compute dtype: auto (bf16 where the CPU/GPU has it natively,
                                               # else fp32; lima.train.precision) | float32 | bfloat16
    compile: Literal["auto", "on", "off", True, False] = "auto"   # torch.compile the decoder; auto = where
                                               # measured faster; YAML on/off arrive as true/false
    seed: int = 42
    parallel_runs: int = 1                     # (ours) independent fine-tunes side by side (finetune_many): on
                                               # a CPU one process per core, each with num_threads threads


def finetune(cfg: dict[str, Any], train_file: str | Path, run_name: str = "lima",
             dev_file: str | Path | None = None, *, resume: str | Path | None = None,
             dev_quality: Callable[..., float | None] | None = None,
             callbacks: list[Callable[[dict[str, Any]], None]] | None = None) -> Path:
    """Run the recipe from a loaded profile; writes `{models}/<run_name>/` and returns the selected checkpoint.

    `dev_file` defaults to `{processed}/dev.jsonl` when it exists. `dev_quality` (or `train.dev_quality`)
    scores a checkpoint for the selection rule; `callbacks` receive every step's log record (tests use them
    to interrupt a run).
    """
    from lima.train.loop import run

    return run(cfg, train_file, run_name=run_name, dev_file=dev_file, resume=resume, dev_quality=dev_quality,
               callbacks=callbacks)


def _finetune_job(args: tuple[dict[str, Any], str, str]) -> str:
    cfg, train_file, run_name = args
    return str(finetune(cfg, train_file, run_name=run_name))


def finetune_many(cfg: dict[str, Any], runs: dict[str, str | Path]) -> dict[str, Path]:
    """Fine-tune several independent runs (LIMA and its baselines: same recipe, different data), returning
    run name → selected checkpoint.

    With `train.parallel_runs` > 1 the runs go to that many worker processes (spawned, so each has its own torch
    and thread setting): the world's 1M model trains on one thread, and a second core would otherwise sit idle
    through a third of `make all`. Every run is seeded and self-contained, so the results are those of running
    them one after another; the longest run goes first so the workers finish together.
    """
    from lima.config import section

    workers = max(1, int(section(cfg, "train", TrainConfig).parallel_runs))
    if workers == 1 or len(runs) == 1:
        return {name: finetune(cfg, data, run_name=name) for name, data in runs.items()}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    order = sorted(runs, key=lambda name: -Path(runs[name]).stat().st_size)
    with ProcessPoolExecutor(max_workers=min(workers, len(runs)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        done = dict(zip(order, pool.map(_finetune_job, [(cfg, str(runs[n]), n) for n in order]), strict=True))
    return {name: Path(done[name]) for name in runs}


__all__ = ["TrainConfig", "finetune", "finetune_many"]
