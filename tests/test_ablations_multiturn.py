"""Fig. 7: scripted conversations driven turn by turn, every assistant turn rated, percentages per model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from ablation_fakes import FakeGenerator, FakeStages, make_cfg

from lima.ablations import multiturn
from lima.io import read_jsonl, write_jsonl


def _dialogue(i: int, users: list[str], split: str = "train") -> dict:
    messages = []
    for u in users:
        messages += [{"role": "user", "content": u}, {"role": "assistant", "content": f"reply to {u}"}]
    return {"id": f"authored:mt{i}", "split": split, "group": "A", "messages": messages, "tags": ["multi_turn"]}


def _setup(root: Path, held_out: bool = False, **ablations) -> dict:
    ablations.setdefault("multiturn_scripts", None)            # the authored-dialogue fallbacks
    cfg = make_cfg(root, **ablations)
    authored = [_dialogue(0, ["hi", "more", "why"]), _dialogue(1, ["plan a trip", "cheaper"]),
                {"id": "authored:x", "split": "train", "group": "A", "tags": [],
                 "messages": [{"role": "user", "content": "single"}, {"role": "assistant", "content": "turn"}]}]
    if held_out:
        authored.append(_dialogue(9, ["held", "out"], split="test"))
    write_jsonl(Path(cfg["paths"]["interim"]) / "authored.jsonl", authored)
    train = [{"id": "a", "source": "authors", "meta": {}, "messages": authored[2]["messages"]},
             *({"id": d["id"], "source": "multi_turn", "meta": {}, "messages": d["messages"]} for d in authored[:2])]
    write_jsonl(Path(cfg["paths"]["processed"]) / "train_multiturn.jsonl", train)
    write_jsonl(Path(cfg["paths"]["processed"]) / "train.jsonl", train[:1])
    lima = Path(cfg["paths"]["models"]) / "lima"
    (lima / "checkpoint-epoch-4").mkdir(parents=True)
    (lima / "selected.json").write_text(json.dumps({"path": str(lima / "checkpoint-epoch-4"), "epoch": 4}))
    return cfg


def test_drive_keeps_the_models_own_answers_and_batches_by_turn():
    gen = FakeGenerator(Path("m"))
    scripts = [{"id": "a", "user_turns": ["u1", "u2", "u3"]}, {"id": "b", "user_turns": ["v1", "v2"]}]
    played = multiturn.drive(gen, scripts)
    assert [len(c) for c in gen.calls] == [2, 2, 1]
    assert gen.calls[1][0] == [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "m: answer 1 to u1"},
                               {"role": "user", "content": "u2"}]
    assert [m["content"] for m in played[1]["messages"]] == ["v1", "m: answer 1 to v1", "v2", "m: answer 2 to v2"]
    rows = multiturn.turn_rows("zero_shot", played)
    assert [r["prompt_id"] for r in rows] == ["a#turn1", "a#turn2", "a#turn3", "b#turn1", "b#turn2"]
    assert rows[1]["prompt"] == "User: u1\n\nAssistant: m: answer 1 to u1\n\nUser: u2"
    assert rows[1]["response"] == "m: answer 2 to u2"


def test_percentages_over_rated_turns():
    out = multiturn.summarise_labels("x", ["excellent", "pass", None, "fail", "excellent"])
    assert out == {"condition": "x", "turns": 5, "excellent": 50.0, "pass": 25.0, "fail": 25.0, "unrated": 1}


def test_run_writes_the_table_and_transcripts(tmp_path):
    cfg = _setup(tmp_path)
    fakes = FakeStages(labels={"zero_shot": ["excellent", "pass", "fail", "fail"],
                               "dialogues": ["excellent", "excellent", None, "pass"]})
    out = multiturn.run(cfg, fakes.stages())
    assert out["scripts_overlap_training"] is True and out["dialogues"] == 2

    # LIMA's selected checkpoint is epoch 4 of a 5-epoch run; the recipe trains 2 (smoke multiturn_epochs): a
    # zero-shot twin is trained with the same recipe and epochs as the dialogue model (issue 10: no confound)
    twin, call = fakes.calls["finetune"]
    assert (twin["run_name"], twin["n_rows"], call["run_name"], call["n_rows"]) == (
        "multiturn_zero_shot", 1, "lima_multiturn", 3)
    assert twin["train"] == call["train"] and call["train"]["epochs"] == 2 and call["train"]["select"] == "last"
    assert call["train"]["residual_dropout"] == cfg["train"]["residual_dropout"]
    assert twin["train_file"].endswith("train.jsonl") and call["train_file"].endswith("train_multiturn.jsonl")
    assert out["epochs"] == 2 and out["zero_shot_reused_lima"] is False
    models = Path(cfg["paths"]["models"])
    assert fakes.calls["load"] == [(models / "multiturn_zero_shot" / "checkpoint-epoch-1", 48),
                                   (models / "lima_multiturn" / "checkpoint-epoch-1", 48)]

    with open(multiturn.table_path(cfg), newline="") as handle:
        rows = {r["condition"]: r for r in csv.DictReader(handle)}
    # zero-shot: e, p, f, f, e over 5 turns; dialogues: e, e, None, p, e
    assert [rows["zero_shot"][k] for k in ("turns", "excellent", "pass", "fail")] == ["5", "40.0", "20.0", "40.0"]
    assert [rows["dialogues"][k] for k in ("turns", "excellent", "pass", "fail", "unrated")] == [
        "5", "75.0", "25.0", "0.0", "1"]
    assert rows["dialogues"]["scripts_seen_in_training"] == "True"

    transcripts = read_jsonl(multiturn.transcripts_path(cfg))
    assert [(t["condition"], t["id"]) for t in transcripts] == [
        ("zero_shot", "authored:mt0"), ("zero_shot", "authored:mt1"),
        ("dialogues", "authored:mt0"), ("dialogues", "authored:mt1")]
    assert (transcripts[2]["labels"], transcripts[3]["labels"]) == (["excellent", "excellent", None], ["pass", "excellent"])
    assert transcripts[2]["messages"][1]["content"] == "checkpoint-epoch-1: answer 1 to hi"


def test_recipe_defaults_to_limas_epochs(tmp_path):
    cfg = make_cfg(tmp_path, multiturn_epochs=None)
    assert multiturn.multiturn_recipe(cfg)["train"]["epochs"] == cfg["train"]["epochs"] == 5
    assert multiturn.multiturn_recipe(make_cfg(tmp_path, multiturn_epochs=3))["train"]["epochs"] == 3


def test_lima_is_reused_only_when_it_is_the_same_run(tmp_path):
    cfg = _setup(tmp_path, multiturn_epochs=None)               # LIMA: 5 epochs, selected epoch 4 → not the same
    assert multiturn.reusable_lima(cfg) is None
    lima = Path(cfg["paths"]["models"]) / "lima"
    (lima / "checkpoint-epoch-5").mkdir()
    (lima / "selected.json").write_text(json.dumps({"path": str(lima / "checkpoint-epoch-5"), "epoch": 5}))
    assert multiturn.reusable_lima(cfg) == lima / "checkpoint-epoch-5"
    fakes = FakeStages()
    out = multiturn.run(cfg, fakes.stages())
    assert [c["run_name"] for c in fakes.calls["finetune"]] == ["lima_multiturn"]
    assert fakes.calls["finetune"][0]["train"]["epochs"] == 5 and out["zero_shot_reused_lima"] is True
    assert multiturn.reusable_lima(_setup(tmp_path / "b", multiturn_epochs=4)) is None   # 4 ≠ LIMA's 5 epochs


def test_world_scripts_are_graded_per_turn_from_their_rubrics(tmp_path):
    from ablation_fakes import make_world_cfg

    cfg = make_world_cfg(tmp_path, multiturn_scripts=None, multiturn_conversations=3)
    ref = _setup(tmp_path / "ref")                               # reuse the authored/train files of _setup
    for name in ("interim", "processed", "models"):
        import shutil

        shutil.copytree(ref["paths"][name], cfg["paths"][name], dirs_exist_ok=True)
    fakes = FakeStages()
    out = multiturn.run(cfg, fakes.stages())
    assert fakes.calls["rate"] == []                              # the judge is not asked: the script grades
    assert out["graded_by"] == "script rubric" and out["scripts_overlap_training"] is False
    # the fake answers name no world value: every turn fails its fact rubric
    for row in out["table"]:
        assert (row["turns"], row["fail"], row["excellent"], row["fail_ci_low"]) == (9, 100.0, 0.0, 100.0)
    assert [(r["turn"], r["turns"]) for r in out["by_turn"][:3]] == [(1, 3), (2, 3), (3, 3)]
    transcripts = read_jsonl(multiturn.transcripts_path(cfg))
    assert transcripts[0]["messages"][2]["content"].startswith("And what about")
    assert transcripts[0]["graded_by"] == "script rubric (lima.world.grade)"


def test_held_out_dialogues_are_preferred_and_capped(tmp_path):
    cfg = _setup(tmp_path, held_out=True, multiturn_conversations=5)
    scripts, overlap = multiturn.conversation_scripts(cfg)
    assert overlap is False and [s["id"] for s in scripts] == ["authored:mt9"]
    cfg = _setup(tmp_path / "b", multiturn_conversations=1)
    scripts, overlap = multiturn.conversation_scripts(cfg)
    assert overlap is True and [s["user_turns"] for s in scripts] == [["hi", "more", "why"]]


def test_missing_lima_model_is_a_clear_error(tmp_path):
    cfg = _setup(tmp_path)
    (Path(cfg["paths"]["models"]) / "lima" / "selected.json").unlink()
    with pytest.raises(FileNotFoundError, match="notebook 03"):
        multiturn.run(cfg, FakeStages().stages())


def test_held_out_script_file_comes_first_and_is_never_training_data(tmp_path):
    scripts_file = tmp_path / "scripts.jsonl"
    scripts_file.write_text('{"id": "s1", "user_turns": ["a", "b"]}\n{"id": "s2", "user_turns": ["c"]}\n'
                            '{"id": "s3", "user_turns": ["d"]}\n')
    cfg = _setup(tmp_path, multiturn_scripts=str(scripts_file), multiturn_conversations=2)
    scripts, overlap = multiturn.conversation_scripts(cfg)
    assert overlap is False
    assert [(s["id"], s["user_turns"]) for s in scripts] == [("s1", ["a", "b"]), ("s2", ["c"])]
    train_users = {m["content"] for r in read_jsonl(Path(cfg["paths"]["interim"]) / "authored.jsonl")
                   for m in r["messages"] if m["role"] == "user"}
    assert not train_users & {"a", "b", "c"}
