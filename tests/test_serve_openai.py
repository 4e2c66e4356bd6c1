"""`lima serve` under load and abuse: cancellation, batching, the API key, and the checkpoint fingerprint."""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from tiny_lima_model import tiny_model_dir  # noqa: F401  (session fixture)

from lima.llm_client import EndpointConfig, LLMClient
from lima.serve import background_server, create_app, serve_in_background

MSG = [{"role": "user", "content": "How do I boil an egg?"}]


@pytest.fixture(scope="module")
def long_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """The tiny model with an 8k context (RoPE: no position table to grow), so a request can run for seconds."""
    out = tmp_path_factory.mktemp("long") / "tiny-long"
    shutil.copytree(tiny_model_dir, out)
    config = json.loads((out / "config.json").read_text())
    config["max_position_embeddings"] = 8192
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.fixture(scope="module", params=["continuous", "windowed"])
def long_server(long_model_dir: Path, request: pytest.FixtureRequest):
    app = create_app(long_model_dir, model_name="tiny-long", max_tokens_cap=8000, batching=request.param)
    with background_server(app) as root:
        yield root + "/v1", app.state.engine
    app.state.engine.close()


def _long_body(i: int) -> dict:
    return {"model": "tiny-long", "messages": [{"role": "user", "content": f"Tell me a long story {i}"}],
            "max_tokens": 6000, "ignore_eos": True, "temperature": 0.8, "seed": i}


def test_abandoned_requests_stop_generating(long_server) -> None:
    """A short request after three abandoned long ones (6,000 tokens each: a minute of work) returns in < 2 s."""
    url, engine = long_server
    check = httpx.post(f"{url}/chat/completions", json={**_long_body(0), "max_tokens": 20}, timeout=60)
    assert check.status_code == 200 and check.json()["usage"]["completion_tokens"] == 20   # ignore_eos holds
    before = dict(engine.stats)

    def abandon(i: int) -> None:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/chat/completions", json=_long_body(i), timeout=0.5)

    threads = [threading.Thread(target=abandon, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    start = time.perf_counter()
    short = httpx.post(f"{url}/chat/completions", json={"model": "tiny-long", "messages": MSG, "max_tokens": 2},
                       timeout=30)
    assert short.status_code == 200 and time.perf_counter() - start < 2.0
    assert engine.stats["cancelled_rows"] - before["cancelled_rows"] == 3
    generated = engine.stats["generated_tokens"] - before["generated_tokens"]
    assert generated < 3 * 6000 / 4                               # they stopped long before their max_tokens


def test_an_abandoned_stream_stops_generating(long_server) -> None:
    url, engine = long_server
    before = engine.stats["cancelled_rows"]
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    body = _long_body(7)
    stream = client.chat.completions.create(**{k: body[k] for k in ("model", "messages", "max_tokens", "seed")},
                                            stream=True, extra_body={"ignore_eos": True})
    for n, _chunk in enumerate(stream):
        if n == 5:
            break
    stream.close()
    deadline = time.monotonic() + 5
    while engine.stats["cancelled_rows"] == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.stats["cancelled_rows"] == before + 1


@pytest.mark.parametrize("batching", ["continuous", "windowed"])
def test_concurrent_requests_are_batched_and_keep_their_own_tokens(tiny_model_dir: Path, batching: str) -> None:  # noqa: F811
    app = create_app(tiny_model_dir, model_name="tiny", batch_window=0.2, batching=batching)
    assert app.state.engine.batching == batching and app.state.card["batching"] == batching
    bodies = [{"model": "tiny", "messages": [{"role": "user", "content": f"Question {i}?"}], "max_tokens": 4 + 2 * i,
               "temperature": 0.9 if i % 2 else 0.0, "top_p": 0.9, "seed": 100 + i, "logprobs": i == 3,
               "stop": ["e"] if i == 5 else None, "n": 2 if i == 6 else 1} for i in range(8)]
    with background_server(app) as root:
        url = root + "/v1"
        alone = [httpx.post(f"{url}/chat/completions", json=b, timeout=60).json() for b in bodies]
        batches_before = app.state.engine.stats["batches"]
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(lambda b: httpx.post(f"{url}/chat/completions", json=b, timeout=60).json(),
                                     bodies))
        stats = dict(app.state.engine.stats)
    app.state.engine.close()
    assert stats["max_batch_rows"] >= 4 and stats["batches"] - batches_before < 8
    # per-row seeds: a request gets its own tokens whoever shares its batch
    texts = [[c["message"]["content"] for c in r["choices"]] for r in alone]
    assert texts == [[c["message"]["content"] for c in r["choices"]] for r in together]
    assert [r["usage"] for r in alone] == [r["usage"] for r in together]
    RESULTS[batching] = texts
    if len(RESULTS) == 2:                              # both engines answer the same
        assert RESULTS["continuous"] == RESULTS["windowed"]


RESULTS: dict[str, list] = {}


def test_a_request_joins_a_running_batch(long_server) -> None:
    """Continuous batching: a short request does not wait for a long one to finish."""
    url, engine = long_server
    if engine.batching != "continuous":
        pytest.skip("windowed batching: a request waits for the running generate() call")
    done = threading.Event()

    def long_request() -> None:
        httpx.post(f"{url}/chat/completions", json={**_long_body(3), "max_tokens": 1500}, timeout=120)
        done.set()

    thread = threading.Thread(target=long_request)
    thread.start()
    time.sleep(0.5)
    start = time.perf_counter()
    short = httpx.post(f"{url}/chat/completions", json={"model": "tiny-long", "messages": MSG, "max_tokens": 3,
                                                         "temperature": 0}, timeout=60)
    assert short.status_code == 200 and time.perf_counter() - start < 2.0 and not done.is_set()
    thread.join()
    assert engine.stats["max_batch_rows"] >= 2


def test_api_key_is_required_when_set(tiny_model_dir: Path) -> None:  # noqa: F811
    with serve_in_background(tiny_model_dir, model_name="tiny", api_key="sk-lima-test") as url:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url, api_key="wrong", max_retries=0).models.list()
        assert httpx.post(f"{url}/chat/completions", json={"messages": MSG}, timeout=10).status_code == 401
        good = openai.OpenAI(base_url=url, api_key="sk-lima-test", max_retries=0)
        assert good.models.retrieve("tiny").id == "tiny"
        assert good.chat.completions.create(model="tiny", messages=MSG, max_tokens=2).choices
        assert httpx.get(url.replace("/v1", "/health"), timeout=10).status_code == 200


