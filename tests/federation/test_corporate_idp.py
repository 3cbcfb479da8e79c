"""The corporate identity provider: discovery, sign-in, code + PKCE, ID tokens, deprovisioning."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import FastAPI, Request
from joserfc import jwt
from joserfc.jwk import KeySet

from federation.corporate_idp import (
    ACCOUNT_DISABLED,
    CorporateIdp,
    CorporateUser,
    create_corporate_idp_app,
    example_corporate_idp,
)
from federation.transport import AsgiNetwork
from tests.federation.conftest import FakeClock

ISSUER = "http://idp.corp.example"
RECEIVER = "http://portal.example"
REDIRECT = "http://portal.example/cb"
SECRET = "portal-secret-0123456789"
VERIFIER = "v" * 50


@pytest.fixture
def received() -> list[tuple[str, str, dict[str, str], bytes]]:
    return []


@pytest.fixture
async def idp(clock: FakeClock, received: list[Any]) -> AsyncIterator[tuple[CorporateIdp,
                                                                            httpx.AsyncClient]]:
    receiver = FastAPI()

    @receiver.api_route("/{path:path}", methods=["POST", "PATCH"])
    async def capture(request: Request, path: str) -> dict[str, str]:
        received.append((request.method, request.url.path, dict(request.headers),
                         await request.body()))
        return {}

    network = AsgiNetwork()
    http = httpx.AsyncClient(transport=network)
    corporate = CorporateIdp(ISSUER, "idp-admin", clock=clock, http=http)
    corporate.add_user(CorporateUser("u-ada", "ada@corp.example", "Ada", "pw-ada"))
    corporate.register_client("portal", SECRET, [REDIRECT])
    network.add(ISSUER, create_corporate_idp_app(corporate))
    network.add(RECEIVER, receiver)
    yield corporate, http
    await http.aclose()


async def code_for(http: httpx.AsyncClient, *, verifier: str = VERIFIER,
                   password: str = "pw-ada") -> httpx.Response:
    page = await http.get(f"{ISSUER}/authorize", params={
        "response_type": "code", "client_id": "portal", "redirect_uri": REDIRECT,
        "scope": "openid email", "state": "s1", "nonce": "n1",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256"})
    assert page.status_code == 200, page.text
    request_id = re.search(r'name="request" value="([^"]+)"', page.text)
    assert request_id is not None
    return await http.post(f"{ISSUER}/authorize", data={
        "request": request_id.group(1), "username": "ada@corp.example", "password": password})


def code_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["s1"] and query["iss"] == [ISSUER]
    return query["code"][0]


async def redeem(http: httpx.AsyncClient, code: str, verifier: str = VERIFIER,
                 secret: str = SECRET) -> httpx.Response:
    return await http.post(f"{ISSUER}/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": verifier}, auth=("portal", secret))


async def test_discovery_and_keys_describe_the_provider(idp: Any) -> None:
    _, http = idp
    metadata = (await http.get(f"{ISSUER}/.well-known/openid-configuration")).json()
    assert metadata["issuer"] == ISSUER
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    keys = (await http.get(metadata["jwks_uri"])).json()["keys"]
    assert len(keys) == 1 and "d" not in keys[0]


async def test_a_signed_in_user_gets_an_id_token_for_the_portal(idp: Any,
                                                                clock: FakeClock) -> None:
    _, http = idp
    answer = await redeem(http, code_of(await code_for(http)))
    assert answer.status_code == 200, answer.text
    keys = KeySet.import_key_set((await http.get(f"{ISSUER}/jwks")).json())
    claims = jwt.decode(answer.json()["id_token"], keys, algorithms=["ES256"]).claims
    assert claims["iss"] == ISSUER and claims["aud"] == "portal" and claims["sub"] == "u-ada"
    assert claims["nonce"] == "n1" and claims["email"] == "ada@corp.example"
    assert claims["exp"] == int(clock()) + 300


@pytest.mark.parametrize("verifier", ["w" * 50, ""])
async def test_a_wrong_or_missing_pkce_verifier_is_refused(idp: Any, verifier: str) -> None:
    _, http = idp
    answer = await redeem(http, code_of(await code_for(http)), verifier=verifier)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


async def test_a_code_works_once_and_not_after_its_lifetime(idp: Any, clock: FakeClock) -> None:
    _, http = idp
    code = code_of(await code_for(http))
    assert (await redeem(http, code)).status_code == 200
    again = await redeem(http, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    late = code_of(await code_for(http))
    clock.advance(61)
    assert (await redeem(http, late)).json()["error"] == "invalid_grant"


async def test_a_wrong_client_secret_is_invalid_client(idp: Any) -> None:
    _, http = idp
    answer = await redeem(http, code_of(await code_for(http)), secret="wrong-secret-000000")
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


async def test_a_wrong_password_shows_the_form_again(idp: Any) -> None:
    _, http = idp
    answer = await code_for(http, password="nope")
    assert answer.status_code == 401 and "wrong user name or password" in answer.text


@pytest.mark.parametrize("change", [
    {"client_id": "nobody"}, {"redirect_uri": "http://evil.example/cb"},
    {"code_challenge_method": "plain"}, {"scope": "email"},
])
async def test_a_bad_authorization_request_is_a_page_never_a_redirect(
    idp: Any, change: dict[str, str]
) -> None:
    _, http = idp
    params = {"response_type": "code", "client_id": "portal", "redirect_uri": REDIRECT,
              "scope": "openid", "code_challenge": create_s256_code_challenge(VERIFIER),
              "code_challenge_method": "S256", **change}
    answer = await http.get(f"{ISSUER}/authorize", params=params)
    assert 400 <= answer.status_code < 500 and "location" not in answer.headers
    assert 'id="problem"' in answer.text


async def test_a_disabled_user_can_no_longer_sign_in(idp: Any) -> None:
    corporate, http = idp
    await corporate.disable("u-ada")
    answer = await code_for(http)
    assert answer.status_code == 403 and "disabled" in answer.text


async def test_disabling_a_user_pushes_scim_and_a_signed_risc_event(
    idp: Any, received: list[Any], clock: FakeClock
) -> None:
    corporate, http = idp
    corporate.push_scim_to(f"{RECEIVER}/scim/v2", "scim_token")
    corporate.push_events_to(f"{RECEIVER}/portal/risc/events", "portal")
    answer = await http.post(f"{ISSUER}/admin/users/u-ada/disable",
                             headers={"Authorization": "Bearer idp-admin"})
    assert answer.status_code == 200
    assert [d["status"] for d in answer.json()["deliveries"]] == [200, 200]
    (method, path, headers, body), (risc_method, risc_path, risc_headers, token) = received
    assert (method, path) == ("PATCH", "/scim/v2/Users/u-ada")
    assert headers["authorization"] == "Bearer scim_token"
    assert json.loads(body)["Operations"] == [{"op": "replace", "path": "active",
                                               "value": False}]
    assert (risc_method, risc_path) == ("POST", "/portal/risc/events")
    assert risc_headers["content-type"] == "application/secevent+jwt"
    keys = KeySet.import_key_set(corporate.jwks())
    decoded = jwt.decode(token.decode(), keys, algorithms=["ES256"])
    assert decoded.header["typ"] == "secevent+jwt"
    assert decoded.claims["aud"] == "portal" and decoded.claims["iat"] == int(clock())
    assert decoded.claims["events"][ACCOUNT_DISABLED]["subject"] == {
        "format": "iss_sub", "iss": ISSUER, "sub": "u-ada"}


async def test_the_admin_api_needs_the_admin_secret_and_a_known_user(idp: Any) -> None:
    _, http = idp
    assert (await http.post(f"{ISSUER}/admin/users/u-ada/disable")).status_code == 401
    missing = await http.post(f"{ISSUER}/admin/users/nobody/disable",
                              headers={"Authorization": "Bearer idp-admin"})
    assert missing.status_code == 404


@pytest.mark.parametrize("url", ["http://portal.example.net/scim", "ftp://portal.example.net"])
async def test_a_receiver_off_loopback_must_be_https(idp: Any, url: str) -> None:
    """A SCIM receiver is sent the bearer token and employees' addresses."""
    company, http = idp
    refused = await http.post(f"{ISSUER}/admin/receivers",
                              headers={"Authorization": "Bearer idp-admin"},
                              json={"kind": "scim", "url": url, "token": "t"})
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"
    assert "url:" in refused.json()["error_description"]
    assert company.scim_receivers == []
    accepted = await http.post(f"{ISSUER}/admin/receivers",
                               headers={"Authorization": "Bearer idp-admin"},
                               json={"kind": "scim", "url": "https://portal.example.net/scim",
                                     "token": "t"})
    assert accepted.status_code == 201
    assert len(company.scim_receivers) == 1


