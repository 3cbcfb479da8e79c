"""Consent records across an operator's data centres, with replication lag between them.

Each data centre holds a replica of the operator's consent records: an
:class:`~operators.identity.InMemoryConsentStore`, the in-memory implementation of the same
protocol as the live SQLite store. A subscriber's consent to an application for a purpose is
recorded (in every replica, with one id) when the simulation first needs it, and the gateway
tier hands the record of the data centre a call reached to the live grant rule
(:func:`~operators.identity.grant_refusal`, through the gateway's admission): a revoked or
expired consent refuses the call there, as it would live.

A revocation wave of share ``s`` revokes every consent of the lines ranked below ``s`` (the
same lines every time; line ``r`` at ``at + spread * r / s``). Each revocation is recorded in
one data centre — the scenario's ``data_centre``, else one drawn by the data centres' weights,
as the global load balancer spreads the revocation requests — and reaches that replica at
once and the others ``replication_lag`` seconds later: until then, a call that lands in a
data centre that has not seen the revocation still succeeds. A revocation with a
``duration`` ends with the subscriber consenting again (a new record in every replica, which
the application's next token is issued under).

Beside the replicas, :class:`ConsentReplicas` keeps the ground truth (each revocation's
instant and lag), so every call that succeeds for a revoked consent is counted at the instant
its consent was checked: within the lag (allowed, reported) or later than instant + lag (a
bug: a scenario expects zero).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy

from operators import Clock
from operators.identity import Consent, InMemoryConsentStore

__all__ = ["ConsentReplicas", "RevocationWave"]

_ACTOR = "subscriber"


@dataclass(frozen=True, slots=True)
class _Revoked:
    """One line's revocation: when it happened, where, when every data centre sees it, its end."""

    instant: float
    everywhere: float
    end: float
    home: str


@dataclass(slots=True)
class RevocationWave:
    """A wave as scheduled on one operator: its timing and where its revocations landed."""

    name: str
    at: float
    spread: float
    replication_lag: float
    end: float
    lines: int = 0
    landed: Counter[str] = field(default_factory=Counter)
    """Revocations recorded per data centre."""


