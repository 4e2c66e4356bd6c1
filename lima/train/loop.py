"""The LIMA recipe (paper §3), top to bottom.

  model   base LM + a new end-of-turn token (EOT) + chat template; residual dropout 0 → p (bottom → top)
  data    conversations → tokens, loss on assistant turns incl. their EOT, trimmed at the end, packed
          (attention per example: `packed_attention`, so packing costs no cross-example work)
  step    `batch_size` examples per optimiser step, split into micro-batches; the loss is the sum over all
          trainable tokens of the step divided by their count (not a mean of micro-batch means)
  optim   AdamW β=(0.9, 0.95), weight decay 0.1 (matrices only), no warm-up,
          lr linear from `learning_rate` at the first step to `final_learning_rate` at the last
  save    checkpoints at `save_epochs` (+ the last), dev perplexity and dev quality per checkpoint,
          a selection rule → selected.json; resume points carry optimiser + RNG state (CPU and every CUDA
          device), so a resumed run ends with exactly the weights of an uninterrupted one (CPU)
  (ours)  examples with nothing to train on (prompt ≥ max_length) dropped and counted; max_length ≤ the
          model's context; compute dtype and torch.compile by what the machine has (`precision`)

`_run` calls the steps in order; each step is a function below it, in the same order.
"""

from __future__ import annotations

import inspect
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lima.config import ConfigError, resolve, section
from lima.io import InputError, write_json
from lima.model import ModelConfig, add_eot_token, eot_id
from lima.train import TrainConfig
from lima.train.base import ensure_base
from lima.train.checkpoints import (
    perplexity,
    read_records,
    resolve_hook,
    restore_rng,
    save_checkpoint,
    select_checkpoint,
    token_loss_sum,
    training_state,
    write_records,
)
from lima.train.data import (
    Example,
    drop_untrainable,
    encode_all,
    load_conversations,
    model_context,
    packing_efficiency,
    plan_step,
    step_token_count,
)
from lima.train.distributed import Runtime
from lima.train.dropout import ResidualDropout
from lima.train.packed_attention import use_attention
from lima.train.precision import maybe_compile, pick_dtype
from lima.train.runlog import RunLog


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
    """The recipe, one named step per line; each step is a function below, in this order."""
    resume = Path(resume) if resume else None
    s = set_up(cfg, tcfg, run_name, resume)
    data = load_data(s, train_file, dev_file)
    optimizer = make_optimizer(s.model, tcfg)
    start_step = restore(resume, optimizer, data.total_steps)
    s.model, optimizer = s.rt.prepare(s.model, optimizer)
    s.model.train()
    stop = min(data.total_steps, tcfg.max_steps) if tcfg.max_steps else data.total_steps
    log = start_log(s, data, train_file, start_step, stop, resume)
    records = [r for r in read_records(s.run_dir) if resume and r["step"] <= start_step]
    quality_hook = dev_quality or resolve_hook(tcfg.dev_quality)
    last_resume_point: Path | None = None
    for step in range(start_step, stop):
        record = train_step(s, data, optimizer, step)
        log.step(record)
        epoch, k = divmod(step, data.steps_per_epoch)
        if k == data.steps_per_epoch - 1 and (epoch + 1 in tcfg.save_epochs
                                              or (tcfg.save_final and epoch + 1 == tcfg.epochs)):
            records.append(save_and_evaluate(s, data, optimizer, epoch + 1, step + 1, record["loss"],
                                             quality_hook, log))
            if s.rt.is_main:
                write_records(s.run_dir, records, cfg)
        elif tcfg.save_every_steps and (step + 1) % tcfg.save_every_steps == 0:
            point = checkpoint(s, optimizer, s.run_dir / f"checkpoint-step-{step + 1}", step + 1, data.total_steps)
            last_resume_point = _rotate(point, last_resume_point)
        for callback in callbacks or []:
            callback(record)
    log.close()
    s.dropout.remove()
    if stop < data.total_steps:      # max_steps: leave a resume point instead of a selection
        return checkpoint(s, optimizer, s.run_dir / f"checkpoint-step-{stop}", stop, data.total_steps)
    return select(s, records)


