"""Training on real data and at GPU scale, checked on the CPU: untrainable examples, the context guard, the
compute dtype and compile rules, the CUDA RNG in resume points, the in-memory dev-quality hook, LoRA
checkpoints without a deep copy, and the EOT in a QLoRA export's generation config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_support import build_tiny_base, conversations, tiny_cfg, write_data

from lima.config import ConfigError
from lima.io import InputError, write_jsonl
from lima.train import finetune
from lima.train.precision import compile_rule, cpu_flags, cpu_has_native_bf16, pick_dtype


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("robust")
    base = build_tiny_base(root)
    train, dev = write_data(root, n=6)
    return root, base, train, dev


def _long_prompt_rows(n: int, start: int = 0) -> list[dict]:
    prompt = " ".join(["the cat sat on a mat"] * 40)            # far over max_length 96 on its own
    return [{"id": f"long{start + i}", "messages": [{"role": "user", "content": prompt},
                                                    {"role": "assistant", "content": "yes."}]} for i in range(n)]


def test_prompt_filling_max_length_is_dropped_and_counted(setup) -> None:
    root, base, _, dev = setup
    rows = conversations(3, seed=5) + _long_prompt_rows(3)
    path = root / "with_long.jsonl"
    write_jsonl(path, rows)
    # batch 3, the long prompts last in the file: before, an epoch order putting them in one step divided by 0
    cfg = tiny_cfg(root, base, epochs=1, batch_size=3, save_epochs=[1], select_epochs=[1])
    finetune(cfg, path, "long", dev)
    info = json.loads((root / "models/long/run.json").read_text())
    assert info["n_dropped_no_trainable"] == 3 and info["dropped_ids"] == ["long0", "long1", "long2"]
    assert info["n_examples"] == 3 and info["total_steps"] == 1
    only_long = root / "only_long.jsonl"
    write_jsonl(only_long, _long_prompt_rows(2))
    with pytest.raises(InputError, match=r"only_long.jsonl: no example has a trainable token.*2 dropped"):
        finetune(cfg, only_long, "only-long", dev)


def test_max_length_beyond_the_model_context_is_a_clear_error(setup) -> None:
    root, base, train, dev = setup
    with pytest.raises(ConfigError, match=r"train.max_length 300 exceeds the context of .*\(256 positions"):
        finetune(tiny_cfg(root, base, max_length=300), train, "too-long", dev)
    assert not (root / "models" / "too-long").exists()


def test_pick_dtype_reads_the_cpu() -> None:
    assert pick_dtype("auto", "cpu", flags={"avx2", "fma"}) == torch.float32          # AVX2 only: bf16 is emulated
    assert pick_dtype("auto", "cpu", flags={"avx512f", "avx512_bf16"}) == torch.bfloat16
    assert pick_dtype("auto", "cpu", flags={"amx_tile", "amx_bf16"}) == torch.bfloat16
    assert pick_dtype("bf16", "cpu", flags={"avx2"}) == torch.bfloat16                  # explicit wins
    assert pick_dtype("float32", "cpu", flags={"amx_bf16"}) == torch.float32
    with pytest.raises(ConfigError, match="auto | float32 | bfloat16"):
        pick_dtype("half-ish")
    has = {"avx512_bf16", "amx_bf16"} & cpu_flags()
    assert cpu_has_native_bf16() == (bool(has) or cpu_has_native_bf16(None))
    if has:
        assert pick_dtype("auto", "cpu") == torch.bfloat16


def test_cpu_flags_parses_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse2 avx2 amx_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(info) == {"fpu", "sse2", "avx2", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_compile_rule() -> None:
    assert compile_rule("on", "cpu") and compile_rule(True, "cpu")            # YAML's bare `on` is True
    assert not compile_rule("off", "cpu") and not compile_rule(False, "cpu")
    assert not compile_rule("auto", "cpu")                                   # measured: not faster on CPU
    with pytest.raises(ConfigError, match="auto | on | off"):
        compile_rule("sometimes", "cpu")


def test_auto_dtype_run_and_float16_refused(setup) -> None:
    root, base, train, dev = setup
    finetune(tiny_cfg(root, base, dtype="auto", epochs=1, save_epochs=[1], select_epochs=[1]), train, "auto", dev)
    info = json.loads((root / "models/auto/run.json").read_text())
    assert info["compute_dtype"] == str(pick_dtype("auto", "cpu")).removeprefix("torch.")
    assert info["compiled"] is False
    with pytest.raises(ConfigError, match="float16 needs loss scaling"):
        finetune(tiny_cfg(root, base, dtype="float16"), train, "fp16", dev)


def test_resume_state_carries_every_cuda_rng(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lima.train.checkpoints import restore_rng, training_state

    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))])
    assert training_state(3, 9, optimizer)["cuda_rng"] == []             # CPU: nothing to save, nothing fails
    states = [torch.tensor([1], dtype=torch.uint8), torch.tensor([2], dtype=torch.uint8)]
    restored: list = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    state = training_state(3, 9, optimizer)
    assert state["cuda_rng"] is states and state["step"] == 3
    restore_rng(state, tmp_path)
    assert restored == [states]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="2 CUDA device.*1 visible"):
        restore_rng(state, tmp_path)


def test_dev_quality_hook_gets_the_model_in_memory(setup) -> None:
    """The hook answers with the training model (no second copy); its answers equal the saved checkpoint's,
    and training afterwards is unchanged: the final weights equal a run without the hook."""
    from lima.generate import HFGenerator, decoding_of
    from lima.judge.dev_quality import _answering

    root, base, train, dev = setup
    seen: list[dict] = []

    def hook(cfg, checkpoint_dir, dev_rows, *, model=None, tokenizer=None):
        decoding = decoding_of(cfg)
        decoding.do_sample, decoding.max_new_tokens = False, 8
        prompts = [[row["messages"][0]] for row in dev_rows]
        with _answering(model):
            in_memory = HFGenerator(checkpoint_dir, decoding, loaded=(model, tokenizer)).generate(prompts)
        from_disk = HFGenerator(checkpoint_dir, decoding).generate(prompts)
        seen.append({"training": model.training, "same": [a.token_ids for a in in_memory]
                     == [b.token_ids for b in from_disk]})
        return 1.0

    cfg = tiny_cfg(root, base)          # dropout 0.2 on: the hook must not move the RNG or the mode
    with_hook = finetune(cfg, train, "hooked", dev, dev_quality=hook)
    without = finetune(cfg, train, "plain", dev)
    assert seen == [{"training": True, "same": True}] * 2
    assert with_hook.name == "checkpoint-epoch-1"           # equal scores: the earlier epoch
    last = [load_file(str(p.parent / "checkpoint-epoch-2" / "model.safetensors")) for p in (with_hook, without)]
    a, b = last
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_lora_checkpoint_without_a_deep_copy(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    from lima.config import section
    from lima.model import ModelConfig, load_model
    from lima.train import TrainConfig, peft_methods
    from lima.train.loop import load_for_training

    root, base, train, dev = setup
    cfg = tiny_cfg(root, base, method="lora", lora_r=4, lora_alpha=8, lora_dropout=0.0, epochs=1, save_epochs=[1],
                   select_epochs=[1])
    model, _ = load_for_training(str(base), section(cfg, "model", ModelConfig), section(cfg, "train", TrainConfig),
                                 None)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or "trainable_tokens_delta" in name:
                p.add_(torch.randn_like(p) * 0.1)         # a non-zero adapter, as after training
    expected = peft_methods.merged_copy(model).state_dict()
    merged = peft_methods.merged_state_dict(model)
    assert merged.keys() == expected.keys() and all(torch.equal(merged[k], expected[k]) for k in merged)

    def no_copies(_model):
        raise AssertionError("checkpoint saving deep-copied the model")
    monkeypatch.setattr(peft_methods, "merged_copy", no_copies)
    selected = finetune(cfg, train, "lora-nocopy", dev)
    loaded, _ = load_model(selected, "float32")
    assert loaded.model.layers[0].self_attn.q_proj.weight.shape == (32, 32)


def test_qlora_export_writes_eot_into_generation_config(setup) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    from lima.model import eot_id
    from lima.train.peft_methods import export_merged

    root, base, train, dev = setup
    cfg = tiny_cfg(root, base, method="lora", lora_r=4, lora_alpha=8, epochs=1, save_epochs=[1], select_epochs=[1])
    selected = finetune(cfg, train, "for-export", dev)      # a LoRA adapter has the QLoRA adapter's layout
    out = export_merged(str(base), selected / "adapter", root / "exported", dtype=torch.float32)
    eot = eot_id(AutoTokenizer.from_pretrained(out))
    generation = GenerationConfig.from_pretrained(out)
    assert generation.eos_token_id[0] == eot and generation.pad_token_id is not None
    assert (out / "manifest.json").exists() and not (root / "exported.tmp").exists()
