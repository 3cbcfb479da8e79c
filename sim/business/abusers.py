"""The abusive side of a simulated business: enumerators walking the numbering plan, quota
farmers spreading one demand over several free applications, and thieves using a normal
application's stolen key. Each writes its case into the ground truth the scoring judges the
analytics against; the calls themselves are drawn by :mod:`sim.business.traffic`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from operators.policies import window_bounds, window_index
from sim.business.applications import (
    DAY,
    HOUR,
    NUMBERS,
    Application,
    Developer,
    Enumeration,
    Process,
    Theft,
    weekly_cycle,
)
from sim.business.truth import AbuseCase

if TYPE_CHECKING:
    from sim.business.population import Population

__all__ = ["Abusers"]


class Abusers:
    """The abusers' SimPy processes, drawing from their population's stream (in the order the
    population asks, so a seed gives the same run)."""

    def __init__(self, population: Population) -> None:
        self.population = population

    def enumerate(self, dev: Developer, app: Application, token_delay: float) -> Process:
        """After ``after_days`` of traffic, walk the numbering plan from ``app``'s key."""
        population = self.population
        spec = population.scenario.abuse.enumeration
        yield population.env.timeout(token_delay + population.uniform(spec.after_days) * DAY)
        end = min(
            population.scenario.seconds,
            population.env.now + population.uniform(spec.duration_hours) * HOUR,
        )
        if end - population.env.now < HOUR:
            return
        app.enumeration = Enumeration(
            population.env.now,
            end,
            population.uniform(spec.subscribers_per_hour),
            spec.not_found_share,
        )
        app.abusive = True
        population.truth.abuse.append(
            AbuseCase(
                "enumeration",
                app.client_id,
                dev.developer_id,
                (app.client_id,),
                population.epoch + population.env.now,
                population.epoch + end,
            )
        )

    def farm(self, dev: Developer) -> Process:
        """Several applications within hours, each filled to the plan's quota every day."""
        population = self.population
        spec = population.scenario.abuse.quota_farming
        plan = population.scenario.plan(spec.plan)
        quota = plan.quota
        assert quota is not None
        start, end = window_bounds(
            quota.period, window_index(quota.period, population.epoch + population.env.now)
        )
        per_day = quota.limit * DAY / (end - start)
        low, high = spec.applications
        count = int(population.rng.integers(low, high + 1))
        days = population.uniform(spec.days)
        api = population.choose_api()
        made: list[Application] = []
        second: float | None = None
        offsets = sorted(
            float(population.rng.uniform(0, spec.within_hours * HOUR)) for _ in range(count)
        )
        truth = population.truth.developers[dev.developer_id]
        truth.integration_delay = offsets[0]
        elapsed = 0.0
        for position, offset in enumerate(offsets):
            yield population.env.timeout(offset - elapsed)
            elapsed = offset
            app = population.new_application(dev, spec.plan, [api])
            app.farming_per_day = per_day * population.uniform(spec.fill)
            app.abusive = True
            made.append(app)
            population.first_token(dev, app)
            population.start_api(dev, app, app.subscriptions[0])
            app.ramp_seconds = 0
            if position == 1:
                second = population.env.now
        start = second if second is not None else population.env.now
        end = min(population.scenario.seconds, start + days * DAY)
        for app in made:
            app.farming_until = end
        population.truth.abuse.append(
            AbuseCase(
                "quota_farming",
                dev.developer_id,
                dev.developer_id,
                tuple(a.client_id for a in made),
                population.epoch + start,
                population.epoch + end,
            )
        )
        yield population.env.timeout(max(0.0, end - population.env.now))
        for app in made:
            population.stop(app)

    def thefts(self) -> Process:
        """Steal the keys of normal applications with enough history, at drawn days."""
        population = self.population
        spec = population.scenario.abuse.credential_theft
        horizon = population.scenario.seconds
        times = sorted(population.uniform(spec.at_day) * DAY for _ in range(spec.count))
        for at in times:
            duration = population.uniform(spec.duration_hours) * HOUR
            at = min(at, horizon - duration - HOUR)
            if at < population.env.now:
                population.thefts_skipped += 1
                continue
            yield population.env.timeout(at - population.env.now)
            self._steal(duration)

    def _steal(self, duration: float) -> None:
        population = self.population
        spec = population.scenario.abuse.credential_theft
        now = population.env.now
        eligible = [
            app
            for app in population.live
            if not app.abusive
            and app.churn_since is None
            and app.ramp_from is not None
            and now - app.ramp_from >= spec.min_age_days * DAY
        ]
        if not eligible:
            population.thefts_skipped += 1
            return
        app = eligible[int(population.rng.integers(len(eligible)))]
        odd = population.rng.random() < spec.odd_hours_share
        peak = (population.scenario.traffic.diurnal.peak_hour + 12) % 24
        cycle = (
            weekly_cycle(population.scenario.traffic.diurnal, peak)
            if odd
            else tuple(1.0 for _ in range(168))
        )
        usual = app.rate * app.level(now)
        rate = max(spec.min_calls_per_hour, usual * population.uniform(spec.volume_factor))
        source = population.new_source("elsewhere")
        first = int(population.rng.integers(len(NUMBERS) - spec.targets + 1))
        app.theft = Theft(
            source=source,
            start=now,
            end=now + duration,
            rate=rate,
            cycle=cycle,
            targets=NUMBERS[first : first + spec.targets],
            error_share=spec.error_share,
        )
        app.abusive = True
        population.truth.abuse.append(
            AbuseCase(
                "credential_theft",
                app.client_id,
                app.developer_id,
                (app.client_id,),
                population.epoch + now,
                population.epoch + now + duration,
            )
        )
