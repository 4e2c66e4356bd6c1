"""The systems of configs/systems.yaml: providers, skipping, file import, URIAL, null, local, the CLI."""

from __future__ import annotations

import json

import pytest
import yaml
from openai_stub import OpenAIStub, openai_stub  # noqa: F401  (fixture)
from tiny_lima_model import tiny_model_dir  # noqa: F401  (session fixture)

from lima.config import load_profile
from lima.generate.systems import (
    SystemSkipped,
    clean_urial,
    load_alpaca_json,
    load_systems,
    render_urial,
    run_system,
)
from lima.io import InputError, read_jsonl

PROMPTS = [{"id": f"p{i}", "messages": [{"role": "user", "content": f"Prompt {i}?"}], "source": "authors",
            "meta": {}} for i in range(5)]


def _cfg(tmp_path, systems: dict, **overrides):
    path = tmp_path / "systems.yaml"
    path.write_text(yaml.safe_dump({"systems": systems}))
    return load_profile("test_smoke", {"paths.root": str(tmp_path), "generate.systems_file": str(path),
                                 "generate.max_new_tokens": 4, "generate.batch_size": 4, **overrides})


def test_provider_system_against_the_stub(tmp_path, openai_stub: OpenAIStub, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("LIMA_TEST_PROVIDER_KEY", "sk-x")
    openai_stub.default = lambda body: "answer to " + body["messages"][-1]["content"]
    openai_stub.fail_next(1, status=429)
    cfg = _cfg(tmp_path, {"gpt4": {"kind": "endpoint", "base_url": openai_stub.base_url, "model": "gpt-4",
                                   "api_key_env": "LIMA_TEST_PROVIDER_KEY", "concurrency": 2}},
               **{"generate.include_remote": True})
    out = run_system(cfg, "gpt4", PROMPTS)
    rows = read_jsonl(out)
    assert [r["response"] for r in rows] == [f"answer to Prompt {i}?" for i in range(5)]
    assert openai_stub.n_requests == 6                                  # 5 + one retried 429
    body = openai_stub.requests[-1]
    assert (body["model"], body["temperature"], body["top_p"], body["max_tokens"]) == ("gpt-4", 0.7, 0.9, 4)
    out.unlink()                                                        # the cache makes a re-run free
    run_system(cfg, "gpt4", PROMPTS)
    assert openai_stub.n_requests == 6


def test_provider_system_against_lima_serve(tmp_path, tiny_model_dir) -> None:  # noqa: F811
    from lima.serve import serve_in_background

    with serve_in_background(tiny_model_dir, model_name="tiny") as base_url:
        cfg = _cfg(tmp_path, {"local_api": {"kind": "endpoint", "base_url": base_url, "model": "tiny"}},
                   **{"generate.include_remote": True})
        rows = read_jsonl(run_system(cfg, "local_api", PROMPTS[:2]))
    assert [r["prompt_id"] for r in rows] == ["p0", "p1"]
    assert all(r["stop_reason"] in {"eot", "length"} and r["n_tokens"] <= 4 for r in rows)


def test_system_without_key_is_skipped_not_replaced(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("LIMA_TEST_ABSENT_KEY", raising=False)
    cfg = _cfg(tmp_path, {"claude": {"kind": "endpoint", "base_url": "http://127.0.0.1:9/v1", "model": "c",
                                     "api_key_env": "LIMA_TEST_ABSENT_KEY"},
                          "bard": {"kind": "endpoint", "model": "b"}})
    with pytest.raises(SystemSkipped, match="LIMA_TEST_ABSENT_KEY is not set"):
        run_system(cfg, "claude", PROMPTS)
    with pytest.raises(SystemSkipped, match="no endpoint configured"):
        run_system(cfg, "bard", PROMPTS)
    assert not (tmp_path / "data" / "results" / "responses").exists()


def test_remote_off_in_smoke_even_with_a_key(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LIMA_TEST_PROVIDER_KEY", "sk-x")
    cfg = _cfg(tmp_path, {"gpt4": {"kind": "endpoint", "base_url": "http://127.0.0.1:9/v1", "model": "g",
                                   "api_key_env": "LIMA_TEST_PROVIDER_KEY"}})
    with pytest.raises(SystemSkipped, match="include_remote"):
        run_system(cfg, "gpt4", PROMPTS)


def test_null_model(tmp_path) -> None:
    cfg = _cfg(tmp_path, {"null": {"kind": "null", "response": "No."}})
    rows = read_jsonl(run_system(cfg, "null", PROMPTS))
    assert [(r["prompt_id"], r["response"], r["system"]) for r in rows] == [(f"p{i}", "No.", "null") for i in range(5)]


def test_import_from_jsonl_and_alpacaeval(tmp_path) -> None:
    jsonl = tmp_path / "ext.jsonl"
    jsonl.write_text("".join(json.dumps({"prompt_id": f"p{i}", "response": f"r{i}"}) + "\n" for i in (0, 2)))
    alpaca_eval = tmp_path / "model_outputs.json"
    alpaca_eval.write_text(json.dumps([{"instruction": f"Prompt {i}?", "output": f"o{i}", "generator": "g"}
                                       for i in range(5)]))
    cfg = _cfg(tmp_path, {"ext": {"kind": "file", "path": str(jsonl)},
                          "ae": {"kind": "file", "path": str(alpaca_eval)}})
    rows = read_jsonl(run_system(cfg, "ext", PROMPTS))
    assert [(r["prompt_id"], r["response"]) for r in rows] == [("p0", "r0"), ("p2", "r2")]
    rows = read_jsonl(run_system(cfg, "ae", PROMPTS))
    assert [r["response"] for r in rows] == [f"o{i}" for i in range(5)] and rows[0]["model"] == "g"
    (tmp_path / "none.jsonl").write_text(json.dumps({"prompt_id": "zz", "response": "x"}) + "\n")
    cfg = _cfg(tmp_path, {"bad": {"kind": "file", "path": str(tmp_path / "none.jsonl")}})
    with pytest.raises(InputError, match="none of its 1 rows"):
        run_system(cfg, "bad", PROMPTS)


def test_urial_prompt_rendering() -> None:
    text = render_urial("  How do tides work?  ")
    assert text.count("# Query:") == 4 and text.count("# Answer:") == 4
    assert text.endswith("# Query:\n```\nHow do tides work?\n```\n\n# Answer:\n```\n")
    assert clean_urial("Tides follow the moon.\n```\n\n# Query:\n```\nnext") == "Tides follow the moon."
    assert clean_urial("Unfinished answer") == "Unfinished answer"


def test_urial_runs_on_a_model_dir(tmp_path, tiny_model_dir) -> None:  # noqa: F811
    """URIAL feeds raw text (no chat template); any causal LM dir works, so the shared tiny model stands in."""
    cfg = _cfg(tmp_path, {"urial": {"kind": "urial", "model": str(tiny_model_dir)}})
    rows = read_jsonl(run_system(cfg, "urial", PROMPTS[:2]))
    assert len(rows) == 2 and all("# Query" not in r["response"] for r in rows)
    assert all(r["stop_reason"] in {"eot", "stop", "length"} for r in rows)


def test_local_system_uses_selected_checkpoint(tmp_path, tiny_model_dir) -> None:  # noqa: F811
    run = tmp_path / "models" / "lima"
    run.mkdir(parents=True)
    (run / "selected.json").write_text(json.dumps({"path": str(tiny_model_dir), "epoch": 2, "rule": "manual"}))
    cfg = _cfg(tmp_path, {"lima": {"kind": "local", "model": "{paths.models}/lima"}})
    assert load_systems(cfg)["lima"].model == f"{tmp_path}/models/lima"
    rows = read_jsonl(run_system(cfg, "lima", PROMPTS[:3]))
    assert [r["model"] for r in rows] == [str(tiny_model_dir)] * 3
    cfg = _cfg(tmp_path, {"alpaca": {"kind": "local", "model": "{paths.models}/alpaca"}})
    with pytest.raises(SystemSkipped, match="train it first"):
        run_system(cfg, "alpaca", PROMPTS)


def test_alpaca_loader(tmp_path) -> None:
    path = tmp_path / "alpaca_data.json"
    path.write_text(json.dumps([{"instruction": "Add.", "input": "2 and 3", "output": "5"},
                                {"instruction": "Say hi.", "input": "", "output": "Hi!"}]))
    rows = load_alpaca_json(path)
    assert rows[0]["messages"] == [{"role": "user", "content": "Add.\n\n2 and 3"}, {"role": "assistant", "content": "5"}]
    assert rows[1]["messages"][0]["content"] == "Say hi." and rows[1]["id"] == "alpaca:1"
    path.write_text(json.dumps([{"instruction": "x"}]))
    with pytest.raises(InputError, match="item 0"):
        load_alpaca_json(path)


def test_cli_generates_and_lists(tmp_path, capsys) -> None:
    from lima.generate.cli import main

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    out = tmp_path / "null.jsonl"
    args = ["--profile", "test_smoke", "--set", f"paths.root={tmp_path}"]
    assert main(["--system", "null", "--prompts", str(prompts), "--output", str(out), *args], prog="g") == 0
    assert len(read_jsonl(out)) == 5
    assert main(["--system", "gpt-4", "--prompts", str(prompts), *args], prog="g") == 3   # remote off in test
    assert main(["--list", *args], prog="g") == 0
    assert "null" in capsys.readouterr().out
