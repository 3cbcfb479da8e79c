"""Quality on Demand and QoS Profiles through the aggregator, end to end in one process.

Sessions are created at the operator serving the device; the application holds the hub's own
session id, and every later call about the session goes to the operator that holds it. The
operator's notifications come to the hub's relay, which sends them on under the hub's id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from federation.config import FederationConfig
from federation.data_centres import DATA_CENTRE_HEADER
from federation.federation import Federation, quick_consent, start_federation
from federation.settlement import operator_correlator

SERVICE = "dpv:RequestedServiceProvision"
QOD = " ".join(
    f"quality-on-demand:sessions:{s}" for s in ("create", "read", "delete", "update")
)
SCOPE = f"{QOD} quality-on-demand:sessions:retrieve-by-device qos-profiles:read"


@dataclass
class Hub:
    fed: Federation
    headers: dict[str, str]

    @property
    def url(self) -> str:
        return self.fed.aggregator.api_root

    def number(self, operator: str) -> str:
        return self.fed.operator(operator).subscribers.test_number("approves")

    async def create(self, number: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.fed.http.post(
            f"{self.url}/quality-on-demand/v1/sessions",
            json={
                "device": {"phoneNumber": number},
                "applicationServer": {"ipv4Address": "198.51.100.10"},
                "qosProfile": "QOS_M",
                "duration": 600,
            },
            headers=headers or self.headers,
        )


async def _application(fed: Federation, name: str) -> dict[str, str]:
    app = await fed.register_application(name, SCOPE, [SERVICE])
    token = (await app.client_credentials(f"{SCOPE} {SERVICE}"))["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def hub(federation: FederationConfig, tmp_path: Path) -> AsyncIterator[Hub]:
    fed = await start_federation(quick_consent(federation), tmp_path, probes=False)
    yield Hub(fed, await _application(fed, "qod-app"))
    await fed.stop()


async def test_sessions_live_at_the_serving_operator_under_hub_ids(hub: Hub) -> None:
    es, fr = hub.number("telco-es"), hub.number("telco-fr")
    created = {}
    for operator, number in (("telco-es", es), ("telco-fr", fr)):
        response = await hub.create(number)
        assert response.status_code == 201, response.text
        created[operator] = response.json()["sessionId"]
        uuid.UUID(created[operator])
    table = hub.fed.aggregator.sessions
    for operator, session_id in created.items():
        routed = table.get(session_id)
        assert routed is not None and routed.operator == operator
        assert routed.operator_session_id != session_id, "the hub hands out its own id"
        held = hub.fed.operator(operator).integrator.sessions.get(routed.operator_session_id)
        assert held is not None and held.client_id == "hub"

    session = f"{hub.url}/quality-on-demand/v1/sessions/{created['telco-fr']}"
    read = await hub.fed.http.get(session, headers=hub.headers)
    assert read.status_code == 200, read.text
    assert read.json()["sessionId"] == created["telco-fr"]
    assert read.json()["qosStatus"] == "AVAILABLE"
    extended = await hub.fed.http.post(
        f"{session}/extend", json={"requestedAdditionalDuration": 60}, headers=hub.headers
    )
    assert extended.status_code == 200, extended.text
    assert extended.json()["duration"] == 660
    assert extended.json()["sessionId"] == created["telco-fr"]

    listed = await hub.fed.http.post(
        f"{hub.url}/quality-on-demand/v1/retrieve-sessions",
        json={"device": {"phoneNumber": es}},
        headers=hub.headers,
    )
    assert listed.status_code == 200, listed.text
    assert [s["sessionId"] for s in listed.json()] == [created["telco-es"]]

    deleted = await hub.fed.http.delete(session, headers=hub.headers)
    assert deleted.status_code == 204, deleted.text
    assert table.get(created["telco-fr"]) is None
    gone = await hub.fed.http.get(session, headers=hub.headers)
    assert gone.status_code == 404 and gone.json()["code"] == "NOT_FOUND"

    calls = hub.fed.aggregator.settlement.calls()
    assert [(c.operator, c.operation, c.billable) for c in calls] == [
        ("telco-es", "createSession", True),
        ("telco-fr", "createSession", True),
        ("telco-fr", "getSession", True),
        ("telco-fr", "extendQosSessionDuration", True),
        ("telco-es", "retrieveSessionsByDevice", True),
        ("telco-fr", "deleteSession", True),
    ], "the 404 of the hub's own table reaches no operator and is not settled"


async def test_another_applications_session_is_refused(hub: Hub) -> None:
    created = await hub.create(hub.number("telco-gb"))
    assert created.status_code == 201, created.text
    session_id = created.json()["sessionId"]
    other = await _application(hub.fed, "other-app")
    url = f"{hub.url}/quality-on-demand/v1/sessions/{session_id}"
    refused = await hub.fed.http.get(url, headers=other)
    assert refused.status_code == 403 and refused.json()["code"] == "PERMISSION_DENIED"
    assert (await hub.fed.http.delete(url, headers=other)).status_code == 403
    listed = await hub.fed.http.post(
        f"{hub.url}/quality-on-demand/v1/retrieve-sessions",
        json={"device": {"phoneNumber": hub.number("telco-gb")}},
        headers=other,
    )
    assert listed.status_code == 200 and listed.json() == [], "the hub filters by application"
    unknown = await hub.fed.http.get(
        f"{hub.url}/quality-on-demand/v1/sessions/{uuid.uuid4()}", headers=hub.headers
    )
    assert unknown.status_code == 404
    conflict = await hub.create(hub.number("telco-gb"))
    assert conflict.status_code == 409, "the operator's own rule: one session per device"


async def test_qos_profiles_by_device_and_everywhere(hub: Hub) -> None:
    by_device = await hub.fed.http.post(
        f"{hub.url}/qos-profiles/v1/retrieve-qos-profiles",
        json={"device": {"phoneNumber": hub.number("telco-es")}, "status": "ACTIVE"},
        headers=hub.headers,
    )
    assert by_device.status_code == 200, by_device.text
    assert {p["name"] for p in by_device.json()} == {"QOS_E", "QOS_S", "QOS_M", "QOS_L"}
    everywhere = await hub.fed.http.post(
        f"{hub.url}/qos-profiles/v1/retrieve-qos-profiles", json={}, headers=hub.headers
    )
    assert everywhere.status_code == 200, everywhere.text
    assert "QOS_LEGACY" in {p["name"] for p in everywhere.json()}
    profiles = f"{hub.url}/qos-profiles/v1/qos-profiles"
    one = await hub.fed.http.get(f"{profiles}/QOS_L", headers=hub.headers)
    assert one.status_code == 200 and one.json()["name"] == "QOS_L"
    missing = await hub.fed.http.get(f"{profiles}/QOS_XL", headers=hub.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    # Asked without a device, every partner answers and meters the call: each is settled
    # on its own row, and each operator's books show exactly the hub's billable rows for it.
    settled = hub.fed.aggregator.settlement.calls()
    partners = list(hub.fed.aggregator.partners)
    assert len(partners) > 1
    assert [(c.operator, c.operation, c.billable) for c in settled] == [
        ("telco-es", "retrieveQoSProfiles", True),
        *((p, "retrieveQoSProfiles", True) for p in partners),
        *((p, "getQosProfile", True) for p in partners),
        *((p, "getQosProfile", False) for p in partners),
    ]
    for partner in partners:
        billed = {e.correlator for e in hub.fed.operator(partner).gateway.ledger.events()
                  if e.client_id == "hub"}
        owed = {operator_correlator(c.application, c.correlator) for c in settled
                if c.operator == partner and c.billable}
        assert billed == owed, partner


async def test_data_centre_header_only_for_who_asks(hub: Hub) -> None:
    number = hub.number("telco-es")
    asked = await hub.create(number)
    assert asked.headers.get(DATA_CENTRE_HEADER) in ("madrid", "barcelona"), "harness opts in"
    plain = httpx.AsyncClient(transport=hub.fed.network)  # an application's own client
    async with plain:
        read = await plain.get(
            f"{hub.url}/quality-on-demand/v1/sessions/{asked.json()['sessionId']}",
            headers=hub.headers,
        )
        assert read.status_code == 200 and DATA_CENTRE_HEADER not in read.headers
        es_root = hub.fed.config.operator("telco-es").api_root
        health = await plain.get(f"{es_root}/health")
        assert health.status_code == 200 and DATA_CENTRE_HEADER not in health.headers


# -- notifications of sessions created through the hub ------------------------------------------


class AppSink:
    """The application's notification endpoint, reached over the in-process network."""

    url = "https://app.example/notifications"

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def endpoint(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.json()))
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/notifications", self.endpoint, methods=["POST"])])


