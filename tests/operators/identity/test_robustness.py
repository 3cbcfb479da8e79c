"""Malformed input gets an OAuth error body and a 4xx, never a 500."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
from joserfc import jws

from operators.identity.types import CLIENT_ASSERTION_TYPE

from .conftest import App, Operator, b64
from .conftest import token as token_at

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize("path", ["/token", "/bc-authorize", "/introspect", "/revoke"])
@pytest.mark.parametrize("body,headers", [
    (b'{"grant_type": "client_credentials"}', {"content-type": "application/json"}),
    (b"grant_type=client_credentials", {"content-type": "text/plain"}),
    (b"\xff\xfe\x00garbage", FORM),
    (b"%%%&&&===", FORM),
    (b"", FORM),
    (b"grant_type=client_credentials&grant_type=authorization_code", FORM),
    (b"client_assertion=%00%01&client_assertion_type=x", FORM),
    (b"a=" + b"x" * 70000, FORM),
])
async def test_malformed_bodies(http: httpx.AsyncClient, path: str, body: bytes,
                                headers: dict[str, str]) -> None:
    response = await http.post(path, content=body, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"] in ("invalid_request", "invalid_client")


async def test_garbage_everywhere(http: httpx.AsyncClient, app: App, operator: Operator) -> None:
    bad_auth = [{"Authorization": "Basic !!!"}, {"Authorization": "Basic Zm9v"},
                {"Authorization": "Bearer x"}, {"Authorization": "Basic " + "A" * 5000}]
    for headers in bad_auth:
        response = await http.post("/token", data={"grant_type": "client_credentials"},
                                   headers=headers)
        assert response.status_code in (400, 401), headers
    tokens = ["", "x", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "e30.e30.e30", "\u2603" * 10]
    for token in tokens:
        response = await http.post("/introspect", data={**app.auth("/introspect"),
                                                         "token": token or "-"})
        assert response.status_code == 200 and response.json() == {"active": False}
    for grant in ("authorization_code", "urn:openid:params:grant-type:ciba"):
        response = await http.post("/token", data={**app.auth(), "grant_type": grant})
        assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    for path in ("/authorize", "/authorize?client_id=%ff", "/authorize?client_id=app-one"):
        response = await http.get(path)
        assert response.status_code == 400
    assert (await http.get("/nowhere")).status_code == 404
    assert (await http.get("/token")).status_code == 405
    admin = ("admin", operator.config.admin_secret)
    for content in (b"[]", b"nul", b"\xff", b'{"client_name": 5}', b'{"jwks": "x"}'):
        response = await http.post("/admin/clients", content=content, auth=admin,
                                   headers={"content-type": "application/json"})
        assert response.status_code == 400, content


def _forged(claims: bytes, header: bytes = b'{"alg":"ES256"}') -> str:
    """A JWS whose segments are written byte for byte (what no JSON library would emit)."""
    return f"{b64(header)}.{b64(claims)}.{b64(b'not a signature')}"


@pytest.mark.parametrize("assertion", [
    _forged(b'{"iss": "\\ud800", "sub": "x"}'),  # a lone surrogate: no UTF-8 to look up
    _forged(b'{"iss": "app-one"}', b'{"alg": "ES256", "kid": "\\udfff"}'),
    _forged(b'{"iss": "app-one", "exp": NaN}'),
])
async def test_an_unencodable_or_non_json_assertion_is_refused_everywhere(
    http: httpx.AsyncClient, app: App, assertion: str
) -> None:
    """Unauthenticated and unsigned: each endpoint that reads a client JWT answers with an
    OAuth error, never a 500 (the unverified ``iss`` used to reach SQLite)."""
    for path in ("/token", "/bc-authorize", "/introspect", "/revoke"):
        response = await http.post(path, data={
            "client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion,
            "grant_type": "client_credentials", "token": "x"})
        assert (response.status_code, response.json()["error"]) == (401, "invalid_client"), path
    bearer = await http.post("/token", data={"grant_type": JWT_BEARER, "assertion": assertion})
    assert (bearer.status_code, bearer.json()["error"]) == (400, "invalid_grant")
    page = await http.get("/authorize", params={"client_id": app.client_id,
                                                "request": assertion})
    assert page.status_code == 400


@pytest.mark.parametrize("claims", [
    {"jti": "\ud800"},  # signed, so past the unverified read: the replay table's key
    {"exp": 10**400},  # JSON takes it, float() cannot
    {"iat": -10**400},
    {"iat": math.nan},  # every comparison with NaN is false: the time checks were skipped
    {"nbf": math.nan},
    {"exp": math.inf},
])
async def test_a_signed_assertion_with_an_impossible_claim_is_refused(
    http: httpx.AsyncClient, app: App, claims: dict[str, Any]
) -> None:
    scope = "sim-swap:check dpv:FraudPreventionAndDetection"
    now = int(app.clock())
    body = {"iss": app.client_id, "sub": app.client_id, "aud": app.server.token_endpoint,
            "iat": now, "exp": now + 60, "jti": "j-1", **claims}
    signed = jws.serialize_compact({"alg": "ES256", "kid": app.key.kid},
                                   json.dumps(body).encode(), app.key)  # escapes, NaN as is
    response = await http.post("/token", data={
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": signed,
        "grant_type": "client_credentials", "scope": scope})
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert (await token_at(http, app, grant_type="client_credentials",
                        scope=scope)).status_code == 200  # the same client, claims as usual


@pytest.mark.parametrize("scope", ["number-verification:verify",
                                   "location-verification:verify sim-swap:check"])
async def test_client_credentials_for_a_camara_api_needs_a_purpose(
    http: httpx.AsyncClient, app: App, scope: str
) -> None:
    """The gateway refuses a purpose-less token for every CAMARA operation, so /token does
    not issue one (SECURITY.md: 400 invalid_scope)."""
    response = await token_at(http, app, grant_type="client_credentials", scope=scope)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")
