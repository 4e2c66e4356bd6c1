"""Readers on generated files: Stack Exchange (both tag formats, BOM/CRLF/DOCTYPE, .7z, fabricated ids, the join),
Reddit (2 GiB zstd window, review vs top-by-score), wikiHow rewrite, SNI distinct tasks, authored, released data."""

from __future__ import annotations

import csv
import io
import json

import pytest
import zstandard

from lima.config import load_profile
from lima.data import collect_all, data_config, reddit, released, se_scan, sni, stackexchange, wikihow
from lima.data.synthetic import generate_dumps, write_posts_xml
from lima.io import read_jsonl


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    cfg = load_profile("test_smoke", {"paths.root": str(root)})
    summary = generate_dumps(cfg)
    counts = collect_all(cfg)
    return cfg, summary, counts


def test_collect_all_counts(smoke):
    cfg, summary, counts = smoke
    assert summary["synthetic"] is True
    assert counts == {"stackexchange": 624, "writingprompts": 60, "askreddit": 54, "wikihow": 160, "sni": 16,
                      "authored": 56}
    raw = data_config(cfg).stackexchange
    assert "SYNTHETIC" in (__import__("pathlib").Path(raw) / "README.txt").read_text()


def test_stackexchange_rows_and_attribution(smoke):
    cfg, _, _ = smoke
    rows = read_jsonl(f"{cfg['paths']['interim']}/stackexchange.jsonl")
    sites = {r["site"] for r in rows}
    assert "math.stackexchange.com" in sites and len(sites) == 13   # math came from the .7z archive
    assert all(r["answer_html"] and r["url"] == f"https://{r['site']}/q/{r['question_id']}" for r in rows)
    assert not any(r["question_id"] in stackexchange.FABRICATED_IDS for r in rows)
    assert all(r["license"].startswith("CC BY-SA") and r["tags"] for r in rows)
    assert "<pre" in "".join(r["answer_html"] for r in rows) and "&lt;" not in rows[0]["title"]



ROWS = [
    '  <row Id="1" PostTypeId="1" Score="5" Title="Q one" Body="&lt;p&gt;q1&lt;/p&gt;" Tags="&lt;a&gt;&lt;b-c&gt;" />',
    '  <row Id="2" PostTypeId="2" ParentId="1" Score="3" Body="&lt;p&gt;low&lt;/p&gt;" />',
    '  <row Id="3" PostTypeId="2" ParentId="1" Score="12" Body="&lt;p&gt;best &amp;amp; top&lt;/p&gt;" '
    'CreationDate="2010-01-01T00:00:00.000" />',
    '  <row Id="5" PostTypeId="2" ParentId="4" Score="7" Body="&lt;p&gt;answer before question&lt;/p&gt;" />',
    '  <row Id="4" PostTypeId="1" Score="1" Title="Q two" Body="b" Tags="|x|y-z|" />',
    '  <row Id="6" PostTypeId="1" Score="1" Title="Q three" Body="b" />',
    '  <row Id="7" PostTypeId="2" ParentId="6" Score="9" />',
    '  <row Id="8" PostTypeId="5" Body="wiki" />',
    '  <row Id="1000000001" PostTypeId="1" Score="9" Title="fake" Body="x" />',
    '  <row Id="1000000010" PostTypeId="2" ParentId="1" Score="99" Body="fake" />',
]


