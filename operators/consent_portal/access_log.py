"""The subscriber's access log: every recorded call about them, billed or refused.

Rows come from the gateway's usage events (successful billable calls, each carrying the
subscriber it was about) and its unbilled calls (refused, business answers, free operations).
Exported as CSV and JSON for GDPR art. 15 transparency; CSV cells that a spreadsheet would
run as a formula are quoted with a leading apostrophe (an application chose its own name).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from ..gateway.metering import UsageLedger
from ..identity import ClientRegistry
from ..identity.capture_pages import application_name
from .vocabulary import purpose_words

_OUTCOMES = {
    401: "refused: not authenticated",
    403: "refused: not permitted",
    429: "refused: too many calls",
    404: "answered: not found",
    422: "answered: not applicable",
}
FIELDS = ("time", "application", "client_id", "api", "operation", "purpose", "purpose_words",
          "data_centre", "outcome", "status", "billed")


@dataclass(frozen=True)
class AccessEntry:
    """One call about the subscriber, as the portal shows and exports it."""

    time: str
    application: str
    client_id: str
    api: str
    operation: str
    purpose: str
    purpose_words: str
    data_centre: str
    """Where the call was served, when the operator knows it (blank otherwise)."""
    outcome: str
    status: int
    billed: bool

    @property
    def refused(self) -> bool:
        return self.outcome.startswith("refused")


def outcome(status: int) -> str:
    if 200 <= status < 300:
        return "answered"
    return _OUTCOMES.get(status, "refused" if status < 500 else "failed")


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def entries(ledger: UsageLedger, clients: ClientRegistry, msisdn: str,
            data_centre: str = "") -> list[AccessEntry]:
    """Every call about ``msisdn``, newest first."""
    billed, unbilled = ledger.about(msisdn)
    names: dict[str, str] = {}

    def name(client_id: str, party: str | None) -> str:
        """The application the data went to: an aggregator's application by its own name."""
        who = party or client_id
        if who not in names:
            names[who] = application_name(clients, who)
        return names[who]

    rows: list[tuple[float, AccessEntry]] = []
    for e in billed:
        rows.append((e.at, AccessEntry(
            _when(e.at), name(e.client_id, e.party), e.client_id, e.api, e.operation,
            e.purpose or "",
            purpose_words(e.purpose) if e.purpose else "", data_centre, outcome(e.status),
            e.status, True)))
    for u in unbilled:
        rows.append((u.at, AccessEntry(
            _when(u.at), name(u.client_id, u.party), u.client_id, u.api, u.operation,
            u.purpose or "",
            purpose_words(u.purpose) if u.purpose else "", data_centre, outcome(u.status),
            u.status, False)))
    rows.sort(key=lambda r: r[0], reverse=True)
    return [entry for _, entry in rows]


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def as_csv(log: list[AccessEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    for entry in log:
        data = asdict(entry)
        writer.writerow([_cell(data[f]) for f in FIELDS])
    return out.getvalue()


def as_json(log: list[AccessEntry]) -> list[dict[str, Any]]:
    return [asdict(entry) for entry in log]
