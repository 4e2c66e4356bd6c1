"""The foundation: config flow, atomic artefacts with manifests, the CLI, committed notebooks."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lima.config import (
    ROOT,
    ConfigError,
    from_dict,
    load_profile,
    notebook_overrides,
    parse_set_args,
    section,
)
from lima.io import InputError, atomic_write, manifest_path, read_jsonl, selected_checkpoint, write_jsonl


@dataclass
class _Train:
    epochs: int = 15
    learning_rate: float = 1e-5
    save_epochs: list[int] = field(default_factory=list)
    method: str = "full"


def test_paper_profile_holds_the_paper_recipe():
    cfg = load_profile("paper")
    train = cfg["train"]
    assert (train["epochs"], train["learning_rate"], train["final_learning_rate"]) == (15, 1e-5, 1e-6)
    assert (train["adam_beta1"], train["adam_beta2"], train["weight_decay"]) == (0.9, 0.95, 0.1)
    assert (train["batch_size"], train["max_length"], train["residual_dropout"]) == (32, 2048, 0.3)
    gen = cfg["generate"]
    assert (gen["top_p"], gen["temperature"], gen["repetition_penalty"], gen["max_new_tokens"]) == (0.9, 0.7, 1.2, 2048)
    assert cfg["curation"]["temperature"] == 3.0


def test_smoke_inherits_paper_and_overrides_move_paths():
    cfg = load_profile("smoke", {"paths.root": "/tmp/elsewhere", "train.epochs": 2})
    assert cfg["profile"] == "smoke" and cfg["train"]["epochs"] == 2
    assert cfg["train"]["adam_beta2"] == 0.95  # inherited from paper.yaml
    assert cfg["paths"]["processed"] == "/tmp/elsewhere/data/processed"
    assert cfg["data"]["stackexchange"].startswith("/tmp/elsewhere/data/raw/")


def test_every_path_is_absolute_whatever_the_override():
    cfg = load_profile("smoke", {"paths.results": "data/elsewhere"})
    assert all(Path(p).is_absolute() for p in cfg["paths"].values())
    assert cfg["paths"]["results"] == str(ROOT / "data/elsewhere")
    assert cfg["judge"]["cache"] == str(ROOT / "data/elsewhere/judge_cache.sqlite")   # references see it too
    assert cfg["data"]["stackexchange"] == str(ROOT / "data/raw/synthetic/stackexchange")


def test_unknown_override_and_profile_are_errors():
    with pytest.raises(ConfigError, match="unknown key"):
        load_profile("smoke", {"train.epochz": 2})
    with pytest.raises(ConfigError, match="not found"):
        load_profile("no-such-profile")


def test_section_is_strict_and_coerces():
    cfg = {"profile": "x", "train": {"epochs": 3, "learning_rate": 1, "save_epochs": [1, 2]}}
    train = section(cfg, "train", _Train)
    assert train == _Train(epochs=3, learning_rate=1.0, save_epochs=[1, 2])
    with pytest.raises(ConfigError, match="unknown keys"):
        from_dict(_Train, {"epoch": 3})
    with pytest.raises(ConfigError, match="expected int"):
        from_dict(_Train, {"epochs": "three"})


def test_set_args_and_notebook_overrides():
    assert parse_set_args(["train.epochs=3", "model.base=meta-llama/Llama-2-7b-hf", "train.packing=false"]) == {
        "train.epochs": 3, "model.base": "meta-llama/Llama-2-7b-hf", "train.packing": False}
    assert notebook_overrides(overrides={"a.b": 1}, train__epochs=None, train__learning_rate=0.1) == {
        "train.learning_rate": 0.1, "a.b": 1}


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path):
    target = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_write_jsonl_round_trip_with_manifest(tmp_path: Path):
    src = tmp_path / "in.txt"
    src.write_text("input")
    out = tmp_path / "rows.jsonl"
    assert write_jsonl(out, [{"a": 1}, {"b": "é"}], config={"k": 1}, inputs=[src]) == 2
    assert read_jsonl(out) == [{"a": 1}, {"b": "é"}]
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["rows"] == 2 and manifest["config"] == {"k": 1} and str(src) in manifest["inputs"]
    assert len(manifest["sha256"]) == 64


def test_read_jsonl_names_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"ok": 1}\n{"broken": \n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: invalid JSON"):
        read_jsonl(bad)
    bad.write_bytes(b'{"ok": 1}\n\xff\xfe\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: invalid UTF-8"):
        read_jsonl(bad)


def test_selected_checkpoint_follows_moved_runs_and_names_dangling_ones(tmp_path: Path):
    run = tmp_path / "moved" / "lima"
    (run / "checkpoint-epoch-4").mkdir(parents=True)
    assert selected_checkpoint(run) is None                                   # no selected.json
    (run / "selected.json").write_text(json.dumps({"path": "/old/place/lima/checkpoint-epoch-4"}))
    assert selected_checkpoint(run) == run / "checkpoint-epoch-4"             # the run folder was moved
    (run / "selected.json").write_text(json.dumps({"path": "checkpoint-epoch-9"}))
    with pytest.raises(FileNotFoundError, match="checkpoint-epoch-9 does not exist"):
        selected_checkpoint(run)
    (run / "selected.json").write_text("{}")
    with pytest.raises(InputError, match="'path' key"):
        selected_checkpoint(run)


def test_cli_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "lima", "--help"], capture_output=True, text=True, check=True)
    for name in ("collect", "curate", "train", "generate", "serve", "judge", "annotate", "analyze"):
        assert name in out.stdout
    bad = subprocess.run([sys.executable, "-m", "lima", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command" in bad.stderr


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_are_numbered_and_committed_without_outputs():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        assert path.name[:2].isdigit(), path
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in code), f"{path.name} has outputs"
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
        assert 'profile = "world"' in "".join(tagged[0]["source"]), path.name   # the embedded default


def test_a_failing_notebook_names_the_notebook_and_cell_and_leaves_no_output(tmp_path: Path):
    import nbformat

    from lima.notebooks import NotebookFailed, run_notebook

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('bad')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "99_broken.ipynb"
    nbformat.write(nb, source)
    output = tmp_path / "out" / "99_broken.ipynb"
    with pytest.raises(NotebookFailed, match=r"99_broken.ipynb failed in cell \d+ .*ValueError: bad"):
        run_notebook(source, output, {"profile": "test"})
    assert not output.exists() and (tmp_path / "out" / "99_broken.failed.ipynb").exists()
