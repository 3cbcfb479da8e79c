"""SECURITY.md, first table: what the token and backchannel endpoints refuse (private_key_jwt)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc.jws import JWSRegistry

from operators.identity.types import CLIENT_ASSERTION_TYPE

from .conftest import App, FakeClock, Operator, new_key, raw_jws

CC = {"grant_type": "client_credentials", "scope": "sim-swap:check dpv:FraudPreventionAndDetection"}


async def post(http: httpx.AsyncClient, assertion: str, path: str = "/token",
               **form: str) -> httpx.Response:
    body = {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion,
            **(CC if path == "/token" else {}), **form}
    return await http.post(path, data=body)


def refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


async def test_valid_assertion_is_accepted(http: httpx.AsyncClient, app: App) -> None:
    response = await post(http, app.assertion())
    assert response.status_code == 200, response.text


async def test_no_client_assertion(http: httpx.AsyncClient, app: App) -> None:
    refused(await http.post("/token", data=CC))
    response = await http.post("/token", data={**CC, "client_id": app.client_id})
    refused(response)


async def test_expired_assertion_beyond_skew(
    http: httpx.AsyncClient, app: App, clock: FakeClock
) -> None:
    now = int(clock())
    refused(await post(http, app.assertion(iat=now - 100, exp=now - 11)))
    # within the 10 s skew it still passes
    assert (await post(http, app.assertion(iat=now - 100, exp=now - 5))).status_code == 200


@pytest.mark.parametrize("claim", ["iat", "nbf"])
async def test_iat_or_nbf_far_in_the_future(
    http: httpx.AsyncClient, app: App, clock: FakeClock, claim: str
) -> None:
    now = int(clock())
    far: dict[str, Any] = {claim: now + 61, "exp": now + 200}
    near: dict[str, Any] = {claim: now + 8, "exp": now + 120}
    refused(await post(http, app.assertion(**far)))
    ok = await post(http, app.assertion(**near))
    assert ok.status_code == 200, ok.text


async def test_assertion_living_longer_than_300_s(
    http: httpx.AsyncClient, app: App, clock: FakeClock
) -> None:
    now = int(clock())
    refused(await post(http, app.assertion(iat=now, exp=now + 301)))
    refused(await post(http, app.assertion(iat=now - 400, exp=now + 100)))
    assert (await post(http, app.assertion(iat=now, exp=now + 300))).status_code == 200


async def test_wrong_audience(http: httpx.AsyncClient, app: App, operator: Operator) -> None:
    server = operator.server
    refused(await post(http, app.assertion("https://evil.example/token")))
    refused(await post(http, app.assertion([server.token_endpoint, "https://evil.example"])))
    refused(await post(http, app.assertion(server.url("/introspect"))))  # another endpoint
    ok = await post(http, app.assertion([server.token_endpoint, server.issuer]))
    assert ok.status_code == 200
    assert (await post(http, app.assertion(server.issuer))).status_code == 200


async def test_missing_sub_or_iss_not_sub(http: httpx.AsyncClient, app: App,
                                          operator: Operator) -> None:
    refused(await post(http, app.assertion(drop=("sub",))))
    refused(await post(http, app.assertion(sub="someone-else")))
    other = operator.register("app-two")
    refused(await post(http, app.assertion(iss=other.client_id)))  # signed by app-one's key
    refused(await post(http, app.assertion(), client_id=other.client_id))


async def test_missing_exp_iat_or_jti(http: httpx.AsyncClient, app: App) -> None:
    for claim in ("exp", "iat", "jti"):
        refused(await post(http, app.assertion(drop=(claim,))))


async def test_same_jti_twice(http: httpx.AsyncClient, app: App, clock: FakeClock) -> None:
    assertion = app.assertion()
    assert (await post(http, assertion)).status_code == 200
    refused(await post(http, assertion))
    clock.advance(30)
    refused(await post(http, assertion))
    # a new assertion reusing the jti is a replay too
    assert (await post(http, app.assertion(jti="fixed"))).status_code == 200
    refused(await post(http, app.assertion(jti="fixed")))


async def test_alg_none_and_stripped_signature(http: httpx.AsyncClient, app: App) -> None:
    good = app.assertion()
    header, payload, _ = good.split(".")
    refused(await post(http, f"{header}.{payload}."))
    claims: dict[str, Any] = {"iss": app.client_id, "sub": app.client_id, "jti": "n",
                              "aud": app.server.token_endpoint, "iat": int(app.clock()),
                              "exp": int(app.clock()) + 60}
    none_token = raw_jws({"alg": "none"}, claims, lambda _: b"")
    refused(await post(http, none_token.rstrip(".") + "."))
    refused(await post(http, raw_jws({"alg": "none"}, claims, lambda _: b"x")))


async def test_hs256_signed_with_the_registered_public_key(
    http: httpx.AsyncClient, app: App
) -> None:
    public_pem = app.key.get_op_key("verify").public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = {"iss": app.client_id, "sub": app.client_id, "jti": "hs",
              "aud": app.server.token_endpoint, "iat": int(app.clock()),
              "exp": int(app.clock()) + 60}
    forged = raw_jws({"alg": "HS256", "kid": app.key.kid}, claims,
                     lambda data: hmac.new(public_pem, data, hashlib.sha256).digest())
    refused(await post(http, forged))


async def test_algorithm_outside_the_allowlist(http: httpx.AsyncClient, app: App) -> None:
    claims = {"iss": app.client_id, "sub": app.client_id, "jti": "alg",
              "aud": app.server.token_endpoint, "iat": int(app.clock()),
              "exp": int(app.clock()) + 60}
    es256 = JWSRegistry.algorithms["ES256"]
    refused(await post(http, raw_jws({"alg": "ES256K", "kid": app.key.kid}, claims,
                                     lambda d: es256.sign(d, app.key))))
    refused(await post(http, raw_jws({"alg": "HS512"}, claims,
                                     lambda d: hmac.new(b"k", d, hashlib.sha512).digest())))


async def test_key_the_client_never_registered(http: httpx.AsyncClient, app: App) -> None:
    stranger = new_key()
    refused(await post(http, app.assertion(key=stranger)))
    # same kid as the registered key, different key material: the signature fails
    refused(await post(http, app.assertion(key=stranger,
                                           header={"alg": "ES256", "kid": app.key.kid})))


async def test_forged_signature(http: httpx.AsyncClient, app: App) -> None:
    header, payload, signature = app.assertion().split(".")
    tampered = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    refused(await post(http, f"{header}.{payload}.{tampered}"))


async def test_embedded_jwk_header_is_refused(http: httpx.AsyncClient, app: App) -> None:
    attacker = new_key()
    header = {"alg": "ES256", "jwk": attacker.as_dict(private=False)}
    refused(await post(http, app.assertion(key=attacker, header=header)))


async def test_unknown_and_disabled_client(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    refused(await post(http, app.assertion(iss="ghost", sub="ghost")))
    operator.server.clients.disable(app.client_id)
    refused(await post(http, app.assertion()))


async def test_wrong_assertion_type_and_garbage(http: httpx.AsyncClient, app: App) -> None:
    refused(await http.post("/token", data={**CC, "client_assertion": app.assertion(),
                                             "client_assertion_type": "urn:other"}))
    nested = base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=")  # past json's depth
    for garbage in ("x", "a.b.c", "....", "eyJhbGciOiJFUzI1NiJ9.e30.", "é.é.é", "a" * 20000,
                    f"{nested}.e30.c2ln"):
        response = await post(http, garbage)
        assert response.status_code in (400, 401), garbage
        assert response.json()["error"] in ("invalid_client", "invalid_request")


async def test_backchannel_endpoint_applies_the_same_rules(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    ciba = {"login_hint": f"tel:{operator.number('approves')}",
            "scope": "openid number-verification:verify dpv:IdentityVerification"}
    server = operator.server
    ok = await post(http, app.assertion(server.url("/bc-authorize")), "/bc-authorize", **ciba)
    assert ok.status_code == 200, ok.text
    now = int(clock())
    for assertion in (
        app.assertion(server.url("/token"), iat=now - 100, exp=now - 20),
        app.assertion("https://evil.example/bc-authorize"),
        app.assertion(server.url("/bc-authorize"), iat=now, exp=now + 400),
        app.assertion(server.url("/bc-authorize"), key=new_key()),
    ):
        refused(await post(http, assertion, "/bc-authorize", **ciba))
    refused(await http.post("/bc-authorize", data=ciba))
