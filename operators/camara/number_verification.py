# ruff: noqa: N815  (wire models keep the exact CAMARA field names of the YAML)
"""Number Verification 2.1.0 (``/number-verification/v2``): wire models."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, StringConstraints, model_validator

from operators.errors import CamaraError

from .common import CamaraModel, PhoneNumber

__all__ = [
    "NOT_BY_NETWORK",
    "NumberVerificationMatchResponse",
    "NumberVerificationRequestBody",
    "NumberVerificationShareResponse",
    "not_authenticated_by_network",
]

NOT_BY_NETWORK = "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK"
"""The code of a Number Verification call whose token the network did not authenticate."""


def not_authenticated_by_network() -> CamaraError:
    return CamaraError(
        403, NOT_BY_NETWORK, "Client must authenticate via the mobile network to use this service"
    )


class NumberVerificationRequestBody(CamaraModel):
    """Exactly one of ``phoneNumber`` or ``hashedPhoneNumber`` (SHA-256 hex of the E.164)."""

    model_config = ConfigDict(extra="allow")  # unknown properties count (``maxProperties: 1``)

    phoneNumber: PhoneNumber | None = None
    hashedPhoneNumber: Annotated[str, StringConstraints(pattern=r"^[a-fA-F0-9]{64}$")] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> NumberVerificationRequestBody:
        given = len(self.model_fields_set) + len(self.model_extra or {})
        if given != 1 or (self.phoneNumber is None) == (self.hashedPhoneNumber is None):
            raise ValueError(
                "the body takes exactly one property: phoneNumber or hashedPhoneNumber"
            )
        return self


class NumberVerificationMatchResponse(CamaraModel):
    devicePhoneNumberVerified: bool


class NumberVerificationShareResponse(CamaraModel):
    devicePhoneNumber: PhoneNumber
