"""`lima serve` on a real loopback port, driven by the official `openai` client."""

from __future__ import annotations

import math

import httpx
import openai
import pytest
from tiny_lima_model import tiny_model_dir  # noqa: F401  (session fixture)

from lima.serve import serve_in_background

MSG = [{"role": "user", "content": "How do I boil an egg?"}]


@pytest.fixture(scope="module")
def server(tiny_model_dir):  # noqa: F811
    with serve_in_background(tiny_model_dir, model_name="tiny-lima") as base_url:
        yield base_url


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server, api_key="unused", max_retries=0)


def test_models_lists_the_served_name(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == ["tiny-lima"]


def test_chat_completion_with_usage(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(model="tiny-lima", messages=MSG, max_tokens=5, temperature=0.7, seed=3)
    choice = out.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in {"stop", "length"}
    assert out.usage.completion_tokens <= 5 and out.usage.prompt_tokens > 3
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    again = client.chat.completions.create(model="tiny-lima", messages=MSG, max_tokens=5, temperature=0.7, seed=3)
    assert again.choices[0].message.content == choice.message.content     # seeded


def test_logprobs_are_the_models_distribution(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(model="tiny-lima", messages=MSG, max_tokens=4, temperature=0,
                                         logprobs=True, top_logprobs=5)
    content = out.choices[0].logprobs.content
    assert len(content) == out.usage.completion_tokens
    for pos in content:
        tops = [t.logprob for t in pos.top_logprobs]
        assert len(tops) == 5 and tops == sorted(tops, reverse=True)
        assert pos.logprob == pytest.approx(tops[0], abs=1e-6)            # greedy picks the top token
        assert sum(math.exp(lp) for lp in tops) <= 1.0 + 1e-5
    raw = b"".join(bytes(p.bytes) for p in content)                        # raw bytes rebuild the text exactly
    assert raw.decode("utf-8", errors="replace").strip() == out.choices[0].message.content


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({"model": "tiny-lima"}, 400, "messages"),
    ({"model": "tiny-lima", "messages": [{"role": "wizard", "content": "x"}]}, 400, "role"),
    ({"model": "tiny-lima", "messages": MSG, "max_tokens": 0}, 400, "max_tokens"),
    ({"model": "tiny-lima", "messages": MSG, "logprobs": True, "top_logprobs": 21}, 400, "top_logprobs"),
    ({"model": "gpt-17", "messages": MSG}, 404, "gpt-17"),
    ({"model": "tiny-lima", "messages": MSG, "n": 2}, 400, "n"),
])
def test_bad_requests_get_openai_shaped_errors(server: str, body: dict, status: int, needle: str) -> None:
    response = httpx.post(f"{server}/chat/completions", json=body, timeout=30)
    assert response.status_code == status
    error = response.json()["error"]
    assert needle in error["message"] and error["type"] == "invalid_request_error"


def test_bad_request_raises_in_the_openai_client(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tiny-lima", messages=MSG, max_tokens=-1)


def test_concurrent_requests_are_served(server: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def call(i: int) -> int:
        body = {"model": "tiny-lima", "messages": [{"role": "user", "content": f"q{i}"}], "max_tokens": 3}
        return httpx.post(f"{server}/chat/completions", json=body, timeout=60).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(call, range(6))) == [200] * 6


def test_guided_choice_scores_each_choice_by_its_full_log_probability(client: openai.OpenAI,
                                                                      tiny_model_dir) -> None:  # noqa: F811
    import torch

    from lima.model import load_model

    choices = ["A", "B", "neither"]
    out = client.chat.completions.create(model="tiny-lima", messages=MSG, temperature=0, logprobs=True,
                                         top_logprobs=3, extra_body={"guided_choice": choices})
    assert out.choices[0].message.content in choices
    tops = {t.token: t.logprob for t in out.choices[0].logprobs.content[0].top_logprobs}
    assert set(tops) == set(choices) and sum(math.exp(v) for v in tops.values()) == pytest.approx(1.0, abs=1e-5)
    # the same numbers by hand: log p(choice | prompt) summed over the choice's tokens, normalised
    model, tok = load_model(tiny_model_dir)
    prompt = tok(tok.apply_chat_template(MSG, tokenize=False), add_special_tokens=False)["input_ids"]
    raw = []
    with torch.no_grad():
        for c in choices:
            ids = tok(c, add_special_tokens=False)["input_ids"]
            logp = model(input_ids=torch.tensor([prompt + ids])).logits[0].log_softmax(-1)
            raw.append(sum(float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(ids)))
    expected = torch.tensor(raw).log_softmax(0).tolist()
    for c, lp in zip(choices, expected, strict=True):
        assert tops[c] == pytest.approx(lp, abs=1e-4)
    assert out.choices[0].message.content == choices[max(range(3), key=lambda i: expected[i])]
