"""verify_access_token and token_context: SECURITY.md's gateway table, from the token side."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jws import JWSRegistry

from operators.identity import InvalidAccessTokenError, TokenContextError
from operators.subscriber_base import ChangeKind

from .conftest import App, FakeClock, Operator, build_operator, french_operator, new_key, raw_jws

LI_SCOPE = "sim-swap:check dpv:FraudPreventionAndDetection"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


async def three_legged(http: httpx.AsyncClient, app: App, number: str,
                       scope: str = LI_SCOPE) -> str:
    response = await http.post("/token", data={
        "grant_type": GRANT, "assertion": app.bearer_assertion(f"tel:{number}", scope)})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def claims_of(operator: Operator, app: App, **override: Any) -> dict[str, Any]:
    now = int(operator.clock())
    claims = {"iss": operator.server.issuer, "sub": app.client_id,
              "aud": operator.server.audience, "exp": now + 600, "iat": now, "jti": "forged",
              "client_id": app.client_id, "scope": LI_SCOPE}
    claims.update(override)
    return {k: v for k, v in claims.items() if v is not None}


def signed_by_operator(operator: Operator, claims: dict[str, Any],
                       **header: Any) -> str:
    key = operator.server.keys.active()
    es256 = JWSRegistry.algorithms["ES256"]
    full = {"alg": "ES256", "kid": key.kid, "typ": "at+jwt", **header}
    return raw_jws({k: v for k, v in full.items() if v is not None}, claims,
                   lambda data: es256.sign(data, key.key))


def rejected(operator: Operator, token: str) -> str:
    with pytest.raises(InvalidAccessTokenError) as caught:
        operator.server.verify_access_token(token)
    assert caught.value.status == 401 and caught.value.error == "invalid_token"
    return caught.value.reason


def test_a_well_formed_forgery_of_our_own_shape_verifies(operator: Operator, app: App) -> None:
    """Sanity check of the helpers: signed with the operator's key, the shape passes."""
    token = signed_by_operator(operator, claims_of(operator, app))
    assert operator.server.verify_access_token(token).jti == "forged"
    with pytest.raises(TokenContextError):  # ... but it was never issued
        operator.server.token_context(operator.server.verify_access_token(token))


def test_alg_none_or_signature_stripped(operator: Operator, app: App) -> None:
    claims = claims_of(operator, app)
    rejected(operator, raw_jws({"alg": "none", "typ": "at+jwt"}, claims, lambda _: b""))
    header, payload, _ = signed_by_operator(operator, claims).split(".")
    rejected(operator, f"{header}.{payload}.")
    rejected(operator, f"{header}.{payload}")


def test_hs256_with_the_operators_public_key(operator: Operator, app: App) -> None:
    key = operator.server.keys.active()
    public = key.key.get_op_key("verify")
    assert isinstance(public, ec.EllipticCurvePublicKey)
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for secret in (pem, json.dumps(key.public_jwk()).encode()):
        def mac(data: bytes, secret: bytes = secret) -> bytes:
            return hmac.new(secret, data, hashlib.sha256).digest()

        rejected(operator, raw_jws({"alg": "HS256", "kid": key.kid, "typ": "at+jwt"},
                                   claims_of(operator, app), mac))


def test_algorithm_outside_the_pinned_one(operator: Operator, app: App) -> None:
    key = operator.server.keys.active()
    es256 = JWSRegistry.algorithms["ES256"]
    forged = raw_jws({"alg": "ES384", "kid": key.kid, "typ": "at+jwt"},
                     claims_of(operator, app), lambda data: es256.sign(data, key.key))
    rejected(operator, forged)


@pytest.mark.parametrize("kid", ["../../etc/passwd", "' OR 1=1 --", "", "nope"])
def test_kid_is_only_a_lookup(operator: Operator, app: App, kid: str) -> None:
    rejected(operator, signed_by_operator(operator, claims_of(operator, app), kid=kid))


def test_key_bearing_and_crit_headers(operator: Operator, app: App) -> None:
    attacker = new_key()
    claims = claims_of(operator, app)
    es256 = JWSRegistry.algorithms["ES256"]
    for header in ({"jku": "https://evil.example/jwks"}, {"x5u": "https://evil.example/c"},
                   {"jwk": attacker.as_dict(private=False)}, {"crit": ["exp-ext"],
                                                              "exp-ext": 1}):
        rejected(operator, signed_by_operator(operator, claims, **header))
    self_signed = raw_jws({"alg": "ES256", "typ": "at+jwt", "jwk": attacker.as_dict()},
                          claims, lambda data: es256.sign(data, attacker))
    rejected(operator, self_signed)


