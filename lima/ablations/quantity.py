"""Fig. 6 (§5): does doubling the number of training examples help?

The paper trained on 2k, 4k, … 32k filtered Stack Exchange examples and found the helpfulness grade flat.
Here each size is its own run (`run_size`, one papermill execution of notebook 08 per size, so a sweep can be
spread over machines and re-run size by size); `aggregate` gathers whatever size files exist into the table.
In the LIMA world each size file also carries the world metrics, and `aggregate` writes them as curves
(`quantity_metrics.csv`: style = format compliance, substance = fact and procedure accuracy), so the figure can
show whether style saturates early while substance keeps improving (Raghavendra et al.) or nothing moves (the
paper).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lima.ablations.common import (
    Stages,
    ablation_prompts,
    draw_pool,
    path_of,
    results_dir,
    train_generate_grade,
)
from lima.ablations.world_metrics import METRIC_COLUMNS, metric_curves
from lima.io import InputError, write_csv, write_json, write_jsonl

POOL_KIND = "se_filtered"
COLUMNS = ["size", "n", "mean", "ci_low", "ci_high"]
_SIZE_FILE = re.compile(r"^size_(\d+)\.json$")


def sizes_dir(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "quantity"


def size_path(cfg: dict[str, Any], size: int) -> Path:
    return sizes_dir(cfg) / f"size_{int(size)}.json"


def table_path(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "quantity.csv"


def metrics_path(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "quantity_metrics.csv"


def run_size(cfg: dict[str, Any], size: int, stages: Stages | None = None) -> dict[str, Any]:
    """Train on `size` filtered Stack Exchange examples, sample, grade; writes `quantity/size_<n>.json`."""
    stages = stages or Stages()
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"quantity ablation: size must be a positive integer, got {size!r}")
    rows = draw_pool(cfg, POOL_KIND, size, stages, f"quantity ablation, size {size}")
    prompts = ablation_prompts(cfg)
    result = train_generate_grade(cfg, f"quantity_{size}", rows, prompts, stages)
    record = {"size": size, **{k: result[k] for k in ("n", "mean", "ci_low", "ci_high", "unparsed", "model")},
              "scores": [g["score"] for g in result["grades"]], "metrics": result["metrics"]}
    inputs = [path_of(cfg, "processed") / "test.jsonl", Path(result["train_file"])]
    write_jsonl(sizes_dir(cfg) / f"size_{size}_grades.jsonl", result["grades"], config=cfg.get("ablations"),
                inputs=inputs)
    write_json(size_path(cfg, size), record, config={"ablations": cfg.get("ablations"), "judge": cfg.get("judge")},
               inputs=inputs)
    return record


def read_sizes(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Every `size_<n>.json` present, sorted by size; a file that is not a size record is an InputError."""
    folder = sizes_dir(cfg)
    records = []
    for path in sorted(folder.glob("size_*.json")) if folder.exists() else []:
        match = _SIZE_FILE.match(path.name)
        if not match:
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise InputError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
        missing = [k for k in COLUMNS if k not in record]
        if missing:
            raise InputError(f"{path}: missing keys {missing}")
        if record["size"] != int(match.group(1)):
            raise InputError(f"{path}: holds size {record['size']}, its name says {match.group(1)}")
        records.append(record)
    return sorted(records, key=lambda r: r["size"])


def aggregate(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Gather the size files into `quantity.csv` (and `quantity_metrics.csv` in the world); ≥ 1 size must exist."""
    records = read_sizes(cfg)
    if not records:
        raise FileNotFoundError(f"no size files in {sizes_dir(cfg)}: run notebook 08 with mode='train' first "
                                "(make sweep-quantity SIZES=\"…\")")
    table = [{k: r[k] for k in (*COLUMNS, "unparsed")} for r in records]
    inputs = [size_path(cfg, r["size"]) for r in records]
    curves = metric_curves(records)
    if curves:
        write_csv(metrics_path(cfg), curves, ["size", *METRIC_COLUMNS], config={"ablations": cfg.get("ablations")},
                  inputs=inputs)
    write_csv(table_path(cfg), table, COLUMNS, config={"ablations": cfg.get("ablations"), "judge": cfg.get("judge")},
              inputs=inputs)
    return table


def main(argv: list[str] | None = None) -> int:
    """`python -m lima.ablations.quantity --profile paper` prints the profile's sweep sizes (for the Makefile)."""
    import argparse

    from lima.ablations.common import ablation_config
    from lima.config import load_profile

    parser = argparse.ArgumentParser(prog="python -m lima.ablations.quantity", description=main.__doc__)
    parser.add_argument("--profile", default="world", help="profile whose ablations.quantity_sizes to print")
    args = parser.parse_args(argv)
    print(" ".join(str(s) for s in ablation_config(load_profile(args.profile)).quantity_sizes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
