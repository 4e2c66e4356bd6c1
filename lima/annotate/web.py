"""What every page and API route shares: the connection, who is asking, templates, and friendly errors.

Who is asking comes from an `Authorization: Bearer <token>` header (scripts) or the session cookie set by
the start link (browsers) — never from the query string, so a token cannot leak through links, logs or
history beyond the one start link. Annotators get HTML error pages; `/api/` and export routes get JSON.
"""

# No `from __future__ import annotations`: FastAPI must see the Annotated aliases (Conn, Who, Admin) as objects.
import json
import sqlite3
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates

from lima.annotate import db
from lima.annotate.render import CONTENT_SECURITY_POLICY, render_markdown
from lima.annotate.stats import fmt

COOKIE = "lima_session"
RESOURCES = Path(str(resources.files("lima") / "resources" / "annotate"))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",        # the start link must not leak through Referer
    "Cache-Control": "no-store",
}
CHOICE_TEXT = {"A": "A is better", "B": "B is better", "tie": "neither is significantly better",
               "fail": "Fail", "pass": "Pass", "excellent": "Excellent"}
FLAG_TEXT = {"broken": "broken", "unsafe": "unsafe", "cannot_judge": "cannot judge"}

templates = Jinja2Templates(directory=str(RESOURCES / "templates"))
templates.env.filters["markdown"] = render_markdown
templates.env.filters["num"] = fmt
templates.env.globals.update(CHOICE_TEXT=CHOICE_TEXT, FLAG_TEXT=FLAG_TEXT, FLAGS=db.FLAGS)


class Unauthorized(Exception):
    def __init__(self, api: bool) -> None:
        self.api = api


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path.startswith("/admin/export")


def get_conn(request: Request) -> Iterator[sqlite3.Connection]:
    conn = db.connect(request.app.state.db_path, init=False, synchronous=request.app.state.synchronous)
    try:
        yield conn
    finally:
        conn.close()


Conn = Annotated[sqlite3.Connection, Depends(get_conn)]


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def session_annotator(request: Request, conn: sqlite3.Connection) -> db.Annotator | None:
    return db.annotator_for_session(conn, request.cookies.get(COOKIE))


def current(request: Request, conn: Conn) -> db.Annotator:
    token = bearer_token(request)
    who = db.annotator_for_token(conn, token) if token else session_annotator(request, conn)
    if who is None:
        raise Unauthorized(api=wants_json(request))
    return who


Who = Annotated[db.Annotator, Depends(current)]


def admin(who: Who) -> db.Annotator:
    if not who.admin:
        raise HTTPException(403, "this page needs an admin link")
    return who


Admin = Annotated[db.Annotator, Depends(admin)]


def claim_ttl(request: Request) -> float:
    return float(request.app.state.claim_ttl)


def visible_item(conn: sqlite3.Connection, who: db.Annotator, item_id: int) -> sqlite3.Row:
    """The item if this annotator may see it; 404 otherwise (existence is not revealed, huge ids included)."""
    item = db.get_item(conn, item_id)
    if item is None or not db.is_visible(conn, who, item_id):
        raise HTTPException(404, "there is no such item for you (it may have been released after a long pause)")
    return item


def shown(item: sqlite3.Row) -> dict[str, Any]:
    """The blind view: texts in displayed order, no system names, the conversation if there is one."""
    left, right = ("a", "b") if item["shown_left"] == "a" else ("b", "a")
    messages = json.loads(item["messages"]) if item["messages"] else None
    return {"id": item["id"], "task": item["task"], "prompt": item["prompt"], "messages": messages,
            "response_A": item[f"response_{left}"], "response_B": item[f"response_{right}"],
            "overlap": bool(item["overlap"])}


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200,
         headers: dict[str, str] | None = None) -> Any:
    return templates.TemplateResponse(request, name, context, status_code=status_code, headers=headers)
