# ruff: noqa: N815  (wire models keep the exact CAMARA field names of the YAML)
"""KYC Match 0.3.0 (``/kyc-match/v0.3``): wire models."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import Field

from .common import CamaraModel, PhoneNumber

__all__ = [
    "MATCHABLE_FIELDS",
    "SCORED_FIELDS",
    "KycMatchRequest",
    "KycMatchResponse",
    "MatchResult",
]


class MatchResult(StrEnum):
    TRUE = "true"
    FALSE = "false"
    NOT_AVAILABLE = "not_available"


class KycMatchRequest(CamaraModel):
    phoneNumber: PhoneNumber | None = None
    idDocument: str | None = None
    name: str | None = None
    givenName: str | None = None
    familyName: str | None = None
    nameKanaHankaku: str | None = None
    nameKanaZenkaku: str | None = None
    middleNames: str | None = None
    familyNameAtBirth: str | None = None
    address: str | None = None
    streetName: str | None = None
    streetNumber: str | None = None
    postalCode: str | None = None
    region: str | None = None
    locality: str | None = None
    country: str | None = None
    houseNumberExtension: str | None = None
    birthdate: date | None = None
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    gender: Literal["MALE", "FEMALE", "OTHER"] | None = None


MATCHABLE_FIELDS: tuple[str, ...] = tuple(
    name for name in KycMatchRequest.model_fields if name not in ("phoneNumber", "idDocument")
)
"""Attributes compared after the idDocument gate; each gives a ``<field>Match`` result."""

SCORED_FIELDS: frozenset[str] = frozenset(
    {
        "name",
        "givenName",
        "familyName",
        "nameKanaHankaku",
        "nameKanaZenkaku",
        "middleNames",
        "familyNameAtBirth",
        "address",
        "streetName",
        "streetNumber",
        "region",
        "locality",
        "email",
    }
)
"""Attributes whose response has a ``<field>MatchScore`` (0-100) when the match is false."""

_RESULT = MatchResult | None
_SCORE = int | None


class KycMatchResponse(CamaraModel):
    idDocumentMatch: _RESULT = None
    nameMatch: _RESULT = None
    nameMatchScore: _SCORE = Field(default=None, ge=0, le=100)
    givenNameMatch: _RESULT = None
    givenNameMatchScore: _SCORE = Field(default=None, ge=0, le=100)
    familyNameMatch: _RESULT = None
    familyNameMatchScore: _SCORE = Field(default=None, ge=0, le=100)
    nameKanaHankakuMatch: _RESULT = None
    nameKanaHankakuMatchScore: _SCORE = Field(default=None, ge=0, le=100)
    nameKanaZenkakuMatch: _RESULT = None
    nameKanaZenkakuMatchScore: _SCORE = Field(default=None, ge=0, le=100)
    middleNamesMatch: _RESULT = None
    middleNamesMatchScore: _SCORE = Field(default=None, ge=0, le=100)
    familyNameAtBirthMatch: _RESULT = None
    familyNameAtBirthMatchScore: _SCORE = Field(default=None, ge=0, le=100)
    addressMatch: _RESULT = None
    addressMatchScore: _SCORE = Field(default=None, ge=0, le=100)
    streetNameMatch: _RESULT = None
    streetNameMatchScore: _SCORE = Field(default=None, ge=0, le=100)
    streetNumberMatch: _RESULT = None
    streetNumberMatchScore: _SCORE = Field(default=None, ge=0, le=100)
    postalCodeMatch: _RESULT = None
    regionMatch: _RESULT = None
    regionMatchScore: _SCORE = Field(default=None, ge=0, le=100)
    localityMatch: _RESULT = None
    localityMatchScore: _SCORE = Field(default=None, ge=0, le=100)
    countryMatch: _RESULT = None
    houseNumberExtensionMatch: _RESULT = None
    birthdateMatch: _RESULT = None
    emailMatch: _RESULT = None
    emailMatchScore: _SCORE = Field(default=None, ge=0, le=100)
    genderMatch: _RESULT = None
