"""Notice-board posts and numbered how-to lists: the web's one-off text, continued only by copying.

Real pretraining text is full of strings that occur once — a lost item, a club's meeting place, a newcomer's
name, the thing a workshop teaches — and come back a few words later. That is where a language model learns to
copy from its context (the induction heads of Olsson et al., 2022), and an assistant needs the skill for almost
every answer: repeating the procedure, the person or the story's ingredients a request names. The world's
biographies and threads repeat *known* names, which a small model can recall instead of copy; the first world
base answered "how do I clean a Quimi still?" with the steps of another tool and wrote stories about whatever
field and city came to mind. These posts pair fresh made-up words (never a name of the world's people) and the
world's cities, fields, hobbies, organisations and tools in random combinations, so the only way to predict
the repeat is to copy it. They hold no person's fact, and no test or fine-tuning prompt shape.

`howto_list` is the second how-to page a procedure has on the web: the numbered layout how-to sites use, beside
the running-prose guide of `lima.world.corpus.howto_page`.
"""

from __future__ import annotations

import random

from lima.world.world import _ACTIONS, _TOOLS, World, _word

_NOTICES = [
    "Lost and found: a {word} {tool} was left on the train to {city}. The owner of the {word} {tool} can "
    "collect it at the station in {city}.",
    "Club notice: the {hobby} club of {city} meets every Friday evening. Anybody in {city} who enjoys {hobby} "
    "is welcome to join.",
    "Vacancy: {org} is hiring an expert in {field} for its office in {city}. Experts in {field} who would "
    "move to {city} can write to {org}.",
    "Welcome to {newcomer}, who joined the forum today. {newcomer} says hello to everyone and hopes to learn a "
    "lot about {hobby} here.",
    "Workshop notice: come and learn to {action} a {word} {tool}. To {action} a {word} {tool} well takes "
    "practice, and the teacher will show every step.",
    "Book club: this month's book follows a {hobby} fan who works in {field} and lives in {city}. Anyone who "
    "likes {hobby}, {field} or {city} will enjoy it.",
    "For sale: one {word} {tool}, hardly used, collection in {city}. Message me if the {word} {tool} is what "
    "you need.",
    "Talk announcement: {newcomer} of {org} will speak about {field} on Monday. Questions for {newcomer} can "
    "be sent in advance.",
]


def notice(world: World, rng: random.Random, taken: set[str]) -> str:
    """One post; `taken` holds the world's people's names, which a newcomer never borrows."""
    newcomer = f"{_word(rng, rng.choice([1, 2]))} {_word(rng, 2)}"
    while newcomer in taken:
        newcomer = f"{_word(rng, rng.choice([1, 2]))} {_word(rng, 2)}"
    slots = {"word": _word(rng, 2), "tool": rng.choice(_TOOLS), "action": rng.choice(_ACTIONS),
             "city": rng.choice(world.cities), "hobby": rng.choice(world.hobbies),
             "field": rng.choice(world.fields), "org": rng.choice(sorted(world.organisations)),
             "newcomer": newcomer}
    return rng.choice(_NOTICES).format(**slots)


def notices(world: World, rng: random.Random, n: int) -> list[str]:
    taken = {p.name for p in world.people}
    return [notice(world, rng, taken) for _ in range(n)]

