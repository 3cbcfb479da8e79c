"""Consents on /my: listed by application, withdrawn through the consent store, only one's own."""

from __future__ import annotations

import pytest

from federation.client import OAuthClientError
from tests.operators.gateway.conftest import FRAUD, Harness

from .conftest import IDENTITY, Browser, BrowserFactory, ciba_consent


async def test_a_ciba_consent_is_listed_by_application_and_purpose(
    harness: Harness, browser: Browser
) -> None:
    number = harness.number("approves")
    await ciba_consent(harness)
    await browser.sign_in(number)
    page = (await browser.http.get("/my/consents")).text
    assert "Fraud app" in page and "fraud-app" in page
    assert "Verifying your identity" in page and IDENTITY in page
    assert "sim-swap:check" in page
    assert "active" in page
    assert "Receipt (granted)" in page


async def test_withdrawing_refuses_the_applications_next_call(
    harness: Harness, browser: Browser
) -> None:
    number = harness.number("approves")
    token = await ciba_consent(harness)
    assert (await harness.check(token)).status_code == 200
    (consent,) = harness.operator.identity.consents.for_subscriber(number)
    await browser.sign_in(number)
    answer = await browser.post(f"/my/consents/{consent.id}/revoke")
    assert answer.status_code == 200
    assert "Consent withdrawn" in answer.text
    refused = await harness.check(token)
    assert refused.status_code == 403
    assert refused.json()["code"] == "PERMISSION_DENIED"
    audit = harness.operator.identity.consents.audit(consent_id=consent.id)
    assert [(e.action, e.actor) for e in audit][-1] == ("revoked", "subscriber:portal")
    notice = next(m for m in harness.operator.handsets.messages(number) if m.kind == "consent")
    assert notice.data["consent_id"] == consent.id and notice.data["action"] == "revoked"
    assert "Fraud app" in notice.text
    assert "Receipt (revoked)" in (await browser.http.get("/my/consents")).text


async def test_withdrawing_everything_given_to_an_application(
    harness: Harness, browser: Browser
) -> None:
    number = harness.number("approves")
    first = await ciba_consent(harness)
    second = await ciba_consent(harness, scope=f"device-roaming-status:read {IDENTITY}")
    await browser.sign_in(number)
    answer = await browser.post("/my/applications/fraud-app/revoke")
    assert answer.status_code == 200
    assert all(c.revoked_at is not None
               for c in harness.operator.identity.consents.for_subscriber(number))
    assert (await harness.check(first)).status_code == 403
    roaming = await harness.http.post("/device-roaming-status/v1/retrieve", json={},
                                      headers={"Authorization": f"Bearer {second}"})
    assert roaming.status_code == 403


async def test_another_subscribers_consent_cannot_be_seen_or_withdrawn(
    harness: Harness, browsers: BrowserFactory
) -> None:
    victim = harness.number("approves")
    token = await ciba_consent(harness)
    (consent,) = harness.operator.identity.consents.for_subscriber(victim)
    entry = harness.operator.identity.consents.audit(consent_id=consent.id)[0]
    intruder = browsers()
    await intruder.sign_in(harness.number("roaming"))
    assert consent.id not in (await intruder.http.get("/my/consents")).text
    attempts = [
        await intruder.post(f"/my/consents/{consent.id}/revoke"),
        await intruder.post("/my/applications/fraud-app/revoke"),
        await intruder.http.get(f"/my/receipts/{entry.id}"),
    ]
    assert [a.status_code for a in attempts] == [404, 404, 404]
    assert harness.operator.identity.consents.get(consent.id).revoked_at is None  # type: ignore[union-attr]
    assert (await harness.check(token)).status_code == 200
    missing = await intruder.post("/my/consents/cns-nothing-here/revoke")
    assert missing.status_code == 404


async def test_withdrawing_needs_the_csrf_token(harness: Harness, browser: Browser) -> None:
    number = harness.number("approves")
    token = await ciba_consent(harness)
    (consent,) = harness.operator.identity.consents.for_subscriber(number)
    await browser.sign_in(number)
    refused = await browser.post(f"/my/consents/{consent.id}/revoke", csrf=False)
    assert refused.status_code == 403
    assert (await harness.check(token)).status_code == 200


async def test_withdrawing_needs_a_session(harness: Harness, browser: Browser) -> None:
    await ciba_consent(harness)
    (consent,) = harness.operator.identity.consents.for_subscriber(harness.number("approves"))
    answer = await browser.post(f"/my/consents/{consent.id}/revoke")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/my/sign-in"
    assert harness.operator.identity.consents.get(consent.id).revoked_at is None  # type: ignore[union-attr]


async def test_an_application_name_cannot_inject_markup(harness: Harness,
                                                        browser: Browser) -> None:
    number = harness.number("approves")
    harness.operator.identity.consents.grant(number, "<script>alert(1)</script>", IDENTITY,
                                             ("sim-swap:check",), actor="admin")
    await browser.sign_in(number)
    page = (await browser.http.get("/my/consents")).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


