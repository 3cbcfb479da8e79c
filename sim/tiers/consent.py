"""Consent revocations across an operator's data centres, with replication lag between them.

A revocation wave of share ``s`` revokes the consent of the lines ranked below ``s`` (the
same lines every time; line ``r`` at ``at + spread * r / s``). Each revocation is recorded
in one data centre — the scenario's ``data_centre``, else one drawn by the data centres'
weights, as the global load balancer spreads the revocation requests — and is visible there
at once; the other data centres see it ``replication_lag`` seconds later. Each data centre
therefore keeps its own view (the numbers it knows to be revoked), and the gateway of the
data centre a call was routed to refuses by that view alone: until the lag has passed, a
call that lands in a data centre that has not seen the revocation still succeeds.

Beside the views, :class:`ConsentReplicas` keeps the ground truth (each revocation's instant
and lag), so every call that succeeds for a revoked consent is counted at the instant its
consent was checked: within the lag (allowed, reported) or later than instant + lag (a bug:
a scenario expects zero). A revocation with a ``duration`` ends (consent granted again) in
every data centre at once.

The simulation keeps no consent records of its own (they live in the identity server's
database, one row per subscriber and purpose); this is the modelled part of consent.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy

__all__ = ["ConsentReplicas", "RevocationWave"]


@dataclass(frozen=True, slots=True)
class _Revoked:
    """One line's revocation: when it happened, when every data centre sees it, its end."""

    instant: float
    everywhere: float
    end: float


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
    """Each data centre's view of revoked consents, the ground truth, and the call counts."""

    def __init__(
        self, env: simpy.Environment, operator_id: str, weights: dict[str, int], seed: str
    ) -> None:
        self.env = env
        self.operator_id = operator_id
        self.weights = weights
        self.seed = seed
        self.views: dict[str, Counter[str]] = {name: Counter() for name in weights}
        """Per data centre: number -> revocations it has seen (and not yet ended)."""
        self.truth: dict[str, list[_Revoked]] = {}
        self.waves: list[RevocationWave] = []
        self.active = False
        """Whether any wave is scheduled (the gateway asks nothing otherwise)."""
        self.refused = 0
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
                _Revoked(instant, instant + replication_lag, end)
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
            self.views[dc][number] += 1
        applied.extend(changes)

    def _lift(self, applied: list[tuple[str, str]]) -> None:
        for dc, number in applied:
            view = self.views[dc]
            view[number] -= 1
            if view[number] <= 0:
                del view[number]
        applied.clear()

    # -- the gateway's questions ------------------------------------------------------------

    def refuses(self, data_centre: str, number: str) -> bool:
        """Whether ``data_centre`` has seen a revocation of ``number`` (and counts it)."""
        if number in self.views[data_centre]:
            self.refused += 1
            return True
        return False

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
            "refused": self.refused,
            "successes_within_lag": self.successes_within_lag,
            "successes_after_lag": self.successes_after_lag,
        }
