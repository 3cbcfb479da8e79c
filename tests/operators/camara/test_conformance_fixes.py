"""Behaviours CAMARA's feature files asked for that the first API layer got wrong."""

from __future__ import annotations

import httpx

from operators.camara import CallContext
from operators.subscriber_base import SubscriberBase

QOD = "/quality-on-demand/v1"


def _session(number: str, **extra: object) -> dict[str, object]:
    return {
        "device": {"phoneNumber": number},
        "applicationServer": {"ipv4Address": "198.51.100.1"},
        "qosProfile": "QOS_E",
        "duration": 600,
        **extra,
    }


async def test_identifiers_of_two_different_devices_mismatch(
    client: httpx.AsyncClient, base: SubscriberBase
) -> None:
    other = base.get(base.test_number("unreachable"))
    assert other is not None and other.ipv4
    device = {
        "phoneNumber": base.test_number("approves"),
        "ipv4Address": {"publicAddress": "84.125.93.10", "privateAddress": other.ipv4},
    }
    r = await client.post("/device-roaming-status/v1/retrieve", json={"device": device})
    assert (r.status_code, r.json()["code"]) == (422, "IDENTIFIER_MISMATCH")


async def test_another_clients_session_is_permission_denied_not_found_when_unknown(
    client: httpx.AsyncClient, base: SubscriberBase, context: dict[str, CallContext]
) -> None:
    created = await client.post(f"{QOD}/sessions", json=_session(base.test_number("approves")))
    sid = created.json()["sessionId"]
    context["ctx"] = CallContext(client_id="someone-else")
    r = await client.get(f"{QOD}/sessions/{sid}")
    assert (r.status_code, r.json()["code"]) == (403, "PERMISSION_DENIED")
    r = await client.get(f"{QOD}/sessions/00000000-0000-4000-8000-000000000000")
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")


async def test_only_access_token_sink_credentials(
    client: httpx.AsyncClient, base: SubscriberBase
) -> None:
    body = _session(base.test_number("approves"), sinkCredential={"credentialType": "PLAIN"})
    r = await client.post(f"{QOD}/sessions", json=body)
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_CREDENTIAL")


async def test_sessions_of_a_device_without_data_are_not_applicable(
    client: httpx.AsyncClient, base: SubscriberBase
) -> None:
    device = {"phoneNumber": base.test_number("unreachable")}
    r = await client.post(f"{QOD}/retrieve-sessions", json={"device": device})
    assert (r.status_code, r.json()["code"]) == (422, "SERVICE_NOT_APPLICABLE")


