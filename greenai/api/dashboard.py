"""The dashboard at ``/``: one HTML page and its scripts and styles, served from package data
(no CDN: it works on a machine with no internet). The page reads the JSON API as any client
does; it holds no data of its own and needs no route of its own beyond these files."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
STATIC_URL = "/static/dashboard"

# Everything from this daemon, nothing inline, no frames: a script injected through a job's
# name (which the page shows) could neither run nor send the token anywhere else.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def dashboard_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


def add_dashboard(app: FastAPI) -> None:
    """``/`` and its assets under ``/static/dashboard``."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="dashboard")
    app.add_api_route("/", dashboard_page, methods=["GET"], include_in_schema=False)
