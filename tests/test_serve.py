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
    ({"model": "tiny-lima", "messages": MSG, "n": 17}, 400, "n"),
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


# ---- the OpenAI surface real clients use: streaming, n, completions, context, roles, unsupported fields ----

def _stream_text(stream) -> tuple[str, list, object]:
    parts, chunks, usage = [], [], None
    for chunk in stream:
        chunks.append(chunk)
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                parts.append(choice.delta.content)
    return "".join(parts), chunks, usage


@pytest.mark.parametrize("stop", [None, ["e", "the"]])
def test_streamed_chunks_join_to_the_non_streamed_text(client: openai.OpenAI, stop) -> None:
    kw = {"model": "tiny-lima", "messages": MSG, "max_tokens": 24, "temperature": 0.9, "seed": 11, "stop": stop}
    whole = client.chat.completions.create(**kw)
    text, chunks, usage = _stream_text(client.chat.completions.create(
        **kw, stream=True, stream_options={"include_usage": True}))
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and usage.model_dump() == whole.usage.model_dump()
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].system_fingerprint == whole.system_fingerprint


def test_stream_wire_format_ends_with_done(server: str) -> None:
    body = {"model": "tiny-lima", "messages": MSG, "max_tokens": 4, "stream": True, "seed": 1,
            "logprobs": True, "top_logprobs": 2}
    with httpx.stream("POST", f"{server}/chat/completions", json=body, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    import json

    chunks = [json.loads(e[6:]) for e in events[:-1]]
    entries = [p for c in chunks for ch in c["choices"] for p in (ch.get("logprobs") or {}).get("content") or []]
    whole = httpx.post(f"{server}/chat/completions", json={**body, "stream": False}, timeout=30).json()
    assert len(entries) == whole["usage"]["completion_tokens"] == len(whole["choices"][0]["logprobs"]["content"])


def test_n_choices(client: openai.OpenAI) -> None:
    kw = {"model": "tiny-lima", "messages": MSG, "max_tokens": 12, "temperature": 1.0, "seed": 5}
    two = client.chat.completions.create(**kw, n=2)
    one = client.chat.completions.create(**kw)
    assert [c.index for c in two.choices] == [0, 1]
    assert two.choices[0].message.content == one.choices[0].message.content        # choice 0 = the n=1 reply
    assert two.choices[0].message.content != two.choices[1].message.content
    assert two.usage.prompt_tokens == one.usage.prompt_tokens
    streamed = client.chat.completions.create(**kw, n=2, stream=True)
    texts = {0: "", 1: ""}
    for chunk in streamed:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == {c.index: c.message.content for c in two.choices}


def test_completions_endpoint(client: openai.OpenAI) -> None:
    kw = {"model": "tiny-lima", "prompt": "The capital of France is", "max_tokens": 8, "temperature": 0.8,
          "seed": 2}
    out = client.completions.create(**kw, logprobs=2)
    choice = out.choices[0]
    assert out.object == "text_completion" and choice.finish_reason in {"stop", "length"}
    assert len(choice.logprobs.tokens) == out.usage.completion_tokens <= 8
    assert all(len(top) == 2 for top in choice.logprobs.top_logprobs)
    streamed = "".join(c.choices[0].text for c in client.completions.create(**kw, stream=True) if c.choices)
    assert streamed == choice.text
    echo = client.completions.create(**kw, echo=True)
    assert echo.choices[0].text == kw["prompt"] + choice.text
    many = client.completions.create(**{**kw, "prompt": ["Write a short poem", "Explain recursion"]}, n=2)
    assert [c.index for c in many.choices] == [0, 1, 2, 3]
    default = client.completions.create(model="tiny-lima", prompt="Hello", temperature=0, extra_body={
        "ignore_eos": True})
    assert default.usage.completion_tokens == 16                                     # OpenAI's default max_tokens
    ids = client.completions.create(model="tiny-lima", prompt=[5, 6, 7], max_tokens=3, temperature=0)
    assert ids.usage.prompt_tokens == 3


def test_context_overflow_is_a_400_naming_both_numbers(client: openai.OpenAI) -> None:
    long = [{"role": "user", "content": "How do I boil an egg? " * 40}]
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny-lima", messages=long, max_tokens=100)
    message = err.value.body["message"]
    assert "maximum context length is 256 tokens" in message and "100 in the completion" in message
    assert err.value.body["code"] == "context_length_exceeded"
    prompt_tokens = int(message.split("(")[1].split(" in the messages")[0])
    assert prompt_tokens > 200 and f"requested {prompt_tokens + 100} tokens" in message
    with pytest.raises(openai.BadRequestError, match="no room"):                    # no max_tokens: still a 400
        client.chat.completions.create(model="tiny-lima", messages=[{"role": "user", "content": "egg " * 300}])
    with pytest.raises(openai.BadRequestError, match="caps max_tokens at 4096"):
        client.chat.completions.create(model="tiny-lima", messages=MSG, max_tokens=5000)
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.completions.create(model="tiny-lima", prompt="egg " * 300, max_tokens=4)
    fits = client.chat.completions.create(model="tiny-lima", messages=MSG, temperature=0)   # room is used
    assert fits.usage.total_tokens <= 256


def test_system_text_is_merged_into_the_first_user_turn(client: openai.OpenAI) -> None:
    kw = {"model": "tiny-lima", "max_tokens": 6, "temperature": 0}
    merged = client.chat.completions.create(messages=[{"role": "user", "content": "Be brief.\n\nHow do I boil an egg?"}],
                                            **kw)
    system = client.chat.completions.create(messages=[{"role": "system", "content": "Be brief."}, *MSG], **kw)
    assert system.usage.prompt_tokens == merged.usage.prompt_tokens
    assert system.choices[0].message.content == merged.choices[0].message.content
    turns = [*MSG, {"role": "assistant", "content": "Boil it."}, {"role": "user", "content": "How long?"}]
    assert client.chat.completions.create(messages=turns, **kw).choices[0].message.role == "assistant"


@pytest.mark.parametrize(("messages", "needle"), [
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "messages[1]"),
    ([{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}], "messages[0]"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "last message must be a user"),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}, {"role": "user", "content": "c"}],
     "must come before the first user message"),
    ([{"role": "system", "content": "only a system prompt"}], "at least one user message"),
])
def test_role_alternation_errors_are_400(client: openai.OpenAI, messages: list, needle: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny-lima", messages=messages, max_tokens=2)
    assert needle in err.value.body["message"]


IMAGE = [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                      {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]


@pytest.mark.parametrize(("extra", "param"), [
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"frequency_penalty": 0.5}, "frequency_penalty"),
    ({"presence_penalty": 1.0}, "presence_penalty"),
    ({"logit_bias": {"50": 5}}, "logit_bias"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"seed": 2**64}, "seed"),
    ({"seed": -(2**63) - 1}, "seed"),
    ({"n": 0}, "n"),
    ({"max_tokens": 10**30}, "max_tokens"),
    ({"temperature": 3}, "temperature"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"extra_body": {"best_of": 3}}, "best_of"),
    ({"extra_body": {"mirostat": 2}}, "mirostat"),
    ({"messages": IMAGE}, "messages[0].content[1].type"),
    ({"messages": [{"role": "user", "content": "x", "name": "alice"}]}, "messages[0].name"),
    ({"messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}]}, "messages[0].role"),
])
def test_every_unsupported_field_is_a_400_naming_it(client: openai.OpenAI, extra: dict, param: str) -> None:
    kw = {"model": "tiny-lima", "messages": MSG, "max_tokens": 2, **extra}
    if "extra_body" in extra:
        kw["extra_body"] = extra["extra_body"]
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(**kw)
    assert err.value.status_code == 400 and err.value.body["param"] == param
    assert param.split("[")[0] in err.value.body["message"]


