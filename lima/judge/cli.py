"""`python -m lima judge`: run a judge protocol on responses files and write `{results}/judgments/*.jsonl`.

    python -m lima judge --protocol pairwise --a lima --b alpaca65b [--profile smoke] [--set judge.logprobs=true]
    python -m lima judge --protocol absolute --system lima
    python -m lima judge --protocol helpfulness --system lima --samples 5
    python -m lima judge --protocol pairwise --a lima --b gpt4 --retry-unparsed

Systems are names of `{results}/responses/<system>.jsonl` files. Every call goes through the judge's SQLite
cache, so re-running a command (or resuming after a crash or a failed request) repeats no request that
succeeded; `--retry-unparsed` asks the judge again for the cached replies that did not parse. Each run writes
its judgments and updates `{results}/judgments/parse_failures.json` (calls, unparsed calls and items per
judgments file). The functions below are also what notebook 05 calls.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lima.config import ConfigError, load_profile, parse_set_args
from lima.io import read_jsonl, write_json, write_jsonl


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


def parse_failures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Judge calls, unparsed calls and unparsed items of one judgments file, with a few examples."""
    if not rows:
        return {"protocol": None, "items": 0, "calls": 0, "unparsed_calls": 0, "unparsed_items": 0, "examples": []}
    protocol = rows[0]["protocol"]
    if protocol == "pairwise":
        calls = [(r["prompt_id"], o.get("order"), o.get("label"), o.get("error"), o.get("raw"))
                 for r in rows for o in r["orders"]]
        unparsed_items = sum(r["verdict"] is None for r in rows)
    elif protocol == "helpfulness":
        calls = []
        for r in rows:
            errors = iter(r.get("errors") or [])
            for i, score in enumerate(r["scores"]):
                raw = (r.get("raw") or [None] * len(r["scores"]))[i]
                calls.append((r["prompt_id"], i, score, next(errors, None) if score is None else None, raw))
        unparsed_items = sum(r["score"] is None for r in rows)
    else:
        calls = [(r["prompt_id"], None, r["label"], r.get("error"), r.get("raw")) for r in rows]
        unparsed_items = sum(r["label"] is None for r in rows)
    bad = [{"prompt_id": pid, **({"call": part} if part is not None else {}), "error": error,
            "raw": str(raw)[:200]} for pid, part, label, error, raw in calls if label is None]
    return {"protocol": protocol, "items": len(rows), "calls": len(calls), "unparsed_calls": len(bad),
            "unparsed_items": unparsed_items, "examples": bad[:5]}


def write_parse_failures(cfg: dict[str, Any], name: str, rows: list[dict[str, Any]]) -> Path:
    """Update `{judgments}/parse_failures.json`: this file's entry replaced, the other files' kept."""
    path = judgments_dir(cfg) / "parse_failures.json"
    report: dict[str, Any] = {}
    if path.exists():
        with contextlib.suppress(ValueError, OSError):
            report = json.loads(path.read_text(encoding="utf-8"))
    report[f"{name}.jsonl"] = parse_failures(rows)
    write_json(path, dict(sorted(report.items())), config={"judge": cfg.get("judge")},
               inputs=[judgments_dir(cfg) / n for n in sorted(report)])
    return path


def _write(cfg: dict[str, Any], name: str, rows: list[dict[str, Any]], inputs: list[Path],
           client: Any = None) -> Path:
    path = judgments_dir(cfg) / f"{name}.jsonl"
    extra: dict[str, Any] = {"summary": summarize(rows)}
    if client is not None:                 # what this run asked, and which judge the server says answered
        extra["client"] = {"stats": dict(client.stats), "endpoint_identity": client.identity,
                           "reported_by_server": dict(client.reported)}
    write_jsonl(path, rows, config={"judge": cfg.get("judge"), "profile": cfg.get("profile")}, inputs=inputs,
                extra=extra)
    write_parse_failures(cfg, name, rows)
    return path


def run_pairwise(cfg: dict[str, Any], a: str, b: str, **kw: Any) -> tuple[Path, list[dict[str, Any]]]:
    from lima.judge import judge_pairwise

    rows = judge_pairwise(cfg, load_responses(cfg, a), load_responses(cfg, b), **kw)
    return _write(cfg, f"pairwise__{a}__{b}", rows, [responses_path(cfg, a), responses_path(cfg, b)],
                  kw.get("client")), rows


def run_absolute(cfg: dict[str, Any], system: str, **kw: Any) -> tuple[Path, list[dict[str, Any]]]:
    """The paper's absolute protocol: the random, out-of-distribution and safety subsets of `absolute`."""
    from lima.judge.protocols import rate_absolute_protocol

    rows = rate_absolute_protocol(cfg, load_responses(cfg, system), test_tags(cfg), **kw)
    return _write(cfg, f"absolute__{system}", rows, [responses_path(cfg, system)], kw.get("client")), rows


def run_helpfulness(cfg: dict[str, Any], system: str, samples: int | None = None,
                    **kw: Any) -> tuple[Path, list[dict[str, Any]]]:
    from lima.judge import grade_helpfulness, judge_config

    n = samples or judge_config(cfg).helpfulness_samples
    rows = grade_helpfulness(cfg, load_responses(cfg, system), samples=n, **kw)
    return _write(cfg, f"helpfulness__{system}", rows, [responses_path(cfg, system)], kw.get("client")), rows


