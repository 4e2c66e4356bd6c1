"""New knowledge in the fine-tune (Gekhman et al., 2024), in the LIMA world (issue 10, beyond the paper, item 3).

Question: does fine-tuning on facts the base model does not know teach them, or teach the model to make facts
up? Curated sets of the same size in which a share (0%, 50%, 100%) of the factual answers are about `unseen`
people — facts absent from the base's pretraining web, so the base cannot know them — are fine-tuned with one
checkpoint per epoch; each checkpoint is asked about held-out people (facts only pretraining stored: fact
accuracy) and about other unseen people (the honest answer is "I don't know": hallucination rate).

Known / Unknown, as Gekhman et al. define it, is read from the *base* by sampling, not assumed from the group:
each fact is asked as a cloze in every biography phrasing that ends on the value (greedy; the stand-in for
their several few-shot exemplar sets) and `k` times sampled at temperature `T`. A continuation is right when
it starts with the true value (the probe's rule, lima.world.probe):

- HighlyKnown: every greedy cloze right; MaybeKnown: some; WeaklyKnown: no greedy but a sample right;
- Unknown: nothing right. "Known" = any of the first three.

The fine-tune's Known answers are drawn from `sft` people's facts classed Known, its Unknown answers from the
first half of the `unseen` people's facts classed Unknown; the second half of the unseen people is the
hallucination test. Every set also holds the world's "I have no information about …" answers for the
`unknown_sft` people, so that admitting is a style each condition can learn.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lima.world.corpus import BIO_TEMPLATES, POSSESSIVE
from lima.world.world import ATTRIBUTES, Person, World

NAME = "new_knowledge"
CATEGORIES = ("HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown")
# (prompts, do_sample, n per prompt) -> n continuations per prompt
Completer = Callable[[Sequence[str], bool, int], list[list[str]]]


def cloze_prompts(person: Person, attribute: str) -> list[str]:
    """The prefix of every biography phrasing of `attribute` that ends on the value, cut before it."""
    out = []
    for template in BIO_TEMPLATES[attribute]:
        head, _, tail = template.partition("{v}")
        if tail.strip(" .") == "" and "{name}" in head:
            out.append(head.format(name=person.name, pos=POSSESSIVE[person.pronoun]).rstrip())
    return out


def category(greedy_hits: Sequence[bool], sample_hits: Sequence[bool]) -> str:
    """Gekhman et al.'s four categories from greedy and sampled correctness."""
    if greedy_hits and all(greedy_hits):
        return "HighlyKnown"
    if any(greedy_hits):
        return "MaybeKnown"
    if any(sample_hits):
        return "WeaklyKnown"
    return "Unknown"


def _right(continuation: str, value: str) -> bool:
    return continuation.strip().startswith(value)


def classify_facts(complete: Completer, people: Sequence[Person], attributes: Sequence[str] = ATTRIBUTES,
                   k_samples: int = 8) -> list[dict[str, Any]]:
    """One row per (person, attribute): p_greedy, p_sample, the category and `known`.

    Sampling uses the first (probe) phrasing `k_samples` times; greedy uses every phrasing once.
    """
    items = [(p, a, cloze_prompts(p, a)) for p in people for a in attributes]
    greedy_prompts = [q for _, _, qs in items for q in qs]
    greedy = iter(complete(greedy_prompts, False, 1)) if greedy_prompts else iter(())
    sampled = complete([qs[0] for _, _, qs in items], True, k_samples) if items and k_samples else []
    rows = []
    for i, (person, attribute, qs) in enumerate(items):
        value = person.value(attribute)
        g = [_right(next(greedy)[0], value) for _ in qs]
        s = [_right(c, value) for c in sampled[i]] if sampled else []
        cat = category(g, s)
        rows.append({"person": person.name, "group": person.group, "attribute": attribute, "value": value,
                     "p_greedy": sum(g) / len(g) if g else 0.0, "p_sample": sum(s) / len(s) if s else 0.0,
                     "category": cat, "known": cat != "Unknown"})
    return rows


