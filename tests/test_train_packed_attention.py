"""Packed (per-example) attention is the same attention as the dense block-diagonal mask and as unpacked forwards."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from lima.train.checkpoints import token_loss_sum
from lima.train.data import IGNORE, Example, collate, plan_step
from lima.train.packed_attention import ATTENTION_NAME, segments, use_attention

LENGTHS = [37, 5, 50, 1, 23, 64, 12]          # incl. a 1-token example; 64 fills a row of max_length 64 alone


def tiny_llama(kv_heads: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=64,
                         attn_implementation="sdpa")
    model = LlamaForCausalLM(config).eval()
    model.config.use_cache = False
    return model


def examples() -> list[Example]:
    g = torch.Generator().manual_seed(1)
    out = []
    for n in LENGTHS:
        ids = torch.randint(3, 97, (n,), generator=g).tolist()
        out.append(Example(ids, ids[1:] + [IGNORE]))
    return out


def per_example_logits(model, batches: list[dict[str, torch.Tensor]], exs: list[Example]) -> list[torch.Tensor]:
    """Logits of each example's tokens, cut out of the (packed) batches wherever collate laid them out."""
    found = {}
    for batch in batches:
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        for r in range(batch["input_ids"].shape[0]):
            for s, e in segments(batch["position_ids"][r:r + 1])[0]:
                found[tuple(batch["input_ids"][r, s:e].tolist())] = logits[r, s:e]
    return [found[tuple(ex.input_ids)] for ex in exs]


def test_segments_are_the_position_runs() -> None:
    position_ids = torch.tensor([[0, 1, 2, 0, 1, 0, 0, 1], [0, 1, 2, 3, 4, 5, 6, 7]])
    assert segments(position_ids) == [[(0, 3), (3, 5), (5, 6), (6, 8)], [(0, 8)]]


@pytest.mark.parametrize("kv_heads", [4, 2, 1])           # multi-head, grouped-query, multi-query
def test_packed_equals_dense_mask_and_unpacked(kv_heads: int) -> None:
    model, exs = tiny_llama(kv_heads), examples()
    with torch.no_grad():
        alone = [model(input_ids=torch.tensor([ex.input_ids])).logits[0] for ex in exs]
        packed = plan_step(exs, True, 3, 64, 0)                     # rows of ≤ 64 tokens, padded, 3 per batch
        flat = plan_step(exs, True, 2, 64, 0, flat=True)            # one padding-free row per micro-batch
        assert any(len(s) == 1 for b in packed for s in segments(b["position_ids"]))   # a single-example row
        assert all(b["input_ids"].shape[0] == 1 and int(b["n_real"]) == b["input_ids"].numel() for b in flat)
        dense = per_example_logits(model, packed, exs)
        use_attention(model, "packed_sdpa")
        assert model.config._attn_implementation == ATTENTION_NAME
        ours = per_example_logits(model, packed, exs)
        ours_flat = per_example_logits(model, flat, exs)
    for i, ex in enumerate(exs):
        for other in (dense[i], ours[i], ours_flat[i]):
            assert other.shape == (len(ex.input_ids), 97)
            torch.testing.assert_close(other, alone[i], rtol=1e-5, atol=1e-5)


def test_packed_loss_and_gradients_equal_dense() -> None:
    exs = examples()
    results = []
    for attention, flat in (("sdpa", False), ("packed_sdpa", False), ("packed_sdpa", True)):
        model = tiny_llama(2).train()
        use_attention(model, attention)
        loss = sum(token_loss_sum(model, b) for b in plan_step(exs, True, 2, 64, 0, flat=flat))
        loss.backward()
        results.append((loss.detach(), {k: p.grad for k, p in model.named_parameters()}))
    (loss0, grads0), *others = results
    for loss, grads in others:
        torch.testing.assert_close(loss, loss0, rtol=1e-5, atol=1e-5)
        for k, g in grads.items():
            torch.testing.assert_close(g, grads0[k], rtol=1e-4, atol=1e-5)


def test_unpacked_rows_and_saved_config(tmp_path) -> None:
    """One example per row with end padding is exact too, and checkpoints do not carry the setting."""
    model, exs = tiny_llama(2), examples()
    batch = collate(exs, [[i] for i in range(len(exs))], 0)
    with torch.no_grad():
        dense = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        use_attention(model, "packed_sdpa")
        ours = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
    for r, ex in enumerate(exs):
        torch.testing.assert_close(ours[r, :len(ex.input_ids)], dense[r, :len(ex.input_ids)], rtol=1e-5, atol=1e-5)
    model.save_pretrained(tmp_path)
    assert ATTENTION_NAME not in (tmp_path / "config.json").read_text()


def test_bf16_autocast_matches_dense_within_bf16_rounding() -> None:
    """Under CPU autocast the per-example attention runs in fp32 (faster there); the loss stays the bf16 one."""
    model, exs = tiny_llama(2), examples()
    batches = plan_step(exs, True, 2, 64, 0)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        dense = sum(float(token_loss_sum(model, b)) for b in batches)
        use_attention(model, "packed_sdpa")
        ours = sum(float(token_loss_sum(model, b)) for b in plan_step(exs, True, 2, 64, 0, flat=True))
    assert abs(ours - dense) <= 1e-2 * abs(dense)
