"""CIBA poll mode end to end, for every simulated handset behaviour, on the fake clock."""

from __future__ import annotations

from typing import Any

import httpx

from operators.subscriber_base import ChangeKind

from .conftest import App, FakeClock, Operator, french_operator

CONSENT_SCOPE = "openid number-verification:verify dpv:IdentityVerification"


async def bc_authorize(http: httpx.AsyncClient, app: App, **form: str) -> httpx.Response:
    return await http.post("/bc-authorize", data={**app.auth("/bc-authorize"), **form})


async def start(http: httpx.AsyncClient, app: App, number: str,
                scope: str = CONSENT_SCOPE) -> dict[str, Any]:
    response = await bc_authorize(http, app, login_hint=f"tel:{number}", scope=scope,
                                  binding_message="Login to Example")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"auth_req_id", "expires_in", "interval"}
    return body


async def poll(http: httpx.AsyncClient, app: App, auth_req_id: str) -> httpx.Response:
    return await http.post("/token", data={
        **app.auth(), "grant_type": "urn:openid:params:grant-type:ciba",
        "auth_req_id": auth_req_id})


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json().get("error", "")


async def test_handset_approves(http: httpx.AsyncClient, app: App, operator: Operator,
                                clock: FakeClock) -> None:
    number = operator.number("approves")
    started = await start(http, app, number)
    assert started["expires_in"] == 120 and started["interval"] == 2
    clock.advance(2)
    response = await poll(http, app, started["auth_req_id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body and body["id_token"]
    claims = operator.server.verify_access_token(body["access_token"])
    assert number not in body["access_token"] and claims.sub != number
    assert claims.sub == operator.server.tokens.pairwise_sub(app.client_id, number)
    context = operator.server.token_context(claims)
    assert (context.msisdn, context.purpose) == (number, "dpv:IdentityVerification")
    consents = operator.server.consents.for_subscriber(number)
    assert len(consents) == 1 and consents[0].id == context.consent_id
    assert [a.action for a in operator.server.consents.audit(msisdn=number)] == ["granted"]
    clock.advance(2)
    assert error(await poll(http, app, started["auth_req_id"])) == (400, "invalid_grant")


async def test_handset_denies(http: httpx.AsyncClient, app: App, operator: Operator,
                              clock: FakeClock) -> None:
    started = await start(http, app, operator.number("denies-consent"))
    clock.advance(2)
    assert error(await poll(http, app, started["auth_req_id"])) == (400, "access_denied")
    assert operator.server.consents.for_subscriber(operator.number("denies-consent")) == []
    clock.advance(2)
    assert error(await poll(http, app, started["auth_req_id"])) == (400, "access_denied")


async def test_handset_never_answers_then_expired_token(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    started = await start(http, app, operator.number("never-answers"))
    for _ in range(5):
        clock.advance(started["interval"])
        assert error(await poll(http, app, started["auth_req_id"])) == (
            400, "authorization_pending")
    clock.advance(120)
    assert error(await poll(http, app, started["auth_req_id"])) == (400, "expired_token")


async def test_slow_consent_pending_then_approved(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    started = await start(http, app, operator.number("slow-consent"))
    clock.advance(2)
    assert error(await poll(http, app, started["auth_req_id"])) == (400, "authorization_pending")
    clock.advance(5)
    assert error(await poll(http, app, started["auth_req_id"])) == (400, "authorization_pending")
    clock.advance(3)  # 10 s after the request: the handset approves
    response = await poll(http, app, started["auth_req_id"])
    assert response.status_code == 200, response.text


async def test_polled_too_fast_slows_down_by_5_s(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    started = await start(http, app, operator.number("never-answers"))
    assert error(await poll(http, app, started["auth_req_id"])) == (400, "slow_down")
    row = operator.db.one("SELECT interval FROM identity_ciba_requests WHERE auth_req_id = ?",
                          (started["auth_req_id"],))
    assert row is not None and row["interval"] == 7
    clock.advance(6)
    assert error(await poll(http, app, started["auth_req_id"])) == (400, "slow_down")
    clock.advance(12)
    assert error(await poll(http, app, started["auth_req_id"])) == (400, "authorization_pending")


async def test_another_clients_auth_req_id(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    started = await start(http, app, operator.number("approves"))
    other = operator.register("app-two")
    clock.advance(2)
    assert error(await poll(http, other, started["auth_req_id"])) == (400, "invalid_grant")
    assert error(await poll(http, app, "made-up")) == (400, "invalid_grant")
    assert (await poll(http, app, started["auth_req_id"])).status_code == 200


async def test_unknown_and_foreign_numbers_end_as_a_denial(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    """CAMARA IdentityAndConsentManagement #258: /bc-authorize does not tell whether a number
    is served; the request ends at poll time as a handset's denial does."""
    known = operator.number("approves")
    unknown = known[:-5] + "00099"  # a reserved suffix with no test subscriber
    foreign = "+33600000001"  # served by another operator (Telco France)
    for number in (unknown, foreign, "+4915112345678"):
        started = await start(http, app, number)
        clock.advance(started["interval"])
        assert error(await poll(http, app, started["auth_req_id"])) == (400, "access_denied")
    # the same answer whether or not the number is another operator's: nothing to probe
    french = french_operator()
    assert french.owns(foreign) and not operator.config.owns(foreign)


async def test_hints_rules(http: httpx.AsyncClient, app: App, operator: Operator) -> None:
    number = operator.number("approves")
    cases: list[dict[str, str]] = [
        {"scope": CONSENT_SCOPE},
        {"scope": CONSENT_SCOPE, "login_hint": f"tel:{number}", "id_token_hint": "x.y.z"},
        {"scope": CONSENT_SCOPE, "login_hint_token": "x.y.z"},
        {"scope": CONSENT_SCOPE, "login_hint": "34600000001"},
    ]
    for form in cases:
        assert error(await bc_authorize(http, app, **form)) == (400, "invalid_request"), form
    response = await bc_authorize(http, app, login_hint=f"tel:{number}",
                                  scope="number-verification:verify")
    assert error(response) == (400, "invalid_scope")
    response = await bc_authorize(
        http, app, login_hint=f"tel:{number}",
        scope="number-verification:verify dpv:IdentityVerification dpv:Marketing")
    assert error(response) == (400, "invalid_scope")


async def test_ipport_login_hint(http: httpx.AsyncClient, app: App, operator: Operator,
                                 clock: FakeClock) -> None:
    ip = operator.ip_of("approves")
    for hint in (f"ipport:{ip}", f"ipport:{ip}:5060"):
        response = await bc_authorize(http, app, login_hint=hint, scope=CONSENT_SCOPE)
        assert response.status_code == 200, response.text
    clock.advance(2)
    token = await poll(http, app, response.json()["auth_req_id"])
    context = operator.server.token_context(
        operator.server.verify_access_token(token.json()["access_token"]))
    assert context.msisdn == operator.number("approves")
    response = await bc_authorize(http, app, login_hint="ipport:192.0.2.1", scope=CONSENT_SCOPE)
    assert response.status_code == 200  # unknown, but not told (see the test above)
    clock.advance(2)
    assert error(await poll(http, app, response.json()["auth_req_id"])) == (400, "access_denied")


async def test_legal_bases(http: httpx.AsyncClient, app: App, operator: Operator,
                           clock: FakeClock) -> None:
    # legitimate interest: no prompt, even for a handset that would deny ...
    started = await start(http, app, operator.number("denies-consent"),
                          "sim-swap:check dpv:FraudPreventionAndDetection")
    clock.advance(2)
    assert (await poll(http, app, started["auth_req_id"])).status_code == 200
    # ... but refused when the subscriber objected, at poll time as a denial is
    started = await start(http, app, operator.number("opted-out"),
                          "sim-swap:check dpv:FraudPreventionAndDetection")
    clock.advance(2)
    assert error(await poll(http, app, started["auth_req_id"])) == (400, "access_denied")
    # contract: neither prompt nor opt-out
    started = await start(http, app, operator.number("opted-out"),
                          "sim-swap:check dpv:RequestedServiceProvision")
    clock.advance(2)
    assert (await poll(http, app, started["auth_req_id"])).status_code == 200
    assert operator.server.consents.for_subscriber(operator.number("opted-out")) == []


async def test_existing_consent_means_no_prompt(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    number = operator.number("never-answers")
    operator.server.consents.grant(number, app.client_id, "dpv:IdentityVerification",
                                   ("number-verification:verify",), actor="admin")
    started = await start(http, app, number)
    clock.advance(2)
    assert (await poll(http, app, started["auth_req_id"])).status_code == 200


async def test_client_not_allowed_ciba(http: httpx.AsyncClient, operator: Operator) -> None:
    app = operator.register("cc-only", grant_types=["client_credentials"])
    response = await bc_authorize(http, app, login_hint=f"tel:{operator.number('approves')}",
                                  scope=CONSENT_SCOPE)
    assert error(response) == (400, "unauthorized_client")


async def test_consent_on_behalf_of_an_application_serves_only_that_application(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    number = operator.number("never-answers")  # only an existing consent can get a token
    operator.server.consents.grant(number, f"{app.client_id}/shop-a", "dpv:IdentityVerification",
                                   ("number-verification:verify",), actor="admin")
    for beneficiary, expected in (("shop-a", 200), ("shop-b", 400)):  # 400: pending, a prompt
        response = await bc_authorize(http, app, login_hint=f"tel:{number}", scope=CONSENT_SCOPE,
                                      on_behalf_of=beneficiary)
        assert response.status_code == 200, response.text
        clock.advance(2)
        polled = await poll(http, app, response.json()["auth_req_id"])
        assert polled.status_code == expected, polled.text
        if expected == 200:  # the token serves shop-a, whose consent it holds, not the caller
            claims = operator.server.verify_access_token(polled.json()["access_token"])
            assert operator.server.token_context(claims).party == f"{app.client_id}/shop-a"
    assert polled.json()["error"] == "authorization_pending"  # shop-b's consent is asked for
    bad = await bc_authorize(http, app, login_hint=f"tel:{number}", scope=CONSENT_SCOPE,
                             on_behalf_of="not an id!")
    assert error(bad) == (400, "invalid_request")


async def test_a_subscriber_who_opts_out_before_the_poll_gets_no_token_issued(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    """Legitimate interest, no prompt: the subscriber objected between /bc-authorize and the
    poll, so the poll ends as a denial (the token would be refused at its first call)."""
    number = operator.number("approves")
    started = await start(http, app, number, scope="sim-swap:check dpv:FraudPreventionAndDetection")
    operator.subscribers.record_change(number, ChangeKind.OPT_OUT, {"opt_out": True})
    clock.advance(2)
    response = await poll(http, app, started["auth_req_id"])
    assert error(response) == (400, "access_denied")
    assert "objected" in response.json()["error_description"]
    live = operator.server.db.one(
        "SELECT COUNT(*) AS n FROM identity_access_tokens WHERE revoked_at IS NULL")
    assert live["n"] == 0
    clock.advance(5)  # and it stays a denial
    assert error(await poll(http, app, started["auth_req_id"])) == (400, "access_denied")
