"""What the world's dumps say: Stack Exchange Q&A, WritingPrompts, AskReddit, wikiHow, SNI and authored rows.

`lima.data.synthetic` writes these in the real formats; the readers and the curation run on them unchanged.
Only SFT-group people and procedures appear in anything that can reach the fine-tune; held-out people are asked
about only in the test prompts (AskReddit titles, authored Group B), unseen people only in the test.

Stack Exchange answers vary in quality, and the score follows quality with noise (`WorldConfig.score_noise`):
a *good* answer is correct, complete and in the assistant style; a *terse* one is correct but bare; a *wrong*
one states a wrong value in the same confident style. The world assumes, like the paper's score ≥ 10 filter,
that votes mostly reward quality; `docs/world.md` says what that assumption buys.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from lima.world import assistant as A
from lima.world.world import ATTRIBUTES, Person, Procedure, World

EXTRA_FACTS = 1     # a good answer states the asked fact and one more (measured on held-out people, greedy:
                    # 0.51 with one extra fact, 0.14 with none — a bare fact teaches too little of the style)


@dataclass
class Answer:
    quality: str               # good | terse | wrong
    text: str
    score: int


def _score(quality: str, rng: random.Random, noise: float) -> int:
    """Votes reward quality, with noise: a `noise` share of answers get a score drawn for another quality."""
    if rng.random() < noise:
        quality = rng.choice(["good", "terse", "wrong"])
    low, high = {"good": (12, 90), "terse": (2, 14), "wrong": (-3, 9)}[quality]
    return rng.randint(low, high)


def _wrong_person(person: Person, world: World, rng: random.Random, attribute: str) -> Person:
    values = [v for v in world.values(attribute) if v != person.value(attribute)]
    wrong = rng.choice(values)
    fake = Person(**{**person.__dict__})
    setattr(fake, attribute, int(wrong) if attribute == "birth_year" else wrong)
    return fake


def person_answers(person: Person, attribute: str, world: World, rng: random.Random,
                   noise: float) -> list[Answer]:
    good = A.fact_answer(person, attribute, rng, extra_facts=EXTRA_FACTS)
    terse = person.value(attribute) + "."
    wrong = A.fact_answer(_wrong_person(person, world, rng, attribute), attribute, rng, extra_facts=1)
    return [Answer(q, t, _score(q, rng, noise)) for q, t in (("good", good), ("terse", terse), ("wrong", wrong))]


def procedure_answers(procedure: Procedure, world: World, rng: random.Random, noise: float) -> list[Answer]:
    good = A.procedure_answer(procedure, rng)
    shuffled = list(procedure.steps)
    while shuffled == procedure.steps:
        rng.shuffle(shuffled)
    terse = "; ".join(procedure.steps[:-1]) + "."
    wrong = A.procedure_answer(procedure, rng, steps=shuffled)
    return [Answer(q, t, _score(q, rng, noise)) for q, t in (("good", good), ("terse", terse), ("wrong", wrong))]


def se_threads(world: World, rng: random.Random, n: int, noise: float) -> list[dict[str, Any]]:
    """`n` question threads about SFT people (two thirds) and SFT procedures (one third)."""
    people, procedures = world.group("sft"), [p for p in world.procedures if p.group == "sft"]
    threads = []
    for i in range(n):
        if i % 3 == 2:
            proc = procedures[(i // 3) % len(procedures)]
            title = A.procedure_question(proc, i)
            body = f"<p>I want to {proc.title} properly. What are the steps, in order?</p>"
            threads.append({"title": title, "body": body, "answers": procedure_answers(proc, world, rng, noise)})
        else:
            person = people[(i - i // 3) % len(people)]
            attribute = ATTRIBUTES[(i * 5 + i // len(people)) % len(ATTRIBUTES)]
            title = A.fact_question(person, attribute, k=i % 2)
            body = f"<p>I keep reading about {person.name}. {title}</p>"
            threads.append({"title": title, "body": body,
                            "answers": person_answers(person, attribute, world, rng, noise)})
    return threads


def writing_prompts(world: World, rng: random.Random, n: int) -> list[tuple[str, list[str]]]:
    """(premise, [story comments]) about SFT people: the stories honour every constraint of the premise."""
    out = []
    for i in range(n):
        person = world.group("sft")[i % len(world.group("sft"))]
        premise, _ = A.story_request(person)
        out.append((premise, [A.story_answer(person, rng, styled=False), f"{person.hobby} is overrated."]))
    return out


def wikihow_articles(world: World, rng: random.Random) -> list[tuple[str, str, str]]:
    """(title, headline, text) per SFT procedure, in wikiHow's numbered-step layout."""
    out = []
    for proc in (p for p in world.procedures if p.group == "sft"):
        title = f"How to {proc.title[0].upper()}{proc.title[1:]}"
        headline = "\n".join(f"{s}." for s in proc.steps)
        text = "\n".join(f"{s}. Take your time with this step, and check the result before moving on."
                         for s in proc.steps)
        out.append((title, headline, text))
    return out


def sni_tasks(world: World, rng: random.Random, n_tasks: int, per_task: int) -> list[tuple[str, str, str, list]]:
    """(name, category, definition, [(input, [output])]) generation tasks on world text about SFT people."""
    people = world.group("sft")

    def bio(p: Person) -> str:
        return " ".join(A.fact_sentence(p, a) for a in ATTRIBUTES)

    kinds = [
        ("extract_employer", "Information Extraction", "Read the biography and give the name of the employer.",
         lambda p: (bio(p), [f"The employer is {p.employer}."])),
        ("extract_birth_city", "Information Extraction", "Read the biography and give the birth city.",
         lambda p: (bio(p), [f"The birth city is {p.birth_city}."])),
        ("summarise_biography", "Summarization", "Summarise the biography in one sentence.",
         lambda p: (bio(p), [f"{p.name} is an expert in {p.field} from {p.birth_city} who works for {p.employer}."])),
        ("list_to_sentence", "Data to Text", "Turn the list of facts into one sentence.",
         lambda p: (f"name: {p.name}; hobby: {p.hobby}; field: {p.field}",
                    [f"{p.name} works in the field of {p.field} and loves {p.hobby}."])),
    ]
    tasks = []
    for t in range(n_tasks):
        name, category, definition, make = kinds[t % len(kinds)]
        instances = [make(rng.choice(people)) for _ in range(per_task)]
        tasks.append((f"{name}_{t // len(kinds)}", category, definition, instances))
    return tasks
