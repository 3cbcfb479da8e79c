"""What a number of calls costs under one plan: per call, or in tiers (graduated or volume).

The count is the calls of one API subscription under one plan in one month, all the periods
it held the plan that month together (:mod:`operators.billing.rating` shares the charges out
among them). Semantics are Stripe's and Lago's:

* no tiers: every call at ``price_per_call`` (one charge);
* ``graduated``: the calls fill the bands in order; each band charges its calls at its own
  unit price, plus its flat fee once at least one call falls in it;
* ``volume``: every call at the unit price of the band the total lands in, plus that band's
  flat fee.

No calls, no usage charge: a band is reached by a call, so a period without calls owes no
band's flat fee in either mode. Amounts here are exact; rounding is the line's
(:func:`operators.billing.money.round_line`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from operators.config import Plan, TierMode

from .money import decimal_of

__all__ = ["TierCharge", "price_calls"]


@dataclass(frozen=True)
class TierCharge:
    """The charge of ``calls`` calls in one band (``tier`` 1-based; None for a flat price).

    ``first`` and ``last`` are the band's bounds as calls counted under the plan in the
    month (``last`` None for the open band); ``offset`` is how many of the counted calls, in
    order, come before the ones charged here (graduated bands take consecutive calls; a
    volume charge takes them all).
    """

    tier: int | None
    first: int
    last: int | None
    offset: int
    calls: int
    unit_price: Decimal
    flat_fee: Decimal

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.calls + self.flat_fee


def price_calls(plan: Plan, calls: int) -> list[TierCharge]:
    """The charges of ``calls`` calls made under ``plan`` in one month (none for no call)."""
    if calls < 0:
        raise ValueError(f"a number of calls is never negative (got {calls})")
    if calls == 0:
        return []
    if not plan.tiers:
        return [TierCharge(None, 1, None, 0, calls, decimal_of(plan.price_per_call), Decimal(0))]
    if plan.tier_mode is TierMode.VOLUME:
        first = 1
        for index, tier in enumerate(plan.tiers, start=1):
            if tier.up_to is None or calls <= tier.up_to:
                return [
                    TierCharge(index, first, tier.up_to, 0, calls, tier.unit_price, tier.flat_fee)
                ]
            first = tier.up_to + 1
        raise AssertionError("the last tier is open (the config refuses any other)")
    charges: list[TierCharge] = []
    counted = 0
    for index, tier in enumerate(plan.tiers, start=1):
        room = calls - counted if tier.up_to is None else min(calls, tier.up_to) - counted
        if room <= 0:
            break
        charges.append(
            TierCharge(
                index, counted + 1, tier.up_to, counted, room, tier.unit_price, tier.flat_fee
            )
        )
        counted += room
    return charges
