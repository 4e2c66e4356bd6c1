"""Annotator pages: start link, guidelines, the item page (three task types), label, flag, skip, my labels.

State-changing actions are POST forms; the session cookie is SameSite=Strict, so another site cannot post
them on an annotator's behalf.
"""

# No `from __future__ import annotations` (FastAPI reads the Annotated aliases at runtime).
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from lima.annotate import db
from lima.annotate.web import (
    COOKIE,
    Conn,
    Unauthorized,
    Who,
    claim_ttl,
    page,
    session_annotator,
    shown,
    visible_item,
)

router = APIRouter()
SESSION_DAYS = 90


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _sign_in(conn: Any, who: db.Annotator) -> Response:
    response = _redirect("/annotate")
    response.set_cookie(COOKIE, db.new_session(conn, who), httponly=True, samesite="strict",
                        max_age=SESSION_DAYS * 24 * 3600)
    return response


@router.get("/start")
def start(request: Request, conn: Conn, token: str = "") -> Response:
    """The one route that takes the token from the URL; it becomes a session cookie and is never sent again.

    Opening another annotator's link while signed in does not silently switch: the page asks first.
    """
    who = db.annotator_for_token(conn, token)
    if who is None:
        raise Unauthorized(api=False)
    signed_in = session_annotator(request, conn)
    if signed_in is not None and signed_in.id != who.id:
        return page(request, "switch.html", {"who": signed_in, "other": who.name, "token": token}, status_code=409)
    return _sign_in(conn, who)


@router.post("/start")
def start_confirmed(conn: Conn, token: Annotated[str, Form()]) -> Response:
    """Switching to another annotator after the confirmation page (the token travels in the POST body)."""
    who = db.annotator_for_token(conn, token)
    if who is None:
        raise Unauthorized(api=False)
    return _sign_in(conn, who)


@router.post("/logout")
def logout(request: Request, conn: Conn) -> Response:
    if request.cookies.get(COOKIE):
        db.end_session(conn, request.cookies[COOKIE])
    response = _redirect("/signed-out")
    response.delete_cookie(COOKIE)
    return response


@router.get("/signed-out", response_class=HTMLResponse)
def signed_out(request: Request) -> Response:
    return page(request, "error.html", {"status": 200, "title": "Signed out",
                                        "message": "Open your personal link again to continue."})


@router.get("/guidelines", response_class=HTMLResponse)
def guidelines_page(request: Request, conn: Conn, who: Who) -> Response:
    text, version = db.guidelines(conn)
    return page(request, "guidelines.html", {"who": who, "text": text, "version": version,
                                             "first": who.guidelines_seen < version})


@router.post("/guidelines")
def guidelines_confirm(conn: Conn, who: Who, version: Annotated[int, Form()]) -> Response:
    db.confirm_guidelines(conn, who, version)
    return _redirect("/annotate")


@router.get("/", response_class=HTMLResponse)
@router.get("/annotate", response_class=HTMLResponse)
def annotate(request: Request, conn: Conn, who: Who, ttl: Annotated[float, Depends(claim_ttl)]) -> Response:
    if who.guidelines_seen < db.guidelines(conn)[1]:
        return _redirect("/guidelines")                  # before the first item, and again after an edit
    item_id = db.next_item(conn, who, claim_ttl=ttl)
    if item_id is None:
        return page(request, "done.html", {"who": who, "progress": db.progress(conn, who)})
    return _redirect(f"/item/{item_id}")


@router.get("/item/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, item_id: int, conn: Conn, who: Who) -> Response:
    item = visible_item(conn, who, item_id)
    label = db.own_label(conn, who, item_id)
    flag = db.own_flag(conn, who, item_id)
    db.record_view(conn, who, item_id)
    view = shown(item)
    ratings: list[str] = []
    if item["task"] == "per_turn" and label is not None:
        ratings = json.loads(label["choice"])
    return page(request, "item.html", {
        "who": who, "item": view, "label": label["shown_choice"] if label else None, "ratings": ratings,
        "flag": flag, "revisions": len(db.history(conn, who, item_id)), "progress": db.progress(conn, who)})


def _value(item: Any, form: Any) -> str | list[str]:
    if item["task"] == "per_turn":
        return [str(form.get(f"turn_{k}", "")) for k in range(1, db.assistant_turns(item) + 1)]
    return str(form.get("choice", ""))


@router.post("/item/{item_id}/label")
async def label_form(request: Request, item_id: int, conn: Conn, who: Who) -> Response:
    form = await request.form()

    def save() -> None:
        item = visible_item(conn, who, item_id)
        try:
            db.set_label(conn, who, item_id, _value(item, form))
        except ValueError as err:
            raise HTTPException(422, str(err)) from None

    await run_in_threadpool(save)
    return _redirect("/annotate")


@router.post("/item/{item_id}/flag")
def flag_form(item_id: int, conn: Conn, who: Who, reason: Annotated[str, Form()],
              comment: Annotated[str, Form()] = "") -> Response:
    visible_item(conn, who, item_id)
    try:
        db.set_flag(conn, who, item_id, reason, comment)
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
    return _redirect("/annotate")


@router.post("/item/{item_id}/skip")
def skip_form(item_id: int, conn: Conn, who: Who) -> Response:
    visible_item(conn, who, item_id)
    db.skip(conn, who, item_id)
    return _redirect("/annotate")


@router.get("/mine", response_class=HTMLResponse)
def mine(request: Request, conn: Conn, who: Who) -> Response:
    return page(request, "mine.html", {"who": who, "labels": db.own_labels(conn, who),
                                       "progress": db.progress(conn, who)})