def test_non_loopback_host_needs_an_api_key(tiny_model_dir: Path, capsys: pytest.CaptureFixture,  # noqa: F811
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from lima.serving.cli import main
    from lima.serving.http import is_loopback

    monkeypatch.delenv("LIMA_SERVE_API_KEY", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["--model", str(tiny_model_dir), "--host", "0.0.0.0"])
    assert exit_.value.code == 2 and "--api-key" in capsys.readouterr().err
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


def test_cache_follows_the_checkpoint_not_the_port(tiny_model_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    """The same checkpoint on a fresh port hits the cache; a retrained one under the same name is asked again."""
    from safetensors.torch import load_file, save_file

    retrained = tmp_path / "retrained"
    shutil.copytree(tiny_model_dir, retrained)
    weights = load_file(retrained / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 0.01
    save_file(weights, retrained / "model.safetensors", metadata={"format": "pt"})
    cache = tmp_path / "judge.sqlite"
    request = {"messages": MSG, "max_tokens": 4, "temperature": 0.0}

    def ask(model_dir: Path) -> tuple[object, LLMClient]:
        with serve_in_background(model_dir, model_name="smoke-judge") as url:
            client = LLMClient(EndpointConfig(base_url=url, model="smoke-judge", api_key_env=None), cache_path=cache)
            result = client.chat(**request)
            client.close()
        return result, client

    first, c1 = ask(tiny_model_dir)
    again, c2 = ask(tiny_model_dir)                                  # a new server, a new port
    other, c3 = ask(retrained)
    assert not first.cached and again.cached and c2.stats["requests"] == 0
    assert not other.cached and c3.stats["requests"] == 1            # the retrained judge is asked
    assert c1.identity == c2.identity != c3.identity
    assert first.system_fingerprint and first.system_fingerprint != other.system_fingerprint


def test_checkpoint_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lima.serving import fingerprint as fp

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(bytes(range(256)) * 40_000)         # ~10 MB
    sha, method = fp.checkpoint_fingerprint(model)
    assert method == "sha256-full" and len(sha) == 64
    (model / "training_state.pt").write_bytes(b"optimizer state")                   # not part of the identity
    assert fp.checkpoint_fingerprint(model)[0] == sha
    monkeypatch.setattr(fp, "FULL_HASH_BYTES", 1 << 20)
    sampled, method = fp.checkpoint_fingerprint(model)
    assert method == "sha256-sampled" and sampled != sha
    data = bytearray((model / "model.safetensors").read_bytes())
    data[: 1 << 20] = bytes(1 << 20)                                                 # retrained: weights change
    (model / "model.safetensors").write_bytes(bytes(data))
    assert fp.checkpoint_fingerprint(model)[0] != sampled
    assert fp.system_fingerprint(sha) == f"fp_lima_{sha[:16]}"
