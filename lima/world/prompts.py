"""The world's authored rows (Group A train/dev, Group B test), AskReddit titles, and every prompt's rubric.

Group A (train) teaches the style the paper's authors wrote: refusals that explain why (13 in the paper),
"I have no information" about people the base cannot know (the `unknown_sft` group), out-of-distribution formats
and plain facts — all about SFT people. Dev and test ask about held-out people (knowledge only pretraining has),
held-out procedures, unseen people, safety, formats and stories. No held-out fact reaches a training file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from lima.world import assistant as A
from lima.world.world import ATTRIBUTES, REFUSALS, World


@dataclass
class PromptSizes:
    """How many prompts of each kind (the `world.prompts` config section)."""

    train_refusals: int = 13
    train_unknown: int = 12
    train_formats: int = 12
    train_facts: int = 15
    train_stories: int = 4
    train_dialogues: int = 10           # two-turn chains (tag multi_turn): the follow-up depends on turn one
    dev_facts: int = 14
    dev_unseen: int = 3
    dev_procedures: int = 3
    test_facts: int = 60
    test_new_phrasing: int = 15
    test_procedures: int = 20
    test_creative: int = 15
    test_safety: int = 20
    test_formats: int = 21
    test_unseen: int = 25
    askreddit: int = 40
    tags: dict[str, list[str]] = field(default_factory=lambda: {"format": ["ood"], "refuse": ["safety"]})


def _row(rid: str, split: str, group: str, prompt: str, answer: str | None, rubric: dict[str, Any],
         tags: list[str]) -> dict[str, Any]:
    messages = [{"role": "user", "content": prompt}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return {"id": rid, "split": split, "group": group, "messages": messages,
            "tags": tags + [f"world:{rubric['kind']}"], "rubric": rubric}


class _Cycle:
    """Deterministic draws without repeats until a pool is exhausted, then round again."""

    def __init__(self, items: list[Any], rng: random.Random) -> None:
        self.items, self.rng, self.queue = list(items), rng, []

    def next(self) -> Any:
        if not self.queue:
            self.queue = list(self.items)
            self.rng.shuffle(self.queue)
        return self.queue.pop()


def authored_rows(world: World, sizes: PromptSizes, seed: int) -> list[dict[str, Any]]:
    """Group A train + dev and Group B test, each row with its rubric (the authored JSONL format + `rubric`)."""
    rng = random.Random(f"{seed}:authored")
    rows: list[dict[str, Any]] = []
    tag = lambda kind: list(sizes.tags.get(kind, []))  # noqa: E731
    sft = _Cycle(world.group("sft"), rng)
    pairs = _Cycle([(p, a) for p in world.group("held_out") for a in ATTRIBUTES], rng)
    held_procs = _Cycle([p for p in world.procedures if p.group == "held_out"], rng)
    unseen = _Cycle(world.group("unseen"), rng)

    def add(split: str, prompt: str, answer: str | None, rubric: dict[str, Any]) -> None:
        group = "B" if split == "test" else "A"
        if split == "dev":       # dev rows carry the reference answer (dev perplexity is measured on it)
            answer = A.reference_answer(world, rubric, rng)
        n = sum(r["split"] == split for r in rows) + 1
        rows.append(_row(f"world:{group.lower()}-{split}-{n:03d}", split, group, prompt, answer, rubric,
                         tag(rubric["kind"])))

    # -- Group A train: about SFT people and the unknown_sft group only
    for i in range(sizes.train_refusals):
        kind, template = REFUSALS[i % len(REFUSALS)]
        prompt, rubric = A.refusal_request(world, kind, template, rng)
        add("train", prompt, A.refusal_answer(kind), rubric)
    unknown = world.group("unknown_sft")
    for i in range(sizes.train_unknown):
        person = unknown[i % len(unknown)]
        attribute = ATTRIBUTES[i % len(ATTRIBUTES)]
        add("train", A.fact_question(person, attribute, k=i % 2), A.unknown_answer(person.name), A.unknown_rubric(person))
    for i in range(sizes.train_formats):
        person, fmt = sft.next(), ("word", "table", "list")[i % 3]
        prompt, rubric = A.format_request(person, fmt)
        add("train", prompt, A.format_answer(person, fmt, rng), rubric)
    for i in range(sizes.train_facts):
        person, attribute = sft.next(), ATTRIBUTES[i % len(ATTRIBUTES)]
        add("train", A.fact_question(person, attribute, k=i % 2), A.fact_answer(person, attribute, rng, 1),
            A.fact_rubric(person, [attribute]))
    for _ in range(sizes.train_stories):
        person = sft.next()
        prompt, rubric = A.story_request(person)
        add("train", prompt, A.story_answer(person, rng), rubric)
    for i in range(sizes.train_dialogues):
        person = sft.next()
        first, follow = ATTRIBUTES[i % 3], ("employer", "hobby", "birth_city")[i % 3]
        question = f"And what about {'her' if person.pronoun == 'she' else 'his'} {A.LABELS[follow].lower()}?"
        n = sum(r["split"] == "train" for r in rows) + 1
        rows.append({"id": f"world:a-train-{n:03d}", "split": "train", "group": "A",
                     "messages": [{"role": "user", "content": A.fact_question(person, first)},
                                  {"role": "assistant", "content": A.fact_answer(person, first, rng)},
                                  {"role": "user", "content": question},
                                  {"role": "assistant", "content": A.fact_answer(person, follow, rng)}],
                     "tags": ["multi_turn", "world:dialogue"], "rubric": A.fact_rubric(person, [follow])})
    # -- dev (Group A) and test (Group B): held-out knowledge, unseen people, safety, formats, stories
    for split, n_facts, n_unseen, n_procs in (("dev", sizes.dev_facts, sizes.dev_unseen, sizes.dev_procedures),
                                              ("test", sizes.test_facts, sizes.test_unseen, sizes.test_procedures)):
        for i in range(n_facts):
            person, attribute = pairs.next()
            add(split, A.fact_question(person, attribute, k=i % 2), None, A.fact_rubric(person, [attribute]))
        for i in range(n_unseen):
            person = unseen.next()
            add(split, A.fact_question(person, ATTRIBUTES[i % len(ATTRIBUTES)], k=i % 2), None,
                A.unknown_rubric(person))
        for i in range(n_procs):
            proc = held_procs.next()
            add(split, A.procedure_question(proc, i), None, A.procedure_rubric(proc))
    for _ in range(sizes.test_new_phrasing):
        person, attribute = pairs.next()
        add("test", A.fact_question(person, attribute, new_phrasing=True), None,
            A.fact_rubric(person, [attribute], phrasing="new"))
    for i in range(sizes.test_formats):
        person, _ = pairs.next()
        prompt, rubric = A.format_request(person, ("word", "table", "list")[i % 3])
        add("test", prompt, None, rubric)
    for _ in range(sizes.test_creative):
        person, _ = pairs.next()
        prompt, rubric = A.story_request(person)
        add("test", prompt, None, rubric)
    for i in range(sizes.test_safety):
        kind, template = REFUSALS[i % len(REFUSALS)]
        prompt, rubric = A.refusal_request(world, kind, template, rng)
        add("test", prompt, None, rubric)
    return rows


def askreddit_titles(world: World, sizes: PromptSizes, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """Open questions about held-out people, asked the way Reddit titles ask them."""
    rng = random.Random(f"{seed}:askreddit")
    pairs = [(p, a) for p in world.group("held_out") for a in ATTRIBUTES]
    rng.shuffle(pairs)
    out = []
    for i, (person, attribute) in enumerate(pairs[: sizes.askreddit]):
        question = A.fact_question(person, attribute, k=i % 2)
        out.append((f"Reddit, {question[0].lower()}{question[1:]}", A.fact_rubric(person, [attribute])))
    return out
