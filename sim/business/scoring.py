"""The analytics scored against the simulation's ground truth.

**Detectors.** Alert kinds map to the abuse they reveal:

* ``credential_theft`` <- ``volume_spike``, ``new_source``, ``off_hours`` (a stolen key used
  from elsewhere, at high volume, at odd hours);
* ``enumeration`` <- ``enumeration`` (one key, thousands of distinct subscribers);
* ``quota_farming`` <- ``quota_farming`` (a developer's applications each at the quota);
* ``error_spike`` maps to no kind (a symptom of several, and of honest bugs): it is counted
  in the confusion table only.

Credential theft and enumeration are scored per application (client id), quota farming per
developer (the abuse and the alert are the developer's). Each flagged application gets one
predicted kind, the most specific its alerts show: an application whose developer is flagged
for quota farming is predicted ``quota_farming``; else one with an ``enumeration`` alert is
predicted ``enumeration`` (the volume spike that comes with a walk is explained by it); else
one with a ``volume_spike``, ``new_source`` or ``off_hours`` alert ``credential_theft``.

* **precision** of a kind: predicted entities of that kind that truly are of it **and** were
  flagged by a mapped alert raised between the abuse's start and its end plus ``grace``,
  over all entities predicted of that kind (an alert on a theft victim before the theft is a
  false alarm);
* **recall**: abuse cases so detected over all cases of the kind;
* **time to detect**: hours from the abuse's start to the first such alert's ``raised_at``
  (median and 90th percentile over detected cases, linear interpolation).

The **threshold sweep** replays the same rules on :attr:`Analytics.scores` (every scored
bucket at or above the record floor) as if the threshold were each value of the grid: an
entity is flagged at threshold ``t`` by a score ``>= t``, raised at its bucket's end.
Cool-downs only thin repeated alerts, so they change no flagged set.

**Funnel**: the analytics' conversion (signed up -> first token -> first success on the
funnel's API within the window) against the truth's share of developers (whose window has
elapsed) who really got there within the window; and the funnel's token step against the
true share whose integration delay was within the window.

**Churn risk**: precision is flagged developers who really started churning (a decline
begun before the evaluation) over flagged developers; recall is flagged over developers whose
decline began between ``churn_weeks + 1`` weeks and one week before the evaluation (long
enough to be seen, recent enough not to be merely dormant).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from sim.business.scenario import ABUSE_KINDS, AbuseKind
from sim.business.truth import AbuseCase, GroundTruth

__all__ = [
    "ALERT_KINDS",
    "ChurnScore",
    "Flag",
    "FunnelScore",
    "IntegrationTruth",
    "KindScore",
    "SweepPoint",
    "churn_score",
    "confusion",
    "detections",
    "funnel_score",
    "integration_truth",
    "predicted_kinds",
    "score_kinds",
    "sweep",
]

ALERT_KINDS: Mapping[AbuseKind, tuple[str, ...]] = {
    "credential_theft": ("volume_spike", "new_source", "off_hours"),
    "enumeration": ("enumeration",),
    "quota_farming": ("quota_farming",),
}
"""Which alert kinds reveal which abuse (``error_spike`` reveals none)."""
HOUR = 3600.0
WEEK = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class Flag:
    """An alert (or a recorded score taken as one): what, on whom, when."""

    kind: str
    client_id: str
    developer_id: str
    at: float
    score: float = math.inf


@dataclass(frozen=True, slots=True)
class KindScore:
    """One abuse kind's detection figures (None where nothing was there to measure)."""

    kind: AbuseKind
    cases: int
    detected: int
    flagged: int
    true_positives: int
    precision: float | None
    recall: float | None
    time_to_detect_hours: float | None
    time_to_detect_p90_hours: float | None
    delays_hours: tuple[float, ...] = ()


def _developer(flag: Flag, owners: Mapping[str, str]) -> str:
    return flag.developer_id or owners.get(flag.client_id, "")


def predicted_kinds(flags: Iterable[Flag], owners: Mapping[str, str]) -> dict[str, AbuseKind]:
    """Each flagged entity's predicted kind: developers for quota farming, applications for
    the others, by the precedence in the module's docstring."""
    by_client: dict[str, set[str]] = {}
    farmers: set[str] = set()
    for flag in flags:
        if flag.kind in ALERT_KINDS["quota_farming"]:
            farmers.add(_developer(flag, owners))
        elif flag.client_id:
            by_client.setdefault(flag.client_id, set()).add(flag.kind)
    predicted: dict[str, AbuseKind] = dict.fromkeys(farmers, "quota_farming")
    for client, kinds in by_client.items():
        if owners.get(client) in farmers:
            continue
        if kinds & set(ALERT_KINDS["enumeration"]):
            predicted[client] = "enumeration"
        elif kinds & set(ALERT_KINDS["credential_theft"]):
            predicted[client] = "credential_theft"
    return predicted


