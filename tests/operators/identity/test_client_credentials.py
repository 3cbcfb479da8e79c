"""Two-legged tokens: only for agreed purposes; client secrets only for operator tooling."""

from __future__ import annotations

import base64

import httpx

from .conftest import App, Operator, token


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def test_client_credentials_issues_a_two_legged_at_jwt(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    response = await token(http, app, grant_type="client_credentials",
                           scope="sim-swap:check dpv:FraudPreventionAndDetection")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert "refresh_token" not in body and "id_token" not in body
    assert response.headers["cache-control"] == "no-store"
    claims = operator.server.verify_access_token(body["access_token"])
    assert claims.sub == app.client_id == claims.client_id
    assert claims.iss == operator.server.issuer
    context = operator.server.token_context(claims)
    assert context.msisdn is None and context.two_legged
    assert context.purpose == "dpv:FraudPreventionAndDetection"
    assert context.scopes == ("sim-swap:check",)


async def test_personal_data_purpose_needing_consent_is_refused_two_legged(
    http: httpx.AsyncClient, app: App
) -> None:
    response = await token(http, app, grant_type="client_credentials",
                           scope="number-verification:verify dpv:IdentityVerification")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_purpose_rules(http: httpx.AsyncClient, app: App) -> None:
    for scope in (
        "sim-swap:check dpv:NoSuchPurpose",
        "sim-swap:check dpv:FraudPreventionAndDetection dpv:RequestedServiceProvision",
        "kyc-match:match dpv:FraudPreventionAndDetection",  # scope not registered
        "",
    ):
        response = await token(http, app, grant_type="client_credentials", scope=scope)
        assert response.status_code == 400, scope
        assert response.json()["error"] == "invalid_scope", scope


async def test_client_without_the_grant_is_unauthorized(
    http: httpx.AsyncClient, operator: Operator
) -> None:
    app = operator.register("ciba-only", grant_types=["urn:openid:params:grant-type:ciba"])
    response = await token(http, app, grant_type="client_credentials",
                           scope="sim-swap:check dpv:FraudPreventionAndDetection")
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


async def test_unsupported_grant_and_missing_grant(http: httpx.AsyncClient, app: App) -> None:
    response = await token(http, app, grant_type="password", username="a", password="b")
    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")
    response = await token(http, app)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


async def test_tooling_client_uses_client_secret_basic(
    http: httpx.AsyncClient, operator: Operator
) -> None:
    _client, secret = operator.server.register_client({
        "client_id": "ops-tool", "client_name": "Ops", "tooling": True,
        "token_endpoint_auth_method": "client_secret_basic", "scope": "sim-swap:check",
        "purposes": ["dpv:FraudPreventionAndDetection"],
    })
    assert secret
    stored = operator.db.one("SELECT secret_hash FROM identity_clients WHERE client_id = ?",
                             ("ops-tool",))
    assert stored is not None and secret not in stored["secret_hash"]
    form = {"grant_type": "client_credentials",
            "scope": "sim-swap:check dpv:FraudPreventionAndDetection"}
    ok = await http.post("/token", data=form, headers=basic("ops-tool", secret))
    assert ok.status_code == 200, ok.text
    wrong = await http.post("/token", data=form, headers=basic("ops-tool", secret + "x"))
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert "www-authenticate" in wrong.headers
    unknown = await http.post("/token", data=form, headers=basic("nobody", secret))
    assert (unknown.status_code, unknown.json()["error"]) == (401, "invalid_client")


async def test_secret_basic_refused_for_ordinary_clients(
    http: httpx.AsyncClient, operator: Operator, app: App
) -> None:
    response = await http.post(
        "/admin/clients", auth=("admin", operator.config.admin_secret),
        json={"client_name": "Not tooling", "token_endpoint_auth_method": "client_secret_basic"},
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_client_metadata")
    # a private_key_jwt client presenting a made-up secret is refused too
    form = {"grant_type": "client_credentials", "scope": "sim-swap:check"}
    response = await http.post("/token", data=form, headers=basic(app.client_id, "guess"))
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


async def test_a_client_the_gate_no_longer_admits_gets_no_token(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    scope = "sim-swap:check dpv:FraudPreventionAndDetection"
    trusted = {app.client_id}
    operator.server.client_gate = lambda client_id: client_id in trusted
    assert (await token(http, app, grant_type="client_credentials", scope=scope)).status_code == 200
    trusted.clear()  # e.g. the federation revoked its trust in this party
    refused = await token(http, app, grant_type="client_credentials", scope=scope)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
