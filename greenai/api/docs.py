"""``/docs`` (Swagger UI) with its scripts served by the daemon itself.

FastAPI's own page loads them from a CDN, so on a machine with no internet it stays blank.
The files come from the ``fastapi-offline`` package (Swagger UI, Apache-2.0; its licence ships
with it), mounted here rather than through its ``FastAPIOffline`` factory so that
``create_app`` keeps building a plain ``FastAPI``. No ``/redoc``: ReDoc still fetches its logo
from a CDN.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_ASSETS_URL = "/static/docs"
# Swagger UI would otherwise ask validator.swagger.io to judge the spec (a call out).
SWAGGER_PARAMETERS = {"validatorUrl": None}


def assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def add_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs`` from local assets; build ``app`` with ``docs_url=None`` and
    ``redoc_url=None`` so FastAPI's CDN pages are not registered first."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    title = app.title

    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title} - Swagger UI",
            oauth2_redirect_url=root + redirect_url,
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    for path, endpoint in (("/docs", swagger_ui), (redirect_url, swagger_redirect)):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