def test_the_demo_company_signs_in_its_two_employees(clock: FakeClock) -> None:
    company = example_corporate_idp(ISSUER, admin_secret="s", clock=clock)
    company.register_client("portal", SECRET, [REDIRECT])
    for login in ("ada", "bob@corp.example"):
        request_id, _ = company.begin({
            "client_id": "portal", "redirect_uri": REDIRECT, "response_type": "code",
            "scope": "openid", "code_challenge": create_s256_code_challenge(VERIFIER),
            "code_challenge_method": "S256"})
        user = login.split("@")[0]
        assert company.authenticate(request_id, login, f"{user}-password").startswith(REDIRECT)


async def test_id_tokens_say_whether_the_company_verified_the_address(idp: Any) -> None:
    """The portal signs in only a verified address (email_verified): the demo company's
    employees have theirs verified, and its admin API can add one whose address is not."""
    corporate, http = idp
    metadata = (await http.get(f"{ISSUER}/.well-known/openid-configuration")).json()
    assert "email_verified" in metadata["claims_supported"]
    keys = KeySet.import_key_set(corporate.jwks())
    answer = await redeem(http, code_of(await code_for(http)))
    claims = jwt.decode(answer.json()["id_token"], keys, algorithms=["ES256"]).claims
    assert claims["email_verified"] is True
    added = await http.post(f"{ISSUER}/admin/users", headers={"Authorization": "Bearer idp-admin"},
                            json={"user_id": "u-typo", "email": "typed@corp.example",
                                  "name": "Typed", "password": "pw", "email_verified": False})
    assert added.status_code == 201, added.text
    unverified = jwt.decode(corporate.id_token(corporate.users["u-typo"], "portal", None), keys,
                            algorithms=["ES256"]).claims
    assert unverified["email_verified"] is False
    company = example_corporate_idp(ISSUER, admin_secret="s")
    assert all(user.email_verified for user in company.users.values())
    demo = jwt.decode(company.id_token(company.users["ada"], "portal", None),
                      KeySet.import_key_set(company.jwks()), algorithms=["ES256"]).claims
    assert demo["email_verified"] is True
