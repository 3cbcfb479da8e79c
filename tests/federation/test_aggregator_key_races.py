"""An application's Idempotency-Key at the hub, where two requests meet or a retry follows a
delete.

Two requests under one key at the same moment, bound for two operators, were each served
and billed by its operator while the hub's books (one row per application and key) held one;
a DELETE of a QoD session retried under its key got 404, because the hub had forgotten the
session after the first delete, where the operator would have replayed its 204.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from federation.aggregator import RoutedSession, SessionTable
from federation.config import FederationConfig
from federation.federation import Federation, quick_consent, start_federation
from operators import REPLAY_WINDOW, Database
from operators.config import TokenLifetimes
from operators.housekeeping import Housekeeping, Retention

FRAUD = "dpv:FraudPreventionAndDetection"
SERVICE = "dpv:RequestedServiceProvision"
QOD = " ".join(f"quality-on-demand:sessions:{s}" for s in ("create", "read", "delete"))


@pytest.fixture
async def fed(federation: FederationConfig, tmp_path: Path) -> AsyncIterator[Federation]:
    started = await start_federation(quick_consent(federation), tmp_path, probes=False)
    yield started
    await started.stop()


async def _bearer(fed: Federation, scope: str, purposes: list[str]) -> dict[str, str]:
    app = await fed.register_application("app", scope, purposes)
    token = (await app.client_credentials(f"{scope} {purposes[0]}"))["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _number(fed: Federation, operator: str) -> str:
    return fed.operator(operator).subscribers.test_number("approves")


def _session_body(fed: Federation, operator: str = "telco-fr") -> dict[str, object]:
    return {
        "device": {"phoneNumber": _number(fed, operator)},
        "applicationServer": {"ipv4Address": "198.51.100.10"},
        "qosProfile": "QOS_M",
        "duration": 600,
    }


def _billed(fed: Federation, operator: str) -> int:
    """Usage events: one per billed call."""
    return len(fed.operator(operator).gateway.ledger.events())


async def test_one_key_sent_twice_at_once_to_two_operators_is_billed_once(fed: Federation) -> None:
    headers = {**await _bearer(fed, "sim-swap:check", [FRAUD]), "Idempotency-Key": "twice"}
    hub = fed.aggregator.api_root

    async def check(number: str) -> httpx.Response:
        return await fed.http.post(
            f"{hub}/sim-swap/v2/check", json={"phoneNumber": number}, headers=headers
        )

    answers = await asyncio.gather(check(_number(fed, "telco-es")), check(_number(fed, "telco-fr")))

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses[0] == 200 and statuses[1] in (400, 409), [a.text for a in answers]
    refused = next(answer for answer in answers if answer.status_code != 200)
    assert "Idempotency-Key" in refused.json()["message"]
    assert _billed(fed, "telco-es") + _billed(fed, "telco-fr") == 1
    settled = fed.aggregator.settlement.calls()
    assert len(settled) == 1 and settled[0].billable


async def test_a_delete_retried_under_its_key_gets_the_first_answer(fed: Federation) -> None:
    headers = await _bearer(fed, QOD, [SERVICE])
    sessions = f"{fed.aggregator.api_root}/quality-on-demand/v1/sessions"
    created = await fed.http.post(sessions, json=_session_body(fed), headers=headers)
    assert created.status_code == 201, created.text
    session = f"{sessions}/{created.json()['sessionId']}"
    keyed = {**headers, "Idempotency-Key": "delete-1"}

    first = await fed.http.delete(session, headers=keyed)
    retried = await fed.http.delete(session, headers=keyed)

    assert first.status_code == 204, first.text
    assert retried.status_code == 204, retried.text
    assert retried.headers.get("idempotent-replayed") == "true"
    # the session is gone for every other request
    read = await fed.http.get(session, headers=headers)
    assert read.status_code == 404
    other_key = await fed.http.delete(session, headers={**headers, "Idempotency-Key": "d-2"})
    assert other_key.status_code == 404
    unkeyed = await fed.http.delete(session, headers=headers)
    assert unkeyed.status_code == 404
    deletes = [c for c in fed.aggregator.settlement.calls() if c.operation == "deleteSession"]
    assert len(deletes) == 1


async def test_another_application_learns_nothing_of_a_deleted_session(fed: Federation) -> None:
    """Another application that deleted a session of its own under a key, then names this
    application's deleted session under that key, gets 404 as for any unknown id (not the
    403 that would say the id was someone's)."""
    first = await _bearer(fed, QOD, [SERVICE])
    other_app = await fed.register_application("other", QOD, [SERVICE])
    token = (await other_app.client_credentials(f"{QOD} {SERVICE}"))["access_token"]
    second = {"Authorization": f"Bearer {token}"}
    sessions = f"{fed.aggregator.api_root}/quality-on-demand/v1/sessions"
    ids = []
    for headers, operator in ((first, "telco-fr"), (second, "telco-es")):
        created = await fed.http.post(sessions, json=_session_body(fed, operator), headers=headers)
        assert created.status_code == 201, created.text
        ids.append(created.json()["sessionId"])
    mine, theirs = ids
    assert (await fed.http.delete(f"{sessions}/{mine}", headers=first)).status_code == 204
    keyed = {**second, "Idempotency-Key": "k"}
    assert (await fed.http.delete(f"{sessions}/{theirs}", headers=keyed)).status_code == 204

    probe = await fed.http.delete(f"{sessions}/{mine}", headers=keyed)

    assert probe.status_code == 404, probe.text


