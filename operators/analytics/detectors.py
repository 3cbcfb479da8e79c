"""The detectors: each scores the keys of one closed bucket against their own history.

Scores do not depend on the threshold (a sweep reuses them); gates do: a key is scored only
with ``min_history`` buckets since its first call and enough calls (``min_calls``) or
distinct subscribers (``enumeration_min_subscribers``) in the bucket. Only rises score.

* **volume_spike**: calls against the season (or recent window), :func:`count_scale` floor.
* **error_spike**: the error share (errors / calls) against the shares of the baseline's
  buckets that had calls; floor ``max(1.4826 * MAD, 0.05)`` (five points of share).
* **enumeration**: distinct subscribers against their baseline, :func:`count_scale` floor,
  the baseline kept as :func:`unthrottled_subscribers`. A throttled call carries no
  subscriber (the gateway refuses it before reading one), so an application over its daily
  quota shows ~0 subscribers for hours, a few in the hour its quota runs out, and its usual
  number again at the reset; kept as they were, those hours would make the reset (or a plan
  upgrade) look like enumeration. A bucket's subscribers are kept as the number its calls
  would have shown at its admitted calls' rate (``subscribers * calls / admitted``), and a
  bucket whose calls were all throttled as unknown (NaN, left out of the baseline; one
  without calls still counts as 0). A seasonal baseline with no known bucket left falls
  back to the recent window; a key with none in either is not scored.
* **off_hours**: calls in a bucket whose season median is 0 (seasonal keys only) and whose
  same hour on the previous days of the week had a median of 0 too ("usually quiet at that
  hour, lately as well"); score ``calls / max(1.4826 * MAD, sqrt(mean calls per bucket over
  the recent window), 1)``.
* **new_source**: at least ``new_source_share`` of the calls come from sources the key has
  not used within its ring of history, for a key whose sources are usually known (the median
  of such calls over the recent window is below that share of its usual volume). Score: the
  calls from new sources against the key's usual volume (the volume baseline and floor), so
  moving all traffic to a new network at the usual volume scores about 0, and a stolen key
  used from elsewhere at high volume scores as high as its excess.
* **quota_farming** (per developer, daily): at least ``farming_min_apps`` applications of one
  developer, created within ``farming_window`` of each other, each calling one API at
  ``farming_share`` or more of its quota over the last 30 days; score ``5 * sum(shares) /
  (farming_min_apps * farming_share)``, so the smallest such farm scores 5 (the default
  threshold) and bigger or fuller farms more. Its scale is not the spikes' (a threshold of
  10 that suits them silences small farms): give it its own in ``thresholds``. The alert
  names the farm's API; one per developer and API within ``alert_cooldown_days``.

:class:`Wording` puts a verdict in words that follow the settings: the bucket scored is "this
hour" with hourly buckets and "this 3 s bucket" with 3-second ones, and the baseline is
"usual for this hour of the week" when the key's season was used, "usual over the last 24
hours" (or buckets) when its recent window was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .alerts import AlertKind
from .baselines import (
    MAD_SCALE,
    Baseline,
    Floats,
    Ints,
    PeriodRings,
    count_scale,
    lagged,
    median_mad,
    robust_score,
)
from .records import HOUR
from .settings import DAY, DetectorSettings

__all__ = [
    "ERROR_SHARE_FLOOR",
    "Closed",
    "Farm",
    "FarmCandidate",
    "Scored",
    "Wording",
    "close",
    "enumeration",
    "error_spike",
    "new_source",
    "off_hours",
    "quota_farming",
    "unthrottled_subscribers",
    "volume_spike",
]

ERROR_SHARE_FLOOR = 0.05
_SPANS = {60.0: "minute", HOUR: "hour", DAY: "day", 7 * DAY: "week"}
"""Lengths of time a detail names in words; any other is written in seconds."""


@dataclass(frozen=True)
class Closed:
    """One closed bucket's keys (arrays aligned by position) and their volume baseline."""

    bucket: int
    rows: Ints
    ages: Ints
    """Buckets since each key's first call (0 for a first call)."""
    calls: Floats
    errors: Floats
    subscribers: Floats
    fresh: Floats
    """Calls from sources unseen in the key's history."""
    scored: npt.NDArray[np.bool_]
    """Old enough and with ``min_calls``: the keys the call-based detectors look at."""
    seasonal: npt.NDArray[np.bool_]
    calls_median: Floats
    calls_mad: Floats


