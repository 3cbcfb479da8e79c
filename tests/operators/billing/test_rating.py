"""Rating against the plan in force at each call: proration to the second across a mid-month
change, tiers counted per plan and month (afresh for a new plan, continued on a return), drafts,
and every event in exactly one line."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import pytest

from operators.billing import (
    ChargeKind,
    LineItem,
    Month,
    rate_counted,
    rate_month,
    rate_subscription,
)
from operators.config import Plan, PriceTier
from operators.gateway.subscriptions import InMemoryPlans

from .support import DAY, MARCH, FakeClock, event, priced_operator


def _store(at: float = MARCH.start) -> tuple[InMemoryPlans, FakeClock]:
    clock = FakeClock(at)
    return InMemoryPlans.of(priced_operator(), clock=clock), clock


def test_a_mid_month_upgrade_is_prorated_to_the_second_and_calls_priced_as_made() -> None:
    plans, clock = _store()
    clock.now = MARCH.start - DAY  # enterprise since February: 2000.00 a month, 0.004 a call
    plans.subscribe("app", "sim-swap", "enterprise")
    change = MARCH.start + 15.5 * DAY  # 16 March 12:00:00, half of March's 2,678,400 s
    clock.now = change
    plans.subscribe("app", "sim-swap", "free")
    events = [
        event("app", "before-1", MARCH.start + 1),
        event("app", "before-2", change - 0.001),
        event("app", "after-1", change),  # the next call is on the new plan
        event("app", "february", MARCH.start - 1),  # another month: not on this invoice
    ]
    lines = rate_subscription("app", "sim-swap", events, plans.history("app", "sim-swap"), MARCH)
    fee, calls_enterprise, calls_free = lines
    assert (fee.kind, fee.plan, fee.quantity, fee.amount) == (
        ChargeKind.MONTHLY_FEE,
        "enterprise",
        1_339_200,
        Decimal("1000.00"),
    )
    assert (calls_enterprise.plan, calls_enterprise.amount) == ("enterprise", Decimal("0.01"))
    assert calls_enterprise.events == (("app", "before-1"), ("app", "before-2"))
    assert (calls_free.plan, calls_free.amount, calls_free.events) == (
        "free",
        Decimal("0.00"),
        (("app", "after-1"),),
    )


def test_proration_counts_whole_seconds_and_rounds_half_to_even() -> None:
    plans, clock = _store()
    clock.now = MARCH.start + 0.9  # counted from the whole second it falls in
    plans.subscribe("app", "sim-swap", "growth")  # 31.00 a month: 1.00 a day
    clock.now = MARCH.start + 2.5 * DAY + 0.4
    plans.subscribe("app", "sim-swap", "free")
    (fee,) = rate_subscription("app", "sim-swap", [], plans.history("app", "sim-swap"), MARCH)
    assert (fee.quantity, fee.amount) == (216_000, Decimal("2.50"))
    # 0.05 held half of March is 0.025, a tie: half to even gives 0.02, not 0.03
    free = priced_operator().plan("free")
    assert free is not None
    tie = Plan.model_validate({**free.model_dump(), "name": "tie", "monthly_fee": 0.05})
    (halves,) = rate_counted(
        "app", "sim-swap", tie, 0, MARCH.start, MARCH.start + MARCH.seconds / 2
    )
    assert halves.amount == Decimal("0.02")


def test_tiers_start_again_with_a_change_to_another_plan() -> None:
    plans, clock = _store()
    clock.now = MARCH.start
    plans.subscribe("app", "sim-swap", "growth")  # graduated: 1-5 at 0.10 + 1.00, then 0.05
    clock.now = MARCH.start + 10 * DAY
    plans.subscribe("app", "sim-swap", "bulk")  # the same bands in volume mode
    early = [event("app", f"e{i}", MARCH.start + 100 + i) for i in range(7)]
    late = [event("app", f"l{i}", MARCH.start + 11 * DAY + i) for i in range(3)]
    lines = rate_subscription(
        "app", "sim-swap", early + late, plans.history("app", "sim-swap"), MARCH
    )
    calls = [line for line in lines if line.kind is ChargeKind.CALLS]
    assert [(c.plan, c.tier, c.quantity, c.amount) for c in calls] == [
        ("growth", 1, 5, Decimal("1.50")),  # 5 x 0.10 + 1.00
        ("growth", 2, 2, Decimal("0.10")),
        ("bulk", 1, 3, Decimal("1.30")),  # counting again from one: 3 x 0.10 + 1.00
    ]
    assert calls[1].events == (("app", "e5"), ("app", "e6"))


def _calls_total(lines: list[LineItem]) -> Decimal:
    return sum((x.amount for x in lines if x.kind is ChargeKind.CALLS), Decimal(0))


def test_leaving_a_plan_for_a_second_and_back_does_not_restart_its_bands() -> None:
    """The reviewer's case: 'starter' (first 100 calls free, then 0.05) bills 1000 calls at
    45.00 held all month; left for one second every 100 calls it billed 0.00, each return
    filling the free band again. A return continues the plan's count instead."""
    starter = Plan(
        name="starter",
        rate_per_second=50,
        burst=100,
        tiers=(
            PriceTier(up_to=100, unit_price=Decimal(0)),
            PriceTier(up_to=None, unit_price=Decimal("0.05")),
        ),
    )
    config = priced_operator()

    def bill(toggle: bool) -> list[LineItem]:
        clock = FakeClock(MARCH.start)
        plans = InMemoryPlans((*config.plans, starter), config.default_plan, clock)
        plans.subscribe("app", "sim-swap", "starter")
        events = []
        for i in range(1000):
            at = MARCH.start + 60 + i * 60
            if toggle and i and i % 100 == 0:  # every 100 calls: away for one second
                clock.now = at - 2
                plans.subscribe("app", "sim-swap", "pay-as-you-go")
                clock.now = at - 1
                plans.subscribe("app", "sim-swap", "starter")
            events.append(event("app", f"c{i}", at))
        return rate_month(events, plans.history, MARCH, subscribed=plans.held())

    held, toggled = bill(False), bill(True)
    assert _calls_total(held) == _calls_total(toggled) == Decimal("45.00")
    free = [x for x in toggled if x.kind is ChargeKind.CALLS and x.tier == 1]
    assert [x.quantity for x in free] == [100]  # the free band once, in the first period
    assert {x.tier for x in toggled if x.kind is ChargeKind.CALLS and x.plan == "starter"} == {
        1,
        2,
    }


