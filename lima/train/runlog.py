"""What a run writes as it goes: `metrics.jsonl` (+ TensorBoard) and a progress bar, on the main rank only.

Kept apart from the loop so the recipe in `lima/train/loop.py` reads as the recipe. A resumed run keeps the
records up to its resume step and drops the rest (an interrupted run may have logged steps past its last
resume point), so the file always holds one record per step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lima.io import atomic_write, read_jsonl


class RunLog:
    """Per-step and per-checkpoint records; every method is a no-op except on the main rank."""

    def __init__(self, run_dir: Path, *, enabled: bool, tensorboard: bool, progress: bool, name: str,
                 start_step: int, stop_step: int, resumed: bool) -> None:
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self.tb = None
        if enabled:
            old = read_jsonl(self.path) if resumed and self.path.exists() else []
            kept = [r for r in old if r.get("step", 0) <= start_step]
            with atomic_write(self.path) as handle:
                handle.write("".join(json.dumps(r) + "\n" for r in kept))
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tb"))
        from tqdm.auto import tqdm

        self.bar = tqdm(total=stop_step, initial=start_step, disable=not (enabled and progress),
                        desc=f"train {name}", unit="step")

    def step(self, record: dict[str, Any]) -> None:
        self.write(record)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}")

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tb is not None:
            group = "checkpoint" if "kind" in record else "train"
            for key, value in record.items():
                if key not in {"step", "kind"} and isinstance(value, int | float):
                    self.tb.add_scalar(f"{group}/{key}", value, record["step"])

    def close(self) -> None:
        self.bar.close()
        if self.tb is not None:
            self.tb.close()
            self.tb = None
