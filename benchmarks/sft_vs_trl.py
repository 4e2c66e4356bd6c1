"""Fine-tuning throughput: our trainer vs TRL's SFTTrainer vs a bare loop, on the project's own smoke data, CPU.

Data: the curated smoke `train.jsonl`, built here by the pipeline itself (synthetic dumps → collection →
curation in a temp `paths.root`), so its defining property is LIMA's: a very wide spread of lengths (long
wikiHow / Stack Exchange answers next to short SNI outputs), many trimmed at the profile's max_length.
Model: the smoke profile's tiny Llama + locally trained tokenizer (built from the interim corpus by
`ensure_base`, briefly pre-trained), EOT added once and saved; every contestant starts from that directory.
Recipe: the smoke profile's effective batch (8 examples per optimiser step), max_length 512, one epoch per
block, dropout off (so step 1 is deterministic), no gradient clipping anywhere, 1 torch thread for everyone.

Contestants, each run in both precisions (fp32, and bf16 autocast with fp32 master weights — the mechanism
`bf16=True` gives TRL on CPU; ours gets `train.dtype` set to the precision, so its own per-micro-batch
autocast does the same — never `auto`, which picks bf16 on a CPU with native bf16 — and `train.compile: off`):
(a) ours: `lima.train.finetune` unchanged (packing, `train.attention: packed_sdpa` — per-example causal SDPA
    over one padding-free row of ≤ 4 × 512 tokens per micro-batch — loss at trainable positions only);
(b) TRL SFTTrainer on prompt–completion rows (loss on assistant turn + EOT) at its fastest *exact* CPU
    setting: the standard transformers loss (its default fused-lm-head path is ~2x slower on CPU), gradient
    checkpointing off, bf16 set explicitly; tried with no packing at micro-batch 1/2/4/8 (accumulation
    keeps 8 examples per step, fed in exactly our example order) and with `bfd` packing at micro-batch
    1/2/4 (accumulation keeps ~the same tokens per step); the fastest is the baseline;
(c) the limit: a bare forward/backward/AdamW loop over our micro-batches for every step, pre-built, with
    the same attention implementation as ours (packed_sdpa).
Order: per precision, first the TRL settings are tried once each (one epoch; the fastest becomes the
baseline), then ours, TRL-best and the limit run interleaved in blocks (`benchmarks/interleave.py`: one block =
one epoch over the same data for each, order rotated per block, a warm-up block first and not counted); the
ratios are the medians of the per-block ratios, with their spread, so a change of load hits all alike.
Throughput = trainable (assistant + EOT) tokens per second of training (ours: the sum of its per-step
times; TRL: `train_runtime`; bare: the loop). Headline precision: the one where the bare loop is fastest
(a property of the hardware, not of any contestant). Equal-loss check: step 1 holds the same 8 examples
for ours and TRL without packing, so their step-1 losses must agree (bfd regroups examples, so its step 1
is a different batch; `loss_trl` is TRL's no-packing step-1 loss). `--quick`: fp32 only, 2 blocks, TRL
tried at no-packing micro-batch 2 and bfd micro-batch 1. Writes benchmarks/results/sft_vs_trl.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from interleave import describe, headline, run_blocks, spread  # noqa: E402

EPOCHS, BATCH, MICRO, MAX_LEN, SEED, LR = 1, 8, 4, 512, 42, 1e-3      # EPOCHS: per block
PRETRAIN_STEPS = 30                   # weights barely matter for speed; a short pre-training keeps set-up short
PRECISIONS = ("float32", "bfloat16")
TRL_NONE_MICRO, TRL_BFD_MICRO = (1, 2, 4, 8), (1, 2, 4)
QUICK_NONE_MICRO, QUICK_BFD_MICRO = (2,), (1,)
BLOCKS, QUICK_BLOCKS = 5, 2
TOLERANCE = {"float32": 1e-5, "bfloat16": 2e-2}     # relative step-1 loss difference still called equal


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def amp(precision: str, cache: bool = True) -> contextlib.AbstractContextManager:
    """`cache=False` when the context spans optimiser steps: autocast caches the bf16 copy of each weight
    until the outermost context exits, so one context around a whole run would keep training on the
    step-1 weights (and skip the per-forward weight casts: faster, and wrong)."""
    if precision == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


def build_inputs(tmp: Path) -> tuple[dict, Path, Path, list[dict]]:
    """The pipeline's own smoke train.jsonl and tiny Llama (+ EOT), in a temp root."""
    from lima.config import load_profile, resolve
    from lima.curation import curate
    from lima.data import collect_all
    from lima.data.synthetic import generate_dumps
    from lima.io import read_jsonl
    from lima.model import add_eot_token, load_model
    from lima.train.base import ensure_base

    cfg = load_profile("smoke", {"paths.root": str(tmp), "model.smoke.pretrain_steps": PRETRAIN_STEPS})
    generate_dumps(cfg)
    collect_all(cfg)
    curate(cfg)
    base = ensure_base(cfg)
    model, tok = load_model(base, "float32")
    add_eot_token(tok, model, cfg["model"]["eot_token"])
    start = tmp / "start"
    model.save_pretrained(start)
    tok.save_pretrained(start)
    train = resolve(cfg["paths"]["processed"]) / "train.jsonl"
    return cfg, train, start, read_jsonl(train)


