"""One contract, two consent stores: the live SQLite store and the simulation's in-memory one.

The gateway's admission reads consent records through :class:`ConsentRecords`; the
simulation keeps its replicas in :class:`InMemoryConsentStore`. The same sequence of grants,
revocations, expiries and lookups must give the same answers from both (ids aside), or a
scenario's verdict on consent would be a verdict on another store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from operators.errors import OAuthError
from operators.identity import Consent, ConsentRecords, ConsentStore, InMemoryConsentStore
from operators.storage import Database

A, B = "+34600000001", "+34600000002"
KYC = ("kyc-match:match",)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _sqlite(clock: Clock) -> Iterator[ConsentRecords]:
    db = Database(":memory:")
    yield ConsentStore(db, clock=clock)
    db.close()


def _memory(clock: Clock) -> Iterator[ConsentRecords]:
    yield InMemoryConsentStore(clock=clock)


STORES: dict[str, Callable[[Clock], Iterator[ConsentRecords]]] = {
    "sqlite": _sqlite,
    "memory": _memory,
}


def _view(consent: Consent | None, now: float) -> dict[str, Any] | None:
    """What callers see of a record, without its id (ids are random live, numbered here)."""
    if consent is None:
        return None
    view = consent.view(now)
    del view["id"]
    return view


def _script(store: ConsentRecords, clock: Clock) -> list[Any]:
    """Grants, lookups, an expiry, a revocation, a re-grant: every answer, in order."""
    seen: list[Any] = []
    first = store.grant(A, "app", "dpv:IdentityVerification", KYC, actor="handset")
    wide = store.grant(
        A,
        "app",
        "dpv:IdentityVerification",
        ("kyc-match:match", "location-retrieval:read"),
        actor="handset",
        lifetime=60,
    )
    store.grant(B, "other", "dpv:Marketing", KYC, actor="admin")
    seen.append(_view(store.get(first.id), clock()))
    seen.append(_view(store.find_active(A, "app", "dpv:IdentityVerification", KYC), clock()))
    seen.append(
        _view(store.find_active(A, "app", "dpv:IdentityVerification", ("sim-swap:check",)), clock())
    )
    seen.append(_view(store.find_active(A, "elsewhere", "dpv:IdentityVerification", KYC), clock()))
    clock.now += 61  # the wide consent expires
    seen.append(_view(store.get(wide.id), clock()))
    seen.append(_view(store.find_active(A, "app", "dpv:IdentityVerification", KYC), clock()))
    revoked = store.revoke(first.id, actor="subscriber")
    seen.append(_view(revoked, clock()))
    seen.append(_view(store.revoke(first.id, actor="subscriber"), clock()))  # idempotent
    seen.append(_view(store.find_active(A, "app", "dpv:IdentityVerification", KYC), clock()))
    clock.now += 5
    store.grant(A, "app", "dpv:IdentityVerification", KYC, actor="handset")
    seen.append(_view(store.find_active(A, "app", "dpv:IdentityVerification", KYC), clock()))
    seen.append([_view(c, clock()) for c in store.for_subscriber(A)])
    seen.append(len(store.for_subscriber()))
    with pytest.raises(OAuthError) as missing:
        store.revoke("cns-nobody", actor="subscriber")
    seen.append((missing.value.status, missing.value.error))
    return seen


def test_both_stores_answer_the_same_script_alike() -> None:
    answers = {}
    for name, make in STORES.items():
        clock = Clock()
        for store in make(clock):
            answers[name] = _script(store, clock)
    assert answers["sqlite"] == answers["memory"]
    # The script is not vacuous: it saw a covering consent, a miss, an expiry and a revocation.
    seen = answers["memory"]
    assert seen[1]["status"] == "active" and seen[2] is None and seen[3] is None
    assert seen[4]["status"] == "expired" and seen[6]["status"] == "revoked"
    assert seen[8] is None and seen[9]["status"] == "active"
    assert seen[12] == (404, "not_found")
