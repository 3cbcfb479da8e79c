"""Student-t intervals: quantiles, edge cases, verdicts on intervals, and coverage on M/M/1."""

from __future__ import annotations

import math
import random

import pytest

from sim.queueing import mm1
from sim.replications import (
    execute,
    interval,
    judge,
    replication_seeds,
    student_t_quantile,
)


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (29, 2.0452), (1000, 1.9623)],
)
def test_t_quantile_matches_tables(df: int, expected: float) -> None:
    assert student_t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)
    assert student_t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-4)


def test_interval_of_known_values() -> None:
    iv = interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert iv is not None
    assert iv.mean == 3.0
    assert iv.half_width == pytest.approx(2.7764 * math.sqrt(2.5) / math.sqrt(5), rel=1e-4)


def test_interval_edge_cases() -> None:
    assert interval([]) is None
    assert interval([None, math.nan]) is None
    one = interval([2.0, None])
    assert one is not None and one.n == 1 and one.low == one.high == 2.0
    never = interval([3.0, math.inf, 5.0])
    assert never is not None and math.isinf(never.mean) and never.low == 3.0


def test_verdicts_on_the_interval() -> None:
    assert judge("x", "goodput", [10.0, 10.2, 9.9, 10.1], 9.0, None).outcome == "pass"
    assert judge("x", "goodput", [10.0, 10.2, 9.9, 10.1], 11.0, None).outcome == "fail"
    # The mean passes, but the interval straddles the bound: undecided, not a pass.
    straddle = judge("x", "goodput", [9.0, 11.5, 10.0, 11.0], 10.0, None)
    assert straddle.outcome == "undecided" and not straddle.passed
    assert judge("x", "recovery_time", [5.0, math.inf], None, 10.0).outcome == "undecided"
    assert judge("x", "recovery_time", [math.inf, math.inf], 120.0, None).outcome == "pass"


def test_seeds_are_derived_and_stable() -> None:
    seeds = replication_seeds(7, 5)
    assert seeds[0] == 7 and len(set(seeds)) == 5
    assert replication_seeds(7, 5) == seeds
    assert replication_seeds(8, 5)[1:] != seeds[1:]


LAMBDA, MU, CUSTOMERS = 0.6, 2.0, 500


def mm1_mean_wait(seed: int) -> float:
    """Mean queueing delay of CUSTOMERS consecutive M/M/1 customers, started in equilibrium.

    The first wait is drawn from the stationary law (0 with probability 1 - rho, else
    exponential with rate mu - lambda), and Lindley's recursion keeps it stationary, so the
    expected sample mean is exactly Wq for any number of customers: no warm-up bias.
    """
    rng = random.Random(seed)
    rho = LAMBDA / MU
    wait = rng.expovariate(MU - LAMBDA) if rng.random() < rho else 0.0
    total = 0.0
    for _ in range(CUSTOMERS):
        total += wait
        wait = max(0.0, wait + rng.expovariate(MU) - rng.expovariate(LAMBDA))
    return total / CUSTOMERS


def _coverage_batch(base: int) -> bool:
    """One study: 10 replications (derived seeds), is Wq inside the 95 % interval?"""
    values = [mm1_mean_wait(seed) for seed in replication_seeds(base, 10)]
    iv = interval(values)
    assert iv is not None
    return iv.low <= mm1(LAMBDA, MU).wq <= iv.high


def test_95_percent_interval_covers_the_mm1_mean_about_95_percent_of_the_time() -> None:
    studies = 600
    covered = execute(_coverage_batch, list(range(1, studies + 1)), workers=1)
    share = sum(covered) / studies
    # Binomial(600, 0.95) has a standard deviation of 0.9 %; the mean of 10 skewed waits is
    # not quite normal, so the t interval may under-cover a little.
    assert 0.91 <= share <= 0.98, share
