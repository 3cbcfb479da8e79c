"""Every rejection of SECURITY.md's gateway list, over HTTP, with its CAMARA status and code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwt
from joserfc.jwk import ECKey

from federation.client import OAuthClientError
from operators.config import OperatorConfig
from operators.identity import GrantType
from operators.identity.purposes import ScopeRequest
from operators.operator import Operator

from .conftest import ADMIN, FRAUD, Harness, b64, claims_of


def assert_unauthenticated(response: object) -> None:
    assert response.status_code == 401, response.text  # type: ignore[attr-defined]
    assert response.json()["code"] == "UNAUTHENTICATED"  # type: ignore[attr-defined]
    assert "invalid_token" in response.headers["www-authenticate"]  # type: ignore[attr-defined]


async def test_a_valid_three_legged_call_passes(harness: Harness) -> None:
    response = await harness.check(await harness.three_legged("recent-swap"))
    assert response.status_code == 200
    assert response.json() == {"swapped": True}


async def test_no_token(harness: Harness) -> None:
    assert_unauthenticated(await harness.check(None))
    response = await harness.check(None, headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert_unauthenticated(response)


async def test_alg_none_and_stripped_signature(harness: Harness) -> None:
    claims = claims_of(await harness.three_legged())
    head = b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    unsigned = f"{head}.{b64(json.dumps(claims).encode())}."
    assert_unauthenticated(await harness.check(unsigned))
    real = await harness.three_legged()
    stripped = real.rsplit(".", 1)[0] + "."
    assert_unauthenticated(await harness.check(stripped))


async def test_hs256_signed_with_the_public_key(harness: Harness) -> None:
    claims = claims_of(await harness.three_legged())
    key = harness.operator.identity.keys.active()
    public_pem = json.dumps(key.public_jwk()).encode()
    header = {"alg": "HS256", "kid": key.kid, "typ": "at+jwt"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert_unauthenticated(await harness.check(f"{signing_input}.{b64(signature)}"))


async def test_algorithm_outside_the_allowlist_and_foreign_key(harness: Harness) -> None:
    claims = claims_of(await harness.three_legged())
    stranger = ECKey.generate_key("P-384", private=True, auto_kid=True)
    forged = jwt.encode(
        {"alg": "ES384", "kid": stranger.kid, "typ": "at+jwt"},
        claims,
        stranger,
        algorithms=["ES384"],
    )
    assert_unauthenticated(await harness.check(forged))
    kid = harness.operator.identity.keys.active().kid
    same_kid = ECKey.generate_key("P-256", private=True)
    forged = jwt.encode({"alg": "ES256", "kid": kid, "typ": "at+jwt"}, claims, same_kid)
    assert_unauthenticated(await harness.check(forged))


@pytest.mark.parametrize("kid", ["../../etc/passwd", "x' OR '1'='1", ""])
async def test_kid_is_only_a_lookup(harness: Harness, kid: str) -> None:
    claims = claims_of(await harness.three_legged())
    key = harness.operator.identity.keys.active()
    token = harness.forge(claims, {"alg": key.alg, "kid": kid, "typ": "at+jwt"})
    assert_unauthenticated(await harness.check(token))


@pytest.mark.parametrize(
    "extra",
    [
        {"jku": "https://evil.example/jwks"},
        {"x5u": "https://evil.example/cert"},
        {"crit": ["exp-unknown"], "exp-unknown": 1},
    ],
)
async def test_jku_x5u_and_crit_headers_are_refused(
    harness: Harness, extra: dict[str, object]
) -> None:
    claims = claims_of(await harness.three_legged())
    key = harness.operator.identity.keys.active()
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    assert (await harness.check(signed_by_hand(harness, header, claims))).status_code == 200
    token = signed_by_hand(harness, {**header, **extra}, claims)
    assert_unauthenticated(await harness.check(token))


def signed_by_hand(harness: Harness, header: dict[str, object], claims: dict[str, object]) -> str:
    """ES256 over any header at all, which joserfc rightly refuses to produce."""
    key = harness.operator.identity.keys.active()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    der = key.key.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


async def test_embedded_jwk_header_is_refused(harness: Harness) -> None:
    claims = claims_of(await harness.three_legged())
    attacker = ECKey.generate_key("P-256", private=True, auto_kid=True)
    header = {"alg": "ES256", "typ": "at+jwt", "jwk": attacker.as_dict(private=False)}
    assert_unauthenticated(await harness.check(jwt.encode(header, claims, attacker)))


async def test_expired_and_future_tokens(harness: Harness) -> None:
    token = await harness.three_legged()
    assert (await harness.check(token)).status_code == 200  # now cached as verified
    harness.clock.advance(3600 + 60)
    assert_unauthenticated(await harness.check(token))  # the cache never skips expiry
    claims = claims_of(await harness.three_legged())
    claims["iat"] = claims["nbf"] = int(harness.clock()) + 600
    assert_unauthenticated(await harness.check(harness.forge(claims)))


async def test_wrong_issuer_and_foreign_operator(harness: Harness) -> None:
    claims = claims_of(await harness.three_legged())
    assert_unauthenticated(
        await harness.check(harness.forge({**claims, "iss": "https://evil.example"}))
    )
    other = Operator.from_config(
        OperatorConfig(
            id="telco-fr",
            display_name="Telco France",
            country="FR",
            mcc="208",
            mnc="01",
            number_ranges=("+3366",),
            seed=2,
        )
    )
    foreign_key = other.identity.keys.active()
    foreign = jwt.encode(
        {"alg": foreign_key.alg, "kid": foreign_key.kid, "typ": "at+jwt"},
        {**claims, "iss": other.issuer},
        foreign_key.key,
    )
    assert_unauthenticated(await harness.check(foreign))
    other.close()


async def test_wrong_or_missing_audience(harness: Harness) -> None:
    claims = claims_of(await harness.three_legged())
    assert_unauthenticated(
        await harness.check(harness.forge({**claims, "aud": "https://other.example"}))
    )
    without = {k: v for k, v in claims.items() if k != "aud"}
    assert_unauthenticated(await harness.check(harness.forge(without)))


@pytest.mark.parametrize("typ", ["JWT", "id_token+jwt", None])
async def test_wrong_typ(harness: Harness, typ: str | None) -> None:
    claims = claims_of(await harness.three_legged())
    key = harness.operator.identity.keys.active()
    header = {"alg": key.alg, "kid": key.kid}
    if typ is not None:
        header["typ"] = typ
    assert_unauthenticated(await harness.check(harness.forge(claims, header)))


@pytest.mark.parametrize("missing", ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"])
async def test_missing_required_claim(harness: Harness, missing: str) -> None:
    claims = claims_of(await harness.three_legged())
    claims.pop(missing)
    assert_unauthenticated(await harness.check(harness.forge(claims)))


async def test_oversized_and_garbage_tokens(harness: Harness) -> None:
    assert_unauthenticated(await harness.check("a" * 9000))
    assert_unauthenticated(await harness.check("not.a.jwt"))
    assert_unauthenticated(await harness.check("%%%"))
    # a header nested past the JSON parser's depth (4 KB, under the size cap): was a 500
    nested = base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=")
    assert_unauthenticated(await harness.check(f"{nested}.e30.c2ln"))


async def test_revoked_token(harness: Harness) -> None:
    token = await harness.three_legged()
    assert (await harness.check(token)).status_code == 200
    await harness.client.revoke(token)
    assert_unauthenticated(await harness.check(token))


async def test_missing_scope_or_purpose_is_forbidden(harness: Harness) -> None:
    token = await harness.three_legged(scope=f"device-roaming-status:read {FRAUD}")
    response = await harness.check(token)
    assert response.status_code == 403 and response.json()["code"] == "PERMISSION_DENIED"
    # /token issues no such token (a CAMARA scope needs a purpose): the gateway's own
    # refusal is what is checked, on a token made as if an older server had issued it
    refused = harness.client.client_credentials("sim-swap:check")
    with pytest.raises(OAuthClientError, match="invalid_scope"):
        await refused
    no_purpose = harness.operator.identity.tokens.issue(
        harness.client.client_id, ScopeRequest(None, ("sim-swap:check",), False),
        grant=GrantType.CLIENT_CREDENTIALS).access_token
    response = await harness.check(
        no_purpose, {"maxAge": 24, "phoneNumber": harness.number("approves")}
    )
    assert response.status_code == 403 and response.json()["code"] == "PERMISSION_DENIED"


async def test_consent_revoked_after_issue_is_refused_on_the_next_call(harness: Harness) -> None:
    token = await harness.three_legged(scope="sim-swap:check dpv:IdentityVerification")
    assert (await harness.check(token)).status_code == 200
    consents = harness.operator.identity.consents.for_subscriber(harness.number("approves"))
    assert consents
    for consent in consents:
        harness.operator.identity.consents.revoke(consent.id, actor="subscriber")
    response = await harness.check(token)
    assert response.status_code == 403 and response.json()["code"] == "PERMISSION_DENIED"


async def test_opt_out_after_issue_is_refused(harness: Harness) -> None:
    from operators.subscriber_base import ChangeKind

    token = await harness.three_legged()
    assert (await harness.check(token)).status_code == 200
    harness.operator.subscribers.record_change(
        harness.number("approves"), ChangeKind.OPT_OUT, {"opt_out": True}
    )
    assert (await harness.check(token)).status_code == 403


async def test_two_legged_call_honours_the_subscribers_objection(harness: Harness) -> None:
    token = await harness.two_legged()
    opted_out = harness.number("opted-out")
    response = await harness.check(token, {"phoneNumber": opted_out, "maxAge": 24})
    assert response.status_code == 403 and response.json()["code"] == "PERMISSION_DENIED"
    other = await harness.check(token, {"phoneNumber": harness.number("recent-swap"), "maxAge": 24})
    assert other.status_code == 200 and other.json() == {"swapped": True}


@pytest.mark.parametrize("body", [{"phoneNumber": "123"}, {"phoneNumber": 5}, {},
                                  {"phoneNumber": "+33612345678", "extra": 1}])
async def test_a_malformed_number_verification_body_is_a_400_before_the_403(
    harness: Harness, body: dict[str, object]
) -> None:
    """CAMARA's phone_number_verify_C02.01: a token that did not come from the network and
    a body outside the schema is 400 INVALID_ARGUMENT; the same token with a well-formed body
    is the 403 that admission decides."""
    token = await harness.three_legged(scope=f"number-verification:verify {FRAUD}")
    headers = {"Authorization": f"Bearer {token}"}
    bad = await harness.http.post("/number-verification/v2/verify", json=body, headers=headers)
    assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_ARGUMENT"), bad.text
    good = await harness.http.post("/number-verification/v2/verify", headers=headers,
                                   json={"phoneNumber": harness.number("approves")})
    assert good.status_code == 403
    assert good.json()["code"] == "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK"


async def test_number_verification_answers_only_a_subscriber_the_network_authenticated(
    harness: Harness,
) -> None:
    """A CIBA token for ``tel:+<number>`` carries only the application's word for the number:
    verifying with it would say true for any number the application claims. A TS.43
    ``operatortoken:`` subject (here through CIBA; the authorization code flow is tested with
    the live operator) is the network's proof, and is answered."""
    number = harness.number("approves")
    scope = f"number-verification:verify {FRAUD}"

    async def verify(token: str) -> httpx.Response:
        return await harness.http.post(
            "/number-verification/v2/verify", json={"phoneNumber": number},
            headers={"Authorization": f"Bearer {token}"},
        )

    named = await verify(await harness.three_legged(scope=scope))
    assert named.status_code == 403, named.text
    assert named.json()["code"] == "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK"
    shared = await harness.http.get(
        "/number-verification/v2/device-phone-number",
        headers={"Authorization": f"Bearer {await harness.three_legged(scope=scope)}"},
    )
    assert shared.status_code == 403
    # the TS.43 token the device's SIM would get, from the operator's admin API here
    oauth = urlsplit(harness.operator.issuer).path
    nobody = await harness.http.post(f"{oauth}/admin/operator-tokens",
                                     json={"phoneNumber": number})
    assert nobody.status_code == 401, "only the admin, or the device from its own address"
    unknown = await harness.http.post(f"{oauth}/admin/operator-tokens", headers=ADMIN,
                                      json={"phoneNumber": "+34609999999"})
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_request"
    for garbage in (b"not json", b"[1]", b'{"phoneNumber": 34}', b"{" * 5000):
        refused = await harness.http.post(
            f"{oauth}/admin/operator-tokens", content=garbage,
            headers={**ADMIN, "content-type": "application/json"})
        assert refused.status_code == 400, (garbage[:20], refused.text)
        assert refused.json()["error"] == "invalid_request"
    wrong = await harness.http.post(f"{oauth}/admin/operator-tokens", json={},
                                    headers={"Authorization": "Bearer not-the-admin"})
    assert wrong.status_code == 401
    # the device itself, from the address the operator gave it, gets its own
    subscriber = harness.operator.subscribers.get(number)
    assert subscriber is not None and subscriber.ipv4
    transport = httpx.ASGITransport(app=harness.http._transport.app,  # type: ignore[attr-defined]
                                    client=(str(subscriber.ipv4), 5000))
    root = str(harness.http.base_url)
    async with httpx.AsyncClient(transport=transport, base_url=root) as device:
        own = await device.post(f"{oauth}/admin/operator-tokens", json={})
    assert own.status_code == 201 and own.json()["operatorToken"]
    issued = await harness.http.post(f"{oauth}/admin/operator-tokens", headers=ADMIN,
                                     json={"phoneNumber": number})
    assert issued.status_code == 201, issued.text
    ts43 = issued.json()["operatorToken"]
    proved = await harness.client.ciba(f"operatortoken:{ts43}", scope)
    answered = await verify(str(proved["access_token"]))
    assert answered.status_code == 200 and answered.json() == {"devicePhoneNumberVerified": True}


