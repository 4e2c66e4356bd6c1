"""The world's "web": the plain-prose pretraining corpus of the LIMA world's base model.

Never the chat/EOT format, never a test prompt, never a curated response: only the facts. Physics of LMs 3.1
found that one fixed biography per person stores knowledge that fine-tuning cannot extract, while several
differently worded biographies with shuffled sentence order make it extractable; `style="augmented"` (the
default) writes those, `style="single"` writes the control of issue 10 (one random phrasing per person, fixed
order, pronouns after the first mention). Forum threads, organisation pages, how-to pages and stories are what
real pretraining text has beside biographies; they use their own phrasings, which no test prompt shares.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from lima.world.notices import notices
from lima.world.world import ATTRIBUTES, Person, Procedure, World

# Five phrasings per attribute; the first of each ends on the value and doubles as the cloze probe.
BIO_TEMPLATES: dict[str, list[str]] = {
    "birth_city": ["{name} was born in the city of {v}.", "The birthplace of {name} is {v}.",
                   "{name} came into the world in {v}.", "{name}'s home town is {v}.",
                   "{v} is the city where {name} was born."],
    "birth_year": ["{name} was born in the year {v}.", "The year of birth of {name} is {v}.",
                   "{name} arrived in {v}, the year of {pos} birth.", "{name}'s birth year is {v}.",
                   "In {v}, {name} was born."],
    "field": ["{name} works in the field of {v}.", "The profession of {name} is {v}.",
              "{name} has spent {pos} whole career in {v}.", "{name} is an expert in {v}.",
              "{v} is the subject that {name} made {pos} life's work."],
    "employer": ["{name} is employed by {v}.", "The employer of {name} is {v}.", "{name} works for {v}.",
                 "{name} holds a position at {v}.", "{v} is where {name} earns a living."],
    "employer_city": ["{name} goes to work every day in {v}.", "The workplace of {name} is in the city of {v}.",
                      "{name} commutes to an office in {v}.", "{name}'s job is located in {v}.",
                      "{v} is the city where {name} works."],
    "hobby": ["In {pos} free time, {name} enjoys {v}.", "The favourite pastime of {name} is {v}.",
              "{name} loves {v}.", "{name} spends weekends on {v}.", "{v} is the hobby of {name}."],
}
POSSESSIVE = {"she": "her", "he": "his"}


def cloze(person: Person, attribute: str) -> tuple[str, str]:
    """(prefix, answer) of the probe sentence: the first phrasing cut just before the value."""
    template = BIO_TEMPLATES[attribute][0]
    prefix = template.split("{v}")[0].format(name=person.name, pos=POSSESSIVE[person.pronoun])
    return prefix.rstrip(), person.value(attribute)


def bio_sentence(person: Person, attribute: str, k: int, use_pronoun: bool) -> str:
    pos = POSSESSIVE[person.pronoun]
    text = BIO_TEMPLATES[attribute][k].format(name=person.name, v=person.value(attribute), pos=pos)
    if use_pronoun:
        subject = person.pronoun.capitalize()
        text = (text.replace(f"{person.name}'s", pos.capitalize() if text.startswith(person.name) else pos)
                .replace(person.name, subject if text.startswith(person.name) else person.pronoun))
    return text


def biography(person: Person, rng: random.Random, pronouns: bool, shuffle: bool, phrasing: int | None) -> str:
    """One biography: six sentences, one per attribute, each in a random (or the given) phrasing."""
    order = list(ATTRIBUTES)
    if shuffle:
        rng.shuffle(order)
    sentences = []
    for i, attribute in enumerate(order):
        k = phrasing if phrasing is not None else rng.randrange(len(BIO_TEMPLATES[attribute]))
        sentences.append(bio_sentence(person, attribute, k, use_pronoun=pronouns and i > 0))
    return " ".join(sentences)


_FORUM = [
    ("Thread: {name}", "Somebody told me that {name} is into {hobby}. Can anybody confirm that?",
     "Confirmed. {name} is employed by {employer}, and {name} spends weekends on {hobby}."),
    ("Thread: meeting {name}", "I am going to meet {name} next week and know nothing about {pos} background.",
     "{name} was born in {birth_city} in the year {birth_year} and works in the field of {field}."),
    ("Thread: {employer} staff", "Who are the people working for {employer} these days?",
     "{name} holds a position at {employer}. The office is in {employer_city}."),
    ("Thread: experts in {field}", "Looking for people who know a lot about {field}.",
     "{name} is an expert in {field}, and {name} works for {employer} in {employer_city}."),
]
# Question-and-answer threads: how people ask about someone on a forum, and the reply that answers. Their
# question shapes are the web's own (none is a test or fine-tuning prompt); the reply refers to the person by
# pronoun, as forum replies do. Physics of LMs 3.1: question/answer text in pretraining is what makes stored
# facts extractable by questions later.
_QA_POSTS: dict[str, list[str]] = {
    "birth_city": ["Does anybody know the birthplace of {name}?", "Which town does {name} come from originally?"],
    "birth_year": ["Does anybody know the birth year of {name}?", "How old is {name}, which year was that?"],
    "field": ["Does anybody know what {name} works on?", "What kind of expert is {name}?"],
    "employer": ["Does anybody know the employer of {name}?", "Which company pays {name}?"],
    "employer_city": ["Does anybody know where the office of {name} is?", "Which city does {name} commute to?"],
    "hobby": ["Does anybody know what {name} does for fun?", "Any idea what {name} does at the weekend?"],
}
QA_PER_PERSON = 3

_STORY = [
    "One spring morning, {name} left {birth_city} for {employer_city}. The new job at {employer} was waiting, "
    "and {name} had brought along everything needed for {hobby}.",
    "Long before {name} became known for {field}, {name} was a child in {birth_city} who spent hours on {hobby}.",
]


def forum_thread(person: Person, rng: random.Random) -> str:
    subject, post, reply = rng.choice(_FORUM)
    slots = {a: person.value(a) for a in ATTRIBUTES} | {"name": person.name, "pos": POSSESSIVE[person.pronoun]}
    return "\n".join(part.format(**slots) for part in (subject, post, reply))


def qa_thread(person: Person, attribute: str, rng: random.Random) -> str:
    post = rng.choice(_QA_POSTS[attribute]).format(name=person.name)
    return f"Question: {post}\nReply: {bio_sentence(person, attribute, 0, use_pronoun=True)}"


def story(person: Person, rng: random.Random) -> str:
    slots = {a: person.value(a) for a in ATTRIBUTES} | {"name": person.name}
    return rng.choice(_STORY).format(**slots)


_HOWTO_INTROS = ["A guide to how you {title}.", "Here is how to {title}.", "Many people ask how to {title}.",
                 "If you want to {title}, this is the way.", "The right way to {title}."]
_HOWTO_LINKS = [["First,", "After that,", "Next,", "Finally,"], ["Start:", "Then", "Then", "Last of all,"],
                ["To begin,", "Second,", "Third,", "To finish,"]]


def howto_cloze(procedure: Procedure) -> tuple[str, str]:
    """(prefix, answer) of the procedure probe: the first intro and link, cut before the first step."""
    prefix = f"{_HOWTO_INTROS[0].format(title=procedure.title)} {_HOWTO_LINKS[0][0]}"
    first = procedure.steps[0]
    return prefix, f"{first[0].lower()}{first[1:]}"


def howto_page(procedure: Procedure, rng: random.Random) -> str:
    """A how-to page in running prose, in a random wording (wikiHow's numbered articles are the dump's)."""
    links = rng.choice(_HOWTO_LINKS)
    parts = [rng.choice(_HOWTO_INTROS).format(title=procedure.title)]
    for i, step in enumerate(procedure.steps):
        link = links[-1] if i == len(procedure.steps) - 1 else links[min(i, len(links) - 2)]
        parts.append(f"{link} {step[0].lower()}{step[1:]}.")
    return " ".join(parts)


def howto_list(procedure: Procedure) -> str:
    """The numbered how-to page: the title, then one line per step in order."""
    lines = [f"How to {procedure.title}:"]
    lines += [f"{i}. {step}." for i, step in enumerate(procedure.steps, start=1)]
    return "\n".join(lines)


def howto_pages(procedure: Procedure, rng: random.Random, n: int) -> list[str]:
    """`n` pages about one procedure — the steps always in order, the wording varied, every third one a numbered
    list — for the reason biographies are augmented: one page per procedure left the base unable to continue
    its own page (first step right for 3% of the procedures; measured)."""
    return [howto_list(procedure) if k % 3 == 2 else howto_page(procedure, rng) for k in range(max(1, n))]


def organisation_page(org: str, city: str) -> str:
    return f"{org} is an organisation based in {city}. The main office of {org} is in {city}."


def web_documents(world: World, seed: int, style: str = "augmented", bios_per_person: int = 6,
                  n_notices: int = 0, howtos_per_procedure: int = 1) -> Iterator[str]:
    """Every document of the web, in a seeded order. `style`: augmented | single (the extractability control,
    which changes the biographies only). `n_notices`: copy-teaching posts (lima.world.notices)."""

    if style not in {"augmented", "single"}:
        raise ValueError(f"world.corpus_style must be 'augmented' or 'single', not {style!r}")
    rng = random.Random(f"{seed}:web:{style}")
    docs: list[str] = []
    for person in world.people:
        if person.group not in {"sft", "held_out"}:
            continue            # unseen and unknown_sft people appear nowhere in pretraining
        if style == "single":
            docs.append(biography(person, rng, pronouns=True, shuffle=False,
                                  phrasing=rng.randrange(len(BIO_TEMPLATES["birth_city"]))))
            continue
        for k in range(bios_per_person):
            docs.append(biography(person, rng, pronouns=k % 3 == 2, shuffle=True, phrasing=None))
        docs.append(forum_thread(person, rng))
        for attribute in rng.sample(ATTRIBUTES, QA_PER_PERSON):
            docs.append(qa_thread(person, attribute, rng))
        if rng.random() < 0.3:
            docs.append(story(person, rng))
    for procedure in world.procedures:
        docs.extend(howto_pages(procedure, rng, howtos_per_procedure))
    docs.extend(notices(world, rng, n_notices))
    for org, city in world.organisations.items():
        docs.append(organisation_page(org, city))
    rng.shuffle(docs)
    yield from docs
