"""Throttling, threat protection, correlators, metering and backend protection, over HTTP."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from operators.camara import CallContext
from operators.core import Faults, NetworkFunctionKind
from operators.gateway.gateway import request_digest

from .conftest import ADMIN, FRAUD, Harness


async def subscribe(harness: Harness, plan: str) -> None:
    response = await harness.http.put(
        "/admin/subscriptions/fraud-app/sim-swap", json={"plan": plan}, headers=ADMIN
    )
    assert response.status_code == 200, response.text


async def test_over_burst_is_429_with_retry_after(harness: Harness) -> None:
    await subscribe(harness, "free")  # burst 5, 2 per second
    token = await harness.three_legged()
    statuses = [(await harness.check(token)).status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    refused = await harness.check(token)
    assert refused.json()["code"] == "TOO_MANY_REQUESTS"
    assert int(refused.headers["retry-after"]) >= 1
    harness.clock.advance(1.0)  # two tokens come back
    assert [(await harness.check(token)).status_code for _ in range(3)] == [200, 200, 429]


async def test_over_quota_is_429_quota_exceeded(harness: Harness) -> None:
    await subscribe(harness, "tiny")  # 3 calls a day
    token = await harness.three_legged()
    assert [(await harness.check(token)).status_code for _ in range(3)] == [200] * 3
    refused = await harness.check(token)
    assert refused.status_code == 429 and refused.json()["code"] == "QUOTA_EXCEEDED"
    assert int(refused.headers["retry-after"]) > 60


async def test_unknown_plan_or_client_is_refused(harness: Harness) -> None:
    response = await harness.http.put(
        "/admin/subscriptions/fraud-app/sim-swap", json={"plan": "gold"}, headers=ADMIN
    )
    assert response.status_code == 400
    response = await harness.http.put(
        "/admin/subscriptions/nobody/sim-swap", json={"plan": "free"}, headers=ADMIN
    )
    assert response.status_code == 404
    response = await harness.http.put(
        "/admin/subscriptions/fraud-app/sim-swap", json={"plan": "free"}
    )
    assert response.status_code == 401


async def test_threat_protection(harness: Harness) -> None:
    token = await harness.three_legged()
    auth = {"Authorization": f"Bearer {token}"}
    huge = await harness.http.post(
        "/sim-swap/v2/check",
        content=json.dumps({"maxAge": 24, "pad": "x" * 40_000}),
        headers={**auth, "content-type": "application/json"},
    )
    assert huge.status_code == 400 and huge.json()["code"] == "INVALID_ARGUMENT"
    deep = await harness.http.post(
        "/sim-swap/v2/check",
        content="[" * 200 + "]" * 200,
        headers={**auth, "content-type": "application/json"},
    )
    assert deep.status_code == 400 and "depth" in deep.json()["message"]
    text = await harness.http.post(
        "/sim-swap/v2/check",
        content='{"maxAge": 24}',
        headers={**auth, "content-type": "text/plain"},
    )
    assert text.status_code == 415 and text.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_malformed_phone_number(harness: Harness) -> None:
    token = await harness.two_legged()
    response = await harness.check(token, {"phoneNumber": "0034-600-000-001", "maxAge": 24})
    assert response.status_code == 400 and response.json()["code"] == "INVALID_ARGUMENT"


async def test_correlator_echoed_created_and_validated(harness: Harness) -> None:
    token = await harness.three_legged()
    echoed = await harness.check(token, headers={"x-correlator": "my-call-1"})
    assert echoed.headers["x-correlator"] == "my-call-1"
    created = await harness.check(token)
    assert len(created.headers["x-correlator"]) == 36
    refused = await harness.check(None, headers={"x-correlator": "my-call-2"})
    assert refused.status_code == 401 and refused.headers["x-correlator"] == "my-call-2"
    bad = await harness.check(token, headers={"x-correlator": "spaces are not allowed"})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_ARGUMENT"
    # the identity server's endpoints refuse it in OAuth's error format (RFC 6749 §5.2)
    oauth = urlsplit(harness.operator.issuer).path
    token_endpoint = await harness.http.post(
        f"{oauth}/token", data={"grant_type": "client_credentials"},
        headers={"x-correlator": "spaces are not allowed"},
    )
    assert token_endpoint.status_code == 400
    assert token_endpoint.json()["error"] == "invalid_request"
    assert "x-correlator" in token_endpoint.json()["error_description"]
    assert token_endpoint.headers["cache-control"] == "no-store"
    metadata = await harness.http.get(  # RFC 8414's location on the origin, outside the mount
        f"/.well-known/oauth-authorization-server{oauth}",
        headers={"x-correlator": "spaces are not allowed"},
    )
    assert metadata.status_code == 400 and metadata.json()["error"] == "invalid_request"


async def test_metering_counts_each_success_once_and_no_rejection(harness: Harness) -> None:
    ledger = harness.operator.gateway.ledger
    token = await harness.three_legged()
    for i in range(4):
        assert (await harness.check(token, headers={"x-correlator": f"c-{i}"})).status_code == 200
    # a client retrying with the same idempotency key is billed once, and the call is not run
    # again
    keyed = {"x-correlator": "c-9", "Idempotency-Key": "k-9"}
    first = await harness.check(token, headers=keyed)
    hlr = harness.operator.backends.functions[NetworkFunctionKind.SIM_DATA_REGISTER]
    served = hlr.snapshot().served  # type: ignore[attr-defined]
    again = await harness.check(token, headers=keyed)
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-correlator"] == "c-9"
    assert hlr.snapshot().served == served  # type: ignore[attr-defined]
    await harness.check(None)  # 401
    await harness.check(token, {"maxAge": 24, "phoneNumber": harness.number("approves")})  # 422
    await harness.check(token, {"maxAge": 9999})  # 400
    assert ledger.totals() == {("fraud-app", "sim-swap"): 5}
    usage = await harness.http.get("/admin/usage", headers=ADMIN)
    assert usage.json() == [{"clientId": "fraud-app", "api": "sim-swap", "calls": 5}]
    event = ledger.events()[0]
    assert (event.operation, event.plan, event.status) == ("checkSimSwap", "pay-as-you-go", 200)


async def test_an_idempotency_key_reused_for_another_request_is_refused_not_replayed(
    harness: Harness,
) -> None:
    """Only the same operation about the same subscriber gets the stored answer: another
    operation's (or another subscriber's) answer would be wrong, and running the call would
    bill nothing, its key being taken."""
    ledger = harness.operator.gateway.ledger
    token = await harness.three_legged()
    first = await harness.check(token, headers={"Idempotency-Key": "flow-1"})
    assert first.status_code == 200
    roaming = await harness.three_legged(scope=f"device-roaming-status:read {FRAUD}")
    other_operation = await harness.http.post(
        "/device-roaming-status/v1/retrieve", json={},
        headers={"Authorization": f"Bearer {roaming}", "Idempotency-Key": "flow-1"},
    )
    assert other_operation.status_code == 400, other_operation.text
    assert other_operation.json()["code"] == "INVALID_ARGUMENT"
    assert "Idempotency-Key" in other_operation.json()["message"]
    assert "idempotent-replayed" not in other_operation.headers
    someone_else = await harness.three_legged(role="recent-swap")
    other_subject = await harness.check(someone_else, headers={"Idempotency-Key": "flow-1"})
    assert other_subject.status_code == 400 and "idempotent-replayed" not in other_subject.headers
    same = await harness.check(token, headers={"Idempotency-Key": "flow-1"})
    assert same.status_code == 200 and same.headers["idempotent-replayed"] == "true"
    # two-legged, the body says whom the call is about: another number is another request
    two = await harness.two_legged()
    about_a = {"maxAge": 240, "phoneNumber": harness.number("approves")}
    about_b = {"maxAge": 240, "phoneNumber": harness.number("recent-swap")}
    first_a = await harness.check(two, about_a, headers={"Idempotency-Key": "flow-2"})
    assert first_a.status_code == 200, first_a.text
    other_number = await harness.check(two, about_b, headers={"Idempotency-Key": "flow-2"})
    assert other_number.status_code == 400 and "idempotent-replayed" not in other_number.headers
    again_a = await harness.check(two, about_a, headers={"Idempotency-Key": "flow-2"})
    assert again_a.headers["idempotent-replayed"] == "true" and again_a.json() == first_a.json()
    # a correlator the gateway made up (the key it metered the call under), echoed and sent
    # back as a key, replays nothing
    made_up = await harness.check(two, about_a)
    echoed = made_up.headers["x-correlator"]
    sent_back = await harness.check(two, about_a, headers={"Idempotency-Key": echoed})
    assert sent_back.status_code == 400 and "idempotent-replayed" not in sent_back.headers
    assert "gateway chose" in sent_back.json()["message"]
    # the draft's quoted spelling is the same key as the bare one
    quoted = await harness.check(two, about_a, headers={"Idempotency-Key": '"flow-2"'})
    assert quoted.headers["idempotent-replayed"] == "true" and quoted.json() == first_a.json()
    assert ledger.totals() == {("fraud-app", "sim-swap"): 3}


async def test_one_correlator_spans_a_flow_and_each_call_under_it_runs(
    harness: Harness,
) -> None:
    """The x-correlator correlates (CAMARA_common): a client may send one value across a
    whole flow. A second API under it is served, and the same request under it again is a
    new call, run and billed, never an old stored answer; only an Idempotency-Key replays."""
    ledger = harness.operator.gateway.ledger
    flow = {"x-correlator": "journey-7"}
    token = await harness.three_legged()
    first = await harness.check(token, headers=flow)
    assert first.status_code == 200 and first.headers["x-correlator"] == "journey-7"
    roaming = await harness.three_legged(scope=f"device-roaming-status:read {FRAUD}")
    second_api = await harness.http.post(
        "/device-roaming-status/v1/retrieve", json={},
        headers={"Authorization": f"Bearer {roaming}", **flow},
    )
    assert second_api.status_code == 200, second_api.text
    assert second_api.headers["x-correlator"] == "journey-7"
    hlr = harness.operator.backends.functions[NetworkFunctionKind.SIM_DATA_REGISTER]
    served = hlr.snapshot().served  # type: ignore[attr-defined]
    again = await harness.check(token, headers=flow)
    assert again.status_code == 200 and "idempotent-replayed" not in again.headers
    assert hlr.snapshot().served == served + 1  # type: ignore[attr-defined]
    assert ledger.totals() == {
        ("fraud-app", "sim-swap"): 2, ("fraud-app", "device-roaming-status"): 1,
    }


async def test_a_malformed_idempotency_key_is_refused_naming_the_header(
    harness: Harness,
) -> None:
    token = await harness.three_legged()
    for bad in ("spaces are not allowed", "k" * 257):
        refused = await harness.check(token, headers={"Idempotency-Key": bad})
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] == "INVALID_ARGUMENT"
        assert "Idempotency-Key" in refused.json()["message"]
    assert harness.operator.gateway.ledger.totals() == {}


async def test_a_key_past_its_replay_window_is_refused_not_served_unbilled(
    harness: Harness,
) -> None:
    """Housekeeping drops a stored answer after its replay window, but the usage event, and so
    its key, stays: a call run under that idempotency key again could not be billed. It is
    refused; a new key is served and billed."""
    ledger = harness.operator.gateway.ledger
    token = await harness.three_legged()
    assert (await harness.check(token, headers={"Idempotency-Key": "kept-1"})).status_code == 200
    harness.clock.advance(2 * 86400)
    assert harness.operator.housekeeping.purge()["usage_events"] == 1
    token = await harness.three_legged()
    again = await harness.check(token, headers={"Idempotency-Key": "kept-1"})
    assert again.status_code == 400, again.text
    assert again.json()["code"] == "INVALID_ARGUMENT" and "no longer kept" in again.text
    assert ledger.totals() == {("fraud-app", "sim-swap"): 1}
    fresh = await harness.check(token, headers={"Idempotency-Key": "kept-2"})
    assert fresh.status_code == 200
    assert ledger.totals() == {("fraud-app", "sim-swap"): 2}


async def test_the_same_key_sent_twice_at_once_is_served_and_billed_once(
    harness: Harness,
) -> None:
    """Both requests find no stored answer and run; the second to commit finds the key taken:
    it is not answered as a fresh unbilled success but with the first one's stored answer."""
    import asyncio

    ledger = harness.operator.gateway.ledger
    token = await harness.three_legged()
    answers = await asyncio.gather(
        *(harness.check(token, headers={"x-correlator": "twin-1", "Idempotency-Key": "twin-1"})
          for _ in range(2)))
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    replayed = [a.headers.get("idempotent-replayed") for a in answers]
    assert replayed.count("true") == 1 and replayed.count(None) == 1
    assert all(a.headers["x-correlator"] == "twin-1" for a in answers)
    assert ledger.totals() == {("fraud-app", "sim-swap"): 1}


