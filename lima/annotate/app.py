"""The annotation web app: server-rendered pages, one tiny script for the 1/2/0 keys, a JSON API for tools.

Authentication is a per-annotator secret link (`/start?token=...`): it sets an HttpOnly, SameSite=Strict
cookie so the token stops travelling in URLs; API clients send `Authorization: Bearer <token>`. The
annotator is always taken from the token, never from the request body, so nobody can read or write another
annotator's labels. Every page carries a strict Content-Security-Policy (see render.py for why).
"""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases (Conn, Who) as objects.
import csv
import io
import itertools
import json
import sqlite3
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from lima.annotate import db
from lima.annotate.render import CONTENT_SECURITY_POLICY, render_markdown

COOKIE = "lima_token"
RESOURCES = Path(str(resources.files("lima") / "resources" / "annotate"))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",        # the secret link must not leak through Referer
    "Cache-Control": "no-store",
}


def tie_discounted_accuracy(a: Sequence[str], b: Sequence[str]) -> float:
    """The paper's agreement: 1 if two labels agree, 0.5 if exactly one is a tie, 0 otherwise (mean)."""
    if len(a) != len(b):
        raise ValueError(f"label lists differ in length: {len(a)} vs {len(b)}")
    if not a:
        return float("nan")
    scores = [1.0 if x == y else 0.5 if "tie" in (x, y) else 0.0 for x, y in zip(a, b, strict=True)]
    return sum(scores) / len(scores)


def agreement_table(labels: dict[str, dict[int, str]]) -> list[dict[str, Any]]:
    """Tie-discounted accuracy for every pair of annotators on the items both labelled."""
    rows = []
    for x, y in itertools.combinations(sorted(labels), 2):
        shared = sorted(set(labels[x]) & set(labels[y]))
        if shared:
            value = tie_discounted_accuracy([labels[x][i] for i in shared], [labels[y][i] for i in shared])
            rows.append({"a": x, "b": y, "n": len(shared), "tda": value})
    return rows


class LabelIn(BaseModel):
    choice: str          # as displayed: "A" (left), "B" (right) or "tie"


class Unauthorized(Exception):
    def __init__(self, api: bool) -> None:
        self.api = api