def _table_of(tmp_path: Path, now: list[float], *session_ids: str) -> SessionTable:
    """A hub's session table on the clock ``now[0]``, with these sessions of one application
    at telco-fr."""
    table = SessionTable(Database(str(tmp_path / "hub.db")), lambda: now[0])
    for session_id in session_ids:
        table.add(
            RoutedSession(
                session_id, "app", "telco-fr", "telco-fr", f"op-{session_id}", "tel:+33600000001"
            ),
            now[0],
        )
    return table


def test_a_tombstone_lasts_the_replay_window_and_is_then_dropped(tmp_path: Path) -> None:
    now = [1_000.0]
    table = _table_of(tmp_path, now, "s-1", "s-2")

    table.forget("s-1", "key-1")
    now[0] += REPLAY_WINDOW - 1
    assert table.get("s-1") is None and table.at_operator("telco-fr", "op-s-1") is None
    assert table.deleted("s-1", "key-1") is not None
    assert table.deleted("s-1", "key-2") is None  # only the delete's own key replays it
    table.forget("s-1", "key-1")  # a replayed delete: the tombstone keeps its first time
    now[0] += 2
    assert table.deleted("s-1", "key-1") is None

    table.forget("s-2")
    rows = table.db.all("SELECT session_id FROM aggregator_qod_sessions")
    assert [row["session_id"] for row in rows] == ["s-2"]
    # the purge, at every delete, finds the old tombstones by an index, not a table scan
    (plan,) = table.db.all(
        "EXPLAIN QUERY PLAN DELETE FROM aggregator_qod_sessions WHERE deleted_at <= ?", (0.0,)
    )
    assert "USING INDEX" in plan["detail"]


async def test_a_key_holds_either_a_qos_profiles_fan_out_or_a_device_call(
    fed: Federation,
) -> None:
    """A device-less QoS Profiles call is settled per partner (``<key>/<partner>``), a call
    naming a device under the key itself: under one key, the second was served and billed
    as if the key were new."""
    headers = await _bearer(fed, "qos-profiles:read", [SERVICE])
    profiles = f"{fed.aggregator.api_root}/qos-profiles/v1/retrieve-qos-profiles"
    device = {"device": {"phoneNumber": _number(fed, "telco-es")}}

    by_device = await fed.http.post(
        profiles, json=device, headers={**headers, "Idempotency-Key": "p1"}
    )
    fan_out = await fed.http.post(profiles, json={}, headers={**headers, "Idempotency-Key": "p1"})
    assert by_device.status_code == 200, by_device.text
    assert fan_out.status_code == 400 and "Idempotency-Key" in fan_out.json()["message"]

    fan_out = await fed.http.post(profiles, json={}, headers={**headers, "Idempotency-Key": "p2"})
    by_device = await fed.http.post(
        profiles, json=device, headers={**headers, "Idempotency-Key": "p2"}
    )
    assert fan_out.status_code == 200, fan_out.text
    assert by_device.status_code == 400 and "Idempotency-Key" in by_device.json()["message"]
    again = await fed.http.post(profiles, json={}, headers={**headers, "Idempotency-Key": "p2"})
    assert again.status_code == 200  # the fan-out itself, retried, still runs

    keys = sorted(call.correlator for call in fed.aggregator.settlement.calls())
    assert keys == ["p1", "p2/telco-es", "p2/telco-fr", "p2/telco-gb"]


