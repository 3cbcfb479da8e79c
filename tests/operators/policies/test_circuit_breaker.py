from __future__ import annotations

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.policies import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerState,
    SlidingWindowType,
    StateTransition,
)
from tests.operators.policies.conftest import FakeClock

CLOSED = CircuitBreakerState.CLOSED
OPEN = CircuitBreakerState.OPEN
HALF_OPEN = CircuitBreakerState.HALF_OPEN


def breaker(clock: FakeClock, **settings: object) -> CircuitBreaker:
    base: dict[str, object] = {
        "sliding_window_size": 10,
        "minimum_number_of_calls": 5,
        "permitted_number_of_calls_in_half_open_state": 3,
        "wait_duration_in_open_state": 30.0,
        "slow_call_duration_threshold": 1.0,
    }
    base.update(settings)
    return CircuitBreaker(CircuitBreakerConfig.model_validate(base), clock)


def trip(cb: CircuitBreaker) -> None:
    for _ in range(cb.config.minimum_number_of_calls):
        assert cb.try_acquire_permission()
        cb.on_error(0.1)
    assert cb.state is OPEN


def test_defaults_are_resilience4j_defaults() -> None:
    config = CircuitBreakerConfig()
    assert config.failure_rate_threshold == 50
    assert config.slow_call_rate_threshold == 100
    assert config.slow_call_duration_threshold == 60
    assert config.sliding_window_type is SlidingWindowType.COUNT_BASED
    assert config.sliding_window_size == 100
    assert config.minimum_number_of_calls == 100
    assert config.permitted_number_of_calls_in_half_open_state == 10
    assert config.wait_duration_in_open_state == 60
    assert config.automatic_transition_from_open_to_half_open_enabled is False
    assert config.max_wait_duration_in_half_open_state == 0


def test_config_is_strict_and_frozen() -> None:
    with pytest.raises(pydantic.ValidationError, match="failureRateThreshold"):
        CircuitBreakerConfig.model_validate({"failureRateThreshold": 10})
    with pytest.raises(pydantic.ValidationError):
        CircuitBreakerConfig(failure_rate_threshold=0)
    config = CircuitBreakerConfig.model_validate({"sliding_window_type": "TIME_BASED"})
    assert config.sliding_window_type is SlidingWindowType.TIME_BASED
    with pytest.raises(pydantic.ValidationError):
        config.sliding_window_size = 3


def test_no_rate_before_the_minimum_number_of_calls(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock)
    for _ in range(4):
        cb.on_error(0.1)
    assert cb.state is CLOSED
    assert cb.metrics().failure_rate == -1.0
    cb.on_error(0.1)
    assert cb.state is OPEN


def test_opens_exactly_when_the_failure_rate_reaches_the_threshold(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock)
    for _ in range(3):
        cb.on_success(0.1)
    cb.on_error(0.1)
    cb.on_error(0.1)
    assert cb.state is CLOSED  # 2 of 5: 40 %
    assert cb.metrics().failure_rate == pytest.approx(40.0)
    cb.on_error(0.1)
    assert cb.state is OPEN  # 3 of 6: 50 % >= 50 %


def test_count_window_uses_the_smaller_of_minimum_and_window_size(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock, sliding_window_size=4, minimum_number_of_calls=100)
    for _ in range(3):
        cb.on_error(0.1)
    assert cb.state is CLOSED
    cb.on_error(0.1)
    assert cb.state is OPEN


def test_count_window_keeps_only_the_last_n_calls(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock, sliding_window_size=4, minimum_number_of_calls=4)
    cb.on_error(0.1)
    for _ in range(5):
        cb.on_success(0.1)
    metrics = cb.metrics()
    assert (metrics.number_of_buffered_calls, metrics.number_of_failed_calls) == (4, 0)


def test_open_rejects_every_call_and_counts_it(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock)
    trip(cb)
    assert not any(cb.try_acquire_permission() for _ in range(7))
    assert cb.metrics().number_of_not_permitted_calls == 7


def test_half_open_is_lazy_and_strictly_after_the_wait(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock)
    trip(cb)
    fake_clock.advance(30.0)
    assert cb.state is OPEN
    assert not cb.try_acquire_permission()  # resilience4j: Instant.isAfter, not at
    fake_clock.advance(100.0)
    assert cb.state is OPEN  # nothing moves it until a call asks
    assert cb.try_acquire_permission()
    assert cb.state is HALF_OPEN