@pytest.mark.parametrize("name", ["growth", "bulk"])
def test_a_plan_returned_to_costs_what_holding_it_all_month_costs(name: str) -> None:
    """Graduated or volume, flat fees included: a band's flat fee is charged once, however
    often the plan is left and taken back, and each call is still in exactly one line."""

    def bill(toggle: bool) -> list[LineItem]:
        plans, clock = _store(MARCH.start)
        plans.subscribe("app", "sim-swap", name)
        events = []
        for i in range(12):
            at = MARCH.start + DAY * (i + 1)
            if toggle and i % 2 == 0:
                clock.now = at - 2
                plans.subscribe("app", "sim-swap", "free")
                clock.now = at - 1
                plans.subscribe("app", "sim-swap", name)
            events.append(event("app", f"c{i}", at))
        return rate_month(events, plans.history, MARCH, subscribed=plans.held())

    held, toggled = bill(False), bill(True)
    # growth: 5 x 0.10 + 1.00 + 7 x 0.05 = 1.85; bulk: 12 calls land in band 2, 12 x 0.05
    assert (
        _calls_total(held)
        == _calls_total(toggled)
        == Decimal("1.85" if name == "growth" else "0.60")
    )
    assert sum(x.flat_fee for x in toggled) == sum(x.flat_fee for x in held)
    covered = Counter(e for x in toggled for e in x.events)
    assert set(covered) == {("app", f"c{i}") for i in range(12)} and set(covered.values()) == {1}


def test_a_different_plan_starts_at_zero_and_a_return_continues_where_it_left_off() -> None:
    plans, clock = _store()
    plans.subscribe("app", "sim-swap", "growth")  # graduated: 1-5 at 0.10 + 1.00, then 0.05
    clock.now = MARCH.start + 10 * DAY
    plans.subscribe("app", "sim-swap", "bulk")  # the same bands in volume mode
    clock.now = MARCH.start + 20 * DAY
    plans.subscribe("app", "sim-swap", "growth")  # back: its count goes on from 3
    first = [event("app", f"a{i}", MARCH.start + 100 + i) for i in range(3)]
    other = [event("app", f"b{i}", MARCH.start + 11 * DAY + i) for i in range(3)]
    back = [event("app", f"c{i}", MARCH.start + 21 * DAY + i) for i in range(4)]
    lines = rate_subscription(
        "app", "sim-swap", first + other + back, plans.history("app", "sim-swap"), MARCH
    )
    calls = [x for x in lines if x.kind is ChargeKind.CALLS]
    assert [(c.plan, c.tier, c.quantity, c.flat_fee, c.amount) for c in calls] == [
        ("growth", 1, 3, Decimal(1), Decimal("1.30")),  # calls 1-3 of growth's band 1
        ("bulk", 1, 3, Decimal(1), Decimal("1.30")),  # another plan: its own bands from one
        ("growth", 1, 2, Decimal(0), Decimal("0.20")),  # calls 4-5: band 1's fee already paid
        ("growth", 2, 2, Decimal(0), Decimal("0.10")),  # calls 6-7
    ]
    assert calls[2].events == (("app", "c0"), ("app", "c1"))
    assert (calls[3].tier_first, calls[3].tier_last) == (6, None)


