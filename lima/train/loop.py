"""The LIMA recipe (paper §3), top to bottom.

  model   base LM + a new end-of-turn token (EOT) + chat template; residual dropout 0 → p (bottom → top)
  data    conversations → tokens, loss on assistant turns incl. their EOT, trimmed at the end, packed
          (attention per example: `packed_attention`, so packing costs no cross-example work)
  step    `batch_size` examples per optimiser step, split into micro-batches; the loss is the sum over all
          trainable tokens of the step divided by their count (not a mean of micro-batch means)
  optim   AdamW β=(0.9, 0.95), weight decay 0.1 (matrices only), no warm-up,
          lr linear from `learning_rate` at the first step to `final_learning_rate` at the last
  save    checkpoints at `save_epochs` (+ the last), dev perplexity and dev quality per checkpoint,
          a selection rule → selected.json; resume points carry optimiser + RNG state, so a resumed run
          ends with exactly the weights of an uninterrupted one (CPU)
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lima.config import resolve, section
from lima.io import read_jsonl, write_json
from lima.model import ModelConfig, add_eot_token, eot_id
from lima.train import TrainConfig
from lima.train.base import ensure_base
from lima.train.checkpoints import (
    perplexity,
    read_records,
    resolve_hook,
    save_checkpoint,
    select_checkpoint,
    token_loss_sum,
    write_records,
)
from lima.train.data import encode_all, load_conversations, packing_efficiency, plan_step, step_token_count
from lima.train.distributed import Runtime
from lima.train.dropout import ResidualDropout
from lima.train.packed_attention import use_attention


def lr_at(step: int, total_steps: int, tcfg: TrainConfig) -> float:
    """Linear from `learning_rate` (first step) to `final_learning_rate` (last step); optional warm-up."""
    if step < tcfg.warmup_steps:
        return tcfg.learning_rate * (step + 1) / tcfg.warmup_steps
    span = max(1, total_steps - 1 - tcfg.warmup_steps)
    frac = min(1.0, (step - tcfg.warmup_steps) / span)
    return tcfg.learning_rate * (1.0 - frac) + tcfg.final_learning_rate * frac   # exact at both ends


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The example order of one epoch: a pure function of (seed, epoch), so a resumed run sees the same."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()


def load_for_training(base: str, mcfg: ModelConfig, tcfg: TrainConfig, resume: Path | None):
    """(model, tokenizer) ready to train: EOT added, peft adapters for lora/qlora, weights of `resume`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lima.train import peft_methods

    dtype = getattr(torch, mcfg.dtype)
    source = str(resume) if resume and tcfg.method == "full" else base
    kwargs: dict[str, Any] = {"dtype": torch.float32 if tcfg.method == "full" else dtype}
    if tcfg.method == "qlora":
        kwargs.update(quantization_config=peft_methods.quantization_config(dtype), device_map={"": 0})
    tokenizer = AutoTokenizer.from_pretrained(str(resume) if resume else base)
    model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    use_attention(model, tcfg.attention)       # training only: checkpoints are saved without it
    eot = add_eot_token(tokenizer, model, mcfg.eot_token)
    if tcfg.method in {"lora", "qlora"}:
        model = peft_methods.apply_lora(model, tcfg, eot, quantized=tcfg.method == "qlora")
        if resume:
            peft_methods.load_adapter_weights(model, resume / "adapter")
    model.config.use_cache = False
    return model, tokenizer


def run(cfg: dict[str, Any], train_file: str | Path, run_name: str = "lima", dev_file: str | Path | None = None,
        resume: str | Path | None = None, dev_quality: Callable[..., float | None] | None = None,
        callbacks: list[Callable[[dict[str, Any]], None]] | None = None) -> Path:
    tcfg = section(cfg, "train", TrainConfig)
    threads = torch.get_num_threads()
    if tcfg.num_threads:
        torch.set_num_threads(tcfg.num_threads)
    try:
        return _run(cfg, tcfg, train_file, run_name, dev_file, resume, dev_quality, callbacks)
    finally:
        torch.set_num_threads(threads)      # leave the caller's process (a notebook kernel, pytest) as it was


