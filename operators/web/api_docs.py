"""The API documentation page (``/docs``), served whole from the installed packages.

FastAPI's own ``/docs`` pulls Swagger UI from a CDN, so on a machine with no network it is a
blank page, and its inline bootstrap script breaks the pages' Content-Security-Policy. Here
Swagger UI's files come from the installed ``swagger-ui-bundle-v2`` package, mounted at
:data:`SWAGGER_UI_PATH`, and the page starts it with a script file of ours (``api-docs.js``)
that reads the document's URL from a ``data-`` attribute: no inline script, nothing fetched
from elsewhere (the validator badge, which would call swagger.io, is switched off). Swagger
UI 5 renders under the pages' Content-Security-Policy unchanged (``style-src 'self'`` too: it
sets styles through the DOM, which CSP allows), and reads OpenAPI 3.1, which FastAPI writes and
Swagger UI 4 (the ``swagger-ui-bundle`` package) refuses; hence ``swagger-ui-bundle-v2``.

The developer portal's console reuses the same assets with a script of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from .pages import page, static_files

__all__ = [
    "SWAGGER_UI_PATH",
    "api_docs_page",
    "install_api_docs",
    "swagger_ui_files",
]

SWAGGER_UI_PATH = "/static/swagger-ui"
"""Where Swagger UI's own files are served (before ``/static``, which would shadow it)."""

SWAGGER_UI_DIR = Path(str(swagger_ui_bundle.swagger_ui_path))

SWAGGER_UI_FILES = frozenset({
    "swagger-ui-bundle.js",
    "swagger-ui-bundle.js.map",
    "swagger-ui-standalone-preset.js",
    "swagger-ui-standalone-preset.js.map",
    "swagger-ui.css",
    "swagger-ui.css.map",
    "favicon-16x16.png",
    "favicon-32x32.png",
})
"""What the pages use of the bundle. Its ``index.html`` and ``swagger-initializer.js`` are
left out: they open the public Petstore example from the internet."""


class _SwaggerUiFiles(StaticFiles):
    """The bundle's folder, answering only for :data:`SWAGGER_UI_FILES`."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path not in SWAGGER_UI_FILES:
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def swagger_ui_files() -> StaticFiles:
    """Swagger UI's script, preset and stylesheet from the installed ``swagger-ui-bundle``."""
    return _SwaggerUiFiles(directory=str(SWAGGER_UI_DIR))


def api_docs_page(request: Request, spec_url: str, title: str,
                  context: dict[str, Any] | None = None) -> HTMLResponse:
    """The documentation page of ``spec_url``, under the pages' own security headers."""
    return page(request, "api_docs.html", {"spec_url": spec_url, "title": title,
                                           **(context or {})})


def _has_mount(app: FastAPI, path: str) -> bool:
    return any(isinstance(r, Mount) and r.path == path for r in app.router.routes)


def install_api_docs(app: FastAPI, *, operator_name: str | None = None) -> None:
    """Serve ``/docs`` for ``app``'s own ``/openapi.json`` from local files only.

    Build ``app`` with ``docs_url=None, redoc_url=None`` (ReDoc too comes from a CDN). The
    Swagger UI mount goes first among the routes so that a ``/static`` mount, added before
    or after, cannot shadow it; ``/static`` (the pages' stylesheet and our scripts) is
    mounted here when the app has none yet, as the aggregator's does not.
    """
    if not _has_mount(app, SWAGGER_UI_PATH):
        app.router.routes.insert(0, Mount(SWAGGER_UI_PATH, app=swagger_ui_files(),
                                          name="swagger-ui"))
    if not _has_mount(app, "/static"):
        app.mount("/static", static_files(), name="static")
    spec_url = app.openapi_url or "/openapi.json"
    name = operator_name or app.title

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        return api_docs_page(request, spec_url, f"{name}: API documentation",
                             {"operator_name": name})

