"""The QA commands: ``conformance``, ``loadtest`` and ``reconcile``, black boxes of live gateways.

``conformance`` runs CAMARA's own ``.feature`` scenarios (:mod:`loadtests.conformance`)
against ogsim's operator in process, or against any CAMARA implementation with ``--base-url
URL --token-command CMD``: CMD is run once per distinct token need and prints an access token
(``ogsim token`` is such a command); the need arrives as ``OGSIM_TOKEN_KIND``,
``OGSIM_SCOPE``, ``OGSIM_PHONE_NUMBER``, ``OGSIM_CLIENT`` and ``OGSIM_EXPIRED``. Test data
comes from ``OGSIM_TEST_NUMBERS`` (JSON, role → number) or, with ``--admin-secret`` (or
``OGSIM_ADMIN_SECRET``), from an ogsim operator's admin API, which also enables faults. An
unknown ``--api``, a ``--base-url`` that does not answer and a token command that never gives
a token exit 2; a run in which no scenario passed exits 1, as one in which any failed does.

``loadtest`` runs the installed ``loadtests/locustfile.py`` headless (:mod:`loadtests.locust_run`)
against a federation it starts (or one already up, ``--descriptor``), writes Locust's reports
to ``--out``, prints a summary, reconciles the exact counts with metering and settlement, and
exits 1 when a threshold (``--max-failure-ratio``, ``--max-p95``) is broken or the counts
differ. Its flags (the user classes too, against ``locust --list``) are checked before a
federation starts, and an earlier run's results in ``--out`` are removed before Locust starts;
a run that ends abnormally, writes no summary or makes no call exits 2, never read as a
success. Flags Locust has keep Locust's names (``--users``, ``--spawn-rate``,
``--run-time``, ``--stop-timeout``). ``reconcile`` repeats the reconciliation of a run: Locust's
counts against metering and settlement, and for each month of the run the aggregator's
settlement statement of every operator pair against that operator's own statement (calls and
amounts per API, correlator by correlator); it exits 1 when anything differs.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import os
import subprocess
import sys
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.table import Table

from federation import PartyStartError
from loadtests import (
    LOCUSTFILE,
    DescriptorError,
    RunFileError,
    camara_dir,
    federation_for_run,
    in_process_target,
    load_descriptor,
    read_summary,
    reconcile_run,
    render,
    run_locust,
    seconds,
    thresholds,
)
from loadtests.conformance import (
    AdminEnvironment,
    CommandTokens,
    ConformanceReport,
    ScenarioResult,
    Target,
    available_apis,
    run_conformance,
)
from sim.cli.options import (
    DEFAULT_ADMIN_SECRET,
    AdminSecretOption,
    ResultsAlias,
    out_or_alias,
    refuse_unwritable,
)

__all__ = ["app", "conformance", "loadtest", "reconcile", "run_conformance_command"]

PANEL = "QA (black box of a live gateway)"

console = Console()


async def run_conformance_command(
    folder: Path,
    apis: list[str] | None = None,
    base_url: str | None = None,
    token_command: str | None = None,
    admin_secret: str | None = None,
    echo: bool = False,
) -> ConformanceReport:
    """Run the scenarios in process (no ``base_url``) or against ``base_url``."""

    def show(result: ScenarioResult) -> None:
        if echo:
            colour = {"passed": "green", "skipped": "yellow", "deviates": "yellow"}.get(
                result.outcome, "red")
            line = f"[{colour}]{result.outcome:8}[/{colour}] {result.scenario.api} "
            console.print(line + result.scenario.tag, soft_wrap=True, highlight=False)

    if base_url is None:
        async with in_process_target() as target:
            return await run_conformance(target, folder, apis, on_result=show)
    if token_command is None:
        raise typer.BadParameter("--base-url needs --token-command", param_hint="--token-command")
    numbers = json.loads(os.environ.get("OGSIM_TEST_NUMBERS", "{}"))
    tokens = CommandTokens(token_command)
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as http:
        await _answers(http, base_url)
        environment = AdminEnvironment(
            http, admin_secret, numbers, os.environ.get("OGSIM_UNKNOWN_NUMBER", "+99999999999")
        )
        target = Target(http, tokens, environment)
        report = await run_conformance(target, folder, apis, on_result=show)
    if tokens.refusals and not tokens.given:  # every scenario needing one was skipped for it
        raise typer.BadParameter(
            f"the command gave no token ({len(tokens.refusals)} tries); the first refusal: "
            f"{tokens.refusals[0]}",
            param_hint="'--token-command'",
        )
    return report


async def _answers(http: httpx.AsyncClient, base_url: str) -> None:
    """Any HTTP answer at the API root will do; no answer at all is named before the run,
    whose scenarios would otherwise be skipped or errors with the cause buried in them."""
    try:
        await http.get("", timeout=10.0)
    except httpx.TransportError as error:
        raise typer.BadParameter(
            f"{base_url} does not answer ({type(error).__name__}: {error})",
            param_hint="'--base-url'",
        ) from error


def _api_root(value: str | None) -> str | None:
    """``--base-url``'s form, checked before anything runs: an http(s) URL with a host."""
    if value is None:
        return None
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        url = httpx.URL("")
    if url.scheme not in ("http", "https") or not url.host:
        raise typer.BadParameter(f"{value!r} is not an http(s) URL, e.g. http://127.0.0.1:8000")
    return value


