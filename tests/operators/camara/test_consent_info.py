"""Consent Info (``/consent-info/v0.2/retrieve``) behind the real gateway: the status per API
from the operator's own records, the capture page that changes it, and every refusal the
definition names."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.operators.gateway.conftest import ADMIN, Harness

URL = "/consent-info/v0.2/retrieve"
FRAUD = "dpv:FraudPreventionAndDetection"
IDENTITY = "dpv:IdentityVerification"
CALLBACK = "https://app.example.com/consent/callback"


async def ask(harness: Harness, body: dict[str, Any], token: str | None = None
              ) -> httpx.Response:
    if token is None:
        token = await harness.two_legged(f"consent-info:retrieve {FRAUD}")
    return await harness.http.post(URL, json=body, headers={"Authorization": f"Bearer {token}"})


def body(harness: Harness, role: str = "approves", **fields: Any) -> dict[str, Any]:
    return {"phoneNumber": harness.number(role), "scopes": ["kyc-match:match"],
            "purpose": IDENTITY, "requestCaptureUrl": False, **fields}


async def capture_through_page(harness: Harness, capture_url: str, decision: str,
                               state: str | None = None) -> httpx.Response:
    """The subscriber's browser: open the URL, read the code on the phone, decide."""
    path = urlsplit(capture_url).path
    browser = harness.http
    opened = await browser.get(path, params={"state": state} if state else None)
    assert opened.status_code == 200, opened.text
    number = harness.number("approves")
    code = harness.operator.handsets.messages(number)[0].data["code"]
    csrf = re.search(r'name="csrf" value="([^"]+)"', opened.text)
    assert csrf is not None
    entered = await browser.post(f"{path}/code", data={"csrf": csrf.group(1), "code": code})
    assert entered.status_code == 200, entered.text
    assert 'id="approve"' in entered.text
    session = re.search(r'name="csrf" value="([^"]+)"', entered.text)
    assert session is not None
    return await browser.post(f"{path}/decide",
                              data={"csrf": session.group(1), "decision": decision})


async def test_legitimate_interest_is_valid_unless_the_subscriber_objected(
    gateway_harness: Harness,
) -> None:
    h = gateway_harness
    sent = {"scopes": ["sim-swap:check"], "purpose": FRAUD, "requestCaptureUrl": True}
    allowed = await ask(h, {"phoneNumber": h.number("approves"), **sent})
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == {"statusInfo": [
        {"scopes": ["sim-swap:check"], "purpose": FRAUD, "statusValidForProcessing": True}]}
    objected = await ask(h, {"phoneNumber": h.number("opted-out"), **sent})
    assert objected.status_code == 200, objected.text
    item = objected.json()["statusInfo"][0]
    assert item["statusValidForProcessing"] is False and item["statusReason"] == "OBJECTED"
    assert "captureUrl" not in objected.json(), "an objection is not the application's to undo"


async def test_consent_pending_then_requested_then_granted_through_the_capture_page(
    gateway_harness: Harness,
) -> None:
    h = gateway_harness
    first = await ask(h, body(h))
    assert first.json()["statusInfo"][0]["statusReason"] == "PENDING"
    offered = await ask(h, body(h, requestCaptureUrl=True, callbackUrl=CALLBACK))
    capture_url = offered.json()["captureUrl"]
    assert capture_url.startswith(h.operator.issuer + "/consent/capture/cap-")
    again = await ask(h, body(h, requestCaptureUrl=True, callbackUrl=CALLBACK))
    assert again.json()["statusInfo"][0]["statusReason"] == "REQUESTED"
    assert again.json()["captureUrl"] == capture_url, "one request, not one per poll"

    done = await capture_through_page(h, capture_url, "approve", state="xyz 123")
    assert done.status_code == 303
    location = urlsplit(done.headers["location"])
    assert location._replace(query="").geturl() == CALLBACK
    assert parse_qs(location.query) == {"capture_result": ["granted"], "state": ["xyz 123"]}
    assert h.number("approves") not in done.headers["location"]

    granted = await ask(h, body(h, requestCaptureUrl=True))
    assert granted.json() == {"statusInfo": [
        {"scopes": ["kyc-match:match"], "purpose": IDENTITY, "statusValidForProcessing": True}]}
    consents = h.operator.identity.consents.for_subscriber(h.number("approves"))
    assert [c.client_id for c in consents] == ["camara-app"]


