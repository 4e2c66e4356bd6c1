"""Admin pages: progress and agreement, claims (release / reassign), annotators (revoke / reissue), guidelines,
exports. Every route needs an admin's session or token.
"""

# No `from __future__ import annotations` (FastAPI reads the Annotated aliases at runtime).
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from lima.annotate import db
from lima.annotate.stats import admin_context
from lima.annotate.web import Admin, Conn, claim_ttl, page

router = APIRouter(prefix="/admin")


def _back(url: str = "/admin") -> Response:
    return RedirectResponse(url, status_code=303)


@router.get("", response_class=HTMLResponse)
def admin_page(request: Request, conn: Conn, who: Admin, ttl: Annotated[float, Depends(claim_ttl)]) -> Response:
    return page(request, "admin.html", {"who": who, "ttl_minutes": round(ttl / 60), **admin_context(conn, ttl)})


@router.post("/claims/{item_id}/release")
def release(item_id: int, conn: Conn, who: Admin) -> Response:
    try:
        db.release(conn, item_id)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    return _back()


@router.post("/claims/{item_id}/reassign")
def reassign(item_id: int, conn: Conn, who: Admin, annotator: Annotated[str, Form()]) -> Response:
    try:
        db.reassign(conn, item_id, annotator)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
    return _back()


@router.get("/annotators", response_class=HTMLResponse)
def annotators(request: Request, conn: Conn, who: Admin) -> Response:
    return page(request, "annotators.html", {"who": who, "people": db.list_annotators(conn), "link": None})


def _link_page(request: Request, conn: Conn, who: db.Annotator, name: str, token: str) -> Response:
    link = f"{str(request.base_url).rstrip('/')}/start?token={token}"
    return page(request, "annotators.html", {"who": who, "people": db.list_annotators(conn), "link": link,
                                             "link_for": name})


@router.post("/annotators")
def add(request: Request, conn: Conn, who: Admin, name: Annotated[str, Form()],
        admin: Annotated[str, Form()] = "") -> Response:
    try:
        token = db.add_annotator(conn, name, admin=admin == "on")
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
    return _link_page(request, conn, who, name.strip(), token)


@router.post("/annotators/{name}/reissue")
def reissue(request: Request, name: str, conn: Conn, who: Admin) -> Response:
    """A new link for a lost one: same identity, labels and claims; the old link and sessions stop working."""
    try:
        token = db.reissue(conn, name)
    except ValueError as err:
        raise HTTPException(404, str(err)) from None
    return _link_page(request, conn, who, name, token)


@router.post("/annotators/{name}/revoke")
def revoke(name: str, conn: Conn, who: Admin) -> Response:
    if name == who.name:
        raise HTTPException(422, "you cannot revoke your own link")
    try:
        db.revoke(conn, name)
    except ValueError as err:
        raise HTTPException(404, str(err)) from None
    return _back("/admin/annotators")


@router.get("/guidelines", response_class=HTMLResponse)
def guidelines_form(request: Request, conn: Conn, who: Admin) -> Response:
    text, version = db.guidelines(conn)
    return page(request, "guidelines_edit.html", {"who": who, "text": text, "version": version})


@router.post("/guidelines")
def guidelines_save(conn: Conn, who: Admin, text: Annotated[str, Form()]) -> Response:
    try:
        db.set_guidelines(conn, text.replace("\r\n", "\n"))
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
    return _back("/guidelines")


def _export(conn: Conn, table: str, fmt: str, texts: bool) -> Response:
    if table not in db.TABLES or fmt not in ("csv", "jsonl"):
        raise HTTPException(404, f"exports: /admin/export/<{'|'.join(db.TABLES)}>.<csv|jsonl>")
    rows = db.export_rows(conn, table, texts=texts)
    name = f"annotations_{table}.{fmt}" if table != "labels" else f"annotations.{fmt}"
    disposition = {"Content-Disposition": f"attachment; filename={name}"}
    if fmt == "jsonl":
        return Response(db.to_jsonl(rows), media_type="application/x-ndjson", headers=disposition)
    return Response(db.to_csv(rows, db.TABLES[table]), media_type="text/csv", headers=disposition)


@router.get("/export.{fmt}")
def export_labels(fmt: str, conn: Conn, who: Admin, texts: bool = False) -> Response:
    return _export(conn, "labels", fmt, texts)


@router.get("/export/{table}.{fmt}")
def export_table(table: str, fmt: str, conn: Conn, who: Admin, texts: bool = False) -> Response:
    return _export(conn, table, fmt, texts)
