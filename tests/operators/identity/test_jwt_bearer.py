"""The JWT bearer grant as the CAMARA profile has it, and its refusals (RFC 7523 §3.1)."""

from __future__ import annotations

import base64

import httpx
from joserfc.jwk import Key

from operators.identity import AssertionIssuer, IdentityServer
from operators.identity.clients import ClientRegistry

from .conftest import App, FakeClock, Operator, build_operator, new_key

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LI_SCOPE = "sim-swap:check dpv:FraudPreventionAndDetection"
CONSENT_SCOPE = "number-verification:verify dpv:IdentityVerification"


async def exchange(http: httpx.AsyncClient, assertion: str, **form: str) -> httpx.Response:
    return await http.post("/token", data={"grant_type": GRANT, "assertion": assertion, **form})


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


async def test_legitimate_interest_needs_no_consent(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    number = operator.number("approves")
    response = await exchange(http, app.bearer_assertion(f"tel:{number}", LI_SCOPE))
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    context = operator.server.token_context(
        operator.server.verify_access_token(body["access_token"]))
    assert (context.msisdn, context.client_id) == (number, app.client_id)
    assert context.grant_type.value == GRANT


async def test_consent_basis_needs_an_active_consent(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    number = operator.number("approves")
    assert error(await exchange(http, app.bearer_assertion(f"tel:{number}", CONSENT_SCOPE))) == (
        400, "invalid_grant")
    consent = operator.server.consents.grant(number, app.client_id, "dpv:IdentityVerification",
                                             ("number-verification:verify",), actor="admin")
    response = await exchange(http, app.bearer_assertion(f"tel:{number}", CONSENT_SCOPE))
    assert response.status_code == 200, response.text
    operator.server.consents.revoke(consent.id, actor="admin")
    assert error(await exchange(http, app.bearer_assertion(f"tel:{number}", CONSENT_SCOPE))) == (
        400, "invalid_grant")


async def test_opted_out_subscriber(http: httpx.AsyncClient, app: App,
                                    operator: Operator) -> None:
    number = operator.number("opted-out")
    assert error(await exchange(http, app.bearer_assertion(f"tel:{number}", LI_SCOPE))) == (
        400, "invalid_grant")


async def test_operator_token_subject(http: httpx.AsyncClient, app: App,
                                      operator: Operator) -> None:
    number = operator.number("approves")
    token = operator.server.subjects.issue_operator_token(number)
    response = await exchange(http, app.bearer_assertion(f"operatortoken:{token}", LI_SCOPE))
    assert response.status_code == 200, response.text
    # the network proved the subscriber (Number Verification's condition); a tel: subject not
    tokens = operator.server.tokens
    issued = tokens.verify(response.json()["access_token"])
    assert tokens.context(issued).by_network
    named = await exchange(http, app.bearer_assertion(f"tel:{number}", LI_SCOPE))
    assert named.status_code == 200, named.text
    assert not tokens.context(tokens.verify(named.json()["access_token"])).by_network
    response = await exchange(http, app.bearer_assertion("operatortoken:forged", LI_SCOPE))
    assert error(response) == (400, "invalid_grant")


async def test_bad_assertions_are_invalid_grant(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    number = f"tel:{operator.number('approves')}"
    now = int(clock())
    bad = [
        app.bearer_assertion(number, LI_SCOPE, key=new_key()),  # unknown key
        app.bearer_assertion(number, LI_SCOPE, aud=operator.server.url("/bc-authorize")),
        app.bearer_assertion(number, LI_SCOPE, aud=[operator.server.token_endpoint, "x"]),
        app.bearer_assertion(number, LI_SCOPE, iat=now - 400, exp=now - 100),  # expired
        app.bearer_assertion(number, LI_SCOPE, iat=now, exp=now + 301),  # lives too long
        app.bearer_assertion(number, LI_SCOPE, iat=now + 100, exp=now + 200),  # future
        app.bearer_assertion(number, None),  # scope claim missing
        app.bearer_assertion(number, LI_SCOPE, drop=("jti",)),
        app.bearer_assertion(number, LI_SCOPE, iss="ghost"),
        app.bearer_assertion("tel:+33600000001", LI_SCOPE),  # another operator's number
        app.bearer_assertion(operator.number("approves"), LI_SCOPE),  # no tel: prefix
        "a.b.c",
        # a header nested past the JSON parser's depth, under the size cap (was a 500)
        base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=") + ".e30.c2ln",
    ]
    header, payload, _ = app.bearer_assertion(number, LI_SCOPE).split(".")
    bad.append(f"{header}.{payload}.")
    for assertion in bad:
        assert error(await exchange(http, assertion)) == (400, "invalid_grant"), assertion


async def test_replayed_assertion(http: httpx.AsyncClient, app: App, operator: Operator) -> None:
    assertion = app.bearer_assertion(f"tel:{operator.number('approves')}", LI_SCOPE)
    assert (await exchange(http, assertion)).status_code == 200
    assert error(await exchange(http, assertion)) == (400, "invalid_grant")


async def test_scope_parameter_and_purpose_rules(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    number = f"tel:{operator.number('approves')}"
    response = await exchange(http, app.bearer_assertion(number, LI_SCOPE), scope=LI_SCOPE)
    assert error(response) == (400, "invalid_request")
    for scope in ("sim-swap:check", "sim-swap:check dpv:Marketing dpv:FraudPreventionAndDetection",
                  "sim-swap:check dpv:Unknown"):
        assert error(await exchange(http, app.bearer_assertion(number, scope))) == (
            400, "invalid_scope"), scope
    assert error(await http.post("/token", data={"grant_type": GRANT})) == (
        400, "invalid_request")


async def test_client_not_allowed_the_grant(http: httpx.AsyncClient, operator: Operator) -> None:
    app = operator.register("cc-only", grant_types=["client_credentials"])
    assertion = app.bearer_assertion(f"tel:{operator.number('approves')}", LI_SCOPE)
    assert error(await exchange(http, assertion)) == (400, "unauthorized_client")


async def test_issuer_policy_is_replaceable(clock: FakeClock) -> None:
    """A federation policy can trust an issuer that is not the client (e.g. an aggregator)."""
    aggregator_key = new_key()
    operator = build_operator(clock=clock)
    app = operator.register("aggregated-app")

    class TrustAggregator:
        def __init__(self, clients: ClientRegistry) -> None:
            self.clients = clients

        def resolve(self, iss: str) -> AssertionIssuer | None:
            client = self.clients.get("aggregated-app")
            if iss != "https://aggregator.example" or client is None:
                return None
            keys: tuple[Key, ...] = (aggregator_key,)
            return AssertionIssuer(client, keys)

    server = IdentityServer(operator.config, operator.db, operator.subscribers, clock,
                            issuer_policy=TrustAggregator(operator.server.clients))
    operator.server = server
    app.server = server
    assertion = app.bearer_assertion(f"tel:{operator.number('approves')}", LI_SCOPE,
                                     iss="https://aggregator.example", key=aggregator_key)
    async with operator.http() as http:
        response = await exchange(http, assertion)
        assert response.status_code == 200, response.text
        # the default (registered client) is no longer trusted by this policy
        plain = app.bearer_assertion(f"tel:{operator.number('approves')}", LI_SCOPE)
        assert error(await exchange(http, plain)) == (400, "invalid_grant")


async def test_device_address_subject(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    ip = operator.ip_of("approves")
    response = await exchange(http, app.bearer_assertion(f"ipport:{ip}", LI_SCOPE))
    assert response.status_code == 200, response.text
    context = operator.server.token_context(
        operator.server.verify_access_token(response.json()["access_token"])
    )
    assert context.msisdn == operator.number("approves")
    unknown = await exchange(http, app.bearer_assertion("ipport:192.0.2.77", LI_SCOPE))
    assert error(unknown) == (400, "invalid_grant")