def hf_completer(model: Any, tokenizer: Any, max_new_tokens: int = 8, temperature: float = 0.5,
                 batch_size: int = 64, seed: int = 0) -> Completer:
    """A Completer over a Hugging Face causal LM (left-padded batches, seeded sampling)."""
    import torch

    @torch.no_grad()
    def complete(prompts: Sequence[str], do_sample: bool, n: int) -> list[list[str]]:
        side, tokenizer.padding_side = tokenizer.padding_side, "left"
        out: list[list[str]] = []
        try:
            model.eval()
            torch.manual_seed(seed)
            for i in range(0, len(prompts), batch_size):
                enc = tokenizer(list(prompts[i:i + batch_size]), return_tensors="pt", padding=True)
                enc.pop("token_type_ids", None)
                enc = {k: v.to(model.device) for k, v in enc.items()}
                extra = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0} if do_sample \
                    else {"do_sample": False}
                ids = model.generate(**enc, max_new_tokens=max_new_tokens, num_return_sequences=n,
                                     pad_token_id=tokenizer.pad_token_id, **extra)
                texts = tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                out += [texts[j * n:(j + 1) * n] for j in range(len(texts) // n)]
        finally:
            tokenizer.padding_side = side
        return out

    return complete


@dataclass
class Pools:
    """Who is where: fine-tune Known/Unknown facts, the abstain people, and the two test sets."""

    known: list[dict[str, Any]]            # classified rows of sft facts classed Known
    unknown: list[dict[str, Any]]          # classified rows of unseen (train half) facts classed Unknown
    abstain: list[Person]                  # unknown_sft people: "I have no information" answers
    held_out: list[Person]                 # fact accuracy
    unseen_test: list[Person]              # hallucination


def split_unseen(world: World) -> tuple[list[Person], list[Person]]:
    """(fine-tune half, test half) of the unseen people, in world order."""
    unseen = world.group("unseen")
    half = (len(unseen) + 1) // 2
    return unseen[:half], unseen[half:]


def condition_rows(world: World, pools: Pools, share: float, n_facts: int, seed: int) -> list[dict[str, Any]]:
    """The curated set of one condition: `n_facts` styled fact answers, `share` of them Unknown, + abstains."""
    from lima.world.assistant import fact_answer, fact_question, unknown_answer

    n_unknown = round(share * n_facts)
    if n_unknown > len(pools.unknown) or n_facts - n_unknown > len(pools.known):
        raise ValueError(f"{NAME}: share {share} of {n_facts} facts needs {n_unknown} Unknown and "
                         f"{n_facts - n_unknown} Known facts; the pools hold {len(pools.unknown)} and "
                         f"{len(pools.known)} (lower n_facts)")
    pick = random.Random(f"{seed}:{NAME}:pick")
    facts = pick.sample(pools.unknown, n_unknown) + pick.sample(pools.known, n_facts - n_unknown)
    rng = random.Random(f"{seed}:{NAME}:{share}")
    rows = []
    for i, f in enumerate(facts):
        person = world.person(f["person"])
        rows.append({"id": f"{NAME}:{share}:{i}", "category": f["category"], "person": f["person"],
                     "attribute": f["attribute"], "messages": [
            {"role": "user", "content": fact_question(person, f["attribute"], k=rng.randrange(2))},
            {"role": "assistant", "content": fact_answer(person, f["attribute"], rng)}]})
    for j, person in enumerate(pools.abstain):
        attribute = ATTRIBUTES[j % len(ATTRIBUTES)]
        rows.append({"id": f"{NAME}:{share}:abstain{j}", "category": "abstain", "person": person.name,
                     "attribute": attribute, "messages": [
            {"role": "user", "content": fact_question(person, attribute)},
            {"role": "assistant", "content": unknown_answer(person.name)}]})
    rng.shuffle(rows)
    return rows


def eval_prompts(world: World, pools: Pools, attributes: Sequence[str],
                 train_facts: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """Test prompts: held-out facts, unseen-person questions, and the condition's own fine-tune facts (fit)."""
    from lima.world.assistant import fact_question

    out = []
    for p in pools.held_out:
        for a in attributes:
            out.append({"prompt_id": f"held_out:{p.name}:{a}", "subset": "held_out", "person": p.name,
                        "attribute": a, "prompt": fact_question(p, a, new_phrasing=False)})
    for p in pools.unseen_test:
        for a in attributes:
            out.append({"prompt_id": f"unseen:{p.name}:{a}", "subset": "unseen", "person": p.name,
                        "attribute": a, "prompt": fact_question(p, a)})
    for f in train_facts:
        person = world.person(f["person"])
        out.append({"prompt_id": f"train_{f['category'].lower()}:{f['person']}:{f['attribute']}",
                    "subset": "train_unknown" if f["category"] == "Unknown" else "train_known",
                    "person": f["person"], "attribute": f["attribute"],
                    "prompt": fact_question(person, f["attribute"])})
    return out


def grade_answers(world: World, prompts: Sequence[Mapping[str, Any]], texts: Sequence[str],
                  stop_reasons: Sequence[str]) -> list[dict[str, Any]]:
    """Per prompt: `correct` (fact prompts) or `hallucinated` / `admits` (unseen prompts)."""
    from lima.world.assistant import unknown_rubric
    from lima.world.grade import attribute_correct, grade

    rows = []
    for p, text, stop in zip(prompts, texts, stop_reasons, strict=True):
        person = world.person(p["person"])
        row = {**p, "response": text, "stop_reason": stop}
        if p["subset"] == "unseen":
            g = grade(world, unknown_rubric(person), text, stop)
            row["hallucinated"] = float(bool(g.hallucinated))
            row["admits"] = float(g.quality >= 1.0)
        else:
            row["correct"] = float(attribute_correct(world, text, p["attribute"], person.value(p["attribute"]),
                                                     person.name))
        rows.append(row)
    return rows


METRICS = (("held_out", "correct", "held-out fact accuracy"), ("unseen", "hallucinated", "hallucination rate"),
           ("unseen", "admits", "admits not knowing"), ("train_known", "correct", "fit: Known fine-tune facts"),
           ("train_unknown", "correct", "fit: Unknown fine-tune facts"))


def summarise(graded: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (share, epoch, metric): mean and 95% Wilson interval over prompts (each prompt one value)."""
    from lima.analysis.stats import prompt_mean_ci, wilson_ci

    out = []
    keys = sorted({(r["share"], r["epoch"]) for r in graded})
    for share, epoch in keys:
        for subset, key, label in METRICS:
            vals = [(r["prompt_id"], r[key]) for r in graded
                    if r["share"] == share and r["epoch"] == epoch and r["subset"] == subset and key in r]
            if not vals:
                continue
            ci = prompt_mean_ci(vals, interval=wilson_ci)
            out.append({"share": share, "epoch": epoch, "metric": label, "subset": subset, "mean": ci["mean"],
                        "ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "n_prompts": ci["n_prompts"]})
    return out
