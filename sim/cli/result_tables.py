"""How ``ogsim run`` shows a run: tables of totals, Little's law, settlement, revenue and
verdicts."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sim.replications import VariantSummary
from sim.results import RunResult
from sim.revenue import revenue, revenue_totals

__all__ = ["print_result", "print_summary"]


def _total_text(value: float | None) -> str:
    """A total as the table shows it: "—" for an undefined ratio (nothing to divide by)."""
    if value is None:
        return "—"
    return f"{value:,.4g}" if isinstance(value, float) else f"{value:,}"


def print_result(console: Console, result: RunResult, wall: float) -> None:
    """One variant's run: totals, Little's law per station, settlement, expectations."""
    scenario = result.scenario
    totals = result.totals()
    table = Table(title=f"{scenario.name} / {scenario.variant}: {scenario.description}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in totals.items():
        table.add_row(key, _total_text(value))
    rate = result.calls / wall if wall > 0 else 0.0
    table.add_row("wall time (s)", f"{wall:.2f}")
    table.add_row("simulated operations / wall s", f"{rate:,.0f}")
    console.print(table)
    little = result.little
    verdict = "[green]holds[/green]" if little.holds else "[red]does not hold[/red]"
    console.print(
        f"Little's law (client operations): L = {little.mean_in_system:.4g}, "
        f"λW = {little.arrival_rate:.4g} * {little.mean_time_in_system:.4g} = "
        f"{little.product:.4g}, error {little.relative_error:.2%}: {verdict}"
    )
    for station in result.stations:
        console.print(
            f"  at {station.name}: L = {station.mean_in_system:.4g}, "
            f"λW = {station.throughput * station.mean_sojourn:.4g} "
            f"(error {station.relative_error:.2%}"
            + (", still filling: not stationary)" if station.relative_error > 0.05 else ")")
        )
    from sim.report import settlement  # with the report, matplotlib is loaded already

    records = settlement(result)
    if records:
        ledger = Table(title="settlement records per operator pair")
        for column in ("kind", "from", "to", "application"):
            ledger.add_column(column)
        ledger.add_column("billable calls", justify="right")
        ledger.add_column("operations", justify="right")
        for r in records:
            ledger.add_row(
                r["kind"],
                r["from"],
                r["to"],
                r["application"],
                f"{r['billable_calls']:,}",
                f"{r['operations']:,}",
            )
        console.print(ledger)
    earned = revenue_totals(revenue(result))
    if earned:
        money = Table(title="revenue per operator and API (the operators' rating)")
        for column in ("operator", "API"):
            money.add_column(column)
        money.add_column("billable calls", justify="right")
        money.add_column("revenue", justify="right")
        for r in earned:
            money.add_row(
                r["operator"], r["api"], f"{r['billable_calls']:,}", f"{r['total']} {r['currency']}"
            )
        console.print(money)
    for wave in result.consent_waves:
        counts = result.consent[wave["operator"]]
        console.print(
            f"consent revocation {wave['name']!r} on {wave['operator']}: {wave['lines']} lines "
            f"at {wave['at']:g} s, replication lag {wave['replication_lag']:g} s; successes "
            f"within the lag {counts['successes_within_lag']}, after it "
            f"{counts['successes_after_lag']}, refused {counts['refused']}"
        )
    checks = Table(title="expectations")
    checks.add_column("expectation")
    checks.add_column("value", justify="right")
    checks.add_column("bound", justify="right")
    checks.add_column("result")
    for v in result.verdicts:
        bound = " ".join(
            part
            for part in (
                f"≥ {v.min:g}" if v.min is not None else "",
                f"≤ {v.max:g}" if v.max is not None else "",
            )
            if part
        )
        shown = "—" if v.value is None else f"{v.value:.4g}"
        checks.add_row(
            v.label, shown, bound, "[green]PASS[/green]" if v.passed else "[red]FAIL[/red]"
        )
    console.print(checks)
    for v in result.verdicts:
        if v.note is not None:
            console.print(
                f"note: {v.label}: {v.note}",
                style="yellow",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )


def _interval_text(low: float, high: float, n: int) -> str:
    if n < 2:
        return "(one value)"
    return f"[{low:.4g}, {high:.4g}]" if high != float("inf") else f"[{low:.4g}, ∞)"


def print_summary(console: Console, s: VariantSummary) -> None:
    """One variant over replications: means, intervals, expectations judged on them."""
    table = Table(title=f"{s.variant}: {len(s.seeds)} replications, mean and 95 % interval")
    table.add_column("measure")
    table.add_column("mean", justify="right")
    table.add_column("95 % interval", justify="right")
    for key, iv in s.metrics.items():
        if iv is None:
            table.add_row(key, "—", "—")
        else:
            table.add_row(key, f"{iv.mean:,.4g}", _interval_text(iv.low, iv.high, iv.n))
    console.print(table)
    checks = Table(title="expectations, judged on the 95 % interval")
    checks.add_column("expectation")
    checks.add_column("mean", justify="right")
    checks.add_column("95 % interval", justify="right")
    checks.add_column("n", justify="right")
    checks.add_column("bound", justify="right")
    checks.add_column("result")
    colour = {"pass": "green", "fail": "red", "undecided": "yellow"}
    for v in s.verdicts:
        iv = v.interval
        bound = " ".join(
            part
            for part in (
                f"≥ {v.min:g}" if v.min is not None else "",
                f"≤ {v.max:g}" if v.max is not None else "",
            )
            if part
        )
        checks.add_row(
            v.label,
            "—" if iv is None else f"{iv.mean:.4g}",
            "—" if iv is None else _interval_text(iv.low, iv.high, iv.n),
            # replications with a value of those run: one without fails the expectation
            f"{0 if iv is None else iv.n}/{v.runs}",
            bound,
            f"[{colour[v.outcome]}]{v.outcome.upper()}[/{colour[v.outcome]}]",
        )
    console.print(checks)
