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
        if args.input or args.output or args.site or args.review or args.min_answer_score is not None:
            raise SystemExit("collect all takes its paths from the profile; use --set data.X=... to change them")
        return collect_all(cfg)
    if args.site and args.source != "stackexchange":
        raise SystemExit("--site applies to stackexchange only")
    key = {"stackexchange": "stackexchange", "reddit": "reddit", "wikihow": "wikihow", "sni": "sni",
           "authored": "authored"}[args.source]
    src = Path(args.input) if args.input else resolve(getattr(dc, key))
    out_dir = interim_dir(cfg)
    output = Path(args.output) if args.output else out_dir / INTERIM_FILES.get(args.source, "")
    # the manifest records what this run used (command-line paths and options), not the profile's defaults
    config = {**dataclasses.asdict(dc), key: str(src.resolve()), "profile": cfg.get("profile"),
              "source": args.source, "output": str(output.resolve())}
    if args.source == "stackexchange":
        score = args.min_answer_score if args.min_answer_score is not None else dc.se_min_answer_score
        config.update(se_min_answer_score=score, site=args.site)
        return stackexchange.collect(src, output, min_answer_score=score, config=config, site=args.site)
    if args.source == "reddit":
        folder = output.parent if args.output else out_dir
        # the review file goes beside the outputs when --output moves them, never into the profile's folder
        review = Path(args.review) if args.review else (folder / Path(dc.reddit_review).name if args.output
                                                        else resolve(dc.reddit_review))
        config.update(reddit_review=str(review.resolve()), output=str(folder.resolve()))
        return reddit.collect(src, folder, review=review, candidates=dc.reddit_candidates, config=config)
    if args.source == "wikihow":
        config["wikihow_categories"] = str(resolve(dc.wikihow_categories))
        return wikihow.collect(src, output, categories=resolve(dc.wikihow_categories), config=config)
    if args.source == "sni":
        config["seed"] = int(cfg.get("seed", 0))
        return sni.collect(src, output, n_tasks=dc.sni_tasks, seed=int(cfg.get("seed", 0)), config=config)
    return authored.collect(src, output, config=config)


def main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Read raw dumps into candidate JSONL files (the data contract of {interim}).",
        epilog="examples:\n  python -m lima collect stackexchange --input dumps/math.stackexchange.com.7z "
               "--output se.jsonl\n  python -m lima collect stackexchange --input Downloads/Posts.xml "
               "--site coffee.stackexchange.com --output se.jsonl\n  python -m lima collect all --profile smoke",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", choices=SOURCES, help="which reader; 'all' runs every reader into {interim}")
    parser.add_argument("--input", help="dump path: a .7z/Posts.xml/site folder/folder of sites (stackexchange), "
                        "a folder or .zst file, monthly RS_/RC_ or per-subreddit <Sub>_submissions/_comments "
                        "(reddit), wikihowAll.csv, an SNI tasks folder, authored JSONL file or folder (default: the "
                        "profile's data.* path)")
    parser.add_argument("--output", help="output JSONL (default: {interim}/<source>.jsonl); for reddit its folder "
                        "receives writingprompts.jsonl and askreddit.jsonl")
    parser.add_argument("--review", help="reddit: the hand-review CSV (default: reddit_review.csv beside --output, "
                        "else data.reddit_review)")
    parser.add_argument("--site", help="stackexchange: the site of a lone Posts.xml whose folder is not named after "
                        "it, e.g. coffee.stackexchange.com (the flat layout an extracted .7z gives)")
    parser.add_argument("--min-answer-score", type=int, help="stackexchange: cheap prefilter on the top answer")
    parser.add_argument("--profile", default="world", help="config profile (default: world, the LIMA world)")
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
