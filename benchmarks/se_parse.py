"""Stack Exchange parsing speed: our collect step (2-pass join + filter) vs a bare lxml iterparse+clear pass.

Generates a >= 500 MB synthetic Posts.xml in a temp folder (deleted afterwards), times a bare `iterparse` pass
that only clears elements (baseline) and our `stackexchange.collect` with the `min_answer_score=10` prefilter
(ours) on the same file in the same run, the latter in a child process so its peak RSS is measured alone.
Writes benchmarks/results/se_parse.json: {"name", "ours", "baseline" (MB/s), "ratio", "peak_rss_mb"}.
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree

HERE = Path(__file__).resolve().parent
TARGET_MB = 520

CHILD = """
import json, resource, sys, time
from lima.data import stackexchange
t = time.perf_counter()
stats = stackexchange.collect(sys.argv[1], sys.argv[2], min_answer_score=10)
print(json.dumps({"seconds": time.perf_counter() - t, "pairs": stats["pairs"],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_file(path: Path) -> None:
    from lima.data.synthetic import _KINDS, _row
    from lima.data.synthetic_text import SITES, answer_html, question_html

    rng = random.Random(0)
    topic = SITES["physics"]
    pid, size = 1, 0
    with open(path, "w", encoding="utf-8") as out:
        out.write('\ufeff<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
        while size < TARGET_MB * 1e6:
            qid, pid = pid, pid + 1
            lines = [_row(Id=qid, PostTypeId=1, Score=rng.randint(0, 50), Title="How does entropy relate to heat?",
                          Body=question_html(topic, rng, "Why?"), Tags="<thermodynamics><entropy>")]
            for _ in range(3):
                lines.append(_row(Id=pid, PostTypeId=2, ParentId=qid, Score=rng.randint(0, 40),
                                  Body=answer_html(topic, rng, rng.choice(_KINDS), stem=True)))
                pid += 1
            text = "\n".join(lines) + "\n"
            size += len(text.encode())
            out.write(text)
        out.write("</posts>\n")


def baseline(path: Path) -> float:
    t = time.perf_counter()
    for _, elem in etree.iterparse(str(path), events=("end",), tag="row", huge_tree=True):
        elem.clear()
        while elem.getprevious() is not None:
            del elem.getparent()[0]
    return time.perf_counter() - t


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="lima-bench-"))
    try:
        xml = tmp / "Posts.xml"
        make_file(xml)
        mb = xml.stat().st_size / 1e6
        base_s = baseline(xml)
        proc = subprocess.run([sys.executable, "-c", CHILD, str(xml), str(tmp / "out.jsonl")], capture_output=True,
                              text=True, check=True, cwd=HERE.parent)
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        peak = max(child["rss_mb"], resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        result = {"name": "se_parse", "ours": round(mb / child["seconds"], 1), "baseline": round(mb / base_s, 1),
                  "ratio": round(base_s / child["seconds"], 3), "peak_rss_mb": round(peak, 1),
                  "file_mb": round(mb, 1), "pairs": child["pairs"],
                  "targets": {"ratio": ">= 0.7", "peak_rss_mb": "< 300"}}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "se_parse.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