@pytest.mark.parametrize("variant", [dict(bom=True), dict(bom=False, crlf=True), dict(bom=True, doctype=True)])
def test_stackexchange_join_quirks(tmp_path, variant):
    xml = tmp_path / "site.stackexchange.com" / "Posts.xml"
    write_posts_xml(xml, ROWS, **variant)
    stats = stackexchange.collect(xml.parent, tmp_path / "out.jsonl")
    rows = {r["question_id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    assert sorted(rows) == [1, 4]
    assert rows[1]["answer_id"] == 3 and rows[1]["answer_html"] == "<p>best &amp; top</p>"  # unescaped once
    assert rows[1]["tags"] == ["a", "b-c"] and rows[4]["tags"] == ["x", "y-z"]
    assert rows[1]["license"] == "CC BY-SA 2.5" and rows[4]["answer_id"] == 5
    assert stats["skipped_fabricated"] == 2 and stats["skipped_malformed"] == 1 and stats["other_post_types"] == 1
    assert stats["pairs"] == 2 and stats["rows"] == 10


def test_stackexchange_pass1_chunk_boundaries(tmp_path, monkeypatch):
    xml = tmp_path / "Posts.xml"
    write_posts_xml(xml, ROWS)
    expected = stackexchange.best_answers(xml)
    monkeypatch.setattr(se_scan, "_CHUNK", 7)
    assert stackexchange.best_answers(xml) == expected == {1: (12, 3), 4: (7, 5), 6: (9, 7)}
    assert stackexchange.best_answers(xml, min_answer_score=10) == {1: (12, 3)}


def test_zstd_long_window(tmp_path):
    path = tmp_path / "RS_2020-01.zst"
    lines = [{"id": f"p{i}", "subreddit": "AskReddit", "title": f"What is your favourite number {i}?",
              "score": i} for i in range(50)]
    params = zstandard.ZstdCompressionParameters(window_log=31, enable_ldm=True)
    buf = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(buf, closefd=False) as w:
        w.write("".join(json.dumps(x) + "\n" for x in lines).encode())
    path.write_bytes(buf.getvalue())
    with pytest.raises(zstandard.ZstdError, match="too much memory"):
        zstandard.ZstdDecompressor().stream_reader(io.BytesIO(buf.getvalue())).read()
    got = [obj for _, obj in reddit.iter_zst_lines(path)]
    assert got == lines


def test_reddit_selection_review_vs_fallback(smoke, tmp_path):
    cfg, _, _ = smoke
    interim = cfg["paths"]["interim"]
    wp = read_jsonl(f"{interim}/writingprompts.jsonl")
    assert all(r["selection"] == "top_by_score" and r["accepted"] for r in wp)
    assert [r["score"] for r in wp] == sorted((r["score"] for r in wp), reverse=True)
    assert all(r["story"] not in reddit.GONE and r["title"].startswith("[WP]") for r in wp)
    ask = read_jsonl(f"{interim}/askreddit.jsonl")
    assert all(r["title"].endswith("?") and "this" not in r["title"].lower() for r in ask)
    review = tmp_path / "review.csv"
    with open(data_config(cfg).reddit_review, newline="") as src:
        table = list(csv.DictReader(src))
    table[0]["accept"], table[-1]["accept"] = "yes", "x"
    with open(review, "w", newline="") as dst:
        writer = csv.DictWriter(dst, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    stats = reddit.collect(data_config(cfg).reddit, tmp_path, review=review, candidates=60)
    rows = read_jsonl(tmp_path / "writingprompts.jsonl") + read_jsonl(tmp_path / "askreddit.jsonl")
    assert stats["accepted"] == 2 and all(r["selection"] == "review" for r in rows)
    assert {r["id"] for r in rows if r["accepted"]} == {table[0]["id"], table[-1]["id"]}


def test_wikihow_rewrite_and_category(tmp_path):
    csv_path = tmp_path / "wikihowAll.csv"
    csv_path.write_text('headline,title,text\n"h","How to Train a Puppy","This article shows how. '
                        'See [the guide](https://x.org/a) and <a href=\'u\'>this page</a>.<img src=\'a.png\'> Done."\n')
    stats = wikihow.collect(csv_path, tmp_path / "w.jsonl", categories=data_config({}).wikihow_categories)
    (row,) = read_jsonl(tmp_path / "w.jsonl")
    assert row["text"] == "The following answer shows how. See the guide and this page. Done."
    assert row["category"] == "Pets and Animals" and stats["articles"] == 1


def test_sni_distinct_generation_tasks(smoke):
    cfg, _, _ = smoke
    rows = read_jsonl(f"{cfg['paths']['interim']}/sni.jsonl")
    assert len({r["task"] for r in rows}) == len(rows) == 16
    assert all(set(r["categories"]) & sni.GENERATION_CATEGORIES and r["output"] for r in rows)


def test_authored_contents(smoke):
    cfg, _, _ = smoke
    rows = read_jsonl(f"{cfg['paths']['interim']}/authored.jsonl")
    by = lambda split, tag=None: [r for r in rows if r["split"] == split and (tag is None or tag in r["tags"])]  # noqa: E731
    assert len(by("train")) - len(by("train", "multi_turn")) == 20 and len(by("dev")) == 10 and len(by("test")) == 23
    assert len(by("train", "safety")) == 3 and len(by("train", "structure")) == 2
    assert len(by("test", "safety")) >= 4 and len(by("test", "ood")) >= 4
    dialogues = by("train", "multi_turn")
    assert len(dialogues) == 3 and all(3 <= sum(m["role"] == "user" for m in d["messages"]) <= 4 for d in dialogues)


def test_released_loader_and_exporters(tmp_path):
    (tmp_path / "train.jsonl").write_text(
        json.dumps({"conversations": ["Hi?", "Hello!"], "source": "authors"}) + "\n"
        + json.dumps({"conversations": ["a", "b", "c", "d"], "source": "multi_turn"}) + "\n")
    rows = released.load_released(tmp_path, "train")
    assert rows[0]["messages"] == [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello!"}]
    assert rows[1]["source"] == "multi_turn" and len(rows[1]["messages"]) == 4
    assert released.export(rows, "messages", tmp_path / "m.jsonl")["rows"] == 2
    released.export(rows, "sharegpt", tmp_path / "s.jsonl")
    assert read_jsonl(tmp_path / "s.jsonl")[1]["conversations"][3] == {"from": "gpt", "value": "d"}
    assert released.export(rows, "alpaca", tmp_path / "a.jsonl") == {"rows": 1, "skipped_multi_turn": 1}
    assert read_jsonl(tmp_path / "a.jsonl") == [{"instruction": "Hi?", "input": "", "output": "Hello!", "id": "lima-train:1",
                                             "source": "authors"}]
