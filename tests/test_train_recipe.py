"""The LIMA recipe's pieces, exactly: EOT template, loss masking, accumulation, packing, dropout, lr, selection."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from train_support import build_tiny_base, conversations, tiny_cfg

from lima.model import eot_id, load_model
from lima.train import TrainConfig
from lima.train.checkpoints import select_checkpoint, token_loss_sum
from lima.train.data import (
    IGNORE,
    collate,
    encode_all,
    encode_conversation,
    pack,
    plan_step,
    step_token_count,
)
from lima.train.dropout import ResidualDropout, layer_rates
from lima.train.loop import lr_at


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """The tiny base with the EOT token added (as `lima train` saves it), in float32."""
    from lima.model import add_eot_token

    root = tmp_path_factory.mktemp("tiny")
    model, tokenizer = load_model(build_tiny_base(root), "float32")
    add_eot_token(tokenizer, model)
    return model, tokenizer


MULTI = [{"role": "user", "content": "how do i cook rice?"}, {"role": "assistant", "content": "boil water."},
         {"role": "user", "content": "and then?"}, {"role": "assistant", "content": "add rice and wait."}]


def test_eot_template_round_trip(tiny) -> None:
    _, tok = tiny
    example = encode_conversation(tok, MULTI, 1000)
    assert example.input_ids == tok.apply_chat_template(MULTI, tokenize=True)["input_ids"]
    # what generation feeds the model for the first turn is a prefix of what training saw
    prompt = tok.apply_chat_template(MULTI[:1], tokenize=True, add_generation_prompt=True)["input_ids"]
    assert example.input_ids[: len(prompt)] == prompt and prompt[-1] == eot_id(tok)
    assert tok.decode(example.input_ids) == "<s>how do i cook rice?<|eot|>boil water.<|eot|>and then?<|eot|>" \
                                           "add rice and wait.<|eot|>"


def test_loss_masking_exact_positions(tiny) -> None:
    _, tok = tiny
    eot = eot_id(tok)
    pieces = [tok(m["content"], add_special_tokens=False)["input_ids"] + [eot] for m in MULTI]
    ids = [tok.bos_token_id] + [t for p in pieces for t in p]
    starts = [1]
    for p in pieces:
        starts.append(starts[-1] + len(p))
    expected = [IGNORE] * len(ids)     # expected[t] = target at position t = ids[t + 1] on assistant spans
    for turn in (1, 3):
        for pos in range(starts[turn], starts[turn + 1]):
            expected[pos - 1] = ids[pos]
    example = encode_conversation(tok, MULTI, 1000)
    assert example.input_ids == ids
    assert example.targets == expected
    assert example.n_trainable == len(pieces[1]) + len(pieces[3])
    all_tokens = encode_conversation(tok, MULTI, 1000, loss_on="all")
    assert all_tokens.targets == ids[1:] + [IGNORE]
    trimmed = encode_conversation(tok, MULTI, 7)       # the end goes, the prompt stays
    assert trimmed.trimmed and trimmed.input_ids == ids[:7] and trimmed.targets[-1] == IGNORE


def _grads(model, batches, n_trainable, per_microbatch_mean: bool = False):
    model.zero_grad(set_to_none=True)
    total = 0.0
    for batch in batches:
        loss = token_loss_sum(model, batch)
        n = int((batch["targets"] != IGNORE).sum())
        (loss / n / len(batches) if per_microbatch_mean else loss / n_trainable).backward()
        total += float(loss.detach())
    return total / n_trainable, [p.grad.clone() for p in model.parameters()]


def test_accumulation_equivalence(tiny) -> None:
    model, tok = tiny
    model.eval()    # no dropout: the two layouts must compute the same function
    examples = encode_all(tok, conversations(8, seed=3), 96, "assistant")
    one = plan_step(examples, False, 8, 96, tok.pad_token_id)
    four = plan_step(examples, False, 2, 96, tok.pad_token_id)
    assert len(one) == 1 and len(four) == 4
    n = step_token_count(one)
    assert n == step_token_count(four)
    loss_a, grads_a = _grads(model, one, n)
    loss_b, grads_b = _grads(model, four, n)
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(grads_a, grads_b, strict=True))
    # the 2024 accumulation bug (mean of micro-batch means) gives different gradients: the test can fail
    _, grads_bug = _grads(model, four, n, per_microbatch_mean=True)
    assert not all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(grads_a, grads_bug, strict=True))


def test_packing_equivalence(tiny) -> None:
    model, tok = tiny
    model.eval()
    examples = encode_all(tok, conversations(5, seed=4), 96, "all")
    packed = collate(examples, [list(range(5))], tok.pad_token_id)
    with torch.no_grad():
        # use_cache=False matters: with a cache transformers does not read position ids as packing
        logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"],
                       use_cache=False).logits[0]
        at = 0
        for ex in examples:
            alone = model(input_ids=torch.tensor([ex.input_ids])).logits[0]
            assert torch.allclose(logits[at: at + len(ex.input_ids)], alone, atol=1e-5)
            at += len(ex.input_ids)
        unpacked = sum(float(token_loss_sum(model, collate(examples, [[i]], tok.pad_token_id)))
                       for i in range(5))
        assert float(token_loss_sum(model, packed)) == pytest.approx(unpacked, rel=1e-5)
    assert pack([50, 40, 30, 20, 10], 60) == [[0, 4], [1, 3], [2]]      # first-fit decreasing


def test_residual_dropout_schedule(tiny) -> None:
    model, tok = tiny
    assert layer_rates(4, 0.3) == [0.0, 0.3 / 3, 0.6 / 3, 0.3]
    assert layer_rates(80, 0.3)[0] == 0.0 and layer_rates(80, 0.3)[-1] == 0.3   # 65B: 80 layers
    dropout = ResidualDropout(model, 0.2)
    try:
        assert dropout.rates == [0.0, 0.2 / 3, 0.4 / 3, 0.2]
        assert dropout.rates == pytest.approx([0.0, 0.2 / 3, 0.4 / 3, 0.2], abs=1e-15)
        layers = model.model.layers
        for layer, rate in zip(layers, dropout.rates, strict=True):
            for module in (layer.self_attn, layer.mlp):
                hooks = [h for h in module._forward_hooks.values() if hasattr(h, "rate")]
                assert [h.rate for h in hooks] == ([rate] if rate else [])
        x = torch.tensor([encode_conversation(tok, MULTI, 96).input_ids])
        model.eval()
        with torch.no_grad():
            eval_logits = model(input_ids=x).logits
        # top layer MLP branch: about 20% of its outputs dropped, the rest scaled by 1/(1-p)
        seen = {}
        handle = layers[-1].mlp.register_forward_hook(lambda m, a, o: seen.setdefault("out", o))
        model.train()
        torch.manual_seed(0)
        with torch.no_grad():
            train_logits = model(input_ids=x).logits
        handle.remove()
    finally:
        dropout.remove()
    assert not torch.equal(train_logits, eval_logits)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids=x).logits, eval_logits)   # eval mode: identity (and hooks removed)
    assert all(not [h for h in m._forward_hooks.values() if hasattr(h, "rate")]
               for layer in model.model.layers for m in (layer.self_attn, layer.mlp))
    assert "out" in seen


def test_lr_schedule_endpoints() -> None:
    tcfg = TrainConfig(learning_rate=1e-5, final_learning_rate=1e-6)
    assert lr_at(0, 470, tcfg) == 1e-5
    assert lr_at(469, 470, tcfg) == 1e-6
    assert lr_at(1, 3, tcfg) == pytest.approx(5.5e-6)
    assert all(lr_at(s, 470, tcfg) > lr_at(s + 1, 470, tcfg) for s in range(469))


def test_selection_rule() -> None:
    recs = [{"epoch": e, "path": f"p{e}", "dev_quality": q} for e, q in [(4, 9.0), (5, 1.0), (7, 3.0), (10, 3.0),
                                                                        (12, 8.0)]]
    assert select_checkpoint(recs, "best_dev_quality", [5, 10]) == {"path": "p7", "epoch": 7,
                                                                   "rule": "best_dev_quality in epochs 5-10"}
    plain = [{**r, "dev_quality": None} for r in recs]
    assert select_checkpoint(plain, "best_dev_quality", [5, 10])["epoch"] == 10
    assert select_checkpoint(recs, "last", [5, 10])["epoch"] == 12
    assert select_checkpoint(recs, "epoch:5", [5, 10])["path"] == "p5"
    with pytest.raises(ValueError, match="epoch:6"):
        select_checkpoint(recs, "epoch:6", [5, 10])


def test_finetune_writes_loadable_checkpoints(tmp_path: Path) -> None:
    from train_support import write_data
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lima.io import read_jsonl
    from lima.model import eot_token_of
    from lima.train import finetune

    base = build_tiny_base(tmp_path)
    train, dev = write_data(tmp_path, n=10, multi_turn=True)
    cfg = tiny_cfg(tmp_path, base, learning_rate=1e-5, final_learning_rate=1e-6, tensorboard=True)
    selected = finetune(cfg, train, "lima", dev)
    run = tmp_path / "models" / "lima"
    assert selected == run / "checkpoint-epoch-2"
    for epoch in (1, 2):
        path = run / f"checkpoint-epoch-{epoch}"
        model = AutoModelForCausalLM.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        assert eot_token_of(tokenizer) == "<|eot|>"
        assert model.generation_config.eos_token_id[0] == eot_id(tokenizer)
    steps = [r for r in read_jsonl(run / "metrics.jsonl") if "kind" not in r]
    assert [r["step"] for r in steps] == list(range(1, 7))
    assert steps[0]["lr"] == 1e-5 and steps[-1]["lr"] == 1e-6
    records = json.loads((run / "checkpoints.json").read_text())
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(math.isfinite(r["dev_perplexity"]) and r["dev_quality"] is None for r in records)
    assert any((run / "tb").iterdir())
