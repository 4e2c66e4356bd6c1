"""`python -m lima generate`: sample responses for one system with the paper's decoding.

Examples:
  python -m lima generate --system lima                        # {processed}/test.jsonl → {results}/responses/lima.jsonl
  python -m lima generate --system urial --set generate.max_new_tokens=128
  python -m lima generate --system lima --model models/lima/checkpoint-epoch-7 --output /tmp/ep7.jsonl
  python -m lima generate --list                               # the systems of configs/systems.yaml
Interrupted runs resume: prompts already answered in the output file are skipped.
"""

from __future__ import annotations

import argparse
import sys

from lima.config import ConfigError, load_profile, parse_set_args, resolve
from lima.io import InputError, read_jsonl


def main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", help="a system name from configs/systems.yaml (lima, pool_unfiltered, text-davinci-003, gpt-4, urial, null …)")
    parser.add_argument("--prompts", default=None, help="prompts JSONL in the test.jsonl format "
                                                        "(default: {processed}/test.jsonl)")
    parser.add_argument("--output", default=None, help="responses JSONL (default: {results}/responses/<system>.jsonl)")
    parser.add_argument("--model", default=None, help="override the system's model (a run or checkpoint dir)")
    parser.add_argument("--samples", type=int, default=1, help="samples per prompt (default 1, as in the paper)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    parser.add_argument("--profile", default="world", help="config profile (default: world, the LIMA world)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. generate.max_new_tokens=256 (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the configured systems and whether each can run")
    args = parser.parse_args(argv)

    from lima.generate.systems import SystemSkipped, check_available, load_systems, run_system

    try:
        cfg = load_profile(args.profile, parse_set_args(args.set))
        if args.list:
            for name, spec in load_systems(cfg).items():
                reason = check_available(cfg, spec)
                print(f"{name:12s} {spec.kind:9s} {'ready' if not reason else 'skipped: ' + reason}")
            return 0
        if not args.system:
            parser.error("--system is required (or --list)")
        prompts = read_jsonl(args.prompts or resolve(cfg["paths"]["processed"]) / "test.jsonl")
        if args.limit:
            prompts = prompts[: args.limit]
        out = run_system(cfg, args.system, prompts, output=args.output, samples_per_prompt=args.samples,
                         model=args.model)
    except SystemSkipped as err:
        print(f"skipped: {err}", file=sys.stderr)
        return 3
    except (ConfigError, InputError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