async def test_a_create_retried_under_its_key_after_the_delete_is_replayed(
    fed: Federation,
) -> None:
    """The operator replays its 201 with the same session id; the hub's row for it was a
    tombstone, which the read-back after the insert skipped (an assertion, a 500)."""
    headers = await _bearer(fed, QOD, [SERVICE])
    sessions = f"{fed.aggregator.api_root}/quality-on-demand/v1/sessions"
    keyed = {**headers, "Idempotency-Key": "create-1"}
    created = await fed.http.post(sessions, json=_session_body(fed), headers=keyed)
    assert created.status_code == 201, created.text
    session_id = created.json()["sessionId"]
    assert (await fed.http.delete(f"{sessions}/{session_id}", headers=headers)).status_code == 204

    again = await fed.http.post(sessions, json=_session_body(fed), headers=keyed)

    assert again.status_code == 201, again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["sessionId"] == session_id


async def test_a_fan_out_and_a_device_call_under_its_partner_key_at_once_are_billed_as_held(
    fed: Federation,
) -> None:
    """A fan-out under ``k`` settles ``k/telco-es`` at telco-es; an application's own call
    under the literal key ``k/telco-es`` for a device of telco-fr, at the same moment, was
    served and billed by telco-fr too, while the hub's books held one row for the two."""
    headers = await _bearer(fed, "qos-profiles:read", [SERVICE])
    profiles = f"{fed.aggregator.api_root}/qos-profiles/v1/retrieve-qos-profiles"
    device = {"device": {"phoneNumber": _number(fed, "telco-fr")}}

    answers = await asyncio.gather(
        fed.http.post(profiles, json={}, headers={**headers, "Idempotency-Key": "k"}),
        fed.http.post(profiles, json=device, headers={**headers, "Idempotency-Key": "k/telco-es"}),
    )

    assert any(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    assert all(answer.status_code in (200, 400, 409) for answer in answers)
    billed = sum(_billed(fed, operator) for operator in ("telco-es", "telco-fr", "telco-gb"))
    held = [call for call in fed.aggregator.settlement.calls() if call.billable]
    assert billed == len(held), (billed, [(c.correlator, c.operator) for c in held])


async def test_a_key_that_deleted_one_session_finds_another_deleted_session_gone(
    fed: Federation,
) -> None:
    """The key that deleted ``s1``, sent again to delete ``s2`` (deleted under another key),
    reached ``s2``'s tombstone, and its operator refused the reused key with a 400."""
    headers = await _bearer(fed, QOD, [SERVICE])
    sessions = f"{fed.aggregator.api_root}/quality-on-demand/v1/sessions"
    ids = []
    for operator in ("telco-fr", "telco-es"):
        created = await fed.http.post(sessions, json=_session_body(fed, operator), headers=headers)
        assert created.status_code == 201, created.text
        ids.append(created.json()["sessionId"])
    first, second = ids
    keyed = {**headers, "Idempotency-Key": "delete-first"}
    assert (await fed.http.delete(f"{sessions}/{first}", headers=keyed)).status_code == 204
    assert (await fed.http.delete(f"{sessions}/{second}", headers=headers)).status_code == 204

    probe = await fed.http.delete(f"{sessions}/{second}", headers=keyed)

    assert probe.status_code == 404, probe.text


def test_the_hub_s_housekeeping_drops_tombstones_past_the_replay_window(tmp_path: Path) -> None:
    """Tombstones were dropped only when another session was deleted: a hub whose last
    sessions were deleted kept them for ever."""
    now = [1_000.0]
    table = _table_of(tmp_path, now, "old", "live")
    table.forget("old", "key")
    housekeeping = Housekeeping(
        table.db, Retention.for_lifetimes(TokenLifetimes()), clock=lambda: now[0]
    )
    assert housekeeping.purge()["aggregator_qod_sessions"] == 0

    now[0] += REPLAY_WINDOW + 1

    assert housekeeping.purge()["aggregator_qod_sessions"] == 1
    rows = table.db.all("SELECT session_id FROM aggregator_qod_sessions")
    assert [row["session_id"] for row in rows] == ["live"]


def test_a_tombstone_from_before_keys_were_kept_still_replays_its_delete(tmp_path: Path) -> None:
    """A hub upgraded within a day of a delete: the tombstone has no key, and the DELETE
    retried under its key must still reach the operator's replay, not the hub's 404."""
    now = [1_000.0]
    table = _table_of(tmp_path, now, "old", "gone")
    table.db.execute(
        "UPDATE aggregator_qod_sessions SET deleted_at = ? WHERE session_id = 'old'", (now[0],)
    )
    table.forget("gone")  # found gone at its operator (404): no key deleted it

    assert table.deleted("old", "any-key") is not None
    assert table.deleted("gone", "any-key") is None
