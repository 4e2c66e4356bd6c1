"""`python -m lima curate`: interim candidates → train/dev/test, Table 1 and the reports (see notebook 02)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from lima.config import ConfigError, load_profile, parse_set_args
from lima.io import InputError


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Apply the LIMA filters to the collected candidates ({interim}), sample Stack Exchange sites "
                    "with temperature tau, compose train/dev/test from the profile's counts, check test/dev "
                    "prompts for leakage into train, and write {processed}/train.jsonl, dev.jsonl, test.jsonl, "
                    "train_multiturn.jsonl, pool_unfiltered.jsonl, table1.csv/.md, curation_report.json and "
                    "leakage_report.json.",
        epilog="example: python -m lima curate --profile smoke --set curation.selector=longest "
               "--set curation.min_answer_score=5")
    parser.add_argument("--profile", default="world", help="profile name in configs/ or a YAML path (default: world, the LIMA world)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. curation.temperature=1 (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="print only the JSON summary")
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m lima curate") -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s")
    from lima.curation import curate
    from lima.curation.sampling import ShortfallError

    try:
        cfg = load_profile(args.profile, parse_set_args(args.overrides))
        result = curate(cfg)
    except (ConfigError, InputError, ShortfallError, ValueError, RuntimeError) as err:
        print(f"curate: error: {err}", file=sys.stderr)
        return 1
    summary = {"counts": result["counts"], "leakage_hits": result["leakage"]["hits"],
               "shortfalls": result["report"]["shortfalls"], "outputs": result["paths"]}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
