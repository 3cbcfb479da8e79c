"""Monthly settlement statements between an aggregator and the operators that served its calls,
from each party's own books, and their reconciliation.

Two parties record the same calls independently. The aggregator's settlement ledger
(:class:`~federation.aggregator.SettlementLedger`) has one row per application call with
``operator``, the partner the hub called, whose gateway answered and metered the call, and
``served_as``, the network the Telco Finder named for the device: the operator itself, one of
its brands (``kite-gb`` on telco-gb's network) or, for a ported number, the operator it was
ported to (the donor network no longer serves it and is not a party to the call). The party
paid is ``operator``: the one that served the call. Each operator's usage ledger
(:class:`~operators.gateway.UsageLedger`) holds the same billable calls as events of one
client, the aggregator (members register a federation party under its own id, and the hub
authenticates with its id everywhere: :func:`aggregator_client`), under the key the hub sent as
its ``Idempotency-Key``, ``application:key`` (:func:`operator_correlator`; the key is the
application's own ``Idempotency-Key``, else one the hub chose).

A :class:`Statement` is one side's account of one (aggregator, operator) pair for one
calendar month (UTC, by that side's own timestamp of each call): billable calls per API,
priced by the federation's rate card (:mod:`federation.rate_card`), exact
:class:`~decimal.Decimal` money, the records behind it, and a deterministic JSON form.
:func:`reconcile_statements` compares the aggregator's statement with the operator's: calls
and amounts per API, totals, currency, and correlator by correlator, naming each difference.
A call answered in the last instant of a month may carry timestamps of two months on the two
sides: it then shows as a difference in both months, as a cut-off difference would.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

from fastapi import APIRouter, Depends

from operators import CamaraError, admin_guard
from operators.billing import Month, MonthError
from operators.camara import CORRELATOR_PATTERN, operation_named
from operators.gateway import UsageEvent, UsageLedger

from .config import FederationConfig
from .rate_card import RateCard

Books = Literal["aggregator", "operator"]
"""Whose records a statement was drawn from."""

CORRELATOR_LIMIT = 256
"""The longest key an operator takes (a longer scoped key goes as its digest)."""


class StatementError(ValueError):
    """A month, a statement document or a pair that cannot be read; the message says why."""


def months_between(start: float, end: float) -> list[Month]:
    """Every month from the one holding ``start`` to the one holding ``end``."""
    month, last = Month.of(start), Month.of(max(start, end))
    months = [month]
    while month < last:
        month = month.next()
        months.append(month)
    return months


def aggregator_client(aggregator: str) -> str:
    """The client id an aggregator has at every member operator: its own party id."""
    return aggregator


def operator_correlator(
    application: str, correlator: str, pattern: re.Pattern[str] = CORRELATOR_PATTERN
) -> str:
    """The correlator an operator meters a hub call under: the application's correlator
    scoped by the application (as the hub sends it), within what the operator's API takes
    (``pattern``: the operation's, see ``Operation.correlator``).

    One too long to fit is sent as its digest (``sha256.`` and 64 hex digits, after the
    application's id): cutting it would give two correlators that differ only past the cut
    one key at the operator, which would replay the first call's answer for the second. An
    API whose pattern takes no colon (Device Status, KYC Match: letters, digits and hyphens, at
    most 55) gets the digest alone, ``sha256-`` and its first 48 hex digits (192 bits)."""
    scoped = f"{application}:{correlator}"
    if len(scoped) <= CORRELATOR_LIMIT and pattern.match(scoped):
        return scoped
    digest = hashlib.sha256(scoped.encode()).hexdigest()
    named = f"{application[:150]}:sha256.{digest}"
    if pattern.match(named):
        return named
    return f"sha256-{digest[:48]}"


def _correlator_pattern(operation_id: str) -> re.Pattern[str]:
    """The correlator pattern of a settled call's operation (the common one for an operation
    the table no longer has, so old rows still reconcile as they were sent)."""
    try:
        return operation_named(operation_id).correlator
    except KeyError:
        return CORRELATOR_PATTERN


class SettledRecord(Protocol):
    """One row of the aggregator's settlement ledger, as a statement reads it."""

    @property
    def application(self) -> str: ...
    @property
    def correlator(self) -> str: ...
    @property
    def operator(self) -> str: ...
    @property
    def served_as(self) -> str: ...
    @property
    def api(self) -> str: ...
    @property
    def operation(self) -> str: ...
    @property
    def billable(self) -> bool: ...
    @property
    def at(self) -> float: ...


@dataclass(frozen=True)
class StatementRecord:
    """One billable call behind a statement, keyed by the correlator the operator saw."""

    correlator: str
    api: str
    operation: str
    at: float
    served_as: str | None = None
    """The network the aggregator's Telco Finder named (aggregator's books only)."""


@dataclass(frozen=True)
class StatementLine:
    """Billable calls of one API in the month, at the pair's wholesale price."""

    api: str
    calls: int
    unit_price: Decimal
    amount: Decimal


def _money(value: Decimal) -> str:
    return format(value, "f")


@dataclass(frozen=True)
class Statement:
    """One side's account of what ``operator`` served for ``aggregator`` in ``month``."""

    books: Books
    aggregator: str
    operator: str
    month: Month
    currency: str
    lines: tuple[StatementLine, ...]
    records: tuple[StatementRecord, ...]

    @property
    def calls(self) -> int:
        return sum(line.calls for line in self.lines)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    def served_as(self) -> dict[str, int]:
        counted = Counter(r.served_as for r in self.records if r.served_as is not None)
        return dict(sorted(counted.items()))

    def as_json(self) -> dict[str, Any]:
        """The statement as JSON data: money as exact decimal strings, everything ordered."""
        return {
            "books": self.books,
            "aggregator": self.aggregator,
            "operator": self.operator,
            "month": str(self.month),
            "period": {
                "start": _iso(self.month.start),
                "end": _iso(self.month.end),
            },
            "currency": self.currency,
            "lines": [
                {
                    "api": line.api,
                    "calls": line.calls,
                    "unitPrice": _money(line.unit_price),
                    "amount": _money(line.amount),
                }
                for line in self.lines
            ],
            "calls": self.calls,
            "total": _money(self.total),
            "servedAs": self.served_as(),
            "records": [
                {
                    "correlator": r.correlator,
                    "api": r.api,
                    "operation": r.operation,
                    "at": r.at,
                    "servedAs": r.served_as,
                }
                for r in self.records
            ],
        }

    def to_json(self) -> str:
        """Deterministic bytes: the same books and rate card give the same text."""
        return json.dumps(self.as_json(), indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: Any) -> Statement:
        """A statement read back from :meth:`as_json` (an admin API's answer)."""
        try:
            books = data["books"]
            if books not in ("aggregator", "operator"):
                raise StatementError(f"books must be aggregator or operator, not {books!r}")
            return cls(
                books,
                str(data["aggregator"]),
                str(data["operator"]),
                Month.parse(str(data["month"])),
                str(data["currency"]),
                tuple(
                    StatementLine(
                        str(line["api"]),
                        int(line["calls"]),
                        Decimal(line["unitPrice"]),
                        Decimal(line["amount"]),
                    )
                    for line in data["lines"]
                ),
                tuple(
                    StatementRecord(
                        str(r["correlator"]),
                        str(r["api"]),
                        str(r["operation"]),
                        float(r["at"]),
                        r.get("servedAs"),
                    )
                    for r in data["records"]
                ),
            )
        except StatementError:
            raise
        except (KeyError, TypeError, ValueError, InvalidOperation) as error:
            raise StatementError(
                f"not a settlement statement ({type(error).__name__}: {error})"
            ) from error


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def statement(
    books: Books,
    aggregator: str,
    operator: str,
    month: Month,
    card: RateCard,
    records: Iterable[StatementRecord],
) -> Statement:
    """Price the month's records of one pair: a line per API, count times wholesale price."""
    kept = sorted(
        (r for r in records if month.holds(r.at)), key=lambda r: (r.correlator, r.api, r.at)
    )
    counted = Counter(r.api for r in kept)
    lines = []
    for api in sorted(counted):
        price = card.price(aggregator, operator, api)
        lines.append(StatementLine(api, counted[api], price.unit, price.unit * counted[api]))
    currency = card.currency_of(aggregator, operator)
    return Statement(books, aggregator, operator, month, currency, tuple(lines), tuple(kept))


def aggregator_statement(
    calls: Iterable[SettledRecord], aggregator: str, operator: str, month: Month, card: RateCard
) -> Statement:
    """The aggregator's statement of what ``operator`` served for it: its billable settled
    calls answered by that operator (whatever network the finder named: a brand, a port)."""
    records = (
        StatementRecord(
            operator_correlator(c.application, c.correlator, _correlator_pattern(c.operation)),
            c.api,
            c.operation,
            c.at,
            c.served_as,
        )
        for c in calls
        if c.billable and c.operator == operator
    )
    return statement("aggregator", aggregator, operator, month, card, records)


def operator_statement(
    events: Iterable[UsageEvent], operator: str, aggregator: str, month: Month, card: RateCard
) -> Statement:
    """The operator's statement of what it served for ``aggregator``: its usage events of the
    aggregator's client (every usage event is a billable call)."""
    client = aggregator_client(aggregator)
    records = (
        StatementRecord(e.correlator, e.api, e.operation, e.at)
        for e in events
        if e.client_id == client
    )
    return statement("operator", aggregator, operator, month, card, records)


def aggregator_statements(
    federation: FederationConfig,
    aggregator: str,
    calls: Iterable[SettledRecord],
    month: Month,
) -> list[Statement]:
    """One statement per member operator (in the federation's order), empty ones too."""
    rows = list(calls)
    return [
        aggregator_statement(rows, aggregator, o.id, month, federation.rate_card)
        for o in federation.operators
    ]


def operator_statements(
    federation: FederationConfig, operator: str, ledger: UsageLedger, month: Month
) -> list[Statement]:
    """One statement per aggregator of the federation, from the operator's usage ledger."""
    return [
        operator_statement(
            ledger.events(aggregator_client(a.id)), operator, a.id, month, federation.rate_card
        )
        for a in federation.aggregators
    ]


# -- reconciliation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LineCheck:
    """One API's calls and amount on either side."""

    api: str
    aggregator_calls: int
    operator_calls: int
    aggregator_amount: Decimal
    operator_amount: Decimal

    @property
    def matches(self) -> bool:
        return (
            self.aggregator_calls == self.operator_calls
            and self.aggregator_amount == self.operator_amount
        )


DifferenceKind = Literal["missing at operator", "missing at aggregator", "api differs"]


@dataclass(frozen=True)
class Difference:
    """A call the two sides do not account for alike, by the correlator the operator saw."""

    correlator: str
    kind: DifferenceKind
    aggregator_api: str | None
    operator_api: str | None


@dataclass(frozen=True)
class StatementCheck:
    """The aggregator's and the operator's statements of one pair and month, side by side."""

    aggregator: str
    operator: str
    month: Month
    aggregator_currency: str
    operator_currency: str
    lines: tuple[LineCheck, ...]
    differences: tuple[Difference, ...]

    @property
    def aggregator_total(self) -> Decimal:
        return sum((line.aggregator_amount for line in self.lines), Decimal(0))

    @property
    def operator_total(self) -> Decimal:
        return sum((line.operator_amount for line in self.lines), Decimal(0))

    @property
    def matches(self) -> bool:
        return (
            self.aggregator_currency == self.operator_currency
            and all(line.matches for line in self.lines)
            and self.aggregator_total == self.operator_total
            and not self.differences
        )

    def as_json(self, *, limit: int | None = None) -> dict[str, Any]:
        """``limit`` keeps the first differences only (a report stays readable)."""
        shown = self.differences if limit is None else self.differences[:limit]
        return {
            "aggregator": self.aggregator,
            "operator": self.operator,
            "month": str(self.month),
            "matches": self.matches,
            "currency": {"aggregator": self.aggregator_currency,
                         "operator": self.operator_currency},
            "total": {"aggregator": _money(self.aggregator_total),
                      "operator": _money(self.operator_total)},
            "lines": [
                {
                    "api": line.api,
                    "calls": {"aggregator": line.aggregator_calls,
                              "operator": line.operator_calls},
                    "amount": {"aggregator": _money(line.aggregator_amount),
                               "operator": _money(line.operator_amount)},
                    "matches": line.matches,
                }
                for line in self.lines
            ],
            "differences": [
                {"correlator": d.correlator, "kind": d.kind,
                 "aggregatorApi": d.aggregator_api, "operatorApi": d.operator_api}
                for d in shown
            ],
            "differenceCount": len(self.differences),
        }


def reconcile_statements(aggregator_side: Statement, operator_side: Statement) -> StatementCheck:
    """Compare the two sides' statements of one pair and month; every difference is named."""
    if aggregator_side.books != "aggregator" or operator_side.books != "operator":
        raise StatementError("reconcile the aggregator's statement with the operator's")
    ours = (aggregator_side.aggregator, aggregator_side.operator, aggregator_side.month)
    theirs = (operator_side.aggregator, operator_side.operator, operator_side.month)
    if ours != theirs:
        raise StatementError(f"statements of different pairs or months: {ours} and {theirs}")
    mine = {line.api: line for line in aggregator_side.lines}
    other = {line.api: line for line in operator_side.lines}
    lines = tuple(
        LineCheck(
            api,
            mine[api].calls if api in mine else 0,
            other[api].calls if api in other else 0,
            mine[api].amount if api in mine else Decimal(0),
            other[api].amount if api in other else Decimal(0),
        )
        for api in sorted(set(mine) | set(other))
    )
    return StatementCheck(
        aggregator_side.aggregator,
        aggregator_side.operator,
        aggregator_side.month,
        aggregator_side.currency,
        operator_side.currency,
        lines,
        tuple(_differences(aggregator_side.records, operator_side.records)),
    )


def _differences(
    aggregator_records: Iterable[StatementRecord], operator_records: Iterable[StatementRecord]
) -> list[Difference]:
    """Correlator by correlator; a correlator twice on one side counts as often as it appears."""
    mine = Counter((r.correlator, r.api) for r in aggregator_records)
    other = Counter((r.correlator, r.api) for r in operator_records)
    only_mine, only_other = mine - other, other - mine
    apis_mine: dict[str, list[str]] = {}
    apis_other: dict[str, list[str]] = {}
    for (correlator, api), n in sorted(only_mine.items()):
        apis_mine.setdefault(correlator, []).extend([api] * n)
    for (correlator, api), n in sorted(only_other.items()):
        apis_other.setdefault(correlator, []).extend([api] * n)
    found: list[Difference] = []
    for correlator in sorted(set(apis_mine) | set(apis_other)):
        left, right = apis_mine.get(correlator, []), apis_other.get(correlator, [])
        while left and right:
            found.append(Difference(correlator, "api differs", left.pop(0), right.pop(0)))
        found.extend(Difference(correlator, "missing at operator", api, None) for api in left)
        found.extend(Difference(correlator, "missing at aggregator", None, api) for api in right)
    return found


# -- admin endpoints ----------------------------------------------------------------------------


def _month(month: str | None) -> Month:
    if month is None:
        raise CamaraError(400, "INVALID_ARGUMENT", "month is required: ?month=YYYY-MM")
    try:
        return Month.parse(month)
    except MonthError as error:
        raise CamaraError(400, "INVALID_ARGUMENT", str(error)) from error


def build_aggregator_statements_router(
    federation: FederationConfig,
    aggregator: str,
    calls: Callable[[], Iterable[SettledRecord]],
    admin_secret: str,
) -> APIRouter:
    """``GET /admin/statements?month=YYYY-MM``: the aggregator's statement per member operator
    (``/admin/statements/{operator}`` for one), from ``calls``, its settlement ledger's rows."""
    router = APIRouter(
        prefix="/admin/statements",
        tags=["settlement"],
        dependencies=[Depends(admin_guard(admin_secret))],
    )
    operators = [o.id for o in federation.operators]

    @router.get("")
    def statements(month: str | None = None) -> list[dict[str, Any]]:
        period = _month(month)
        return [s.as_json() for s in aggregator_statements(federation, aggregator, calls(),
                                                           period)]

    @router.get("/{operator}")
    def statement_of(operator: str, month: str | None = None) -> dict[str, Any]:
        period = _month(month)
        if operator not in operators:
            raise CamaraError(404, "NOT_FOUND", f"{operator!r} is not a member operator; one of"
                              f" {', '.join(operators)}")
        card = federation.rate_card
        return aggregator_statement(calls(), aggregator, operator, period, card).as_json()

    return router


def build_operator_statements_router(
    federation: FederationConfig, operator: str, ledger: UsageLedger, admin_secret: str
) -> APIRouter:
    """``GET /admin/statements?month=YYYY-MM`` at an operator: its statement of what it served
    for each aggregator (``/admin/statements/{aggregator}`` for one), from its usage ledger."""
    router = APIRouter(
        prefix="/admin/statements",
        tags=["settlement"],
        dependencies=[Depends(admin_guard(admin_secret))],
    )
    aggregators = [a.id for a in federation.aggregators]

    @router.get("")
    def statements(month: str | None = None) -> list[dict[str, Any]]:
        period = _month(month)
        return [s.as_json() for s in operator_statements(federation, operator, ledger, period)]

    @router.get("/{aggregator}")
    def statement_for(aggregator: str, month: str | None = None) -> dict[str, Any]:
        period = _month(month)
        if aggregator not in aggregators:
            raise CamaraError(404, "NOT_FOUND", f"{aggregator!r} is not an aggregator of the"
                              f" federation; one of {', '.join(aggregators) or 'none'}")
        events = ledger.events(aggregator_client(aggregator))
        card = federation.rate_card
        return operator_statement(events, operator, aggregator, period, card).as_json()

    return router


def statements_by_pair(statements: Iterable[Statement]) -> Mapping[tuple[str, str], Statement]:
    """Statements keyed by (aggregator, operator)."""
    return {(s.aggregator, s.operator): s for s in statements}