def run_ours(tmp: Path, train: Path, start: Path, precision: str, name: str) -> dict:
    from lima.config import load_profile
    from lima.train import finetune

    cfg = load_profile("smoke", {"paths.root": str(tmp), "model.base": str(start), "model.dtype": precision,
                                 "train.epochs": EPOCHS, "train.batch_size": BATCH,
                                 "train.micro_batch_size": MICRO, "train.max_length": MAX_LEN,
                                 "train.residual_dropout": 0.0, "train.learning_rate": LR,
                                 "train.save_epochs": [], "train.save_optimizer": False,
                                 "train.tensorboard": False, "train.progress": False, "train.num_threads": 1,
                                 "train.max_grad_norm": None, "train.seed": SEED,
                                 "train.dtype": precision, "train.compile": "off"})
    finetune(cfg, train, name, dev_file=tmp / "none.jsonl")     # its own per-micro-batch autocast (train.dtype)
    steps = [json.loads(x) for x in (tmp / f"models/{name}/metrics.jsonl").read_text().splitlines()]
    steps = [s for s in steps if "kind" not in s]
    seconds = sum(s["seconds"] for s in steps)
    trainable = sum(s["trainable_tokens"] for s in steps)
    computed = sum(s["tokens"] / s["packing_efficiency"] for s in steps)
    return {"tokens_per_s": trainable / seconds, "seconds": seconds, "loss": steps[0]["loss"],
            "trainable_tokens": trainable, "optimizer_steps": len(steps),
            "packing_efficiency": sum(s["tokens"] for s in steps) / computed}


def run_limit(start: Path, examples: list, precision: str) -> dict:
    """Bare loop: every step's micro-batches pre-built exactly as ours builds them; nothing else is timed."""
    from lima.model import load_model
    from lima.train.checkpoints import token_loss_sum
    from lima.train.data import plan_step, step_token_count
    from lima.train.loop import epoch_order
    from lima.train.packed_attention import use_attention

    model, tok = load_model(start, "float32")
    use_attention(model, "packed_sdpa")          # the same kernel and layout as ours
    model.config.use_cache = False
    model.train()
    steps = []
    for epoch in range(EPOCHS):
        order = epoch_order(len(examples), SEED, epoch)
        for k in range(math.ceil(len(examples) / BATCH)):
            batches = plan_step([examples[i] for i in order[k * BATCH:(k + 1) * BATCH]], True, MICRO, MAX_LEN,
                                tok.pad_token_id, flat=True)
            steps.append((batches, step_token_count(batches)))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.95), foreach=True)
    first = None
    t0 = time.perf_counter()
    for batches, n_trainable in steps:
        total = 0.0
        for b in batches:
            with amp(precision):
                loss = token_loss_sum(model, b)
            (loss / n_trainable).backward()
            total += float(loss.detach())
        opt.step()
        opt.zero_grad(set_to_none=True)
        first = total / n_trainable if first is None else first
    seconds = time.perf_counter() - t0
    trainable = sum(n for _, n in steps)
    return {"tokens_per_s": trainable / seconds, "seconds": seconds, "loss": first, "trainable_tokens": trainable}