def _refuse_unknown_apis(folder: Path, wanted: list[str]) -> None:
    """Exit 2 naming each ``--api`` with no scenarios in ``folder``, and the known ones: such a
    name selects nothing, and the run would report zero of everything."""
    known = available_apis(folder)
    unknown = [name for name in wanted if name not in known]
    if unknown:
        console.print(
            f"--api: no CAMARA scenarios for {', '.join(map(repr, unknown))} in {folder}; "
            f"known: {', '.join(known) or 'none'}",
            style="red", markup=False, highlight=False, soft_wrap=True,
        )
        raise typer.Exit(2)


def _nothing_passed(report: ConformanceReport) -> None:
    """Say why a run in which no scenario passed is not a success (the commonest skip)."""
    reasons = Counter(r.reason.splitlines()[0] for r in report.results if r.reason)
    console.print("no scenario passed: nothing was shown to conform", style="red",
                  markup=False, highlight=False)
    if reasons:
        reason, times = reasons.most_common(1)[0]
        console.print(f"most common reason ({times} of {len(report.results)}): {reason}",
                      markup=False, highlight=False, soft_wrap=True)


def conformance(
    base_url: Annotated[
        str | None,
        typer.Option(
            help="API root of another CAMARA implementation (default: in process)",
            callback=_api_root,
        ),
    ] = None,
    token_command: Annotated[
        str | None,
        typer.Option(help="shell command printing an access token, e.g. ogsim token ..."),
    ] = None,
    admin_secret: Annotated[
        str | None,
        typer.Option(
            envvar="OGSIM_ADMIN_SECRET", help="admin credential of an ogsim operator at --base-url"
        ),
    ] = None,
    camara_dir_option: Annotated[
        Path | None,
        typer.Option(
            "--camara-dir", help="CAMARA YAML + .feature folder (default: $OGSIM_CAMARA_DIR)"
        ),
    ] = None,
    api: Annotated[
        list[str] | None,
        typer.Option(help="only this API (YAML name, e.g. sim-swap); repeatable"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="one line per scenario")] = False,
) -> None:
    """Run CAMARA's own acceptance scenarios and print passed / failed / skipped per API."""
    folder = camara_dir_option or camara_dir()
    if not folder.is_dir():
        console.print(f"[red]no CAMARA definitions at {folder}[/red] (set OGSIM_CAMARA_DIR)")
        raise typer.Exit(2)
    _refuse_unknown_apis(folder, api or [])
    report = asyncio.run(
        run_conformance_command(
            folder, api or None, base_url, token_command, admin_secret, echo=verbose
        )
    )
    table = Table(title="CAMARA conformance")
    for column in ("API", "run", "passed", "failed", "skipped", "contradict YAML"):
        table.add_column(column, justify="left" if column == "API" else "right")
    for name, *counts in report.per_api():
        table.add_row(name, *(str(n) for n in counts))
    console.print(table)
    for result in report.results:
        if result.outcome in {"failed", "error", "deviates"} or (
            verbose and result.outcome == "skipped"
        ):
            console.print(
                f"{result.outcome.upper()} {result.scenario.api} {result.scenario.tag}: "
                f"{result.reason.splitlines()[0] if result.reason else ''}",
                soft_wrap=True,
                highlight=False,
                markup=False,
            )
    if not report.passed:
        _nothing_passed(report)
    typer.echo(report.summary())
    if report.failed or not report.passed:
        raise typer.Exit(1)


