"""One subscriber as the operator's network knows them: the single source of truth for every API."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Connectivity(StrEnum):
    DATA = "DATA"
    SMS = "SMS"


class HandsetAnswer(StrEnum):
    """How the simulated handset answers a consent prompt (CIBA or authorization code)."""

    APPROVE = "approve"
    DENY = "deny"
    NEVER = "never"


class HandsetMode(StrEnum):
    """Who presses the handset's buttons.

    ``scripted``: the behaviour's ``answer`` after ``delay`` (what the simulation models);
    ``interactive``: a person, or a browser test, on the handset page (``/handset/{number}``).
    """

    SCRIPTED = "scripted"
    INTERACTIVE = "interactive"


class HandsetBehaviour(_Record):
    answer: HandsetAnswer = HandsetAnswer.APPROVE
    delay: float = Field(default=0.0, ge=0, description="seconds before the handset answers")
    mode: HandsetMode = Field(
        default=HandsetMode.SCRIPTED,
        description="scripted: answer after delay; interactive: wait for a press on the page",
    )


class Location(_Record):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    accuracy: float = Field(gt=0, description="radius in metres")
    observed_at: datetime


class Address(_Record):
    street_name: str
    street_number: str
    postal_code: str
    locality: str
    region: str
    country: str


class IdDocument(_Record):
    kind: str
    number: str
    expires: date


class Identity(_Record):
    """KYC attributes as the operator verified them at contract signature."""

    given_name: str
    family_name: str
    birthdate: date
    gender: str
    email: str
    address: Address
    id_document: IdDocument


class Subscriber(_Record):
    msisdn: str
    imsi: str
    activated_at: datetime
    sim_swaps: tuple[datetime, ...] = ()
    connectivity: tuple[Connectivity, ...] = (Connectivity.DATA, Connectivity.SMS)
    roaming_country: str | None = Field(
        default=None, description="ISO 3166-1 alpha-2 of the visited country, None at home"
    )
    location: Location
    identity: Identity
    ipv4: str | None = None
    handset: HandsetBehaviour = HandsetBehaviour()
    legitimate_interest_opt_out: bool = False
    """An objection to every purpose processed under legitimate interest."""
    purpose_opt_outs: tuple[str, ...] = Field(
        default=(), description="DPV purposes objected to one by one (the consent portal)"
    )
    ported_to: str | None = Field(default=None, description="operator id after a port-out")

    @property
    def latest_sim_change(self) -> datetime:
        """The last SIM change, or activation when the SIM was never swapped (as CAMARA says)."""
        return self.sim_swaps[-1] if self.sim_swaps else self.activated_at

    @property
    def reachable(self) -> bool:
        return bool(self.connectivity)

    @property
    def roaming(self) -> bool:
        return self.roaming_country is not None

    @property
    def active(self) -> bool:
        return self.ported_to is None
