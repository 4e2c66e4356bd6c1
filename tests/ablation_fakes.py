"""Fakes for the ablations' upstream stages: pools, training, generation, grading, rating.

Each fake records its calls and produces deterministic outputs, so the aggregation done by `lima.ablations`
can be checked against hand-computed numbers without training or judging anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.ablations.common import Stages
from lima.analysis import mean_ci
from lima.config import load_profile
from lima.io import write_jsonl


def make_cfg(root: Path, n_test: int = 4, **ablations: Any) -> dict[str, Any]:
    overrides = {"paths.root": str(root), **{f"ablations.{k}": v for k, v in ablations.items()}}
    cfg = load_profile("smoke", overrides)
    tests = [{"id": f"t{i}", "messages": [{"role": "user", "content": f"question {i}?"}], "source": "authors",
              "meta": {}} for i in range(n_test)]
    write_jsonl(Path(cfg["paths"]["processed"]) / "test.jsonl", tests)
    return cfg


@dataclass
class FakeGenerationResult:
    text: str
    stop_reason: str = "eot"
    n_tokens: int = 3


@dataclass
class FakeGenerator:
    """Answers with the model name, the turn count and the last user message, so transcripts are checkable."""

    model_dir: Path
    calls: list[list[list[dict[str, str]]]] = field(default_factory=list)

    def generate(self, conversations: list[list[dict[str, str]]], seed: int | None = None) -> list[FakeGenerationResult]:
        self.calls.append([list(c) for c in conversations])
        out = []
        for conv in conversations:
            users = [m["content"] for m in conv if m["role"] == "user"]
            out.append(FakeGenerationResult(f"{self.model_dir.name}: answer {len(users)} to {users[-1]}"))
        return out


@dataclass
class FakeStages:
    """`scores[system]` is cycled over the response rows of that system (None = an unparsed grade)."""

    available: dict[str, int] = field(default_factory=lambda: {"se_filtered": 100, "wikihow": 100,
                                                               "se_unfiltered": 100})
    scores: dict[str, list[float | None]] = field(default_factory=dict)
    labels: dict[str, list[str | None]] = field(default_factory=dict)
    calls: dict[str, list[Any]] = field(default_factory=lambda: {"pool": [], "finetune": [], "generate": [],
                                                                 "grade": [], "rate": [], "load": []})

    def make_pool(self, cfg: dict[str, Any], kind: str, n: int, seed: int) -> list[dict[str, Any]]:
        self.calls["pool"].append((kind, n, seed))
        have = self.available[kind]
        if n > have:
            raise ValueError(f"only {have} {kind} candidates exist, {n} requested")
        return [{"id": f"{kind}:{i}", "source": "stackexchange", "meta": {},
                 "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
                for i in range(n)]

    def finetune(self, cfg: dict[str, Any], train_file: Path, run_name: str) -> Path:
        rows = [json.loads(line) for line in Path(train_file).read_text().splitlines()]
        self.calls["finetune"].append({"run_name": run_name, "n_rows": len(rows), "train": dict(cfg["train"]),
                                       "base": cfg["model"]["base"], "train_file": str(train_file),
                                       "max_new_tokens": cfg["generate"]["max_new_tokens"]})
        out = Path(cfg["paths"]["models"]) / run_name / "checkpoint-epoch-1"
        out.mkdir(parents=True, exist_ok=True)
        return out

    def generate_responses(self, cfg: dict[str, Any], system: str, model_dir: Path, prompts: list[dict[str, Any]],
                           output: Path, samples_per_prompt: int) -> Path:
        self.calls["generate"].append({"system": system, "n_prompts": len(prompts), "samples": samples_per_prompt,
                                       "existed": Path(output).exists()})
        rows = [{"system": system, "prompt_id": p["id"], "prompt": p["messages"][-1]["content"], "sample": s,
                 "response": f"{system} says {p['id']}/{s}"} for p in prompts for s in range(samples_per_prompt)]
        write_jsonl(output, rows)
        return Path(output)

    def grade_helpfulness(self, cfg: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.calls["grade"].append(len(rows))
        out = []
        for i, row in enumerate(rows):
            cycle = self.scores.get(row["system"], [4.0])
            out.append({"prompt_id": row["prompt_id"], "system": row["system"], "sample": row.get("sample", 0),
                        "score": cycle[i % len(cycle)]})
        return out

    def load_generator(self, model_dir: Path, cfg: dict[str, Any]) -> FakeGenerator:
        self.calls["load"].append((Path(model_dir), cfg["generate"]["max_new_tokens"]))
        return FakeGenerator(Path(model_dir))

    def rate_absolute(self, cfg: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.calls["rate"].append([dict(r) for r in rows])
        out = []
        for i, row in enumerate(rows):
            cycle = self.labels.get(row["system"], ["pass"])
            out.append({"prompt_id": row["prompt_id"], "system": row["system"], "label": cycle[i % len(cycle)]})
        return out

    def stages(self) -> Stages:
        return Stages(make_pool=self.make_pool, finetune=self.finetune, generate_responses=self.generate_responses,
                      grade_helpfulness=self.grade_helpfulness, mean_ci=lambda v, ci: mean_ci(v, ci=ci),
                      load_generator=self.load_generator, rate_absolute=self.rate_absolute)


def make_world_cfg(root: Path, **ablations: Any) -> dict[str, Any]:
    """The smoke profile with a small LIMA world written under `root` (world.json only: what grading reads)."""
    from lima.world import world_root
    from lima.world.world import WorldSizes, build_world

    cfg = make_cfg(root, **ablations)
    cfg["world"] = {"enabled": True, "root": str(Path(cfg["paths"]["raw"]) / "synthetic" / "world")}
    world = build_world(7, WorldSizes(sft_people=6, held_out_people=8, unseen_people=2, unknown_sft_people=1,
                                      cities=6, organisations=5, sft_procedures=2, held_out_procedures=2))
    path = world_root(cfg) / "world.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(world.to_json(), encoding="utf-8")
    return cfg
