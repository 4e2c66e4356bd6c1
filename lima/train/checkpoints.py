"""Checkpoints, dev perplexity, the dev-quality hook and the checkpoint-selection rule.

The paper found held-out perplexity does not track quality and picked a checkpoint between epochs 5 and
10 by hand. Here the pick is a rule written to `selected.json`: `best_dev_quality` (the default) takes
the best judge-based dev score among the epochs in `select_epochs` when a `dev_quality` hook is plugged
in, otherwise the last checkpoint in that window; `last` and `epoch:N` are the explicit alternatives.
"""

from __future__ import annotations

import importlib
import json
import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from lima.io import write_json
from lima.train.data import IGNORE, Example, plan_step


def resolve_hook(spec: str | None) -> Callable[..., float | None] | None:
    """`"package.module:function"` → the callable (the evaluation step plugs its judge in this way)."""
    if not spec:
        return None
    module, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"train.dev_quality must look like 'package.module:function', got {spec!r}")
    return getattr(importlib.import_module(module), name)


def token_loss_sum(model, batch: dict[str, torch.Tensor], fast: bool = True) -> torch.Tensor:
    """Summed next-token cross-entropy over the trainable positions of one micro-batch.

    `fast` runs the decoder and applies the output layer only at trainable positions (exact; saves the
    logits of prompts and padding). It needs `get_decoder()`/`get_output_embeddings()` of an unwrapped
    Llama-family model; wrapped (FSDP/DeepSpeed) models take the ordinary forward.
    """
    targets = batch["targets"]
    keep = targets != IGNORE
    kwargs = {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"], "use_cache": False}
    if fast:
        hidden = model.get_decoder()(**kwargs).last_hidden_state
        logits = model.get_output_embeddings()(hidden[keep])
    else:
        logits = model(**kwargs).logits[keep]
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep], reduction="sum")


@torch.no_grad()
def perplexity(model, examples: Sequence[Example], micro_batch_size: int, max_length: int, pad_id: int,
               device: torch.device, fast: bool = True) -> float | None:
    """exp(mean NLL) over the trainable (assistant) tokens of the dev set; eval mode, so no dropout."""
    if not examples:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in plan_step(examples, True, micro_batch_size, max_length, pad_id):
        batch = {k: v.to(device) for k, v in batch.items()}
        total += float(token_loss_sum(model, batch, fast))
        count += int((batch["targets"] != IGNORE).sum())
    model.train(was_training)
    return math.exp(total / max(1, count))


def training_state(step: int, total_steps: int, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """What a resume point needs besides the weights: optimiser moments, step, and every RNG the run draws
    from (dropout masks): the CPU generator and, where CUDA is present, the generator of every device."""
    return {"step": step, "total_steps": total_steps, "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(state: dict[str, Any], where: Path) -> None:
    """Put back the RNG states `training_state` saved; a resume on a different number of CUDA devices than
    the run that saved it cannot replay the same dropout masks, so it stops instead of drifting silently."""
    torch.set_rng_state(state["rng"])
    cuda = state.get("cuda_rng") or []
    if not cuda:
        return
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if have != len(cuda):
        raise ValueError(f"{where}: saved the RNG state of {len(cuda)} CUDA device(s), {have} visible here; "
                         f"resume with the same devices (CUDA_VISIBLE_DEVICES)")
    torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(model, tokenizer, path: Path, method: str, state: dict[str, Any] | None,
                    merged: Callable[[Any], dict[str, torch.Tensor]] | None = None, state_dict: dict | None = None,
                    is_main: bool = True) -> Path:
    """An HF directory loadable by AutoModelForCausalLM (+ tokenizer with the EOT template), written atomically.

    full: the weights; lora: merged weights + `adapter/` (`merged(model)` gives the merged state dict, written
    through the base model, so no merged copy of the model is built); qlora: `adapter/` only (merge on
    export). `training_state.pt` (optimiser, RNG, step) makes it a resume point.
    """
    if not is_main:
        return path
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if method == "full":
        model.save_pretrained(tmp, state_dict=state_dict)
    else:
        model.save_pretrained(tmp / "adapter")
        if method == "lora" and merged is not None:
            model.get_base_model().save_pretrained(tmp, state_dict=merged(model))
    tokenizer.save_pretrained(tmp)
    if state is not None:
        torch.save(state, tmp / "training_state.pt")
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path


def select_checkpoint(records: list[dict[str, Any]], rule: str, window: Sequence[int]) -> dict[str, Any]:
    """Apply the selection rule to `checkpoints.json` records; returns {"path", "epoch", "rule"}."""
    if not records:
        raise ValueError("no checkpoint was written: check train.save_epochs / save_final")
    lo, hi = (min(window), max(window)) if window else (-math.inf, math.inf)
    in_window = [r for r in records if lo <= r["epoch"] <= hi] or records
    if rule == "last":
        pick, why = records[-1], "last"
    elif rule.startswith("epoch:"):
        epoch = int(rule.split(":", 1)[1])
        matches = [r for r in records if r["epoch"] == epoch]
        if not matches:
            raise ValueError(f"select {rule!r}: no checkpoint at that epoch; have {[r['epoch'] for r in records]}")
        pick, why = matches[0], rule
    elif rule == "best_dev_quality":
        scored = [r for r in in_window if r.get("dev_quality") is not None]
        if scored:
            pick = max(scored, key=lambda r: (r["dev_quality"], -r["epoch"]))   # ties → the earlier epoch
            why = f"best_dev_quality in epochs {lo}-{hi}"
        else:
            pick, why = in_window[-1], f"last in epochs {lo}-{hi} (no dev_quality available)"
    else:
        raise ValueError(f"train.select must be last | best_dev_quality | epoch:N, got {rule!r}")
    return {"path": pick["path"], "epoch": pick["epoch"], "rule": why}


def write_records(run_dir: Path, records: list[dict[str, Any]], config: Any) -> None:
    write_json(run_dir / "checkpoints.json", records, config=config)


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "checkpoints.json"
    return json.loads(path.read_text()) if path.exists() else []
