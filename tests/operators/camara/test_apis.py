"""Device identification rules, CAMARA 400s and translations for the documented test numbers."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from operators.camara import CallContext
from operators.subscriber_base import SubscriberBase

pytestmark = pytest.mark.asyncio
Ctx = dict[str, CallContext]


async def test_three_legged_with_device_in_body_is_unnecessary_identifier(
    client: httpx.AsyncClient, base: SubscriberBase, context: Ctx
) -> None:
    number = base.test_number("approves")
    context["ctx"] = CallContext(client_id="app-1", msisdn=number)
    r = await client.post(
        "/device-reachability-status/v1/retrieve", json={"device": {"phoneNumber": number}}
    )
    assert (r.status_code, r.json()["code"]) == (422, "UNNECESSARY_IDENTIFIER")


async def test_two_legged_without_device_is_missing_identifier(client: httpx.AsyncClient) -> None:
    r = await client.post("/device-roaming-status/v1/retrieve", json={})
    assert (r.status_code, r.json()["code"]) == (422, "MISSING_IDENTIFIER")


@pytest.mark.parametrize(
    "device",
    [
        {"networkAccessIdentifier": "123@example.com"},
        {"ipv4Address": {"publicAddress": "84.125.93.10", "publicPort": 59765}},
        {"ipv6Address": "2001:db8::1"},
    ],
)
async def test_identifiers_the_operator_cannot_use_are_unsupported(
    client: httpx.AsyncClient, device: dict[str, object]
) -> None:
    r = await client.post("/device-reachability-status/v1/retrieve", json={"device": device})
    assert (r.status_code, r.json()["code"]) == (422, "UNSUPPORTED_IDENTIFIER")


async def test_number_the_operator_does_not_serve_is_identifier_not_found(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/sim-swap/v2/check", json={"phoneNumber": "+4915112345678"})
    assert (r.status_code, r.json()["code"]) == (404, "IDENTIFIER_NOT_FOUND")


async def test_device_by_private_ipv4_resolves_to_its_subscriber(
    client: httpx.AsyncClient, base: SubscriberBase
) -> None:
    sub = base.get(base.test_number("unreachable"))
    assert sub is not None and sub.ipv4
    ip = {"publicAddress": "84.125.93.10", "privateAddress": sub.ipv4}
    r = await client.post(
        "/device-reachability-status/v1/retrieve", json={"device": {"ipv4Address": ip}}
    )
    assert r.status_code == 200 and r.json() == {"reachable": False}


async def test_bad_bodies_get_camara_400_not_fastapi_422(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/sim-swap/v2/check", json={"phoneNumber": "+34600000001", "maxAge": 5000}
    )
    assert (r.status_code, r.json()["code"]) == (400, "OUT_OF_RANGE")
    r = await client.post("/device-roaming-status/v1/retrieve", content=b"{not json")
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ARGUMENT")
    r = await client.post("/sim-swap/v2/check", json={"phoneNumber": "0034600"})
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ARGUMENT")


async def test_x_correlator_is_echoed(client: httpx.AsyncClient, base: SubscriberBase) -> None:
    r = await client.post(
        "/sim-swap/v2/retrieve-date",
        json={"phoneNumber": base.test_number("approves")},
        headers={"x-correlator": "abc-123"},
    )
    assert r.status_code == 200 and r.headers["x-correlator"] == "abc-123"


@pytest.mark.parametrize(
    ("role", "max_age", "swapped"),
    [
        ("recent-swap", 24, True),
        ("recent-swap", 1, False),
        ("never-swapped", 2400, False),
        ("approves", 2400, False),
    ],
)
async def test_sim_swap_check_translates_the_hlr_change_time(
    client: httpx.AsyncClient, base: SubscriberBase, role: str, max_age: int, swapped: bool
) -> None:
    r = await client.post(
        "/sim-swap/v2/check", json={"phoneNumber": base.test_number(role), "maxAge": max_age}
    )
    assert r.status_code == 200 and r.json() == {"swapped": swapped}


async def test_never_swapped_date_is_activation(
    client: httpx.AsyncClient, base: SubscriberBase
) -> None:
    number = base.test_number("never-swapped")
    r = await client.post("/sim-swap/v2/retrieve-date", json={"phoneNumber": number})
    sub = base.get(number)
    assert sub is not None
    assert r.json()["latestSimChange"].startswith(sub.activated_at.strftime("%Y-%m-%dT%H:%M"))


async def test_roaming_number_reports_visited_country(
    client: httpx.AsyncClient, base: SubscriberBase
) -> None:
    r = await client.post(
        "/device-roaming-status/v1/retrieve",
        json={"device": {"phoneNumber": base.test_number("roaming")}},
    )
    assert r.json() == {"roaming": True, "countryCode": 208, "countryName": ["FR"]}
    r = await client.post(
        "/device-roaming-status/v1/retrieve",
        json={"device": {"phoneNumber": base.test_number("approves")}},
    )
    assert r.json() == {"roaming": False}


@pytest.mark.parametrize(
    ("role", "body"),
    [
        ("unreachable", {"reachable": False}),
        ("sms-only", {"reachable": True, "connectivity": ["SMS"]}),
        ("approves", {"reachable": True, "connectivity": ["DATA", "SMS"]}),
    ],
)
async def test_reachability_from_attach_flags(
    client: httpx.AsyncClient, base: SubscriberBase, role: str, body: dict[str, object]
) -> None:
    r = await client.post(
        "/device-reachability-status/v1/retrieve",
        json={"device": {"phoneNumber": base.test_number(role)}},
    )
    assert r.json() == body


async def test_location_verification_true_false_partial(
    client: httpx.AsyncClient, base: SubscriberBase
) -> None:
    number = base.test_number("approves")
    sub = base.get(number)
    assert sub is not None
    loc = sub.location
    center = {"latitude": loc.latitude, "longitude": loc.longitude}

    async def verify(radius: float, lat_shift: float = 0.0) -> dict[str, object]:
        area = {
            "areaType": "CIRCLE",
            "radius": radius,
            "center": {**center, "latitude": loc.latitude + lat_shift},
        }
        r = await client.post(
            "/location-verification/v3/verify",
            json={"device": {"phoneNumber": number}, "area": area},
        )
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        return body

    assert (await verify(loc.accuracy * 2))["verificationResult"] == "TRUE"
    assert (await verify(1000, lat_shift=1.0))["verificationResult"] == "FALSE"
    partial = await verify(loc.accuracy / 2)
    assert partial["verificationResult"] == "PARTIAL" and partial["matchRate"] == 25
    assert partial["device"] == {"phoneNumber": number}


async def test_unreachable_device_cannot_give_a_fresh_location(
    client: httpx.AsyncClient, base: SubscriberBase
) -> None:
    area = {"areaType": "CIRCLE", "radius": 5000, "center": {"latitude": 40.4, "longitude": -3.7}}
    r = await client.post(
        "/location-verification/v3/verify",
        json={
            "device": {"phoneNumber": base.test_number("unreachable")},
            "area": area,
            "maxAge": 0,
        },
    )
    assert (r.status_code, r.json()["code"]) == (
        422,
        "LOCATION_VERIFICATION.UNABLE_TO_FULFILL_MAX_AGE",
    )
    r = await client.post(
        "/location-verification/v3/verify",
        json={"device": {"phoneNumber": base.test_number("approves")}, "area": area, "maxAge": 0},
    )
    assert r.status_code == 200


async def test_number_verification_needs_network_authentication(
    client: httpx.AsyncClient, base: SubscriberBase, context: Ctx
) -> None:
    number = base.test_number("approves")
    r = await client.post("/number-verification/v2/verify", json={"phoneNumber": number})
    assert r.json()["code"] == "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK"
    context["ctx"] = CallContext(client_id="app-1", msisdn=number)
    hashed = hashlib.sha256(number.encode()).hexdigest()
    r = await client.post("/number-verification/v2/verify", json={"hashedPhoneNumber": hashed})
    assert r.json() == {"devicePhoneNumberVerified": True}
    r = await client.post("/number-verification/v2/verify", json={"phoneNumber": "+34600000999"})
    assert r.json() == {"devicePhoneNumberVerified": False}
    r = await client.get("/number-verification/v2/device-phone-number")
    assert r.json() == {"devicePhoneNumber": number}


async def test_kyc_match_normalises_and_scores(
    client: httpx.AsyncClient, base: SubscriberBase, context: Ctx
) -> None:
    number = base.test_number("approves")
    sub = base.get(number)
    assert sub is not None
    ident = sub.identity
    r = await client.post(
        "/kyc-match/v0.3/match",
        json={
            "phoneNumber": number,
            "givenName": ident.given_name.upper(),
            "familyName": ident.family_name + "x",
            "birthdate": ident.birthdate.isoformat(),
            "middleNames": "Whatever",
        },
    )
    body = r.json()
    assert body["givenNameMatch"] == "true" and "givenNameMatchScore" not in body
    assert body["familyNameMatch"] == "false" and 80 <= body["familyNameMatchScore"] < 100
    assert body["birthdateMatch"] == "true" and body["middleNamesMatch"] == "not_available"
    assert set(body) == {
        "givenNameMatch",
        "familyNameMatch",
        "familyNameMatchScore",
        "birthdateMatch",
        "middleNamesMatch",
    }
    r = await client.post("/kyc-match/v0.3/match", json={"phoneNumber": number})
    assert r.json()["code"] == "KNOW_YOUR_CUSTOMER.INVALID_PARAM_COMBINATION"
    context["ctx"] = CallContext(client_id="app-1", msisdn=number)
    r = await client.post(
        "/kyc-match/v0.3/match", json={"phoneNumber": base.test_number("roaming"), "givenName": "x"}
    )
    assert (r.status_code, r.json()["code"]) == (403, "INVALID_TOKEN_CONTEXT")


async def test_qod_session_lifecycle(client: httpx.AsyncClient, base: SubscriberBase) -> None:
    number = base.test_number("approves")
    create = {
        "device": {"phoneNumber": number},
        "applicationServer": {"ipv4Address": "198.51.100.1"},
        "qosProfile": "QOS_E",
        "duration": 600,
    }
    r = await client.post("/quality-on-demand/v1/sessions", json=create)
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["qosStatus"] == "AVAILABLE" and session["duration"] == 600
    sid = session["sessionId"]
    assert (await client.post("/quality-on-demand/v1/sessions", json=create)).status_code == 409
    r = await client.post(
        f"/quality-on-demand/v1/sessions/{sid}/extend", json={"requestedAdditionalDuration": 10**6}
    )
    assert r.json()["duration"] == 24 * 3600  # capped at the profile's maxDuration
    r = await client.post(
        "/quality-on-demand/v1/retrieve-sessions", json={"device": {"phoneNumber": number}}
    )
    assert [s["sessionId"] for s in r.json()] == [sid]
    assert (await client.delete(f"/quality-on-demand/v1/sessions/{sid}")).status_code == 204
    assert (await client.get(f"/quality-on-demand/v1/sessions/{sid}")).status_code == 404


async def test_qod_refusals(client: httpx.AsyncClient, base: SubscriberBase) -> None:
    def body(role: str, profile: str = "QOS_E", duration: int = 60) -> dict[str, object]:
        return {
            "device": {"phoneNumber": base.test_number(role)},
            "qosProfile": profile,
            "applicationServer": {"ipv4Address": "198.51.100.1"},
            "duration": duration,
        }

    r = await client.post("/quality-on-demand/v1/sessions", json=body("sms-only"))
    assert (r.status_code, r.json()["code"]) == (422, "SERVICE_NOT_APPLICABLE")
    r = await client.post("/quality-on-demand/v1/sessions", json=body("approves", "QOS_LEGACY"))
    assert r.json()["code"] == "QUALITY_ON_DEMAND.QOS_PROFILE_NOT_APPLICABLE"
    r = await client.post("/quality-on-demand/v1/sessions", json=body("approves", duration=10**6))
    assert r.json()["code"] == "QUALITY_ON_DEMAND.DURATION_OUT_OF_RANGE"
    r = await client.get("/quality-on-demand/v1/sessions/not-a-uuid")
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ARGUMENT")
    created = await client.post("/quality-on-demand/v1/sessions", json=body("approves"))
    assert created.status_code == 201, created.text
    session = created.json()["sessionId"]
    # format: uuid is the hyphenated text only; uuid.UUID also reads these spellings of it
    for other in (f"urn:uuid:{session}", session.replace("-", ""), f"{{{session}}}"):
        for method, path in (("GET", other), ("DELETE", other), ("POST", f"{other}/extend")):
            r = await client.request(method, f"/quality-on-demand/v1/sessions/{path}",
                                     json={"requestedAdditionalDuration": 60}
                                     if method == "POST" else None)
            assert (r.status_code, r.json()["code"]) == (400, "INVALID_ARGUMENT"), (method, path)
    assert (await client.get(f"/quality-on-demand/v1/sessions/{session}")).status_code == 200


async def test_qos_profiles(client: httpx.AsyncClient) -> None:
    r = await client.post("/qos-profiles/v1/retrieve-qos-profiles", json={"status": "ACTIVE"})
    assert {p["name"] for p in r.json()} == {"QOS_E", "QOS_S", "QOS_M", "QOS_L"}
    r = await client.get("/qos-profiles/v1/qos-profiles/QOS_NONE")
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
