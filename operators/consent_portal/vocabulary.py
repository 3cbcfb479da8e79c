"""Words a subscriber reads instead of identifiers: purposes, data categories, collection methods.

Purposes are W3C DPV terms (``dpv:FraudPreventionAndDetection``); a term missing from the
identity server's table still reads as words, split from its camel case, so an operator adding
a purpose never shows a subscriber a bare identifier. Data categories are derived from the API
a scope belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..identity.purposes import describe_purpose


def purpose_words(purpose: str) -> str:
    """``dpv:FraudPreventionAndDetection`` → "Fraud prevention and detection": the identity
    server's words, so the capture page and the portal name a purpose alike."""
    return describe_purpose(purpose)


@dataclass(frozen=True)
class DataCategory:
    """A category of personal data, with its DPV personal-data (``pd:``) term."""

    dpv: str
    words: str


_CATEGORIES: dict[str, tuple[DataCategory, ...]] = {
    "number-verification": (DataCategory("pd:PhoneNumber", "Your phone number"),),
    "sim-swap": (DataCategory("pd:DeviceBased", "When your SIM card last changed"),),
    "device-reachability-status": (
        DataCategory("pd:DeviceBased", "Whether your phone is connected"),
    ),
    "device-roaming-status": (
        DataCategory("pd:Location", "Whether you are roaming, and in which country"),
    ),
    "location-verification": (DataCategory("pd:Location", "Your phone's location"),),
    "location-retrieval": (DataCategory("pd:Location", "Your phone's location"),),
    "kyc-match": (
        DataCategory("pd:Identifying", "Your name, address, birth date and identity document"),
    ),
    "quality-on-demand": (DataCategory("pd:DeviceBased", "Your phone's network sessions"),),
    "consent-info": (DataCategory("pd:PersonalData", "Your consents to this application"),),
}


def api_of_scope(scope: str) -> str:
    """``sim-swap:check`` → ``sim-swap`` (CAMARA scopes are ``api:operation``)."""
    return scope.split(":", 1)[0]


def data_categories(scopes: tuple[str, ...]) -> list[DataCategory]:
    """The categories of data the scopes let an application read, each once."""
    found: list[DataCategory] = []
    for scope in scopes:
        api = api_of_scope(scope)
        for category in _CATEGORIES.get(api, (DataCategory("pd:PersonalData",
                                                            f"Data the {api} API returns"),)):
            if category not in found:
                found.append(category)
    return found


_METHODS: dict[str, str] = {
    "subscriber:handset": "CIBA: approved on your phone",
    "subscriber:browser": "Authorization code: approved in your browser",
    "subscriber:capture": "Consent page: approved in your browser",
    "subscriber:portal": "Consent portal",
    "admin": "Recorded by the operator's administrator",
}


def collection_method(actor: str) -> str:
    """How a consent was given or withdrawn, from the actor its audit row names."""
    known = _METHODS.get(actor)
    if known is not None:
        return known
    if actor.startswith("subscriber:"):
        return "Consent API, from your phone's network connection"
    return actor
