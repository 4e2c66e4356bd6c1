"""`python -m lima judge`: run a judge protocol on responses files and write `{results}/judgments/*.jsonl`.

    python -m lima judge --protocol pairwise --a lima --b alpaca65b [--profile smoke] [--set judge.logprobs=true]
    python -m lima judge --protocol absolute --system lima
    python -m lima judge --protocol helpfulness --system lima --samples 5

Systems are names of `{results}/responses/<system>.jsonl` files. Every call goes through the judge's SQLite
cache, so re-running a command (or resuming after a crash) repeats no request. The functions below are
also what notebook 05 calls.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from lima.config import load_profile, parse_set_args
from lima.io import read_jsonl, write_jsonl


def results_dir(cfg: dict[str, Any]) -> Path:
    from lima.config import resolve

    return resolve(cfg["paths"]["results"])


def judgments_dir(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "judgments"


def responses_path(cfg: dict[str, Any], system: str) -> Path:
    return results_dir(cfg) / "responses" / f"{system}.jsonl"


def available_systems(cfg: dict[str, Any]) -> list[str]:
    """Systems with a responses file (the judge can only compare what was generated)."""
    folder = results_dir(cfg) / "responses"
    return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []


def load_responses(cfg: dict[str, Any], system: str) -> list[dict[str, Any]]:
    path = responses_path(cfg, system)
    if not path.exists():
        known = available_systems(cfg)
        raise FileNotFoundError(f"no responses for system {system!r} at {path}; available: {known}")
    return read_jsonl(path)


def test_tags(cfg: dict[str, Any]) -> dict[str, list[str]]:
    """prompt_id → tags (ood, safety, ...) of the test prompts, from `meta.tags` (or a top-level `tags`)."""
    from lima.config import resolve

    path = resolve(cfg["paths"]["processed"]) / "test.jsonl"
    if not path.exists():
        return {}
    out = {}
    for row in read_jsonl(path):
        meta = row.get("meta") or {}
        tags = list(meta.get("tags") or row.get("tags") or [])
        tags += [t for t in ("ood", "safety") if meta.get(t) is True and t not in tags]
        out[str(row["id"])] = tags
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts for a printout: verdict/label distribution, unparsed judgments, flip rate."""
    if not rows:
        return {"n": 0}
    protocol = rows[0]["protocol"]
    out: dict[str, Any] = {"protocol": protocol, "n": len(rows)}
    if protocol == "pairwise":
        both = [r for r in rows if r["flipped"] is not None]
        out["verdicts"] = dict(Counter(str(r["verdict"]) for r in rows))
        out["unparsed_items"] = sum(r["verdict"] is None for r in rows)
        out["flip_rate"] = sum(r["flipped"] for r in both) / len(both) if both else None
    elif protocol == "absolute":
        out["labels"] = dict(Counter(str(r["label"]) for r in rows))
        out["unparsed_items"] = sum(r["label"] is None for r in rows)
    else:
        out["unparsed_items"] = sum(r["score"] is None for r in rows)
        scored = [r["score"] for r in rows if r["score"] is not None]
        out["mean_score"] = sum(scored) / len(scored) if scored else None
    return out


def _write(cfg: dict[str, Any], name: str, rows: list[dict[str, Any]], inputs: list[Path]) -> Path:
    path = judgments_dir(cfg) / f"{name}.jsonl"
    write_jsonl(path, rows, config={"judge": cfg.get("judge"), "profile": cfg.get("profile")}, inputs=inputs,
                extra={"summary": summarize(rows)})
    return path


def run_pairwise(cfg: dict[str, Any], a: str, b: str, **kw: Any) -> tuple[Path, list[dict[str, Any]]]:
    from lima.judge import judge_pairwise

    rows = judge_pairwise(cfg, load_responses(cfg, a), load_responses(cfg, b), **kw)
    return _write(cfg, f"pairwise__{a}__{b}", rows, [responses_path(cfg, a), responses_path(cfg, b)]), rows


def run_absolute(cfg: dict[str, Any], system: str, **kw: Any) -> tuple[Path, list[dict[str, Any]]]:
    from lima.judge.protocols import rate_absolute_protocol  # 50 random + 20 ood + 30 safety (`absolute:`)

    rows = rate_absolute_protocol(cfg, load_responses(cfg, system), test_tags(cfg), **kw)
    return _write(cfg, f"absolute__{system}", rows, [responses_path(cfg, system)]), rows


def run_helpfulness(cfg: dict[str, Any], system: str, samples: int | None = None,
                    **kw: Any) -> tuple[Path, list[dict[str, Any]]]:
    from lima.judge import grade_helpfulness, judge_config

    n = samples or judge_config(cfg).helpfulness_samples
    rows = grade_helpfulness(cfg, load_responses(cfg, system), samples=n, **kw)
    return _write(cfg, f"helpfulness__{system}", rows, [responses_path(cfg, system)]), rows


def main(argv: list[str], prog: str = "python -m lima judge") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", required=True, choices=["pairwise", "absolute", "helpfulness"],
                        help="pairwise three-way preference, absolute Fail/Pass/Excellent, or 1-6 helpfulness")
    parser.add_argument("--a", help="pairwise: the first system (e.g. lima)")
    parser.add_argument("--b", help="pairwise: the second system (e.g. gpt4)")
    parser.add_argument("--system", help="absolute/helpfulness: the system whose responses are rated")
    parser.add_argument("--samples", type=int, default=None,
                        help="helpfulness: judge samples per response (default judge.helpfulness_samples)")
    parser.add_argument("--profile", default="smoke", help="config profile (default: smoke)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, e.g. judge.logprobs=true")
    args = parser.parse_args(argv)
    cfg = load_profile(args.profile, parse_set_args(args.set))
    try:
        if args.protocol == "pairwise":
            if not (args.a and args.b):
                parser.error("--protocol pairwise needs --a SYSTEM and --b SYSTEM")
            path, rows = run_pairwise(cfg, args.a, args.b)
        elif not args.system:
            parser.error(f"--protocol {args.protocol} needs --system SYSTEM")
        elif args.protocol == "absolute":
            path, rows = run_absolute(cfg, args.system)
        else:
            path, rows = run_helpfulness(cfg, args.system, args.samples)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path}: {summarize(rows)}")
    return 0
