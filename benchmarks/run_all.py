"""Run every `make bench` benchmark, one after another, and print the ratios they wrote.

Each benchmark runs ours and a baseline interleaved in short blocks in the same run (`benchmarks/interleave.py`:
the machine is small and shared, so only ratios taken block by block are comparable) and writes
`benchmarks/results/<name>.json` with `ratio` (the median of the per-block ratios) and `ratio_spread`.
`gpu.py` is not part of it: it needs a GPU and is run on one by hand (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# In this order; the last two are written by other work and run when present.
BENCHMARKS = ("se_parse", "generate_batched", "judge_concurrency", "sft_vs_trl", "serve_concurrency",
              "compile_vs_eager", "pretrain_base")
REQUIRED = BENCHMARKS[:4]


def scripts(names: list[str]) -> list[Path]:
    """The benchmark scripts to run: `names` (each must exist) or every present one of BENCHMARKS."""
    unknown = [n for n in names if not (HERE / f"{n}.py").exists() or n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; known: {list(BENCHMARKS)}")
    chosen = names or [n for n in BENCHMARKS if n in REQUIRED or (HERE / f"{n}.py").exists()]
    return [HERE / f"{n}.py" for n in chosen]


def supports(script: Path, flag: str) -> bool:
    """Whether a benchmark script takes `flag` (scripts written elsewhere may not take --quick or --out)."""
    return f'"{flag}"' in script.read_text(encoding="utf-8")


def command(script: Path, quick: bool) -> list[str] | None:
    """The command line for one benchmark; quick runs write to results/quick/ so the full results stay."""
    cmd = [sys.executable, str(script)]
    if not quick:
        return cmd
    if not supports(script, "--quick"):
        return None
    cmd.append("--quick")
    if supports(script, "--out"):
        cmd += ["--out", str(HERE / "results" / "quick" / f"{script.stem}.json")]
    return cmd


def summary_line(path: Path) -> str:
    data = json.loads(path.read_text())
    spread = data.get("ratio_spread") or {}
    extra = ", ".join(f"{k}={v}" for k, v in data.items()
                      if k not in {"name", "ratio", "ratio_spread"} and not isinstance(v, dict | list))
    band = f" [{spread.get('min')}–{spread.get('max')}]" if spread else " (no spread: not interleaved)"
    return f"{path.stem:22s} ratio={data.get('ratio')}{band}  {extra}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all present of {list(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: pass --quick to every benchmark that takes it, results to results/quick/")
    opts = parser.parse_args(argv)
    failed, ran = [], []
    for script in scripts(opts.names):
        start = time.perf_counter()
        print(f"== {script.name}", flush=True)
        cmd = command(script, opts.quick)
        if cmd is None:
            print("   skipped: it takes no --quick", flush=True)
            continue
        if subprocess.run(cmd, cwd=HERE.parent).returncode != 0:
            failed.append(script.name)
        ran.append(cmd[cmd.index("--out") + 1] if "--out" in cmd else str(HERE / "results" / f"{script.stem}.json"))
        print(f"   ({time.perf_counter() - start:.0f} s)", flush=True)
    for out in ran:
        result = Path(out)
        if result.exists():
            print(summary_line(result))
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
