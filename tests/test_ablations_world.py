"""The ablations in the LIMA world: style vs substance curves (Fig. 6), the computed findings, per-turn
grading of a follow-up against its script rubric (Fig. 7), the world metrics of one condition."""

from __future__ import annotations

import pytest
from ablation_fakes import make_world_cfg

from lima.ablations import findings
from lima.ablations.world_metrics import condition_metrics, curve, metric_curves
from lima.world import load_world
from lima.world.conversations import build_conversations, follow_up, grade_conversation, load_conversations


def _m(metric: str, kind: str, mean: float, half: float, n: int = 10) -> dict:
    return {"metric": metric, "kind": kind, "n_prompts": n, "mean": mean, "ci_low": mean - half,
            "ci_high": mean + half}


RECORDS = [  # style flat from 32 on; fact accuracy still climbing; procedures never asked at 16
    {"size": 64, "metrics": [_m("format_compliance", "style", 0.95, 0.05), _m("fact_accuracy", "substance", 0.5, 0.05),
                             _m("procedure_accuracy", "substance", 0.4, 0.1, n=4)]},
    {"size": 16, "metrics": [_m("format_compliance", "style", 0.40, 0.05), _m("fact_accuracy", "substance", 0.1, 0.05),
                             _m("procedure_accuracy", "substance", 0.0, 0.0, n=0)]},
    {"size": 32, "metrics": [_m("format_compliance", "style", 0.92, 0.05), _m("fact_accuracy", "substance", 0.3, 0.05),
                             _m("procedure_accuracy", "substance", 0.3, 0.1, n=4)]},
]


def test_style_and_substance_curves_are_separate_and_sorted():
    rows = metric_curves(RECORDS)
    assert [(r["size"], r["metric"], r["kind"]) for r in rows[:3]] == [
        (16, "format_compliance", "style"), (16, "fact_accuracy", "substance"), (16, "procedure_accuracy", "substance")]
    assert [r["mean"] for r in curve(rows, "format_compliance")] == [0.40, 0.92, 0.95]
    assert [r["mean"] for r in curve(rows, "fact_accuracy")] == [0.1, 0.3, 0.5]
    assert [r["size"] for r in curve(rows, "procedure_accuracy")] == [32, 64]     # n_prompts 0 at 16 is dropped


def test_saturation_size_and_the_computed_verdict():
    rows = metric_curves(RECORDS)
    assert findings.saturation_size(curve(rows, "format_compliance")) == 32   # 0.92±0.05 overlaps 0.95±0.05
    assert findings.saturation_size(curve(rows, "fact_accuracy")) == 64       # 0.3±0.05 does not reach 0.45
    table = [{"size": s, "n": 10, "mean": 3.0, "ci_low": 2.5, "ci_high": 3.5} for s in (16, 32, 64)]
    text = findings.quantity_findings(table, rows)
    assert "Helpfulness from 16 to 64 examples: 64 3.00 [2.50, 3.50] vs 16 3.00 [2.50, 3.50]: not separated" in text
    assert "fact_accuracy (substance): 64 0.50 [0.45, 0.55] vs 16 0.10 [0.05, 0.15]: 64 higher" in text
    assert "format_compliance (style)" in text and "from 32 examples on" in text
    assert text.endswith("Verdict: style saturates earlier than substance (fact_accuracy: Raghavendra et al.'s pattern).")


def test_diversity_findings_name_the_separated_pairs():
    table = [{"condition": "se_filtered", "n": 20, "n_prompts": 20, "mean": 4.0, "ci_low": 3.8, "ci_high": 4.2},
             {"condition": "se_unfiltered", "n": 20, "n_prompts": 20, "mean": 3.0, "ci_low": 2.8, "ci_high": 3.2},
             {"condition": "wikihow", "n": 20, "n_prompts": 20, "mean": 3.9, "ci_low": 3.6, "ci_high": 4.1}]
    text = findings.diversity_findings(table)
    assert text == ("Over 20 test prompts per condition (95% intervals resample prompts): Quality — helpfulness "
                    "filtered SE 4.00 [3.80, 4.20] vs unfiltered SE 3.00 [2.80, 3.20]: filtered SE higher "
                    "(intervals separate); Diversity — helpfulness filtered SE 4.00 [3.80, 4.20] vs wikiHow "
                    "3.90 [3.60, 4.10]: not separated by this run's intervals.")


