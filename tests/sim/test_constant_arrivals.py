"""Constant-rate arrivals: exactly the rate's calls in every second, spikes included."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from sim.scenario import ConstantArrivals, Spike
from sim.traffic import arrival_times


def _times(rate: float, duration: float, *spikes: Spike) -> list[float]:
    arrival = ConstantArrivals(process="constant", rate=rate)
    return list(arrival_times(arrival, spikes, duration, random.Random(1)))


def test_every_second_gets_the_rate_and_the_run_gets_rate_times_duration() -> None:
    times = _times(10, 20.0)
    assert len(times) == 200  # adding gaps up in floating point gave 199
    assert set(Counter(int(t) for t in times).values()) == {10}
    assert times == sorted(times) and times[0] >= 0 and times[-1] < 20.0


def test_a_spike_multiplies_its_own_seconds_exactly() -> None:
    times = _times(10, 20.0, Spike(at=5, duration=5, factor=2))
    per_second = Counter(int(t) for t in times)
    assert len(times) == 250  # 248 before
    assert [per_second[s] for s in (4, 5, 9, 10)] == [10, 20, 20, 10]


@pytest.mark.parametrize("rate", [1, 3, 7, 10, 300])
def test_no_call_falls_on_a_whole_second(rate: float) -> None:
    """Faults and spikes begin on whole seconds: a call there would be on either side of the
    fault by event order alone."""
    assert all(t != int(t) for t in _times(rate, 10.0))


def test_a_rate_below_one_per_segment_places_what_fits() -> None:
    times = _times(0.3, 20.0)
    assert len(times) == 6 and all(0 < t < 20.0 for t in times)