def _entity(flag: Flag, kind: AbuseKind, owners: Mapping[str, str]) -> str:
    return _developer(flag, owners) if kind == "quota_farming" else flag.client_id


def _first_detection(
    case: AbuseCase, flags: Sequence[Flag], owners: Mapping[str, str], grace: float
) -> float | None:
    """When a mapped flag first named the case's entity within its span plus ``grace``."""
    times = [
        flag.at
        for flag in flags
        if flag.kind in ALERT_KINDS[case.kind]
        and _entity(flag, case.kind, owners) == case.entity
        and case.start <= flag.at <= case.end + grace
    ]
    return min(times) if times else None


def detections(
    flags: Sequence[Flag],
    truth: GroundTruth,
    owners: Mapping[str, str],
    *,
    grace: float = 24 * HOUR,
) -> dict[tuple[str, str], float | None]:
    """Per abuse case ``(kind, entity)``: when a mapped flag first named it within its span
    plus ``grace`` (None: never)."""
    return {
        (case.kind, case.entity): _first_detection(case, flags, owners, grace)
        for case in truth.abuse
    }


def _quantile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, 100 * q)) if values else None


def score_kinds(
    flags: Sequence[Flag],
    truth: GroundTruth,
    owners: Mapping[str, str],
    *,
    grace: float = 24 * HOUR,
) -> dict[AbuseKind, KindScore]:
    """Precision, recall and time to detect per abuse kind; ``owners`` maps client ids to
    developer ids (for flags that name only the application)."""
    predicted = predicted_kinds(flags, owners)
    scores: dict[AbuseKind, KindScore] = {}
    for kind in ABUSE_KINDS:
        cases = truth.cases(kind)
        detections = {case.entity: _first_detection(case, flags, owners, grace) for case in cases}
        delays = sorted(
            (at - case.start) / HOUR
            for case in cases
            if (at := detections[case.entity]) is not None
        )
        flagged = [entity for entity, k in predicted.items() if k == kind]
        hits = sum(1 for entity in flagged if detections.get(entity) is not None)
        scores[kind] = KindScore(
            kind=kind,
            cases=len(cases),
            detected=len(delays),
            flagged=len(flagged),
            true_positives=hits,
            precision=hits / len(flagged) if flagged else None,
            recall=len(delays) / len(cases) if cases else None,
            time_to_detect_hours=_quantile(delays, 0.5),
            time_to_detect_p90_hours=_quantile(delays, 0.9),
            delays_hours=tuple(delays),
        )
    return scores


def confusion(
    flags: Iterable[Flag], truth: GroundTruth, owners: Mapping[str, str], clients: Iterable[str]
) -> dict[str, dict[str, int]]:
    """Applications by true kind (``normal`` for the rest of ``clients``) and alert kind:
    how many applications of each truth got at least one alert of each kind."""
    true_kind: dict[str, str] = dict.fromkeys(clients, "normal")
    for case in truth.abuse:
        for client in case.clients:
            true_kind[client] = case.kind
    seen: dict[tuple[str, str], set[str]] = {}
    for flag in flags:
        if flag.kind in ALERT_KINDS["quota_farming"] or not flag.client_id:
            developer = _developer(flag, owners)
            targets = [c for c, d in owners.items() if d == developer]
        else:
            targets = [flag.client_id]
        for client in targets:
            seen.setdefault((true_kind.get(client, "normal"), flag.kind), set()).add(client)
    table: dict[str, dict[str, int]] = {}
    for (truth_kind, alert_kind), members in sorted(seen.items()):
        table.setdefault(truth_kind, {})[alert_kind] = len(members)
    return table


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """Precision and recall of one kind had the threshold been ``threshold``."""

    kind: AbuseKind
    threshold: float
    precision: float | None
    recall: float | None
    flagged: int
    time_to_detect_hours: float | None