def create_app(db_path: str | Path, synchronous: str = "FULL") -> FastAPI:
    """Build the app for one store; the schema is created here once, requests open their own connection."""
    db_path = Path(db_path)
    db.connect(db_path).close()
    app = FastAPI(title="LIMA annotation", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(RESOURCES / "templates"))
    templates.env.filters["markdown"] = render_markdown
    app.mount("/static", StaticFiles(directory=str(RESOURCES / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized) -> Response:
        headers = {"WWW-Authenticate": "Bearer", **SECURITY_HEADERS}
        if exc.api:
            return JSONResponse({"detail": "a valid annotator token is required"}, status_code=401,
                                headers=headers)
        return templates.TemplateResponse(request, "unauthorized.html", {}, status_code=401, headers=headers)

    def get_conn() -> Iterator[sqlite3.Connection]:
        conn = db.connect(db_path, init=False, synchronous=synchronous)
        try:
            yield conn
        finally:
            conn.close()

    Conn = Annotated[sqlite3.Connection, Depends(get_conn)]

    def token_of(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.cookies.get(COOKIE) or request.query_params.get("token")

    def current(request: Request, conn: Conn) -> db.Annotator:
        who = db.annotator_for_token(conn, token_of(request))
        if who is None:
            raise Unauthorized(api=request.url.path.startswith("/api/"))
        return who

    Who = Annotated[db.Annotator, Depends(current)]

    def admin(who: Who) -> db.Annotator:
        if not who.admin:
            raise HTTPException(403, "the admin view needs an admin token")
        return who

    Admin = Annotated[db.Annotator, Depends(admin)]

    def visible_item(conn: sqlite3.Connection, who: db.Annotator, item_id: int) -> sqlite3.Row:
        item = db.get_item(conn, item_id)
        if item is None or not db.is_visible(conn, who, item_id):
            raise HTTPException(404, "no such item for this annotator")   # 404: existence is not revealed
        return item

    def shown(item: sqlite3.Row) -> dict[str, Any]:
        """The blind view: texts in displayed order, no system names."""
        left, right = ("a", "b") if item["shown_left"] == "a" else ("b", "a")
        return {"id": item["id"], "prompt": item["prompt"], "response_A": item[f"response_{left}"],
                "response_B": item[f"response_{right}"], "overlap": bool(item["overlap"])}

    # ---- pages -----------------------------------------------------------------------------------------
    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/start")
    def start(token: str, conn: Conn) -> Response:
        who = db.annotator_for_token(conn, token)
        if who is None:
            raise Unauthorized(api=False)
        response = RedirectResponse("/annotate", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=90 * 24 * 3600)
        return response

    @app.get("/", response_class=HTMLResponse)
    @app.get("/annotate", response_class=HTMLResponse)
    def annotate(request: Request, conn: Conn, who: Who) -> Response:
        item_id = db.next_item(conn, who)
        if item_id is None:
            return templates.TemplateResponse(request, "done.html", {"who": who, "progress": db.progress(conn, who)})
        return RedirectResponse(f"/item/{item_id}", status_code=303)

    @app.get("/item/{item_id}", response_class=HTMLResponse)
    def item_page(request: Request, item_id: int, conn: Conn, who: Who) -> Response:
        item = visible_item(conn, who, item_id)
        label = db.own_label(conn, who, item_id)
        return templates.TemplateResponse(request, "item.html", {
            "who": who, "item": shown(item), "label": label["shown_choice"] if label else None,
            "progress": db.progress(conn, who)})

    @app.get("/item/{item_id}/next")
    def skip(item_id: int, conn: Conn, who: Who) -> Response:
        item = visible_item(conn, who, item_id)
        target = db.next_item(conn, who, after=item["position"])
        return RedirectResponse(f"/item/{target}" if target else "/annotate", status_code=303)

    @app.post("/item/{item_id}/label")
    def label_form(item_id: int, choice: Annotated[str, Form()], conn: Conn, who: Who) -> Response:
        visible_item(conn, who, item_id)
        try:
            db.set_label(conn, who, item_id, choice)
        except ValueError as err:
            raise HTTPException(422, str(err)) from None
        return RedirectResponse("/annotate", status_code=303)

    @app.get("/mine", response_class=HTMLResponse)
    def mine(request: Request, conn: Conn, who: Who) -> Response:
        return templates.TemplateResponse(request, "mine.html", {
            "who": who, "labels": db.own_labels(conn, who), "progress": db.progress(conn, who)})

    @app.get("/admin", response_class=HTMLResponse)
    def admin_page(request: Request, conn: Conn, who: Admin) -> Response:
        pairs = agreement_table(db.labels_by_annotator(conn))
        total_n = sum(p["n"] for p in pairs)
        overall = sum(p["tda"] * p["n"] for p in pairs) / total_n if total_n else None
        n_items = conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        n_labels = conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0]
        return templates.TemplateResponse(request, "admin.html", {
            "who": who, "people": db.annotator_summary(conn), "pairs": pairs, "overall": overall,
            "n_items": n_items, "n_labels": n_labels})

    @app.get("/admin/export.{fmt}")
    def admin_export(fmt: str, conn: Conn, who: Admin) -> Response:
        rows = db.export_rows(conn)
        if fmt == "jsonl":
            body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            return Response(body, media_type="application/x-ndjson",
                            headers={"Content-Disposition": "attachment; filename=annotations.jsonl"})
        if fmt == "csv":
            return Response(to_csv(rows), media_type="text/csv",
                            headers={"Content-Disposition": "attachment; filename=annotations.csv"})
        raise HTTPException(404, "export formats: csv, jsonl")

    # ---- JSON API (scripts and tests; same rules as the pages) -------------------------------------------
    @app.get("/api/next")
    def api_next(conn: Conn, who: Who) -> dict[str, Any]:
        item_id = db.next_item(conn, who)
        return {"item": shown(db.get_item(conn, item_id)) if item_id else None, "progress": db.progress(conn, who)}

    @app.get("/api/items/{item_id}")
    def api_item(item_id: int, conn: Conn, who: Who) -> dict[str, Any]:
        label = db.own_label(conn, who, item_id)
        return {"item": shown(visible_item(conn, who, item_id)), "label": label["shown_choice"] if label else None}

    @app.post("/api/items/{item_id}/label")
    def api_label(item_id: int, body: LabelIn, conn: Conn, who: Who) -> dict[str, Any]:
        visible_item(conn, who, item_id)
        try:
            stored = db.set_label(conn, who, item_id, body.choice)
        except ValueError as err:
            raise HTTPException(422, str(err)) from None
        following = db.next_item(conn, who)      # saves a round trip per label for scripted clients
        return {"ok": True, "item_id": item_id, "choice": stored["shown_choice"],
                "next": shown(db.get_item(conn, following)) if following else None}

    @app.get("/api/labels")
    def api_labels(conn: Conn, who: Who) -> dict[str, Any]:
        return {"annotator": who.name,
                "labels": [{"item_id": r["item_id"], "choice": r["shown_choice"], "updated": r["updated"]}
                           for r in db.own_labels(conn, who)]}

    return app


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=db.EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
