"""Signed request objects (RFC 9101, OIDC Core §6.1, CIBA Core §7.1.1) at /authorize and
/bc-authorize: accepted when signed by the client's registered key, refused otherwise."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from operators.identity.types import CLIENT_ASSERTION_TYPE

from .conftest import REDIRECT, App, FakeClock, Operator, new_key, raw_jws
from .test_authorization_code import SCOPE, pkce, redeem
from .test_ciba import CONSENT_SCOPE, poll

CIBA = "urn:openid:params:grant-type:ciba"


def ciba_object(app: App, operator: Operator, **claims: Any) -> str:
    """A signed CIBA authentication request: ``jti``, ``iat``, ``nbf``, ``exp`` all set."""
    now = int(operator.clock())
    body: dict[str, Any] = {"nbf": now, "scope": CONSENT_SCOPE,
                            "login_hint": f"tel:{operator.number('approves')}",
                            "binding_message": "Login to Example"}
    body.update(claims)
    return app.assertion(operator.server.issuer, **body)


async def signed_bc_authorize(http: httpx.AsyncClient, app: App, request: str,
                              **outside: str) -> httpx.Response:
    return await http.post("/bc-authorize",
                           data={**app.auth("/bc-authorize"), "request": request, **outside})


def authorization_object(app: App, operator: Operator, challenge: str, **claims: Any) -> str:
    body: dict[str, Any] = {
        "client_id": app.client_id, "response_type": "code", "redirect_uri": REDIRECT,
        "scope": SCOPE, "state": "st-ro", "nonce": "n-ro", "code_challenge": challenge,
        "code_challenge_method": "S256"}
    body.update(claims)
    return app.assertion(operator.server.issuer, **body)


async def authorize(operator: Operator, query: dict[str, str]) -> httpx.Response:
    async with operator.http(operator.ip_of("approves")) as device:
        return await device.get("/authorize", params=query)


def oauth_error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


# -- CIBA ------------------------------------------------------------------------------------


async def test_signed_ciba_request_is_accepted_and_yields_a_token(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    response = await signed_bc_authorize(http, app, ciba_object(app, operator))
    assert response.status_code == 200, response.text
    operator.clock.advance(response.json()["interval"])
    token = await poll(http, app, response.json()["auth_req_id"])
    assert token.status_code == 200, token.text
    claims = operator.server.verify_access_token(token.json()["access_token"])
    assert operator.server.token_context(claims).msisdn == operator.number("approves")


async def test_signed_ciba_request_takes_an_integer_requested_expiry(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    response = await signed_bc_authorize(http, app, ciba_object(app, operator,
                                                                requested_expiry=30))
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == 30


@pytest.mark.parametrize("drop", ["jti", "iat", "nbf", "exp"])
async def test_ciba_request_object_needs_jti_iat_nbf_exp(
    http: httpx.AsyncClient, app: App, operator: Operator, drop: str
) -> None:
    now = int(operator.clock())
    request = app.assertion(operator.server.issuer, drop=(drop,), nbf=now, scope=CONSENT_SCOPE,
                            login_hint=f"tel:{operator.number('approves')}")
    response = await signed_bc_authorize(http, app, request)
    assert oauth_error(response) == (400, "invalid_request"), response.text


async def test_ciba_parameters_outside_the_signed_request_are_refused(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    response = await signed_bc_authorize(http, app, ciba_object(app, operator),
                                         scope=CONSENT_SCOPE)
    assert oauth_error(response) == (400, "invalid_request")
    assert "outside" in response.json()["error_description"]


async def test_ciba_request_object_refusals(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    issuer = operator.server.issuer
    foreign = new_key()
    now = int(clock())
    cases = {
        "wrong signature": app.assertion(issuer, key=foreign, header={
            "alg": "ES256", "kid": app.key.kid}, nbf=now, scope=CONSENT_SCOPE,
            login_hint=f"tel:{operator.number('approves')}"),
        "unregistered key": app.assertion(issuer, key=foreign, nbf=now, scope=CONSENT_SCOPE),
        "expired": app.assertion(issuer, iat=now - 400, nbf=now - 400, exp=now - 300,
                                 scope=CONSENT_SCOPE),
        "wrong audience": app.assertion(operator.server.token_endpoint, nbf=now,
                                        scope=CONSENT_SCOPE),
        "foreign audience in an array": app.assertion([issuer, "https://other.example"],
                                                      nbf=now, scope=CONSENT_SCOPE),
        "another issuer": app.assertion(issuer, iss="someone-else", nbf=now,
                                        scope=CONSENT_SCOPE),
        "unsigned alg none": raw_jws({"alg": "none"}, {
            "iss": app.client_id, "aud": issuer, "iat": now, "nbf": now, "exp": now + 60,
            "jti": "none-1", "scope": CONSENT_SCOPE}, lambda _: b""),
        "alg none with a signature": raw_jws({"alg": "none"}, {
            "iss": app.client_id, "aud": issuer, "iat": now, "nbf": now, "exp": now + 60,
            "jti": "none-2", "scope": CONSENT_SCOPE}, lambda _: b"sig"),
        "HS256 with the public key": raw_jws({"alg": "HS256", "kid": app.key.kid}, {
            "iss": app.client_id, "aud": issuer, "iat": now, "nbf": now, "exp": now + 60,
            "jti": "hs-1", "scope": CONSENT_SCOPE}, lambda _: b"x" * 32),
        "an access token's typ": app.assertion(issuer, header={
            "alg": "ES256", "kid": app.key.kid, "typ": "at+jwt"}, nbf=now, scope=CONSENT_SCOPE),
        "lives longer than an hour": app.assertion(issuer, nbf=now, exp=now + 3700,
                                                   scope=CONSENT_SCOPE),
        "nested request": app.assertion(issuer, nbf=now, scope=CONSENT_SCOPE, request="x.y.z"),
    }
    for case, request in cases.items():
        response = await signed_bc_authorize(http, app, request)
        assert oauth_error(response) == (400, "invalid_request"), (case, response.text)


async def test_ciba_request_object_jti_is_single_use(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    request = ciba_object(app, operator)
    assert (await signed_bc_authorize(http, app, request)).status_code == 200
    replayed = await signed_bc_authorize(http, app, request)
    assert oauth_error(replayed) == (400, "invalid_request")
    assert "already used" in replayed.json()["error_description"]


async def test_signed_request_of_another_client_is_refused(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    other = operator.register("app-two")
    response = await signed_bc_authorize(http, app, ciba_object(other, operator))
    assert oauth_error(response) == (400, "invalid_request")


async def test_algorithm_is_pinned_to_the_clients_key(operator: Operator) -> None:
    """An RSA client may sign with RS256 or PS256; an ES256 header on its key is refused."""
    rsa = RSAKey.generate_key(2048, private=True, auto_kid=True)
    operator.server.register_client({
        "client_id": "rsa-app", "client_name": "RSA", "grant_types": [CIBA],
        "jwks": {"keys": [rsa.as_dict(private=False)]}, "scope": "number-verification:verify",
        "purposes": ["dpv:IdentityVerification"]})
    app = App("rsa-app", rsa, operator.server, operator.clock)  # type: ignore[arg-type]

    def rsa_auth() -> dict[str, str]:
        return {"client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": app.assertion(operator.server.url("/bc-authorize"),
                                                  header={"alg": "RS256", "kid": rsa.kid})}

    async with operator.http() as http:
        for alg in ("RS256", "PS256"):
            now = int(operator.clock())
            request = jwt.encode({"alg": alg, "kid": rsa.kid}, {
                "iss": "rsa-app", "aud": operator.server.issuer, "iat": now, "nbf": now,
                "exp": now + 60, "jti": f"rsa-{alg}", "scope": CONSENT_SCOPE,
                "login_hint": f"tel:{operator.number('approves')}"}, rsa, algorithms=[alg])
            response = await http.post("/bc-authorize", data={**rsa_auth(), "request": request})
            assert response.status_code == 200, (alg, response.text)
        forged = raw_jws({"alg": "ES256", "kid": rsa.kid}, {"iss": "rsa-app"}, lambda _: b"s")
        response = await http.post("/bc-authorize", data={**rsa_auth(), "request": forged})
        assert oauth_error(response) == (400, "invalid_request")


# -- authorization endpoint ---------------------------------------------------------------


async def test_signed_authorization_request_gives_a_code(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    verifier, challenge = pkce()
    request = authorization_object(app, operator, challenge)
    response = await authorize(operator, {"client_id": app.client_id, "response_type": "code",
                                          "scope": "openid", "request": request})
    assert response.status_code == 302, response.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    assert query["state"] == "st-ro" and "code" in query, query
    token = await redeem(http, app, query["code"], verifier)
    assert token.status_code == 200, token.text
    id_token = jwt.decode(token.json()["id_token"],
                          operator.server.keys.active("RS256").key, algorithms=["RS256"])
    assert id_token.claims["nonce"] == "n-ro"  # the object's values, not the query's


async def test_request_object_values_supersede_the_query(
    app: App, operator: Operator
) -> None:
    _, challenge = pkce()
    request = authorization_object(app, operator, challenge)
    response = await authorize(operator, {"client_id": app.client_id, "response_type": "code",
                                          "state": "from-query", "request": request})
    assert response.status_code == 302
    assert "state=st-ro" in response.headers["location"]


async def test_authorization_request_object_refusals(app: App, operator: Operator) -> None:
    _, challenge = pkce()
    issuer = operator.server.issuer
    now = int(operator.clock())
    base = {"client_id": app.client_id, "response_type": "code", "redirect_uri": REDIRECT,
            "scope": SCOPE, "code_challenge": challenge, "code_challenge_method": "S256"}
    cases = {
        "wrong signature": app.assertion(issuer, key=new_key(), header={
            "alg": "ES256", "kid": app.key.kid}, **base),
        "expired": app.assertion(issuer, iat=now - 400, exp=now - 300, **base),
        "wrong audience": app.assertion("https://elsewhere.example", **base),
        "unsigned alg none": raw_jws({"alg": "none"}, {
            "iss": app.client_id, "aud": issuer, "iat": now, "exp": now + 60, "jti": "n-1",
            **base}, lambda _: b""),
        "another client_id inside": app.assertion(issuer, **{**base, "client_id": "app-two"}),
        "another response_type inside": app.assertion(issuer, **{**base,
                                                                 "response_type": "token"}),
    }
    for case, request in cases.items():
        response = await authorize(operator, {"client_id": app.client_id,
                                              "response_type": "code", "request": request})
        assert oauth_error(response) == (400, "invalid_request_object"), (case, response.text)
        assert "location" not in response.headers


async def test_authorization_request_object_is_single_use(app: App, operator: Operator) -> None:
    _, challenge = pkce()
    request = authorization_object(app, operator, challenge)
    query = {"client_id": app.client_id, "response_type": "code", "request": request}
    assert (await authorize(operator, query)).status_code == 302
    replayed = await authorize(operator, query)
    assert oauth_error(replayed) == (400, "invalid_request_object")


async def test_request_uri_is_not_supported(app: App, operator: Operator) -> None:
    _, challenge = pkce()
    response = await authorize(operator, {
        "client_id": app.client_id, "response_type": "code", "redirect_uri": REDIRECT,
        "scope": SCOPE, "code_challenge": challenge, "code_challenge_method": "S256",
        "request_uri": "https://app.example/request.jwt"})
    assert response.status_code == 302
    assert "error=request_uri_not_supported" in response.headers["location"]
