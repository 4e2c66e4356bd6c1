"""benchmarks/gpu.py, parts 2 and 3: LoRA and QLoRA (NF4) on 7B-architecture models, and whether 65B QLoRA fits.

The models are random-init on the device itself (bf16, no host copy); QLoRA quantises them layer by layer —
each decoder layer is materialised in bf16, its linear layers replaced by bitsandbytes NF4 `Linear4bit`
(double quantisation, bf16 compute: `lima.train.peft_methods.quantization_config`'s setting), then the next —
so a 65B model never exists in bf16 at once. Adapters come from `lima.train.peft_methods.apply_lora` (the
trainer's own: r 16, alpha 32, all seven projections, EOT rows trainable; k-bit preparation and gradient
checkpointing for QLoRA), the step is the trainer's loss (`token_loss_sum`) on its packed rows, AdamW.
"""

from __future__ import annotations

from typing import Any

import torch
from gpu_common import Arch, arch_dict, free, measured, random_model, timed_steps

LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _quantise_layer(layer: torch.nn.Module) -> None:
    """Replace the layer's projections by NF4 Linear4bit in place (quantised when moved to the GPU)."""
    import bitsandbytes as bnb

    for parent in (layer.self_attn, layer.mlp):
        for name in LINEARS:
            lin = getattr(parent, name, None)
            if lin is None:
                continue
            q = bnb.nn.Linear4bit(lin.in_features, lin.out_features, bias=lin.bias is not None,
                                  compute_dtype=torch.bfloat16, compress_statistics=True, quant_type="nf4",
                                  device="meta")
            q.weight = bnb.nn.Params4bit(lin.weight.data.to(torch.bfloat16), requires_grad=False,
                                         compress_statistics=True, quant_type="nf4")
            q = q.to(lin.weight.device)
            setattr(parent, name, q)
            del lin


def quantised_model(arch: Arch, max_position: int, device: str):
    """A random-init Llama in NF4, built layer by layer on `device` (peak: the 4-bit model + one bf16 layer)."""
    from transformers import LlamaForCausalLM

    config = arch.llama_config(max_position)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    torch.manual_seed(0)
    std = config.initializer_range
    for module in [model.model.embed_tokens, model.model.norm, model.lm_head]:
        module.to_empty(device=device)
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config, device=device)   # buffers, recomputed
    for layer in model.model.layers:
        layer.to_empty(device=device)
        _init(layer, std)
        layer.to(torch.bfloat16)
        _quantise_layer(layer)
        free()
    _init(model.model.embed_tokens, std)
    _init(model.lm_head, std)
    torch.nn.init.ones_(model.model.norm.weight)
    model.model.embed_tokens.to(torch.bfloat16)
    model.lm_head.to(torch.bfloat16)
    model.model.norm.to(torch.bfloat16)
    model.config.torch_dtype = torch.bfloat16
    model.is_loaded_in_4bit = True                   # what from_pretrained(quantization_config=...) marks
    model.quantization_method = "bitsandbytes"
    return model


def _init(module: torch.nn.Module, std: float) -> None:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.fill_(1.0)
            else:
                p.normal_(0.0, std)


def lora_steps(ctx: Any, model, quantized: bool) -> dict[str, Any]:
    """Adapters + `warmup` untimed and `steps` timed optimiser steps on the trainer's packed rows."""
    from lima.train import TrainConfig
    from lima.train.checkpoints import token_loss_sum
    from lima.train.data import drop_untrainable, encode_all, plan_step, step_token_count
    from lima.train.dropout import ResidualDropout
    from lima.train.packed_attention import use_attention
    from lima.train.peft_methods import apply_lora

    tok = ctx.tokenizer
    eot = tok.convert_tokens_to_ids("<|eot|>")
    use_attention(model, "packed_sdpa")
    model.config.use_cache = False
    tcfg = TrainConfig(method="qlora" if quantized else "lora")
    model = apply_lora(model, tcfg, eot, quantized=quantized)
    ResidualDropout(model, ctx.dropout)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.0, foreach=True)
    examples, _ = drop_untrainable(encode_all(tok, ctx.rows, ctx.max_length, "assistant"), ctx.rows)
    amp = torch.autocast(ctx.device, dtype=torch.bfloat16, enabled=ctx.dtype == "bfloat16")

    def step(i: int) -> int:
        k = (i * ctx.lora_batch) % max(1, len(examples) - ctx.lora_batch)
        batches = plan_step(examples[k:k + ctx.lora_batch], True, 1, ctx.max_length, tok.pad_token_id, flat=True)
        n_trainable = step_token_count(batches)
        for b in batches:
            b = {key: value.to(ctx.device) for key, value in b.items()}
            with amp:
                loss = token_loss_sum(model, b)
            (loss / n_trainable).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return sum(int(b["n_real"]) for b in batches)

    out = timed_steps(step, ctx.warmup, ctx.steps)
    out["trainable_params"] = sum(p.numel() for p in params)
    return out


