"""Every page and form of the developer portal answers hostile input with a 4xx (or a page),
never a 500: random fields, values and path parameters, signed in with a valid CSRF token (so
the input reaches the handlers), and signed out.

Routes are read from the app itself, so a page added later is fuzzed without editing this file.
"""

from __future__ import annotations

import random
import re
from typing import Any
from urllib.parse import urlencode

from fastapi.routing import APIRoute

from .conftest import FORM, Browser, Portal

HOSTILE = [
    "", " ", "0", "-1", "1e309", "NaN", "null", "true", "[]", "{}", "{\"kty\": \"EC\"}",
    "a" * 5000, "\x00", "é\u202e", "<script>alert(1)</script>", "'; DROP TABLE x; --",
    "../../etc/passwd", "%00", "9999-99", "2026-13", "2026-02-30", "app-0000", "sandbox",
    "pay-as-you-go", "dpv:FraudPreventionAndDetection", "sim-swap", "http://127.0.0.1:1/",
    "+34600000001", "on",
]
FIELDS = ["name", "email", "password", "organisation", "jwk", "key", "plan", "api", "client_id",
          "purpose", "issuer", "client_secret", "days", "month", "from", "to", "application",
          "invitation", "code", "api:sim-swap", "purpose:dpv:FraudPreventionAndDetection"]
ROUNDS = 6


def _routes(routes: list[Any], prefix: str = "") -> list[tuple[str, set[str]]]:
    """(path, methods) of every endpoint, through included routers (FastAPI may keep an
    included router whole rather than copying its routes into the app)."""
    found: list[tuple[str, set[str]]] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            found += _routes(inner.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, APIRoute):
            found.append((prefix + route.path, set(route.methods)))
    return found


def _paths(portal: Portal, rng: random.Random) -> list[tuple[str, str]]:
    """(method, concrete path) for every /portal and /scim route, parameters filled in."""
    found = []
    for path, methods in _routes(portal.app.routes):
        if not path.startswith(("/portal", "/scim")):
            continue
        for method in sorted(methods - {"HEAD"}):
            concrete = re.sub(r"\{[^}]+\}", lambda _: rng.choice([*HOSTILE[:12], "x", "2026-12"])
                              .replace("/", "_") or "x", path)
            found.append((method, concrete))
    return found


def _form(rng: random.Random) -> dict[str, str]:
    return {field: rng.choice(HOSTILE) for field in rng.sample(FIELDS, rng.randint(0, 8))}


async def test_no_page_or_form_answers_500(portal: Portal, developer: Browser) -> None:
    rng = random.Random(20261201)
    stranger = portal.browser("198.51.100.9")
    csrf = await developer.csrf("/portal")
    paths = _paths(portal, rng)
    assert len(paths) > 30, paths  # the portal's pages, forms, SCIM and RISC endpoints
    failures = []
    seen: set[int] = set()
    for _ in range(ROUNDS):
        for method, path in paths:
            for who in (developer, stranger):
                form = _form(rng)
                if who is developer and method == "POST":
                    form["csrf"] = csrf
                query = urlencode(_form(rng))
                if method == "GET":
                    answer = await who.http.get(f"{path}?{query}")
                else:
                    answer = await who.http.request(method, path, content=urlencode(form),
                                                    headers=FORM)
                seen.add(answer.status_code)
                if answer.status_code >= 500:
                    failures.append((method, path, form, answer.status_code, answer.text[:200]))
                if who is developer and (await developer.get("/portal")).status_code != 200:
                    # Signed out, or a form deactivated the account: a new developer goes on.
                    developer = portal.browser()
                    signed_up = await developer.sign_up(f"dev{len(paths) + rng.random()}@ex.com")
                    assert signed_up.status_code == 303, signed_up.text
                    csrf = await developer.csrf("/portal")
    assert not failures, failures[:5]
    # The input reached the handlers: refusals of several kinds, and answers that went through.
    assert {400, 404} <= seen and min(seen) < 400, sorted(seen)


async def test_non_ascii_cookies_and_csrf_tokens_are_refused_not_500(
    portal: Portal, developer: Browser
) -> None:
    """A MAC compared as text raises on a non-ASCII character: the session cookie and the
    CSRF field are compared as bytes, so such a value is only a forgery."""
    http = portal.http()
    for cookie in ("abc.\u00e9", "\u00e9.abc"):
        answer = await http.get("/portal", headers={"cookie": f"ogsim_dev={cookie}".encode()})
        assert answer.status_code == 303 and "/portal/sign-in" in answer.headers["location"]
    for token in ("\u00e9", "a\u202eb"):
        answer = await developer.http.post(
            "/portal/invitations", content=urlencode({"csrf": token}), headers=FORM
        )
        assert answer.status_code == 403, answer.text
