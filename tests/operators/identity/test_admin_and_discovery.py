"""Discovery metadata, JWKS and the client administration API."""

from __future__ import annotations

import warnings
from typing import Any

import httpx
from joserfc.jwk import RSAKey

from .conftest import Operator, new_key


async def test_discovery_document(http: httpx.AsyncClient, operator: Operator) -> None:
    response = await http.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    meta = response.json()
    issuer = operator.config.issuer_url
    assert meta["issuer"] == issuer
    assert meta["token_endpoint"] == issuer + "/token"
    assert meta["backchannel_authentication_endpoint"] == issuer + "/bc-authorize"
    assert meta["jwks_uri"] == issuer + "/jwks"
    assert {"urn:openid:params:grant-type:ciba", "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "client_credentials", "authorization_code"} <= set(meta["grant_types_supported"])
    assert meta["token_endpoint_auth_methods_supported"] == [
        "private_key_jwt", "client_secret_basic"]
    assert meta["backchannel_token_delivery_modes_supported"] == ["poll"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "dpv:FraudPreventionAndDetection" in meta["scopes_supported"]
    jwks = (await http.get("/jwks")).json()
    assert sorted(k["alg"] for k in jwks["keys"]) == ["ES256", "RS256"]  # access, ID tokens
    for key in jwks["keys"]:
        assert key["kty"] == {"ES256": "EC", "RS256": "RSA"}[key["alg"]] and "d" not in key


async def test_client_administration(http: httpx.AsyncClient, operator: Operator) -> None:
    admin = ("admin", operator.config.admin_secret)
    key = new_key()
    body = {"client_name": "Bank", "jwks": {"keys": [key.as_dict(private=False)]},
            "grant_types": ["client_credentials", "urn:openid:params:grant-type:ciba"],
            "scope": "sim-swap:check", "purposes": ["dpv:FraudPreventionAndDetection"]}
    assert (await http.post("/admin/clients", json=body)).status_code == 401
    assert (await http.post("/admin/clients", json=body,
                            auth=("admin", "not-the-secret"))).status_code == 401
    created = await http.post("/admin/clients", json=body, auth=admin)
    assert created.status_code == 201, created.text
    client_id = created.json()["client_id"]
    assert "client_secret" not in created.json()
    listing = await http.get("/admin/clients", auth=admin)
    assert [c["client_id"] for c in listing.json()] == [client_id]
    read = await http.get(f"/admin/clients/{client_id}",
                          headers={"Authorization": f"Bearer {operator.config.admin_secret}"})
    assert read.json()["scope"] == "openid sim-swap:check"
    disabled = await http.post(f"/admin/clients/{client_id}/disable", auth=admin)
    assert disabled.json()["disabled"] is True
    assert (await http.get("/admin/clients/ghost", auth=admin)).status_code == 404


def weak_or_mislabelled_keys() -> dict[str, list[dict[str, Any]]]:
    """Public keys a client may not register: a signature check would refuse each anyway,
    but registration says why at once."""
    def ec(**extra: Any) -> dict[str, Any]:
        return {**new_key().as_dict(private=False), **extra}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns of the small key it is asked to make
        small_rsa = RSAKey.generate_key(1024).as_dict(private=False)
    return {
        "1024-bit RSA": [dict(small_rsa)],
        "alg none": [ec(alg="none")],
        "alg HS256 on an EC key": [ec(alg="HS256")],
        "alg RS256 on an EC key": [ec(alg="RS256")],
        "alg ES384 on a P-256 key": [ec(alg="ES384")],
        "kid a number": [ec(kid=7)],
        "two keys, one kid": [ec(kid="same"), ec(kid="same")],
    }


async def test_client_metadata_is_validated(http: httpx.AsyncClient, operator: Operator) -> None:
    admin = ("admin", operator.config.admin_secret)
    key = new_key()
    public = {"keys": [key.as_dict(private=False)]}
    for body in (
        {"client_name": "no keys"},
        {"client_name": "private key", "jwks": {"keys": [key.as_dict(private=True)]}},
        {"client_name": "symmetric", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
        {"client_name": "garbage jwk", "jwks": {"keys": [{"kty": "EC", "x": "nope"}]}},
        {"client_name": "jwks not a set", "jwks": {"nope": 1}},
        {"client_name": "bad purpose", "jwks": public, "purposes": ["dpv:Unknown"]},
        {"client_name": "purpose as scope", "jwks": public, "scope": "dpv:Marketing"},
        {"client_name": "code without uri", "jwks": public,
         "grant_types": ["authorization_code"]},
        {"client_name": "bad uri", "jwks": public, "redirect_uris": ["not a url"]},
        {"client_name": "bad grant", "jwks": public, "grant_types": ["password"]},
        {"client_name": "extra", "jwks": public, "admin": True},
    ):
        response = await http.post("/admin/clients", json=body, auth=admin)
        assert response.status_code == 400, body
        assert response.json()["error"] in ("invalid_client_metadata", "invalid_request"), body
    duplicate = {"client_id": "dup-app", "client_name": "dup", "jwks": public}
    for name, keys in weak_or_mislabelled_keys().items():
        response = await http.post(
            "/admin/clients", json={"client_name": name, "jwks": {"keys": keys}}, auth=admin)
        assert response.status_code == 400, name
        assert response.json()["error"] == "invalid_client_metadata", name
    assert (await http.post("/admin/clients", json=duplicate, auth=admin)).status_code == 201
    assert (await http.post("/admin/clients", json=duplicate, auth=admin)).status_code == 400
