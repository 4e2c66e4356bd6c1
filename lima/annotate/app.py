"""The annotation web app: server-rendered pages, one small script (keys, progress bar), a JSON API.

`create_app` only wires things together; the routes live by page: `pages` (annotators), `admin`, `api`,
with what they share (auth, connection, templates) in `web`. Every response carries a strict
Content-Security-Policy (see render.py for why); annotators get HTML error pages, scripts get JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from lima.annotate import admin, api, db, pages
from lima.annotate.web import RESOURCES, SECURITY_HEADERS, Unauthorized, page, wants_json

ERROR_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 405: "Not allowed here",
                409: "Conflict", 422: "That did not work"}


def create_app(db_path: str | Path, synchronous: str = "FULL", claim_ttl: float = db.DEFAULT_CLAIM_TTL) -> FastAPI:
    """Build the app for one store; the schema is created here once, requests open their own connection.

    `claim_ttl` (seconds): an unfinished claim of a non-shared item expires after this long and another
    annotator may take the item over.
    """
    db.connect(db_path).close()
    app = FastAPI(title="LIMA annotation", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.db_path = Path(db_path)
    app.state.synchronous = synchronous
    app.state.claim_ttl = claim_ttl
    app.mount("/static", StaticFiles(directory=str(RESOURCES / "static")), name="static")
    for module in (pages, admin, api):
        app.include_router(module.router)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized) -> Response:
        headers = {"WWW-Authenticate": "Bearer", **SECURITY_HEADERS}
        if exc.api:
            return JSONResponse({"detail": "a valid annotator token is required"}, status_code=401, headers=headers)
        return page(request, "unauthorized.html", {}, status_code=401, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": exc.errors()}, status_code=422)
        fields = ", ".join(str(e["loc"][-1]) for e in exc.errors())
        return error(request, 422, f"the request is missing or has an invalid value for: {fields}")

    return app


def error(request: Request, status: int, message: str) -> Response:
    """JSON for scripts, a page with a way back for people."""
    if wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return page(request, "error.html", {"status": status, "title": ERROR_TITLES.get(status, "Error"),
                                        "message": message}, status_code=status)