def run_trl(start: Path, rows: list[dict], tmp: Path, precision: str, strategy: str, micro: int, accum: int,
            probe: bool = False) -> dict:
    """TRL on the same rows; without packing it sees our exact example order (so step 1 = our step 1)."""
    from datasets import Dataset
    from torch.utils.data import Sampler
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer
    from trl import SFTConfig, SFTTrainer

    from lima.train.loop import epoch_order

    class OurOrder(Sampler):
        """Epoch e visits the examples in `lima.train.loop.epoch_order(n, seed, e)`, like our trainer."""

        def __init__(self, n: int) -> None:
            self.n, self.epoch = n, 0

        def __len__(self) -> int:
            return self.n

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __iter__(self):
            order = epoch_order(self.n, SEED, self.epoch)
            self.epoch += 1
            return iter(order)

    class StandardLossSFT(SFTTrainer):
        """TRL with the standard transformers loss (its fused-lm-head loss is ~2x slower on CPU)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs["use_cache"] = False
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

        def _get_train_sampler(self, train_dataset=None):
            if strategy == "none":
                return OurOrder(len(train_dataset if train_dataset is not None else self.train_dataset))
            return super()._get_train_sampler(train_dataset)

    tok = AutoTokenizer.from_pretrained(start)
    model = AutoModelForCausalLM.from_pretrained(start, dtype=torch.float32)
    data = Dataset.from_list([{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows])
    args = SFTConfig(output_dir=str(tmp / f"trl-{precision}-{strategy}-{micro}"), per_device_train_batch_size=micro,
                     gradient_accumulation_steps=accum, num_train_epochs=EPOCHS, learning_rate=LR,
                     lr_scheduler_type="linear", warmup_steps=0, adam_beta1=0.9, adam_beta2=0.95,
                     weight_decay=0.1, max_grad_norm=0.0, logging_steps=1, save_strategy="no", report_to=[],
                     bf16=precision == "bfloat16", fp16=False, gradient_checkpointing=False, max_length=MAX_LEN,
                     packing=strategy != "none", packing_strategy="bfd", completion_only_loss=True,
                     use_cpu=True, dataloader_num_workers=0, disable_tqdm=True, seed=SEED)
    trainer = StandardLossSFT(model=model, args=args, train_dataset=data, processing_class=tok)
    labels = trainer.train_dataset["labels"]
    trl_trainable = sum(sum(t != -100 for t in row) for row in labels)
    if probe:
        return {"rows": len(trainer.train_dataset), "trainable_tokens_per_epoch": trl_trainable}
    out = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    seconds = out.metrics["train_runtime"]
    return {"tokens_per_s": EPOCHS * trl_trainable / seconds, "seconds": seconds, "loss": losses[0],
            "optimizer_steps": trainer.state.global_step, "micro_batch": micro, "accumulation": accum,
            "rows_per_epoch": len(trainer.train_dataset), "trainable_tokens_per_epoch": trl_trainable,
            "threads": torch.get_num_threads()}


def padding_efficiency(lengths: list[int], micro: int) -> float:
    """Real / computed positions of TRL without packing: our order, `micro` rows padded to the longest."""
    from lima.train.loop import epoch_order

    real = computed = 0
    for epoch in range(EPOCHS):
        order = epoch_order(len(lengths), SEED, epoch)
        for k in range(0, len(order), micro):
            chunk = [lengths[i] for i in order[k:k + micro]]
            real, computed = real + sum(chunk), computed + len(chunk) * max(chunk)
    return real / computed


def data_summary(rows: list[dict], examples: list) -> dict:
    by_source: dict[str, list[int]] = {}
    for row, ex in zip(rows, examples, strict=True):
        by_source.setdefault(row.get("source", "?"), []).append(len(ex.input_ids))
    return {"examples": len(rows), "trimmed_at_max_length": sum(ex.trimmed for ex in examples),
            "trainable_tokens_per_epoch": sum(ex.n_trainable for ex in examples),
            "tokens_per_example_by_source": {
                s: {"n": len(v), "mean": round(statistics.mean(v), 1), "min": min(v), "max": max(v)}
                for s, v in sorted(by_source.items())}}


def interleaved(tmp: Path, train: Path, start: Path, rows: list[dict], examples: list, precision: str,
                trl_setting: tuple[str, int, int], blocks: int) -> tuple[dict, dict]:
    """Ours, TRL at `trl_setting` and the limit, one epoch each per block, interleaved; returns (blocks, runs)."""
    strategy, micro, accum = trl_setting
    runs: dict[str, list[dict]] = {"ours": [], "trl": [], "limit": []}

    def ours() -> float:
        runs["ours"].append(run_ours(tmp, train, start, precision, f"ours-{precision}-{len(runs['ours'])}"))
        return runs["ours"][-1]["tokens_per_s"]

    def trl() -> float:
        runs["trl"].append(run_trl(start, rows, tmp, precision, strategy, micro, accum))
        return runs["trl"][-1]["tokens_per_s"]

    def limit() -> float:
        runs["limit"].append(run_limit(start, examples, precision))
        return runs["limit"][-1]["tokens_per_s"]

    result = run_blocks({"ours": ours, "trl": trl, "limit": limit}, blocks, reference="trl", warmup_blocks=1)
    return result, runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS,
                        help="default: both (quick: float32)")
    parser.add_argument("--quick", action="store_true", help="float32 only, 2 blocks, two TRL settings tried")
    parser.add_argument("--blocks", type=int, help=f"interleaved blocks per precision (default {BLOCKS}, "
                                                   f"quick {QUICK_BLOCKS}), after one warm-up block")
    parser.add_argument("--out", default=str(HERE / "results" / "sft_vs_trl.json"))
    opts = parser.parse_args(argv)
    precisions = opts.precisions or (["float32"] if opts.quick else list(PRECISIONS))
    n_blocks = opts.blocks or (QUICK_BLOCKS if opts.quick else BLOCKS)
    none_micro, bfd_micro = (QUICK_NONE_MICRO, QUICK_BFD_MICRO) if opts.quick else (TRL_NONE_MICRO, TRL_BFD_MICRO)

    from lima.io import write_json
    from lima.train.data import encode_all

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="sft_vs_trl-"))
    t_setup = time.perf_counter()
    cfg, train, start, rows = build_inputs(tmp)
    if not all(len(r["messages"]) == 2 and r["messages"][-1]["role"] == "assistant" for r in rows):
        raise ValueError(f"{train}: expected single-turn rows (prompt–completion for TRL)")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(start)
    examples = encode_all(tok, rows, MAX_LEN, "assistant")
    data = data_summary(rows, examples)
    log(f"set-up {time.perf_counter() - t_setup:.0f} s: {json.dumps(data)}")
    steps_per_epoch = math.ceil(len(rows) / BATCH)
    bfd_rows = run_trl(start, rows, tmp, "float32", "bfd", 1, 1, probe=True)["rows"]
    bfd_rows_per_step = max(1, round(bfd_rows / steps_per_epoch))

    by_precision = {}
    for precision in precisions:
        # 1. which TRL setting is fastest: one epoch each (the first run also warms this precision's kernels up)
        trl, settings = {}, {}
        for micro in none_micro:
            name = f"none-micro{micro}"
            settings[name] = ("none", micro, BATCH // micro)
            trl[name] = run_trl(start, rows, tmp, precision, *settings[name])
            trl[name]["padding_efficiency"] = padding_efficiency([len(e.input_ids) for e in examples], micro)
            log(f"{precision} trl {name} {trl[name]['tokens_per_s']:.0f} tok/s")
        for micro in bfd_micro:
            if micro > bfd_rows_per_step:
                continue
            name = f"bfd-micro{micro}"
            settings[name] = ("bfd", micro, max(1, round(bfd_rows_per_step / micro)))
            trl[name] = run_trl(start, rows, tmp, precision, *settings[name])
            log(f"{precision} trl {name} {trl[name]['tokens_per_s']:.0f} tok/s")
        best = max(trl, key=lambda k: trl[k]["tokens_per_s"])
        # 2. ours vs TRL-best vs the limit, interleaved
        blocks, runs = interleaved(tmp, train, start, rows, examples, precision, settings[best], n_blocks)
        log(f"{precision} {describe(blocks)}")
        per_limit = [row["ours"] / row["limit"] for row in blocks["per_block"]]
        limit_ratio = {**spread(per_limit), "per_block": per_limit}
        ours_run = runs["ours"][0]
        exact = {k: v["loss"] for k, v in trl.items() if k.startswith("none")}
        loss_ok = all(abs(v - ours_run["loss"]) <= TOLERANCE[precision] * abs(ours_run["loss"])
                      for v in exact.values())
        head = headline(blocks, "ours")
        by_precision[precision] = {
            **head, "limit": round(blocks["throughput_median"]["limit"], 1),
            "limit_ratio": round(limit_ratio["median"], 3),
            "limit_ratio_spread": {k: round(limit_ratio[k], 3) for k in ("min", "q25", "q75", "max")},
            "trl_setting": best, "loss_ours": ours_run["loss"], "loss_limit": runs["limit"][0]["loss"],
            "loss_trl": trl[best]["loss"] if best.startswith("none") else next(iter(exact.values())),
            "losses_equal": loss_ok, "ours_run": ours_run, "trl_runs": trl, "limit_ratio_blocks": limit_ratio,
            "interleave": blocks, "block_runs": runs}

    headline_precision = max(by_precision, key=lambda p: by_precision[p]["limit"])
    h = by_precision[headline_precision]
    result = {"name": "sft_vs_trl", "ours": h["ours"], "baseline": h["baseline"], "ratio": h["ratio"],
              "ratio_spread": h["ratio_spread"], "blocks": h["blocks"],
              "limit": h["limit"], "limit_ratio": h["limit_ratio"], "limit_ratio_spread": h["limit_ratio_spread"],
              "packing_efficiency": round(h["ours_run"]["packing_efficiency"], 4),
              "loss_ours": h["loss_ours"], "loss_trl": h["loss_trl"], "losses_equal": h["losses_equal"],
              "trl_setting": h["trl_setting"], "trl_runs": h["trl_runs"], "precision": headline_precision,
              "precision_rule": "the precision in which the bare loop (the limit) is fastest (median over blocks)",
              "quick": opts.quick, "by_precision": by_precision, "data": data,
              "setup": {"batch": BATCH, "micro_batch": MICRO, "epochs_per_block": EPOCHS, "max_length": MAX_LEN,
                        "blocks": n_blocks, "warmup_blocks": 1, "threads": 1,
                        "optimizer_steps_per_block": EPOCHS * steps_per_epoch,
                        "trl_settings_tried": list(settings), "trl_bfd_rows_per_epoch": bfd_rows,
                        "trl_bfd_rows_per_step": bfd_rows_per_step,
                        "model": "smoke tiny Llama (128 hidden, 4 layers, vocab 2048 + EOT), CPU",
                        "data": "smoke profile's curated train.jsonl (synthetic dumps → collect → curate)"}}
    write_json(Path(opts.out), result, config=result["setup"])
    print(json.dumps({k: v for k, v in result.items() if k not in {"by_precision", "setup", "data", "trl_runs"}},
                     indent=2))
    for p, r in by_precision.items():
        print(f"{p}: ours {r['ours']}  TRL {r['baseline']} ({r['trl_setting']})  limit {r['limit']}  "
              f"ratio {r['ratio']} {r['ratio_spread']}  limit_ratio {r['limit_ratio']}  "
              f"losses_equal {r['losses_equal']}")


if __name__ == "__main__":
    main()
