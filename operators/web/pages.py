"""The Jinja2 environment and the static files shared by every page an operator serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIRS: list[Path] = [HERE / "templates"]
"""Where templates are looked up; a page package adds its own folder at import time."""

_templates: Jinja2Templates | None = None

SECURITY_HEADERS = {
    # Pages fetch nothing from elsewhere, frame nothing and are framed by nobody.
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self' http: https:; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def templates() -> Jinja2Templates:
    """The one environment (built on first use, after every page package added its folder)."""
    global _templates
    if _templates is None:
        _templates = Jinja2Templates(directory=[str(d) for d in TEMPLATE_DIRS])
    return _templates


def add_template_dir(directory: Path) -> None:
    """Let a page package keep its templates beside its code."""
    global _templates
    if directory not in TEMPLATE_DIRS:
        TEMPLATE_DIRS.append(directory)
        _templates = None


def page(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render ``name`` with ``context``; every page carries the same security headers."""
    response = templates().TemplateResponse(
        request, name, context or {}, status_code=status_code
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def static_files() -> StaticFiles:
    """The stylesheet and scripts every page links to, served from the installed package."""
    return StaticFiles(directory=str(STATIC_DIR))
