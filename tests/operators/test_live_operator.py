"""A started operator (``ogsim serve`` on a loopback port) answers a CAMARA client correctly.

The client follows CAMARA: private_key_jwt, CIBA for a subscriber (or the authorization code
flow from the subscriber's own device address, for Number Verification), then the API call,
over real HTTP. The operator's device range is 127.0.0.0/16, so a socket bound to 127.0.0.2 is
the handset of the first test number: network-based authentication over loopback.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import yaml

from federation.client import ApplicationClient, OAuthClientError, new_client_key
from federation.ports import free_port
from operators.config import TokenLifetimes, example_operator
from operators.storage import Database
from operators.subscriber_base import SubscriberBase

FRAUD = "dpv:FraudPreventionAndDetection"
CONSENTED = "dpv:ServiceProvision"
SCOPES = (
    "sim-swap:check sim-swap:retrieve-date device-reachability-status:read "
    "device-roaming-status:read location-verification:verify kyc-match:match"
)
REDIRECT = "https://app.example/callback"
ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """``ogsim serve`` in a child process; stopped (and waited for) after the module."""
    folder = tmp_path_factory.mktemp("live")
    config = example_operator().model_copy(
        update={
            "ipv4_ranges": ("127.0.0.0/16",),
            # A one-second poll interval: a client polling a never-answering handset in a
            # tight loop for the request's whole lifetime would meet the token endpoint's
            # rate limit instead of expired_token.
            "lifetimes": TokenLifetimes(ciba_interval=1, ciba_request=3),
        }
    )
    path = folder / "operator.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sim.cli",
            "serve",
            "--config",
            str(path),
            "--port",
            str(port),
            "--storage",
            str(folder / "op.sqlite3"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError(
            f"ogsim serve did not start: {process.stderr.read() if process.stderr else ''}"
        )
    try:
        yield base, config
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def client(
    served: tuple[str, Any],
) -> AsyncIterator[tuple[ApplicationClient, httpx.AsyncClient]]:
    base, _ = served
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        key = new_client_key()
        client_id = f"live-app-{time.monotonic_ns()}"
        registered = await http.post(
            f"{base}/oauth/admin/clients",
            headers=ADMIN,
            json={
                "client_id": client_id,
                "client_name": "Live test app",
                "jwks": {"keys": [key.as_dict(private=False)]},
                "grant_types": [
                    "client_credentials",
                    "urn:openid:params:grant-type:ciba",
                    "authorization_code",
                ],
                "redirect_uris": [REDIRECT],
                "scope": f"{SCOPES} number-verification:verify",
                "purposes": [FRAUD, CONSENTED],
            },
        )
        assert registered.status_code == 201, registered.text
        yield await ApplicationClient.discover(client_id, key, f"{base}/oauth", http), http


def number_of(config: Any, role: str) -> str:
    return SubscriberBase(config, Database()).test_number(role)


EXPECTED = {
    # role: (swapped within 24 h, reachable, connectivity, roaming country code)
    "approves": (False, True, ["DATA", "SMS"], None),
    "recent-swap": (True, True, ["DATA", "SMS"], None),
    "never-swapped": (False, True, ["DATA", "SMS"], None),
    "roaming": (False, True, ["DATA", "SMS"], 208),
    "unreachable": (False, False, None, None),
    "sms-only": (False, True, ["SMS"], None),
}


@pytest.mark.parametrize("role", sorted(EXPECTED))
async def test_each_test_number_answers_each_api_as_documented(
    served: tuple[str, Any], client: tuple[ApplicationClient, httpx.AsyncClient], role: str
) -> None:
    app, http = client
    number = number_of(served[1], role)
    token = await app.ciba(f"tel:{number}", f"{SCOPES} {FRAUD}")
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    swapped, reachable, connectivity, country = EXPECTED[role]

    check = await http.post("/sim-swap/v2/check", json={"maxAge": 24}, headers=auth)
    assert check.status_code == 200 and check.json() == {"swapped": swapped}
    date = await http.post("/sim-swap/v2/retrieve-date", json={}, headers=auth)
    assert date.status_code == 200 and "latestSimChange" in date.json()

    status = (
        await http.post("/device-reachability-status/v1/retrieve", json={}, headers=auth)
    ).json()
    assert status["reachable"] is reachable and status.get("connectivity") == connectivity
    roaming = (await http.post("/device-roaming-status/v1/retrieve", json={}, headers=auth)).json()
    assert roaming["roaming"] is (country is not None) and roaming.get("countryCode") == country

    subscriber = (await http.get(f"/admin/subscribers/{number}", headers=ADMIN)).json()
    where = subscriber["location"]
    area = {
        "areaType": "CIRCLE",
        "radius": 2000,
        "center": {"latitude": where["latitude"], "longitude": where["longitude"]},
    }
    verified = await http.post(
        "/location-verification/v3/verify", json={"area": area}, headers=auth
    )
    if country is None:
        assert verified.status_code == 200 and verified.json()["verificationResult"] == "TRUE"
        # some 60 km north: within the network's coverage, nowhere near the device
        away = {**area, "center": {**area["center"], "latitude": where["latitude"] + 0.55}}
        elsewhere = await http.post(
            "/location-verification/v3/verify", json={"area": away}, headers=auth
        )
        assert elsewhere.json()["verificationResult"] == "FALSE"
    else:  # abroad, where the home network has no cell to place the device by
        assert (verified.status_code, verified.json()["code"]) == (
            422,
            "LOCATION_VERIFICATION.AREA_NOT_COVERED",
        )
    sydney = {**area, "center": {"latitude": -33.86, "longitude": 151.2}}
    uncovered = await http.post(
        "/location-verification/v3/verify", json={"area": sydney}, headers=auth
    )
    assert (uncovered.status_code, uncovered.json()["code"]) == (
        422,
        "LOCATION_VERIFICATION.AREA_NOT_COVERED",
    )

    person = subscriber["identity"]
    kyc = await http.post(
        "/kyc-match/v0.3/match",
        headers=auth,
        json={
            "givenName": person["given_name"],
            "familyName": "Nobody",
            "birthdate": person["birthdate"],
        },
    )
    assert kyc.status_code == 200
    assert kyc.json()["givenNameMatch"] == "true" and kyc.json()["familyNameMatch"] == "false"


async def test_handsets_decide_consent_based_requests(
    served: tuple[str, Any], client: tuple[ApplicationClient, httpx.AsyncClient]
) -> None:
    app, _ = client
    scope = f"device-reachability-status:read {CONSENTED}"
    approved = await app.ciba(f"tel:{number_of(served[1], 'approves')}", scope)
    assert approved["token_type"].lower() == "bearer"
    with pytest.raises(OAuthClientError) as denied:
        await app.ciba(f"tel:{number_of(served[1], 'denies-consent')}", scope)
    assert denied.value.error == "access_denied"
    with pytest.raises(OAuthClientError) as silent:
        await app.ciba(f"tel:{number_of(served[1], 'never-answers')}", scope)
    assert silent.value.error == "expired_token"
    with pytest.raises(OAuthClientError) as objected:
        await app.ciba(f"tel:{number_of(served[1], 'opted-out')}", f"sim-swap:check {FRAUD}")
    assert objected.value.error == "access_denied"


async def test_number_verification_from_the_device_itself(
    served: tuple[str, Any], client: tuple[ApplicationClient, httpx.AsyncClient]
) -> None:
    base, config = served
    app, http = client
    own = number_of(config, "approves")  # its device address is 127.0.0.2
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(transport=transport, base_url=base, timeout=10) as handset:
        token = await app.authorization_code(
            handset, f"number-verification:verify {FRAUD}", REDIRECT
        )
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    same = await http.post(
        "/number-verification/v2/verify", json={"phoneNumber": own}, headers=auth
    )
    assert same.status_code == 200 and same.json() == {"devicePhoneNumberVerified": True}
    other = number_of(config, "roaming")
    differs = await http.post(
        "/number-verification/v2/verify", json={"phoneNumber": other}, headers=auth
    )
    assert differs.json() == {"devicePhoneNumberVerified": False}
    # from an address the operator never assigned, the flow fails cleanly
    with pytest.raises(OAuthClientError) as outsider:
        await app.authorization_code(http, f"number-verification:verify {FRAUD}", REDIRECT)
    assert outsider.value.error == "login_required"


async def test_a_forwarded_for_header_does_not_make_a_device(served: tuple[str, Any]) -> None:
    """The peer's address is the device's identity. uvicorn would take an ``X-Forwarded-For``
    from a loopback peer as the client's address, letting any local process pass for any
    subscriber; the operator's server reads the socket's address only."""
    base, _ = served
    handset = {"X-Forwarded-For": "127.0.0.2", "Forwarded": "for=127.0.0.2"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        claimed = await http.post("/oauth/admin/operator-tokens", json={}, headers=handset)
        assert claimed.status_code == 401, claimed.text
        assert claimed.json()["error"] == "login_required"
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(transport=transport, base_url=base, timeout=10) as device:
        own = await device.post("/oauth/admin/operator-tokens", json={})
    assert own.status_code == 201, "the real device, from its own address, gets its token"
