"""Vocabulary and sentence templates for the SYNTHETIC dumps (see lima.data.synthetic).

The text is made up: templated sentences over a small per-topic vocabulary, coherent enough for a tiny model to
learn a style from, with the HTML features real dumps have. Plain answers never contain first-person words or
references to other answers, so the curation filters decide only on the planted cases.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any


def _site(stem: bool, nouns: str, tags: str, titles: list[str]) -> dict[str, Any]:
    return {"stem": stem, "nouns": nouns.split(", "), "tags": tags.split(), "titles": titles}


_STEM_TITLES = ["How does {x} relate to {y}?", "Why is {x} defined in terms of {y}?",
                "What is the intuition behind {x}?", "When should {x} be preferred over {y}?",
                "Is there a simple way to compute {x}?", "What is the difference between {x} and {y}?"]
_OTHER_TITLES = ["What is the best way to handle {x}?", "How can {x} be combined with {y}?",
                 "Why does {x} matter for {y}?", "What should a beginner know about {x}?",
                 "Is it worth learning about {x} before {y}?", "How do people usually choose {x}?"]

SITES: dict[str, dict[str, Any]] = {
    "math": _site(True, "a group homomorphism, the determinant, a prime ideal, a convergent series, the integral, "
                  "a metric space, an eigenvalue", "linear-algebra calculus group-theory real-analysis", _STEM_TITLES),
    "physics": _site(True, "angular momentum, the wave function, entropy, a reference frame, the electric field, "
                     "a harmonic oscillator", "quantum-mechanics thermodynamics electromagnetism", _STEM_TITLES),
    "stats": _site(True, "a confidence interval, the likelihood, a random effect, the bootstrap, a prior, "
                   "the variance", "regression bayesian hypothesis-testing", _STEM_TITLES),
    "cs": _site(True, "a hash table, dynamic programming, a spanning tree, a regular language, amortised cost, "
                "a reduction", "algorithms complexity-theory data-structures", _STEM_TITLES),
    "chemistry": _site(True, "a buffer solution, an orbital, the rate constant, a catalyst, an ester, "
                       "the equilibrium constant", "organic-chemistry kinetics acid-base", _STEM_TITLES),
    "biology": _site(True, "a ribosome, natural selection, an enzyme, the cell membrane, a gene, "
                     "a neuron", "genetics evolution cell-biology", _STEM_TITLES),
    "cooking": _site(False, "a cast iron pan, sourdough starter, brown butter, a marinade, fresh pasta, "
                     "a stock", "baking sauce food-safety", _OTHER_TITLES),
    "travel": _site(False, "a layover, a rail pass, travel insurance, a visa, carry-on luggage, "
                    "a night train", "visas trains air-travel", _OTHER_TITLES),
    "english": _site(False, "the subjunctive, a dangling modifier, the Oxford comma, a phrasal verb, "
                     "the passive voice, an idiom", "grammar word-usage punctuation", _OTHER_TITLES),
    "diy": _site(False, "a circuit breaker, drywall, a shutoff valve, wood glue, a stud finder, "
                 "caulk", "electrical plumbing drywall", _OTHER_TITLES),
    "gardening": _site(False, "compost, a raised bed, tomato blight, mulch, a fruit tree, "
                       "seed starting", "vegetables pruning soil", _OTHER_TITLES),
    "music": _site(False, "a chord progression, the circle of fifths, a metronome, sight reading, "
                   "a guitar capo, syncopation", "theory guitar rhythm", _OTHER_TITLES),
    "esperanto": _site(False, "the accusative ending, a correlative, a compound word, the prefix mal, "
                       "a participle", "gramatiko vortoj", _OTHER_TITLES),
}

_SENTENCES = [
    "The key point is that {x} depends on {y} in a predictable way.",
    "A useful way to think about {x} is to start from {y} and follow the consequences.",
    "In practice, {x} behaves well as long as {y} is kept under control.",
    "Many introductions treat {x} and {y} separately, but they are closely connected.",
    "It helps to check a small example first, because {x} can hide details about {y}.",
    "The usual mistake is to assume that {x} always determines {y}.",
    "Once {x} is understood, {y} follows with very little extra work.",
    "A careful reader will notice that {x} appears again when discussing {y}.",
    "There are two common approaches, and both rely on {x} rather than {y}.",
    "The short answer is that {x} is a special case of a more general idea involving {y}.",
    "Textbooks often present {x} first, since {y} builds on it.",
    "If the details of {y} are unclear, revisiting {x} usually resolves the confusion.",
]
_FIRST_PERSON = ["I usually start with {x} because it makes {y} easier.",
                 "In my experience, {x} is the part that trips people up."]
_REFERENCE = ["As mentioned in the other answer, {x} matters more than {y}.",
              "This question was asked on Stack Exchange before, and the same reasoning about {x} applies."]


def sentence(topic: dict[str, Any], rng: random.Random, pool: list[str] | None = None) -> str:
    x, y = rng.sample(topic["nouns"], 2)
    return rng.choice(pool or _SENTENCES).format(x=x, y=y)


def paragraph(topic: dict[str, Any], rng: random.Random, n: int = 4) -> str:
    text = " ".join(sentence(topic, rng) for _ in range(n))
    return text[0].upper() + text[1:]


def question_html(topic: dict[str, Any], rng: random.Random, title: str) -> str:
    body = f"<p>{paragraph(topic, rng, 2)}</p>\n\n<p>{title} {paragraph(topic, rng, 1)}</p>\n"
    if topic["stem"] and rng.random() < 0.5:
        body += "<p>For example, with $x_n = 1/n$ the limit $\\lim_{n\\to\\infty} x_n = 0$ holds.</p>\n"
    return body


def _features(topic: dict[str, Any], rng: random.Random, stem: bool) -> list[str]:
    x, y = rng.sample(topic["nouns"], 2)
    parts = [f"<ul>\n<li>Start from {x}.</li>\n<li>Compare it with {y}.</li>\n<li>Check the edge cases.</li>\n</ul>",
             f'<p>A longer discussion is in <a href="https://example.org/synthetic/{rng.randint(1, 999)}" '
             f'rel="nofollow">this reference</a>, and a diagram is below.</p>\n<p><img src="https://i.example.org/'
             f'{rng.randint(1, 999)}.png" alt="diagram"></p>',
             f"<blockquote>\n<p>{sentence(topic, rng)}</p>\n</blockquote>"]
    if stem:
        parts.append("<p>Written out, $$E = \\sum_{k=1}^{n} a_k x^k$$ and the bound $|E| \\le n \\max_k |a_k|$ "
                     "follows.</p>")
        parts.append('<pre class="lang-py prettyprint-override"><code>def total(values):\n    result = 0\n'
                     '    for v in values:\n        result += v  # accumulate &amp; return\n    return result\n'
                     "</code></pre>")
    else:
        parts.append("<pre><code>step 1: prepare\nstep 2: check &lt;twice&gt;\nstep 3: finish\n</code></pre>")
    rng.shuffle(parts)
    return parts


def answer_html(topic: dict[str, Any], rng: random.Random, kind: str | None, stem: bool) -> str:
    """An answer whose plain-text length / wording makes it pass or fail exactly one curation filter."""
    target = {"short": rng.randint(350, 950), "long": rng.randint(4700, 6500)}.get(kind or "", rng.randint(1500, 3300))
    blocks = [f"<p>{paragraph(topic, rng, 3)}</p>"]
    if kind == "first_person":
        blocks.append(f"<p>{sentence(topic, rng, _FIRST_PERSON)} {paragraph(topic, rng, 2)}</p>")
    if kind == "reference":
        blocks.append(f"<p>{sentence(topic, rng, _REFERENCE)} {paragraph(topic, rng, 2)}</p>")
    features = _features(topic, rng, stem) if kind != "short" else []
    length = sum(len(b) for b in blocks)
    while length < target:
        block = features.pop() if features and rng.random() < 0.5 else f"<p>{paragraph(topic, rng, 3)}</p>"
        blocks.append(block)
        length += len(block) * (0.75 if "<" in block[3:] else 1.0)
    return "\n\n".join(blocks) + "\n"


# ---- Reddit ----
WP_PREMISES = ["A lighthouse keeper discovers the light has been guiding something other than ships.",
               "Every person gets {n} words to speak in a lifetime, and today a child spends the last one.",
               "The last library on Earth receives a visitor who has never seen a book.",
               "A time traveller keeps arriving exactly one minute too late.",
               "The moon sends a polite letter asking humanity to stop staring.",
               "A robot gardener is the only one left to tend a city park.",
               "Two rival wizards are forced to share a small apartment.",
               "The map shows a town that nobody remembers building."]
_STORY = ["The night was quiet when {hero} first noticed it.", "Nobody believed {hero}, of course.",
          "{hero} counted to {n} and opened the door.", "The wind carried a sound that did not belong there.",
          "For a long moment nothing happened at all.", "Then, slowly, the world began to answer back.",
          "{hero} smiled, because the answer had been obvious from the start.",
          "Some stories end; this one simply paused to catch its breath."]
_HEROES = ["Mara", "the old keeper", "Tomas", "a tired clerk", "Ilse", "the youngest sister"]


def story(premise: str, rng: random.Random) -> str:
    hero = rng.choice(_HEROES)
    paras = [" ".join(rng.choice(_STORY).format(hero=hero, n=rng.randint(3, 99)) for _ in range(rng.randint(3, 6)))
             for _ in range(rng.randint(3, 6))]
    return "\n\n".join(p[0].upper() + p[1:] for p in paras)


WP_TWISTS = ["Nobody else seems to notice.", "It happens every year on the same day.", "Only children can see it.",
             "The town council holds an emergency meeting.", "It starts during a thunderstorm.",
             "A cat is the first to understand.", "The whole thing is broadcast live.", "It is all a misunderstanding.",
             "The narrator is the last to find out.", "Tell it as a series of letters.", "It ends with a wedding.",
             "Tell it from the point of view of a teapot."]
ASK_SUBJECTS = ["teachers", "nurses", "chefs", "programmers", "parents", "travellers", "students", "gardeners",
                "musicians", "librarians", "drivers", "retirees"]
ASK_TITLES = ["What is a skill everyone should learn before turning thirty?",
              "What small habit improved your life the most?",
              "What is the best advice you have ever received?",
              "What is something that is cheap but makes a big difference?",
              "Which historical event would you most like to witness?",
              "What is a book that changed the way you think?",
              "What job would you do if money were not an issue?",
              "What is an underrated city worth visiting?",
              "How do you stay motivated when learning something hard?",
              "What is a common myth that most people still believe?",
              "What is the most useful thing you learned in school?",
              "What hobby is surprisingly rewarding?"]
ASK_FORMS = ["{subject}, what is the best advice you have ever received?", "{subject}, what surprised you most?",
             "What do {subject} wish everyone knew?", "What is the hardest part of life for {subject}?",
             "{subject}, what small habit improved your life the most?", "What mistake do new {subject} often make?"]


def ask_titles(rng: random.Random, n: int) -> list[str]:
    """n distinct self-contained AskReddit-style titles."""
    forms = [f.format(subject=s) for f in ASK_FORMS for s in ASK_SUBJECTS] + ASK_TITLES
    titles = rng.sample(forms, k=min(n, len(forms)))
    return [t[0].upper() + t[1:] for t in titles] + [f"What is your favourite thing number {i}?" for i in range(n - len(titles))]


def wp_premises(rng: random.Random, n: int) -> list[str]:
    """n distinct prompt premises (premise x twist)."""
    pairs = [(p, w) for p in WP_PREMISES for w in WP_TWISTS]
    chosen = rng.sample(pairs, k=min(n, len(pairs)))
    return [f"{p} {w}".format(n=rng.randint(2, 900)) for p, w in chosen] + [f"Story number {i}." for i in range(n - len(chosen))]

# ---- wikiHow ----
WIKIHOW_TOPICS: list[tuple[str, str, list[str]]] = [
    ("Bake", "Sourdough Bread", ["the starter", "the dough", "the oven", "the crust"]),
    ("Train", "a Puppy", ["the puppy", "a treat", "the leash", "a short session"]),
    ("Budget", "for a Vacation", ["the budget", "a savings account", "the flights", "the hotel"]),
    ("Paint", "a Room", ["the roller", "painter's tape", "the primer", "the walls"]),
    ("Learn", "Guitar Chords", ["the fretboard", "a chord chart", "the strings", "daily practice"]),
    ("Write", "a Cover Letter", ["the opening paragraph", "the job description", "the résumé", "the closing"]),
    ("Grow", "Tomatoes", ["the seedlings", "the soil", "a stake", "the compost"]),
    ("Change", "a Car Tire", ["the jack", "the lug nuts", "the spare tire", "the wheel"]),
    ("Meditate", "for Beginners", ["the breath", "a quiet room", "a timer", "the posture"]),
    ("Clean", "a Laptop Keyboard", ["the keys", "compressed air", "a soft cloth", "the laptop"]),
    ("Plan", "a Birthday Party", ["the guest list", "the invitations", "the cake", "the venue"]),
    ("Improve", "Your Running Endurance", ["the pace", "a rest day", "the long run", "good shoes"]),
    ("Make", "New Friends at Work", ["a coworker", "the lunch break", "a shared project", "small talk"]),
    ("Study", "for an Exam", ["the notes", "a study schedule", "practice questions", "the syllabus"]),
    ("Care", "for a Houseplant", ["the pot", "the watering can", "indirect light", "the leaves"]),
    ("Celebrate", "Lunar New Year", ["the decorations", "a family dinner", "red envelopes", "the holiday"]),
]
_STEPS = ["Prepare {a} before starting, so nothing is rushed later.", "Check {a} carefully and adjust {b} if needed.",
          "Give {a} enough time; hurrying usually makes {b} harder.", "Keep {a} within reach while working on {b}.",
          "Repeat the process with {a} until {b} looks right.", "Clean up {a} afterwards to make the next time easier."]


def wikihow_text(title: str, nouns: list[str], rng: random.Random, this_article: bool) -> str:
    intro = (f"This article explains {title[0].lower() + title[1:]}, step by step." if this_article
             else f"Learning {title[7:].lower()} is easier than it looks.")
    steps = []
    for _ in range(rng.randint(8, 16)):
        a, b = rng.sample(nouns, 2)
        step = rng.choice(_STEPS).format(a=a, b=b)
        if rng.random() < 0.15:
            step += " See [this guide](https://www.wikihow.com/Synthetic-Guide) for more."
        if rng.random() < 0.1:
            step += ' <img src="https://www.wikihow.com/images/synthetic.jpg" alt="step">'
        steps.append(step[0].upper() + step[1:])
    return intro + "\n" + "\n".join(steps)


# ---- Super-NaturalInstructions ----
_SUBJ = ["The committee", "A small bakery", "The river", "Our neighbour", "The new library", "A group of students"]
_VERB = ["announced a plan to", "decided to", "was asked to", "quietly began to", "finally agreed to"]
_OBJ = ["renovate the old station", "open on Sundays", "plant trees along the road", "share its records",
        "hold a public meeting", "reduce its energy use"]


def _sent(rng: random.Random) -> str:
    return f"{rng.choice(_SUBJ)} {rng.choice(_VERB)} {rng.choice(_OBJ)}."


Maker = Callable[[random.Random], tuple[str, list[str]]]


def _gen(kind: str) -> Maker:
    def make(rng: random.Random) -> tuple[str, list[str]]:
        text = " ".join(_sent(rng) for _ in range(3))
        first = text.split(".")[0] + "."
        outputs = {"summary": first, "title": first.rstrip(".").title()[:60], "question": f"What did {first[0].lower() + first[1:-1]}?"}
        return text, [outputs.get(kind, f"In other words: {first}")]
    return make


def _cls(rng: random.Random) -> tuple[str, list[str]]:
    return _sent(rng), [rng.choice(["positive", "negative"])]


SNI_GEN_TASKS: list[tuple[str, str, str, Maker]] = [
    (f"synthetic_{name}", cat, f"In this task you are given a short text. {instr}", _gen(kind))
    for name, cat, instr, kind in [
        ("news_summarization", "Summarization", "Write a one-sentence summary of it.", "summary"),
        ("headline_generation", "Title Generation", "Write a title for it.", "title"),
        ("question_generation", "Question Generation", "Write a question answered by it.", "question"),
        ("paraphrasing", "Paraphrasing", "Rewrite its first sentence with different words.", "other"),
        ("simplification", "Text Simplification", "Rewrite it in simpler language.", "other"),
        ("formal_to_informal", "Style Transfer", "Rewrite it in an informal style.", "other"),
        ("dialogue_reply", "Dialogue Generation", "Write the next turn of a dialogue about it.", "other"),
        ("story_continuation", "Story Composition", "Continue it as a short story.", "other"),
        ("sentence_composition", "Sentence Composition", "Combine its sentences into one.", "other"),
        ("data_to_text", "Data to Text", "Describe the facts it contains in a sentence.", "other"),
        ("question_rewriting", "Question Rewriting", "Turn its first sentence into a question.", "question"),
        ("text_completion", "Text Completion", "Complete its last sentence.", "other"),
        ("explanation", "Explanation", "Explain why the first event might have happened.", "other"),
        ("poem_generation", "Poem Generation", "Write a two-line poem inspired by it.", "other"),
        ("abstract_summarization", "Summarization", "Summarise it for a busy reader.", "summary"),
        ("caption_generation", "Title Generation", "Write a short caption for it.", "title"),
        ("keyword_tagging_rewrite", "Paraphrasing", "Paraphrase it in one sentence.", "other"),
        ("letter_writing", "Story Composition", "Write a short letter about it.", "other"),
    ]
]
SNI_OTHER_TASKS: list[tuple[str, str, str, Maker]] = [
    (f"synthetic_{name}", cat, "Classify the sentiment of the sentence as positive or negative.", _cls)
    for name, cat in [("sentiment", "Sentiment Analysis"), ("toxicity", "Toxic Language Detection"),
                      ("entailment", "Textual Entailment"), ("answerability", "Answerability Classification"),
                      ("coherence", "Coherence Classification"), ("spam", "Spam Classification"),
                      ("grammar_check", "Grammar Error Detection")]
]