async def test_backend_outage_answers_503_at_once(harness: Harness) -> None:
    token = await harness.three_legged()
    down = await harness.http.put(
        "/admin/faults/sim_data_register", json={"outage": True}, headers=ADMIN
    )
    assert down.status_code == 200
    response = await harness.check(token)
    assert response.status_code == 503 and response.json()["code"] == "UNAVAILABLE"
    assert harness.operator.gateway.ledger.totals() == {}
    cleared = await harness.http.delete("/admin/faults/sim_data_register", headers=ADMIN)
    assert cleared.status_code == 200
    functions = harness.operator.backends.functions
    assert functions[NetworkFunctionKind.SIM_DATA_REGISTER].faults == Faults()  # type: ignore[attr-defined]
    unknown = await harness.http.put("/admin/faults/hlr9000", json={}, headers=ADMIN)
    assert unknown.status_code == 404


async def test_metrics_endpoint_reports_calls_and_backends(harness: Harness) -> None:
    token = await harness.three_legged()
    await harness.check(token)
    await harness.check(None)
    text = (await harness.http.get("/metrics")).text
    assert (
        'ogsim_gateway_requests_total{api="sim-swap",operation="checkSimSwap",status="200"} 1.0'
        in text
    )
    assert 'status="401"' in text
    assert 'ogsim_breaker_state{backend="sim_data_register",state="CLOSED"} 1.0' in text
    assert "ogsim_backend_queue_length" in text


