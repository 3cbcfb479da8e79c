"""The demo story (``ogsim demo``): the default federation in one process, told step by step.

An application registered only with the aggregator checks SIM swap and verifies location for
subscribers of two operators (one number ported between networks), is refused for a number
nobody serves, gets consent through CIBA on a third operator's subscriber handset, loses it
when the subscriber revokes it from their phone, and keeps being served while a data centre
fails. Every hop (who called whom, status, latency) is printed as it happens; the run ends
with a Mermaid sequence diagram written to ``out``; the caller prints the summary.

The story narrates on the console it is given (none: silent), so that a test runs it quietly
and the command runs it aloud; its outcomes are returned either way.

With :class:`Interactive` (``ogsim demo --interactive``) the consent of chapter 3 is a
person's: the subscriber's handset waits for a press, telco-gb is also served over real HTTP on
a loopback port so a browser can open the handset page, the story prints its URL and waits,
up to a bound, for Approve.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from federation.client import OAuthClientError
from federation.config import PORTED_NUMBER, FederationConfig, default_federation
from federation.data_centres import DATA_CENTRE_HEADER
from federation.federation import Federation, quick_consent, running_federation
from federation.global_load_balancer import HealthPolicy
from federation.tracing import Hop, TraceLog, mermaid
from operators import cancel_and_wait
from operators.handset_app import phone_link

APP = "antifraud-app"
FRAUD = "dpv:FraudPreventionAndDetection"
SERVICE = "dpv:ServiceProvision"
APP_SCOPES = "sim-swap:check location-verification:verify device-reachability-status:read"
UNKNOWN_NUMBER = "+4915112345678"
HEALTH = HealthPolicy(interval=0.1, failures_to_down=2, successes_to_up=2)

Step = tuple[str, str, float]
"""(step, outcome, milliseconds); an outcome starting with ``UNEXPECTED`` is a surprise."""

__all__ = ["UNKNOWN_NUMBER", "Interactive", "Step", "Story", "run_demo"]

CONSENTING_OPERATOR = "telco-gb"
POLL_INTERVAL = 1
"""Seconds between the hub's CIBA polls while a person decides (``quick_consent`` polls at
once, which against a handset that waits for a person would only hammer the token endpoint)."""


@dataclass(frozen=True)
class Interactive:
    """Run chapter 3's consent with a person pressing Approve on the handset page.

    ``timeout`` bounds the wait (at most the operator's CIBA request lifetime, after which the
    request expires anyway); ``port`` 0 takes any free loopback port; ``on_url`` is told the
    handset page's URL once it is served (the command prints it; a test presses the button).
    """

    timeout: float = 120.0
    host: str = "127.0.0.1"
    port: int = 0
    on_url: Callable[[str], None] = field(default=lambda _: None)


class Story:
    """Runs and records the steps; each states what it expects, so surprises stand out."""

    def __init__(self, console: Console | None) -> None:
        self.console = console
        self.steps: list[Step] = []

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text)

    def chapter(self, title: str) -> None:
        self.say(f"\n[bold underline]{title}[/bold underline]")

    async def oauth(self, name: str, expect: str, action: Awaitable[Any]) -> Any:
        started = time.perf_counter()
        try:
            result = await action
            outcome = "ok" if expect == "ok" else f"UNEXPECTED ok (wanted {expect})"
        except OAuthClientError as error:
            result = error
            outcome = error.error if error.error == expect else f"UNEXPECTED {error}"
        self.record(name, outcome, started)
        return result

    async def api(
        self, name: str, expect: int, action: Awaitable[httpx.Response]
    ) -> httpx.Response:
        started = time.perf_counter()
        self.say(f"[bold]{name}[/bold]")
        response = await action
        text = response.text if len(response.text) < 90 else response.text[:87] + "..."
        outcome = f"{response.status_code} {text}"
        if response.status_code != expect:
            outcome = f"UNEXPECTED {outcome} (wanted {expect})"
        self.record(name, outcome, started, announce=False)
        return response

    def record(self, name: str, outcome: str, started: float, *, announce: bool = True) -> None:
        millis = (time.perf_counter() - started) * 1000
        self.steps.append((name, outcome, millis))
        prefix = f"[bold]{name}[/bold] " if announce else "  "
        colour = "red" if outcome.startswith("UNEXPECTED") else "green"
        self.say(f"{prefix}[{colour}]=> {outcome}[/{colour}] ({millis:.0f} ms)")


async def run_demo(
    console: Console | None = None,
    out: Path | None = None,
    *,
    interactive: Interactive | None = None,
) -> list[Step]:
    """The scripted story, told on ``console``; returns (step, outcome, ms) for each step.

    With ``interactive``, chapter 3 waits for a person to approve on the handset page."""
    story = Story(console)
    recording = [True]
    log = TraceLog()

    def on_hop(hop: Hop) -> None:
        if recording[0] or "GLB" in hop.source:
            log(hop)
            story.say(f"    [dim]{hop.line()}[/dim]")

    started = time.perf_counter()
    config = quick_consent(default_federation())
    if interactive is not None:
        config = _polled_every(config, CONSENTING_OPERATOR, POLL_INTERVAL)
    async with running_federation(config, tracer=on_hop, health=HEALTH) as fed:
        story.record(
            "start the default federation (3 operators, 6 data centres, hub)", "ok", started
        )
        if console is not None:
            console.print(_parties(fed))
        steps = await _story(fed, story, recording, interactive)
        settlement = (
            await fed.http.get(
                f"{fed.aggregator.api_root}/admin/settlement",
                headers={"Authorization": f"Bearer {fed.aggregator.config.admin_secret}"},
            )
        ).json()
        if console is not None:
            console.print(_settlement(settlement))
    if out is not None:
        _write_diagram(out, log.hops, story)
    return steps


async def _story(
    fed: Federation, story: Story, recording: list[bool], interactive: Interactive | None
) -> list[Step]:
    hub = fed.aggregator
    http = fed.http
    fr = fed.operator("telco-fr").subscribers
    gb = fed.operator("telco-gb").subscribers
    es = fed.operator("telco-es").subscribers

    story.chapter("1. an application registers with the aggregator only")
    app = await fed.register_application(
        APP, APP_SCOPES, [FRAUD, SERVICE], name="Anti-fraud application"
    )
    story.say(
        f"  [cyan]{APP}[/cyan] is a client of [cyan]{hub.id}[/cyan] "
        f"({hub.identity.issuer}) and of no operator; it signs with private_key_jwt"
    )
    token = await story.oauth(
        f"{APP} → {hub.id}: client_credentials (fraud prevention)",
        "ok",
        app.client_credentials(f"sim-swap:check location-verification:verify {FRAUD}"),
    )
    fraud = {"Authorization": f"Bearer {token['access_token']}"}

    story.chapter("2. SIM swap and location for subscribers of two operators, one ported")
    swapped = fr.test_number("recent-swap")
    story.say(
        f"  {swapped} is a telco-fr subscriber; {PORTED_NUMBER} was a Red Azul number, "
        "ported in to telco-es (the Spanish Network Id service knows)"
    )
    for number, who in ((swapped, "telco-fr"), (PORTED_NUMBER, "ported to telco-es")):
        await story.api(
            f"SIM swap check {number} ({who})",
            200,
            http.post(
                f"{hub.api_root}/sim-swap/v2/check",
                json={"phoneNumber": number, "maxAge": 240},
                headers=fraud,
            ),
        )
    for number, operator, who in (
        (swapped, "telco-fr", "telco-fr"),
        (PORTED_NUMBER, "telco-es", "ported"),
    ):
        subscriber = fed.operator(operator).subscribers.get(number)
        assert subscriber is not None
        where = subscriber.location
        area = {
            "areaType": "CIRCLE",
            "radius": 5000,
            "center": {"latitude": where.latitude, "longitude": where.longitude},
        }
        await story.api(
            f"verify location of {number} ({who}) within 5 km",
            200,
            http.post(
                f"{hub.api_root}/location-verification/v3/verify",
                json={"device": {"phoneNumber": number}, "area": area},
                headers=fraud,
            ),
        )
    await story.api(
        f"SIM swap check {UNKNOWN_NUMBER} (a German number nobody serves)",
        404,
        http.post(
            f"{hub.api_root}/sim-swap/v2/check", json={"phoneNumber": UNKNOWN_NUMBER}, headers=fraud
        ),
    )

    story.chapter("3. consent on a third operator's handset, then revoked from the phone")
    consenting = gb.test_number("approves")
    token = await story.oauth(
        f"{APP} → {hub.id}: client_credentials (service provision)",
        "ok",
        app.client_credentials(f"device-reachability-status:read {SERVICE}"),
    )
    service = {"Authorization": f"Bearer {token['access_token']}"}
    reachability = {"device": {"phoneNumber": consenting}}
    url = f"{hub.api_root}/device-reachability-status/v1/retrieve"
    name = f"reachability of {consenting} (telco-gb; consent needed)"
    consented = True
    if interactive is None:
        await story.api(name, 200, http.post(url, json=reachability, headers=service))
    else:
        consented = await _asked_in_person(
            fed, story, interactive, consenting, name,
            http.post(url, json=reachability, headers=service, timeout=interactive.timeout + 10),
        )
    if consented:
        await _revoked_from_the_phone(fed, story, consenting, url, reachability, service)
    else:
        story.say("  (no consent, so nothing to revoke: on to the next chapter)")

    story.chapter("4. a data centre of telco-es fails during traffic")
    es_front = fed.members["telco-es"].front
    admin = {"Authorization": f"Bearer {fed.config.operator('telco-es').admin_secret}"}
    window = HEALTH.detection_window
    story.say(
        f"  the GLB probes each site every {HEALTH.interval:.1f} s and takes one out "
        f"after {HEALTH.failures_to_down} failed probes (window {window:.1f} s)"
    )
    await http.post(f"{es_front_url(fed)}/admin/data-centres/madrid/fail", headers=admin)
    failed_at = time.perf_counter()
    outcomes: list[tuple[float, int, str]] = []
    numbers = [es.test_number(r) for r in ("approves", "recent-swap", "never-swapped")]
    started = time.perf_counter()
    while time.perf_counter() - failed_at < window + 0.8:
        number = numbers[len(outcomes) % len(numbers)]
        response = await http.post(
            f"{hub.api_root}/sim-swap/v2/check", json={"phoneNumber": number}, headers=fraud
        )
        outcomes.append(
            (
                time.perf_counter() - failed_at,
                response.status_code,
                response.headers.get(DATA_CENTRE_HEADER, "?"),
            )
        )
        if len(outcomes) == 3:
            recording[0] = False  # the diagram shows the first calls, not the whole burst
        await asyncio.sleep(0.02)
    recording[0] = True
    errors = [t for t, status, _ in outcomes if status != 200]
    late = [t for t in errors if t > window + HEALTH.interval]
    outcome = (
        f"{len(outcomes)} calls: {len(outcomes) - len(errors)} ok, {len(errors)} failed, "
        f"all failures within {max(errors, default=0.0):.2f} s of the outage"
    )
    if late:
        outcome = f"UNEXPECTED {outcome}; {len(late)} after the window"
    story.record("SIM swap checks while madrid is down", outcome, started)
    tail = [site for t, status, site in outcomes if t > window + HEALTH.interval]
    story.say(f"  after the window every call was served in: {sorted(set(tail))}")
    await http.post(f"{es_front_url(fed)}/admin/data-centres/madrid/recover", headers=admin)
    started = time.perf_counter()
    while not es_front.glb.health.is_up("madrid") and time.perf_counter() - started < 5:
        await asyncio.sleep(0.02)
    story.record(
        "madrid recovers and the GLB routes to it again",
        "ok" if es_front.glb.health.is_up("madrid") else "UNEXPECTED still out",
        started,
    )
    return story.steps


async def _revoked_from_the_phone(
    fed: Federation,
    story: Story,
    consenting: str,
    url: str,
    reachability: dict[str, Any],
    service: dict[str, str],
) -> None:
    """The subscriber revokes every active consent from their phone; the next call fails."""
    issuer = fed.operator("telco-gb").issuer
    async with fed.device("telco-gb", consenting) as phone:
        consents = (await phone.get(f"{issuer}/consents")).json()
        active = [c for c in consents if c["status"] == "active"]
        for consent in active:
            await phone.delete(f"{issuer}/consents/{consent['id']}")
    story.record(
        f"{consenting} revokes consent from their phone",
        f"{len(active)} consent(s) to {fed.aggregator.id} revoked",
        time.perf_counter(),
    )
    await story.api(
        f"reachability of {consenting} again, same application",
        403,
        fed.http.post(url, json=reachability, headers=service),
    )


async def _asked_in_person(
    fed: Federation,
    story: Story,
    interactive: Interactive,
    number: str,
    name: str,
    call: Awaitable[httpx.Response],
) -> bool:
    """Make ``number``'s handset interactive, serve its operator over HTTP for a browser,
    print the handset URL and run ``call`` while a person decides; False when nobody approved
    within the bound (the story then stops: what follows needs the consent)."""
    operator = fed.config.operator(CONSENTING_OPERATOR)
    changed = await fed.http.post(
        f"{operator.api_root}/admin/subscribers/{number}/changes",
        headers={"Authorization": f"Bearer {operator.admin_secret}"},
        json={"kind": "handset", "payload": {"mode": "interactive"}},
    )
    changed.raise_for_status()
    lifetime = operator.lifetimes.ciba_request
    bound = min(interactive.timeout, lifetime)
    async with _served(fed.members[CONSENTING_OPERATOR].front, interactive) as (origin, serving):
        url = phone_link(origin, operator.admin_secret, number)
        story.say(
            f"  [bold yellow]{number}'s handset now waits for a person.[/bold yellow] Open\n"
            f"    {url}\n  and press [bold]Approve[/bold] (waiting up to {bound:.0f} s)"
        )
        interactive.on_url(url)
        started = time.perf_counter()
        story.say(f"[bold]{name}[/bold]")
        asked = asyncio.ensure_future(call)
        await asyncio.wait({asked, serving}, timeout=bound, return_when=asyncio.FIRST_COMPLETED)
        if not asked.done():  # the bound passed, or Ctrl-C stopped the handset's server
            await cancel_and_wait(asked)
            why = "the handset server stopped" if serving.done() else (
                f"nobody pressed Approve on {url} within {bound:.0f} s")
            story.record(name, f"UNEXPECTED {why}", started, announce=False)
            return False
        response = asked.result()
        text = response.text if len(response.text) < 90 else response.text[:87] + "..."
        outcome = f"{response.status_code} {text}"
        if response.status_code != 200:
            outcome = f"UNEXPECTED {outcome} (wanted 200: was Deny pressed?)"
        story.record(name, outcome, started, announce=False)
        return response.status_code == 200


@contextlib.asynccontextmanager
async def _served(
    app: Any, interactive: Interactive
) -> AsyncIterator[tuple[str, asyncio.Task[None]]]:
    """``app`` served over HTTP on a loopback port for as long as the context lasts; yields
    its origin and the serving task (done early if Ctrl-C stopped it). The federation is
    already running, so the server runs no lifespan."""
    import uvicorn  # only an interactive demo pays for importing the server

    server = uvicorn.Server(uvicorn.Config(
        app, host=interactive.host, port=interactive.port, lifespan="off",
        log_level="warning", access_log=False))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # the port was taken, say: raise why
            raise RuntimeError("the handset server stopped before it started")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{interactive.host}:{port}", serving
    finally:
        server.should_exit = True
        await serving


def _polled_every(config: FederationConfig, operator_id: str, interval: int) -> FederationConfig:
    """``config`` with ``operator_id``'s CIBA poll interval set to ``interval`` seconds."""
    operators = tuple(
        o.model_copy(update={"lifetimes": o.lifetimes.model_copy(
            update={"ciba_interval": interval})}) if o.id == operator_id else o
        for o in config.operators
    )
    return config.model_copy(update={"operators": operators})


