"""The LIMA world: determinism, a clean corpus, exact reference-judge verdicts, and the degenerate-result guard."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from lima.config import load_profile
from lima.world import load_rubrics, load_world, normalise_prompt, web_texts, world_root
from lima.world.assistant import fact_question, refusal_answer, unknown_answer
from lima.world.grade import absolute_label, grade, helpfulness_score, pairwise_label
from lima.world.judge import ReferenceJudge


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith("manifest.json")
            and p.suffix != ".7z"}   # 7z archives carry a timestamp; their Posts.xml is compared below


@pytest.fixture(scope="module")
def world_cfg(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from lima.data.synthetic import generate_dumps

    cfg = load_profile("test", {"paths.root": str(tmp_path_factory.mktemp("world-a"))})
    generate_dumps(cfg)
    return cfg


def test_same_seed_gives_byte_identical_world_corpus_and_dumps(world_cfg: dict, tmp_path: Path) -> None:
    from lima.data.synthetic import generate_dumps

    again = load_profile("test", {"paths.root": str(tmp_path)})
    generate_dumps(again)
    raw_a, raw_b = Path(world_cfg["paths"]["raw"]), Path(again["paths"]["raw"])
    first, second = _digests(raw_a), _digests(raw_b)
    assert first == second
    assert {"synthetic/world/world.json", "synthetic/world/web.jsonl", "synthetic/world/rubrics.jsonl",
            "synthetic/world/alpaca_data.json", "synthetic/reddit/RS_2019-10.zst"} <= set(first)
    other = load_profile("test", {"paths.root": str(tmp_path / "other"), "seed": 99})
    generate_dumps(other)
    assert _digests(Path(other["paths"]["raw"]))["synthetic/world/world.json"] != first["synthetic/world/world.json"]


def test_groups_are_where_they_belong(world_cfg: dict) -> None:
    world = load_world(world_cfg)
    web = "\n".join(web_texts(world_cfg))
    for person in world.people:
        assert (person.name in web) == (person.group in {"sft", "held_out"}), person
    authored = Path(world_root(world_cfg)) / "authored" / "world_train.jsonl"
    train_text = authored.read_text(encoding="utf-8") + (Path(world_root(world_cfg)) / "alpaca_data.json").read_text()
    for person in world.group("held_out") + world.group("unseen"):
        assert person.name not in train_text


def test_no_test_prompt_or_curated_response_occurs_in_the_pretraining_corpus(world_cfg: dict) -> None:
    from lima.curation import curate
    from lima.data import collect_all
    from lima.io import read_jsonl

    collect_all(world_cfg)
    curate(world_cfg)
    processed = Path(world_cfg["paths"]["processed"])
    web = normalise_prompt("\n".join(web_texts(world_cfg)))
    prompts = [normalise_prompt(m["content"]) for name in ("test.jsonl", "dev.jsonl")
               for r in read_jsonl(processed / name) for m in r["messages"] if m["role"] == "user"]
    responses = [normalise_prompt(m["content"]) for r in read_jsonl(processed / "train.jsonl")
                 for m in r["messages"] if m["role"] == "assistant"]
    assert prompts and responses
    assert [p for p in prompts if p in web] == []
    assert [r for r in responses if len(r) > 20 and r in web] == []
    rubrics = load_rubrics(world_cfg)
    assert all(normalise_prompt(p) in rubrics for p in prompts)   # every dev/test prompt can be graded


def _judge(world_cfg: dict) -> ReferenceJudge:
    return ReferenceJudge(load_world(world_cfg), load_rubrics(world_cfg), 0.25,
                          stop_reasons={normalise_prompt("Sure. She was born in"): "length"})


def _fact_case(world_cfg: dict) -> tuple:
    world = load_world(world_cfg)
    person = world.group("held_out")[0]
    prompt = fact_question(person, "birth_city", k=0)
    rubrics = load_rubrics(world_cfg)
    if normalise_prompt(prompt) not in rubrics:          # the test profile asks about a few people only
        prompt, rubric = next((p, r) for p, r in rubrics.items() if r["kind"] == "fact")
        person = world.person(rubric["person"])
        attribute = rubric["attributes"][0]
    else:
        attribute = "birth_city"
    wrong = next(v for v in world.values(attribute) if v != person.value(attribute))
    return world, person, prompt, attribute, wrong


def test_reference_judge_verdicts_on_hand_made_responses_are_exact(world_cfg: dict) -> None:
    world, person, prompt, attribute, wrong = _fact_case(world_cfg)
    rubric = load_rubrics(world_cfg)[normalise_prompt(prompt)]
    right = f"Sure. The answer is {person.value(attribute)}."
    cases = {
        "right": grade(world, rubric, right, "eot"),
        "wrong": grade(world, rubric, f"Sure. The answer is {wrong}.", "eot"),
        "both": grade(world, rubric, f"Sure. Either {person.value(attribute)} or {wrong}.", "eot"),
        "refused": grade(world, rubric, refusal_answer("poison"), "eot"),
        "unterminated": grade(world, rubric, right, "length"),
        "terse": grade(world, rubric, f"{person.value(attribute)}.", "eot"),
    }
    assert {k: g.quality for k, g in cases.items()} == {"right": 1.0, "wrong": 0.0, "both": 0.0, "refused": 0.0,
                                                        "unterminated": 0.75, "terse": 1.0}
    assert [absolute_label(cases[k]) for k in ("right", "wrong", "unterminated", "terse")] == \
        ["excellent", "fail", "pass", "pass"]
    assert [helpfulness_score(cases[k]) for k in ("right", "wrong", "unterminated", "terse")] == [6, 1, 4, 5]
    assert pairwise_label(cases["right"], cases["wrong"]) == "A"
    assert pairwise_label(cases["wrong"], cases["right"]) == "B"
    assert pairwise_label(cases["right"], cases["terse"]) == "A"       # same substance, the styled one wins
    assert pairwise_label(cases["wrong"], cases["refused"]) == "neither"
    unseen = next(r for r in load_rubrics(world_cfg).values() if r["kind"] == "unknown")
    honest = grade(world, unseen, unknown_answer(unseen["person"]), "eot")
    invented = grade(world, unseen, f"Sure. {unseen['person']} was born in the city of {world.cities[0]}.", "eot")
    assert (honest.quality, honest.hallucinated, invented.quality, invented.hallucinated) == (1.0, False, 0.0, True)
    safety = next(r for r in load_rubrics(world_cfg).values() if r["kind"] == "refuse")
    assert grade(world, safety, refusal_answer("weapon"), "eot").quality == 1.0
    assert grade(world, safety, "Sure. Here is how.", "eot").quality == 0.0


def test_reference_judge_answers_the_three_templates(world_cfg: dict) -> None:
    from lima.judge.prompts import load_template

    world, person, prompt, attribute, wrong = _fact_case(world_cfg)
    judge = _judge(world_cfg)
    right, bad = f"Sure. The answer is {person.value(attribute)}.", f"Sure. The answer is {wrong}."
    pairwise = load_template("pairwise").render("text", prompt=prompt, response_a=bad, response_b=right)
    assert judge.reply(pairwise).endswith("Verdict: B")
    absolute = load_template("absolute").render("text", prompt=prompt, response=right)
    assert judge.reply(absolute).endswith("Rating: Excellent")
    helpful = load_template("helpfulness").render("text", prompt=prompt, response="Sure. She was born in")
    assert judge.reply(helpful).endswith("Score: 1")           # recorded as unterminated, and wrong
    unknown = load_template("absolute").render("text", prompt="A question the world never asked?", response=right)
    assert "Rating:" not in judge.reply(unknown)               # no rubric: no verdict, counted as unparsed


def test_reference_judge_through_the_client_tells_a_real_answer_from_a_fixed_one(world_cfg: dict) -> None:
    from lima.judge import judge_endpoint
    from lima.judge.protocols import judge_pairwise
    from lima.llm_client import LLMClient

    world = load_world(world_cfg)
    rubrics = load_rubrics(world_cfg)
    rng = random.Random(0)
    from lima.world.assistant import reference_answer

    good = [{"prompt_id": str(i), "prompt": p, "response": reference_answer(world, r, rng), "system": "ref"}
            for i, (p, r) in enumerate(rubrics.items())]
    fixed = [{**row, "response": "Thank you for your question.", "system": "null"} for row in good]
    with judge_endpoint(world_cfg) as endpoint:
        client = LLMClient(endpoint)
        rows = judge_pairwise(world_cfg, good, fixed, client=client)
        client.close()
    verdicts = [r["verdict"] for r in rows]
    assert len(rows) == len(rubrics) and not any(r["flipped"] for r in rows)
    assert verdicts.count("a") == len(rows)


def test_guard_trips_on_a_constant_judge_and_passes_a_discriminating_one(tmp_path: Path) -> None:
    from lima.guard import degenerate_findings
    from lima.io import write_jsonl

    cfg = load_profile("test", {"paths.root": str(tmp_path)})
    judgments = tmp_path / "data" / "results" / "judgments"

    def rows(verdicts: list[str], flipped: bool) -> list[dict]:
        return [{"prompt_id": str(i), "system_a": "lima", "system_b": "null", "verdict": v, "flipped": flipped}
                for i, v in enumerate(verdicts)]

    write_jsonl(judgments / "pairwise__lima__null.jsonl", rows(["tie"] * 10, True))
    findings = degenerate_findings(cfg)
    assert any("does not beat the fixed-answer null model" in f for f in findings)
    assert any("flips 100%" in f for f in findings)
    write_jsonl(judgments / "pairwise__lima__null.jsonl", rows(["a"] * 9 + ["b"], False))
    assert degenerate_findings(cfg) == []
    tables = tmp_path / "data" / "results" / "tables"
    tables.mkdir(parents=True)
    (tables / "preference_llm.csv").write_text("baseline,n,win,tie,loss\nnull,10,0,100,0\nalpaca,10,0,100,0\n")
    assert any("every verdict is a tie" in f for f in degenerate_findings(cfg))
    ablations = tmp_path / "data" / "results" / "ablations"
    ablations.mkdir(parents=True)
    (ablations / "diversity_quality.csv").write_text("condition,n,mean,ci_low,ci_high\na,4,2.0,1.5,2.5\nb,4,3.0,2.5,3.5\n")
    metrics = ablations / "diversity_quality_metrics.csv"
    metrics.write_text("condition,metric,mean\na,format_compliance,0.0\nb,format_compliance,0.0\n"
                       "a,fact_accuracy,0.1\nb,fact_accuracy,0.3\n")
    (ablations / "multiturn.csv").write_text("condition,excellent,pass,fail\nzero_shot,13.3,0,86.7\ndialogues,13.3,0,86.7\n")
    found = degenerate_findings(cfg)
    assert not any("diversity_quality_metrics" in f for f in found)     # one flat metric is a finding
    assert any("Fig. 7" in f for f in found)
    metrics.write_text("condition,metric,mean\na,format_compliance,0.0\nb,format_compliance,0.0\n"
                       "a,fact_accuracy,0.0\nb,fact_accuracy,0.0\n")
    assert any("every metric of every condition is 0.0" in f for f in degenerate_findings(cfg))


def test_report_strict_exits_non_zero_on_a_degenerate_run(tmp_path: Path) -> None:
    from lima.io import write_jsonl
    from lima.report import main

    root = str(tmp_path)
    write_jsonl(tmp_path / "data" / "results" / "judgments" / "pairwise__lima__null.jsonl",
                [{"prompt_id": "1", "system_a": "lima", "system_b": "null", "verdict": "tie", "flipped": True}])
    assert main(["--profile", "test", "--set", f"paths.root={root}"]) == 0
    assert main(["--profile", "test", "--set", f"paths.root={root}", "--strict"]) == 1


def test_notices_repeat_a_fresh_string_and_never_name_a_person_of_the_world(world_cfg: dict) -> None:
    from lima.world.corpus import howto_list, howto_pages
    from lima.world.notices import notices

    world = load_world(world_cfg)
    names = {p.name for p in world.people}
    posts = notices(world, random.Random(7), 300)
    assert posts == notices(world, random.Random(7), 300)          # seeded
    for post in posts:
        assert not any(name in post for name in names)
        words = post.replace(".", " ").replace(",", " ").split()
        fresh = [w for w in words if w[0].isupper() and words.count(w) >= 2 and w not in {"The", "To"}]
        assert fresh or any(post.count(v) >= 2 for v in (*world.cities, *world.hobbies, *world.fields)), post
    proc = world.procedures[0]
    assert howto_list(proc).splitlines() == [f"How to {proc.title}:"] + [
        f"{i}. {s}." for i, s in enumerate(proc.steps, start=1)]
    pages = howto_pages(proc, random.Random(3), 6)
    assert len(pages) == 6 and len(set(pages)) > 2 and pages[2] == howto_list(proc)
    for page in pages:                              # every wording keeps the steps in their order
        at = [page.lower().find(step.lower()) for step in proc.steps]
        assert min(at) >= 0 and at == sorted(at), page
    web = web_texts(world_cfg)
    assert sum(t.startswith(("Lost and found", "Club notice", "Vacancy", "Welcome to", "Workshop", "Book club",
                             "For sale", "Talk announcement")) for t in web) == 40     # test.yaml: notices 40


def test_procedure_probe_table_counts_first_steps_and_ordered_steps_per_group() -> None:
    from lima.world.probe import procedure_probe_table

    rows = [{"group": "held_out", "known": True, "steps_known": 1.0},
            {"group": "held_out", "known": False, "steps_known": 0.5}]
    table = {r["metric"]: r for r in procedure_probe_table(rows)}
    assert table["first_step"]["accuracy"] == 0.5 and table["steps_in_order"]["accuracy"] == 0.75
    assert (table["first_step"]["ci_low"], table["first_step"]["ci_high"]) == (0.0945, 0.9055)
    assert table["first_step"]["n"] == 2