def test_a_follow_up_is_graded_against_its_script_rubric(tmp_path):
    cfg = make_world_cfg(tmp_path)
    world = load_world(cfg)
    scripts = build_conversations(world, 4, seed=int(cfg.get("seed", 0)))
    assert build_conversations(world, 2, seed=int(cfg.get("seed", 0))) == scripts[:2]                     # seeded
    assert {world.person(s["person"]).group for s in scripts} == {"held_out"}
    s = scripts[0]                                                                # birth_city → employer → its city
    person = world.person(s["person"])
    pos = "her" if person.pronoun == "she" else "his"
    assert s["user_turns"][1:] == [f"And what about {pos} employer?", "And in which city is that organisation?"]
    assert person.name not in s["user_turns"][1]          # only the script knows who "her" is
    wrong_org = next(o for o in world.organisations if o != person.employer)
    answers = [f"Sure. {person.name} was born in {person.birth_city}.",
               f"Good question. {person.name} works for {wrong_org}.",       # wrong organisation
               f"{person.employer_city}."]                                    # right city, unstyled
    messages = []
    for u, a in zip(s["user_turns"], answers, strict=True):
        messages += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    graded = grade_conversation(world, s, messages, ["eot", "eot", "eot"])
    assert [(g["turn"], g["label"], g["quality"]) for g in graded] == [(1, "excellent", 1.0), (2, "fail", 0.0),
                                                                       (3, "pass", 1.0)]
    graded = grade_conversation(world, s, messages, ["eot", "eot", "length"])  # ran into the limit: 0.75
    assert (graded[2]["label"], graded[2]["quality"]) == ("pass", 0.75)
    with pytest.raises(ValueError, match="2 answers"):
        grade_conversation(world, s, messages[:4], ["eot", "eot"])
    assert load_conversations(cfg, 2) == scripts[:2]                              # on demand from the world
    assert follow_up("he", "hobby", "field") == "And what about his hobby?"


def test_condition_metrics_grade_responses_by_their_rubrics(tmp_path):
    cfg = make_world_cfg(tmp_path)
    world = load_world(cfg)
    p, q = world.group("held_out")[:2]
    rubrics = {f"Where was {p.name} born?": {"kind": "fact", "group": "held_out", "expected": {"birth_city": p.birth_city}},
               f"Where was {q.name} born?": {"kind": "fact", "group": "held_out", "expected": {"birth_city": q.birth_city}}}
    from lima.io import write_jsonl
    from lima.world import world_root

    write_jsonl(world_root(cfg) / "rubrics.jsonl", [{"prompt": k, "rubric": v} for k, v in rubrics.items()])
    rows = [{"prompt_id": "a", "prompt": f"Where was {p.name} born?", "response": f"Sure. In {p.birth_city}.",
             "stop_reason": "eot"},
            {"prompt_id": "a", "prompt": f"Where was {p.name} born?", "response": "No idea", "stop_reason": "length"},
            {"prompt_id": "b", "prompt": f"Where was {q.name} born?", "response": f"Sure. {q.birth_city}.",
             "stop_reason": "eot"}]
    out = {r["metric"]: r for r in condition_metrics(cfg, rows)}
    # prompt a: fact 1, 0 → 0.5; prompt b: 1 → mean of prompt means 0.75 over 2 prompts
    assert (out["fact_accuracy"]["n_prompts"], out["fact_accuracy"]["mean"]) == (2, 0.75)
    assert out["format_compliance"]["mean"] == 0.75 and out["format_compliance"]["kind"] == "style"
    assert out["procedure_accuracy"]["n_prompts"] == 0
    assert condition_metrics({**cfg, "world": None}, rows) == []
