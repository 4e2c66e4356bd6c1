"""A tiny fine-tunable model directory (byte-level BPE + 2-layer Llama + EOT chat template) for the tests.

Built once per test session under pytest's base temp dir (a few seconds on CPU), shared by every test file
that imports `tiny_model_dir`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = [
    "How do I boil an egg? Put the egg in boiling water for nine minutes, then cool it in cold water.",
    "Write a short poem about the sea. The sea is wide and grey, it sings by night and day.",
    "What is the capital of France? The capital of France is Paris, a city on the Seine.",
    "Explain recursion. A function is recursive when it calls itself on a smaller part of the problem.",
] * 8


def build_tiny_model(out_dir: Path, eot: bool = True) -> Path:
    from lima.model import SmokeModelConfig, add_eot_token, build_smoke_base, load_model

    if (out_dir / "config.json").exists():
        return out_dir
    cfg = SmokeModelConfig(vocab_size=320, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                           pretrain_steps=20, pretrain_batch_size=4, pretrain_seq_len=64)
    build_smoke_base(cfg, CORPUS, out_dir)
    if eot:
        model, tokenizer = load_model(out_dir)
        add_eot_token(tokenizer, model)
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-lima-model")

