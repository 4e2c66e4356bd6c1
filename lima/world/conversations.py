"""Scripted multi-turn conversations about held-out people, each user turn with its own rubric (Fig. 7).

The paper's authors chatted live with LIMA; a replayable stand-in needs follow-ups whose right answer depends
on the earlier turns: "Where was Drai Kousel born?" then "And what about her employer?" then "And in which
city is that organisation?". Only the script knows who "her" is and which organisation "that" is, so every
turn carries the rubric of what it asks (the reference judge, which looks rubrics up by prompt text, cannot
identify a follow-up). `grade_conversation` grades each assistant turn against its turn's rubric with the
world's own rules (`lima.world.grade`: the same rules the reference judge applies) → Fail / Pass / Excellent.

The people are `held_out`: in the pretraining web, never in the fine-tune (neither LIMA's single-turn set nor
the dialogue chains, which are about `sft` people), so a right answer is knowledge the base stored and the
fine-tune made the model extract — across turns. Same world and seed → the same scripts.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lima.world import assistant as A
from lima.world.corpus import POSSESSIVE
from lima.world.grade import absolute_label, grade
from lima.world.world import World

# (first question, follow-up, follow-up): each follow-up leans on the person named in turn one; an
# `employer_city` after `employer` leans on turn two's organisation as well
PATTERNS: tuple[tuple[str, str, str], ...] = (
    ("birth_city", "employer", "employer_city"),
    ("field", "hobby", "birth_year"),
    ("birth_year", "employer", "employer_city"),
    ("hobby", "birth_city", "field"),
)
FILE = "conversations.jsonl"


def follow_up(person_pronoun: str, attribute: str, previous: str) -> str:
    """The follow-up question: a pronoun for the person, "that organisation" for the previous turn's employer."""
    if attribute == "employer_city" and previous == "employer":
        return "And in which city is that organisation?"
    return f"And what about {POSSESSIVE[person_pronoun]} {A.LABELS[attribute].lower()}?"


def build_conversations(world: World, n: int, seed: int) -> list[dict[str, Any]]:
    """`n` three-turn scripts about distinct held-out people: {id, split, person, user_turns, rubrics}.

    The first `k` of `n` scripts are the `k` scripts, so a smaller profile asks a subset of a larger one.
    """
    people = world.group("held_out")
    if n > len(people):
        raise ValueError(f"{n} conversations asked for, the world has {len(people)} held-out people")
    order = list(people)
    random.Random(f"{seed}:conversations").shuffle(order)
    chosen = order[:n]                # a prefix: fewer conversations are the first of more
    scripts = []
    for i, person in enumerate(chosen):
        attributes = PATTERNS[i % len(PATTERNS)]
        turns = [A.fact_question(person, attributes[0], k=i % 2)]
        turns += [follow_up(person.pronoun, a, prev) for prev, a in zip(attributes, attributes[1:], strict=False)]
        scripts.append({"id": f"world:conversation-{i:03d}", "split": "test", "person": person.name,
                        "user_turns": turns,
                        "rubrics": [A.fact_rubric(person, [a], turn=t + 1) for t, a in enumerate(attributes)]})
    return scripts


def conversations_path(cfg: dict[str, Any]) -> Path:
    from lima.world import world_root

    return world_root(cfg) / FILE


def write_conversations(cfg: dict[str, Any], n: int) -> Path:
    """Write `{world root}/conversations.jsonl` (for `write_world`'s caller); returns its path."""
    from lima.io import write_jsonl
    from lima.world import load_world, world_config

    scripts = build_conversations(load_world(cfg), n, int(cfg.get("seed", 0)))
    path = conversations_path(cfg)
    write_jsonl(path, scripts, config=world_config(cfg))
    return path


def load_conversations(cfg: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The first `n` scripts of the written file, or built on demand from the world when there is none."""
    from lima.io import InputError, read_jsonl
    from lima.world import load_world

    path = conversations_path(cfg)
    if not path.exists():
        return build_conversations(load_world(cfg), n, int(cfg.get("seed", 0)))
    scripts = read_jsonl(path)
    for i, row in enumerate(scripts, 1):
        if len(row.get("user_turns") or []) != len(row.get("rubrics") or []) or not row.get("user_turns"):
            raise InputError(f"{path}:{i}: a conversation needs as many rubrics as user turns (and at least one)")
    if len(scripts) < n:
        raise InputError(f"{path}: {len(scripts)} conversations, {n} asked for (ablations.multiturn_conversations)")
    return scripts[:n]


def grade_conversation(world: World, script: dict[str, Any], messages: Sequence[dict[str, str]],
                       stop_reasons: Sequence[str | None]) -> list[dict[str, Any]]:
    """Grade each assistant turn of a played script against that turn's rubric: [{turn, label, quality}]."""
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    rubrics = script["rubrics"]
    if len(answers) != len(rubrics) or len(stop_reasons) != len(answers):
        raise ValueError(f"{script.get('id')}: {len(answers)} answers, {len(stop_reasons)} stop reasons, "
                         f"{len(rubrics)} rubrics")
    out = []
    for turn, (rubric, answer, stop) in enumerate(zip(rubrics, answers, stop_reasons, strict=True), 1):
        g = grade(world, rubric, answer, stop)
        out.append({"turn": turn, "label": absolute_label(g), "quality": g.quality,
                    "fact_accuracy": g.fact_accuracy})
    return out