def sweep(
    scored: Sequence[Flag],
    truth: GroundTruth,
    owners: Mapping[str, str],
    thresholds: Sequence[float],
    *,
    grace: float = 24 * HOUR,
) -> list[SweepPoint]:
    """The precision/recall curve per kind over ``thresholds`` (see the module docstring)."""
    points: list[SweepPoint] = []
    for threshold in thresholds:
        kept = [flag for flag in scored if flag.score >= threshold]
        for kind, result in score_kinds(kept, truth, owners, grace=grace).items():
            points.append(
                SweepPoint(
                    kind,
                    threshold,
                    result.precision,
                    result.recall,
                    result.flagged,
                    result.time_to_detect_hours,
                )
            )
    return points


@dataclass(frozen=True, slots=True)
class FunnelScore:
    """The funnel as the analytics computed it and as it truly was."""

    entered: int
    true_entered: int
    conversion: float | None
    true_conversion: float | None
    token_conversion: float | None
    true_token_conversion: float | None

    @property
    def error(self) -> float | None:
        if self.conversion is None or self.true_conversion is None:
            return None
        return abs(self.conversion - self.true_conversion)

    @property
    def integration_error(self) -> float | None:
        if self.token_conversion is None or self.true_token_conversion is None:
            return None
        return abs(self.token_conversion - self.true_token_conversion)


def funnel_score(
    truth: GroundTruth,
    *,
    api: str,
    window: float,
    now: float,
    entered: int,
    conversion: float | None,
    token_conversion: float | None,
) -> FunnelScore:
    """The truth of the funnel signed up -> first token -> first success on ``api``, by the
    analytics' own definition (every developer signed up by ``now``; a step counts when it
    came after the previous one, within ``window`` of sign-up and by ``now``), beside the
    analytics' ``entered``, overall and token-step conversions."""
    due = [d for d in truth.developers.values() if d.signed_up <= now]

    def within(at: float | None, after: float, signed_up: float) -> bool:
        return at is not None and after <= at <= min(signed_up + window, now)

    tokens = [d for d in due if within(d.first_token, d.signed_up, d.signed_up)]
    done = [
        d
        for d in tokens
        if d.first_token is not None
        and within(d.first_success.get(api), d.first_token, d.signed_up)
    ]
    return FunnelScore(
        entered=entered,
        true_entered=len(due),
        conversion=conversion,
        true_conversion=len(done) / len(due) if due else None,
        token_conversion=token_conversion,
        true_token_conversion=len(tokens) / len(due) if due else None,
    )


@dataclass(frozen=True, slots=True)
class IntegrationTruth:
    """The population's true integration delays (sign-up to first token), in hours."""

    developers: int
    integrated: int
    median_hours: float | None
    p90_hours: float | None
    share_within_window: float | None
    """Developers whose first token came within the window, over every developer."""


def integration_truth(truth: GroundTruth, *, window: float) -> IntegrationTruth:
    """What the funnel's token step estimates, from the delays the population really had."""
    developers = list(truth.developers.values())
    delays = sorted(
        (d.first_token - d.signed_up) / HOUR for d in developers if d.first_token is not None
    )
    within = sum(1 for delay in delays if delay * HOUR <= window)
    return IntegrationTruth(
        developers=len(developers),
        integrated=len(delays),
        median_hours=_quantile(delays, 0.5),
        p90_hours=_quantile(delays, 0.9),
        share_within_window=within / len(developers) if developers else None,
    )


@dataclass(frozen=True, slots=True)
class ChurnScore:
    flagged: int
    churning: int
    true_positives: int
    detected: int
    precision: float | None
    recall: float | None
    flagged_developers: tuple[str, ...] = field(default=())


def churn_score(
    flagged_developers: Iterable[str], truth: GroundTruth, *, now: float, churn_weeks: int
) -> ChurnScore:
    """Churn-risk precision and recall against developers who really churned (see the
    module docstring for the windows)."""
    flagged = sorted(set(flagged_developers))
    started = {
        d.developer_id: d.churn_started
        for d in truth.developers.values()
        if d.churn_started is not None and d.churn_started <= now
    }
    hits = sum(1 for developer in flagged if developer in started)
    recent = {
        developer
        for developer, at in started.items()
        if now - (churn_weeks + 1) * WEEK <= at <= now - WEEK
    }
    detected = len(recent & set(flagged))
    return ChurnScore(
        flagged=len(flagged),
        churning=len(recent),
        true_positives=hits,
        detected=detected,
        precision=hits / len(flagged) if flagged else None,
        recall=detected / len(recent) if recent else None,
        flagged_developers=tuple(flagged),
    )
