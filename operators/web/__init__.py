"""Server-rendered pages of an operator: one Jinja2 environment, one stylesheet, no CDN.

Every page (the subscriber's consent portal, the handset, the consent capture page) extends
``base.html`` and is styled by ``static/ogsim.css``, both shipped inside the package, so a page
renders the same with no network. Templates autoescape: a display name an application chose
can never inject markup into a subscriber's page.
"""

from __future__ import annotations

from operators.web.api_docs import install_api_docs
from operators.web.pages import STATIC_DIR, TEMPLATE_DIRS, add_template_dir, page, static_files

__all__ = [
    "STATIC_DIR",
    "TEMPLATE_DIRS",
    "add_template_dir",
    "install_api_docs",
    "page",
    "static_files",
]
