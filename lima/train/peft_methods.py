"""LoRA and QLoRA through `peft` (+ `bitsandbytes` 4-bit NF4 for QLoRA).

The EOT token is new, so its embedding and output rows must learn even when the rest of the model is
frozen: the adapters train those two rows too (`trainable_token_indices`), nothing else of the vocabulary.
Checkpoints of a LoRA run hold the merged weights (loadable with AutoModelForCausalLM) plus the adapter in
`adapter/` for resuming. A QLoRA run's base lives in 4 bits, which cannot be merged into exactly, so its
checkpoints hold the adapter and the merge happens on export, into a bf16 copy of the base
(`export_merged`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch


class QLoRAUnavailable(RuntimeError):
    """QLoRA asked for where it cannot run (no CUDA or no bitsandbytes): never fall back silently."""


def check_qlora() -> None:
    problems = []
    if not torch.cuda.is_available():
        problems.append("no CUDA device is visible (bitsandbytes 4-bit kernels need an NVIDIA GPU)")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        problems.append("bitsandbytes is not installed (pip install -e '.[gpu]')")
    if problems:
        raise QLoRAUnavailable("train.method=qlora cannot run here: " + "; ".join(problems)
                               + ". Use train.method=lora (or full) on this machine.")


def quantization_config(compute_dtype: torch.dtype = torch.bfloat16):
    """4-bit NF4 with double quantisation, bf16 compute: the QLoRA paper's setting."""
    check_qlora()
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)


def lora_config(tcfg: Any, eot_id: int):
    from peft import LoraConfig

    return LoraConfig(r=tcfg.lora_r, lora_alpha=tcfg.lora_alpha, lora_dropout=tcfg.lora_dropout,
                      target_modules=list(tcfg.lora_target_modules), task_type="CAUSAL_LM", bias="none",
                      trainable_token_indices={"embed_tokens": [eot_id], "lm_head": [eot_id]})


def apply_lora(model, tcfg: Any, eot_id: int, quantized: bool = False):
    """Wrap `model` with LoRA adapters (after k-bit preparation for QLoRA); only adapters + EOT rows train."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    return get_peft_model(model, lora_config(tcfg, eot_id))


def load_adapter_weights(model, adapter_dir: str | Path) -> None:
    """Restore adapter (and EOT-row) weights saved by `save_pretrained` into a peft model (resume)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, state)
    if getattr(result, "unexpected_keys", None):
        raise RuntimeError(f"{adapter_dir}: adapter keys do not fit the model: {result.unexpected_keys[:5]}")


def merged_copy(model):
    """A plain transformers model with the adapters merged in; the training model is left untouched."""
    return copy.deepcopy(model).merge_and_unload()


def export_merged(base: str, adapter_dir: str | Path, out_dir: str | Path,
                  dtype: torch.dtype = torch.bfloat16) -> Path:
    """Merge-on-export for QLoRA: base in `dtype` (not 4-bit) + adapter → a full HF model directory."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir = Path(adapter_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir.parent))
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return Path(out_dir)
