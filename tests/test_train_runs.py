"""Whole fine-tuning runs on the tiny Llama: resume equality, LoRA, QLoRA's clear error, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_support import build_tiny_base, tiny_cfg, write_data

from lima.train import finetune


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("runs")
    base = build_tiny_base(root)
    train, dev = write_data(root, n=10)
    return root, base, train, dev


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


class Interrupt(RuntimeError):
    pass


def test_resume_mid_epoch_equals_uninterrupted(setup) -> None:
    root, base, train, dev = setup
    cfg = tiny_cfg(root, base, save_every_steps=2)      # 3 steps per epoch, 6 in all; dropout 0.2 on
    whole = finetune(cfg, train, "whole", dev)

    def kill_after_step_3(record: dict) -> None:
        if record["step"] == 3 + 1:                     # killed during step 4, mid-way through epoch 2
            raise Interrupt
    with pytest.raises(Interrupt):
        finetune(cfg, train, "killed", dev, callbacks=[kill_after_step_3])
    run = root / "models" / "killed"
    assert (run / "checkpoint-step-4").exists() and not (run / "checkpoint-step-2").exists()
    resumed = finetune(cfg, train, "killed", dev, resume=run / "checkpoint-step-4")
    a, b = _weights(whole), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # and a run that was stopped by max_steps, then resumed from its resume point
    stopped = finetune(tiny_cfg(root, base, max_steps=2), train, "stopped", dev)
    assert stopped.name == "checkpoint-step-2"
    resumed2 = finetune(cfg, train, "stopped", dev, resume=stopped)
    c = _weights(resumed2)
    assert all(torch.equal(a[k], c[k]) for k in a)
    steps = [json.loads(line) for line in (root / "models/stopped/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if "kind" not in r] == [1, 2, 3, 4, 5, 6]


def test_lora_trains_only_adapters_and_merges(setup) -> None:
    from lima.model import load_model
    from lima.train.loop import load_for_training
    from lima.train.peft_methods import merged_copy

    root, base, train, dev = setup
    cfg = tiny_cfg(root, base, method="lora", lora_r=4, lora_alpha=8, lora_dropout=0.0, epochs=1, save_epochs=[1])
    selected = finetune(cfg, train, "lora", dev)
    from lima.config import section
    from lima.model import ModelConfig
    from lima.train import TrainConfig

    model, _ = load_for_training(str(base), section(cfg, "model", ModelConfig), section(cfg, "train", TrainConfig),
                                 None)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "trainable_tokens" in n for n in trainable)
    # merged checkpoint: a plain model whose logits equal the adapter model's
    merged, tokenizer = load_model(selected, "float32")
    from lima.train.peft_methods import load_adapter_weights

    load_adapter_weights(model, selected / "adapter")
    model.eval()
    x = torch.tensor([tokenizer.apply_chat_template([{"role": "user", "content": "the cat sat?"}],
                                                    tokenize=True)["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=x).logits, merged(input_ids=x).logits, atol=1e-5)
        assert torch.allclose(merged_copy(model)(input_ids=x).logits, merged(input_ids=x).logits, atol=1e-6)
    # only the adapters (and the EOT rows) moved: base matrices are those of the base model
    before, _ = load_model(base, "float32")
    lm = before.model.layers[0].mlp.down_proj.weight
    assert not torch.equal(merged.model.layers[0].mlp.down_proj.weight, lm)   # merged delta is non-zero


def test_qlora_on_cpu_fails_clearly(setup) -> None:
    from lima.train.peft_methods import QLoRAUnavailable

    root, base, train, dev = setup
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(QLoRAUnavailable, match="no CUDA device"):
        finetune(tiny_cfg(root, base, method="qlora"), train, "qlora", dev)
    assert not (root / "models" / "qlora").exists()


def test_cli_trains_and_reports(setup, capsys) -> None:
    from lima.train.cli import main

    root, base, train, dev = setup
    with pytest.raises(SystemExit) as exc:
        main(["--help"], prog="python -m lima train")
    assert exc.value.code == 0 and "--resume" in capsys.readouterr().out
    args = ["--profile", "test", "--data", str(train), "--dev", str(dev), "--run-name", "cli",
            "--set", f"paths.root={root}", "--set", f"model.base={base}", "--set", "train.epochs=1",
            "--set", "train.save_epochs=[1]", "--set", "train.max_length=64", "--set", "train.progress=false", "--set", "train.dev_quality=null"]
    assert main(args, prog="python -m lima train") == 0
    out = capsys.readouterr().out
    assert "checkpoint-epoch-1" in out
    assert json.loads((root / "models/cli/selected.json").read_text())["epoch"] == 1


def test_finetune_many_side_by_side_equals_one_after_another(setup) -> None:
    from lima.train import finetune_many

    root, base, train, dev = setup
    other, _ = write_data(root / "other", n=8, seed=5)
    sequential = finetune_many(tiny_cfg(root, base), {"seq_a": train, "seq_b": other})
    parallel = finetune_many(tiny_cfg(root, base, parallel_runs=2), {"par_a": train, "par_b": other})
    assert list(parallel) == ["par_a", "par_b"]
    for s, p in (("seq_a", "par_a"), ("seq_b", "par_b")):
        a, b = _weights(sequential[s]), _weights(parallel[p])
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
