"""Rings and robust statistics: row-wise median and MAD with gaps, rolling that zeroes what
passes (a long gap in one step), windows that read zeros outside the ring, and the floor."""

from __future__ import annotations

import random
import statistics

import numpy as np
import pytest

from operators.analytics.baselines import (
    Baseline,
    PeriodRings,
    count_scale,
    day_of,
    lagged,
    median_mad,
    week_of,
    week_start,
)
from operators.analytics.settings import DetectorSettings

from .feeds import MONDAY


def test_row_medians_and_mads_leave_out_the_gaps() -> None:
    rng = random.Random(8)
    rows = []
    for _ in range(200):
        width = rng.randint(1, 28)
        rows.append(
            [rng.uniform(0, 100) if rng.random() < 0.8 else np.nan for _ in range(width)]
            + [np.nan] * (28 - width)
        )
    values = np.array(rows)
    median, mad = median_mad(values)
    for row, m, d in zip(rows, median, mad, strict=True):
        present = [v for v in row if not np.isnan(v)]
        if not present:
            assert np.isnan(m) and np.isnan(d)
            continue
        assert m == pytest.approx(statistics.median(present))
        assert d == pytest.approx(statistics.median(abs(v - m) for v in present))


def test_rolling_zeroes_the_periods_passed_and_a_long_gap_in_one_step() -> None:
    rings = PeriodRings(4, ("calls",))
    rings.grow(2)
    rows = np.array([0, 1])
    for period in range(4):
        rings.add("calls", rows, period, [period + 1, 10 * (period + 1)])
    assert rings.window("calls", rows, 3, 4).tolist() == [[1, 2, 3, 4], [10, 20, 30, 40]]
    rings.roll_to(5)  # periods 4 and 5 start at zero, 0 and 1 are gone
    assert rings.window("calls", rows, 5, 4).tolist() == [[3, 4, 0, 0], [30, 40, 0, 0]]
    rings.roll_to(1_000_000)
    assert rings.window("calls", rows, 1_000_000, 4).tolist() == [[0] * 4, [0] * 4]
    assert rings.window("calls", rows, 1_000_002, 4).tolist() == [[0] * 4, [0] * 4]  # future


def test_a_period_already_out_of_the_ring_is_dropped_and_growing_keeps_rows() -> None:
    rings = PeriodRings(3, ("calls",))
    rings.grow(1)
    rings.add("calls", np.array([0]), 10, 5)
    rings.add("calls", np.array([0]), 2, 99)  # long gone
    rings.grow(40)
    assert rings.rows >= 40
    assert rings.window("calls", np.array([0, 39]), 10, 3).tolist() == [[0, 0, 5], [0, 0, 0]]


def test_the_floor_is_mad_a_share_of_the_median_poisson_noise_or_one() -> None:
    median = np.array([100.0, 100.0, 4.0, 0.0, 400.0])
    mad = np.array([30.0, 1.0, 0.0, 0.0, 0.0])
    observed = np.array([100.0, 100.0, 4.0, 0.0, 900.0])
    scale = count_scale(median, mad, 0.2, observed)
    assert scale.tolist() == pytest.approx([1.4826 * 30, 20.0, 2.0, 1.0, 80.0])


def test_the_season_is_used_once_it_has_enough_weeks() -> None:
    baseline = Baseline(DetectorSettings(season_min_weeks=2))
    assert baseline.seasonal(np.array([0, 167, 335, 336, 5000])).tolist() == [
        False,
        False,
        False,
        True,
        True,
    ]
    assert baseline.day_lags is not None and baseline.day_lags.tolist() == [
        24,
        48,
        72,
        96,
        120,
        144,
    ]
    seasonless = Baseline(DetectorSettings(season_buckets=None))
    assert not seasonless.seasonal(np.array([10_000])).any() and seasonless.day_lags is None


def test_lags_before_a_keys_first_call_are_gaps() -> None:
    matrix = np.arange(10, dtype=np.float32)[None, :].repeat(2, axis=0)
    values = lagged(matrix, np.array([0, 1]), 9, np.array([1, 2, 3]), np.array([5, 2]))
    assert values[0].tolist() == [8, 7, 6]
    assert values[1, :2].tolist() == [8, 7] and np.isnan(values[1, 2])


def test_days_and_iso_weeks_in_utc() -> None:
    assert week_start(week_of(MONDAY)) == MONDAY
    assert week_of(MONDAY - 1) == week_of(MONDAY) - 1
    assert week_of(MONDAY + 7 * 86_400 - 1) == week_of(MONDAY)
    assert day_of(MONDAY + 86_399) == day_of(MONDAY)


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="recent_buckets"):
        DetectorSettings(recent_buckets=0)
    with pytest.raises(ValueError, match="bucket_seconds"):
        DetectorSettings(bucket_seconds=-1)
