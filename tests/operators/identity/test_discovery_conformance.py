"""Discovery is what the server does: OIDC Discovery 1.0 and RFC 8414 REQUIRED members with
the values the specs demand, then every advertised endpoint, grant, response type, client
authentication method and signing algorithm exercised and expected to work, and a few
things not advertised expected to be refused."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, Key, KeySet, OKPKey, RSAKey

from operators.identity.types import CLIENT_ASSERTION_TYPE

from .conftest import REDIRECT, App, FakeClock, Operator, raw_jws
from .test_access_tokens import LI_SCOPE
from .test_authorization_code import pkce
from .test_ciba import CONSENT_SCOPE

FRAUD = "dpv:FraudPreventionAndDetection"

OIDC_REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
                 "response_types_supported", "subject_types_supported",
                 "id_token_signing_alg_values_supported")
RFC8414_REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint",
                    "response_types_supported")
ENDPOINTS = ("authorization_endpoint", "token_endpoint", "backchannel_authentication_endpoint",
             "jwks_uri", "introspection_endpoint", "revocation_endpoint")
CIBA = "urn:openid:params:grant-type:ciba"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture
async def meta(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def key_for(alg: str) -> Key:
    if alg.startswith("ES"):
        curve = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
        return ECKey.generate_key(curve, private=True, auto_kid=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", private=True, auto_kid=True)
    return RSAKey.generate_key(2048, private=True, auto_kid=True)


class Signer:
    """A client whose key fits one algorithm, writing its own JWTs with it."""

    def __init__(self, operator: Operator, alg: str) -> None:
        self.operator, self.alg = operator, alg
        self.key = key_for(alg)
        self.client_id = f"alg-{alg.lower()}"
        operator.server.register_client({
            "client_id": self.client_id, "client_name": alg,
            "jwks": {"keys": [self.key.as_dict(private=False)]},
            "grant_types": ["client_credentials", CIBA],
            "scope": "sim-swap:check number-verification:verify",
            "purposes": [p.purpose for p in operator.config.purposes]})

    def jwt(self, claims: dict[str, Any]) -> str:
        now = int(self.operator.clock())
        body = {"iss": self.client_id, "iat": now, "exp": now + 60,
                "jti": secrets.token_hex(12), **claims}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc frowns on EdDSA, PS*: still standard
            return jwt.encode({"alg": self.alg, "kid": self.key.kid}, body, self.key,
                              algorithms=[self.alg])

    def auth(self, endpoint: str) -> dict[str, str]:
        url = self.operator.server.url(endpoint)
        return {"client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": self.jwt({"sub": self.client_id, "aud": url})}


def verified_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text


def refused(response: httpx.Response, *errors: str) -> None:
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"] in errors, response.text


# -- what the specs require -------------------------------------------------------------------


async def test_required_members_with_the_values_the_specs_demand(
    http: httpx.AsyncClient, operator: Operator, meta: dict[str, Any]
) -> None:
    for name in OIDC_REQUIRED + RFC8414_REQUIRED:
        assert meta.get(name), name
    issuer = operator.server.issuer
    assert meta["issuer"] == issuer and urlsplit(issuer).scheme == "https"
    assert not urlsplit(issuer).query and not urlsplit(issuer).fragment
    assert "RS256" in meta["id_token_signing_alg_values_supported"]  # Discovery §3
    assert set(meta["subject_types_supported"]) <= {"public", "pairwise"}
    assert "code" in meta["response_types_supported"]
    assert "none" not in meta["token_endpoint_auth_signing_alg_values_supported"]  # RFC 8414
    assert "none" not in meta["request_object_signing_alg_values_supported"]
    for name in ENDPOINTS:
        assert meta[name].startswith(issuer + "/"), name
    assert meta["request_uri_parameter_supported"] is False  # its default would be true
    assert "dpop_signing_alg_values_supported" not in meta


async def test_rfc8414_metadata_says_the_same(
    http: httpx.AsyncClient, meta: dict[str, Any]
) -> None:
    response = await http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.json() == meta


async def test_every_endpoint_answers(http: httpx.AsyncClient, meta: dict[str, Any]) -> None:
    jwks = (await http.get(meta["jwks_uri"])).json()
    assert KeySet.import_key_set(jwks).keys
    for name in ("token_endpoint", "backchannel_authentication_endpoint",
                 "introspection_endpoint", "revocation_endpoint"):
        refused(await http.post(meta[name], data={}), "invalid_client", "invalid_request")
    refused(await http.get(meta["authorization_endpoint"]), "invalid_request")


# -- grants, response types, PKCE, delivery modes ----------------------------------------------


async def test_every_advertised_grant_works(
    http: httpx.AsyncClient, app: App, operator: Operator, meta: dict[str, Any],
    clock: FakeClock,
) -> None:
    number = operator.number("approves")
    runs: dict[str, Callable[[], Any]] = {}

    async def client_credentials() -> httpx.Response:
        return await http.post("/token", data={**app.auth(), "grant_type": "client_credentials",
                                               "scope": f"sim-swap:check {FRAUD}"})

    async def authorization_code() -> httpx.Response:
        verifier, challenge = pkce()
        async with operator.http(operator.ip_of("approves")) as device:
            response = await device.get("/authorize", params={
                "response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT,
                "scope": "openid number-verification:verify dpv:IdentityVerification",
                "code_challenge": challenge, "code_challenge_method": "S256"})
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert query["iss"] == [operator.server.issuer]  # iss parameter, as advertised
        return await http.post("/token", data={
            **app.auth(), "grant_type": "authorization_code", "code": query["code"][0],
            "redirect_uri": REDIRECT, "code_verifier": verifier})

    async def ciba() -> httpx.Response:
        started = await http.post("/bc-authorize", data={
            **app.auth("/bc-authorize"), "login_hint": f"tel:{number}", "scope": CONSENT_SCOPE})
        verified_ok(started)
        clock.advance(started.json()["interval"])
        return await http.post("/token", data={**app.auth(), "grant_type": CIBA,
                                               "auth_req_id": started.json()["auth_req_id"]})

    async def jwt_bearer() -> httpx.Response:
        return await http.post("/token", data={
            "grant_type": JWT_BEARER, "assertion": app.bearer_assertion(f"tel:{number}",
                                                                        LI_SCOPE)})

    runs = {"client_credentials": client_credentials, "authorization_code": authorization_code,
            CIBA: ciba, JWT_BEARER: jwt_bearer}
    assert set(meta["grant_types_supported"]) == set(runs)
    assert meta["backchannel_token_delivery_modes_supported"] == ["poll"]  # ciba() polls
    for grant in meta["grant_types_supported"]:
        response = await runs[grant]()
        verified_ok(response)
        operator.server.verify_access_token(response.json()["access_token"])


async def test_id_tokens_are_signed_with_an_advertised_algorithm_of_the_jwks(
    http: httpx.AsyncClient, app: App, operator: Operator, meta: dict[str, Any]
) -> None:
    verifier, challenge = pkce()
    async with operator.http(operator.ip_of("approves")) as device:
        response = await device.get("/authorize", params={
            "response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT,
            "scope": "openid number-verification:verify dpv:IdentityVerification",
            "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256"})
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    token = await http.post("/token", data={**app.auth(), "grant_type": "authorization_code",
                                            "code": code, "redirect_uri": REDIRECT,
                                            "code_verifier": verifier})
    id_token = token.json()["id_token"]
    jwks = KeySet.import_key_set((await http.get(meta["jwks_uri"])).json())
    header = jwt.decode(id_token, jwks, algorithms=meta["id_token_signing_alg_values_supported"])
    assert header.header["alg"] in meta["id_token_signing_alg_values_supported"]
    assert header.claims["aud"] == app.client_id and header.claims["iss"] == meta["issuer"]


async def test_what_is_not_advertised_is_refused(
    http: httpx.AsyncClient, app: App, operator: Operator, meta: dict[str, Any]
) -> None:
    _, challenge = pkce()
    base = {"client_id": app.client_id, "redirect_uri": REDIRECT, "code_challenge": challenge,
            "scope": "openid number-verification:verify dpv:IdentityVerification",
            "code_challenge_method": "S256", "response_type": "code"}
    async with operator.http(operator.ip_of("approves")) as device:
        for change, error in (({"response_type": "token"}, "unsupported_response_type"),
                              ({"response_type": "code id_token"}, "unsupported_response_type"),
                              ({"response_mode": "fragment"}, "invalid_request"),
                              ({"code_challenge_method": "plain"}, "invalid_request"),
                              ({"request_uri": "https://app.example/r"},
                               "request_uri_not_supported")):
            response = await device.get("/authorize", params={**base, **change})
            assert f"error={error}" in response.headers["location"], change
    assert "token" not in meta["response_types_supported"]
    assert "fragment" not in meta["response_modes_supported"]
    assert "plain" not in meta["code_challenge_methods_supported"]
    refused(await http.post("/token", data={**app.auth(), "grant_type": "password",
                                            "username": "u", "password": "p"}),
            "unsupported_grant_type")
    refused(await http.post("/token", data={**app.auth(), "grant_type": "refresh_token",
                                            "refresh_token": "x"}), "unsupported_grant_type")
    admin = ("admin", operator.config.admin_secret)
    ping = await http.post("/admin/clients", auth=admin, json={
        "client_name": "pinger", "jwks": {"keys": [app.key.as_dict(private=False)]},
        "grant_types": [CIBA], "backchannel_token_delivery_mode": "ping"})
    refused(ping, "invalid_client_metadata")


# -- client authentication methods and algorithms --------------------------------------------


async def test_every_advertised_auth_method_works_at_every_endpoint(
    http: httpx.AsyncClient, app: App, operator: Operator, meta: dict[str, Any]
) -> None:
    tool, secret = operator.server.register_client({
        "client_id": "ops-tool", "client_name": "Ops", "tooling": True,
        "token_endpoint_auth_method": "client_secret_basic", "scope": "sim-swap:check",
        "purposes": [FRAUD]})
    assert secret is not None
    for method in meta["token_endpoint_auth_methods_supported"]:
        def credentials(endpoint: str, method: str = method) -> dict[str, Any]:
            if method == "private_key_jwt":
                return {"data": app.auth(endpoint)}
            assert method == "client_secret_basic"
            return {"data": {}, "auth": (tool.client_id, secret)}

        issued = await http.post("/token", **_merge(credentials("/token"), {
            "grant_type": "client_credentials",
             "scope": f"sim-swap:check {FRAUD}"}))
        verified_ok(issued)
        token = issued.json()["access_token"]
        introspected = await http.post("/introspect", **_merge(credentials("/introspect"),
                                                               {"token": token}))
        verified_ok(introspected)
        assert introspected.json()["active"] is True, method
        verified_ok(await http.post("/revoke", **_merge(credentials("/revoke"),
                                                        {"token": token})))
    assert set(meta["introspection_endpoint_auth_methods_supported"]) == set(
        meta["token_endpoint_auth_methods_supported"])
    assert set(meta["revocation_endpoint_auth_methods_supported"]) == set(
        meta["token_endpoint_auth_methods_supported"])


def _merge(credentials: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    return {**credentials, "data": {**credentials["data"], **form}}


async def test_unadvertised_auth_methods_are_refused(
    http: httpx.AsyncClient, app: App, operator: Operator, meta: dict[str, Any]
) -> None:
    tool, secret = operator.server.register_client({
        "client_id": "ops-tool", "client_name": "Ops", "tooling": True,
        "token_endpoint_auth_method": "client_secret_basic", "scope": "sim-swap:check"})
    assert "client_secret_post" not in meta["token_endpoint_auth_methods_supported"]
    refused(await http.post("/token", data={
        "grant_type": "client_credentials", "client_id": tool.client_id,
        "client_secret": secret or "", "scope": "sim-swap:check"}), "invalid_client")
    assert "client_secret_jwt" not in meta["token_endpoint_auth_methods_supported"]
    now = int(operator.clock())
    hs256 = raw_jws({"alg": "HS256"}, {"iss": app.client_id, "sub": app.client_id,
                                       "aud": operator.server.token_endpoint, "iat": now,
                                       "exp": now + 60, "jti": "hs"}, lambda _: b"x" * 32)
    refused(await http.post("/token", data={
        "grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": hs256, "scope": "sim-swap:check"}), "invalid_client")
    assert "registration_endpoint" not in meta  # clients are registered by the operator


async def test_every_advertised_client_signing_algorithm_works(
    http: httpx.AsyncClient, operator: Operator, meta: dict[str, Any]
) -> None:
    """Client assertions at each endpoint and signed CIBA requests, one client per alg."""
    algs = meta["token_endpoint_auth_signing_alg_values_supported"]
    assert algs == meta["introspection_endpoint_auth_signing_alg_values_supported"]
    assert algs == meta["revocation_endpoint_auth_signing_alg_values_supported"]
    assert meta["request_parameter_supported"] is True
    signers: dict[str, Signer] = {}
    for alg in algs:
        signer = signers[alg] = Signer(operator, alg)
        issued = await http.post("/token", data={
            **signer.auth("/token"), "grant_type": "client_credentials",
            "scope": f"sim-swap:check {FRAUD}"})
        verified_ok(issued)
        token = issued.json()["access_token"]
        verified_ok(await http.post("/introspect", data={**signer.auth("/introspect"),
                                                         "token": token}))
        verified_ok(await http.post("/revoke", data={**signer.auth("/revoke"), "token": token}))
    for alg in set(meta["request_object_signing_alg_values_supported"]) | set(
            meta["backchannel_authentication_request_signing_alg_values_supported"]):
        signer = signers.get(alg) or Signer(operator, alg)
        now = int(operator.clock())
        request = signer.jwt({"aud": operator.server.issuer, "nbf": now,
                              "scope": CONSENT_SCOPE,
                              "login_hint": f"tel:{operator.number('approves')}"})
        response = await http.post("/bc-authorize", data={**signer.auth("/bc-authorize"),
                                                          "request": request})
        verified_ok(response)


async def test_unadvertised_client_signing_algorithms_are_refused(
    http: httpx.AsyncClient, app: App, operator: Operator, meta: dict[str, Any]
) -> None:
    now = int(operator.clock())
    claims = {"iss": app.client_id, "sub": app.client_id, "aud": operator.server.token_endpoint,
              "iat": now, "exp": now + 60}
    for index, alg in enumerate(("none", "HS256", "HS512", "ES256K")):
        assert alg not in meta["token_endpoint_auth_signing_alg_values_supported"]
        forged = raw_jws({"alg": alg, "kid": app.key.kid}, {**claims, "jti": f"x{index}"},
                         lambda _: b"s" * 32)
        refused(await http.post("/token", data={
            "grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": forged, "scope": "sim-swap:check"}), "invalid_client")


async def test_rfc8414_metadata_at_the_origins_well_known_location() -> None:
    """RFC 8414 §3.1: issuer ``https://host/oauth`` publishes at
    ``https://host/.well-known/oauth-authorization-server/oauth``."""
    from urllib.parse import urlsplit

    import httpx

    from operators import Operator, create_operator_app, example_operator

    operator = Operator.from_config(example_operator())
    try:
        app = create_operator_app(operator)
        issuer = urlsplit(operator.issuer)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"{issuer.scheme}://{issuer.netloc}"
        ) as http:
            at_origin = await http.get(f"/.well-known/oauth-authorization-server{issuer.path}")
            under_issuer = await http.get(f"{issuer.path}/.well-known/oauth-authorization-server")
        assert at_origin.status_code == 200
        assert at_origin.json() == under_issuer.json()
        assert at_origin.json()["issuer"] == operator.issuer
    finally:
        operator.close()