def test_times(operator: Operator, app: App, clock: FakeClock) -> None:
    now = int(clock())
    rejected(operator, signed_by_operator(operator, claims_of(operator, app, exp=now - 11)))
    rejected(operator, signed_by_operator(operator, claims_of(operator, app, nbf=now + 30)))
    rejected(operator, signed_by_operator(operator, claims_of(operator, app, iat=now + 30)))
    ok = signed_by_operator(operator, claims_of(operator, app, exp=now - 5, iat=now - 600))
    operator.server.verify_access_token(ok)  # inside the 10 s skew


def test_issuer_audience_and_typ(operator: Operator, app: App) -> None:
    rejected(operator, signed_by_operator(
        operator, claims_of(operator, app, iss="https://telco-fr.ogsim.test/oauth")))
    rejected(operator, signed_by_operator(operator, claims_of(operator, app,
                                                              aud="https://other.example")))
    for typ in ("JWT", None, "id_token+jwt"):
        rejected(operator, signed_by_operator(operator, claims_of(operator, app), typ=typ))


@pytest.mark.parametrize("claim", ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"])
def test_required_claims(operator: Operator, app: App, claim: str) -> None:
    rejected(operator, signed_by_operator(operator, claims_of(operator, app, **{claim: None})))


def test_oversized_and_garbage(operator: Operator, app: App) -> None:
    rejected(operator, signed_by_operator(operator, claims_of(operator, app, pad="x" * 9000)))
    for garbage in ("", "abc", "a.b.c", "a.b.c.d.e", "\u00e9.\u00e9.\u00e9", "e30.e30.e30"):
        rejected(operator, garbage)


async def test_id_token_and_client_assertion_are_not_access_tokens(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    rejected(operator, app.assertion())  # a client assertion (typ JWT, client key)
    operator.server.consents.grant(operator.number("approves"), app.client_id,
                                   "dpv:IdentityVerification", ("number-verification:verify",),
                                   actor="admin")
    started = await http.post("/bc-authorize", data={
        **app.auth("/bc-authorize"), "login_hint": f"tel:{operator.number('approves')}",
        "scope": "openid number-verification:verify dpv:IdentityVerification"})
    operator.clock.advance(2)
    body = (await http.post("/token", data={
        **app.auth(), "grant_type": "urn:openid:params:grant-type:ciba",
        "auth_req_id": started.json()["auth_req_id"]})).json()
    assert rejected(operator, body["id_token"]) == "typ is not at+jwt"


async def test_revocation_and_introspection(http: httpx.AsyncClient, app: App,
                                            operator: Operator) -> None:
    token = await three_legged(http, app, operator.number("approves"))
    response = await http.post("/introspect", data={**app.auth("/introspect"), "token": token})
    body = response.json()
    assert body["active"] is True and body["client_id"] == app.client_id
    assert body["scope"] == "sim-swap:check dpv:FraudPreventionAndDetection"
    other = operator.register("app-two")
    foreign = await http.post("/introspect", data={**other.auth("/introspect"), "token": token})
    assert foreign.json() == {"active": False}
    refused = await http.post("/revoke", data={**other.auth("/revoke"), "token": token})
    assert (refused.status_code, refused.json()["error"]) == (400, "unauthorized_client")
    revoked = await http.post("/revoke", data={**app.auth("/revoke"), "token": token})
    assert revoked.status_code == 200
    claims = operator.server.verify_access_token(token)  # still a well-signed JWT ...
    with pytest.raises(TokenContextError) as caught:  # ... that no longer stands
        operator.server.token_context(claims)
    assert caught.value.kind == "revoked" and caught.value.status == 401
    response = await http.post("/introspect", data={**app.auth("/introspect"), "token": token})
    assert response.json() == {"active": False}
    for junk in ("garbage", "a.b.c"):
        ok = await http.post("/revoke", data={**app.auth("/revoke"), "token": junk})
        assert ok.status_code == 200  # RFC 7009: unknown tokens are not an error
    no_auth = await http.post("/introspect", data={"token": token})
    assert (no_auth.status_code, no_auth.json()["error"]) == (401, "invalid_client")


async def test_consent_revoked_fails_on_the_next_check(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    number = operator.number("approves")
    consent = operator.server.consents.grant(number, app.client_id, "dpv:IdentityVerification",
                                             ("number-verification:verify",), actor="admin")
    token = await three_legged(http, app, number,
                               "number-verification:verify dpv:IdentityVerification")
    claims = operator.server.verify_access_token(token)
    assert operator.server.token_context(claims).consent_id == consent.id
    operator.server.consents.revoke(consent.id, actor=f"subscriber:{number}")
    with pytest.raises(TokenContextError) as caught:
        operator.server.token_context(claims)
    assert caught.value.kind == "consent_revoked" and caught.value.status == 403


async def test_opt_out_after_issue_fails_on_the_next_check(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    number = operator.number("approves")
    claims = operator.server.verify_access_token(await three_legged(http, app, number))
    operator.server.token_context(claims)
    operator.subscribers.record_change(number, ChangeKind.OPT_OUT, {"opt_out": True})
    with pytest.raises(TokenContextError) as caught:
        operator.server.token_context(claims)
    assert caught.value.kind == "opted_out"


async def test_disabled_client_fails_on_the_next_check(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    claims = operator.server.verify_access_token(
        await three_legged(http, app, operator.number("approves")))
    operator.server.clients.disable(app.client_id)
    with pytest.raises(TokenContextError):
        operator.server.token_context(claims)


async def test_key_rotation_keeps_old_tokens_valid_until_they_expire(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    token = await three_legged(http, app, operator.number("approves"))
    old_kid = operator.server.verify_access_token(token).kid
    old_id_kid = operator.server.keys.active("RS256").kid
    response = await http.post("/admin/keys/rotate", auth=("admin", operator.config.admin_secret))
    assert response.status_code == 200
    new_kid = response.json()["kid"]
    assert new_kid != old_kid
    def kids(jwks: dict[str, Any], alg: str = "ES256") -> set[str]:
        return {k["kid"] for k in jwks["keys"] if k["alg"] == alg}

    assert kids((await http.get("/jwks")).json()) == {old_kid, new_kid}
    new_id_kid = operator.server.keys.active("RS256").kid  # ID-token keys rotate alongside
    assert kids((await http.get("/jwks")).json(), "RS256") == {old_id_kid, new_id_kid}
    fresh = await three_legged(http, app, operator.number("approves"))
    assert operator.server.verify_access_token(fresh).kid == new_kid
    operator.server.verify_access_token(token)
    clock.advance(3600 + 11)
    assert kids((await http.get("/jwks")).json()) == {new_kid}
    assert kids((await http.get("/jwks")).json(), "RS256") == {new_id_kid}
    assert rejected(operator, token) in ("unknown signing key", "token expired")


async def test_two_operators_share_nothing(clock: FakeClock) -> None:
    spain = build_operator(clock=clock)
    france = build_operator(french_operator(), clock=clock)
    es_app, fr_app = spain.register("same-id"), france.register("same-id")
    async with spain.http() as es_http, france.http() as fr_http:
        es_token = await three_legged(es_http, es_app, spain.number("approves"))
        fr_token = await three_legged(fr_http, fr_app, france.number("approves"))
        # a Spanish number at the French operator is unknown there
        bad = await fr_http.post("/token", data={
            "grant_type": GRANT,
            "assertion": fr_app.bearer_assertion(f"tel:{spain.number('approves')}", LI_SCOPE)})
        assert bad.json()["error"] == "invalid_grant"
        # the same app's key at the wrong operator is not registered there
        cross = await fr_http.post("/token", data={
            "grant_type": GRANT, "assertion": es_app.bearer_assertion(
                f"tel:{france.number('approves')}", LI_SCOPE, aud=france.server.token_endpoint)})
        assert cross.json()["error"] == "invalid_grant"
    rejected(france, es_token)
    rejected(spain, fr_token)
    assert spain.server.jwks() != france.server.jwks()
    es_sub = spain.server.verify_access_token(es_token).sub
    assert es_sub == spain.server.tokens.pairwise_sub("same-id", spain.number("approves"))
    assert es_sub != france.server.tokens.pairwise_sub("same-id", spain.number("approves"))
    assert france.server.clients.get("same-id") != spain.server.clients.get("same-id")
