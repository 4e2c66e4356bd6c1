"""Resumable response files: an interrupted run answers only what is left; the result is complete and ordered."""

from __future__ import annotations

import json

import pytest
from tiny_lima_model import tiny_model_dir  # noqa: F401  (session fixture)

from lima.config import load_profile
from lima.generate import DecodingConfig, generate_responses, load_generator
from lima.io import manifest_path, read_jsonl

PROMPTS = [{"id": f"t{i}", "messages": [{"role": "user", "content": f"Question number {i}: " + "why? " * i}],
            "source": "authors", "meta": {}} for i in range(7)]


@pytest.fixture
def cfg(tmp_path):
    return load_profile("test", {"paths.root": str(tmp_path), "generate.max_new_tokens": 5,
                                 "generate.batch_size": 2})


class Counting:
    """Wraps a generator; raises after `fail_after` conversations to simulate a crash."""

    def __init__(self, inner, fail_after: int | None = None) -> None:
        self.inner, self.fail_after, self.seen = inner, fail_after, []

    def generate(self, conversations, seed=None):
        if self.fail_after is not None and len(self.seen) + len(conversations) > self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        self.seen += [c[-1]["content"] for c in conversations]
        return self.inner.generate(conversations, seed=seed)


def test_interrupted_run_resumes_and_finishes_ordered(cfg, tiny_model_dir, tmp_path) -> None:  # noqa: F811
    inner = load_generator(tiny_model_dir, DecodingConfig(max_new_tokens=5, batch_size=2))
    out = tmp_path / "responses" / "lima.jsonl"
    first = Counting(inner, fail_after=4)
    with pytest.raises(KeyboardInterrupt):
        generate_responses(cfg, "lima", tiny_model_dir, PROMPTS, out, generator=first)
    partial = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(partial) == 4 and len(first.seen) == 4 and not manifest_path(out).exists()

    second = Counting(inner)
    generate_responses(cfg, "lima", tiny_model_dir, PROMPTS, out, generator=second)
    answered_before = {r["prompt"] for r in partial}
    assert len(second.seen) == 3 and not answered_before & set(second.seen)       # only the rest
    rows = read_jsonl(out)
    assert [r["prompt_id"] for r in rows] == [p["id"] for p in PROMPTS]
    assert manifest_path(out).exists()
    row = rows[0]
    assert set(row) == {"system", "prompt_id", "prompt", "response", "decoding", "model", "created", "stop_reason",
                        "n_tokens", "prompt_trimmed", "prompt_tokens_dropped", "max_new_tokens"}   # + the guard
    assert (row["prompt_trimmed"], row["max_new_tokens"]) == (False, 5)
    assert row["decoding"]["repetition_penalty"] == 1.2 and row["decoding"]["top_p"] == 0.9
    assert row["stop_reason"] in {"eot", "length"} and 0 <= row["n_tokens"] <= 5

    third = Counting(inner)                                                       # complete: nothing to do
    generate_responses(cfg, "lima", tiny_model_dir, PROMPTS, out, generator=third)
    assert third.seen == [] and read_jsonl(out) == rows


def test_torn_last_line_is_regenerated(cfg, tiny_model_dir, tmp_path) -> None:  # noqa: F811
    out = tmp_path / "r.jsonl"
    good = {"system": "lima", "prompt_id": "t0", "prompt": "x", "response": "kept", "decoding": {}, "model": "m",
            "created": "", "stop_reason": "eot", "n_tokens": 1}
    out.write_text(json.dumps(good) + "\n" + '{"system": "lima", "prompt_id": "t1", "resp')
    gen = Counting(load_generator(tiny_model_dir, DecodingConfig(max_new_tokens=3, batch_size=4)))
    generate_responses(cfg, "lima", tiny_model_dir, PROMPTS[:3], out, generator=gen)
    rows = read_jsonl(out)
    assert [r["prompt_id"] for r in rows] == ["t0", "t1", "t2"] and rows[0]["response"] == "kept"
    assert len(gen.seen) == 2


def test_samples_per_prompt_and_wrong_system(cfg, tiny_model_dir, tmp_path) -> None:  # noqa: F811
    out = tmp_path / "s.jsonl"
    generate_responses(cfg, "lima", tiny_model_dir, PROMPTS[:2], out, samples_per_prompt=2)
    rows = read_jsonl(out)
    assert [(r["prompt_id"], r["sample"]) for r in rows] == [("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)]
    from lima.io import InputError

    with pytest.raises(InputError, match="not 'alpaca'"):
        generate_responses(cfg, "alpaca", tiny_model_dir, PROMPTS[:2], out)