@dataclass(frozen=True)
class Scored:
    """One detector's scores for some of a closed bucket's keys (positions in it)."""

    kind: AlertKind
    index: Ints
    score: Floats
    observed: Floats
    baseline: Floats

    def at_least(self, floor: float) -> Scored:
        keep = self.score >= floor
        return Scored(
            self.kind,
            self.index[keep],
            self.score[keep],
            self.observed[keep],
            self.baseline[keep],
        )


def close(
    bucket: int,
    rows: Ints,
    ages: Ints,
    counts: Floats,
    rings: PeriodRings,
    baseline: Baseline,
    settings: DetectorSettings,
) -> Closed:
    """A bucket's keys ready to score; ``counts`` columns: calls, errors, subscribers,
    fresh. ``rings`` must hold the buckets up to ``bucket - 1``."""
    calls = counts[:, 0]
    scored = (ages >= settings.min_history) & (calls >= settings.min_calls)
    median = np.full(len(rows), np.nan)
    mad = np.full(len(rows), np.nan)
    matrix = rings.matrices["calls"]
    if scored.any():
        median[scored], mad[scored] = baseline.stats(
            lambda r, lags, a: lagged(matrix, r, bucket, lags, a), rows[scored], ages[scored]
        )
    return Closed(
        bucket,
        rows,
        ages,
        calls,
        counts[:, 1],
        counts[:, 2],
        counts[:, 3],
        scored,
        baseline.seasonal(ages),
        median,
        mad,
    )


def _scored(kind: AlertKind, index: Ints, score: Floats, observed: Floats, base: Floats) -> Scored:
    rising = score > 0
    return Scored(kind, index[rising], score[rising], observed[rising], base[rising])


def volume_spike(closed: Closed, settings: DetectorSettings) -> Scored:
    index = np.flatnonzero(closed.scored)
    median, mad = closed.calls_median[index], closed.calls_mad[index]
    observed = closed.calls[index]
    scale = count_scale(median, mad, settings.relative_floor, observed)
    return _scored("volume_spike", index, robust_score(observed, median, scale), observed, median)


def error_spike(
    closed: Closed, rings: PeriodRings, baseline: Baseline, settings: DetectorSettings
) -> Scored:
    # a share below lowest * floor cannot reach the lowest score anyone keeps (the median is
    # >= 0 and the scale >= the floor): the baseline is only worked out for the others
    lowest = max(0.0, min(settings.record_floor, settings.threshold_of("error_spike")))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(closed.calls > 0, closed.errors / closed.calls, 0.0)
    index = np.flatnonzero(closed.scored & (share > 0) & (share >= lowest * ERROR_SHARE_FLOOR))
    calls, errors = rings.matrices["calls"], rings.matrices["errors"]
    bucket = closed.bucket

    def shares(rows: Ints, lags: Ints, ages: Ints) -> Floats:
        made = lagged(calls, rows, bucket, lags, ages)
        failed = lagged(errors, rows, bucket, lags, ages)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(made > 0, failed / made, np.nan)

    median, mad = baseline.stats(shares, closed.rows[index], closed.ages[index])
    known = ~np.isnan(median)
    index, median, mad = index[known], median[known], mad[known]
    observed = closed.errors[index] / closed.calls[index]
    scale = np.maximum(MAD_SCALE * np.nan_to_num(mad), ERROR_SHARE_FLOOR)
    return _scored("error_spike", index, robust_score(observed, median, scale), observed, median)


