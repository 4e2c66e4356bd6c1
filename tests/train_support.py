"""Shared by tests/test_train_*.py: a ~0.1M-parameter Llama with the EOT token and tiny conversation files."""

from __future__ import annotations

import random
from pathlib import Path

from lima.config import load_profile
from lima.io import write_jsonl
from lima.model import SmokeModelConfig, build_smoke_base

WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "then", "ran", "off", "to", "find", "some", "fish", "for", "its", "dinner", "while", "the", "dog", "slept", "near", "the", "fire", "how", "do", "i", "cook", "rice", "answer", "boil", "water", "add", "rice", "wait", "twenty", "minutes", "why", "is", "the", "sky", "blue", "because", "light", "scatters"]

TINY = SmokeModelConfig(vocab_size=320, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                        pretrain_steps=2, pretrain_batch_size=2, pretrain_seq_len=64)


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def conversations(n: int, seed: int = 0, multi_turn: bool = False) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        messages = [{"role": "user", "content": sentence(rng, rng.randint(2, 8)) + "?"},
                    {"role": "assistant", "content": sentence(rng, rng.randint(3, 30)) + "."}]
        if multi_turn and i % 2 == 0:
            messages += [{"role": "user", "content": sentence(rng, 3)},
                         {"role": "assistant", "content": sentence(rng, 5)}]
        rows.append({"id": f"t{i}", "messages": messages, "source": "authors", "meta": {}})
    return rows


def build_tiny_base(root: Path) -> Path:
    corpus = [sentence(random.Random(i), 40) for i in range(30)]
    return build_smoke_base(TINY, corpus, root / "tiny-base", seed=0)


def tiny_cfg(root: Path, base: Path, **train) -> dict:
    overrides = {"paths.root": str(root), "model.base": str(base), "model.dtype": "float32",
                 "train.epochs": 2, "train.batch_size": 4, "train.micro_batch_size": 2, "train.max_length": 96,
                 "train.save_epochs": [1, 2], "train.select_epochs": [1, 2], "train.learning_rate": 1e-3,
                 "train.final_learning_rate": 1e-4, "train.residual_dropout": 0.2, "train.progress": False,
                 "train.tensorboard": False, "train.dev_quality": None,   # the recipe, not the judge
                 "train.dtype": "float32", "train.compile": "off"}      # the same numbers on every CPU
    overrides.update({f"train.{k}": v for k, v in train.items()})
    return load_profile("test", overrides)


def write_data(root: Path, n: int = 10, seed: int = 0, multi_turn: bool = False) -> tuple[Path, Path]:
    train, dev = root / "train.jsonl", root / "dev.jsonl"
    write_jsonl(train, conversations(n, seed, multi_turn))
    write_jsonl(dev, conversations(4, seed + 1))
    return train, dev


def record_rank_hook(cfg: dict, checkpoint_dir: Path, dev_rows: list, *, model=None, tokenizer=None) -> float:
    """A dev-quality hook for tests: writes which rank called it and whether it got the model in memory."""
    import json
    import os

    rank = os.environ.get("RANK", "0")
    (Path(checkpoint_dir).parent / f"quality-rank{rank}.json").write_text(
        json.dumps({"in_memory": model is not None, "tokenizer": tokenizer is not None, "n_dev": len(dev_rows)}))
    return 4.0