def _print_summary(results: Path, summary: dict[str, Any]) -> None:
    """Locust's per-request table (when its CSV is readable) and the served calls' line."""
    table = Table(title="Locust (per request type and name)")
    for column in ("type", "name", "requests", "failures", "p50 ms", "p95 ms", "req/s"):
        table.add_column(column, justify="left" if column in ("type", "name") else "right")
    try:
        with (results / "locust_stats.csv").open() as handle:
            for row in csv.DictReader(handle):
                table.add_row(
                    row["Type"],
                    row["Name"],
                    row["Request Count"],
                    row["Failure Count"],
                    row["50%"],
                    row["95%"],
                    f"{float(row['Requests/s']):.1f}",
                )
    except (OSError, KeyError, ValueError) as error:  # the summary below still stands
        console.print(f"no per-request table: {error}", markup=False, highlight=False)
    else:
        console.print(table)
    served = summary["served"]
    console.print(
        f"served calls: {served['requests']} ({served['rps']:.1f}/s), real failures "
        f"{served['failures']} ({served['failureRatio']:.2%}), p95 {served['p95']:.0f} ms; "
        f"throttled (429) {summary['throttled']}, protective 503 {summary['protective']}"
    )


def _data_centre_failure(value: str | None) -> str | None:
    """``--fail-data-centre``'s form, checked before anything starts."""
    if value is None:
        return None
    target, at, after = value.partition("@")
    operator, slash, centre = target.partition("/")
    try:
        wait = float(after) if at else 0.0
    except ValueError:
        wait = -1.0
    if not (operator and slash and centre) or not (0 <= wait < math.inf):
        raise typer.BadParameter(
            f"{value!r} is not OPERATOR/DC@SECONDS, e.g. telco-es/madrid@10",
            param_hint="'--fail-data-centre'",
        )
    return value


def _no_such_data_centre(descriptor: Path, spec: str) -> str | None:
    """Why the federation described has no data centre ``spec`` names, or None."""
    operator_id, _, centre = spec.partition("@")[0].partition("/")
    try:
        operator = load_descriptor(descriptor).operator(operator_id)
    except KeyError:
        return f"the federation has no operator {operator_id!r}"
    if centre not in operator.data_centres:
        known = ", ".join(operator.data_centres) or "none"
        return f"{operator_id} has no data centre {centre!r} (it has {known})"
    return None


