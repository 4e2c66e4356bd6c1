"""`python -m lima annotate {load,add-annotator,annotators,revoke,reissue,guidelines,serve,export}`.

Runs a human study end to end: load items (pairs, single responses or conversations), hand out links, serve
the app, export the labels (see docs/annotation.md).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from lima.annotate.loading import apply_gold, conversation_items, make_pairs, read_responses, single_items
from lima.io import InputError, atomic_write, write_jsonl, write_manifest

DEFAULT_PORT = 8001
DEFAULT_CLAIM_MINUTES = 120

__all__ = ["export", "main", "make_pairs", "read_responses"]


def _config(args: argparse.Namespace) -> dict[str, Any]:
    from lima.config import load_profile, parse_set_args

    return load_profile(args.profile, parse_set_args(args.set))


def _db_path(args: argparse.Namespace) -> Path:
    if args.db:
        return Path(args.db)
    from lima.config import resolve

    return resolve(_config(args)["annotate"]["db"])


def export(db_path: str | Path, output: str | Path, table: str = "labels", texts: bool = False) -> int:
    """Write one export table to CSV or JSONL (by suffix), atomically, with a manifest; returns the row count."""
    from lima.annotate import db

    output = Path(output)
    if output.suffix not in (".csv", ".jsonl"):
        raise SystemExit(f"--output must end in .csv or .jsonl, got {output}")
    conn = db.connect(db_path)
    try:
        rows = db.export_rows(conn, table, texts=texts)
    finally:
        conn.close()
    if output.suffix == ".jsonl":
        write_jsonl(output, rows, inputs=[db_path])
        return len(rows)
    with atomic_write(output) as handle:
        handle.write(db.to_csv(rows, db.TABLES[table]))
    write_manifest(output, inputs=[db_path], extra={"rows": len(rows), "table": table})
    return len(rows)


def _items(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.task == "pairwise":
        if not args.b:
            raise InputError("--task pairwise needs --a and --b")
        items = make_pairs(args.a, args.b)
    elif args.task == "absolute":
        items = single_items(args.a)
    else:
        items = conversation_items(args.a)
    if args.gold:
        apply_gold(items, args.gold)
    return items


def _parser(prog: str) -> argparse.ArgumentParser:
    from lima.annotate.export import TABLES

    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--db", help="SQLite annotation store (default: the profile's annotate.db)")
        p.add_argument("--profile", default="world",
                       help="config profile for defaults (annotate.db, annotate.overlap, annotate.export, seed)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, repeatable")
        return p

    p = command("load", "load items: pairs of two responses files (matched on prompt_id), one system's responses "
                        "(absolute rating) or conversations (per-turn rating)")
    p.add_argument("--task", choices=["pairwise", "absolute", "per_turn"], default="pairwise")
    p.add_argument("--a", required=True, help="responses JSONL (pairwise: the first system); per_turn: "
                                              "conversations JSONL {id, system|condition, messages}")
    p.add_argument("--b", help="responses JSONL of the second system (pairwise only)")
    p.add_argument("--gold", help="attention checks: JSONL {prompt_id, answer} (answer: the better system or "
                                  "'tie'; or fail/pass/excellent); shown to every annotator")
    p.add_argument("--overlap", type=int, help="items every annotator labels (default: annotate.overlap)")
    p.add_argument("--seed", type=int, help="seed of the presentation order and sides (default: profile seed)")

    p = command("add-annotator", "create an annotator and print their secret link")
    p.add_argument("name")
    p.add_argument("--admin", action="store_true", help="also grants the admin view (progress, agreement, export)")
    p.add_argument("--base-url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="where the app will be served")
    command("annotators", "list annotators (name, role, created, revoked)")
    p = command("revoke", "end an annotator's link and sessions; their unfinished claims go back to the pool")
    p.add_argument("name")
    p = command("reissue", "print a new link for an annotator who lost theirs (same identity and labels)")
    p.add_argument("name")
    p.add_argument("--base-url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="where the app is served")
    p = command("guidelines", "print the guidelines, or replace them with --file (annotators see them again)")
    p.add_argument("--file", help="Markdown file with the new guidelines")

    p = command("serve", "run the annotation web app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--claim-minutes", type=float, default=DEFAULT_CLAIM_MINUTES,
                   help="an unfinished claim of a non-shared item expires after this many minutes (default 120)")
    p.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL",
                   help="FULL: every acknowledged label survives power loss (default); NORMAL: survives a "
                        "crash or kill of the server, not of the OS, with much cheaper commits")

    p = command("export", "export one table of labels to .csv or .jsonl")
    p.add_argument("--output", help="FILE.csv or FILE.jsonl (default: the profile's annotate.export)")
    p.add_argument("--table", choices=sorted(TABLES), default="labels",
                   help="labels (pairwise, read by `lima analyze`), ratings, turns, gold, flags, history")
    p.add_argument("--texts", action="store_true", help="add the response texts to labels/ratings rows")
    return parser


def main(argv: list[str], prog: str = "python -m lima annotate") -> int:
    args = _parser(prog).parse_args(argv)
    from lima.annotate import db

    try:
        return _run(args, db, _db_path(args))
    except (InputError, db.SchemaError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, db: Any, db_path: Path) -> int:
    if args.command == "load":
        cfg = _config(args) if args.overlap is None or args.seed is None else {}
        overlap = args.overlap if args.overlap is not None else int(cfg["annotate"]["overlap"])
        seed = args.seed if args.seed is not None else int(cfg["seed"])
        items = _items(args)
        with contextlib.closing(db.connect(db_path)) as conn:
            counts = db.insert_items(conn, items, overlap=overlap, seed=seed)
        print(f"{db_path}: {counts['inserted']} item(s) added ({counts['overlap']} shared by every annotator), "
              f"{counts['skipped']} already present")
        return 0
    if args.command == "serve":
        import uvicorn

        from lima.annotate.app import create_app

        app = create_app(db_path, synchronous=args.synchronous, claim_ttl=60.0 * args.claim_minutes)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        return 0
    if args.command == "export":
        if args.output is None:
            from lima.config import resolve

            args.output = resolve(_config(args)["annotate"]["export"])
        n = export(db_path, args.output, table=args.table, texts=args.texts)
        print(f"{args.output}: {n} row(s) ({args.table})")
        return 0
    with contextlib.closing(db.connect(db_path)) as conn:
        if args.command in ("add-annotator", "reissue"):
            token = (db.add_annotator(conn, args.name, admin=args.admin) if args.command == "add-annotator"
                     else db.reissue(conn, args.name))
            print(f"{args.base_url.rstrip('/')}/start?token={token}")
        elif args.command == "revoke":
            print(f"{args.name}: revoked, {db.revoke(conn, args.name)} unfinished claim(s) released")
        elif args.command == "annotators":
            for p in db.list_annotators(conn):
                status = f"revoked {p['revoked']}" if p["revoked"] else "active"
                print(f"{p['name']}\t{'admin' if p['admin'] else 'annotator'}\t{p['created']}\t{status}")
        elif args.file:
            version = db.set_guidelines(conn, Path(args.file).read_text(encoding="utf-8"))
            print(f"{db_path}: guidelines version {version}")
        else:
            print(db.guidelines(conn)[0])
    return 0

