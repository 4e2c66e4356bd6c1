"""benchmarks/gpu.py --toy: every GPU measurement's code path runs at tiny sizes on the CPU and records honestly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from gpu_common import TOY_SIZES, random_model  # noqa: E402


@pytest.mark.parametrize("size", sorted(TOY_SIZES))
def test_parameter_count_formula_matches_the_built_model(size):
    arch = TOY_SIZES[size]
    model = random_model(arch, 64, "cpu", torch.float32)
    assert arch.params() == sum(p.numel() for p in model.parameters())


@pytest.mark.timeout(300)
def test_toy_run_writes_every_measurement(tmp_path):
    out = tmp_path / "gpu_toy.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--toy", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert (tmp_path / "gpu_toy.json.manifest.json").exists()
    m = result["measurements"]
    assert list(m) == ["matmul", "full_ft_1b", "lora_7b", "qlora_7b", "qlora_65b_estimate", "generation",
                       "qlora_65b", "world"]
    for name in ("matmul", "full_ft_1b", "lora_7b", "generation"):
        assert m[name]["status"] == "measured", (name, m[name].get("error"))
        assert m[name]["seconds"] >= 0 and "peak_allocated_gib" in m[name]
    assert m["matmul"]["n"] == 256 and m["matmul"]["seconds_per_matmul"] > 0 and m["matmul"]["tflops"] > 0
    assert all(m[name]["seconds"] > 0 for name in ("full_ft_1b", "lora_7b", "generation"))

    full = m["full_ft_1b"]
    assert full["settings"]["max_length"] == 256 and full["settings"]["residual_dropout"] == 0.2
    assert len(full["interleave"]["per_block"]) == 2 == len(full["ours_runs"]) == len(full["bare_runs"])
    # same data and steps in every block, for ours and the bare loop alike
    tokens = {r["tokens"] for r in full["ours_runs"] + full["bare_runs"]}
    assert len(tokens) == 1 and tokens.pop() > 0
    assert full["limit_ratio"] == round(full["interleave"]["ratios"]["ours"]["median"], 3)
    achieved = full["flops_per_token"] * full["interleave"]["throughput_median"]["ours"] / 1e12
    assert full["achieved_tflops"] == pytest.approx(achieved, rel=1e-12)
    assert full["mfu"] == round(achieved / m["matmul"]["tflops"], 4)
    assert full["flops_per_token"] == 6 * (full["arch"]["params"] - 640 * 64)

    gen = m["generation"]
    assert [r["batch_size"] for r in gen["runs"]] == [64, 1, 1, 64]        # interleaved, order rotated
    assert m["lora_7b"]["trainable_params"] > 0 and m["lora_7b"]["tokens"] > 0

    if not torch.cuda.is_available():      # QLoRA needs CUDA + bitsandbytes: skipped with the reason, not faked
        assert m["qlora_7b"]["status"] == "skipped" and "cannot run here" in m["qlora_7b"]["reason"]
        assert m["qlora_65b_estimate"]["status"] == "skipped"
    assert m["world"]["status"] in {"skipped", "measured"}
