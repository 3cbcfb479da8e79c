"""Run a business scenario and score what the analytics saw against what really happened."""

from __future__ import annotations

from collections.abc import Callable

from operators.analytics import Alert, FunnelStep, Score
from sim.business.applications import DAY
from sim.business.population import Population
from sim.business.results import BusinessResult, CaseRow, metrics_of
from sim.business.revenue import revenue
from sim.business.scenario import BusinessScenario
from sim.business.scoring import (
    Flag,
    churn_score,
    confusion,
    detections,
    funnel_score,
    integration_truth,
    score_kinds,
    sweep,
)
from sim.business.world import BusinessWorld
from sim.results import Verdict

__all__ = ["flags_of_alerts", "flags_of_scores", "result_of", "run_business"]


def flags_of_alerts(alerts: tuple[Alert, ...]) -> list[Flag]:
    return [Flag(a.kind, a.client_id, a.developer_id, a.raised_at, a.score) for a in alerts]


def flags_of_scores(
    scores: tuple[Score, ...], owners: dict[str, str], bucket_seconds: float
) -> list[Flag]:
    """Recorded scores as flags raised at their bucket's end (a day for quota farming)."""
    return [
        Flag(
            s.kind,
            s.client_id,
            owners.get(s.client_id, ""),
            s.bucket_start + (DAY if s.kind == "quota_farming" else bucket_seconds),
            s.score,
        )
        for s in scores
    ]


def _population(population: Population) -> dict[str, int]:
    truth = population.truth
    developers = truth.developers.values()
    return {
        "developers": len(truth.developers),
        "applications": len(population.applications),
        "integrated": sum(1 for d in developers if d.first_token is not None),
        "churn_started": sum(1 for d in developers if d.churn_started is not None),
        "churned": sum(1 for d in developers if d.churned is not None),
        "live_at_end": len(population.live),
        "thefts_skipped": population.thefts_skipped,
        **{
            f"cases.{kind}": len(truth.cases(kind))
            for kind in sorted({c.kind for c in truth.abuse})
        },
    }


def result_of(world: BusinessWorld) -> BusinessResult:
    """Score a finished world: detectors, sweep, funnel, cohorts, segments, churn, revenue."""
    scenario = world.scenario
    analytics = world.analytics
    population = world.population
    truth = population.truth
    now = world.now
    owners = {c: a.developer_id for c, a in population.applications.items()}
    orgs = {c: a.org_id for c, a in population.applications.items()}
    alerts = tuple(analytics.alerts)
    flags = flags_of_alerts(alerts)
    kinds = score_kinds(flags, truth, owners)
    settings = analytics.settings
    scored = flags_of_scores(tuple(analytics.scores), owners, settings.detectors.bucket_seconds)
    window = settings.funnel_window
    api = scenario.analytics.funnel_api
    report = analytics.funnel(
        [FunnelStep("signed_up"), FunnelStep("first_token"), FunnelStep("first_success", api)],
        window=window,
        now=now,
    )
    funnel = funnel_score(
        truth,
        api=api,
        window=window,
        now=now,
        entered=report.steps[0].entered,
        conversion=report.steps[-1].overall,
        token_conversion=report.steps[1].overall,
    )
    segments = analytics.segments(now=now)
    churn = churn_score(
        (e.developer_id for e in segments.churn_risk),
        truth,
        now=now,
        churn_weeks=settings.churn_weeks,
    )
    abusive = truth.abusive_clients()
    called = [c for c, a in population.applications.items() if a.ramp_from is not None]
    normal = [c for c in called if c not in abusive]
    alerted = {a.client_id for a in alerts}
    false_alarms = (sum(1 for c in normal if c in alerted), len(normal))
    metrics = metrics_of(kinds, funnel, churn, false_alarms)
    caught = detections(flags, truth, owners)
    cases = [
        CaseRow(
            case.kind,
            case.entity,
            case.developer_id,
            (case.start - scenario.epoch) / DAY,
            (case.end - scenario.epoch) / DAY,
            None if (at := caught[case.kind, case.entity]) is None else (at - case.start) / 3600,
        )
        for case in truth.abuse
    ]
    verdicts = [
        Verdict(e.label, e.metric, metrics.get(e.metric), e.min, e.max)
        for e in scenario.expectations
    ]
    return BusinessResult(
        scenario=scenario,
        days=world.days,
        truth=truth,
        alerts=alerts,
        scores_kept=len(scored),
        scores_dropped=getattr(analytics, "scores_dropped", 0),
        kinds=kinds,
        cases=cases,
        confusion=confusion(flags, truth, owners, called),
        sweep=sweep(scored, truth, owners, scenario.sweep.thresholds),
        funnel=report,
        funnel_score=funnel,
        integration=integration_truth(truth, window=window),
        cohorts=analytics.cohorts(now=now, weeks=min(12, max(1, int(scenario.days // 7)))),
        segments=segments,
        churn=churn,
        revenue=revenue(population.closed, orgs),
        population=_population(population),
        false_alarms=false_alarms,
        metrics=metrics,
        verdicts=verdicts,
    )


def run_business(
    scenario: BusinessScenario, on_day: Callable[[int], None] | None = None
) -> BusinessResult:
    """Simulate ``scenario`` to its end and score it."""
    world = BusinessWorld(scenario)
    world.run(on_day)
    return result_of(world)
