"""The context guard under the paper's own settings, and the vLLM backend's prompts (a fake vllm module)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from tiny_lima_model import tiny_model_dir  # noqa: F401  (session fixture)

from lima.generate import DecodingConfig, generate_responses, load_generator
from lima.generate.context import fit_context
from lima.io import read_jsonl
from lima.model import eot_id

CONTEXT = 256                                           # the tiny model's max_position_embeddings
LONG = "How do I boil an egg? " * 60                    # far more than the context in tokens


def test_fit_context_rule_by_hand() -> None:
    ids = list(range(10))
    # context 8, 8 new tokens (the paper's max_new_tokens == context): reserve min(8, 4) = 4, keep 4 tokens:
    # the first 3 and the 1 tail token (the template's EOT)
    fitted = fit_context(ids, 8, 8, tail=1)
    assert (fitted.ids, fitted.dropped, fitted.max_new_tokens) == ([0, 1, 2, 9], 6, 4)
    # a short prompt is kept whole and gets what is left of the context
    assert fit_context([0, 1], 8, 8, tail=1) == type(fitted)([0, 1], 0, 6)
    # few new tokens: the prompt may use the rest of the context
    assert fit_context(ids, 2, 8, tail=1).ids == [0, 1, 2, 3, 4, 9]
    # the tail never takes more than half of what is kept; no context known: no guard
    assert fit_context(ids, 8, 8, tail=9).ids == [0, 1, 8, 9]
    assert fit_context(ids, 8, None).ids == ids


def test_guard_holds_when_max_new_tokens_equals_the_context(tiny_model_dir) -> None:  # noqa: F811
    """Issue 11: max_new_tokens == context used to switch the guard off (prompt + answer > context)."""
    gen = load_generator(tiny_model_dir, DecodingConfig(max_new_tokens=CONTEXT, batch_size=2, do_sample=False))
    assert gen.context == CONTEXT
    convs = [[{"role": "user", "content": LONG}], [{"role": "user", "content": "Hi"}]]
    long, short = gen.generate(convs)
    full = gen.tokenizer(gen.render(convs[0]), add_special_tokens=False)["input_ids"]
    assert len(full) > CONTEXT
    assert long.prompt_tokens == CONTEXT // 2 and long.prompt_tokens_dropped == len(full) - CONTEXT // 2
    assert long.max_new_tokens == CONTEXT // 2
    assert long.prompt_tokens + long.n_tokens <= CONTEXT
    assert short.prompt_tokens_dropped == 0 and short.max_new_tokens == CONTEXT - short.prompt_tokens
    assert short.prompt_tokens + short.n_tokens <= CONTEXT


def test_trimmed_prompt_keeps_its_beginning_and_the_eot(tiny_model_dir) -> None:  # noqa: F811
    """Training (lima.train.data) keeps an example's beginning; so does the guard, plus the closing EOT."""
    gen = load_generator(tiny_model_dir, DecodingConfig(max_new_tokens=CONTEXT, do_sample=False))
    conv = [{"role": "user", "content": LONG}]
    full = gen.tokenizer(gen.render(conv), add_special_tokens=False)["input_ids"]
    seen: dict[str, Any] = {}
    original = gen._generate_batch

    def spy(rows: list[list[int]], **kw: Any) -> Any:
        seen["rows"] = rows
        return original(rows, **kw)

    gen._generate_batch = spy                               # type: ignore[method-assign]
    gen.generate([conv])
    kept = seen["rows"][0]
    assert kept[:-1] == full[:CONTEXT // 2 - 1] and kept[-1] == eot_id(gen.tokenizer) == full[-1]


def test_response_rows_record_the_trim(tiny_model_dir, tmp_path: Path) -> None:  # noqa: F811
    cfg = {"profile": "t", "paths": {"results": str(tmp_path)},
           "generate": {"max_new_tokens": 4, "batch_size": 2, "do_sample": False}}
    prompts = [{"id": "long", "messages": [{"role": "user", "content": "word " * 400}]},
               {"id": "short", "messages": [{"role": "user", "content": "Hi"}]}]
    out = generate_responses(cfg, "lima", tiny_model_dir, prompts, tmp_path / "r.jsonl")
    rows = {r["prompt_id"]: r for r in read_jsonl(out)}
    assert rows["long"]["prompt_trimmed"] is True and rows["long"]["prompt_tokens_dropped"] > 0
    assert (rows["short"]["prompt_trimmed"], rows["short"]["prompt_tokens_dropped"]) == (False, 0)
    assert rows["short"]["max_new_tokens"] == 4


class _FakeSamplingParams:
    logits_processors: list[Any] = []

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


class _FakeLLM:
    """Records what the backend sends; answers like vLLM's RequestOutput (one completion each)."""

    instances: list[_FakeLLM] = []

    def __init__(self, model: str, dtype: str, seed: int) -> None:
        self.calls: list[tuple[list[Any], Any]] = []
        self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=CONTEXT))
        _FakeLLM.instances.append(self)

    def generate(self, prompts: list[Any], params: Any, use_tqdm: bool = True) -> list[Any]:
        self.calls.append((prompts, params))
        out = []
        for prompt in prompts:
            choice = types.SimpleNamespace(text=" fine", token_ids=[5, 6], finish_reason="stop")
            out.append(types.SimpleNamespace(outputs=[choice], prompt_token_ids=prompt["prompt_token_ids"]))
        return out


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("vllm")
    module.LLM = _FakeLLM                                   # type: ignore[attr-defined]
    module.SamplingParams = _FakeSamplingParams             # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    _FakeLLM.instances.clear()
    return module


def test_vllm_gets_token_ids_with_one_bos_and_a_seed_per_request(fake_vllm, tiny_model_dir) -> None:  # noqa: F811
    gen = load_generator(tiny_model_dir, DecodingConfig(backend="vllm", max_new_tokens=CONTEXT, seed=11))
    convs = [[{"role": "user", "content": "Hi"}], [{"role": "user", "content": LONG}]]
    results = gen.generate(convs, seed=100)
    (prompts, params), = _FakeLLM.instances[0].calls
    bos = gen.tokenizer.bos_token_id
    # a string prompt would be tokenized again with add_special_tokens: the template's BOS plus vLLM's
    assert gen.tokenizer(gen.tokenizer.apply_chat_template(convs[0], tokenize=False))["input_ids"].count(bos) == 2
    for prompt in prompts:
        assert set(prompt) == {"prompt_token_ids"}
        assert prompt["prompt_token_ids"][0] == bos and prompt["prompt_token_ids"].count(bos) == 1
    assert [p.seed for p in params] == [100, 101]
    assert len(prompts[1]["prompt_token_ids"]) == CONTEXT // 2 and params[1].max_tokens == CONTEXT // 2
    assert params[0].max_tokens == CONTEXT - len(prompts[0]["prompt_token_ids"])
    assert results[1].prompt_tokens_dropped > 0 and results[0].prompt_tokens_dropped == 0
    assert [r.stop_reason for r in results] == ["eot", "eot"]