def unthrottled_subscribers(calls: Floats, throttled: Floats, subscribers: Floats) -> Floats:
    """What enumeration's baseline keeps of a closed bucket's distinct subscribers: scaled up
    to all its calls at the rate of its admitted ones, NaN when none was admitted (see the
    module's docstring). Linear scaling overestimates an application that repeats its
    subscribers (distinct ones grow slower than calls), which only raises its baseline after
    a throttled hour: fewer alerts, never more."""
    admitted = calls - throttled
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(admitted > 0, subscribers * calls / admitted, np.nan)
    return np.where(calls > 0, scaled, 0.0)


def enumeration(
    closed: Closed, rings: PeriodRings, baseline: Baseline, settings: DetectorSettings
) -> Scored:
    index = np.flatnonzero(
        (closed.ages >= settings.min_history)
        & (closed.subscribers >= max(settings.enumeration_min_subscribers, 1))
    )
    matrix, bucket = rings.matrices["subscribers"], closed.bucket

    def history(rows: Ints, lags: Ints, ages: Ints) -> Floats:
        return lagged(matrix, rows, bucket, lags, ages)  # NaN: all calls throttled

    rows, ages = closed.rows[index], closed.ages[index]
    median, mad = baseline.stats(history, rows, ages)
    unknown = np.isnan(median)
    if unknown.any():
        median[unknown], mad[unknown] = median_mad(
            history(rows[unknown], baseline.recent_lags, ages[unknown])
        )
    known = ~np.isnan(median)
    index, median, mad = index[known], median[known], mad[known]
    observed = closed.subscribers[index]
    scale = count_scale(median, mad, settings.relative_floor, observed)
    return _scored("enumeration", index, robust_score(observed, median, scale), observed, median)


def off_hours(
    closed: Closed, rings: PeriodRings, baseline: Baseline, settings: DetectorSettings
) -> Scored:
    index = np.flatnonzero(closed.scored & closed.seasonal & (closed.calls_median == 0))
    if baseline.day_lags is None or not len(index):
        return _scored("off_hours", index, np.zeros(0), np.zeros(0), np.zeros(0))
    matrix, rows, ages = rings.matrices["calls"], closed.rows[index], closed.ages[index]
    days_median, _ = median_mad(lagged(matrix, rows, closed.bucket, baseline.day_lags, ages))
    quiet = days_median == 0
    index, rows, ages = index[quiet], rows[quiet], ages[quiet]
    recent = lagged(matrix, rows, closed.bucket, baseline.recent_lags, ages)
    level = np.nanmean(recent, axis=1) if len(index) else np.zeros(0)
    scale = np.maximum.reduce(
        [MAD_SCALE * closed.calls_mad[index], np.sqrt(level), np.ones(len(index))]
    )
    observed = closed.calls[index]
    return _scored("off_hours", index, observed / scale, observed, np.zeros(len(index)))


def new_source(closed: Closed, fresh: PeriodRings, settings: DetectorSettings) -> Scored:
    share = settings.new_source_share
    index = np.flatnonzero(
        closed.scored & (closed.fresh >= share * closed.calls) & (closed.fresh > 0)
    )
    rows, ages = closed.rows[index], closed.ages[index]
    lags = np.arange(1, fresh.length + 1, dtype=np.int64)
    usual_fresh, _ = median_mad(lagged(fresh.matrices["fresh"], rows, closed.bucket, lags, ages))
    volume, mad = closed.calls_median[index], closed.calls_mad[index]
    stable = np.nan_to_num(usual_fresh) < share * np.maximum(volume, 1.0)
    index, volume, mad = index[stable], volume[stable], mad[stable]
    observed = closed.fresh[index]
    scale = count_scale(volume, mad, settings.relative_floor, observed)
    return _scored("new_source", index, robust_score(observed, volume, scale), observed, volume)


@dataclass(frozen=True)
class FarmCandidate:
    """One application's use of one API against its quota over the last 30 days."""

    client_id: str
    developer_id: str
    api: str
    created_at: float
    share: float


