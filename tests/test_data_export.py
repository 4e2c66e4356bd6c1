"""`lima export` on the formats people have: GAIR/lima JSONL, ShareGPT/FastChat JSON arrays and JSONL, Alpaca JSON,
its own outputs (round trip with ids and source), a BOM, and wrong formats named in the error."""

from __future__ import annotations

import json

import pytest

from lima.data import released
from lima.data.formats import read_rows
from lima.io import InputError, read_jsonl

LIMA_ROWS = [{"conversations": ["Hi?", "Hello!"], "source": "stackexchange"},
             {"conversations": ["a", "b", "c", "d"], "source": "multi_turn"}]
SHAREGPT = [{"id": "sg-1", "conversations": [{"from": "system", "value": "Be brief."},
                                             {"from": "human", "value": "Q1"}, {"from": "gpt", "value": "A1"}]},
            {"id": "sg-2", "conversations": [{"from": "human", "value": "Q2"}, {"from": "gpt", "value": "A2"},
                                             {"from": "human", "value": "Q3"}, {"from": "gpt", "value": "A3"}]}]
ALPACA = [{"instruction": "Give three tips for staying healthy.", "input": "", "output": "1. Eat well."},
          {"instruction": "Translate.", "input": "bonjour", "output": "hello"}]


def _export(tmp_path, src, fmt, name):
    out = tmp_path / name
    assert released.main(["--input", str(src), "--format", fmt, "--output", str(out)], prog="export") == 0
    return read_jsonl(out)


def test_gair_lima_jsonl_with_bom(tmp_path):
    src = tmp_path / "train.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in LIMA_ROWS).encode())
    rows = _export(tmp_path, src, "messages", "m.jsonl")
    assert [r["id"] for r in rows] == ["lima-train:1", "lima-train:2"]
    assert [r["source"] for r in rows] == ["stackexchange", "multi_turn"] and len(rows[1]["messages"]) == 4


def test_fastchat_json_array_and_jsonl(tmp_path):
    arr = tmp_path / "sharegpt.json"
    arr.write_text(json.dumps(SHAREGPT, indent=2), encoding="utf-8-sig")
    lines = tmp_path / "sharegpt.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in SHAREGPT))
    (a, b), (c, d) = read_rows(arr)[0], read_rows(lines)[0]
    assert (a, b) == (c, d) and read_rows(arr)[1] == "sharegpt"
    assert a["id"] == "sg-1" and a["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in b["messages"]] == ["user", "assistant", "user", "assistant"]
    one = tmp_path / "one.json"   # a single conversation saved pretty-printed
    one.write_text(json.dumps(SHAREGPT[1], indent=2))
    assert read_rows(one) == ([b], "sharegpt")


def test_alpaca_json_array(tmp_path):
    src = tmp_path / "alpaca_data.json"
    src.write_text(json.dumps(ALPACA, indent=4))
    rows = _export(tmp_path, src, "messages", "m.jsonl")
    assert [r["id"] for r in rows] == ["alpaca_data:1", "alpaca_data:2"]
    assert rows[1]["messages"] == [{"role": "user", "content": "Translate.\n\nbonjour"},
                                   {"role": "assistant", "content": "hello"}]


def test_round_trip_keeps_ids_and_source(tmp_path):
    src = tmp_path / "train.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in LIMA_ROWS))
    messages = _export(tmp_path, src, "messages", "m.jsonl")
    sharegpt = _export(tmp_path, tmp_path / "m.jsonl", "sharegpt", "s.jsonl")
    assert sharegpt[0] == {"id": "lima-train:1", "source": "stackexchange",
                           "conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello!"}]}
    back = _export(tmp_path, tmp_path / "s.jsonl", "messages", "m2.jsonl")
    assert [(r["id"], r["source"], r["messages"]) for r in back] == \
        [(r["id"], r["source"], r["messages"]) for r in messages]
    alpaca = _export(tmp_path, tmp_path / "s.jsonl", "alpaca", "a.jsonl")
    assert alpaca == [{"instruction": "Hi?", "input": "", "output": "Hello!", "id": "lima-train:1",
                       "source": "stackexchange"}]
    again = _export(tmp_path, tmp_path / "a.jsonl", "messages", "m3.jsonl")
    assert [(r["id"], r["source"], r["messages"]) for r in again] == \
        [(messages[0]["id"], messages[0]["source"], messages[0]["messages"])]


@pytest.mark.parametrize("content, says", [
    (json.dumps({"data": ALPACA}, indent=2), r"line 1: a single JSON object with keys \['data'\], not rows "
                                             r"\(the rows may be under 'data'\)"),
    ("instruction,input,output\nGive tips,,Eat well\n", r"line 1: this looks like CSV/TSV text"),
    ('<?xml version="1.0"?>\n<posts></posts>\n', r"this is XML/HTML, not conversation rows"),
    (json.dumps([{"prompt": "x", "completion": "y"}]), r"item 1: an object with keys \['completion', 'prompt'\] "
                                                       r"is none of the known row formats"),
])
def test_wrong_format_names_what_it_saw(tmp_path, capsys, content, says):
    src = tmp_path / "input.json"
    src.write_text(content)
    with pytest.raises(InputError, match=says):
        read_rows(src)
    assert released.main(["--input", str(src), "--output", str(tmp_path / "out.jsonl")], prog="export") == 1
    err = capsys.readouterr().err
    assert "invalid JSON" not in err and "ShareGPT/FastChat" in err and not (tmp_path / "out.jsonl").exists()


def test_binary_and_mixed_files(tmp_path):
    src = tmp_path / "train.parquet"
    src.write_bytes(b"PAR1\x00\x01binary")
    with pytest.raises(InputError, match="this is a Parquet file"):
        read_rows(src)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(json.dumps(LIMA_ROWS[0]) + "\n" + json.dumps(ALPACA[0]) + "\n")
    with pytest.raises(InputError, match=r"mixed\.jsonl: line 2: this row is alpaca, but the earlier rows are lima"):
        read_rows(mixed)
