"""curate() end to end on hand-built interim files: split composition, outputs, reports, pools, CLI."""

from __future__ import annotations

import json

import pytest
from curation_fixtures import write_interim

from lima.config import load_profile
from lima.curation import curate
from lima.curation.pools import make_pool
from lima.curation.sampling import ShortfallError


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cur")
    write_interim(root)
    cfg = load_profile("test_smoke", {"paths.root": str(root)})
    return cfg, curate(cfg), root / "data" / "processed"


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_split_composition(run):
    cfg, result, processed = run
    assert result["counts"]["train"] == 5 + 5 + 5 + 4 + 2 + 5
    assert result["counts"]["dev"] == 3 and result["counts"]["test"] == 3 + 5
    assert result["counts"]["train_multiturn"] == 26 + 2
    assert result["counts"]["by_source"] == {
        "train/stackexchange_stem": 5, "train/stackexchange_other": 5, "train/wikihow": 5,
        "train/writingprompts": 4, "train/nlp": 2, "train/authors": 5, "dev/authors": 3, "test/askreddit": 3,
        "test/authors": 5}
    train = _read(processed / "train.jsonl")
    sources = {r["source"] for r in train}
    assert sources == {"stackexchange", "wikihow", "writingprompts", "nlp", "authors"}
    se = [r for r in train if r["source"] == "stackexchange"]
    assert all(r["meta"]["domain"] in {"stem", "other"} and r["meta"]["license"] and r["meta"]["url"] for r in se)
    assert all(r["meta"]["prompt_from"] in {"title", "body"} for r in se)
    assert all([m["role"] for m in r["messages"]] == ["user", "assistant"] for r in train)
    assert sum("safety" in r["meta"].get("tags", []) for r in train if r["source"] == "authors") == 1
    assert not any(r["id"] == "reddit:wp0" for r in train)  # not accepted
    test = _read(processed / "test.jsonl")
    assert all(len(r["messages"]) == 1 and r["messages"][0]["role"] == "user" for r in test)
    assert [r["source"] for r in test].count("askreddit") == 3
    assert "reddit:ar1" not in {r["id"] for r in test}
    multi = _read(processed / "train_multiturn.jsonl")
    assert [len(r["messages"]) for r in multi if r["source"] == "multi_turn"] == [6, 6]
    wh = [r for r in train if r["source"] == "wikihow"]
    assert all(r["messages"][0]["content"].endswith("?") for r in wh)
    wp = [r for r in train if r["source"] == "writingprompts"]
    assert all(not r["messages"][0]["content"].startswith("[WP]") for r in wp)


def test_reports_tables_and_determinism(run, tmp_path):
    cfg, result, processed = run
    report = json.loads((processed / "curation_report.json").read_text())
    coffee = report["filters"]["sites"]["coffee"]
    # se:coffee:8's bad title is not checked: under seed 1234 its body is the prompt (issue 11)
    assert coffee["removed"]["first_person"] == 2 and coffee["removed"]["title"] == 0 and coffee["kept"] == 4
    assert report["unknown_sites"] == ["brandnewsite.stackexchange.com"]
    assert set(report["site_probabilities"]["stem"]) == {"math", "physics"}
    assert report["shortfalls"] == {}
    leak = json.loads((processed / "leakage_report.json").read_text())
    assert leak["hits"] == 0 and leak["n_checked"] == 11
    table = result["table1"]
    assert list(table.columns) == ["split", "source", "count", "input_tokens", "output_tokens", "input_chars",
                                   "output_chars", "paper_count", "paper_input_tokens", "paper_output_tokens",
                                   "token_unit"]
    assert table.loc[table.source == "wikihow", "paper_output_tokens"].item() == 1811
    assert "proxy" in table.token_unit.iloc[0]
    assert (processed / "table1.md").read_text().startswith("## Table 1 (profile test")
    for name in ("train.jsonl", "table1.csv", "curation_report.json"):
        assert (processed / f"{name}.manifest.json").exists()
    before = _read(processed / "train.jsonl")
    again = curate(load_profile("test_smoke", {"paths.root": str(processed.parent.parent)}))
    assert _read(processed / "train.jsonl") == before  # same seed, same rows (ids, prompts, order)
    assert again["counts"] == result["counts"]
    other_seed = curate(load_profile("test_smoke", {"paths.root": str(processed.parent.parent), "seed": 99}))
    assert other_seed["counts"] == result["counts"]
    assert [r["id"] for r in _read(processed / "train.jsonl")] != [r["id"] for r in before]
    curate(load_profile("test_smoke", {"paths.root": str(processed.parent.parent)}))  # restore for later tests


def test_datasets_reads_outputs(run):
    import datasets

    _, _, processed = run
    ds = datasets.load_dataset("json", data_files={s: str(processed / f"{s}.jsonl") for s in ("train", "dev", "test")})
    assert ds["train"].num_rows == 26 and ds["dev"].num_rows == 3 and ds["test"].num_rows == 8
    assert ds["train"][0]["messages"][0]["role"] == "user"


def test_selectors_give_same_shapes(run):
    cfg, _, processed = run
    root = processed.parent.parent
    for selector in ("longest", "diversity"):
        res = curate(load_profile("test_smoke", {"paths.root": str(root), "curation.selector": selector}))
        assert res["counts"]["train"] == 26 and res["report"]["selector"] == selector
    res = curate(load_profile("test_smoke", {"paths.root": str(root), "curation.selector": "longest"}))
    assert res["report"]["selection"]["sources"]["wikihow"]["rule"] == "longest responses"


def test_shortfall_fails_or_is_recorded(run):
    cfg, _, processed = run
    root = processed.parent.parent
    big = {"paths.root": str(root), "curation.train.stackexchange_stem": 50}
    with pytest.raises(ShortfallError, match=r"stackexchange_stem: 50 examples requested but only 9"):
        curate(load_profile("test_smoke", big))
    res = curate(load_profile("test_smoke", {**big, "curation.allow_shortfall": True}))
    assert res["report"]["shortfalls"]["stackexchange_stem"] == {"requested": 50, "available": 9}


def test_pools(run):
    cfg, _, _ = run
    filtered = make_pool(cfg, "se_filtered", 10, seed=1)
    assert len(filtered) == 10 and all(r["source"] == "stackexchange" for r in filtered)
    assert filtered == make_pool(cfg, "se_filtered", 10, seed=1)
    unfiltered = make_pool(cfg, "se_unfiltered", 20, seed=1)
    assert len(unfiltered) == 20 and len({r["id"] for r in unfiltered}) == 20
    assert len(make_pool(cfg, "wikihow", 8, seed=2)) == 8
    # 17, not 16: under seed 1 se:coffee:8's body is the prompt, so its title is not checked (issue 11)
    with pytest.raises(ShortfallError, match="se_filtered pool: 18 examples requested but only 17"):
        make_pool(cfg, "se_filtered", 18, seed=1)
    with pytest.raises(ValueError):
        make_pool(cfg, "alpaca", 1, seed=1)


def test_cli_help_and_run(run, capsys):
    from lima.curation.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--help"], prog="python -m lima curate")
    assert exc.value.code == 0 and "--profile" in capsys.readouterr().out
    _, _, processed = run
    assert main(["--profile", "test_smoke", "--set", f"paths.root={processed.parent.parent}", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["dev"] == 3
    assert main(["--profile", "test_smoke", "--set", "paths.root=/nonexistent/x"]) == 1
    assert "collect all" in capsys.readouterr().err
