"""Run every benchmark script in this folder, one after another, and print the ratios they wrote.

Each benchmark measures ours against a baseline in the same run (the machine is small and shared, so only
ratios are comparable across runs) and writes `benchmarks/results/<name>.json`.
Usage: python benchmarks/run_all.py [NAME ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != "run_all.py" and not p.name.startswith("_"))
    if names:
        scripts = [p for p in scripts if p.stem in names]
    failed = []
    for script in scripts:
        start = time.perf_counter()
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode != 0:
            failed.append(script.name)
        print(f"   ({time.perf_counter() - start:.0f} s)", flush=True)
    for result in sorted((HERE / "results").glob("*.json")):
        data = json.loads(result.read_text())
        print(f"{result.stem:22s} ratio={data.get('ratio')}  " + ", ".join(
            f"{k}={v}" for k, v in data.items() if k not in {"name", "ratio"} and not isinstance(v, dict | list)))
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
