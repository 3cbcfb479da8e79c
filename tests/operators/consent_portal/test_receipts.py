"""Consent receipts: downloaded from /my, signed by the operator, verified with its JWKS."""

from __future__ import annotations

import json

import pytest
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from operators.consent_portal.receipts import TYP
from tests.operators.gateway.conftest import Harness

from .conftest import IDENTITY, Browser, ciba_consent


async def test_a_downloaded_receipt_verifies_against_the_published_jwks(
    harness: Harness, browser: Browser
) -> None:
    number = harness.number("approves")
    await ciba_consent(harness)
    (consent,) = harness.operator.identity.consents.for_subscriber(number)
    await browser.sign_in(number)
    await browser.post(f"/my/consents/{consent.id}/revoke")
    entries = harness.operator.identity.consents.audit(consent_id=consent.id)
    receipts = {}
    for entry in entries:
        if entry.action not in ("granted", "revoked"):
            continue
        download = await browser.http.get(f"/my/receipts/{entry.id}")
        assert download.status_code == 200
        assert "attachment" in download.headers["content-disposition"]
        receipts[entry.action] = download.text
    jwks = (await harness.http.get(f"{harness.operator.issuer}/jwks")).json()
    keys = KeySet.import_key_set(jwks)
    for action, token in receipts.items():
        verified = jws.deserialize_compact(token, keys, algorithms=["ES256"])
        assert verified.headers()["typ"] == TYP
        claims = json.loads(verified.payload)
        assert claims["iss"] == harness.operator.issuer
        assert claims["controller"]["name"] == "Telco España"
        assert claims["controller"]["url"] == harness.operator.issuer
        assert claims["principal"]["id"].startswith("pp-")
        assert number not in token and number.lstrip("+") not in json.dumps(claims)
        assert claims["purposes"][0]["purpose"] == IDENTITY
        assert claims["purposes"][0]["purposeWords"] == "Verifying your identity"
        assert claims["dataCategories"][0]["category"] == "pd:DeviceBased"
        assert claims["collectionMethod"] == (
            "CIBA: approved on your phone" if action == "granted" else "Consent portal")
        assert claims["policyUrl"].endswith("/my/privacy")
        assert claims["consent"]["id"] == consent.id
        assert claims["consent"]["state"] == {"granted": "active", "revoked": "withdrawn"}[action]
        assert claims["receiptId"] == claims["jti"]
        assert claims["version"] and claims["receiptTimestamp"]
    assert set(receipts) == {"granted", "revoked"}


async def test_a_tampered_receipt_does_not_verify(harness: Harness, browser: Browser) -> None:
    number = harness.number("approves")
    await ciba_consent(harness)
    (entry,) = harness.operator.identity.consents.audit(msisdn=number)[:1]
    await browser.sign_in(number)
    token = (await browser.http.get(f"/my/receipts/{entry.id}")).text
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload[:-4]}AAAA.{signature}"
    keys = KeySet.import_key_set(harness.operator.identity.jwks())  # type: ignore[arg-type]
    with pytest.raises(JoseError):
        jws.deserialize_compact(forged, keys, algorithms=["ES256"])


async def test_an_unknown_receipt_is_not_found(harness: Harness, browser: Browser) -> None:
    await browser.sign_in(harness.number("approves"))
    for path in ("/my/receipts/999999", "/my/receipts/not-a-number", "/my/receipts/-1"):
        assert (await browser.http.get(path)).status_code == 404
