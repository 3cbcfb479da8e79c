"""Revenue per API, plan and organisation, from the billing's priced lines.

The amounts are the lines' own (already rounded once, by rating), summed exactly as
:class:`~decimal.Decimal` and never converted: each total is kept per currency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

from operators.billing import ChargeKind, LineItem

__all__ = ["UNKNOWN_ORG", "Dimension", "RevenueRow", "RevenueTable", "revenue_table"]

UNKNOWN_ORG = "(unknown)"
Dimension = Literal["api", "plan", "org"]

Totals = Mapping[tuple[str, str], Decimal]
"""(group, currency) -> amount."""


@dataclass(frozen=True)
class RevenueRow:
    group: str
    currency: str
    amount: Decimal
    calls: int


@dataclass(frozen=True)
class RevenueTable:
    by_api: tuple[RevenueRow, ...]
    by_plan: tuple[RevenueRow, ...]
    by_org: tuple[RevenueRow, ...]
    totals: Mapping[str, Decimal]
    """Currency -> amount."""

    def rows(self, dimension: Dimension) -> tuple[RevenueRow, ...]:
        if dimension not in ("api", "plan", "org"):
            raise ValueError(f"dimension must be api, plan or org (not {dimension!r})")
        return {"api": self.by_api, "plan": self.by_plan, "org": self.by_org}[dimension]


def revenue_table(lines: Iterable[LineItem], owners: Mapping[str, str]) -> RevenueTable:
    """``owners``: client_id -> org_id (lines of an unknown application go to
    :data:`UNKNOWN_ORG`)."""
    groups: dict[str, dict[tuple[str, str], list[Decimal | int]]] = {
        "api": {},
        "plan": {},
        "org": {},
    }
    totals: dict[str, Decimal] = {}
    for line in lines:
        calls = line.quantity if line.kind is ChargeKind.CALLS else 0
        org = owners.get(line.client_id, UNKNOWN_ORG)
        for dimension, group in (("api", line.api), ("plan", line.plan), ("org", org)):
            cell = groups[dimension].setdefault((group, line.currency), [Decimal(0), 0])
            cell[0] = Decimal(cell[0]) + line.amount
            cell[1] = int(cell[1]) + calls
        totals[line.currency] = totals.get(line.currency, Decimal(0)) + line.amount
    return RevenueTable(
        _rows(groups["api"]),
        _rows(groups["plan"]),
        _rows(groups["org"]),
        MappingProxyType(dict(sorted(totals.items()))),
    )


def _rows(cells: Mapping[tuple[str, str], list[Decimal | int]]) -> tuple[RevenueRow, ...]:
    return tuple(
        RevenueRow(group, currency, Decimal(cell[0]), int(cell[1]))
        for (group, currency), cell in sorted(
            cells.items(), key=lambda item: (-Decimal(item[1][0]), item[0])
        )
    )