@dataclass(frozen=True)
class Farm:
    developer_id: str
    api: str
    client_ids: tuple[str, ...]
    shares: tuple[float, ...]
    score: float


def quota_farming(candidates: Sequence[FarmCandidate], settings: DetectorSettings) -> list[Farm]:
    """The largest cluster (by creation time) of near-quota applications per developer and
    API, when it has at least ``farming_min_apps``."""
    groups: dict[tuple[str, str], list[FarmCandidate]] = {}
    for candidate in candidates:
        if candidate.share >= settings.farming_share and candidate.developer_id:
            groups.setdefault((candidate.developer_id, candidate.api), []).append(candidate)
    farms: list[Farm] = []
    for (developer_id, api), group in sorted(groups.items()):
        if len(group) < settings.farming_min_apps:
            continue
        group.sort(key=lambda c: (c.created_at, c.client_id))
        best: list[FarmCandidate] = []
        first = 0
        for last in range(len(group)):
            while group[last].created_at - group[first].created_at > settings.farming_window:
                first += 1
            if last + 1 - first > len(best):
                best = group[first : last + 1]
        if len(best) < settings.farming_min_apps:
            continue
        shares = tuple(c.share for c in best)
        score = 5.0 * sum(shares) / (settings.farming_min_apps * settings.farming_share)
        farms.append(Farm(developer_id, api, tuple(c.client_id for c in best), shares, score))
    return farms


@dataclass(frozen=True)
class Wording:
    """How the alerts' details name the bucket scored and the baseline it was scored against
    (see the module's docstring); :meth:`of` derives them from the settings."""

    bucket: str
    """Where the observed value was seen: "in this hour", "in this 3 s bucket"."""
    slot: str
    """The bucket's place in the season: "this hour of the week"."""
    recent: str
    """The recent window: "over the last 24 hours", "over the last 10 buckets"."""

    @classmethod
    def of(cls, settings: DetectorSettings) -> Wording:
        seconds = settings.bucket_seconds
        unit = _SPANS.get(seconds)
        season = None if settings.season_buckets is None else settings.season_buckets * seconds
        cycle = None if season is None else _SPANS.get(season)
        if unit is not None and cycle is not None:
            slot = f"this {unit} of the {cycle}"
        elif season is not None:
            slot = f"this point of its {season:g} s season"
        else:
            slot = "this point of its season"  # never used: no season, no seasonal baseline
        return cls(
            bucket=f"in this {unit}" if unit is not None else f"in this {seconds:g} s bucket",
            slot=slot,
            recent=f"over the last {settings.recent_buckets} "
            + (f"{unit}s" if unit is not None else "buckets"),
        )

    def usual(self, seasonal: bool) -> str:
        """What the baseline was: "usual for this hour of the week", "usual over ..."."""
        return f"usual for {self.slot}" if seasonal else f"usual {self.recent}"

    def describe(
        self,
        kind: AlertKind,
        observed: float,
        baseline: float,
        *,
        seasonal: bool,
        sources: Iterable[str] = (),
    ) -> str:
        """One verdict on one bucket of one key, in words (not quota farming: see its own)."""
        usual = self.usual(seasonal)
        if kind == "volume_spike":
            return f"{observed:.0f} calls {self.bucket} against {baseline:.1f}, {usual}"
        if kind == "error_spike":
            return f"{observed:.0%} of calls failed {self.bucket} against {baseline:.0%}, {usual}"
        if kind == "enumeration":
            return (
                f"{observed:.0f} distinct subscribers {self.bucket} against {baseline:.1f}, {usual}"
            )
        if kind == "off_hours":
            return f"{observed:.0f} calls {self.bucket}; this key is usually quiet at {self.slot}"
        if kind == "new_source":
            named = ", ".join(sorted(sources)) or "-"
            return (
                f"{observed:.0f} calls {self.bucket} from sources not seen before ({named})"
                f" against a volume of {baseline:.1f}, {usual}"
            )
        raise ValueError(f"{kind} is not a per-bucket verdict")
