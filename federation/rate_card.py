"""The wholesale rate card: what an aggregator pays an operator for each billable call it served.

One :class:`WholesaleRate` per (aggregator, operator) pair, with a price per call, a currency
and optional prices per API (the operation table's API names, e.g. ``sim-swap``); a pair the
card does not list pays the card's ``default_price`` in the card's currency, or, when that is
``null``, the federation config is refused (see ``FederationConfig``). Money is
:class:`~decimal.Decimal` from the YAML on: a statement's amounts are exact, never floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CURRENCY = r"^[A-Z]{3}$"
"""An ISO 4217 code (``EUR``, ``GBP``)."""

Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=6)]
"""A price: not negative, at most six decimal places (a millionth of the currency unit)."""

def known_apis() -> frozenset[str]:
    """The API names a rate may price on its own: those of the operation table (imported
    here, when a rate names APIs, so reading a config without them stays light)."""
    from operators.camara import OPERATIONS

    return frozenset(o.api for o in OPERATIONS)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Price:
    """One call's wholesale price, in one currency."""

    unit: Decimal
    currency: str


class WholesaleRate(_Strict):
    """What ``aggregator`` pays ``operator`` per billable call; ``apis`` overrides per API."""

    aggregator: str
    operator: str
    price_per_call: Money
    currency: str | None = Field(
        default=None, pattern=CURRENCY, description="defaults to the rate card's currency"
    )
    apis: dict[str, Money] = Field(
        default_factory=dict, description="API name (e.g. sim-swap) -> price per call"
    )

    @field_validator("apis")
    @classmethod
    def _known_apis(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        if not value:
            return value
        apis = known_apis()
        unknown = sorted(set(value) - apis)
        if unknown:
            raise ValueError(f"unknown API {unknown}; one of {sorted(apis)}")
        return value


class RateCard(_Strict):
    """Every pair's wholesale price; ``default_price`` prices the pairs not listed."""

    currency: str = Field(default="EUR", pattern=CURRENCY)
    default_price: Money | None = Field(
        default=Decimal("0.01"),
        description="price per call of a pair not listed in rates; null: every pair listed",
    )
    rates: tuple[WholesaleRate, ...] = ()

    @model_validator(mode="after")
    def _each_pair_once(self) -> RateCard:
        pairs = [(r.aggregator, r.operator) for r in self.rates]
        twice = sorted({p for p in pairs if pairs.count(p) > 1})
        if twice:
            named = ", ".join(f"{a} -> {o}" for a, o in twice)
            raise ValueError(f"rates: each (aggregator, operator) pair is priced once: {named}")
        return self

    def rate(self, aggregator: str, operator: str) -> WholesaleRate | None:
        return next(
            (r for r in self.rates if r.aggregator == aggregator and r.operator == operator),
            None,
        )

    def priced(self, aggregator: str, operator: str) -> bool:
        return self.default_price is not None or self.rate(aggregator, operator) is not None

    def price(self, aggregator: str, operator: str, api: str) -> Price:
        """The wholesale price of one billable call of ``api``; KeyError for an unpriced pair
        (a validated federation config has none)."""
        rate = self.rate(aggregator, operator)
        if rate is None:
            if self.default_price is None:
                raise KeyError(f"the rate card prices no calls from {aggregator} to {operator}")
            return Price(self.default_price, self.currency)
        return Price(rate.apis.get(api, rate.price_per_call), rate.currency or self.currency)

    def currency_of(self, aggregator: str, operator: str) -> str:
        rate = self.rate(aggregator, operator)
        return (rate.currency if rate is not None else None) or self.currency