async def test_a_profile_filter_matching_nothing_is_an_empty_list(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/qos-profiles/v1/retrieve-qos-profiles", json={"name": "NO_SUCH"})
    assert (r.status_code, r.json()) == (200, [])


async def test_kyc_empty_body_is_invalid_argument_phone_only_is_a_bad_combination(
    client: httpx.AsyncClient, base: SubscriberBase, context: dict[str, CallContext]
) -> None:
    number = base.test_number("approves")
    context["ctx"] = CallContext(client_id="app-1", msisdn=number)
    r = await client.post("/kyc-match/v0.3/match", json={})
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ARGUMENT")
    r = await client.post("/kyc-match/v0.3/match", json={"phoneNumber": number})
    assert r.json()["code"] == "KNOW_YOUR_CUSTOMER.INVALID_PARAM_COMBINATION"


async def test_verify_location_area_needs_its_area_type(
    client: httpx.AsyncClient, base: SubscriberBase
) -> None:
    area = {"center": {"latitude": 40.4, "longitude": -3.7}, "radius": 1000}
    body = {"device": {"phoneNumber": base.test_number("approves")}, "area": area}
    r = await client.post("/location-verification/v3/verify", json=body)
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ARGUMENT")


async def test_only_device_status_refuses_identifiers_of_two_devices(
    client: httpx.AsyncClient, base: SubscriberBase
) -> None:
    """Location, QoD and QoS Profiles answer for the identifier they use and return no
    error when another identifier names another device (their YAML: "No error should be
    returned ... to prevent API consumers correlating different identifiers"); only the
    device status APIs list IDENTIFIER_MISMATCH. Location retrieval's feature expects it
    too (C01.08), against its YAML: the YAML is followed, and the runner reports C01.08 as
    contradicting it."""
    number = base.test_number("approves")
    other = base.get(base.test_number("unreachable"))
    assert other is not None and other.ipv4
    device = {"phoneNumber": number,
              "ipv4Address": {"publicAddress": "84.125.93.10", "privateAddress": other.ipv4}}
    area = {"areaType": "CIRCLE", "center": {"latitude": 40.4, "longitude": -3.7},
            "radius": 1000}
    verified = await client.post("/location-verification/v3/verify",
                                 json={"device": device, "area": area})
    assert verified.status_code == 200, verified.text
    assert verified.json()["device"] == {"phoneNumber": number}
    session = await client.post(f"{QOD}/sessions", json={**_session(number), "device": device})
    assert session.status_code == 201, session.text
    assert session.json()["device"] == {"phoneNumber": number}
    profiles = await client.post("/qos-profiles/v1/retrieve-qos-profiles",
                                 json={"device": device})
    assert profiles.status_code == 200, profiles.text
    reachability = await client.post("/device-reachability-status/v1/retrieve",
                                     json={"device": device})
    assert (reachability.status_code, reachability.json()["code"]) == (422, "IDENTIFIER_MISMATCH")
    retrieval = await client.post("/location-retrieval/v0.5/retrieve", json={"device": device})
    assert retrieval.status_code == 200, retrieval.text
    assert retrieval.json()["device"] == {"phoneNumber": number}


async def test_an_application_server_network_may_have_host_bits(
    client: httpx.AsyncClient, base: SubscriberBase
) -> None:
    """quality-on-demand.yaml: "1.2.3.4/24" matches 1.2.3.0 to 1.2.3.255 (so does an IPv6
    address with its /64); a zone, an impossible mask or a non-address is still refused."""
    number = base.test_number("approves")
    for server in ({"ipv4Address": "1.2.3.4/24"},
                   {"ipv6Address": "2001:db8:85a3:8d3:1319:8a2e:370:7344/64"}):
        created = await client.post(f"{QOD}/sessions",
                                    json=_session(number, applicationServer=server))
        assert created.status_code == 201, created.text
        assert created.json()["applicationServer"] == server
        await client.delete(f"{QOD}/sessions/{created.json()['sessionId']}")
    for server in ({"ipv4Address": "1.2.3.4/33"}, {"ipv6Address": "fe80::1%eth0"},
                   {"ipv4Address": "example.com"}):
        refused = await client.post(f"{QOD}/sessions",
                                    json=_session(number, applicationServer=server))
        assert (refused.status_code, refused.json()["code"]) == (400, "INVALID_ARGUMENT"), server


async def test_a_device_ipv6_address_has_no_zone(client: httpx.AsyncClient) -> None:
    r = await client.post("/device-roaming-status/v1/retrieve",
                          json={"device": {"ipv6Address": "fe80::1%eth0"}})
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ARGUMENT")


async def test_kyc_empty_body_is_invalid_argument_two_legged_too(
    client: httpx.AsyncClient,
) -> None:
    """kyc-match.feature 400.2: an empty body, with any valid token (two-legged here, where
    no number names the device either), is 400 INVALID_ARGUMENT, not MISSING_IDENTIFIER."""
    r = await client.post("/kyc-match/v0.3/match", json={})
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ARGUMENT")


async def test_a_sink_where_only_the_operators_network_reaches_is_refused(
    client: httpx.AsyncClient, base: SubscriberBase
) -> None:
    """The operator posts notifications to the sink on the application's word: a metadata
    service or another link-local address, however spelled, is 400 INVALID_SINK (the YAML's
    code)."""
    number = base.test_number("approves")
    for sink in ("https://169.254.169.254/latest/meta-data/", "https://2852039166/x",
                 "https://0xa9.0xfe.0xa9.0xfe/x", "https://[::ffff:169.254.169.254]/x",
                 "https://[fd00:ec2::254]/x", "https://[::1/x", "https://100.100.100.200/x",
                 "https://169.254.169.254./x", "https://[2002:a9fe:a9fe::]/x"):
        r = await client.post(f"{QOD}/sessions", json=_session(number, sink=sink))
        assert (r.status_code, r.json()["code"]) == (400, "INVALID_SINK"), sink


async def test_a_device_with_no_data_connection_has_no_qos_profile(
    client: httpx.AsyncClient, base: SubscriberBase
) -> None:
    """QoD refuses the device (422 SERVICE_NOT_APPLICABLE, no data connectivity); QoS Profiles
    listed every profile for it. Now it lists none, as qos-profiles feature 06 asks."""
    detached = base.test_number("unreachable")
    attached = base.test_number("approves")
    url = "/qos-profiles/v1/retrieve-qos-profiles"
    none = await client.post(url, json={"device": {"phoneNumber": detached}})
    assert none.status_code == 200 and none.json() == [], none.text
    every = await client.post(url, json={"device": {"phoneNumber": attached}})
    assert every.status_code == 200 and len(every.json()) >= 1, every.text
    assert (await client.post(url, json={})).json() == every.json(), "no device: every profile"
    refused = await client.post(f"{QOD}/sessions", json=_session(detached))
    assert (refused.status_code, refused.json()["code"]) == (422, "SERVICE_NOT_APPLICABLE")
