"""`python -m lima annotate {load,add-annotator,serve,export}`: run a human preference study end to end."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lima.io import InputError, atomic_write, iter_jsonl, write_jsonl, write_manifest

DEFAULT_PORT = 8001


def _config(args: argparse.Namespace) -> dict[str, Any]:
    from lima.config import load_profile, parse_set_args

    return load_profile(args.profile, parse_set_args(args.set))


def _db_path(args: argparse.Namespace) -> Path:
    if args.db:
        return Path(args.db)
    from lima.config import resolve

    return resolve(_config(args)["annotate"]["db"])


def read_responses(path: str | Path) -> dict[str, dict[str, Any]]:
    """Responses rows keyed by prompt_id (first sample only); duplicates and missing fields are input errors."""
    rows: dict[str, dict[str, Any]] = {}
    for lineno, row in enumerate(iter_jsonl(path), start=1):
        missing = [k for k in ("system", "prompt_id", "prompt", "response") if k not in row]
        if missing:
            raise InputError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}")
        if int(row.get("sample", 0) or 0) != 0:
            continue
        key = str(row["prompt_id"])
        if key in rows:
            raise InputError(f"{path}:{lineno}: duplicate prompt_id {key!r}")
        rows[key] = row
    return rows


def make_pairs(a_file: str | Path, b_file: str | Path) -> list[dict[str, Any]]:
    """Pair two systems' responses on prompt_id; prompts only one file has are left out and reported."""
    a_rows, b_rows = read_responses(a_file), read_responses(b_file)
    shared = [pid for pid in a_rows if pid in b_rows]
    if not shared:
        raise InputError(f"{a_file} and {b_file} share no prompt_id")
    pairs = []
    for pid in shared:
        a, b = a_rows[pid], b_rows[pid]
        if a["prompt"] != b["prompt"]:
            raise InputError(f"prompt_id {pid!r}: the prompt text differs between {a_file} and {b_file}")
        if a["system"] == b["system"]:
            raise InputError(f"prompt_id {pid!r}: both files are system {a['system']!r}")
        pairs.append({"prompt_id": pid, "prompt": a["prompt"], "system_a": a["system"], "response_a": a["response"],
                      "system_b": b["system"], "response_b": b["response"]})
    only = len(a_rows) + len(b_rows) - 2 * len(shared)
    if only:
        print(f"note: {only} prompt(s) appear in only one file and were left out", file=sys.stderr)
    return pairs


def export(db_path: str | Path, output: str | Path) -> int:
    """Write every label to CSV or JSONL (by suffix), atomically, with a manifest."""
    from lima.annotate import db
    from lima.annotate.app import to_csv

    output = Path(output)
    conn = db.connect(db_path)
    try:
        rows = db.export_rows(conn)
    finally:
        conn.close()
    if output.suffix == ".jsonl":
        return write_jsonl(output, rows, inputs=[db_path])
    if output.suffix == ".csv":
        with atomic_write(output) as handle:
            handle.write(to_csv(rows))
        write_manifest(output, inputs=[db_path], extra={"rows": len(rows)})
        return len(rows)
    raise SystemExit(f"--output must end in .csv or .jsonl, got {output}")


def main(argv: list[str], prog: str = "python -m lima annotate") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def db_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", help="SQLite annotation store (default: the profile's annotate.db)")
        p.add_argument("--profile", default="smoke",
                       help="config profile for defaults (annotate.db, annotate.overlap, annotate.export, seed)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, repeatable")

    p_load = sub.add_parser("load", help="load pairs from two responses files (matched on prompt_id)")
    db_arg(p_load)
    p_load.add_argument("--a", required=True, help="responses JSONL of the first system")
    p_load.add_argument("--b", required=True, help="responses JSONL of the second system")
    p_load.add_argument("--overlap", type=int, help="items every annotator labels (default: annotate.overlap)")
    p_load.add_argument("--seed", type=int, help="seed of the presentation order and sides (default: profile seed)")

    p_add = sub.add_parser("add-annotator", help="create an annotator and print their secret link")
    db_arg(p_add)
    p_add.add_argument("name")
    p_add.add_argument("--admin", action="store_true", help="also grants the admin view (progress, agreement, export)")
    p_add.add_argument("--base-url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="where the app will be served")

    p_serve = sub.add_parser("serve", help="run the annotation web app")
    db_arg(p_serve)
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    p_serve.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL",
                         help="FULL: every acknowledged label survives power loss (default); NORMAL: survives a "
                              "crash or kill of the server, not of the OS, with much cheaper commits")

    p_export = sub.add_parser("export", help="export all labels to .csv or .jsonl")
    db_arg(p_export)
    p_export.add_argument("--output", help="FILE.csv or FILE.jsonl (default: the profile's annotate.export)")

    args = parser.parse_args(argv)
    db_path = _db_path(args)
    from lima.annotate import db

    if args.command == "load":
        cfg = _config(args) if args.overlap is None or args.seed is None else {}
        overlap = args.overlap if args.overlap is not None else int(cfg["annotate"]["overlap"])
        seed = args.seed if args.seed is not None else int(cfg["seed"])
        try:
            pairs = make_pairs(args.a, args.b)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        conn = db.connect(db_path)
        try:
            counts = db.insert_items(conn, pairs, overlap=overlap, seed=seed)
        finally:
            conn.close()
        print(f"{db_path}: {counts['inserted']} item(s) added ({counts['overlap']} shared by every annotator), "
              f"{counts['skipped']} already present")
        return 0
    if args.command == "add-annotator":
        conn = db.connect(db_path)
        try:
            token = db.add_annotator(conn, args.name, admin=args.admin)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        finally:
            conn.close()
        print(f"{args.base_url.rstrip('/')}/start?token={token}")
        return 0
    if args.command == "serve":
        import uvicorn

        from lima.annotate.app import create_app

        uvicorn.run(create_app(db_path, synchronous=args.synchronous), host=args.host, port=args.port, log_level="warning")
        return 0
    if args.output is None:
        from lima.config import resolve

        args.output = resolve(_config(args)["annotate"]["export"])
    n = export(db_path, args.output)
    print(f"{args.output}: {n} label(s)")
    return 0
