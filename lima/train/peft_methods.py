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
import shutil
from pathlib import Path
from typing import Any

import torch

from lima.io import write_manifest


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
    """A plain transformers model with the adapters merged in; the training model is left untouched.

    Deep-copies the whole model (weights, adapters, optimiser-facing parameters): fine for a test, too much
    at checkpoint time for a large base; `merged_state_dict` is what checkpoints use.
    """
    return copy.deepcopy(model).merge_and_unload()


@torch.no_grad()
def merged_state_dict(model) -> dict[str, torch.Tensor]:
    """The state dict `merge_and_unload()` would give, without copying the model or touching its weights.

    Tensors of modules without adapters are the model's own (shared, not copied); only each adapted matrix
    gets one new tensor, W + ΔW (LoRA), or W with the trained token rows written in (the EOT rows of the
    embedding and output layers), computed out of place as peft's merge computes it in place. Merging in
    place and unmerging again would round the training weights (w + d - d ≠ w in floating point) and break
    exact resume.
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    base = model.get_base_model()
    state = base.state_dict()
    tuners = [(name, module) for name, module in base.named_modules() if isinstance(module, BaseTunerLayer)]
    for name, module in tuners:
        prefix = name.removesuffix(".token_adapter")   # trainable tokens sit one level below their wrapper
        for key in [k for k in state if k.startswith(prefix + ".")]:
            del state[key]
        layer = module.get_base_layer()
        if hasattr(module, "get_merged_weights"):       # TrainableTokensLayer
            weight = module.get_merged_weights(module.active_adapters)
        else:                                           # LoRA layer
            weight = layer.weight.detach()
            for adapter in module.active_adapters:
                weight = weight + module.get_delta_weight(adapter)
        state[f"{prefix}.weight"] = weight.detach()
        if getattr(layer, "bias", None) is not None:
            state[f"{prefix}.bias"] = layer.bias.detach()
    return state


def export_merged(base: str, adapter_dir: str | Path, out_dir: str | Path,
                  dtype: torch.dtype = torch.bfloat16) -> Path:
    """Merge-on-export for QLoRA: base in `dtype` (not 4-bit) + adapter → a full HF model directory."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lima.model import eot_id, set_eot_generation_config

    adapter_dir = Path(adapter_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir.parent))
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    set_eot_generation_config(merged, tokenizer, eot_id(tokenizer))   # the base's knows nothing of EOT
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    write_manifest(out_dir, inputs=[adapter_dir], extra={"kind": "QLoRA merge on export", "base": base,
                                                          "dtype": str(dtype).removeprefix("torch.")})
    return out_dir