async def test_a_refusal_on_the_page_reads_denied_and_so_does_a_revocation(
    gateway_harness: Harness,
) -> None:
    h = gateway_harness
    offered = await ask(h, body(h, requestCaptureUrl=True))
    refused = await capture_through_page(h, offered.json()["captureUrl"], "deny")
    assert refused.status_code == 200 and "You refused" in refused.text
    assert (await ask(h, body(h))).json()["statusInfo"][0]["statusReason"] == "DENIED"

    granted = await h.http.post(
        f"{h.operator.issuer}/consents", headers=ADMIN,
        json={"phoneNumber": h.number("approves"), "clientId": "camara-app",
              "purpose": IDENTITY, "scopes": ["kyc-match:match"]})
    assert granted.status_code == 201, granted.text
    assert (await ask(h, body(h))).json()["statusInfo"][0]["statusValidForProcessing"] is True
    h.clock.advance(1)
    revoked = await h.http.delete(f"{h.operator.issuer}/consents/{granted.json()['id']}",
                                  headers=ADMIN)
    assert revoked.status_code == 200
    assert (await ask(h, body(h))).json()["statusInfo"][0]["statusReason"] == "DENIED"


async def test_a_time_limited_consent_shows_its_expiry_before_and_after(
    gateway_harness: Harness,
) -> None:
    h = gateway_harness
    granted = await h.http.post(
        f"{h.operator.issuer}/consents", headers=ADMIN,
        json={"phoneNumber": h.number("approves"), "clientId": "camara-app",
              "purpose": IDENTITY, "scopes": ["kyc-match:match"], "expiresIn": 3600})
    assert granted.status_code == 201, granted.text
    valid = (await ask(h, body(h))).json()["statusInfo"][0]
    assert valid["statusValidForProcessing"] is True and "expirationDate" in valid
    h.clock.advance(3601)
    expired = await ask(h, body(h, requestCaptureUrl=True))
    item = expired.json()["statusInfo"][0]
    assert item["statusReason"] == "EXPIRED" and item["expirationDate"] == valid["expirationDate"]
    assert "captureUrl" in expired.json(), "an expired consent can be renewed"


async def test_one_status_per_api(gateway_harness: Harness) -> None:
    h = gateway_harness
    answer = await ask(h, body(h, scopes=["kyc-match:match", "location-retrieval:read"],
                               purpose="dpv:ServiceProvision"))
    assert answer.status_code == 200, answer.text
    assert [i["scopes"] for i in answer.json()["statusInfo"]] == [
        ["kyc-match:match"], ["location-retrieval:read"]]


