"""Purposes, data categories and collection methods in words."""

from __future__ import annotations

from operators.consent_portal.vocabulary import collection_method, data_categories, purpose_words


def test_purposes_read_as_words() -> None:
    assert purpose_words("dpv:FraudPreventionAndDetection") == "Fraud prevention and detection"
    assert purpose_words("dpv:PersonalisedAdvertising") == "Personalised advertising"


def test_data_categories_come_from_the_scopes_apis_once_each() -> None:
    categories = data_categories(("location-verification:verify", "sim-swap:check",
                                  "sim-swap:retrieve-date", "unknown-api:read"))
    assert [c.dpv for c in categories] == ["pd:Location", "pd:DeviceBased", "pd:PersonalData"]


def test_collection_methods() -> None:
    assert collection_method("subscriber:handset").startswith("CIBA")
    assert collection_method("subscriber:browser").startswith("Authorization code")
    assert collection_method("subscriber:+34600000001").startswith("Consent API")
