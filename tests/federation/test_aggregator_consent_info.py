"""Consent Info through the aggregator: answered by the operator serving the number, about the
application the hub acts for, with that operator's own capture page."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from federation.federation import Federation

FRAUD = "dpv:FraudPreventionAndDetection"
IDENTITY = "dpv:IdentityVerification"
CALLBACK = "https://kyc-app.example.com/consent/done"


@pytest.fixture
def fed(quick_federation: Federation) -> Federation:
    return quick_federation


async def _headers(fed: Federation, name: str) -> dict[str, str]:
    app = await fed.register_application(
        name, "consent-info:retrieve kyc-match:match", [FRAUD, IDENTITY],
        redirect_uris=[CALLBACK])
    token = (await app.client_credentials(f"consent-info:retrieve {FRAUD}"))["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def _status(fed: Federation, headers: dict[str, str], number: str, **extra: object
                  ) -> httpx.Response:
    return await fed.http.post(
        f"{fed.aggregator.api_root}/consent-info/v0.2/retrieve", headers=headers,
        json={"phoneNumber": number, "scopes": ["kyc-match:match"], "purpose": IDENTITY,
              "requestCaptureUrl": False, **extra})


async def test_consent_captured_at_the_serving_operator_counts_for_that_application_only(
    fed: Federation,
) -> None:
    number = fed.operator("telco-fr").subscribers.test_number("never-swapped")
    mine, other = await _headers(fed, "kyc-app"), await _headers(fed, "other-app")
    assert (await _status(fed, mine, number)).json()["statusInfo"][0]["statusReason"] == "PENDING"

    offered = await _status(fed, mine, number, requestCaptureUrl=True, callbackUrl=CALLBACK)
    assert offered.status_code == 200, offered.text
    url = offered.json()["captureUrl"]
    assert url.startswith(fed.operator("telco-fr").issuer), "the serving operator's own page"

    page = await fed.http.get(url, params={"state": "s1"})
    assert page.status_code == 200 and "kyc-app (through" in page.text
    code = fed.operator("telco-fr").handsets.messages(number)[0].data["code"]
    path = urlsplit(url).path
    origin = urlsplit(url)._replace(path="", query="").geturl()

    def csrf(text: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', text)
        assert found is not None
        return found.group(1)

    entered = await fed.http.post(f"{origin}{path}/code", data={"csrf": csrf(page.text),
                                                                "code": code})
    decided = await fed.http.post(f"{origin}{path}/decide",
                                  data={"csrf": csrf(entered.text), "decision": "approve"})
    assert decided.status_code == 303, decided.text
    assert parse_qs(urlsplit(decided.headers["location"]).query) == {
        "capture_result": ["granted"], "state": ["s1"]}

    assert (await _status(fed, mine, number)).json()["statusInfo"][0][
        "statusValidForProcessing"] is True
    assert (await _status(fed, other, number)).json()["statusInfo"][0]["statusReason"] == (
        "PENDING"), "a consent given to one application through the hub serves no other"
    settled = {row["operator"]: row for row in
               (await fed.http.get(f"{fed.aggregator.api_root}/admin/settlement",
                                   headers={"Authorization": "Bearer admin-secret"})).json()}
    assert all(row["billable"] == 0 for row in settled.values()), "Consent Info is not billed"
