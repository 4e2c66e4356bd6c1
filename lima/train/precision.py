"""Compute dtype and `torch.compile`, chosen by what the machine has rather than by a hard-coded default.

Why a rule and not a default: bf16 is only fast where the hardware computes in it. On a CPU that means the
AVX512-BF16 instructions or AMX tiles; a machine with AVX2 only emulates bf16 and ran the bare training loop
7x slower in bf16 than in fp32. On CUDA, bf16 needs compute capability >= 8.0 (Ampere); older cards get fp32
(fp16 would need loss scaling, which the LIMA loop does not do). So `train.dtype: auto` reads the CPU's flags
(or asks CUDA) and picks; an explicit `float32` / `bfloat16` is taken as given.

`torch.compile` is exact only up to floating-point reassociation and costs compile time up front, so
`train.compile: auto` adopts it only where it was measured faster with the loss curve within 1e-4 of eager
(`benchmarks/compile_vs_eager.py`): the rule lives in `compile_rule` below, next to the measurement it is
based on. `on` and `off` force it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch

from lima.config import ConfigError

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}
CompileMode = Literal["auto", "on", "off", True, False]   # YAML reads a bare on/off as true/false

# Flags in /proc/cpuinfo that mean the CPU computes bf16 natively (AVX512-BF16 dot products, AMX tiles).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags of the first processor listed in `cpuinfo` (empty where the file is absent)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in {"flags", "Features"}:
            return set(value.split())
    return set()


def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    """True where the CPU computes bf16 in hardware: an avx512_bf16 or amx_bf16 flag, or torch's own probe.

    `flags` (tests) replaces both /proc/cpuinfo and torch's probe. Without /proc/cpuinfo (macOS, Windows)
    torch's cpuinfo-based probe answers.
    """
    if flags is not None:
        return bool(flags & NATIVE_BF16_FLAGS)
    if cpu_flags() & NATIVE_BF16_FLAGS:
        return True
    probes: list[Callable[[], bool]] = [getattr(torch.cpu, name) for name in
                                        ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
                                        if hasattr(torch.cpu, name)]
    return any(probe() for probe in probes)


def pick_dtype(requested: str, device: torch.device | str | None = None, flags: set[str] | None = None
               ) -> torch.dtype:
    """The compute dtype for `requested` ("auto" | "float32" | "bfloat16" | "float16" and the short names).

    "auto": on CUDA bf16 where `torch.cuda.is_bf16_supported()`, else fp32; on the CPU bf16 where the CPU has
    native bf16 (`cpu_has_native_bf16`), else fp32. `device` defaults to CUDA when one is visible.
    """
    name = str(requested).strip().lower()
    if name != "auto":
        if name not in DTYPES:
            raise ConfigError(f"dtype must be auto | float32 | bfloat16 | float16, got {requested!r}")
        return DTYPES[name]
    kind = torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if cpu_has_native_bf16(flags) else torch.float32


def compile_rule(mode: str | bool, device: torch.device | str) -> bool:
    """Whether `mode` compiles on `device`.

    auto: CPU → no. Measured on the fine-tune loop's step (`benchmarks/results/compile_vs_eager.json`, smoke-
    sized model, 5 interleaved blocks on 2 shared cores): compiled/eager 1.07 median (0.99–1.15), loss curve
    within 5.4e-7 of eager — but compiling cost 67 s cold (15 s with inductor's cache warm), more than a
    whole smoke fine-tune (~25 s), so end to end it is slower; the steady-state gain is within the noise.
    CUDA → no as well: not measured here. `on` forces it (long runs, where 67 s is small against the run).
    """
    name = ("on" if mode else "off") if isinstance(mode, bool) else str(mode).strip().lower()
    if name not in {"auto", "on", "off"}:
        raise ConfigError(f"compile must be auto | on | off, got {mode!r}")
    if name == "auto":
        return False
    return name == "on"


def maybe_compile(model: torch.nn.Module, mode: str | bool, device: torch.device | str | None = None,
                  dynamic: bool | None = True) -> bool:
    """Compile `model` in place (`nn.Module.compile`, so parameters, state-dict keys and hooks stay as they
    are and checkpoints are unchanged) when `compile_rule` says so; returns whether it did.

    `dynamic=True`: sequence lengths change from step to step, so one shape-generic graph instead of one
    recompilation per length.
    """
    where = device if device is not None else next(model.parameters()).device
    if not compile_rule(mode, where):
        return False
    model.compile(dynamic=dynamic)
    return True


__all__ = ["DTYPES", "CompileMode", "compile_rule", "cpu_flags", "cpu_has_native_bf16", "maybe_compile",
           "pick_dtype"]
