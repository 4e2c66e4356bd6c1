"""Leakage: every training file (train, multi-turn, the unfiltered pool, ablation pools) against dev and test, every
user turn; `leakage_action: fail` stops curation before anything is written, and stops an ablation pool."""

from __future__ import annotations

import json

import pytest
from curation_fixtures import authored, write_interim

from lima.config import load_profile
from lima.curation import curate
from lima.curation.cli import main as curate_main
from lima.curation.leakage import LeakageError, check_files
from lima.curation.pools import make_pool
from lima.io import read_jsonl, write_jsonl

# the third user turn of dialogue authors:m0 ("Plan a trip to see volcanoes. (turn 2)"), which is only in
# train_multiturn.jsonl, reworded by punctuation: an exact hit after normalisation
LEAKED = "Plan a trip to see volcanoes (turn 2)!"


def _interim_with_a_leak(root):
    interim = write_interim(root)
    rows = read_jsonl(interim / "authored.jsonl")
    write_jsonl(interim / "authored.jsonl", [*rows, authored("authors:t00", "test", "B", LEAKED)])
    return root


def test_report_finds_a_test_prompt_in_a_later_dialogue_turn(tmp_path):
    cfg = load_profile("test_smoke", {"paths.root": str(_interim_with_a_leak(tmp_path))})
    result = curate(cfg)
    leak = json.loads((tmp_path / "data" / "processed" / "leakage_report.json").read_text())
    assert leak["hits"] == result["leakage"]["hits"] == 3 and leak["leaked_prompts"] == 1
    (hit,) = leak["exact"]
    assert (hit["id"], hit["file"], hit["train_id"], hit["train_turn"]) == \
        ("authors:t00", "train_multiturn.jsonl", "authors:m0", 4)
    # the dialogue's other turns differ by one word ("turn 0", "turn 1"): near-duplicates of the same prompt
    assert [(h["train_id"], h["train_turn"], h["jaccard"]) for h in leak["near"]] == \
        [("authors:m0", 0, 0.7143), ("authors:m0", 2, 0.7143)]   # 5 shared of 7 trigrams
    assert set(leak["files"]) == {"train.jsonl", "train_multiturn.jsonl", "pool_unfiltered.jsonl"}
    assert leak["files"]["train.jsonl"]["exact"] == 0 and leak["files"]["train_multiturn.jsonl"]["exact"] == 1
    assert leak["files"]["pool_unfiltered.jsonl"]["rows"] == result["counts"]["pool_unfiltered"]
    assert leak["n_checked"] == 11 and leak["n_checked_turns"] == 11


def test_fail_stops_the_run_and_writes_nothing(tmp_path, capsys):
    root = _interim_with_a_leak(tmp_path)
    cfg = load_profile("test_smoke", {"paths.root": str(root), "curation.leakage_action": "fail"})
    with pytest.raises(LeakageError, match=r"curation: 1 dev/test prompt\(s\) match training prompts \(1 exact, "
                                           r"2 near\): \[\('authors:t00', 'train_multiturn.jsonl', 'authors:m0'\)"):
        curate(cfg)
    assert not (root / "data" / "processed").exists()
    assert curate_main(["--profile", "test_smoke", "--set", f"paths.root={root}", "--set",
                        "curation.leakage_action=fail"]) == 1
    assert "leakage_action: fail" in capsys.readouterr().err and not (root / "data" / "processed").exists()


def test_ablation_pool_is_checked(tmp_path, caplog):
    root = tmp_path
    write_interim(root)
    cfg = load_profile("test_smoke", {"paths.root": str(root)})
    curate(cfg)
    processed = root / "data" / "processed"
    pool = make_pool(cfg, "wikihow", 8, seed=2)
    report = json.loads((processed / "leakage_pools" / "wikihow-n8-seed2.json").read_text())
    assert report["hits"] == 0 and report["files"]["wikihow-n8-seed2"]["rows"] == 8
    test = read_jsonl(processed / "test.jsonl")
    leaked = {"id": "t-leak", "source": "authors", "messages": [{"role": "user", "content": "Hello?"},
                                                                 {"role": "user", "content": pool[3]["messages"][0]["content"]}]}
    write_jsonl(processed / "test.jsonl", [*test, leaked])
    make_pool(cfg, "wikihow", 8, seed=2)   # report: logs and writes the hit
    report = json.loads((processed / "leakage_pools" / "wikihow-n8-seed2.json").read_text())
    assert [(h["id"], h["turn"], h["train_id"]) for h in report["exact"]] == [("t-leak", 1, pool[3]["id"])]
    strict = load_profile("test_smoke", {"paths.root": str(root), "curation.leakage_action": "fail"})
    with pytest.raises(LeakageError, match=r"wikihow-n8-seed2: 1 dev/test prompt"):
        make_pool(strict, "wikihow", 8, seed=2)


def test_near_duplicates_are_exact_jaccard_over_all_user_turns():
    def row(rid, *prompts):
        return {"id": rid, "messages": [{"role": r, "content": p} for p in prompts for r in ("user", "assistant")]}

    queries = [row("q", "Unrelated opener about lighthouses.",
                   "What is the capital city of Australia and why was it picked over Sydney?")]
    train = [row("t", "Hi.", "What is the capital city of Australia and why was it chosen over Sydney?"),
             row("u", "What is the capital city of Australia, and which city is larger?")]
    rep = check_files(queries, {"a.jsonl": train}, ngram=3, threshold=0.5)
    assert [(h["id"], h["turn"], h["train_id"], h["train_turn"], h["jaccard"]) for h in rep["near"]] == \
        [("q", 2, "t", 2, 0.6)]   # 9 shared of 15 trigrams; "u" shares 6 of 16 (0.375): no hit
    assert rep["n_checked_turns"] == 2 and rep["files"]["a.jsonl"] == {"rows": 2, "user_turns": 3, "exact": 0,
                                                                       "near": 1}
