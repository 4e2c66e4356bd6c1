"""Stack Exchange parsing speed: our collect step (2-pass join + filter) vs a bare lxml iterparse+clear pass.

Generates a >= 500 MB synthetic Posts.xml in a temp folder (deleted afterwards; `--quick`: 40 MB), then runs
the two contestants interleaved in blocks (`benchmarks/interleave.py`): one block is one whole pass over the
same file — a bare `iterparse` pass that only clears elements (baseline) and our `stackexchange.collect` with
the `min_answer_score=10` prefilter (ours), the latter in a child process so its peak RSS is measured alone.
Writes benchmarks/results/se_parse.json: {"ratio" (median of per-block ours/baseline MB/s), "ratio_spread",
"ours", "baseline" (median MB/s), "peak_rss_mb", "interleave" (every block's figures)}.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from interleave import describe, headline, run_blocks  # noqa: E402

from lima.io import write_json  # noqa: E402

FULL = {"file_mb": 520, "blocks": 5}
QUICK = {"file_mb": 40, "blocks": 3}

CHILD = """
import json, resource, sys, time
from lima.data import stackexchange
t = time.perf_counter()
stats = stackexchange.collect(sys.argv[1], sys.argv[2], min_answer_score=10, site="physics.stackexchange.com")
print(json.dumps({"seconds": time.perf_counter() - t, "pairs": stats["pairs"],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_file(path: Path, target_mb: float) -> None:
    from lima.data.synthetic import _KINDS, _row
    from lima.data.synthetic_text import SITES, answer_html, question_html

    rng = random.Random(0)
    topic = SITES["physics"]
    pid, size = 1, 0
    with open(path, "w", encoding="utf-8") as out:
        out.write('\ufeff<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
        while size < target_mb * 1e6:
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


def ours(xml: Path, out: Path) -> dict:
    """One pass of our collect step in a child process (so its peak RSS is its own)."""
    proc = subprocess.run([sys.executable, "-c", CHILD, str(xml), str(out)], capture_output=True, text=True,
                          check=True, cwd=HERE.parent)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"small file and fewer blocks: {QUICK}")
    parser.add_argument("--blocks", type=int, help="interleaved blocks (default: 5, quick 3)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "se_parse.json")
    opts = parser.parse_args(argv)
    settings = dict(QUICK if opts.quick else FULL, quick=opts.quick)
    if opts.blocks:
        settings["blocks"] = opts.blocks
    tmp = Path(tempfile.mkdtemp(prefix="lima-bench-"))
    try:
        xml = tmp / "Posts.xml"
        make_file(xml, settings["file_mb"])
        mb = xml.stat().st_size / 1e6
        children: list[dict] = []

        def run_ours() -> float:
            children.append(ours(xml, tmp / "out.jsonl"))
            return mb / children[-1]["seconds"]

        blocks = run_blocks({"ours": run_ours, "baseline": lambda: mb / baseline(xml)}, settings["blocks"],
                            reference="baseline")
        peak = max(max(c["rss_mb"] for c in children), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        result = {"name": "se_parse", **headline(blocks, "ours"), "unit": "MB/s", "peak_rss_mb": round(peak, 1),
                  "file_mb": round(mb, 1), "pairs": children[-1]["pairs"], "settings": settings,
                  "targets": {"ratio": ">= 0.7", "peak_rss_mb": "< 300"}, "interleave": blocks}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_json(opts.out, result, config=settings)
    print(describe(blocks))
    print(json.dumps({k: v for k, v in result.items() if k != "interleave"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
