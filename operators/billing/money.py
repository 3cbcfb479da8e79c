"""Money as :class:`~decimal.Decimal`: how a price becomes a line's amount, and how it is written.

Prices are kept exact (a plan's float fields are read through their shortest decimal form,
so ``0.01`` is one cent and not a binary fraction). Rounding happens once per invoice line,
half to even, to the currency's minor unit (ISO 4217: two digits for most currencies, none
for JPY or KRW, three for BHD or KWD); subtotals and totals add rounded lines, so an invoice
always adds up as printed.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["amount_text", "decimal_of", "minor_units", "price_text", "round_line"]

_MINOR_UNITS = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3,
    "JPY": 0, "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0,
    "TND": 3, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip
"""ISO 4217 currencies whose minor unit is not the usual two digits."""


def minor_units(currency: str) -> int:
    """Digits after the decimal point of ``currency``'s smallest coin (ISO 4217)."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def decimal_of(value: float | int | Decimal) -> Decimal:
    """An exact decimal for a config value: a float through its shortest repr (0.1 -> 0.1)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    return Decimal(repr(value))


def round_line(amount: Decimal, currency: str) -> Decimal:
    """A line's amount rounded half to even to the currency's minor unit."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_EVEN)


def amount_text(amount: Decimal, currency: str) -> str:
    """A rounded amount with exactly the currency's digits (``12.30``, ``1234``)."""
    return f"{round_line(amount, currency):f}"


def price_text(price: Decimal) -> str:
    """A unit price in its shortest exact form (``0.0006``, ``7``, ``6.5``), never exponent."""
    text = f"{price.normalize():f}"
    return text if text != "-0" else "0"
