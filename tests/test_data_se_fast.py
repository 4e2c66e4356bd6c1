"""Stack Exchange fast path (byte scan + targeted lxml parse): same output and counts as parsing every row with
lxml, and malformed input is still caught even in rows pass 2 never parses."""

from __future__ import annotations

import pytest

from lima.data import se_scan, stackexchange
from lima.data.synthetic import write_posts_xml
from lima.io import InputError, read_jsonl

ROWS = [
    '  <row Id="1" PostTypeId="1" Score="5" Title="Q é one" Body="&lt;p&gt;q1 &#xA;&quot;x&quot;&lt;/p&gt;" '
    'Tags="&lt;a&gt;" OwnerUserId="7" CreationDate="2012-01-01T00:00:00.000" />',
    '  <row Id="2" PostTypeId="2" ParentId="1" Score="3" Body="&lt;p&gt;low&lt;/p&gt;" />',
    '  <row Id="3" PostTypeId="2" ParentId="1" CreationDate="2019-01-01T00:00:00.000" Score="12" '
    'Body="&lt;p&gt;best &amp;amp; top ü&lt;/p&gt;" OwnerDisplayName="ann" />',
    '  <row Score="15" ParentId="4" PostTypeId="2" Id="5" Body="unusual attribute order" />',
    '  <row Id="4" PostTypeId="1" Score="1" Title="Q two" Body="b" Tags="|x|" />',
    '  <row Id="6" PostTypeId="2" ParentId="4" Score="+15" Body="sign: parsed like int()" />',
    '  <row Id="8" PostTypeId="5" Body="wiki" />',
    '  <row Id="x" PostTypeId="1" Title="bad id" Body="b" />',
    '  <row Id="1000000001" PostTypeId="1" Score="9" Title="fake" Body="x" />',
]


def _collect(tmp_path, rows, name="out.jsonl", **variant):
    xml = tmp_path / "site.stackexchange.com" / "Posts.xml"
    write_posts_xml(xml, rows, **variant)
    stats = stackexchange.collect(xml, tmp_path / name)
    return stats, (tmp_path / name).read_bytes()


@pytest.mark.parametrize("variant", [dict(bom=True), dict(bom=False, crlf=True), dict(bom=True, doctype=True)])
def test_fast_path_matches_full_parse(tmp_path, monkeypatch, variant):
    fast = _collect(tmp_path, ROWS, "fast.jsonl", **variant)
    assert stackexchange._scan(tmp_path / "site.stackexchange.com" / "Posts.xml", -(1 << 62)) is not None
    monkeypatch.setattr(stackexchange, "_scan", lambda path, floor: None)
    assert _collect(tmp_path, ROWS, "full.jsonl", **variant) == fast
    stats, _ = fast
    assert stats["rows"] == 9 and stats["questions"] == 2 and stats["answers"] == 4 and stats["pairs"] == 2
    assert stats["skipped_malformed"] == 1 and stats["skipped_fabricated"] == 1 and stats["other_post_types"] == 1
    rows = {r["question_id"]: r for r in read_jsonl(tmp_path / "fast.jsonl")}
    assert rows[1]["answer_id"] == 3 and rows[1]["answer_html"] == "<p>best &amp; top ü</p>"
    assert rows[1]["question_html"] == '<p>q1 \n"x"</p>' and rows[1]["title"] == "Q é one"
    assert rows[4]["answer_id"] == 5   # 15 ties with "+15"; the earlier answer id wins


def test_scan_chunk_boundaries(tmp_path, monkeypatch):
    xml = tmp_path / "Posts.xml"
    write_posts_xml(xml, ROWS, crlf=True)
    expected = stackexchange._scan(xml, 0)
    monkeypatch.setattr(se_scan, "_CHUNK", 5)
    got = stackexchange._scan(xml, 0)
    assert got is not None and got == expected and got.best[1][:2] == (12, 3)


@pytest.mark.parametrize("body", ['<row Id="9" PostTypeId="5" Body="a" ></row>', 'text <row Id="9" PostTypeId="5" />'])
def test_unusual_but_valid_xml_takes_the_full_parse(tmp_path, body):
    xml = tmp_path / "Posts.xml"
    write_posts_xml(xml, ROWS + [body])
    assert stackexchange._scan(xml, 0) is None
    stats = stackexchange.collect(xml, tmp_path / "out.jsonl", site="site.stackexchange.com")
    assert stats["pairs"] == 2 and stats["other_post_types"] == 2


@pytest.mark.parametrize("bad", [b'<row Id="9" PostTypeId="5" Body="a<b" />', b'<row Id="9" PostTypeId="5" Body="\xff" />'])
def test_malformed_unwanted_row_is_an_error(tmp_path, bad):
    """Row 9 is never parsed by pass 2, so the byte scan must notice and hand the file to lxml, which raises."""
    xml = tmp_path / "Posts.xml"
    write_posts_xml(xml, ROWS)
    xml.write_bytes(xml.read_bytes().replace(b"</posts>", b"  " + bad + b"\n</posts>"))
    with pytest.raises(InputError, match=r"Posts\.xml: line 12, column \d+"):
        stackexchange.collect(xml, tmp_path / "out.jsonl", site="site.stackexchange.com")
    assert not list(tmp_path.glob("*out*"))


def test_missing_end_tag_is_an_error(tmp_path):
    xml = tmp_path / "Posts.xml"
    write_posts_xml(xml, ROWS)
    xml.write_bytes(xml.read_bytes().replace(b"</posts>", b""))
    with pytest.raises(InputError, match=r"Posts\.xml: line \d+, column \d+"):
        stackexchange.collect(xml, tmp_path / "out.jsonl", site="site.stackexchange.com")


def test_bad_entity_in_wanted_row_names_its_position(tmp_path):
    xml = tmp_path / "Posts.xml"
    write_posts_xml(xml, ROWS)
    xml.write_bytes(xml.read_bytes().replace(b"best &amp;amp; top", b"best &bogus; top"))
    with pytest.raises(InputError, match=r"Posts\.xml: line 5, column \d+: malformed XML .*bogus"):
        stackexchange.collect(xml, tmp_path / "out.jsonl", site="site.stackexchange.com")
    assert not list(tmp_path.glob("*out*"))