async def test_a_withdrawn_consent_is_granted_again_on_the_capture_page(
    harness: Harness, browser: Browser
) -> None:
    """The portal hands the signed-in subscriber to the operator's capture page: no second
    sign-in there, Approve, and the application's next call goes through again."""
    import re

    number = harness.number("approves")
    token = await ciba_consent(harness)
    (consent,) = harness.operator.identity.consents.for_subscriber(number)
    await browser.sign_in(number)
    await browser.post(f"/my/consents/{consent.id}/revoke")
    assert (await harness.check(token)).status_code == 403
    assert "Grant again" in (await browser.http.get("/my/consents")).text

    handed = await browser.post(f"/my/consents/{consent.id}/grant-again")
    assert handed.status_code == 303
    capture = handed.headers["location"]
    assert capture.startswith(harness.operator.issuer + "/consent/capture/")
    page = await browser.http.get(capture)
    assert 'id="approve"' in page.text, "signed in already: straight to the decision"
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    done = await browser.http.post(f"{capture}/decide",
                                   data={"csrf": csrf.group(1), "decision": "approve"})
    assert done.status_code == 200 and "Your consent was recorded" in done.text
    renewed = await harness.three_legged("approves", f"sim-swap:check {IDENTITY}")
    assert (await harness.check(renewed)).status_code == 200
    active = [c for c in harness.operator.identity.consents.for_subscriber(number)
              if c.active(harness.clock())]
    assert [c.scopes for c in active] == [consent.scopes]


async def test_grant_again_is_only_for_ones_own_consent(
    harness: Harness, browser: Browser
) -> None:
    await ciba_consent(harness)
    (consent,) = harness.operator.identity.consents.for_subscriber(harness.number("approves"))
    await browser.sign_in(harness.number("never-swapped"))
    refused = await browser.post(f"/my/consents/{consent.id}/grant-again")
    assert refused.status_code == 404
    assert harness.operator.identity.captures.of(
        harness.number("approves"), consent.client_id, consent.purpose) == []


async def test_withdrawing_denies_a_request_approved_but_not_yet_collected(
    harness: Harness, browser: Browser
) -> None:
    """A CIBA consent is recorded when the application collects the approved request: a
    withdrawal made between the handset's approval and that poll must stop it too."""
    number = harness.number("approves")  # its handset approves as soon as it is asked
    await ciba_consent(harness)
    started = await harness.client.start_ciba(
        f"tel:{number}", f"device-roaming-status:read {IDENTITY}"
    )
    await browser.sign_in(number)
    assert (await browser.post("/my/applications/fraud-app/revoke")).status_code == 200
    with pytest.raises(OAuthClientError) as refused:
        await harness.client.poll_ciba(started["auth_req_id"])
    assert refused.value.error == "access_denied"
    consents = harness.operator.identity.consents.for_subscriber(number)
    assert len(consents) == 1 and consents[0].revoked_at is not None, "nothing granted anew"


async def test_withdrawing_one_consent_denies_its_purposes_pending_requests_only(
    harness: Harness, browser: Browser
) -> None:
    number = harness.number("approves")
    await ciba_consent(harness)
    (consent,) = harness.operator.identity.consents.for_subscriber(number)
    same = await harness.client.start_ciba(
        f"tel:{number}", f"device-roaming-status:read {IDENTITY}"
    )
    other = await harness.client.start_ciba(f"tel:{number}", f"sim-swap:check {FRAUD}")
    await browser.sign_in(number)
    assert (await browser.post(f"/my/consents/{consent.id}/revoke")).status_code == 200
    with pytest.raises(OAuthClientError) as refused:
        await harness.client.poll_ciba(same["auth_req_id"])
    assert refused.value.error == "access_denied"
    assert "access_token" in await harness.client.poll_ciba(other["auth_req_id"])


async def test_an_application_an_aggregator_acts_for_is_withdrawn_from_by_name(
    harness: Harness, browser: Browser
) -> None:
    """Consents given through a hub are to ``hub/app``: the page names the application and
    its withdraw-all form reaches it (the path holds a slash)."""
    number = harness.number("approves")
    await harness.client.ciba(f"tel:{number}", f"sim-swap:check {IDENTITY}",
                              on_behalf_of="shop-a")
    await browser.sign_in(number)
    page = (await browser.http.get("/my/consents")).text
    assert "shop-a (through Fraud app)" in page
    answer = await browser.post("/my/applications/fraud-app/shop-a/revoke")
    assert answer.status_code == 200 and "withdrawn" in answer.text
    (consent,) = harness.operator.identity.consents.for_subscriber(number)
    assert consent.client_id == "fraud-app/shop-a" and consent.revoked_at is not None
