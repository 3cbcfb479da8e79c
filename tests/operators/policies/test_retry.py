from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators.policies import RetryBudget, RetryPolicy
from tests.operators.policies.conftest import FakeClock


def test_budget_caps_retries_at_ratio_of_recent_calls(fake_clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.1, min_per_second=0.0, window=10.0, clock=fake_clock)
    for _ in range(100):
        budget.record_call()
    spent = sum(budget.try_spend() for _ in range(50))
    assert spent == 10


def test_budget_floor_lets_a_quiet_client_retry(fake_clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.1, min_per_second=0.5, window=10.0, clock=fake_clock)
    assert sum(budget.try_spend() for _ in range(20)) == 5


def test_budget_forgets_calls_after_the_window(fake_clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.5, min_per_second=0.0, window=10.0, clock=fake_clock)
    for _ in range(10):
        budget.record_call()
    assert budget.try_spend()
    fake_clock.advance(10.0)
    assert budget.balance() == 0.0
    assert not budget.try_spend()
    for _ in range(4):
        budget.record_call()
    assert sum(budget.try_spend() for _ in range(5)) == 2


def test_policy_gives_up_after_max_attempts() -> None:
    policy = RetryPolicy.backoff(random.Random(1), 3, 0.1, 10.0, jitter="none")
    delays = [policy.next_delay(a) for a in (1, 2, 3)]
    assert delays == [pytest.approx(0.2), pytest.approx(0.4), None]


def test_backoff_doubles_then_caps() -> None:
    policy = RetryPolicy(20, 0.5, 10.0, "none", random.Random(1))
    assert [policy.next_delay(a) for a in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert RetryPolicy(2000, 0.5, 10.0, "none", random.Random(1)).next_delay(1999) == 10.0


def test_full_jitter_is_reproducible_with_a_seed() -> None:
    first = RetryPolicy.backoff(random.Random(42), 10, 0.1, 5.0)
    second = RetryPolicy.backoff(random.Random(42), 10, 0.1, 5.0)
    delays = [first.next_delay(a) for a in range(1, 10)]
    assert delays == [second.next_delay(a) for a in range(1, 10)]
    assert len(set(delays)) == len(delays)  # jittered, not constant


def test_policy_spends_from_its_budget() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.2, min_per_second=0.0, window=10.0, clock=clock)
    policy = RetryPolicy.backoff(random.Random(3), 5, 0.1, 1.0, budget=budget)
    for _ in range(10):
        policy.record_call()
    assert policy.next_delay(1) is not None
    assert policy.next_delay(1) is not None
    assert policy.next_delay(1) is None  # 20 % of 10 calls spent


def test_presets_model_harmful_and_silent_clients() -> None:
    assert RetryPolicy.none().next_delay(1) is None
    harmful = RetryPolicy.immediate(4, random.Random(0))
    assert [harmful.next_delay(a) for a in (1, 2, 3, 4)] == [0.0, 0.0, 0.0, None]
    assert harmful.budget is None


@given(
    base=st.floats(0.0, 10.0),
    cap=st.floats(0.0, 60.0),
    attempt=st.integers(1, 2000),
    seed=st.integers(0, 2**32),
)
def test_full_jitter_delay_is_within_zero_and_the_cap(
    base: float, cap: float, attempt: int, seed: int
) -> None:
    policy = RetryPolicy(attempt + 1, base, cap, "full", random.Random(seed))
    delay = policy.next_delay(attempt)
    assert delay is not None
    assert 0.0 <= delay <= min(cap, base * 2.0 ** min(attempt, 1000))