# ---- set-up: runtime, base model + EOT (+ adapters), residual dropout, compute dtype, compile -------------------
@dataclass
class Setup:
    """What every step shares, built once by `set_up`."""

    cfg: dict[str, Any]
    tcfg: TrainConfig
    rt: Runtime
    run_dir: Path
    base: str
    model: Any
    tokenizer: Any
    dropout: ResidualDropout
    pad_id: int
    dtype: torch.dtype              # compute dtype (autocast; master weights stay fp32 for full fine-tunes)
    compiled: bool
    fast_loss: bool                 # output layer only at trainable positions (unwrapped models)
    flat: bool                      # packed_sdpa: one padding-free row per micro-batch


def set_up(cfg: dict[str, Any], tcfg: TrainConfig, run_name: str, resume: Path | None) -> Setup:
    mcfg = section(cfg, "model", ModelConfig)
    rt = Runtime()
    dtype = pick_dtype(tcfg.dtype, rt.device)
    if dtype == torch.float16:
        raise ConfigError("train.dtype float16 needs loss scaling, which this loop does not do: use bfloat16 "
                          "(or auto) or float32")
    base = ensure_base(cfg)
    torch.manual_seed(tcfg.seed)
    model, tokenizer = load_for_training(base, mcfg, tcfg, resume)
    context = model_context(model.config)
    if context is not None and tcfg.max_length > context:
        raise ConfigError(f"train.max_length {tcfg.max_length} exceeds the context of {base} ({context} "
                          f"positions, its config.json): set train.max_length <= {context}")
    dropout = ResidualDropout(model, tcfg.residual_dropout)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eot_id(tokenizer)
    compiled = maybe_compile(model.get_decoder(), tcfg.compile, rt.device)
    return Setup(cfg=cfg, tcfg=tcfg, rt=rt, run_dir=resolve(cfg["paths"]["models"]) / run_name, base=base,
                 model=model, tokenizer=tokenizer, dropout=dropout, pad_id=pad_id, dtype=dtype, compiled=compiled,
                 fast_loss=not rt.distributed, flat=tcfg.packing and tcfg.attention == "packed_sdpa")


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


# ---- data: tokens + shifted targets; over max_length loses the end; nothing-to-train examples dropped ----------
@dataclass
class Data:
    examples: list[Example]
    dev_examples: list[Example]
    dev_rows: list[dict[str, Any]]
    dropped_ids: list[str]          # training examples whose prompt alone filled max_length
    steps_per_epoch: int
    total_steps: int

    def batches(self, step: int, tcfg: TrainConfig, pad_id: int, flat: bool) -> list[dict[str, torch.Tensor]]:
        """The micro-batches of optimiser step `step`: the epoch's order is a pure function of (seed, epoch)."""
        epoch, k = divmod(step, self.steps_per_epoch)
        order = epoch_order(len(self.examples), tcfg.seed, epoch)
        chosen = [self.examples[i] for i in order[k * tcfg.batch_size:(k + 1) * tcfg.batch_size]]
        return plan_step(chosen, tcfg.packing, tcfg.micro_batch_size, tcfg.max_length, pad_id, flat)


def load_data(s: Setup, train_file: str | Path, dev_file: str | Path | None) -> Data:
    tcfg = s.tcfg
    rows = load_conversations(train_file)
    examples, dropped = drop_untrainable(encode_all(s.tokenizer, rows, tcfg.max_length, tcfg.loss_on), rows)
    if dropped and s.rt.is_main:
        print(f"{train_file}: {len(dropped)} example(s) dropped, their prompt alone fills train.max_length "
              f"{tcfg.max_length} (nothing left to train on): {dropped[:5]}", file=sys.stderr)
    if not examples:
        raise InputError(f"{train_file}: no example has a trainable token within train.max_length "
                         f"{tcfg.max_length} ({len(dropped)} dropped)")
    dev_path = Path(dev_file) if dev_file else resolve(s.cfg["paths"]["processed"]) / "dev.jsonl"
    dev_rows = load_conversations(dev_path) if dev_path.exists() else []
    dev_examples, _ = drop_untrainable(encode_all(s.tokenizer, dev_rows, tcfg.max_length, tcfg.loss_on), dev_rows)
    steps_per_epoch = math.ceil(len(examples) / tcfg.batch_size)
    return Data(examples=examples, dev_examples=dev_examples, dev_rows=dev_rows, dropped_ids=dropped,
                steps_per_epoch=steps_per_epoch, total_steps=tcfg.epochs * steps_per_epoch)


