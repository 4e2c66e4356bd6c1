"""Real dump layouts: a flat Posts.xml (extracted .7z) never becomes `<folder>.stackexchange.com`; per-subreddit
Pushshift files read like the monthly ones; a missing subreddit is named; the review file and the manifest follow
what the command was told."""

from __future__ import annotations

import io
import json
import logging

import pytest
import zstandard

from lima.data import cli as data_cli
from lima.data import reddit, stackexchange
from lima.data.synthetic import write_posts_xml
from lima.io import InputError, read_jsonl

ROWS = ['  <row Id="1" PostTypeId="1" Score="5" Title="Why is espresso bitter?" Body="q" Tags="&lt;a&gt;" />',
        '  <row Id="2" PostTypeId="2" ParentId="1" Score="3" Body="a" />']


def test_flat_posts_xml_needs_a_site(tmp_path, capsys):
    xml = tmp_path / "Downloads" / "Posts.xml"
    write_posts_xml(xml, ROWS)
    for target in (xml, xml.parent):
        with pytest.raises(InputError, match=r"Downloads/Posts\.xml: cannot tell which Stack Exchange site .*folder "
                                             r"'Downloads' is not a site name.*--site coffee\.stackexchange\.com"):
            stackexchange.collect(target, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
    code = data_cli.main(["stackexchange", "--input", str(xml), "--output", str(tmp_path / "out.jsonl")], prog="c")
    assert code == 1 and "--site" in capsys.readouterr().err
    code = data_cli.main(["stackexchange", "--input", str(xml), "--site", "coffee", "--output",
                          str(tmp_path / "out.jsonl")], prog="c")
    (row,) = read_jsonl(tmp_path / "out.jsonl")
    assert code == 0 and row["id"] == "se:coffee.stackexchange.com:1"
    manifest = json.loads((tmp_path / "out.jsonl.manifest.json").read_text())
    assert manifest["config"]["site"] == "coffee" and manifest["config"]["stackexchange"] == str(xml)


def test_site_from_the_archive_beside_it_and_from_folder_names(tmp_path):
    xml = tmp_path / "extracted" / "Posts.xml"
    write_posts_xml(xml, ROWS)
    (xml.parent / "coffee.stackexchange.com.7z").write_bytes(b"")   # what the files were extracted from
    assert stackexchange.discover_sites(xml) == [("coffee.stackexchange.com", xml)]
    named = tmp_path / "sites" / "cooking" / "Posts.xml"
    write_posts_xml(named, ROWS)
    assert stackexchange.discover_sites(named.parent) == [("cooking.stackexchange.com", named)]
    write_posts_xml(tmp_path / "sites" / "dump2024" / "Posts.xml", ROWS)
    with pytest.raises(InputError, match=r"sites: cannot tell which Stack Exchange site \['dump2024'\] hold"):
        stackexchange.discover_sites(tmp_path / "sites")


def _zst(path, rows):
    params = zstandard.ZstdCompressionParameters(window_log=31, enable_ldm=True)
    buf = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(buf, closefd=False) as w:
        w.write("".join(json.dumps(r) + "\n" for r in rows).encode())
    path.write_bytes(buf.getvalue())


def _subreddit_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    # per-subreddit dumps drop nothing but may omit "subreddit": the file name says it
    _zst(folder / "WritingPrompts_submissions.zst",
         [{"id": f"w{i}", "title": f"[WP] Prompt {i}", "score": 100 - i} for i in range(3)])
    _zst(folder / "WritingPrompts_comments.zst",
         [{"id": f"c{i}", "link_id": f"t3_w{i}", "parent_id": f"t3_w{i}", "body": f"Story {i}", "score": 5}
          for i in range(3)])
    _zst(folder / "AskReddit_submissions.zst",
         [{"id": f"a{i}", "subreddit": "AskReddit", "title": f"What is the best bread in country {i}?",
           "score": 50 - i} for i in range(4)])


def test_per_subreddit_files_read_like_monthly_ones(tmp_path):
    _subreddit_files(tmp_path / "dumps")
    stats = reddit.collect(tmp_path / "dumps", tmp_path / "out", review=tmp_path / "out" / "r.csv", candidates=10)
    assert stats["writingprompts"] == 3 and stats["askreddit"] == 4 and stats["missing"] == []
    wp = read_jsonl(tmp_path / "out" / "writingprompts.jsonl")
    assert [(r["id"], r["story"]) for r in wp] == [("reddit:w0", "Story 0"), ("reddit:w1", "Story 1"),
                                                   ("reddit:w2", "Story 2")]


def test_zero_rows_for_a_needed_subreddit_says_so(tmp_path, caplog):
    _subreddit_files(tmp_path / "dumps")
    (tmp_path / "dumps" / "WritingPrompts_submissions.zst").unlink()
    with caplog.at_level(logging.WARNING, logger="lima.data.reddit"):
        stats = reddit.collect(tmp_path / "dumps", tmp_path / "out", review=tmp_path / "r.csv", candidates=10)
    assert stats["missing"] == ["r/WritingPrompts submissions"] and stats["writingprompts"] == 0
    assert "no r/WritingPrompts submissions" in caplog.text and "r/AskReddit (4)" in caplog.text
    manifest = json.loads((tmp_path / "out" / "writingprompts.jsonl.manifest.json").read_text())
    assert manifest["stats"]["missing"] == ["r/WritingPrompts submissions"]


def test_review_file_follows_output_and_manifest_records_the_run(tmp_path):
    _subreddit_files(tmp_path / "dumps")
    root, out = tmp_path / "root", tmp_path / "elsewhere"
    code = data_cli.main(["reddit", "--input", str(tmp_path / "dumps"), "--output", str(out / "wp.jsonl"),
                          "--profile", "test", "--set", f"paths.root={root}"], prog="c")
    assert code == 0 and (out / "reddit_review.csv").exists()
    assert not list(root.rglob("reddit_review.csv"))
    config = json.loads((out / "askreddit.jsonl.manifest.json").read_text())["config"]
    assert config["reddit"] == str(tmp_path / "dumps") and config["reddit_review"] == str(out / "reddit_review.csv")
    assert config["profile"] == "test" and config["source"] == "reddit"