class ConsentReplicas:
    """Each data centre's replica of the consent records, the ground truth, and the counts.

    ``calendar`` is the operator's epoch clock, the one consent records are stamped with.
    """

    def __init__(
        self,
        env: simpy.Environment,
        operator_id: str,
        weights: dict[str, int],
        seed: str,
        calendar: Clock,
    ) -> None:
        self.env = env
        self.operator_id = operator_id
        self.weights = weights
        self.seed = seed
        self.replicas = {name: InMemoryConsentStore(clock=calendar) for name in weights}
        self._origin = InMemoryConsentStore(clock=calendar)
        """Where records are made; each replica adopts a copy under the same id."""
        self._current: dict[tuple[str, str, str], str] = {}
        """(number, client, purpose) -> the id of the consent tokens are issued under now."""
        self._by_number: dict[str, list[tuple[str, str, str]]] = {}
        self._scopes: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self.truth: dict[str, list[_Revoked]] = {}
        self.waves: list[RevocationWave] = []
        self.active = False
        """Whether any wave is scheduled (the gateway asks nothing otherwise)."""
        self.refusals = 0
        self.successes_within_lag = 0
        self.successes_after_lag = 0

    def schedule(
        self,
        name: str,
        numbers_by_rank: Sequence[tuple[str, float]],
        *,
        share: float,
        at: float,
        spread: float,
        replication_lag: float,
        end: float,
        data_centre: str | None,
    ) -> RevocationWave:
        """Plan one wave over ``(number, rank)`` lines; views change at their instants."""
        wave = RevocationWave(name, at, spread, replication_lag, end)
        rng = random.Random(f"{self.seed}:{self.operator_id}:consent:{len(self.waves)}")
        names = list(self.weights)
        weights = [self.weights[n] for n in names]
        changes: dict[float, list[tuple[str, str]]] = {}
        for number, rank in numbers_by_rank:
            if rank >= share:
                continue
            instant = at + spread * rank / share
            if instant >= end:
                continue
            home = data_centre or rng.choices(names, weights)[0]
            wave.lines += 1
            wave.landed[home] += 1
            self.truth.setdefault(number, []).append(
                _Revoked(instant, instant + replication_lag, end, home)
            )
            changes.setdefault(instant, []).append((home, number))
            later = instant + replication_lag
            if later < end:
                for other in names:
                    if other != home:
                        changes.setdefault(later, []).append((other, number))
        applied: list[tuple[str, str]] = []
        for moment in sorted(changes):
            self._at(moment, self._apply, changes[moment], applied)
        if end != float("inf"):
            self._at(end, self._lift, applied)
        self.waves.append(wave)
        self.active = True
        return wave

    def _at(self, moment: float, action: Any, *args: Any) -> None:
        event = self.env.timeout(max(0.0, moment - self.env.now))
        event.callbacks.append(lambda _: action(*args))

    def _apply(self, changes: list[tuple[str, str]], applied: list[tuple[str, str]]) -> None:
        for dc, number in changes:
            replica = self.replicas[dc]
            for key in self._by_number.get(number, ()):
                replica.revoke(self._current[key], actor=_ACTOR)
        applied.extend(changes)

    def _lift(self, applied: list[tuple[str, str]]) -> None:
        """The wave is over: its subscribers consent again (new records everywhere)."""
        for number in dict.fromkeys(number for _, number in applied):
            for key in self._by_number.get(number, ()):
                self._record(key)
        applied.clear()

    # -- the gateway's questions ------------------------------------------------------------

    def consent_for(
        self, data_centre: str, number: str, client: str, purpose: str, scopes: tuple[str, ...]
    ) -> Consent | None:
        """The consent a token for ``client`` about ``number`` was issued under, as the
        replica of ``data_centre`` holds it now (recorded on first use)."""
        key = (number, client, purpose)
        consent_id = self._current.get(key)
        if consent_id is None:
            consent_id = self._first_record(key, scopes)
        return self.replicas[data_centre].get(consent_id)

    def _first_record(self, key: tuple[str, str, str], scopes: tuple[str, ...]) -> str:
        """Record a consent the subscriber gave before the run, with every revocation of the
        number each replica has already seen applied to it."""
        number = key[0]
        self._by_number.setdefault(number, []).append(key)
        self._scopes[key] = scopes
        consent_id = self._record(key)
        now = self.env.now
        for entry in self.truth.get(number, ()):
            if not entry.instant <= now < entry.end:
                continue
            for name, replica in self.replicas.items():
                if name == entry.home or now >= entry.everywhere:
                    replica.revoke(consent_id, actor=_ACTOR)
        return consent_id

    def _record(self, key: tuple[str, str, str]) -> str:
        number, client, purpose = key
        consent = self._origin.grant(number, client, purpose, self._scopes[key], actor=_ACTOR)
        for replica in self.replicas.values():
            replica.adopt(consent)
        self._current[key] = consent.id
        return consent.id

    def revoke(self, number: str, data_centres: Sequence[str] | None = None) -> None:
        """The subscriber revokes every consent now, seen at once by ``data_centres`` (all
        by default); a wave schedules the same with replication lag."""
        self._apply([(dc, number) for dc in data_centres or self.replicas], [])

    def refused(self) -> None:
        """A call was refused for its consent (counted for the report)."""
        self.refusals += 1

    def revoked_everywhere_at(self, number: str, now: float) -> float | None:
        """Ground truth: if ``number``'s consent is revoked now, when every DC sees it."""
        entries = self.truth.get(number)
        if not entries:
            return None
        found: float | None = None
        for entry in entries:
            if entry.instant <= now < entry.end and (found is None or entry.everywhere < found):
                found = entry.everywhere
        return found

    def served(self, everywhere: float, checked_at: float) -> None:
        """A call for a revoked consent succeeded; its consent was checked at ``checked_at``."""
        if checked_at >= everywhere:
            self.successes_after_lag += 1
        else:
            self.successes_within_lag += 1

    def counts(self) -> dict[str, int]:
        """The calls refused, and the successes within and after the lag."""
        return {
            "refused": self.refusals,
            "successes_within_lag": self.successes_within_lag,
            "successes_after_lag": self.successes_after_lag,
        }