def _run(cfg: dict[str, Any], tcfg: TrainConfig, train_file: str | Path, run_name: str,
         dev_file: str | Path | None, resume: str | Path | None,
         dev_quality: Callable[..., float | None] | None,
         callbacks: list[Callable[[dict[str, Any]], None]] | None) -> Path:
    mcfg = section(cfg, "model", ModelConfig)
    run_dir = resolve(cfg["paths"]["models"]) / run_name
    resume = Path(resume) if resume else None
    rt = Runtime()
    quality_hook = dev_quality or resolve_hook(tcfg.dev_quality)

    # ---- model: base + EOT (+ adapters), residual dropout rising 0 → p from bottom to top layer --------------
    base = ensure_base(cfg)
    torch.manual_seed(tcfg.seed)
    model, tokenizer = load_for_training(base, mcfg, tcfg, resume)
    dropout = ResidualDropout(model, tcfg.residual_dropout)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eot_id(tokenizer)
    fast_loss = not rt.distributed
    flat = tcfg.packing and tcfg.attention == "packed_sdpa"      # one padding-free row per micro-batch
    amp_dtype = getattr(torch, mcfg.dtype)

    # ---- data: tokens + shifted targets; texts over max_length lose their end -------------------------------
    rows = load_conversations(train_file)
    examples = encode_all(tokenizer, rows, tcfg.max_length, tcfg.loss_on)
    dev_path = Path(dev_file) if dev_file else resolve(cfg["paths"]["processed"]) / "dev.jsonl"
    dev_rows = load_conversations(dev_path) if dev_path.exists() else []
    dev_examples = encode_all(tokenizer, dev_rows, tcfg.max_length, tcfg.loss_on)

    # ---- schedule and optimiser -----------------------------------------------------------------------------
    steps_per_epoch = math.ceil(len(examples) / tcfg.batch_size)
    total_steps = tcfg.epochs * steps_per_epoch
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": [p for _, p in trainable if p.ndim >= 2], "weight_decay": tcfg.weight_decay},
         {"params": [p for _, p in trainable if p.ndim < 2], "weight_decay": 0.0}],
        lr=tcfg.learning_rate, betas=(tcfg.adam_beta1, tcfg.adam_beta2), foreach=True)

    # ---- resume: optimiser moments, RNG and the step counter come back; the data order is recomputed ---------
    start_step = 0
    if resume is not None:
        state = torch.load(resume / "training_state.pt", weights_only=False)
        if state["total_steps"] != total_steps:
            raise ValueError(f"{resume}: saved for {state['total_steps']} steps, this config has {total_steps}")
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start_step = state["step"]
    model, optimizer = rt.prepare(model, optimizer)
    model.train()

    # ---- logging: metrics.jsonl (+ TensorBoard), checkpoints.json ---------------------------------------------
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = run_dir / "metrics.jsonl"
    old = read_jsonl(metrics_path) if resume and metrics_path.exists() else []
    kept = [r for r in old if r.get("step", 0) <= start_step]
    metrics_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    records = [r for r in read_records(run_dir) if resume and r["step"] <= start_step]
    tb = _tensorboard(run_dir, tcfg, rt)
    write_json(run_dir / "run.json", {"run_name": run_name, "base": base, "train_file": str(train_file),
                                      "n_examples": len(examples), "n_trimmed": sum(e.trimmed for e in examples),
                                      "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
                                      "dropout_rates": dropout.rates, "train": tcfg, "model": mcfg},
               config=cfg, inputs=[train_file])

    def checkpoint(path: Path, step: int) -> Path:
        state = None
        if tcfg.save_optimizer and not rt.distributed:
            state = {"step": step, "total_steps": total_steps, "optimizer": optimizer.state_dict(),
                     "rng": torch.get_rng_state()}
        from lima.train.peft_methods import merged_copy

        out = save_checkpoint(rt.unwrap(model), tokenizer, path, tcfg.method, state, merged_copy,
                              rt.state_dict(model), rt.is_main)
        rt.barrier()
        return out

    # ---- the loop ----------------------------------------------------------------------------------------------
    stop = min(total_steps, tcfg.max_steps) if tcfg.max_steps else total_steps
    progress = _progress(start_step, stop, tcfg.progress and rt.is_main, run_name)
    last_resume_point: Path | None = None
    for step in range(start_step, stop):
        t0 = time.perf_counter()
        epoch, k = divmod(step, steps_per_epoch)
        order = epoch_order(len(examples), tcfg.seed, epoch)
        batches = plan_step([examples[i] for i in order[k * tcfg.batch_size:(k + 1) * tcfg.batch_size]],
                            tcfg.packing, tcfg.micro_batch_size, tcfg.max_length, pad_id, flat)
        n_trainable = step_token_count(batches)
        lr = lr_at(step, total_steps, tcfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        for batch, weight in rt.shard(batches):
            batch = {key: value.to(rt.device) for key, value in batch.items()}
            with rt.autocast(amp_dtype):
                loss = token_loss_sum(model, batch, fast_loss) * weight
            rt.backward(loss / n_trainable)
            loss_sum += float(loss.detach())
        grad_norm = rt.clip(model, tcfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        seconds = time.perf_counter() - t0
        n_tokens = sum(int(b["n_real"]) for b in batches)
        record = {"step": step + 1, "epoch": epoch + (k + 1) / steps_per_epoch, "loss": loss_sum / n_trainable,
                  "lr": lr, "grad_norm": grad_norm, "tokens": n_tokens, "trainable_tokens": n_trainable,
                  "tokens_per_s": n_tokens / seconds, "trainable_tokens_per_s": n_trainable / seconds,
                  "packing_efficiency": packing_efficiency(batches), "seconds": seconds}
        _log(record, metrics_path, tb, rt)
        progress.update(1)
        progress.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{lr:.2e}")

        end_of_epoch = k == steps_per_epoch - 1
        if end_of_epoch and (epoch + 1 in tcfg.save_epochs or (tcfg.save_final and epoch + 1 == tcfg.epochs)):
            path = checkpoint(run_dir / f"checkpoint-epoch-{epoch + 1}", step + 1)
            dev_ppl = perplexity(model, dev_examples, tcfg.micro_batch_size, tcfg.max_length, pad_id, rt.device,
                                 fast_loss)
            quality = quality_hook(cfg, path, dev_rows) if quality_hook else None
            records.append({"epoch": epoch + 1, "step": step + 1, "path": str(path), "dev_perplexity": dev_ppl,
                            "dev_quality": quality, "train_loss": record["loss"]})
            if rt.is_main:
                write_records(run_dir, records, cfg)
            _log({"step": step + 1, "kind": "checkpoint", "epoch": epoch + 1, "dev_perplexity": dev_ppl,
                  "dev_quality": quality}, metrics_path, tb, rt)
        elif tcfg.save_every_steps and (step + 1) % tcfg.save_every_steps == 0:
            last_resume_point = _rotate(checkpoint(run_dir / f"checkpoint-step-{step + 1}", step + 1),
                                        last_resume_point)
        for callback in callbacks or []:
            callback(record)
    progress.close()
    dropout.remove()

    if stop < total_steps:      # max_steps: leave a resume point instead of a selection
        return checkpoint(run_dir / f"checkpoint-step-{stop}", stop)
    selected = select_checkpoint(records, tcfg.select, tcfg.select_epochs)
    if rt.is_main:
        write_json(run_dir / "selected.json", selected, config=cfg)
        if tb is not None:
            tb.close()
    return Path(selected["path"])


def _rotate(new: Path, previous: Path | None) -> Path:
    """Keep only the latest mid-epoch resume point (epoch checkpoints are kept)."""
    if previous is not None and previous != new:
        shutil.rmtree(previous, ignore_errors=True)
    return new


def _log(record: dict[str, Any], path: Path, tb, rt: Runtime) -> None:
    if not rt.is_main:
        return
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    if tb is not None:
        for key, value in record.items():
            if key not in {"step", "kind"} and isinstance(value, int | float):
                tb.add_scalar(f"train/{key}" if "kind" not in record else f"checkpoint/{key}", value,
                              record["step"])


def _tensorboard(run_dir: Path, tcfg: TrainConfig, rt: Runtime):
    if not (tcfg.tensorboard and rt.is_main):
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(run_dir / "tb"))


def _progress(start: int, stop: int, enabled: bool, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=stop, initial=start, disable=not enabled, desc=f"train {name}", unit="step")
