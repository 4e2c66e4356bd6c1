"""The world's "Alpaca-style" instruction set: many short template-generated pairs, terser, with errors.

Alpaca-52k was made by prompting a model to write instructions and answers in bulk: many examples, short
answers, no curation, a share of them wrong. This is the same recipe in the world: several thousand
instruction/response pairs about SFT people and procedures (never held-out ones), bare answers without the
taught style, and a documented `error_rate` of answers that state a wrong value. It is written in Alpaca's
own JSON format (`instruction`, `input`, `output`), so the Alpaca baseline trains through the same loader a
real `alpaca_data.json` goes through.
"""

from __future__ import annotations

import random
from typing import Any

from lima.world import assistant as A
from lima.world.world import ATTRIBUTES, World

_INSTRUCTIONS = {
    "birth_city": "Name the birth city of {name}.", "birth_year": "Give the birth year of {name}.",
    "field": "State the field of {name}.", "employer": "Name the employer of {name}.",
    "employer_city": "Name the city where {name} works.", "hobby": "State the hobby of {name}.",
}


def alpaca_records(world: World, n: int, error_rate: float, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(f"{seed}:alpaca")
    people = world.group("sft")
    procedures = [p for p in world.procedures if p.group == "sft"]
    out: list[dict[str, Any]] = []
    for i in range(n):
        wrong = rng.random() < error_rate
        if i % 10 == 9:
            proc = rng.choice(procedures)
            steps = list(proc.steps)
            if wrong:
                rng.shuffle(steps)
            out.append({"instruction": f"List the steps to {proc.title}.", "input": "",
                        "output": "\n".join(f"{k}. {s}." for k, s in enumerate(steps, start=1))})
            continue
        person, attribute = rng.choice(people), rng.choice(ATTRIBUTES)
        value = person.value(attribute)
        if wrong:
            value = rng.choice([v for v in world.values(attribute) if v != value])
        if i % 3 == 0:   # a plain question, as half of Alpaca's instructions are
            instruction = A.fact_question(person, attribute, k=rng.randrange(2))
        else:
            instruction = _INSTRUCTIONS[attribute].format(name=person.name)
        out.append({"instruction": instruction, "input": "", "output": f"{value}."})
    return out
