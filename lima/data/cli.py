"""`python -m lima collect SOURCE --input PATH --output FILE.jsonl` (or `--profile` to take paths from a profile).

Bad input (truncated XML or zstd, invalid UTF-8, a CSV missing a column, an empty file) prints one error naming the
file and position and exits 1; outputs are written atomically, so nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from lima.config import load_profile, parse_set_args, resolve
from lima.data import INTERIM_FILES, collect_all, data_config, interim_dir
from lima.io import InputError

SOURCES = ("stackexchange", "reddit", "wikihow", "sni", "authored", "all")


def _run(args: argparse.Namespace) -> dict:
    from lima.data import authored, reddit, sni, stackexchange, wikihow

    cfg = load_profile(args.profile, parse_set_args(args.set))
    dc = data_config(cfg)
    if args.source == "all":
        if args.input or args.output:
            raise SystemExit("collect all takes its paths from the profile; use --set data.X=... to change them")
        return collect_all(cfg)
    default_in = {"stackexchange": dc.stackexchange, "reddit": dc.reddit, "wikihow": dc.wikihow, "sni": dc.sni,
                  "authored": dc.authored}[args.source]
    src = Path(args.input) if args.input else resolve(default_in)
    out_dir = interim_dir(cfg)
    output = Path(args.output) if args.output else out_dir / INTERIM_FILES.get(args.source, "")
    config = dataclasses.asdict(dc)
    if args.source == "stackexchange":
        score = args.min_answer_score if args.min_answer_score is not None else dc.se_min_answer_score
        return stackexchange.collect(src, output, min_answer_score=score, config=config)
    if args.source == "reddit":
        folder = Path(args.output).parent if args.output else out_dir
        review = Path(args.review) if args.review else resolve(dc.reddit_review)
        return reddit.collect(src, folder, review=review, candidates=dc.reddit_candidates, config=config)
    if args.source == "wikihow":
        return wikihow.collect(src, output, categories=resolve(dc.wikihow_categories), config=config)
    if args.source == "sni":
        return sni.collect(src, output, n_tasks=dc.sni_tasks, seed=int(cfg.get("seed", 0)), config=config)
    return authored.collect(src, output, config=config)


def main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Read raw dumps into candidate JSONL files (the data contract of {interim}).",
        epilog="examples:\n  python -m lima collect stackexchange --input dumps/math.stackexchange.com.7z "
               "--output se.jsonl\n  python -m lima collect all --profile smoke",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", choices=SOURCES, help="which reader; 'all' runs every reader into {interim}")
    parser.add_argument("--input", help="dump path: a .7z/Posts.xml/site folder/folder of sites (stackexchange), "
                        "a folder or RS_/RC_ .zst file (reddit), wikihowAll.csv, an SNI tasks folder, authored "
                        "JSONL file or folder (default: the profile's data.* path)")
    parser.add_argument("--output", help="output JSONL (default: {interim}/<source>.jsonl); for reddit its folder "
                        "receives writingprompts.jsonl and askreddit.jsonl")
    parser.add_argument("--review", help="reddit: the hand-review CSV (default: data.reddit_review)")
    parser.add_argument("--min-answer-score", type=int, help="stackexchange: cheap prefilter on the top answer")
    parser.add_argument("--profile", default="smoke", help="config profile (default: smoke)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set paths.root=/tmp/x (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        stats = _run(args)
    except InputError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(stats, indent=1, sort_keys=True))
    return 0
