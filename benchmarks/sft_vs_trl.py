"""Fine-tuning throughput: our trainer vs TRL's SFTTrainer vs a bare loop, same tiny Llama, data and batch, CPU.

(a) ours: `lima.train.finetune` (packing, loss at trainable positions only, exact normalisation);
(b) TRL SFTTrainer on prompt–completion data (loss on the completion = assistant turn + EOT) at its fastest
    exact CPU setting: the standard transformers loss (the fused-lm-head path is ~2x slower on CPU), no
    gradient checkpointing, bf16 off explicitly (fp32 like ours), the faster of no-packing and `bfd`;
(c) the limit: a bare forward/backward/AdamW loop over our pre-built packed micro-batches.
Every optimiser step holds all 32 examples, so step 1's loss is the same number for every exact contestant
(dropout off). Throughput = trainable (assistant) tokens per second of training steps. One thread each,
so the shared machine's load hurts everyone alike. Writes benchmarks/results/sft_vs_trl.json.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
N_EXAMPLES, BATCH, MICRO, EPOCHS, MAX_LEN = 32, 32, 4, 4, 512
WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "over", "mat", "hill", "and", "then", "to", "find", "some", "fish", "rice", "water", "boil", "wait", "minutes", "why", "sky", "blue", "because", "light", "scatters", "how", "do", "i", "cook", "answer", "first", "second", "finally", "note", "that", "this", "is"]


def conversations(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    text = lambda n: " ".join(rng.choice(WORDS) for _ in range(n))  # noqa: E731
    return [{"id": f"b{i}", "messages": [{"role": "user", "content": text(rng.randint(5, 40)) + "?"},
                                         {"role": "assistant", "content": text(rng.randint(40, 300)) + "."}]}
            for i in range(N_EXAMPLES)]


def main() -> None:
    from lima.config import load_profile
    from lima.io import write_jsonl
    from lima.model import SmokeModelConfig, add_eot_token, build_smoke_base, load_model
    from lima.train import finetune
    from lima.train.checkpoints import token_loss_sum
    from lima.train.data import encode_all, packing_efficiency, plan_step, step_token_count

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="sft_vs_trl-"))
    rows = conversations()
    write_jsonl(tmp / "train.jsonl", rows)
    smoke = SmokeModelConfig(pretrain_steps=0)                     # the smoke profile's tiny Llama, random init
    base = build_smoke_base(smoke, [" ".join(WORDS)] * 50 + [m["content"] for r in rows for m in r["messages"]],
                            tmp / "base")
    # one shared starting point: the base with EOT added, saved once (all contestants load it)
    model, tok = load_model(base, "float32")
    add_eot_token(tok, model)
    model.save_pretrained(tmp / "start")
    tok.save_pretrained(tmp / "start")
    start = tmp / "start"
    lr = 1e-5

    # (a) ours
    cfg = load_profile("smoke", {"paths.root": str(tmp), "model.base": str(start), "train.epochs": EPOCHS,
                                 "train.batch_size": BATCH, "train.micro_batch_size": MICRO,
                                 "train.max_length": MAX_LEN, "train.residual_dropout": 0.0,
                                 "train.learning_rate": lr, "train.final_learning_rate": lr,
                                 "train.save_epochs": [], "train.tensorboard": False, "train.progress": False,
                                 "train.num_threads": 1, "train.max_grad_norm": None})
    finetune(cfg, tmp / "train.jsonl", "ours", dev_file=tmp / "none.jsonl")
    steps = [json.loads(x) for x in (tmp / "models/ours/metrics.jsonl").read_text().splitlines()]
    steps = [s for s in steps if "kind" not in s]
    ours = sum(s["trainable_tokens"] for s in steps) / sum(s["seconds"] for s in steps)
    loss_ours = steps[0]["loss"]

    # (c) the limit: the same micro-batches, pre-built, bare loop
    model, tok = load_model(start, "float32")
    model.train()
    examples = encode_all(tok, rows, MAX_LEN, "assistant")
    batches = plan_step(examples, True, MICRO, MAX_LEN, tok.pad_token_id)
    n_trainable = step_token_count(batches)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    t0 = time.perf_counter()
    for _ in range(EPOCHS):
        for b in batches:
            (token_loss_sum(model, b) / n_trainable).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    limit = EPOCHS * n_trainable / (time.perf_counter() - t0)

    # (b) TRL
    trl_runs = {strategy: run_trl(start, rows, tmp, lr, strategy, n_trainable) for strategy in ("none", "bfd")}
    best = max(trl_runs, key=lambda k: trl_runs[k]["tokens_per_s"])
    result = {"name": "sft_vs_trl", "ours": round(ours, 1), "baseline": round(trl_runs[best]["tokens_per_s"], 1),
              "ratio": round(ours / trl_runs[best]["tokens_per_s"], 3), "limit": round(limit, 1),
              "limit_ratio": round(ours / limit, 3), "packing_efficiency": round(packing_efficiency(batches), 4),
              "loss_ours": loss_ours, "loss_trl": trl_runs[best]["loss"], "trl_setting": best,
              "trl_runs": trl_runs, "setup": {"examples": N_EXAMPLES, "batch": BATCH, "micro_batch": MICRO,
                                              "epochs": EPOCHS, "max_length": MAX_LEN, "threads": 1,
                                              "trainable_tokens_per_step": n_trainable,
                                              "model": "smoke tiny Llama (128 hidden, 4 layers), fp32, CPU"}}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "sft_vs_trl.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in {"trl_runs", "setup"}}, indent=2))


def run_trl(start: Path, rows: list[dict], tmp: Path, lr: float, strategy: str, trainable: int) -> dict:
    """TRL on the same examples; `trainable` (assistant tokens + EOT per epoch) is checked against TRL's mask."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer
    from trl import SFTConfig, SFTTrainer

    class StandardLossSFT(SFTTrainer):
        """TRL with the standard transformers loss (its fused-lm-head loss is ~2x slower on CPU)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs["use_cache"] = False
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    tok = AutoTokenizer.from_pretrained(start)
    model = AutoModelForCausalLM.from_pretrained(start, dtype=torch.float32)
    data = Dataset.from_list([{"prompt": r["messages"][:1], "completion": r["messages"][1:]} for r in rows])
    args = SFTConfig(output_dir=str(tmp / f"trl-{strategy}"), per_device_train_batch_size=MICRO,
                     gradient_accumulation_steps=BATCH // MICRO, num_train_epochs=EPOCHS, learning_rate=lr,
                     lr_scheduler_type="constant", warmup_steps=0, adam_beta1=0.9, adam_beta2=0.95,
                     weight_decay=0.1, max_grad_norm=0.0, logging_steps=1, save_strategy="no", report_to=[],
                     bf16=False, fp16=False, gradient_checkpointing=False, max_length=MAX_LEN,
                     packing=strategy != "none", packing_strategy="bfd", completion_only_loss=True,
                     use_cpu=True, dataloader_num_workers=0, disable_tqdm=True, seed=0)
    trainer = StandardLossSFT(model=model, args=args, train_dataset=data, processing_class=tok)
    columns = trainer.train_dataset.column_names
    mask_column = next((c for c in ("completion_mask", "assistant_masks") if c in columns), None)
    trl_trainable = sum(sum(m) for m in trainer.train_dataset[mask_column]) if mask_column else None
    out = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    seconds = out.metrics["train_runtime"]
    return {"tokens_per_s": EPOCHS * trainable / seconds, "seconds": seconds, "loss": losses[0], "losses": losses,
            "trainable_tokens_per_epoch": trainable, "trl_mask_tokens_per_epoch": trl_trainable,
            "columns": columns}


if __name__ == "__main__":
    main()
