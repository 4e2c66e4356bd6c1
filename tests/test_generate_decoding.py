"""The paper's decoding: CTRL repetition penalty on generated tokens only, EOT stopping, batching."""

from __future__ import annotations

import pytest
import torch
from tiny_lima_model import tiny_model_dir  # noqa: F401  (session fixture)
from transformers import RepetitionPenaltyLogitsProcessor

from lima.generate import DecodingConfig, GeneratedTokensRepetitionPenalty, load_generator
from lima.model import eot_id


def test_penalty_touches_generated_tokens_only() -> None:
    input_ids = torch.tensor([[5, 6, 7, 8, 9, 8]])          # prompt = first 4 tokens; generated = 9, 8
    scores = torch.zeros(1, 12)
    scores[0, 5], scores[0, 8], scores[0, 9], scores[0, 3] = 2.0, 2.4, -1.0, 1.5
    out = GeneratedTokensRepetitionPenalty(1.2, prompt_length=4)(input_ids, scores.clone())
    expected = scores.clone()
    expected[0, 8] = 2.4 / 1.2              # generated, positive logit: divided
    expected[0, 9] = -1.0 * 1.2             # generated, negative logit: multiplied
    assert torch.equal(out, expected)       # prompt tokens 5, 6, 7 and the unseen token 3 are untouched
    assert out[0, 5].item() == 2.0
    hf = RepetitionPenaltyLogitsProcessor(1.2)(input_ids, scores.clone())
    assert hf[0, 5].item() == pytest.approx(2.0 / 1.2)     # HF's built-in penalises the prompt: why we have ours


def test_penalty_without_generated_tokens_is_identity() -> None:
    scores = torch.randn(2, 10)
    out = GeneratedTokensRepetitionPenalty(1.2, prompt_length=3)(torch.tensor([[1, 2, 3], [0, 4, 5]]), scores)
    assert torch.equal(out, scores)


def _manual_greedy(model, ids: list[int], steps: int, penalty: float, stop: list[int]) -> list[int]:
    """Reference: one unpadded sequence, full forward each step, penalty on generated tokens only."""
    seq, out = list(ids), []
    for _ in range(steps):
        with torch.no_grad():
            logits = model(torch.tensor([seq])).logits[0, -1].clone()
        for tok in set(out):
            logits[tok] = logits[tok] / penalty if logits[tok] > 0 else logits[tok] * penalty
        nxt = int(logits.argmax())
        if nxt in stop:
            break
        out.append(nxt)
        seq.append(nxt)
    return out


def test_batched_greedy_matches_unbatched_reference(tiny_model_dir) -> None:  # noqa: F811
    gen = load_generator(tiny_model_dir, DecodingConfig(max_new_tokens=8, batch_size=3, do_sample=False,
                                                        repetition_penalty=1.2))
    convs = [[{"role": "user", "content": text}] for text in
             ["How do I boil an egg?", "Hi", "Explain recursion in one sentence please."]]
    results = gen.generate(convs)
    for conv, res in zip(convs, results, strict=True):
        ids = gen.tokenizer(gen.render(conv), add_special_tokens=False)["input_ids"]
        assert res.token_ids == _manual_greedy(gen.model, ids, 8, 1.2, gen.stop_ids)
        assert res.prompt_tokens == len(ids)


def _force_eot(gen, at_step: dict[int, int | None]):
    """Forward hook on lm_head: row r emits EOT at generated position at_step[r] (None: EOT forbidden)."""
    eot = eot_id(gen.tokenizer)
    state = {"calls": 0}

    def hook(_module, _inputs, output):
        step = state["calls"]
        state["calls"] += 1
        for row, when in at_step.items():
            output[row, -1, eot] = 1e4 if when == step else -1e4
        return output

    return gen.model.lm_head.register_forward_hook(hook)


def test_stops_at_eot_and_reports_length(tiny_model_dir) -> None:  # noqa: F811
    gen = load_generator(tiny_model_dir, DecodingConfig(max_new_tokens=6, batch_size=2, seed=3))
    handle = _force_eot(gen, {0: 3, 1: None})
    try:
        a, b = gen.generate([[{"role": "user", "content": "Hello there"}], [{"role": "user", "content": "Hello there"}]])
    finally:
        handle.remove()
    assert (a.stop_reason, a.n_tokens) == ("eot", 3)
    assert (b.stop_reason, b.n_tokens) == ("length", 6)
    assert a.text == gen.tokenizer.decode(a.token_ids, skip_special_tokens=True).strip()
    assert "<|eot|>" not in a.text


def test_sampling_is_seeded(tiny_model_dir) -> None:  # noqa: F811
    gen = load_generator(tiny_model_dir, DecodingConfig(max_new_tokens=6, batch_size=4))
    conv = [[{"role": "user", "content": "Write a poem."}]] * 2
    first, again, other = gen.generate(conv, seed=7), gen.generate(conv, seed=7), gen.generate(conv, seed=8)
    assert [r.token_ids for r in first] == [r.token_ids for r in again]
    assert [r.token_ids for r in first] != [r.token_ids for r in other]


def test_vllm_backend_missing_is_a_clear_error(tiny_model_dir) -> None:  # noqa: F811
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="vllm is not installed"):
            load_generator(tiny_model_dir, DecodingConfig(backend="vllm"))
    else:
        pytest.skip("vllm is installed here")
