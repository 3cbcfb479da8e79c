"""An operator's run-time trust revocations, kept in its database so every process serving it
sees them.

:class:`~federation.trust.TrustGraph` is a pure object, one per process. An operator served by
several processes over one database file (``ogsim up --autoscale``'s replicas, a restart)
would otherwise hold a revocation only in the process whose ``/admin/trust/revoke`` happened
to receive it: the other replicas would go on accepting the revoked party's assertions and
tokens, and a replica started later would trust it again. Here the revocation is a row, and
each process brings its graph up to date from the rows whenever the table has changed.
"""

from __future__ import annotations

from operators import Clock, Database

from .trust import TrustGraph

__all__ = ["TrustRevocations"]

TABLE = "federation_trust_revocations"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    relying_party TEXT NOT NULL,
    issuer TEXT NOT NULL,
    revoked_at REAL NOT NULL,
    PRIMARY KEY (relying_party, issuer)
);
"""


class TrustRevocations:
    """Which issuers ``relying_party`` has revoked, shared by every process on ``db``."""

    def __init__(self, db: Database, relying_party: str, clock: Clock) -> None:
        self.db = db
        self.relying_party = relying_party
        self.clock = clock
        db.ensure_schema(SCHEMA)
        self._seen: tuple[int, ...] | None = None

    def revoke(self, graph: TrustGraph, issuer: str) -> None:
        graph.revoke(self.relying_party, issuer)
        self.db.execute(
            f"INSERT OR IGNORE INTO {TABLE} (relying_party, issuer, revoked_at) VALUES (?, ?, ?)",
            (self.relying_party, issuer, self.clock()),
        )

    def reinstate(self, graph: TrustGraph, issuer: str) -> None:
        graph.reinstate(self.relying_party, issuer)
        self.db.execute(
            f"DELETE FROM {TABLE} WHERE relying_party = ? AND issuer = ?",
            (self.relying_party, issuer),
        )

    def sync(self, graph: TrustGraph) -> None:
        """Bring ``graph``'s revocations by this party up to the rows, if they changed (a
        revocation or reinstatement by another process); cheap when they did not."""
        stamp = self.db.version(TABLE)
        if stamp == self._seen:
            return
        rows = self.db.all(f"SELECT issuer FROM {TABLE} WHERE relying_party = ?",
                           (self.relying_party,))
        graph.set_revoked(self.relying_party, {row["issuer"] for row in rows})
        self._seen = stamp
