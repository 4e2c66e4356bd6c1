"""The JSON API (scripts and tests): the same rules as the pages, authenticated by a Bearer token."""

# No `from __future__ import annotations` (FastAPI reads the Annotated aliases at runtime).
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel

from lima.annotate import db
from lima.annotate.web import Conn, Who, claim_ttl, shown, visible_item

router = APIRouter(prefix="/api")
TTL = Annotated[float, Depends(claim_ttl)]


class LabelIn(BaseModel):
    choice: str | None = None             # pairwise as displayed: "A" (left), "B" (right), "tie"; or a rating
    ratings: list[str] | None = None      # per-turn: one rating per assistant turn


class FlagIn(BaseModel):
    reason: str                           # broken | unsafe | cannot_judge
    comment: str = ""


def _serve(conn: Any, who: db.Annotator, item_id: int | None) -> dict[str, Any] | None:
    """An item as shown, its view recorded (the clock for time-per-item starts here)."""
    if item_id is None:
        return None
    db.record_view(conn, who, item_id)
    return shown(db.get_item(conn, item_id))


@router.get("/next")
def api_next(conn: Conn, who: Who, ttl: TTL) -> dict[str, Any]:
    return {"item": _serve(conn, who, db.next_item(conn, who, claim_ttl=ttl)), "progress": db.progress(conn, who)}


@router.get("/items/{item_id}")
def api_item(item_id: int, conn: Conn, who: Who) -> dict[str, Any]:
    visible_item(conn, who, item_id)
    label = db.own_label(conn, who, item_id)
    return {"item": _serve(conn, who, item_id), "label": label["shown_choice"] if label else None}


@router.post("/items/{item_id}/label")
def api_label(item_id: int, body: LabelIn, conn: Conn, who: Who, ttl: TTL) -> dict[str, Any]:
    item = visible_item(conn, who, item_id)
    value = body.ratings if item["task"] == "per_turn" and body.ratings is not None else body.choice
    try:
        stored = db.set_label(conn, who, item_id, value if value is not None else "")
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
    following = db.next_item(conn, who, claim_ttl=ttl)        # saves a round trip per label for scripted clients
    return {"ok": True, "item_id": item_id, "choice": stored["shown_choice"], "seconds": stored["seconds"],
            "next": _serve(conn, who, following)}


@router.post("/items/{item_id}/flag")
def api_flag(item_id: int, body: FlagIn, conn: Conn, who: Who) -> dict[str, Any]:
    visible_item(conn, who, item_id)
    try:
        return {"ok": True, **db.set_flag(conn, who, item_id, body.reason, body.comment)}
    except ValueError as err:
        raise HTTPException(422, str(err)) from None


@router.post("/items/{item_id}/skip")
def api_skip(item_id: int, conn: Conn, who: Who) -> dict[str, Any]:
    visible_item(conn, who, item_id)
    db.skip(conn, who, item_id)
    return {"ok": True}


@router.get("/labels")
def api_labels(conn: Conn, who: Who) -> dict[str, Any]:
    return {"annotator": who.name,
            "labels": [{"item_id": r["item_id"], "choice": r["shown_choice"], "updated": r["updated"]}
                       for r in db.own_labels(conn, who)]}
