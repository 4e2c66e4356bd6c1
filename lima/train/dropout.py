"""Residual dropout (the paper, after InstructGPT), which no library offers.

Dropout is applied to each decoder layer's two residual branches — the attention output and the MLP
output, just before they are added back to the residual stream — at a rate that rises linearly from 0.0
at the bottom layer to `residual_dropout` at the top: p_i = residual_dropout * i / (L - 1).
Implemented as forward hooks on `layers[i].self_attn` and `layers[i].mlp`, the layout Llama, Mistral and
Qwen share, so the model code is untouched and the hooks can be removed. `nn.functional.dropout` with
`training=module.training` makes it the identity in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def layer_rates(n_layers: int, top_rate: float) -> list[float]:
    """0.0 at the bottom layer, `top_rate` at the top, linear in between."""
    if n_layers == 1:
        return [top_rate]
    return [top_rate * i / (n_layers - 1) for i in range(n_layers - 1)] + [top_rate]   # top exactly p


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a Llama-family causal LM, also through a peft wrapper."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(base, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None or not all(hasattr(layer, "self_attn") and hasattr(layer, "mlp") for layer in layers):
        raise TypeError(f"residual dropout supports Llama-family decoders (model.model.layers[i].self_attn/.mlp); "
                        f"got {type(base).__name__}")
    return layers


def _hook(rate: float) -> Callable[..., Any]:
    def hook(module: nn.Module, args: Any, output: Any) -> Any:
        if rate == 0.0 or not module.training:
            return output
        if isinstance(output, tuple):        # attention returns (output, weights)
            return (nn.functional.dropout(output[0], rate, training=True), *output[1:])
        return nn.functional.dropout(output, rate, training=True)
    hook.rate = rate  # type: ignore[attr-defined]
    return hook


class ResidualDropout:
    """Attach with `ResidualDropout(model, 0.3)`; `.remove()` detaches; `.rates` lists the per-layer rates."""

    def __init__(self, model: nn.Module, top_rate: float):
        if not 0.0 <= top_rate < 1.0:
            raise ValueError(f"residual_dropout must be in [0, 1), got {top_rate}")
        layers = decoder_layers(model)
        self.rates = layer_rates(len(layers), top_rate)
        self.handles: list[torch.utils.hooks.RemovableHandle] = []
        for layer, rate in zip(layers, self.rates, strict=True):
            if rate > 0.0:
                self.handles += [layer.self_attn.register_forward_hook(_hook(rate)),
                                 layer.mlp.register_forward_hook(_hook(rate))]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