def unparsed_reply(cfg: dict[str, Any], protocol: str) -> Callable[[Any], bool]:
    """True for a cached judge reply that does not parse under the profile's mode (`--retry-unparsed`)."""
    from lima.judge import judge_config
    from lima.judge.parse import parse_logprobs, parse_text

    jc = judge_config(cfg)

    def check(result: Any) -> bool:
        parsed = (parse_logprobs(protocol, result.top_logprobs, result.text) if jc.logprobs
                  else parse_text(protocol, result.text))
        return parsed.label is None

    return check


@contextlib.contextmanager
def judge_client(cfg: dict[str, Any], protocol: str, retry_unparsed: bool = False) -> Iterator[Any]:
    """The judge's LLMClient on the profile's endpoint (a local judge is served for the duration)."""
    from lima.config import resolve
    from lima.judge import judge_config, judge_endpoint
    from lima.llm_client import LLMClient

    jc = judge_config(cfg)
    if retry_unparsed and not jc.cache:
        raise ConfigError("--retry-unparsed re-asks the replies cached in judge.cache, and judge.cache is off")
    model = (jc.helpfulness_model or None) if protocol == "helpfulness" else None
    with judge_endpoint(cfg, model=model) as endpoint:
        client = LLMClient(endpoint, cache_path=resolve(jc.cache) if jc.cache else None,
                           refresh=unparsed_reply(cfg, protocol) if retry_unparsed else None)
        try:
            yield client
        finally:
            client.close()


def _transport_error(cfg: dict[str, Any], err: BaseException) -> str:
    """One line for a judge run that failed on the wire: what failed, and that a re-run resumes."""
    from lima.judge import judge_config
    from lima.llm_client import one_line

    jc = judge_config(cfg)
    failed, total = getattr(err, "failed", None), getattr(err, "total", None)
    count = f"{failed} of {total} judge requests failed" if failed is not None else "a judge request failed"
    cause = one_line(str(err.__cause__ or err), 300)
    if jc.cache:
        resume = (f"the answers that came back are cached in {jc.cache}; re-run the same command to resume "
                  f"(only the failed requests are sent again)")
    else:
        resume = "judge.cache is off, so a re-run sends every request again"
    return f"error: {count} ({cause}); {resume}"


def main(argv: list[str], prog: str = "python -m lima judge") -> int:
    from lima.llm_client import LLMRequestError, MissingAPIKeyError

    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", required=True, choices=["pairwise", "absolute", "helpfulness"],
                        help="pairwise three-way preference, absolute Fail/Pass/Excellent, or 1-6 helpfulness")
    parser.add_argument("--a", help="pairwise: the first system (e.g. lima)")
    parser.add_argument("--b", help="pairwise: the second system (e.g. gpt4)")
    parser.add_argument("--system", help="absolute/helpfulness: the system whose responses are rated")
    parser.add_argument("--samples", type=int, default=None,
                        help="helpfulness: judge samples per response (default judge.helpfulness_samples)")
    parser.add_argument("--retry-unparsed", action="store_true",
                        help="ask the judge again for cached replies that did not parse (the new reply replaces "
                             "the cached one); useful after truncated or garbled replies, or with a sampling "
                             "judge — a deterministic judge answers the same")
    parser.add_argument("--profile", default="world", help="config profile (default: world, the LIMA world)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, e.g. judge.logprobs=true")
    args = parser.parse_args(argv)
    if args.protocol == "pairwise" and not (args.a and args.b):
        parser.error("--protocol pairwise needs --a SYSTEM and --b SYSTEM")
    if args.protocol != "pairwise" and not args.system:
        parser.error(f"--protocol {args.protocol} needs --system SYSTEM")
    try:
        cfg = load_profile(args.profile, parse_set_args(args.set))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        with judge_client(cfg, args.protocol, args.retry_unparsed) as client:
            if args.protocol == "pairwise":
                path, rows = run_pairwise(cfg, args.a, args.b, client=client)
            elif args.protocol == "absolute":
                path, rows = run_absolute(cfg, args.system, client=client)
            else:
                path, rows = run_helpfulness(cfg, args.system, args.samples, client=client)
    except LLMRequestError as err:
        print(_transport_error(cfg, err), file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError, MissingAPIKeyError) as err:
        from lima.llm_client import one_line

        print(f"error: {one_line(str(err), 600)}", file=sys.stderr)
        return 1
    stats = client.stats
    failures = parse_failures(rows)
    print(f"wrote {path}: {summarize(rows)}")
    print(f"judge calls: {failures['calls']} ({failures['unparsed_calls']} unparsed, {failures['unparsed_items']} "
          f"items without a verdict; {judgments_dir(cfg) / 'parse_failures.json'}); requests "
          f"{stats['requests']:.0f}, cache hits {stats['cache_hits']:.0f}, retries {stats['retries']:.0f}"
          + (f", re-asked {stats['refreshed']:.0f} unparsed" if args.retry_unparsed else ""))
    return 0
