"""Provider systems are the models they call: paper rows only by declaration, completions for davinci-003."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import Request
from openai_stub import OpenAIStub

from lima.config import ConfigError, load_profile
from lima.generate.systems import PAPER_ROWS, declared_paper_rows, load_systems, run_system
from lima.io import read_jsonl

PROMPTS = [{"id": f"p{i}", "messages": [{"role": "user", "content": f"Prompt {i}?"}], "source": "authors",
            "meta": {}} for i in range(3)]


def _cfg(tmp_path: Path, systems: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    path = tmp_path / "systems.yaml"
    path.write_text(yaml.safe_dump({"systems": systems}))
    return load_profile("test", {"paths.root": str(tmp_path), "generate.systems_file": str(path),
                                 "generate.max_new_tokens": 4, **overrides})


@pytest.mark.parametrize(("row", "spec"), [
    ("bard", {"kind": "endpoint", "model": "gemini-1.5-pro", "base_url": "http://x/v1"}),
    ("claude", {"kind": "endpoint", "model": "claude-3-opus-20240229", "base_url": "http://x/v1"}),
    ("gpt4", {"kind": "endpoint", "model": "gpt-4", "base_url": "http://x/v1"}),
    ("gpt4", {"kind": "file", "model": "gpt-4o", "path": "x.jsonl"}),
    ("davinci003", {"kind": "endpoint", "model": "gpt-3.5-turbo-instruct", "api": "completions"}),
    ("alpaca_65b", {"kind": "local", "model": "m", "trained_on": "pool_unfiltered.jsonl"}),
    ("alpaca_65b", {"kind": "local", "model": "m"}),
    ("alpaca_65b", {"kind": "urial", "model": None}),
])
def test_a_system_calling_another_model_cannot_be_drawn_on_a_paper_row(tmp_path: Path, row: str,
                                                                       spec: dict[str, Any]) -> None:
    cfg = _cfg(tmp_path, {"impostor": {**spec, "paper_row": row}})
    with pytest.raises(ConfigError, match=rf"impostor: declares the paper's '{re.escape(PAPER_ROWS[row].label)}'"):
        load_systems(cfg)


def test_the_models_the_rows_were_may_declare_them(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, {
        "text-davinci-003": {"kind": "endpoint", "model": "text-davinci-003", "api": "completions",
                             "paper_row": "davinci003"},
        "alpaca": {"kind": "local", "model": "m", "trained_on": "data/raw/alpaca_data.json",
                   "paper_row": "alpaca_65b"},
        "bard-2023-04": {"kind": "file", "model": "bard-2023-04", "path": "b.jsonl", "paper_row": "bard"},
        "gemini-1.5-pro": {"kind": "endpoint", "model": "gemini-1.5-pro"}})
    assert declared_paper_rows(cfg) == {"text-davinci-003": "davinci003", "alpaca": "alpaca_65b",
                                        "bard-2023-04": "bard"}
    assert load_systems(cfg)["bard-2023-04"].paper_name == "Bard (April)"
    assert load_systems(cfg)["gemini-1.5-pro"].paper_name is None


def test_unknown_row_and_the_old_paper_name_key_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="paper_row 'Bard' is not one of"):
        load_systems(_cfg(tmp_path, {"b": {"kind": "file", "model": "bard-2023-04", "paper_row": "Bard"}}))
    with pytest.raises(ConfigError, match="'paper_name' is gone"):
        load_systems(_cfg(tmp_path, {"b": {"kind": "endpoint", "model": "gpt-4", "paper_name": "GPT-4"}}))


class CompletionsStub(OpenAIStub):
    """The chat stub plus `/v1/completions`, answering "completion of <prompt>"."""

    def _build_app(self) -> Any:
        app = super()._build_app()

        @app.post("/v1/completions")
        async def completions(request: Request) -> dict[str, Any]:
            body = await request.json()
            with self._lock:
                self.requests.append({"endpoint": "completions", **body})
            return {"id": "cmpl-stub", "object": "text_completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "text": f" completion of {body['prompt']!r}", "finish_reason": "stop",
                                 "logprobs": None}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}

        return app


def test_davinci003_is_called_through_the_completions_endpoint(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LIMA_TEST_PROVIDER_KEY", "sk-x")
    with CompletionsStub() as stub:
        cfg = _cfg(tmp_path, {"text-davinci-003": {
            "kind": "endpoint", "api": "completions", "model": "text-davinci-003", "paper_row": "davinci003",
            "base_url": stub.base_url, "api_key_env": "LIMA_TEST_PROVIDER_KEY", "concurrency": 2}},
            **{"generate.include_remote": True})
        rows = read_jsonl(run_system(cfg, "text-davinci-003", PROMPTS))
    assert [r["response"] for r in rows] == [f"completion of 'Prompt {i}?\\n\\n'" for i in range(3)]
    assert all(b["endpoint"] == "completions" and "messages" not in b for b in stub.requests)
    body = stub.requests[0]
    assert (body["model"], body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        "text-davinci-003", 0.7, 0.9, 4, cfg["generate"]["seed"])                  # decoding: paper
    assert rows[0]["model"].endswith("(completions)") and rows[0]["n_tokens"] == 4


def test_davinci003_without_an_endpoint_imports_its_file(tmp_path: Path) -> None:
    outputs = tmp_path / "davinci.json"
    outputs.write_text(json.dumps([{"instruction": f"Prompt {i}?", "output": f"d{i}", "generator": "text-davinci-003"}
                                   for i in range(3)]))
    cfg = _cfg(tmp_path, {"text-davinci-003": {"kind": "endpoint", "api": "completions", "model": "text-davinci-003",
                                               "paper_row": "davinci003", "path": str(outputs)}})
    rows = read_jsonl(run_system(cfg, "text-davinci-003", PROMPTS))     # remote off in test: the file still works
    assert [(r["response"], r["model"]) for r in rows] == [(f"d{i}", "text-davinci-003") for i in range(3)]


def test_provider_default_decoding_sends_only_the_length_cap(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LIMA_TEST_PROVIDER_KEY", "sk-x")
    with OpenAIStub(default="hello") as stub:
        cfg = _cfg(tmp_path, {"gpt-4": {"kind": "endpoint", "model": "gpt-4", "base_url": stub.base_url,
                                        "api_key_env": "LIMA_TEST_PROVIDER_KEY", "decoding": "provider_default"}},
                   **{"generate.include_remote": True})
        rows = read_jsonl(run_system(cfg, "gpt-4", PROMPTS[:1]))
    body = stub.requests[0]
    assert body["max_tokens"] == 4 and "seed" not in body
    assert rows[0]["decoding"] == {"max_tokens": 4}
