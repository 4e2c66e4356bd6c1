"""Bad input: a clear InputError naming file and position, exit code 1 from the CLI, no output file left."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
import zstandard

from lima.data import authored, reddit, sni, stackexchange, wikihow
from lima.data import cli as data_cli
from lima.data.synthetic import write_posts_xml
from lima.io import InputError

GOOD_ROWS = ['  <row Id="1" PostTypeId="1" Score="5" Title="Q" Body="q" Tags="&lt;a&gt;" />',
             '  <row Id="2" PostTypeId="2" ParentId="1" Score="3" Body="a" />']


def _no_output(folder):
    return not [p for p in folder.iterdir() if p.name.startswith("out") or p.name.startswith(".out")]


def test_truncated_xml(tmp_path):
    xml = tmp_path / "Posts.xml"
    write_posts_xml(xml, GOOD_ROWS * 3)
    xml.write_bytes(xml.read_bytes()[:-40])
    with pytest.raises(InputError, match=r"Posts\.xml: line \d+, column \d+"):
        stackexchange.collect(xml, tmp_path / "out.jsonl", site="site.stackexchange.com")
    assert _no_output(tmp_path)


def test_invalid_utf8_xml(tmp_path):
    xml = tmp_path / "Posts.xml"
    write_posts_xml(xml, GOOD_ROWS)
    xml.write_bytes(xml.read_bytes().replace(b'Body="q"', b'Body="\xff\xfe"'))
    with pytest.raises(InputError, match=r"Posts\.xml: line 3, column \d+.*(encoding|UTF-8)"):
        stackexchange.collect(xml, tmp_path / "out.jsonl", site="site.stackexchange.com")
    assert _no_output(tmp_path)


def test_empty_files(tmp_path):
    (tmp_path / "Posts.xml").write_bytes(b"")
    with pytest.raises(InputError, match=r"Posts\.xml: line \d+"):
        stackexchange.collect(tmp_path / "Posts.xml", tmp_path / "out.jsonl", site="site")
    (tmp_path / "RS_2020-01.zst").write_bytes(b"")
    with pytest.raises(InputError, match=r"RS_2020-01\.zst: byte 0: empty file"):
        reddit.collect(tmp_path, tmp_path, review=tmp_path / "out_review.csv", candidates=5)
    (tmp_path / "wikihowAll.csv").write_bytes(b"")
    with pytest.raises(InputError, match=r"wikihowAll\.csv: line 1: empty file"):
        wikihow.collect(tmp_path / "wikihowAll.csv", tmp_path / "out.jsonl", categories=_cats())
    (tmp_path / "task001_x.json").write_bytes(b"")
    with pytest.raises(InputError, match=r"task001_x\.json: byte 0: empty file"):
        sni.collect(tmp_path, tmp_path / "out.jsonl", n_tasks=1, seed=0)
    assert _no_output(tmp_path)


def _cats():
    from lima.config import resolve

    return resolve("lima/resources/wikihow_categories.csv")


def test_truncated_zst(tmp_path):
    buf = io.BytesIO()
    params = zstandard.ZstdCompressionParameters(window_log=31, enable_ldm=True)
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(buf, closefd=False) as w:
        for i in range(20000):
            w.write((json.dumps({"id": str(i), "subreddit": "AskReddit", "title": f"Why {i}?"}) + "\n").encode())
    data = buf.getvalue()
    (tmp_path / "RS_2020-01.zst").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"RS_2020-01\.zst: byte \d+: truncated zstd stream"):
        list(reddit.iter_zst_lines(tmp_path / "RS_2020-01.zst"))
    with pytest.raises(InputError):
        reddit.collect(tmp_path, tmp_path, review=tmp_path / "out_review.csv", candidates=5)
    assert not (tmp_path / "askreddit.jsonl").exists() and _no_output(tmp_path)


def test_zst_bad_json_line(tmp_path):
    path = tmp_path / "RC_2020-01.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(b'{"id": "a"}\n{"id": \n'))
    with pytest.raises(InputError, match=r"RC_2020-01\.zst: line 2: invalid JSON"):
        list(reddit.iter_zst_lines(path))


def test_csv_missing_column_and_bad_utf8(tmp_path):
    path = tmp_path / "wikihowAll.csv"
    path.write_text("headline,title\nh,How to X\n")
    with pytest.raises(InputError, match=r"wikihowAll\.csv: line 1: missing column\(s\) \['text'\]"):
        wikihow.collect(path, tmp_path / "out.jsonl", categories=_cats())
    path.write_bytes(b"headline,title,text\nh,How to X,ok\nh,How to Y,bad \xff byte\n")
    with pytest.raises(InputError, match=r"wikihowAll\.csv: line \d+: invalid UTF-8"):
        wikihow.collect(path, tmp_path / "out.jsonl", categories=_cats())
    assert _no_output(tmp_path)


def test_malformed_single_rows_are_counted(tmp_path):
    path = tmp_path / "wikihowAll.csv"
    path.write_text("headline,title,text\nh,How to X,body\nh,,no title\nh,How to Z,\n")
    stats = wikihow.collect(path, tmp_path / "w.jsonl", categories=_cats())
    assert stats["articles"] == 1 and stats["skipped_malformed"] == 2


def test_authored_bad_row(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"id": "x", "split": "test", "group": "B", "messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}) + "\n")
    with pytest.raises(InputError, match=r"a\.jsonl: row 1: test rows hold only the user turn"):
        authored.collect(tmp_path, tmp_path / "out.jsonl")


def test_cli_help_and_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        data_cli.main(["--help"], prog="python -m lima collect")
    assert exit_info.value.code == 0 and "stackexchange" in capsys.readouterr().out
    xml = tmp_path / "Posts.xml"
    write_posts_xml(xml, GOOD_ROWS)
    xml.write_bytes(xml.read_bytes()[:-30])
    code = data_cli.main(["stackexchange", "--input", str(xml), "--site", "site", "--output", str(tmp_path / "out.jsonl")],
                         prog="c")
    assert code == 1 and "Posts.xml: line" in capsys.readouterr().err and _no_output(tmp_path)


def test_cli_run_subprocess(tmp_path):
    site = tmp_path / "cooking"
    write_posts_xml(site / "Posts.xml", GOOD_ROWS)
    out = tmp_path / "se.jsonl"
    proc = subprocess.run([sys.executable, "-m", "lima", "collect", "stackexchange", "--input", str(tmp_path),
                           "--output", str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["id"] == "se:cooking.stackexchange.com:1" and json.loads(proc.stdout)["pairs"] == 1
    assert (tmp_path / "se.jsonl.manifest.json").exists()