def test_half_open_admits_exactly_the_permitted_probes(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock)
    trip(cb)
    fake_clock.advance(31.0)
    assert [cb.try_acquire_permission() for _ in range(5)] == [True, True, True, False, False]
    cb.release_permission()
    assert cb.try_acquire_permission()
    assert not cb.try_acquire_permission()


def test_half_open_closes_when_probes_succeed(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock)
    trip(cb)
    fake_clock.advance(31.0)
    for _ in range(3):
        assert cb.try_acquire_permission()
    cb.on_success(0.1)
    cb.on_error(0.1)
    assert cb.state is HALF_OPEN
    cb.on_success(0.1)  # 1 of 3 failed: 33 % < 50 %
    assert cb.state is CLOSED
    assert cb.metrics().number_of_buffered_calls == 0


def test_half_open_reopens_when_probes_fail(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock)
    trip(cb)
    fake_clock.advance(31.0)
    for _ in range(3):
        assert cb.try_acquire_permission()
    cb.on_error(0.1)
    cb.on_success(0.1)
    cb.on_error(0.1)
    assert cb.state is OPEN
    fake_clock.advance(30.0)
    assert not cb.try_acquire_permission()  # the wait restarted when it reopened


def test_half_open_judges_once_every_probe_is_recorded(fake_clock: FakeClock) -> None:
    """RESILIENCE.md: HALF_OPEN decides when its permitted probes are all recorded, even when
    ``minimumNumberOfCalls`` is smaller (resilience4j would decide after two here)."""
    cb = breaker(
        fake_clock, minimum_number_of_calls=2, permitted_number_of_calls_in_half_open_state=4
    )
    trip(cb)
    fake_clock.advance(31.0)
    for _ in range(4):
        assert cb.try_acquire_permission()
    for _ in range(3):
        cb.on_success(0.1)
        assert cb.state is HALF_OPEN
    cb.on_success(0.1)
    assert cb.state is CLOSED


def test_slow_means_strictly_greater_than_the_threshold(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock, slow_call_rate_threshold=100.0)
    for _ in range(5):
        cb.on_success(1.0)
    assert cb.state is CLOSED
    assert cb.metrics().slow_call_rate == 0.0
    cb.transition_to_closed()
    for _ in range(4):
        cb.on_success(1.001)
    assert cb.state is CLOSED
    cb.on_error(1.001)  # slow failures count as slow too
    assert cb.state is OPEN
    metrics = cb.metrics()
    assert (metrics.number_of_slow_calls, metrics.number_of_slow_failed_calls) == (5, 1)
    assert metrics.slow_call_rate == 100.0


def test_time_window_forgets_old_buckets(fake_clock: FakeClock) -> None:
    cb = breaker(
        fake_clock,
        sliding_window_type="TIME_BASED",
        sliding_window_size=10,
        minimum_number_of_calls=3,
    )
    cb.on_error(0.1)
    cb.on_error(0.1)
    fake_clock.advance(9.5)  # second 9: second 0 is still inside the 10 s window
    assert cb.metrics().number_of_buffered_calls == 2
    fake_clock.advance(0.5)  # second 10: second 0 has left the window
    assert cb.metrics().number_of_buffered_calls == 0
    cb.on_error(0.1)
    assert cb.state is CLOSED
    cb.on_error(0.1)
    cb.on_error(0.1)
    assert cb.state is OPEN


def test_time_window_uses_the_minimum_even_above_the_window_size(fake_clock: FakeClock) -> None:
    cb = breaker(
        fake_clock,
        sliding_window_type="TIME_BASED",
        sliding_window_size=2,
        minimum_number_of_calls=6,
    )
    for _ in range(5):
        cb.on_error(0.1)
    assert cb.state is CLOSED
    cb.on_error(0.1)
    assert cb.state is OPEN


def test_listeners_see_every_transition_with_its_time(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock)
    seen: list[StateTransition] = []
    cb.add_listener(seen.append)
    fake_clock.advance(5.0)
    trip(cb)
    fake_clock.advance(40.0)
    assert cb.try_acquire_permission()
    assert seen == [StateTransition(5.0, CLOSED, OPEN), StateTransition(45.0, OPEN, HALF_OPEN)]


def test_automatic_transition_is_stamped_at_its_due_time(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock, automatic_transition_from_open_to_half_open_enabled=True)
    seen: list[StateTransition] = []
    cb.add_listener(seen.append)
    trip(cb)
    fake_clock.advance(29.0)
    assert cb.state is OPEN
    fake_clock.advance(11.0)
    assert cb.state is HALF_OPEN
    assert seen[-1] == StateTransition(30.0, OPEN, HALF_OPEN)


