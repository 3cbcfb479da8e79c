"""Client keys by reference (RFC 7591 ``jwks_uri``): fetched over the server's HTTP client,
cached, refreshed on an unknown ``kid`` at most once per interval per client (fake clock)."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import ALL_GRANTS, API_SCOPES, REDIRECT, App, FakeClock, Operator, new_key

FRAUD = "dpv:FraudPreventionAndDetection"

JWKS_URI = "https://app.example/jwks.json"


class KeyHost:
    """The application's own JWKS endpoint, with a request log."""

    def __init__(self) -> None:
        self.keys = [new_key()]
        self.fetches = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URI
        self.fetches += 1
        return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.keys]})


def by_reference(operator: Operator, host: KeyHost, client_id: str = "ref-app") -> App:
    operator.server.use_http(httpx.AsyncClient(transport=httpx.MockTransport(host.handler)))
    operator.server.register_client({
        "client_id": client_id, "client_name": "By reference", "jwks_uri": JWKS_URI,
        "grant_types": ALL_GRANTS, "scope": API_SCOPES, "redirect_uris": [REDIRECT],
        "purposes": [p.purpose for p in operator.config.purposes]})
    return App(client_id, host.keys[0], operator.server, operator.clock)


async def client_credentials(http: httpx.AsyncClient, app: App) -> httpx.Response:
    return await http.post("/token", data={**app.auth(), "grant_type": "client_credentials",
                                           "scope": f"sim-swap:check {FRAUD}"})


async def test_private_key_jwt_with_keys_by_reference_and_rotation(
    http: httpx.AsyncClient, operator: Operator, clock: FakeClock
) -> None:
    host = KeyHost()
    app = by_reference(operator, host)
    assert (await client_credentials(http, app)).status_code == 200
    assert (await client_credentials(http, app)).status_code == 200
    assert host.fetches == 1  # cached
    clock.advance(operator.server.jwks_cache.min_refresh_interval)
    host.keys.append(new_key())  # the application rotates: a new kid
    app.key = host.keys[-1]
    response = await client_credentials(http, app)
    assert response.status_code == 200, response.text
    assert host.fetches == 2
    clock.advance(1)
    assert (await client_credentials(http, app)).status_code == 200
    assert host.fetches == 2


async def test_unknown_kids_refresh_at_most_once_per_interval(
    http: httpx.AsyncClient, operator: Operator, clock: FakeClock
) -> None:
    host = KeyHost()
    app = by_reference(operator, host)
    assert (await client_credentials(http, app)).status_code == 200
    clock.advance(operator.server.jwks_cache.min_refresh_interval)
    app.key = new_key()  # never published: made-up kids
    for _ in range(5):
        response = await client_credentials(http, app)
        assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert host.fetches == 2  # one refresh for the first unknown kid, then the interval
    clock.advance(operator.server.jwks_cache.min_refresh_interval)
    await client_credentials(http, app)
    assert host.fetches == 3


async def test_registration_takes_jwks_or_jwks_uri_never_both(
    http: httpx.AsyncClient, operator: Operator
) -> None:
    admin = ("admin", operator.config.admin_secret)
    key = new_key()
    base: dict[str, Any] = {"client_name": "x", "grant_types": ["client_credentials"]}
    both = await http.post("/admin/clients", auth=admin, json={
        **base, "jwks": {"keys": [key.as_dict(private=False)]}, "jwks_uri": JWKS_URI})
    assert (both.status_code, both.json()["error"]) == (400, "invalid_client_metadata")
    for bad in ("ftp://app.example/jwks", "/jwks.json", "https://u:p@app.example/jwks",
                "https://app.example/jwks#k"):
        response = await http.post("/admin/clients", auth=admin, json={**base, "jwks_uri": bad})
        assert response.status_code == 400, bad
    good = await http.post("/admin/clients", auth=admin, json={**base, "jwks_uri": JWKS_URI})
    assert good.status_code == 201 and good.json()["jwks_uri"] == JWKS_URI
    assert "jwks" not in good.json()


async def test_request_object_signed_with_a_key_by_reference(
    http: httpx.AsyncClient, operator: Operator
) -> None:
    host = KeyHost()
    app = by_reference(operator, host)
    now = int(operator.clock())
    request = app.assertion(operator.server.issuer, nbf=now, scope="sim-swap:check "
                            "dpv:FraudPreventionAndDetection",
                            login_hint=f"tel:{operator.number('approves')}")
    response = await http.post("/bc-authorize", data={**app.auth("/bc-authorize"),
                                                      "request": request})
    assert response.status_code == 200, response.text