async def _until(condition: Callable[[], bool], bound: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + bound
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


async def test_operator_notifications_reach_the_application_under_the_hub_id(hub: Hub) -> None:
    sink = AppSink()
    hub.fed.network.add(sink.url, sink.app())
    expires = dt.datetime.fromtimestamp(hub.fed.aggregator.clock() + 3600, dt.UTC)
    number = hub.number("telco-fr")
    created = await hub.fed.http.post(
        f"{hub.url}/quality-on-demand/v1/sessions",
        json={
            "device": {"phoneNumber": number},
            "applicationServer": {"ipv4Address": "198.51.100.10"},
            "qosProfile": "QOS_M",
            "duration": 600,
            "sink": sink.url,
            "sinkCredential": {
                "credentialType": "ACCESSTOKEN",
                "accessToken": "app-sink-token",
                "accessTokenExpiresUtc": expires.isoformat(),
                "accessTokenType": "bearer",
            },
        },
        headers=hub.headers,
    )
    assert created.status_code == 201, created.text
    session_id = created.json()["sessionId"]
    assert created.json()["sink"] == sink.url, "the application sees its own sink"
    routed = hub.fed.aggregator.sessions.get(session_id)
    assert routed is not None
    held = hub.fed.operator("telco-fr").integrator.sessions.get(routed.operator_session_id)
    assert held is not None and held.request.sink is not None
    assert held.request.sink.startswith(f"{hub.url}/qod-notifications/"), "the hub's relay"
    assert held.request.sinkCredential is not None
    assert held.request.sinkCredential.accessToken != "app-sink-token"

    await _until(lambda: len(sink.received) == 1)
    headers, event = sink.received[0]
    assert headers["authorization"] == "Bearer app-sink-token"
    assert headers["content-type"] == "application/cloudevents+json"
    assert event["data"] == {"sessionId": session_id, "qosStatus": "AVAILABLE"}
    assert event["source"] == f"{hub.url}/quality-on-demand/v1/sessions/{session_id}"
    assert event["type"] == "org.camaraproject.quality-on-demand.v1.qos-status-changed"

    deleted = await hub.fed.http.delete(
        f"{hub.url}/quality-on-demand/v1/sessions/{session_id}", headers=hub.headers
    )
    assert deleted.status_code == 204
    await _until(lambda: len(sink.received) == 2)
    assert sink.received[1][1]["data"] == {
        "sessionId": session_id,
        "qosStatus": "UNAVAILABLE",
        "statusInfo": "DELETE_REQUESTED",
    }, "relayed even after the hub forgot the session"

    relay = f"{hub.url}/qod-notifications/{session_id}"
    forged = await hub.fed.http.post(
        relay, json=event, headers={"Authorization": "Bearer app-sink-token"}
    )
    assert forged.status_code == 401 and forged.json()["code"] == "UNAUTHENTICATED"
    secret = held.request.sinkCredential.accessToken
    auth = {"Authorization": f"Bearer {secret}"}
    unknown = await hub.fed.http.post(
        f"{hub.url}/qod-notifications/{uuid.uuid4()}", json=event, headers=auth
    )
    assert unknown.status_code == 401
    other = {**event, "data": {"sessionId": str(uuid.uuid4()), "qosStatus": "AVAILABLE"}}
    mismatched = await hub.fed.http.post(relay, json=other, headers=auth)
    assert mismatched.status_code == 400 and mismatched.json()["code"] == "INVALID_ARGUMENT"
    genuine = {**event, "data": {"sessionId": routed.operator_session_id, "qosStatus": "AVAILABLE"}}
    relayed = await hub.fed.http.post(relay, json=genuine, headers=auth)
    assert relayed.status_code == 204
    await _until(lambda: len(sink.received) == 3)
    assert sink.received[2][1]["data"]["sessionId"] == session_id
    await hub.fed.aggregator.notifier.drain()
    assert len(sink.received) == 3, "nothing forged was sent on"


@pytest.mark.parametrize(
    ("sink", "credential", "code"),
    [
        ("https://app.example/notifications",
         {"credentialType": "PLAIN", "identifier": "a", "secret": "b"}, "INVALID_CREDENTIAL"),
        # a metadata address: the hub keeps no relay to post to it either
        ("https://[::ffff:a9fe:a9fe]/latest/meta-data/", None, "INVALID_SINK"),
    ],
)
async def test_a_sink_the_operator_refuses_is_its_own_error(
    hub: Hub, sink: str, credential: dict[str, str] | None, code: str
) -> None:
    body = {
        "device": {"phoneNumber": hub.number("telco-es")},
        "applicationServer": {"ipv4Address": "198.51.100.10"},
        "qosProfile": "QOS_M",
        "duration": 600,
        "sink": sink,
        **({"sinkCredential": credential} if credential else {}),
    }
    response = await hub.fed.http.post(
        f"{hub.url}/quality-on-demand/v1/sessions", json=body, headers=hub.headers
    )
    assert response.status_code == 400 and response.json()["code"] == code
    rows = hub.fed.aggregator.db.all("SELECT * FROM aggregator_qod_relays")
    assert rows == [], "no relay left behind"


async def test_any_expiry_spelling_the_operator_reads_is_relayed(hub: Hub) -> None:
    """RFC 3339 allows a lower-case t and z, and the model also reads seconds: the hub takes
    the credential's expiry as the operator's model does (it was a 500 at the hub)."""
    hub.fed.network.add(AppSink.url, AppSink().app())
    at = hub.fed.aggregator.clock() + 3600
    spelled = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dt%H:%M:%Sz")
    for expiry in (spelled, int(at)):
        created = await hub.fed.http.post(
            f"{hub.url}/quality-on-demand/v1/sessions",
            json={
                "device": {"phoneNumber": hub.number("telco-fr")},
                "applicationServer": {"ipv4Address": "198.51.100.10"},
                "qosProfile": "QOS_M",
                "duration": 600,
                "sink": AppSink.url,
                "sinkCredential": {"credentialType": "ACCESSTOKEN", "accessToken": "t",
                                   "accessTokenExpiresUtc": expiry,
                                   "accessTokenType": "bearer"},
            },
            headers=hub.headers,
        )
        assert created.status_code == 201, (expiry, created.text)
        relayed = hub.fed.aggregator.notifications.db.one(
            "SELECT expires_at FROM aggregator_qod_relays WHERE session_id = ?",
            (created.json()["sessionId"],))
        assert relayed is not None and relayed[0] == int(at), "the application's own expiry"
        deleted = await hub.fed.http.delete(
            f"{hub.url}/quality-on-demand/v1/sessions/{created.json()['sessionId']}",
            headers=hub.headers)
        assert deleted.status_code == 204


async def test_a_key_billed_at_one_operator_is_refused_at_another(hub: Hub) -> None:
    """Reading two sessions at two operators under one idempotency key: the second operator
    would bill a call the hub's one row (billable at the first) cannot hold. A key an
    application used itself in the '<key>/<partner>' form of a device-less QoS Profiles call
    is refused there too, before any operator is asked."""
    fr = (await hub.create(hub.number("telco-fr"))).json()["sessionId"]
    es = (await hub.create(hub.number("telco-es"))).json()["sessionId"]
    sessions = f"{hub.url}/quality-on-demand/v1/sessions"
    keyed = {**hub.headers, "Idempotency-Key": "g"}
    read = await hub.fed.http.get(f"{sessions}/{fr}", headers=keyed)
    assert read.status_code == 200, read.text
    other = await hub.fed.http.get(f"{sessions}/{es}", headers=keyed)
    assert other.status_code == 400 and "Idempotency-Key" in other.json()["message"]
    again = await hub.fed.http.get(f"{sessions}/{fr}", headers=keyed)
    assert again.status_code == 200 and again.headers.get("idempotent-replayed") == "true"
    es_keys = [e.correlator for e in hub.fed.operator("telco-es").gateway.ledger.events()]
    assert "qod-app:g" not in es_keys

    own = await hub.fed.http.get(f"{sessions}/{fr}",
                                 headers={**hub.headers, "Idempotency-Key": "q/telco-fr"})
    assert own.status_code == 200
    fan_out = await hub.fed.http.post(f"{hub.url}/qos-profiles/v1/retrieve-qos-profiles",
                                      json={}, headers={**hub.headers, "Idempotency-Key": "q"})
    assert fan_out.status_code == 400 and "Idempotency-Key" in fan_out.json()["message"]
    # the same operation, billed by another operator than the one the fan-out would ask
    by_device = await hub.fed.http.post(
        f"{hub.url}/qos-profiles/v1/retrieve-qos-profiles",
        json={"device": {"phoneNumber": hub.number("telco-es")}},
        headers={**hub.headers, "Idempotency-Key": "q2/telco-fr"})
    assert by_device.status_code == 200, by_device.text
    fan_out = await hub.fed.http.post(f"{hub.url}/qos-profiles/v1/retrieve-qos-profiles",
                                      json={}, headers={**hub.headers, "Idempotency-Key": "q2"})
    assert fan_out.status_code == 400 and "Idempotency-Key" in fan_out.json()["message"]
