"""Exact variable-length attention for packed rows, on any device, without a dense L×L mask.

A packed row holds several examples back to back, and `lima.train.data.collate` restarts the position ids
for each of them. The stock `sdpa` path turns that into a block-diagonal causal mask: it builds the 4D mask
every forward pass and then computes attention densely over the whole row, cross-example blocks included,
only to mask them out. Here each example (each run of consecutive position ids, the same rule transformers
uses to detect packing) gets its own causal `scaled_dot_product_attention` call, so the work is Σ lᵢ²
instead of L², no mask is built, and SDPA can take its `is_causal` fast path. The result is the same
attention, only computed without the blocks the mask would have zeroed.

It is registered with transformers' `AttentionInterface` under `ATTENTION_NAME` and switched on for
training by `use_attention(model, "packed_sdpa")`. No mask function is registered for that name, which is
what makes transformers skip mask creation; so a 2D padding `attention_mask` is ignored under this
implementation. Our training code never passes one (padding sits at the end of a row in its own position
run), and checkpoints are saved without the attention setting, so inference loads them with the default.
Calls that do not look like a packed training forward (a KV cache, no position ids, an explicit 4D mask)
fall through to the stock `sdpa` function.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

ATTENTION_NAME = "lima_packed_sdpa"

# Under CPU autocast the per-example attention runs in fp32: torch's CPU flash kernel is slower in bf16 than in
# fp32 at small head dims (measured, head dim 32, fwd+bwd: 8.2 vs 7.1 ms at 500 tokens, 1.0 vs 0.3 ms at 80),
# and the bf16 inputs upcast exactly, so this only removes rounding.
UPCAST_ON_CPU = True

_cache: dict[str, Any] = {"position_ids": None, "version": None, "batch": None, "segments": None}


def segments(position_ids: torch.Tensor) -> list[list[tuple[int, int]]]:
    """Per row, the [start, end) spans of consecutive position ids (a new span wherever the id does not
    grow by one) — the example boundaries of a packed row, found exactly as transformers finds them."""
    width = position_ids.shape[-1]
    breaks = torch.ones_like(position_ids, dtype=torch.bool)
    breaks[:, 1:] = position_ids[:, 1:] != position_ids[:, :-1] + 1
    rows: list[list[int]] = [[] for _ in range(position_ids.shape[0])]
    for r, c in torch.nonzero(breaks).tolist():
        rows[r].append(c)
    return [list(zip(starts, starts[1:] + [width], strict=True)) for starts in rows]


def _segments_cached(position_ids: torch.Tensor, batch: int) -> list[list[tuple[int, int]]]:
    """Every layer of one forward pass gets the same position-id tensor: find its spans once. The cache holds
    that tensor itself, so its identity cannot be reused by a new tensor while it is the cached one."""
    if not (_cache["position_ids"] is position_ids and _cache["version"] == position_ids._version
            and _cache["batch"] == batch):
        rows = position_ids.expand(batch, -1) if position_ids.shape[0] != batch else position_ids
        _cache.update(position_ids=position_ids, version=position_ids._version, batch=batch,
                      segments=segments(rows))
    return _cache["segments"]


def packed_sdpa_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                          position_ids: torch.Tensor | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """query (B, H, L, D), key/value (B, H_kv, L, D) → (B, L, H, D), like transformers' `sdpa` function."""
    batch, _, length, _ = query.shape
    if (attention_mask is not None or position_ids is None or key.shape[2] != length
            or kwargs.get("past_key_values") is not None or not getattr(module, "is_causal", True)):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      position_ids=position_ids, **kwargs)
    spans = _segments_cached(position_ids, batch)
    gqa = key.shape[1] != query.shape[1]

    upcast = UPCAST_ON_CPU and query.device.type == "cpu" and torch.is_autocast_enabled("cpu")
    dtype = torch.get_autocast_dtype("cpu") if upcast else query.dtype

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False) if upcast else contextlib.nullcontext():
            if upcast:
                q, k, v = q.float(), k.float(), v.float()
            out = torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True,
                                                                   scale=scaling, enable_gqa=gqa)
        return out.to(dtype).transpose(1, 2)

    if all(len(row) == 1 for row in spans):            # no packing in this batch: one call
        return attend(query, key, value).contiguous(), None
    rows = []
    for r, row in enumerate(spans):
        q, k, v = query[r:r + 1], key[r:r + 1], value[r:r + 1]
        rows.append(torch.cat([attend(q[:, :, s:e], k[:, :, s:e], v[:, :, s:e]) for s, e in row], dim=1))
    return torch.cat(rows, dim=0), None


AttentionInterface.register(ATTENTION_NAME, packed_sdpa_attention)


def use_attention(model, attention: str) -> None:
    """Switch a (peft-wrapped or plain) HF model to `attention`: "packed_sdpa" or a transformers name."""
    name = ATTENTION_NAME if attention == "packed_sdpa" else attention
    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    target.set_attn_implementation(name)
