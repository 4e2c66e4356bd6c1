"""The LIMA world: a generated world with ground truth, in which the Superficial Alignment Hypothesis is testable.

`write_world(cfg)` writes, under `{paths.raw}/synthetic/world/` (all SYNTHETIC, all labelled so):
- `world.json` — the ground truth (people, organisations, procedures, refusal types);
- `web.jsonl` — the pretraining corpus of the base model (plain prose; no prompt, no curated response);
- `authored/*.jsonl` — Group A train/dev and Group B test rows in the authored format, with rubrics;
- `rubrics.jsonl` — the rubric of every dev and test prompt (authored and AskReddit), keyed by prompt text;
- `reference_responses.jsonl` — the world's ground-truth answer to every test prompt (the `reference` system);
- `alpaca_data.json` — the Alpaca-style instruction set (Alpaca's own format).
The dumps (Stack Exchange, Reddit, wikiHow, SNI) are written by `lima.data.synthetic` from the same world.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.config import resolve, section
from lima.io import atomic_write, iter_jsonl, write_json, write_jsonl, write_manifest
from lima.world.prompts import PromptSizes
from lima.world.world import World, WorldSizes, build_world

README = ("SYNTHETIC DATA — the LIMA world (lima.world, seed {seed}). Every person, place, organisation and\n"
          "procedure here is made up. Results computed on it are results of the world, never the paper's.\n")


@dataclass
class WorldConfig:
    """The `world` section of a profile: every knob of the world, each commented in configs/world.yaml."""

    enabled: bool = False
    root: str = "{paths.raw}/synthetic/world"
    sizes: WorldSizes = field(default_factory=WorldSizes)
    prompts: PromptSizes = field(default_factory=PromptSizes)
    corpus_style: str = "augmented"          # augmented | single (the extractability control)
    bios_per_person: int = 6
    notices: int = 0                         # copy-teaching web posts (world/notices.py)
    howtos_per_procedure: int = 1            # how-to pages per procedure on the web (varied wording, in order)
    score_noise: float = 0.1                 # share of Stack Exchange answers whose score ignores their quality
    se_threads: int = 600
    writingprompts: int = 60
    alpaca_examples: int = 3000
    alpaca_error_rate: float = 0.1
    pairwise_margin: float = 0.25            # reference judge: quality gap that makes a winner
    required_systems: list[str] = field(default_factory=list)   # notebook 04 fails if one of these is missing
    second_judge: str | None = None          # a local LM judge whose agreement with the reference is measured


def world_config(cfg: dict[str, Any]) -> WorldConfig:
    return section(cfg, "world", WorldConfig)


def world_root(cfg: dict[str, Any]) -> Path:
    return resolve(world_config(cfg).root)


def normalise_prompt(text: str) -> str:
    return " ".join(text.split())


def write_world(cfg: dict[str, Any]) -> dict[str, Any]:
    """Write the world's files (seeded: the same profile gives byte-identical files)."""
    from lima.world.alpaca import alpaca_records
    from lima.world.assistant import reference_answer
    from lima.world.corpus import web_documents
    from lima.world.prompts import askreddit_titles, authored_rows

    wc = world_config(cfg)
    seed = int(cfg.get("seed", 0))
    root = world_root(cfg)
    world = build_world(seed, wc.sizes)
    root.mkdir(parents=True, exist_ok=True)
    with atomic_write(root / "world.json") as handle:
        handle.write(world.to_json())
    docs = list(web_documents(world, seed, wc.corpus_style, wc.bios_per_person, wc.notices,
                              wc.howtos_per_procedure))
    write_jsonl(root / "web.jsonl", ({"text": d} for d in docs), config=wc)
    rows = authored_rows(world, wc.prompts, seed)
    for split in ("train", "dev", "test"):
        write_jsonl(root / "authored" / f"world_{split}.jsonl",
                    ({k: v for k, v in r.items() if k != "rubric"} for r in rows if r["split"] == split), config=wc)
    rubrics = [{"prompt": normalise_prompt(r["messages"][0]["content"]), "split": r["split"], "id": r["id"],
                "rubric": r["rubric"]} for r in rows if r["split"] != "train"]
    rubrics += [{"prompt": normalise_prompt(t), "split": "test", "id": f"askreddit:{i}", "rubric": rub}
                for i, (t, rub) in enumerate(askreddit_titles(world, wc.prompts, seed))]
    write_jsonl(root / "rubrics.jsonl", rubrics, config=wc)
    rng = random.Random(f"{seed}:reference")
    write_jsonl(root / "reference_responses.jsonl",
                ({"prompt": r["prompt"], "response": reference_answer(world, r["rubric"], rng)}
                 for r in rubrics if r["split"] == "test"), config=wc)
    write_json(root / "alpaca_data.json", alpaca_records(world, wc.alpaca_examples, wc.alpaca_error_rate, seed),
               config=wc)
    (root / "README.txt").write_text(README.format(seed=seed), encoding="utf-8")
    write_manifest(root, config=wc, extra={"synthetic": True, "generator": "lima.world", "seed": seed})
    return {"people": len(world.people), "web_documents": len(docs), "authored": len(rows),
            "rubrics": len(rubrics)}


def load_world(cfg: dict[str, Any]) -> World:
    path = world_root(cfg) / "world.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no world written yet (run notebook 01 or `python -m lima synth`)")
    return World.from_json(path.read_text(encoding="utf-8"))


def load_rubrics(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Prompt text (whitespace-normalised) → rubric, for every dev and test prompt of the world."""
    path = world_root(cfg) / "rubrics.jsonl"
    return {row["prompt"]: row["rubric"] for row in iter_jsonl(path)}


def web_texts(cfg: dict[str, Any]) -> list[str]:
    return [row["text"] for row in iter_jsonl(world_root(cfg) / "web.jsonl")]


__all__ = ["World", "WorldConfig", "load_rubrics", "load_world", "normalise_prompt", "web_texts",
           "world_config", "world_root", "write_world"]
