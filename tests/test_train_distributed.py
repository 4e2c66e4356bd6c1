"""The multi-process path, launched for real: `accelerate launch --num_processes 2` on CPU ranks (DDP, gloo).

`lima/train/distributed.py` claims the averaged gradient equals the single-process one: every rank takes
every world_size-th micro-batch of the same optimiser step, a rank with fewer rows runs a zero-weight copy,
and the loss is divided by the step's global trainable-token count. Here 10 examples in steps of 3 give
3, 3, 3 and 1 rows per step (one micro-batch each), so rank 1 pads every step, the last one (1 row) with
nothing but its zero-weight copy. Dropout is off: each rank draws its own dropout masks, so with dropout the
two runs are equal in distribution, not in value. Weights must agree to fp32 rounding (the gradient sums are
added in a different order across ranks).

FSDP is not tested here: accelerate 1.15 turns `--use_fsdp` into FSDP only on accelerator devices; CPU
ranks stay plain MULTI_CPU data parallelism (a launch with `--use_fsdp` and ACCELERATE_USE_CPU reports
`MULTI_CPU`), so there is no FSDP on CPU to compare (docs/training.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_support import build_tiny_base, tiny_cfg, write_data

from lima.io import read_jsonl
from lima.train import finetune

ROOT = Path(__file__).resolve().parents[1]
RECIPE = {"epochs": 1, "batch_size": 3, "micro_batch_size": 1, "packing": False, "attention": "sdpa",
          "residual_dropout": 0.0, "save_epochs": [1], "select_epochs": [1], "select": "last"}


def _accelerate() -> str:
    exe = Path(sys.executable).with_name("accelerate")
    if not exe.exists() and shutil.which("accelerate") is None:
        pytest.skip("accelerate is not installed")
    return str(exe) if exe.exists() else "accelerate"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _set_args(root: Path, base: Path) -> list[str]:
    cfg = tiny_cfg(root, base, **RECIPE)
    pairs = {"paths.root": root, "model.base": base, "model.dtype": "float32"}
    pairs.update({f"train.{k}": v for k, v in cfg["train"].items()
                  if k in {*RECIPE, "learning_rate", "final_learning_rate", "max_length", "progress", "tensorboard",
                           "dev_quality", "dtype", "compile"}})
    out: list[str] = []
    for key, value in pairs.items():
        text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        out += ["--set", f"{key}={text}"]
    return out + ["--set", "train.dev_quality=train_support:record_rank_hook"]


def _launch(root: Path, base: Path, train: Path, dev: Path, run_name: str,
            launcher: tuple[str, ...] = ("--multi_gpu",)) -> subprocess.Popen:
    # `accelerate launch --cpu` picks accelerate's simple launcher, which starts ONE process unless mpirun
    # fans it out; `--multi_gpu` is torchrun, and ACCELERATE_USE_CPU makes its ranks CPU ranks over gloo.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "ACCELERATE_USE_CPU": "true",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    env.pop("WORLD_SIZE", None)
    command = [_accelerate(), "launch", *launcher, "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
               "-m", "lima", "train", "--profile", "test", "--data", str(train), "--dev", str(dev),
               "--run-name", run_name, *_set_args(root, base)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    """The DDP launch, and the single-process reference trained while its ranks start up."""
    root = tmp_path_factory.mktemp("ddp")
    base = build_tiny_base(root)
    train, dev = write_data(root, n=10)
    launched = {"ddp": _launch(root, base, train, dev, "ddp")}
    selected = finetune(tiny_cfg(root, base, **RECIPE), train, "single", dev)
    results = {}
    for name, process in launched.items():
        try:
            _, err = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        results[name] = (process.returncode, err)
    return root, load_file(str(selected / "model.safetensors")), results


def _assert_same_weights(reference: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> None:
    assert reference.keys() == other.keys()
    worst = max(float((reference[k] - other[k]).abs().max()) for k in reference)
    assert worst < 1e-5, f"largest weight difference {worst}"


def test_ddp_two_processes_equal_single_process(runs) -> None:
    root, reference, results = runs
    code, err = results["ddp"]
    assert code == 0, err[-4000:]
    run = root / "models" / "ddp"
    info = json.loads((run / "run.json").read_text())
    assert info["world_size"] == 2 and info["distributed"] == "MULTI_CPU" and info["total_steps"] == 4
    tokens = [[r["trainable_tokens"] for r in read_jsonl(root / "models" / name / "metrics.jsonl") if "kind" not in r]
              for name in ("single", "ddp")]
    assert tokens[0] == tokens[1] and len(tokens[0]) == 4
    _assert_same_weights(reference, load_file(str(run / "checkpoint-epoch-1" / "model.safetensors")))
    # the dev-quality hook ran on rank 0 only, with the model in memory (DDP: rank 0 holds all of it)
    assert sorted(p.name for p in run.glob("quality-rank*.json")) == ["quality-rank0.json"]
    assert json.loads((run / "quality-rank0.json").read_text()) == {"in_memory": True, "tokenizer": True, "n_dev": 4}
    assert [r["dev_quality"] for r in json.loads((run / "checkpoints.json").read_text())] == [4.0]