def es_front_url(fed: Federation) -> str:
    return fed.config.operator("telco-es").api_root


def _parties(fed: Federation) -> Table:
    table = Table(title=f"federation {fed.config.name}: who is who")
    for column in ("party", "country", "data centres", "trusts the hub because"):
        table.add_column(column)
    hub = fed.aggregator.id
    for op_id, member in fed.members.items():
        verdict = member.trust.explain(op_id, hub).reason
        table.add_row(op_id, member.config.country, ", ".join(member.replicas), verdict)
    table.add_row(hub, "-", "-", "(the aggregator: one entry point for applications)")
    return table


def _settlement(totals: list[dict[str, Any]]) -> Table:
    table = Table(title="settlement at the hub (per operator pair)")
    for column in ("aggregator", "operator", "calls", "billable"):
        table.add_column(column)
    for row in totals:
        table.add_row(row["aggregator"], row["operator"], str(row["calls"]), str(row["billable"]))
    return table


def _write_diagram(out: Path, hops: list[Hop], story: Story) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sequence.mmd"
    participants = [APP, "hub", "hub Telco Finder", "telco-fr", "telco-es", "telco-gb"]
    path.write_text(
        mermaid(
            hops, title="ogsim demo: one application, three operators", participants=participants
        )
    )
    story.say(f"\nsequence diagram (Mermaid): {path}")
    renderer = shutil.which("mmdc")
    if renderer is None:
        story.say(
            "  (install @mermaid-js/mermaid-cli for an SVG, or paste it into https://mermaid.live)"
        )
        return
    picture = out / "sequence.svg"
    try:
        subprocess.run(
            [renderer, "-i", str(path), "-o", str(picture)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        story.say(f"  rendered: {picture}")
    except (subprocess.SubprocessError, OSError) as error:
        story.say(f"  rendering failed: {error}")
