"""Calendar months in UTC, the billing period: ``2025-03`` from its first second to the next's.

Invoices, proration and the tier counts all run per month; epoch seconds map to a month in
UTC so that every replica and the simulation agree where a month ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Month", "MonthError"]

_PATTERN = re.compile(r"^([0-9]{4})-([0-9]{2})$")
"""ASCII digits only: ``\\d`` would take other scripts' digits (full-width ``2025-03``),
which ``int`` reads, so one month had many URLs."""


class MonthError(ValueError):
    """A month that is not ``YYYY-MM``; the message says what was given."""


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1970 <= self.year <= 9998:
            raise MonthError(f"{self.year:04d}-{self.month:02d} is not a month (YYYY-MM)")

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM`` (e.g. ``2025-03``); MonthError otherwise."""
        match = _PATTERN.match(text.strip())
        if match is None:
            raise MonthError(f"{text!r} is not a month written YYYY-MM, e.g. 2025-03")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, at: float) -> Month:
        """The UTC month holding epoch second ``at``: always one whose :meth:`holds` is true,
        even within half a microsecond of its end, where ``datetime`` rounds up into the
        next month."""
        moment = datetime.fromtimestamp(at, UTC)
        month = cls(moment.year, moment.month)
        return month.previous() if at < month.start else month

    @property
    def start(self) -> float:
        """Its first second (epoch, UTC)."""
        return datetime(self.year, self.month, 1, tzinfo=UTC).timestamp()

    @property
    def end(self) -> float:
        """The first second of the next month (excluded)."""
        return self.next().start

    @property
    def seconds(self) -> int:
        return int(self.end - self.start)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def holds(self, at: float) -> bool:
        return self.start <= at < self.end

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
