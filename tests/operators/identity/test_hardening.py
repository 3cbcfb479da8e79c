"""Issue 12 at the identity server: bounded, strict bodies; requested_expiry; per-client rates.

Every refusal is an OAuth error body with a 4xx (never a 500) and leaves nothing written.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from operators.config import ClientRateLimit, example_operator

from .conftest import App, FakeClock, Operator, build_operator
from .test_ciba import CONSENT_SCOPE, bc_authorize, error

FRAUD = "dpv:FraudPreventionAndDetection"

IV = "dpv:IdentityVerification"
JSON = {"content-type": "application/json"}


def consent_body(operator: Operator, app: App, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {"clientId": app.client_id, "purpose": IV,
                               "scopes": ["number-verification:verify"],
                               "phoneNumber": operator.number("approves")}
    body.update(changes)
    return body


def consent_rows(operator: Operator) -> int:
    row = operator.db.one("SELECT COUNT(*) AS n FROM identity_consents")
    assert row is not None
    return int(row["n"])


@pytest.mark.parametrize("path", ["/consents", "/admin/clients"])
async def test_json_nested_a_thousand_levels_is_a_400_not_a_500(
    http: httpx.AsyncClient, operator: Operator, path: str
) -> None:
    admin = ("admin", operator.config.admin_secret)
    deep = b'{"a":' * 1000 + b"1" + b"}" * 1000
    response = await http.post(path, content=deep, auth=admin, headers=JSON)
    assert error(response) == (400, "invalid_request")
    assert "depth" in response.json()["error_description"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"clientId": "\\ud800", "purpose": "dpv:IdentityVerification"}',
        b'{"clientId": "app-one", "purpose": "dpv:IdentityVerification", "scopes": ["\\udfff"]}',
        b'{"clientId": "app-one", "clientId": "app-one", "purpose": "dpv:IdentityVerification"}',
        '{"clientId": "app-one", "purpose": "dpv:IdentityVerification"}'.encode("utf-16"),
        b'\xef\xbb\xbf{"clientId": "app-one", "purpose": "dpv:IdentityVerification"}',
        b'{"clientId": "app-one", "purpose": "dpv:IdentityVerification", "expiresIn": NaN}',
        # an expiry whose date Consent Info could not write (or whose sum overflows)
        b'{"clientId": "app-one", "purpose": "dpv:IdentityVerification",'
        b' "expiresIn": 1000000000000}',
        b'{"clientId": "app-one", "purpose": "dpv:IdentityVerification", "expiresIn": 1'
        + b"0" * 400 + b"}",
    ],
)
async def test_consent_create_with_a_bad_string_or_shape_writes_nothing(
    http: httpx.AsyncClient, operator: Operator, app: App, raw: bytes
) -> None:
    admin = ("admin", operator.config.admin_secret)
    document = raw.replace(b"}", b', "phoneNumber": "' + operator.number("approves").encode()
                           + b'"}') if raw.startswith(b"{") else raw
    response = await http.post("/consents", content=document, auth=admin, headers=JSON)
    assert error(response) == (400, "invalid_request"), response.text
    assert consent_rows(operator) == 0
    good = await http.post("/consents", json=consent_body(operator, app), auth=admin)
    assert good.status_code == 201 and consent_rows(operator) == 1


async def test_client_registration_refuses_duplicates_and_surrogates(
    http: httpx.AsyncClient, operator: Operator
) -> None:
    admin = ("admin", operator.config.admin_secret)
    before = len(operator.server.clients.all())
    for raw in (b'{"client_id": "x-app", "client_id": "y-app", "client_name": "X"}',
                b'{"client_id": "x-app", "client_name": "\\ud800"}'):
        response = await http.post("/admin/clients", content=raw, auth=admin, headers=JSON)
        assert error(response) == (400, "invalid_request"), response.text
    assert len(operator.server.clients.all()) == before


async def test_oversized_form_is_413_and_a_chunked_one_too(http: httpx.AsyncClient) -> None:
    big = b"a=" + b"x" * 70_000
    response = await http.post("/token", content=big,
                               headers={"content-type": "application/x-www-form-urlencoded"})
    assert error(response) == (413, "invalid_request")
    assert response.headers["connection"] == "close"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        for _ in range(100):
            yield b"x" * 1024

    response = await http.post("/token", content=chunks(),
                               headers={"content-type": "application/x-www-form-urlencoded"})
    assert error(response) == (413, "invalid_request")


async def test_too_many_form_fields_is_a_400(http: httpx.AsyncClient) -> None:
    many = "&".join(f"f{i}=v" for i in range(100))
    response = await http.post("/token", content=many.encode(),
                               headers={"content-type": "application/x-www-form-urlencoded"})
    assert error(response) == (400, "invalid_request")


@pytest.mark.parametrize(
    "value", ["0", "-5", "+30", "030", "1.5", "1e2", "abc", "4000", "99999999999999999999",
              "\u0663\u0660", " 30"])
async def test_requested_expiry_must_be_a_small_positive_integer(
    http: httpx.AsyncClient, operator: Operator, app: App, value: str
) -> None:
    response = await bc_authorize(http, app, login_hint=f"tel:{operator.number('approves')}",
                                  scope=CONSENT_SCOPE, requested_expiry=value)
    assert error(response) == (400, "invalid_request"), value
    assert "requested_expiry" in response.json()["error_description"]
    row = operator.db.one("SELECT COUNT(*) AS n FROM identity_ciba_requests")
    assert row is not None and row["n"] == 0


async def test_requested_expiry_shortens_the_request_never_lengthens_it(
    http: httpx.AsyncClient, operator: Operator, app: App, clock: FakeClock
) -> None:
    hint = f"tel:{operator.number('approves')}"
    short = await bc_authorize(http, app, login_hint=hint, scope=CONSENT_SCOPE,
                               requested_expiry="30")
    assert short.status_code == 200 and short.json()["expires_in"] == 30
    long = await bc_authorize(http, app, login_hint=hint, scope=CONSENT_SCOPE,
                              requested_expiry="3600")
    assert long.json()["expires_in"] == operator.config.lifetimes.ciba_request
    clock.advance(31)
    poll = await http.post("/token", data={
        **app.auth(), "grant_type": "urn:openid:params:grant-type:ciba",
        "auth_req_id": short.json()["auth_req_id"]})
    assert error(poll) == (400, "expired_token")


def limited_operator(clock: FakeClock) -> Operator:
    tight = ClientRateLimit(rate_per_second=0.5, burst=2)
    config = example_operator().model_copy(
        update={"token_rate_limit": tight, "ciba_rate_limit": tight})
    return build_operator(config, clock)


@pytest.mark.parametrize("endpoint", ["/token", "/bc-authorize"])
async def test_token_and_ciba_endpoints_are_rate_limited_per_client(
    clock: FakeClock, endpoint: str
) -> None:
    operator = limited_operator(clock)
    first, second = operator.register("app-one"), operator.register("app-two")
    form = ({"grant_type": "client_credentials",
             "scope": f"sim-swap:check {FRAUD}"}
            if endpoint == "/token" else
            {"login_hint": f"tel:{operator.number('approves')}", "scope": CONSENT_SCOPE})
    async with operator.http() as http:
        async def call(app: App) -> httpx.Response:
            return await http.post(endpoint, data={**app.auth(endpoint), **form})

        assert [(await call(first)).status_code for _ in range(2)] == [200, 200]
        refused = await call(first)
        assert error(refused) == (429, "too_many_requests")
        assert refused.headers["retry-after"] == "2"
        assert refused.headers["cache-control"] == "no-store"
        assert (await call(second)).status_code == 200  # one client's flood is its own
        clock.advance(2)
        assert (await call(first)).status_code == 200
        assert error(await call(first)) == (429, "too_many_requests")


async def test_the_jwt_bearer_grant_without_client_authentication_is_rate_limited_too(
    clock: FakeClock,
) -> None:
    """The verified assertion authenticates its issuer: a fresh assertion per request, with no
    client assertion beside it, used to skip the per-client limit altogether."""
    operator = limited_operator(clock)
    app = operator.register("app-one")
    number = f"tel:{operator.number('approves')}"
    scope = "sim-swap:check dpv:FraudPreventionAndDetection"
    async with operator.http() as http:
        async def exchange() -> httpx.Response:
            return await http.post("/token", data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": app.bearer_assertion(number, scope)})

        assert [(await exchange()).status_code for _ in range(2)] == [200, 200]
        assert error(await exchange()) == (429, "too_many_requests")
        clock.advance(2)
        assert (await exchange()).status_code == 200


async def test_an_unauthenticated_flood_spends_no_client_budget(clock: FakeClock) -> None:
    operator = limited_operator(clock)
    app = operator.register("app-one")
    async with operator.http() as http:
        for _ in range(5):
            forged = await http.post("/token", data={
                "grant_type": "client_credentials", "client_id": app.client_id,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": "a.b.c"})
            assert forged.status_code in (400, 401)
        ok = await http.post("/token", data={**app.auth(), "grant_type": "client_credentials",
                                             "scope": f"sim-swap:check {FRAUD}"})
        assert ok.status_code == 200, ok.text


def test_default_limits_are_generous() -> None:
    config = example_operator()
    assert config.token_rate_limit.burst >= 100 and config.ciba_rate_limit.burst >= 100
    assert json.loads(config.model_dump_json())["token_rate_limit"]["rate_per_second"] >= 50


def test_an_operators_identity_buckets_ignore_its_wall_clock_stepping_back() -> None:
    """The identity server's rate buckets run on the operator's monotonic clock: an NTP step
    of the wall clock back an hour used to leave a bucket empty for that hour."""
    from operators.identity.server import RateLimitedError
    from operators.operator import Operator as LiveOperator

    wall, steady = FakeClock(), FakeClock()
    tight = ClientRateLimit(rate_per_second=1, burst=1)
    config = example_operator().model_copy(update={"operator_token_rate_limit": tight})
    operator = LiveOperator.from_config(config, clock=wall, monotonic=steady)
    number = operator.subscribers.test_number("approves")
    operator.identity.admit_device_token(number)
    with pytest.raises(RateLimitedError):
        operator.identity.admit_device_token(number)
    wall.now -= 3600.0
    steady.advance(1.0)
    operator.identity.admit_device_token(number)  # a second later by the steady clock
    operator.close()