def test_a_new_month_starts_the_bands_at_zero() -> None:
    february = Month(2025, 2)
    plans, clock = _store(february.start)
    plans.subscribe("app", "sim-swap", "growth")
    feb_calls = [event("app", f"f{i}", february.start + DAY + i) for i in range(7)]
    clock.now = MARCH.start + DAY  # away and back early in March
    plans.subscribe("app", "sim-swap", "free")
    clock.now = MARCH.start + DAY + 1
    plans.subscribe("app", "sim-swap", "growth")
    march_calls = [event("app", f"m{i}", MARCH.start + (i + 1) * 2 * DAY) for i in range(3)]
    events = feb_calls + march_calls
    in_feb = rate_month(events, plans.history, february, subscribed=plans.held())
    in_march = rate_month(events, plans.history, MARCH, subscribed=plans.held())
    assert [(x.tier, x.quantity) for x in in_feb if x.kind is ChargeKind.CALLS] == [(1, 5), (2, 2)]
    assert [(x.tier, x.quantity, x.amount) for x in in_march if x.kind is ChargeKind.CALLS] == [
        (1, 3, Decimal("1.30"))  # February's 7 calls do not count: band 1 again, its fee too
    ]


def test_a_draft_covers_the_month_to_date() -> None:
    plans, _ = _store()
    plans.subscribe("app", "sim-swap", "enterprise")
    now = MARCH.start + 3.1 * DAY
    (fee,) = rate_month([], plans.history, MARCH, subscribed=plans.held(), until=now)
    assert fee.quantity == int(3.1 * DAY)
    assert fee.period_end == now


def test_every_billed_call_is_in_exactly_one_line() -> None:
    rng = random.Random(13)
    plans, clock = _store(MARCH.start - DAY)
    apps, apis = ("a", "b", "c"), ("sim-swap", "kyc-match")
    names = ("free", "pay-as-you-go", "enterprise", "growth", "bulk")
    for _ in range(12):  # plan changes through the month, each at some instant
        clock.now = MARCH.start + rng.uniform(0, MARCH.seconds)
        plans.subscribe(rng.choice(apps), rng.choice(apis), rng.choice(names))
    events = [
        event(rng.choice(apps), f"c{i}", rng.uniform(MARCH.start - DAY, MARCH.end + DAY),
              rng.choice(apis))
        for i in range(600)
    ]  # fmt: skip
    lines = rate_month(events, plans.history, MARCH, subscribed=plans.held())
    covered = Counter(event_id for line in lines for event_id in line.events)
    in_march = {(e.client_id, e.correlator) for e in events if MARCH.holds(e.at)}
    assert set(covered) == in_march and set(covered.values()) == {1}
    for line in lines:  # and each line holds only calls made under its plan, in its period
        for client_id, correlator in line.events:
            found = next(e for e in events if e.correlator == correlator)
            assert (found.client_id, found.api) == (client_id, line.api)
            assert line.period_start <= found.at < line.period_end
            (period,) = [p for p in plans.history(client_id, line.api) if p.covers(found.at)]
            assert period.plan.name == line.plan


def test_another_subscriptions_event_is_refused() -> None:
    with pytest.raises(ValueError, match="kyc-match"):
        rate_subscription("app", "sim-swap", [event("app", "x", 0.0, "kyc-match")], [], MARCH)


def test_counted_calls_price_like_their_events() -> None:
    plans, _ = _store(MARCH.start)
    plans.subscribe("app", "sim-swap", "growth")
    events = [event("app", f"c{i}", MARCH.start + 60 * i) for i in range(9)]
    end = MARCH.start + DAY
    by_events = rate_subscription(
        "app", "sim-swap", events, plans.history("app", "sim-swap"), MARCH, until=end
    )
    growth = plans.plan_for("app", "sim-swap")
    by_count = rate_counted("app", "sim-swap", growth, 9, MARCH.start, end)
    assert [(x.kind, x.tier, x.quantity, x.amount) for x in by_events] == [
        (x.kind, x.tier, x.quantity, x.amount) for x in by_count
    ]
    assert Month.of(by_count[0].period_start) == MARCH


@pytest.mark.parametrize("before_end", [2.4e-7, 4.9e-7, 1e-6, 1e-3, 1.0])
def test_the_month_of_an_instant_holds_it_up_to_its_last_microsecond(before_end: float) -> None:
    """``datetime`` rounds to the microsecond: within half of one of a month's end it named
    the next month, one that does not hold the instant (an invoice, a rating period, a
    'has not begun' refusal picked the wrong month there)."""
    for month in (Month(2025, 3), Month(2024, 2), Month(2026, 12)):
        at = month.end - before_end
        assert Month.of(at) == month and Month.of(at).holds(at)
        assert Month.of(month.end) == month.next() and Month.of(month.start) == month