def test_neutral_values_of_unsupported_fields_are_accepted(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(model="tiny-lima", messages=MSG, max_tokens=2, frequency_penalty=0,
                                         presence_penalty=0, response_format={"type": "text"}, tool_choice="none",
                                         logit_bias={}, user="u-1", seed=2**64 - 1)
    assert out.choices[0].message.role == "assistant"


def test_malformed_json_and_nan_are_400_json_not_500(server: str) -> None:
    for raw in (b'{"model": "tiny-lima", "messages": [', b'{"messages": [], "temperature": NaN}', b"[1, 2]",
                b'{"model": "tiny-lima", "messages": [{"role": "user", "content": "x"}], "seed": 1' + b"0" * 5000
                + b"}"):
        response = httpx.post(f"{server}/chat/completions", content=raw, timeout=30,
                              headers={"content-type": "application/json"})
        assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"


def test_model_card(client: openai.OpenAI, server: str) -> None:
    card = client.models.retrieve("tiny-lima")
    assert card.id == "tiny-lima" and card.owned_by == "lima"
    extra = card.model_dump()
    assert extra["max_model_len"] == 256 and extra["system_fingerprint"].startswith("fp_lima_")
    assert len(extra["checkpoint_sha256"]) == 64 and extra["chat_template"] == "lima"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-17")
    missing = httpx.get(server.replace("/v1", "/no/such/route"), timeout=10)
    assert missing.status_code == 404 and "error" in missing.json()