# ---- optimiser: AdamW, weight decay on matrices only ---------------------------------------------------------
def make_optimizer(model, tcfg: TrainConfig) -> torch.optim.Optimizer:
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(
        [{"params": [p for p in trainable if p.ndim >= 2], "weight_decay": tcfg.weight_decay},
         {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0}],
        lr=tcfg.learning_rate, betas=(tcfg.adam_beta1, tcfg.adam_beta2), foreach=True)


# ---- resume: optimiser moments, RNG (CPU + every CUDA device), step counter; the data order is recomputed ------
def restore(resume: Path | None, optimizer: torch.optim.Optimizer, total_steps: int) -> int:
    """The step to start from (0 for a fresh run)."""
    if resume is None:
        return 0
    state = torch.load(resume / "training_state.pt", weights_only=False)
    if state["total_steps"] != total_steps:
        raise ValueError(f"{resume}: saved for {state['total_steps']} steps, this config has {total_steps}")
    optimizer.load_state_dict(state["optimizer"])
    restore_rng(state, resume)
    return int(state["step"])


def start_log(s: Setup, data: Data, train_file: str | Path, start_step: int, stop: int,
              resume: Path | None) -> RunLog:
    """metrics.jsonl (+ TensorBoard) and run.json, which reports what went in and what was dropped."""
    s.run_dir.mkdir(parents=True, exist_ok=True)
    if s.rt.is_main:
        write_json(s.run_dir / "run.json", {
            "run_name": s.run_dir.name, "base": s.base, "train_file": str(train_file),
            "n_examples": len(data.examples), "n_trimmed": sum(e.trimmed for e in data.examples),
            "n_dropped_no_trainable": len(data.dropped_ids), "dropped_ids": data.dropped_ids,
            "steps_per_epoch": data.steps_per_epoch, "total_steps": data.total_steps,
            "dropout_rates": s.dropout.rates, "compute_dtype": str(s.dtype).removeprefix("torch."),
            "compiled": s.compiled, "world_size": s.rt.world_size, "distributed": s.rt.kind, "train": s.tcfg,
            "model": s.cfg.get("model")}, config=s.cfg, inputs=[train_file])
    return RunLog(s.run_dir, enabled=s.rt.is_main, tensorboard=s.tcfg.tensorboard, progress=s.tcfg.progress,
                  name=s.run_dir.name, start_step=start_step, stop_step=stop, resumed=resume is not None)


