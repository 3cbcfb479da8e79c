"""OIDC authorization code + PKCE with network-based authentication, and its refusals."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt

from .conftest import REDIRECT, App, FakeClock, Operator

SCOPE = "openid number-verification:verify dpv:IdentityVerification"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, create_s256_code_challenge(verifier)


def authorize_params(app: App, challenge: str, **extra: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT,
            "scope": SCOPE, "state": "st-123", "nonce": "n-1", "code_challenge": challenge,
            "code_challenge_method": "S256", **extra}


def redirected(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def get_code(operator: Operator, app: App, role: str = "approves",
                   **extra: str) -> tuple[str, str]:
    verifier, challenge = pkce()
    async with operator.http(operator.ip_of(role)) as device:
        query = redirected(await device.get("/authorize",
                                            params=authorize_params(app, challenge, **extra)))
    assert query["state"] == "st-123" and query["iss"] == operator.server.issuer, query
    return query["code"], verifier


async def redeem(http: httpx.AsyncClient, app: App, code: str, verifier: str | None,
                 redirect_uri: str = REDIRECT) -> httpx.Response:
    form = {**app.auth(), "grant_type": "authorization_code", "code": code,
            "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    return await http.post("/token", data=form)


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


async def test_code_flow_from_a_device_ip(http: httpx.AsyncClient, app: App,
                                          operator: Operator) -> None:
    code, verifier = await get_code(operator, app)
    response = await redeem(http, app, code, verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    claims = operator.server.verify_access_token(body["access_token"])
    context = operator.server.token_context(claims)
    assert context.msisdn == operator.number("approves")
    assert context.purpose == "dpv:IdentityVerification"
    assert context.scopes == ("number-verification:verify",)
    signing = operator.server.keys.active("RS256")  # OIDC's default for ID tokens
    id_token = jwt.decode(body["id_token"], signing.key, algorithms=["RS256"])
    assert id_token.header["typ"] == "JWT" and id_token.header["kid"] == signing.kid
    assert id_token.claims["aud"] == app.client_id and id_token.claims["nonce"] == "n-1"
    assert id_token.claims["sub"] == claims.sub != operator.number("approves")


async def test_foreign_ip_fails_cleanly_with_state(app: App, operator: Operator) -> None:
    _, challenge = pkce()
    for ip in ("203.0.113.50", "10.99.0.1", "192.168.1.1"):
        async with operator.http(ip) as browser:
            query = redirected(await browser.get("/authorize",
                                                 params=authorize_params(app, challenge)))
        assert query["error"] == "login_required" and query["state"] == "st-123"
        assert "code" not in query


async def test_handset_denies_consent(app: App, operator: Operator) -> None:
    _, challenge = pkce()
    for role in ("denies-consent", "never-answers"):
        async with operator.http(operator.ip_of(role)) as device:
            query = redirected(await device.get("/authorize",
                                                params=authorize_params(app, challenge)))
        assert query["error"] == "access_denied" and query["state"] == "st-123"


async def test_unknown_client_or_wrong_redirect_uri_is_an_error_page(
    app: App, operator: Operator
) -> None:
    _, challenge = pkce()
    async with operator.http(operator.ip_of("approves")) as device:
        for params in (
            authorize_params(app, challenge, client_id="ghost"),
            authorize_params(app, challenge, redirect_uri=REDIRECT + "/other"),
            authorize_params(app, challenge, redirect_uri=REDIRECT + "?x=1"),
            authorize_params(app, challenge, redirect_uri="https://evil.example/callback"),
            {k: v for k, v in authorize_params(app, challenge).items() if k != "redirect_uri"},
            {k: v for k, v in authorize_params(app, challenge).items() if k != "client_id"},
        ):
            response = await device.get("/authorize", params=params)
            assert response.status_code == 400, params
            assert "location" not in response.headers
            assert response.json()["error"] == "invalid_request"


async def test_pkce_is_required_and_s256_only(app: App, operator: Operator) -> None:
    verifier, challenge = pkce()
    async with operator.http(operator.ip_of("approves")) as device:
        plain = authorize_params(app, verifier, code_challenge_method="plain")
        assert redirected(await device.get("/authorize", params=plain))["error"] == (
            "invalid_request")
        missing = {k: v for k, v in authorize_params(app, challenge).items()
                   if not k.startswith("code_challenge")}
        assert redirected(await device.get("/authorize", params=missing))["error"] == (
            "invalid_request")
        bad_type = authorize_params(app, challenge, response_type="token")
        assert redirected(await device.get("/authorize", params=bad_type))["error"] == (
            "unsupported_response_type")
        bad_scope = authorize_params(app, challenge, scope="openid number-verification:verify")
        assert redirected(await device.get("/authorize", params=bad_scope))["error"] == (
            "invalid_scope")


async def test_pkce_mismatch_or_missing_verifier(http: httpx.AsyncClient, app: App,
                                                 operator: Operator) -> None:
    code, verifier = await get_code(operator, app)
    assert error(await redeem(http, app, code, secrets.token_urlsafe(48))) == (
        400, "invalid_grant")
    assert error(await redeem(http, app, code, None)) == (400, "invalid_grant")
    assert error(await redeem(http, app, code, "short")) == (400, "invalid_grant")
    assert (await redeem(http, app, code, verifier)).status_code == 200


async def test_reused_code_is_refused_and_first_tokens_revoked(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    code, verifier = await get_code(operator, app)
    first = await redeem(http, app, code, verifier)
    assert first.status_code == 200
    access_token = first.json()["access_token"]
    introspected = await http.post("/introspect", data={**app.auth("/introspect"),
                                                         "token": access_token})
    assert introspected.json()["active"] is True
    clock.advance(1)
    assert error(await redeem(http, app, code, verifier)) == (400, "invalid_grant")
    clock.advance(29)
    assert error(await redeem(http, app, code, verifier)) == (400, "invalid_grant")
    introspected = await http.post("/introspect", data={**app.auth("/introspect"),
                                                         "token": access_token})
    assert introspected.json() == {"active": False}


async def test_expired_code(http: httpx.AsyncClient, app: App, operator: Operator,
                            clock: FakeClock) -> None:
    code, verifier = await get_code(operator, app)
    clock.advance(60)
    assert error(await redeem(http, app, code, verifier)) == (400, "invalid_grant")


async def test_code_redeemed_by_another_client_or_wrong_redirect(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    code, verifier = await get_code(operator, app)
    other = operator.register("app-two")
    assert error(await redeem(http, other, code, verifier)) == (400, "invalid_grant")
    assert error(await redeem(http, app, code, verifier, REDIRECT + "/x")) == (
        400, "invalid_grant")
    assert error(await redeem(http, app, "not-a-code", verifier)) == (400, "invalid_grant")
    assert (await redeem(http, app, code, verifier)).status_code == 200


async def test_existing_consent_and_prompt_none(app: App, operator: Operator) -> None:
    _, challenge = pkce()
    async with operator.http(operator.ip_of("denies-consent")) as device:
        query = redirected(await device.get(
            "/authorize", params=authorize_params(app, challenge, prompt="none")))
        assert query["error"] == "consent_required"
        operator.server.consents.grant(operator.number("denies-consent"), app.client_id,
                                       "dpv:IdentityVerification",
                                       ("number-verification:verify",), actor="admin")
        query = redirected(await device.get("/authorize",
                                            params=authorize_params(app, challenge)))
        assert "code" in query


async def test_repeated_parameter(app: App, operator: Operator) -> None:
    _, challenge = pkce()
    params: list[tuple[str, str | int | float | bool | None]] = [
        *authorize_params(app, challenge).items(), ("scope", "openid")]
    async with operator.http(operator.ip_of("approves")) as device:
        query = redirected(await device.get("/authorize", params=params))
    assert query["error"] == "invalid_request"


async def test_a_code_whose_consent_was_withdrawn_before_redemption_gives_no_token(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    """The subscriber consented at /authorize, then withdrew it before the application
    redeemed the code: the token would be refused at its first call, so none is issued."""
    code, verifier = await get_code(operator, app)
    number = operator.number("approves")
    (consent,) = operator.server.consents.for_subscriber(number)
    operator.server.consents.revoke(consent.id, actor="subscriber:portal")
    response = await redeem(http, app, code, verifier)
    assert error(response) == (400, "invalid_grant")
    assert "no longer stands" in response.json()["error_description"]
    live = operator.server.db.one(
        "SELECT COUNT(*) AS n FROM identity_access_tokens WHERE revoked_at IS NULL")
    assert live["n"] == 0