async def test_a_device_asks_for_its_operator_tokens_within_a_rate(harness: Harness) -> None:
    """Each TS.43 token is a stored row until it expires: a device may ask for its own at the
    configured rate (10 at once, then one a second), then gets 429 with Retry-After; the
    operator administrator is not limited, and the device's bucket refills on the clock."""
    number = harness.number("approves")
    subscriber = harness.operator.subscribers.get(number)
    assert subscriber is not None and subscriber.ipv4
    oauth = urlsplit(harness.operator.issuer).path
    transport = httpx.ASGITransport(app=harness.http._transport.app,  # type: ignore[attr-defined]
                                    client=(str(subscriber.ipv4), 5000))
    async with httpx.AsyncClient(transport=transport,
                                 base_url=str(harness.http.base_url)) as device:
        for _ in range(10):
            granted = await device.post(f"{oauth}/admin/operator-tokens", json={})
            assert granted.status_code == 201, granted.text
        refused = await device.post(f"{oauth}/admin/operator-tokens", json={})
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "too_many_requests"
        assert refused.headers["retry-after"] == "1"
        admin = await harness.http.post(f"{oauth}/admin/operator-tokens", headers=ADMIN,
                                        json={"phoneNumber": number})
        assert admin.status_code == 201, "the administrator is not the device's bucket"
        harness.clock.advance(1.0)
        again = await device.post(f"{oauth}/admin/operator-tokens", json={})
        assert again.status_code == 201, again.text