def _reconcile(descriptor: Path, results: Path, admin_secret: str) -> bool:
    """Reconcile and print the report; a bad descriptor or a silent federation exits 2."""
    try:
        report = reconcile_run(descriptor, results, admin_secret)
    except (DescriptorError, RunFileError, FileNotFoundError) as error:  # each names its file
        console.print(str(error), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from error
    except httpx.TransportError as error:
        console.print(f"[red]the federation in {descriptor} does not answer: {error}[/red]")
        raise typer.Exit(2) from error
    print(render(report))
    if report.statements or report.statement_problems:
        agreed = sum(check.matches for check in report.statements)
        clean = agreed == len(report.statements) and not report.statement_problems
        colour = "green" if clean else "red"
        console.print(
            f"[{colour}]settlement statements: {agreed} of {len(report.statements)} operator "
            f"pair-months reconcile[/{colour}]"
        )
    return report.matches


def _time_span(text: str) -> str:
    """Checks ``--run-time`` up front, so a typo fails before a federation is started."""
    try:
        seconds(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    return text


def _grace(value: float) -> float:
    """``--stop-timeout``: finite seconds >= 0 (NaN fails both comparisons)."""
    if not 0 <= value < math.inf:
        raise typer.BadParameter(f"{value} is not a number of seconds >= 0")
    return value


def _share(value: float | None) -> float | None:
    """``--max-failure-ratio``: a share in [0, 1] (1 % is 0.01, not 1); NaN would pass every
    run, since no comparison with it is true."""
    if value is not None and not 0 <= value <= 1:
        raise typer.BadParameter(f"{value} is not a share between 0 and 1, e.g. 0.01 for 1 %")
    return value


def _milliseconds(value: float | None) -> float | None:
    """``--max-p95``: milliseconds >= 0; NaN would pass every run."""
    if value is not None and not value >= 0:
        raise typer.BadParameter(f"{value} is not a number of milliseconds >= 0")
    return value


SHAPES = ("step", "spike", "soak")
"""The load shapes the locustfile knows (``OGSIM_SHAPE``, :mod:`loadtests.shape_plans`)."""


def _shape(value: str | None) -> str | None:
    """``--shape``: one the locustfile knows, checked before a federation is started (the
    locustfile would only fail on import, inside Locust)."""
    if value is None:
        return None
    if value.strip().lower() not in SHAPES:
        raise typer.BadParameter(f"{value!r} is not a load shape: one of {', '.join(SHAPES)}")
    return value.strip().lower()


def _offered_user_classes(locustfile: Path, shape: str | None) -> list[str]:
    """The user classes ``locust --list`` finds in ``locustfile``; a locustfile Locust cannot
    load exits 2 naming ``--locustfile`` with Locust's last words (a child process: Locust
    monkey-patches the interpreter that imports it)."""
    env = {k: v for k, v in os.environ.items() if k != "OGSIM_SHAPE"}
    env |= {"OGSIM_SHAPE": shape} if shape else {}
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--list"]
    try:
        listed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        listed = subprocess.CompletedProcess(command, -1, "", "listing its users took > 120 s")
    lines = listed.stdout.splitlines()
    if listed.returncode != 0 or "Available Users:" not in lines:
        said = [line for line in listed.stderr.splitlines() if line.strip()]
        why = said[-1] if said else f"exit status {listed.returncode}"
        _refuse("--locustfile", f"Locust cannot load {locustfile}: {why}")
    return [line.strip() for line in lines[lines.index("Available Users:") + 1 :] if line.strip()]


def _check_user_classes(locustfile: Path, shape: str | None, wanted: list[str]) -> None:
    """Exit 2 unless the locustfile loads and offers users, among them every ``--user-class``
    (Locust would only log an unknown one and write no results)."""
    offered = _offered_user_classes(locustfile, shape)
    if not offered:
        _refuse("--locustfile", f"{locustfile} defines no Locust user class")
    unknown = [name for name in wanted if name not in offered]
    if unknown:
        _refuse(
            "--user-class",
            f"{locustfile} has no user class {', '.join(map(repr, unknown))}; it offers "
            f"{', '.join(offered)}",
        )


def _check_descriptor(descriptor: Path) -> None:
    """Exit 2 naming ``--descriptor`` unless it is a descriptor ``ogsim up`` wrote."""
    try:
        load_descriptor(descriptor)
    except DescriptorError as error:
        _refuse("--descriptor", str(error))


def _refuse(flag: str, problem: str) -> NoReturn:
    """Exit 2 with ``flag: problem``, as the shared options report a flag they refuse."""
    console.print(f"{flag}: {problem}", style="red", markup=False, highlight=False,
                  soft_wrap=True)
    raise typer.Exit(2)


def _last_error(folder: Path) -> str:
    """Locust's last error line in ``locust.log``, to say why a run left no results."""
    try:
        lines = (folder / "locust.log").read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line for line in lines if "ERROR" in line or line.startswith(("Error", "error"))]
    return errors[-1].strip() if errors else ""


def _run_outcome(folder: Path, returncode: int) -> dict[str, Any]:
    """This run's summary, once Locust's exit status says it ran (1 means some requests
    failed); a run that ended abnormally, wrote no summary or made no call exits 2, never
    read as a success."""
    log = folder / "locust.log"
    if returncode not in (0, 1):
        _run_failed(folder, f"Locust exited with status {returncode} (see {log})")
    try:
        summary = read_summary(folder)
    except (FileNotFoundError, ValueError) as error:
        _run_failed(folder, str(error))
    served = summary["served"]
    if not served.get("requests") and not summary.get("throttled") and not summary.get(
        "protective"
    ):
        _run_failed(folder, f"Locust made no calls: nothing was measured (see {log})")
    return summary


def _run_failed(folder: Path, problem: str) -> NoReturn:
    """Exit 2: the load test did not take place as asked; Locust's last error says why."""
    console.print(f"ogsim loadtest: {problem}", style="red", markup=False, highlight=False,
                  soft_wrap=True)
    if why := _last_error(folder):
        console.print(f"Locust said: {why}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def loadtest(
    descriptor: Annotated[
        Path | None,
        typer.Option(help="descriptor of a federation already up (default: start one)"),
    ] = None,
    users: Annotated[int, typer.Option("--users", "-u", min=1, help="peak users")] = 10,
    spawn_rate: Annotated[
        float, typer.Option("--spawn-rate", "-r", min=0.1, help="users started per second")
    ] = 5.0,
    run_time: Annotated[
        str, typer.Option("--run-time", "-t", callback=_time_span, help="e.g. 30s, 5m")
    ] = "30s",
    shape: Annotated[
        str | None,
        typer.Option(
            help="load shape instead of --users: step, spike or soak (OGSIM_SHAPE_*)",
            callback=_shape,
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=0, help="distributed: a Locust master and this many workers")
    ] = 0,
    out: Annotated[
        Path, typer.Option(help="folder for Locust's CSV/HTML reports and the counters")
    ] = Path("ogsim-loadtest"),
    results: ResultsAlias = None,
    max_failure_ratio: Annotated[
        float | None,
        typer.Option(help="fail when real failures exceed this share (0.01)", callback=_share),
    ] = None,
    max_p95: Annotated[
        float | None,
        typer.Option(
            help="fail when the p95 of served calls exceeds this (ms)", callback=_milliseconds
        ),
    ] = None,
    fail_data_centre: Annotated[
        str | None,
        typer.Option(help="OPERATOR/DC@SECONDS: take a data centre down mid-run",
                     callback=_data_centre_failure),
    ] = None,
    stop_timeout: Annotated[
        float,
        typer.Option(help="seconds users get to finish their task at the end", callback=_grace),
    ] = 20.0,
    seed: Annotated[int, typer.Option(help="seed of the Faker subscriber choices")] = 2024,
    user_class: Annotated[
        list[str] | None, typer.Option(help="run only these user classes (repeatable)")
    ] = None,
    reconcile_counts: Annotated[
        bool, typer.Option("--reconcile/--no-reconcile", help="compare counts afterwards")
    ] = True,
    base_port: Annotated[
        int | None,
        typer.Option(min=1024, max=65000, help="first port of a federation started here"),
    ] = None,
    admin_secret: AdminSecretOption = DEFAULT_ADMIN_SECRET,
    locustfile: Annotated[
        Path,
        typer.Option(
            help="the Locust file (default: the installed one)",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = LOCUSTFILE,
) -> None:
    """Run Locust headless against the live federation; reports, thresholds, reconciliation."""
    folder = out_or_alias(out, results)
    refuse_unwritable(folder, "--results" if results is not None else "--out", console)
    if descriptor is not None:
        _check_descriptor(descriptor)
    _check_user_classes(locustfile, shape, user_class or [])
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as started:
        try:
            described = started.enter_context(
                federation_for_run(descriptor, folder, base_port, say=console.print)
            )
        except (PartyStartError, TimeoutError) as error:  # a port taken, a party not up
            console.print(f"ogsim loadtest: {error}", style="red", soft_wrap=True, markup=False)
            raise typer.Exit(1) from None
        if fail_data_centre and (problem := _no_such_data_centre(described, fail_data_centre)):
            # Locust would only log it, and run the whole test without the outage
            console.print(f"--fail-data-centre: {problem}", style="red", markup=False)
            raise typer.Exit(2)
        run = run_locust(
            locustfile=locustfile,
            descriptor=described,
            results=folder,
            users=users,
            spawn_rate=spawn_rate,
            run_time=run_time,
            shape=shape,
            workers=workers,
            stop_timeout=stop_timeout,
            seed=seed,
            fail_data_centre=fail_data_centre,
            user_classes=user_class,
        )
        summary = _run_outcome(folder, run.returncode)
        _print_summary(folder, summary)
        matches = True
        if reconcile_counts:
            matches = _reconcile(described, folder, admin_secret)
    console.print(f"reports: {folder / 'report.html'}, {folder / 'locust_stats.csv'}")
    broken = thresholds(summary, max_failure_ratio, max_p95)
    for reason in broken:
        console.print(f"[red]threshold broken: {reason}[/red]")
    if not matches:
        console.print("[red]reconciliation: counts differ[/red]")
    if broken or not matches:
        raise typer.Exit(1)


def reconcile(
    descriptor: Annotated[
        Path, typer.Option(help="descriptor of the federation the run used")
    ] = Path("ogsim-federation.json"),
    out: Annotated[
        Path, typer.Option(help="the run's folder (ogsim loadtest --out: run.json, calls-*.json)")
    ] = Path("ogsim-loadtest"),
    results: ResultsAlias = None,
    admin_secret: AdminSecretOption = DEFAULT_ADMIN_SECRET,
) -> None:
    """Compare a Locust run's exact counts with metering and settlement, and the aggregator's
    settlement statements with each operator's; exit 1 if anything differs."""
    _check_descriptor(descriptor)
    if not _reconcile(descriptor, out_or_alias(out, results), admin_secret):
        raise typer.Exit(1)


app = typer.Typer()
app.command("conformance", rich_help_panel=PANEL)(conformance)
app.command("loadtest", rich_help_panel=PANEL)(loadtest)
app.command("reconcile", rich_help_panel=PANEL)(reconcile)
