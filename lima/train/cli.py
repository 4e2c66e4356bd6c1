"""`python -m lima train`: fine-tune with the LIMA recipe from a profile (the notebooks call the same code)."""

from __future__ import annotations

import argparse
import json

from lima.config import load_profile, parse_set_args, resolve


def main(argv: list[str], prog: str = "python -m lima train") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Fine-tune a base model with the LIMA recipe (paper §3): full, LoRA or QLoRA. "
        "Writes {models}/<run-name>/checkpoint-epoch-N, metrics.jsonl, checkpoints.json, selected.json. "
        "Runs as is on one CPU/GPU, and under `accelerate launch` for many GPUs (docs/training.md).")
    parser.add_argument("--profile", default="world", help="configs/<profile>.yaml (default: world, the LIMA world)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.method=lora --set train.epochs=3")
    parser.add_argument("--data", help="training JSONL in the train.jsonl format (default: {processed}/train.jsonl)")
    parser.add_argument("--dev", help="dev JSONL for per-checkpoint perplexity (default: {processed}/dev.jsonl)")
    parser.add_argument("--run-name", default=None, help="output folder under {models} (default: lima, or the "
                        "baseline's name)")
    parser.add_argument("--baseline", choices=["alpaca", "pool_unfiltered"],
                        help="train a baseline with the same recipe: alpaca (data.alpaca_json, the paper's Alpaca) "
                        "or pool_unfiltered (a sample of the unfiltered pool); replaces --data")
    parser.add_argument("--resume", metavar="DIR", help="a checkpoint dir with training_state.pt to continue from")
    args = parser.parse_args(argv)

    from lima.train import finetune

    cfg = load_profile(args.profile, parse_set_args(args.set))
    if args.baseline:
        from lima.train.baselines import BaselineUnavailable, baseline_train_file

        try:
            data = baseline_train_file(cfg, args.baseline)
        except BaselineUnavailable as reason:
            print(f"skipped: {reason}")
            return 2
    else:
        data = resolve(args.data) if args.data else resolve(cfg["paths"]["processed"]) / "train.jsonl"
    selected = finetune(cfg, data, run_name=args.run_name or args.baseline or "lima", dev_file=resolve(args.dev) if args.dev else None,
                        resume=resolve(args.resume) if args.resume else None)
    print(json.dumps({"selected": str(selected)}))
    return 0