# ---- step: lr, micro-batches (this rank's share), loss = Σ token NLL / the step's trainable tokens --------------
def optimizer_step(model, optimizer: torch.optim.Optimizer, rt: Runtime, batches: list[dict[str, torch.Tensor]],
                   lr: float, dtype: torch.dtype, fast_loss: bool, max_grad_norm: float | None
                   ) -> tuple[float, int, float]:
    """One optimiser step over `batches`; returns (loss per trainable token, trainable tokens, grad norm)."""
    n_trainable = step_token_count(batches)
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss_sum = 0.0
    for batch, weight in rt.shard(batches):
        batch = {key: value.to(rt.device) for key, value in batch.items()}
        with rt.autocast(dtype):
            loss = token_loss_sum(model, batch, fast_loss) * weight
        rt.backward(loss / n_trainable)
        loss_sum += float(loss.detach())
    grad_norm = rt.clip(model, max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum / n_trainable, n_trainable, grad_norm


def train_step(s: Setup, data: Data, optimizer: torch.optim.Optimizer, step: int) -> dict[str, Any]:
    """Step `step` (0-based) of the run, timed; returns its metrics record."""
    t0 = time.perf_counter()
    epoch, k = divmod(step, data.steps_per_epoch)
    batches = data.batches(step, s.tcfg, s.pad_id, s.flat)
    lr = lr_at(step, data.total_steps, s.tcfg)
    loss, n_trainable, grad_norm = optimizer_step(s.model, optimizer, s.rt, batches, lr, s.dtype, s.fast_loss,
                                                  s.tcfg.max_grad_norm)
    seconds = time.perf_counter() - t0
    n_tokens = sum(int(b["n_real"]) for b in batches)
    return {"step": step + 1, "epoch": epoch + (k + 1) / data.steps_per_epoch, "loss": loss, "lr": lr,
            "grad_norm": grad_norm, "tokens": n_tokens, "trainable_tokens": n_trainable,
            "tokens_per_s": n_tokens / seconds, "trainable_tokens_per_s": n_trainable / seconds,
            "packing_efficiency": packing_efficiency(batches), "seconds": seconds}


# ---- checkpoint: HF directory (+ training_state.pt, single process), dev perplexity and dev quality ------------
def checkpoint(s: Setup, optimizer: torch.optim.Optimizer, path: Path, step: int, total_steps: int) -> Path:
    from lima.train.peft_methods import merged_state_dict

    state = None
    if s.tcfg.save_optimizer and not s.rt.distributed:
        state = training_state(step, total_steps, optimizer)
    out = save_checkpoint(s.rt.unwrap(s.model), s.tokenizer, path, s.tcfg.method, state, merged_state_dict,
                          s.rt.state_dict(s.model), s.rt.is_main)
    s.rt.barrier()
    return out


def save_and_evaluate(s: Setup, data: Data, optimizer: torch.optim.Optimizer, epoch: int, step: int,
                      train_loss: float, quality_hook: Callable[..., float | None] | None, log: RunLog
                      ) -> dict[str, Any]:
    """An epoch checkpoint and its checkpoints.json record. Dev perplexity runs on every rank (a sharded
    forward needs them all); dev quality on rank 0 only, with the model in memory where rank 0 holds all of
    it, and its score is broadcast so every rank selects the same checkpoint."""
    path = checkpoint(s, optimizer, s.run_dir / f"checkpoint-epoch-{epoch}", step, data.total_steps)
    dev_ppl = perplexity(s.model, data.dev_examples, s.tcfg.micro_batch_size, s.tcfg.max_length, s.pad_id,
                         s.rt.device, s.fast_loss)
    quality = None
    if quality_hook is not None and s.rt.is_main:
        with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_available() else []):
            quality = quality_hook(s.cfg, path, data.dev_rows, **_in_memory(s, quality_hook))   # RNG untouched
    quality = s.rt.broadcast(quality)
    s.rt.barrier()
    log.write({"step": step, "kind": "checkpoint", "epoch": epoch, "dev_perplexity": dev_ppl,
               "dev_quality": quality})
    return {"epoch": epoch, "step": step, "path": str(path), "dev_perplexity": dev_ppl, "dev_quality": quality,
            "train_loss": train_loss}


def _in_memory(s: Setup, hook: Callable[..., Any]) -> dict[str, Any]:
    """model=/tokenizer= for a hook that takes them, when this rank holds the whole (uncompiled) model."""
    params = inspect.signature(hook).parameters.values()
    takes = any(p.name == "model" or p.kind is p.VAR_KEYWORD for p in params)
    if not takes or s.rt.sharded or s.compiled:
        return {}
    return {"model": s.rt.unwrap(s.model), "tokenizer": s.tokenizer}


# ---- selection: the rule over checkpoints.json → selected.json --------------------------------------------------
def select(s: Setup, records: list[dict[str, Any]]) -> Path:
    selected = select_checkpoint(records, s.tcfg.select, s.tcfg.select_epochs)
    if s.rt.is_main:
        write_json(s.run_dir / "selected.json", selected, config=s.cfg)
    return Path(selected["path"])


def _rotate(new: Path, previous: Path | None) -> Path:
    """Keep only the latest mid-epoch resume point (epoch checkpoints are kept)."""
    if previous is not None and previous != new:
        shutil.rmtree(previous, ignore_errors=True)
    return new