def lora(ctx: Any) -> dict[str, Any]:
    arch = ctx.sizes["7b"]
    record: dict[str, Any] = {"what": f"LoRA ({ctx.dtype} base, r 16, all projections)", "arch": arch_dict(arch),
                              "settings": _settings(ctx)}
    with measured(record):
        model = random_model(arch, ctx.max_length, ctx.device, getattr(torch, ctx.dtype))
        record.update(lora_steps(ctx, model, quantized=False))
    return record


def qlora_unavailable() -> str | None:
    from lima.train.peft_methods import QLoRAUnavailable, check_qlora

    try:
        check_qlora()
    except QLoRAUnavailable as exc:
        return str(exc)
    return None


def qlora(ctx: Any, size: str) -> dict[str, Any]:
    arch = ctx.sizes[size]
    record: dict[str, Any] = {"what": f"QLoRA (NF4 + double quantisation, bf16 compute, r 16) on {arch.name}",
                              "arch": arch_dict(arch), "settings": _settings(ctx)}
    reason = qlora_unavailable()
    if reason:
        return {**record, "status": "skipped", "reason": reason}
    with measured(record):
        model = quantised_model(arch, ctx.max_length, ctx.device)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            record["model_memory_gib"] = round(torch.cuda.memory_allocated() / 2**30, 3)
        record.update(lora_steps(ctx, model, quantized=True))
    if record.get("status") == "measured" and record.get("peak_allocated_gib") is not None:
        record["fits_one_h200"] = record["peak_allocated_gib"] < ctx.device_gib
    return record


def estimate_65b(ctx: Any, measured_7b: dict[str, Any]) -> dict[str, Any]:
    """65B QLoRA peak memory extrapolated from the measured 7B: the 4-bit model scales with parameters, the
    rest (checkpointed activations, adapters and their AdamW state, workspace) with layers × hidden size.
    An estimate, labelled so; the measured 65B record (if any) is the answer."""
    if measured_7b.get("status") != "measured" or measured_7b.get("peak_allocated_gib") is None:
        return {"status": "skipped", "reason": f"needs a measured 7B QLoRA ({measured_7b.get('status')})"}
    a7, a65 = ctx.sizes["7b"], ctx.sizes["65b"]
    static7 = measured_7b["model_memory_gib"]
    rest7 = measured_7b["peak_allocated_gib"] - static7
    static65 = static7 * a65.params() / a7.params()
    rest65 = rest7 * (a65.num_hidden_layers * a65.hidden_size) / (a7.num_hidden_layers * a7.hidden_size)
    peak = static65 + rest65
    return {"status": "estimate", "what": "65B QLoRA peak memory, extrapolated from the 7B measurement",
            "model_memory_gib": round(static65, 2), "rest_gib": round(rest65, 2), "peak_allocated_gib": round(peak, 2),
            "device_gib": ctx.device_gib, "fits_one_h200": peak < ctx.device_gib,
            "rule": "4-bit weights × params(65B)/params(7B); activations+adapters+workspace × (L·h)(65B)/(L·h)(7B)"}


def _settings(ctx: Any) -> dict[str, Any]:
    return {"max_length": ctx.max_length, "examples_per_step": ctx.lora_batch, "micro_batch": "1 flat row",
            "residual_dropout": ctx.dropout, "warmup_steps": ctx.warmup, "timed_steps": ctx.steps,
            "device": ctx.device, "lora": "r 16, alpha 32, dropout 0.05, q/k/v/o/gate/up/down + EOT rows"}