async def test_identifier_rules(gateway_harness: Harness) -> None:
    h = gateway_harness
    missing = await ask(h, {k: v for k, v in body(h).items() if k != "phoneNumber"})
    assert (missing.status_code, missing.json()["code"]) == (422, "MISSING_IDENTIFIER")
    unknown = await ask(h, body(h) | {"phoneNumber": "+99999999999"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "IDENTIFIER_NOT_FOUND")
    three_legged = await h.three_legged("approves", f"consent-info:retrieve {FRAUD}")
    named = await ask(h, body(h), token=three_legged)
    assert (named.status_code, named.json()["code"]) == (422, "UNNECESSARY_IDENTIFIER")
    own = await ask(h, {k: v for k, v in body(h).items() if k != "phoneNumber"},
                    token=three_legged)
    assert own.status_code == 200, own.text


async def test_refusals_the_definition_names(gateway_harness: Harness) -> None:
    h = gateway_harness
    not_onboarded = await ask(h, body(h, scopes=["device-location:read"]))
    assert (not_onboarded.status_code, not_onboarded.json()["code"]) == (
        403, "CONSENT_INFO.NOT_ALLOWED_SCOPES_PURPOSE")
    foreign_purpose = await ask(h, body(h, purpose="dpv:Marketing"))
    assert foreign_purpose.json()["code"] == "CONSENT_INFO.NOT_ALLOWED_SCOPES_PURPOSE"
    for bad in ("http://app.example.com/cb", "javascript:alert(1)", "https://u:p@app.example/",
                "https://app.example.com/cb#frag"):
        refused = await ask(h, body(h, requestCaptureUrl=True, callbackUrl=bad))
        assert (refused.status_code, refused.json()["code"]) == (
            403, "CONSENT_INFO.INVALID_CALLBACK_URL"), bad
    assert (await ask(h, body(h, requestCaptureUrl=True,
                                 callbackUrl="http://127.0.0.1:9/cb"))).status_code == 200
    no_scope = await ask(h, body(h), token=await h.two_legged(f"sim-swap:check {FRAUD}"))
    assert (no_scope.status_code, no_scope.json()["code"]) == (403, "PERMISSION_DENIED")
    not_json = await ask(h, body(h, requestCaptureUrl="true"))
    assert (not_json.status_code, not_json.json()["code"]) == (400, "INVALID_ARGUMENT")
    assert "requestCaptureUrl" in not_json.json()["message"]


async def test_capture_requests_are_capped_per_application_and_subscriber(
    gateway_harness: Harness,
) -> None:
    h = gateway_harness
    limit = h.operator.config.consent_captures_per_hour
    for n in range(limit):  # distinct callbacks: distinct capture requests
        offered = await ask(h, body(h, requestCaptureUrl=True,
                                    callbackUrl=f"https://app.example.com/cb/{n}"))
        assert offered.status_code == 200 and "captureUrl" in offered.json()
    capped = await ask(h, body(h, requestCaptureUrl=True, callbackUrl="https://app.example.com/x"))
    assert (capped.status_code, capped.json()["code"]) == (
        403, "CONSENT_INFO.CAPTURE_FREQUENCY_EXCEEDED")
    h.clock.advance(3601)
    assert (await ask(h, body(h, requestCaptureUrl=True))).status_code == 200


async def test_the_capture_page_refuses_what_a_forwarded_link_or_a_forged_form_tries(
    gateway_harness: Harness,
) -> None:
    h = gateway_harness
    url = (await ask(h, body(h, requestCaptureUrl=True))).json()["captureUrl"]
    path = urlsplit(url).path
    forged = await h.http.post(f"{path}/decide", data={"csrf": "x", "decision": "approve"})
    assert forged.status_code == 403
    opened = await h.http.get(path)
    assert opened.status_code == 200 and "ending in" in opened.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', opened.text)
    assert csrf is not None
    non_ascii = await h.http.post(f"{path}/code", data={"csrf": "\u00e9", "code": "000000"})
    assert non_ascii.status_code == 403, "a forged token, compared as bytes, not a 500"
    for _ in range(5):
        wrong = await h.http.post(f"{path}/code", data={"csrf": csrf.group(1), "code": "000000"})
        assert wrong.status_code == 400
    code = h.operator.handsets.messages(h.number("approves"))[0].data["code"]
    late = await h.http.post(f"{path}/code", data={"csrf": csrf.group(1), "code": code})
    assert late.status_code == 400, "five wrong tries spend the code"
    assert h.operator.identity.consents.for_subscriber(h.number("approves")) == []
    assert (await h.http.get(urlsplit(url)._replace(path=path + "x").path)).status_code == 404


async def test_a_capture_sends_three_codes_at_most_so_guessing_ends(
    gateway_harness: Harness,
) -> None:
    """Whoever holds the link cannot ask for code after code and guess on: the third code's
    tries spent, no fourth comes, the right answer to an old code opens nothing, and the
    subscriber's phone got three messages."""
    h = gateway_harness
    number = h.number("approves")
    url = (await ask(h, body(h, requestCaptureUrl=True))).json()["captureUrl"]
    path = urlsplit(url).path
    await h.http.get(path)
    h.http.cookies.clear()  # another device (or a link preview) opens the link: no new code
    opened = await h.http.get(path)
    assert len(h.operator.handsets.messages(number)) == 1
    csrf = re.search(r'name="csrf" value="([^"]+)"', opened.text)
    assert csrf is not None
    form = {"csrf": csrf.group(1)}
    for sent in (2, 3):
        again = await h.http.post(f"{path}/code", data={**form, "resend": "1"})
        assert again.status_code == 303
        assert len(h.operator.handsets.messages(number)) == sent
    page = await h.http.get(path)
    assert 'id="resend"' not in page.text, "no button for a code that will not come"
    refused = await h.http.post(f"{path}/code", data={**form, "resend": "1"})
    assert refused.status_code == 429 and "sent all the codes it may" in refused.text
    for _ in range(5):
        wrong = await h.http.post(f"{path}/code", data={**form, "code": "000000"})
        assert wrong.status_code == 400
    assert "sent all the codes it may" in wrong.text
    first = h.operator.handsets.messages(number)[-1].data["code"]
    late = await h.http.post(f"{path}/code", data={**form, "code": first})
    assert late.status_code == 400 and 'id="approve"' not in late.text
    assert len(h.operator.handsets.messages(number)) == 3
    assert h.operator.identity.consents.for_subscriber(number) == []


async def test_the_device_itself_needs_no_code(gateway_harness: Harness) -> None:
    h = gateway_harness
    url = (await ask(h, body(h, requestCaptureUrl=True))).json()["captureUrl"]
    subscriber = h.operator.subscribers.get(h.number("approves"))
    assert subscriber is not None and subscriber.ipv4
    transport = httpx.ASGITransport(app=h.http._transport.app,  # type: ignore[attr-defined]
                                    client=(str(subscriber.ipv4), 5000))
    async with httpx.AsyncClient(transport=transport, base_url=h.operator.api_root) as device:
        opened = await device.get(urlsplit(url).path)
        assert opened.status_code == 200 and 'id="approve"' in opened.text
    assert h.operator.handsets.messages(h.number("approves")) == []


async def test_an_expired_capture_returns_timeout_to_the_application(
    gateway_harness: Harness,
) -> None:
    h = gateway_harness
    url = (await ask(h, body(h, requestCaptureUrl=True, callbackUrl=CALLBACK))).json()["captureUrl"]
    h.clock.advance(16 * 60)
    late = await h.http.get(urlsplit(url).path)
    assert late.status_code == 303
    assert parse_qs(urlsplit(late.headers["location"]).query) == {"capture_result": ["timeout"]}
    assert (await ask(h, body(h))).json()["statusInfo"][0]["statusReason"] == "PENDING"


async def test_hostile_forms_at_the_capture_page_change_nothing(gateway_harness: Harness) -> None:
    """The fuzz battery's shapes at each form of the page: never a 500, never a decision."""
    from tests.fuzz_bodies import battery

    h = gateway_harness
    url = (await ask(h, body(h, requestCaptureUrl=True))).json()["captureUrl"]
    path = urlsplit(url).path
    opened = await h.http.get(path)
    csrf = re.search(r'name="csrf" value="([^"]+)"', opened.text)
    assert csrf is not None
    capture_id = path.rsplit("/", 1)[-1]
    for form in ("code", "decide"):
        plausible = {"csrf": csrf.group(1), "code": "123456", "decision": "approve"}
        for content_type, raw in [*battery(plausible), ("text/plain", b"\xff\xfe" * 5000)]:
            answer = await h.http.post(f"{path}/{form}", content=raw,
                                       headers={"content-type": content_type})
            assert answer.status_code < 500, (form, raw[:60], answer.text[:200])
    capture = h.operator.identity.captures.get(capture_id)
    assert capture is not None and capture.outcome is None and not capture.authenticated
    assert h.operator.identity.consents.for_subscriber(h.number("approves")) == []
