"""Malformed input gets an OAuth error body and a 4xx, never a 500."""

from __future__ import annotations

import httpx
import pytest

from .conftest import App, Operator

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