async def test_unknown_path_and_method_are_camara_errors(harness: Harness) -> None:
    missing = await harness.http.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    wrong = await harness.http.get("/sim-swap/v2/check")
    assert wrong.status_code == 405 and wrong.json()["code"] == "METHOD_NOT_ALLOWED"


async def test_a_call_that_cannot_be_metered_is_not_acknowledged(harness: Harness) -> None:
    token = await harness.three_legged()
    harness.operator.gateway.ledger.db.execute("DROP TABLE usage_events")
    response = await harness.check(token)
    assert response.status_code == 503 and response.json()["code"] == "UNAVAILABLE"


async def test_a_call_effect_commits_with_its_usage_event_or_not_at_all(harness: Harness) -> None:
    from federation.client import ApplicationClient, new_client_key

    operator = harness.operator
    key = new_client_key()
    await harness.http.post(
        f"{operator.issuer}/admin/clients",
        headers=ADMIN,
        json={
            "client_id": "qod-app",
            "client_name": "QoD app",
            "jwks": {"keys": [key.as_dict(private=False)]},
            "grant_types": ["urn:openid:params:grant-type:ciba"],
            "scope": "quality-on-demand:sessions:create",
            "purposes": ["dpv:FraudPreventionAndDetection"],
        },
    )
    client = await ApplicationClient.discover("qod-app", key, operator.issuer, harness.http)
    client.clock, client.sleep = harness.client.clock, harness.client.sleep
    body = {
        "qosProfile": "QOS_E",
        "duration": 600,
        "applicationServer": {"ipv4Address": "198.51.100.10"},
    }

    async def create(role: str) -> int:
        token = await client.ciba(
            f"tel:{harness.number(role)}",
            "quality-on-demand:sessions:create dpv:FraudPreventionAndDetection",
        )
        response = await harness.http.post(
            "/quality-on-demand/v1/sessions",
            json=body,
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        return response.status_code

    def rows(table: str) -> int:
        row = operator.db.one(f"SELECT COUNT(*) AS n FROM {table}")
        return int(row["n"]) if row is not None else 0

    assert await create("approves") == 201
    assert (rows("qod_sessions"), rows("usage_events")) == (1, 1)
    # the usage insert fails: the session row must not stay behind without its event
    operator.db.execute(
        "CREATE TRIGGER no_usage BEFORE INSERT ON usage_events"
        " BEGIN SELECT RAISE(ABORT, 'metering down'); END"
    )
    assert await create("roaming") == 503
    assert (rows("qod_sessions"), rows("usage_events")) == (1, 1)


async def test_an_oversized_body_is_refused_before_it_is_read(harness: Harness) -> None:
    from operators.operator import create_operator_app

    app = create_operator_app(harness.operator)
    token = await harness.three_legged()
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        raise AssertionError("the gateway read a body it should have refused by its length")

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/sim-swap/v2/check",
        "raw_path": b"/sim-swap/v2/check",
        "query_string": b"",
        "root_path": "",
        "client": ("203.0.113.7", 4000),
        "server": ("telco-es.ogsim.test", 443),
        "headers": [
            (b"host", b"telco-es.ogsim.test"),
            (b"content-type", b"application/json"),
            (b"content-length", b"10000000"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 400


def test_the_request_fingerprint_tells_every_part_of_a_request_apart() -> None:
    context = CallContext(client_id="app")
    base: dict[str, Any] = {"method": "POST", "path": "/x", "query_string": b"a=1"}
    body = {"device": {"phoneNumber": "+34600000001"}, "duration": 60}
    same = request_digest(base, body, context)
    for changed in ({**base, "query_string": b"a=2"}, {**base, "path": "/y"},
                    {**base, "method": "GET"}):
        assert request_digest(changed, body, context) != same, changed
    assert request_digest(base, {**body, "duration": 61}, context) != same
    assert request_digest(base, body, CallContext(client_id="app", msisdn="+34600000001")) != same
    assert request_digest(base, body, CallContext(client_id="app", party="hub/app")) != same
    # the same request written again: keys in another order, or another place to notify
    # (the hub gives each attempt of a relayed session a sink and credential of its own)
    assert request_digest(base, {"duration": 60, **body}, context) == same
    elsewhere = {**body, "sink": "https://hub.example/n/2", "sinkCredential": {"x": 1}}
    assert request_digest(base, elsewhere, context) == same


async def test_a_call_is_metered_at_its_admission_under_the_plan_it_was_admitted_under(
    harness: Harness,
) -> None:
    """Rating prices an event under the plan period holding its time: stamped when it was
    metered, a call admitted on pay-as-you-go that finished after an upgrade was priced as an
    enterprise call although its event names pay-as-you-go."""
    from operators.billing import Month, rate_subscription
    from operators.camara import operation_named
    from operators.gateway.gateway import MeteredCall

    gateway = harness.operator.gateway
    plans = gateway.admission.plans
    operation = operation_named("checkSimSwap")
    admitted = harness.clock()
    call = MeteredCall(CallContext(client_id="fraud-app", correlator="slow-1"), operation,
                       plans.plan_for("fraud-app", "sim-swap"), "slow-1", "",
                       gateway.calendar())
    harness.clock.advance(5.0)  # the call runs; meanwhile the application upgrades
    plans.subscribe("fraud-app", "sim-swap", "enterprise")
    harness.clock.advance(5.0)
    assert await gateway.meter(call, 200, b"{}")
    (event,) = gateway.ledger.events()
    assert event.at == gateway.calendar() - 10.0 and event.plan == "pay-as-you-go"
    lines = rate_subscription("fraud-app", "sim-swap", [event],
                              plans.history("fraud-app", "sim-swap"), Month.of(event.at))
    priced = [line for line in lines if line.events]
    assert [(line.plan, str(line.amount)) for line in priced] == [("pay-as-you-go", "0.01")]
    assert admitted == harness.clock() - 10.0


async def test_device_status_refuses_a_correlator_only_the_common_pattern_allows(
    harness: Harness,
) -> None:
    """Device Roaming Status declares ``^[a-zA-Z0-9-]{0,55}$`` for its x-correlator, not
    CAMARA_common's: a colon or a 56th character is malformed there, while SIM Swap takes it."""
    roaming = await harness.three_legged(scope=f"device-roaming-status:read {FRAUD}")
    token = await harness.three_legged()
    for value in ("urn:call-1", "c" * 56):
        narrow = await harness.http.post(
            "/device-roaming-status/v1/retrieve", json={},
            headers={"Authorization": f"Bearer {roaming}", "x-correlator": value},
        )
        assert narrow.status_code == 400, narrow.text
        assert narrow.json()["code"] == "INVALID_ARGUMENT"
        assert "x-correlator" in narrow.json()["message"]
        assert narrow.headers.get("x-correlator") != value
        common = await harness.check(token, headers={"x-correlator": value})
        assert common.status_code == 200 and common.headers["x-correlator"] == value
    fits = await harness.http.post(
        "/device-roaming-status/v1/retrieve", json={},
        headers={"Authorization": f"Bearer {roaming}", "x-correlator": "c" * 55},
    )
    assert fits.status_code == 200 and fits.headers["x-correlator"] == "c" * 55