def test_max_wait_in_half_open_reopens(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock, max_wait_duration_in_half_open_state=10.0)
    seen: list[StateTransition] = []
    cb.add_listener(seen.append)
    trip(cb)
    fake_clock.advance(31.0)
    assert cb.try_acquire_permission()
    fake_clock.advance(9.0)
    assert cb.state is HALF_OPEN
    fake_clock.advance(5.0)
    assert cb.state is OPEN
    assert seen[-1] == StateTransition(41.0, HALF_OPEN, OPEN)
    assert not cb.try_acquire_permission()  # the wait counts from 41


def test_results_arriving_while_open_are_recorded(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock)
    trip(cb)
    cb.on_success(0.1)
    assert cb.metrics().number_of_buffered_calls == 6
    assert cb.state is OPEN


def test_disabled_admits_everything_and_records_nothing(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock)
    cb.transition_to_disabled()
    for _ in range(20):
        assert cb.try_acquire_permission()
        cb.on_error(0.1)
    assert cb.state is CircuitBreakerState.DISABLED
    assert cb.metrics().number_of_buffered_calls == 0


def test_forced_open_rejects_until_released_by_hand(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock)
    cb.transition_to_forced_open()
    fake_clock.advance(1000.0)
    assert not cb.try_acquire_permission()
    assert cb.state is CircuitBreakerState.FORCED_OPEN
    assert cb.metrics().cumulative_not_permitted == 1
    cb.transition_to_closed()
    assert cb.try_acquire_permission()


def test_metrics_only_measures_but_never_opens(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock)
    cb.transition_to_metrics_only()
    for _ in range(10):
        assert cb.try_acquire_permission()
        cb.on_error(0.1)
    assert cb.state is CircuitBreakerState.METRICS_ONLY
    assert cb.metrics().failure_rate == 100.0
    with pytest.raises(ValueError):
        cb.transition_to_open()


def test_cumulative_not_permitted_survives_state_changes(fake_clock: FakeClock) -> None:
    cb = breaker(fake_clock)
    trip(cb)
    cb.try_acquire_permission()
    cb.try_acquire_permission()
    cb.transition_to_closed()
    metrics = cb.metrics()
    assert (metrics.number_of_not_permitted_calls, metrics.cumulative_not_permitted) == (0, 2)


OPS = ["acquire"] * 4 + ["release", "success", "error", "error", "advance"]
STEP = st.tuples(st.sampled_from(OPS), st.floats(0.0, 15.0), st.integers(0, 10))


@settings(max_examples=300)
@given(
    permitted=st.integers(1, 5),
    minimum=st.integers(1, 6),
    automatic=st.booleans(),
    max_wait=st.sampled_from([0.0, 7.0]),
    steps=st.lists(STEP, min_size=30, max_size=150),
)
def test_half_open_never_has_more_probes_out_than_permitted(
    permitted: int,
    minimum: int,
    automatic: bool,
    max_wait: float,
    steps: list[tuple[str, float, int]],
) -> None:
    clock = FakeClock()
    cb = breaker(
        clock,
        sliding_window_size=4,
        minimum_number_of_calls=minimum,
        permitted_number_of_calls_in_half_open_state=permitted,
        wait_duration_in_open_state=10.0,
        automatic_transition_from_open_to_half_open_enabled=automatic,
        max_wait_duration_in_half_open_state=max_wait,
    )
    episode = 0
    out: list[int] = []  # per outstanding permit: the half-open period it was granted in, or -1

    def on_transition(event: StateTransition) -> None:
        nonlocal episode
        if event.to_state is HALF_OPEN:
            episode += 1

    cb.add_listener(on_transition)
    for op, value, pick in steps:
        if op == "advance":
            clock.advance(value)
        elif op == "acquire":
            if cb.try_acquire_permission():
                out.append(episode if cb.state is HALF_OPEN else -1)
        elif out:
            granted_in = out[pick % len(out)]
            if op == "release":
                # The contract (as in resilience4j): release only a permit of this half-open
                # period; one granted earlier would hand back a probe it never took.
                if cb.state is HALF_OPEN and granted_in != episode:
                    continue
                cb.release_permission()
            elif op == "success":
                cb.on_success(value / 7.5)  # durations either side of the 1 s slow threshold
            else:
                cb.on_error(value / 7.5)
            out.remove(granted_in)
        if cb.state is HALF_OPEN:
            assert out.count(episode) <= permitted
