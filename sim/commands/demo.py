"""``ogsim demo``: one operator in process, and an application walking through its flows.

Every step goes over HTTP (an in-memory ASGI transport) exactly as a real client would: admin
registration, private_key_jwt, CIBA with the simulated handset, CAMARA calls through the
gateway, a consent revocation from the subscriber's phone, and a backend outage.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from federation.client import ApplicationClient, OAuthClientError, new_client_key
from operators.config import TokenLifetimes, example_operator
from operators.operator import Operator, create_operator_app

console = Console()
DEMO_APP = "demo-antifraud-app"
FRAUD = "dpv:FraudPreventionAndDetection"
SERVICE = "dpv:ServiceProvision"
APP_SCOPES = (
    "sim-swap:check sim-swap:retrieve-date device-reachability-status:read "
    "device-roaming-status:read"
)

Step = tuple[str, str, float]


def command(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print only the summary table"),
) -> None:
    """Start the built-in operator in process and run an application through its flows."""
    steps = asyncio.run(run_demo(echo=not quiet))
    table = Table(title="demo summary")
    for column in ("step", "outcome", "ms"):
        table.add_column(column)
    for name, outcome, millis in steps:
        style = "red" if outcome.startswith("UNEXPECTED") else ""
        table.add_row(name, outcome, f"{millis:.1f}", style=style)
    console.print(table)
    if any(outcome.startswith("UNEXPECTED") for _, outcome, _ in steps):
        raise typer.Exit(1)


class Story:
    """Runs and records the steps; each states what it expects, so surprises stand out."""

    def __init__(self, echo: bool) -> None:
        self.echo = echo
        self.steps: list[Step] = []

    def say(self, text: str) -> None:
        if self.echo:
            console.print(text)

    async def oauth(self, name: str, expect: str, action: Awaitable[Any]) -> Any:
        started = time.perf_counter()
        try:
            result = await action
            outcome = "ok" if expect == "ok" else f"UNEXPECTED ok (wanted {expect})"
        except OAuthClientError as error:
            result = error
            outcome = error.error if error.error == expect else f"UNEXPECTED {error}"
        return self._record(name, outcome, started, result)

    async def api(
        self, name: str, expect: int, action: Awaitable[httpx.Response]
    ) -> httpx.Response:
        started = time.perf_counter()
        response = await action
        body = response.text if len(response.text) < 90 else response.text[:87] + "..."
        outcome = f"{response.status_code} {body}"
        if response.status_code != expect:
            outcome = f"UNEXPECTED {outcome} (wanted {expect})"
        return self._record(name, outcome, started, response)  # type: ignore[no-any-return]

    def _record(self, name: str, outcome: str, started: float, result: Any) -> Any:
        millis = (time.perf_counter() - started) * 1000
        self.steps.append((name, outcome, millis))
        self.say(f"[bold]{name}[/bold] -> {outcome} ({millis:.0f} ms)")
        return result


async def run_demo(echo: bool = True) -> list[Step]:
    """The scripted story; returns (step, outcome, milliseconds) for each step."""
    config = example_operator().model_copy(update={"lifetimes": TokenLifetimes(ciba_interval=1)})
    operator = Operator.from_config(config)
    app = create_operator_app(operator)
    story = Story(echo)
    if echo:
        _print_endpoints(operator)
    admin = {"Authorization": f"Bearer {config.admin_secret}"}
    numbers = operator.subscribers
    async with (
        _client(app, operator.api_root, "203.0.113.10") as http,
        _client(app, operator.api_root, _device_ip(operator, "approves")) as phone,
    ):
        key = new_client_key()
        registration = {
            "client_id": DEMO_APP,
            "client_name": "Demo anti-fraud application",
            "jwks": {"keys": [key.as_dict(private=False)]},
            "grant_types": ["client_credentials", "urn:openid:params:grant-type:ciba"],
            "scope": APP_SCOPES,
            "purposes": [FRAUD, SERVICE],
        }
        registered = await http.post(
            f"{operator.issuer}/admin/clients", json=registration, headers=admin
        )
        story.say(
            f"the operator admin registers [cyan]{DEMO_APP}[/cyan] with its public key "
            f"(HTTP {registered.status_code}); the app authenticates with private_key_jwt"
        )
        client = await ApplicationClient.discover(DEMO_APP, key, operator.issuer, http)

        story.say("\n[underline]two-legged: fraud prevention under legitimate interest[/underline]")
        token = await story.oauth(
            "client_credentials (sim-swap:check, fraud prevention)",
            "ok",
            client.client_credentials(f"sim-swap:check {FRAUD}"),
        )
        two_legged = {"Authorization": f"Bearer {token['access_token']}"}
        for role in ("recent-swap", "never-swapped"):
            number = numbers.test_number(role)
            await story.api(
                f"POST /sim-swap/v2/check {number} ({role}), maxAge 24 h",
                200,
                http.post(
                    "/sim-swap/v2/check",
                    json={"phoneNumber": number, "maxAge": 24},
                    headers=two_legged,
                ),
            )
        await story.oauth(
            "client_credentials for a consent-based purpose",
            "invalid_scope",
            client.client_credentials(f"device-reachability-status:read {SERVICE}"),
        )

        story.say("\n[underline]three-legged: CIBA consent on the subscriber's handset[/underline]")
        approves = numbers.test_number("approves")
        scope = f"device-reachability-status:read {SERVICE}"
        granted = await story.oauth(
            f"CIBA for {approves} (handset approves)",
            "ok",
            client.ciba(f"tel:{approves}", scope, "demo-1"),
        )
        sub = _claims(granted["access_token"])["sub"]
        story.say(f"  the token's sub is pseudonymous, never the number: {sub}")
        three_legged = {"Authorization": f"Bearer {granted['access_token']}"}
        await story.api(
            "POST /device-reachability-status/v1/retrieve (device from the token)",
            200,
            http.post("/device-reachability-status/v1/retrieve", json={}, headers=three_legged),
        )
        denies = numbers.test_number("denies-consent")
        await story.oauth(
            f"CIBA for {denies} (handset denies)",
            "access_denied",
            client.ciba(f"tel:{denies}", scope),
        )
        await story.oauth(
            "CIBA for a number of another operator",
            "unknown_user_id",
            client.start_ciba("tel:+447700900123", scope),
        )

        story.say("\n[underline]the subscriber revokes consent from their phone[/underline]")
        consents = (await phone.get(f"{operator.issuer}/consents")).json()
        for consent in consents:
            await phone.delete(f"{operator.issuer}/consents/{consent['id']}")
        story.say(f"  {len(consents)} consent(s) revoked through the consent API")
        await story.api(
            "the same token, next call",
            403,
            http.post("/device-reachability-status/v1/retrieve", json={}, headers=three_legged),
        )

        story.say("\n[underline]the HLR goes down; the integrator refuses at once[/underline]")
        await http.put("/admin/faults/sim_data_register", json={"outage": True}, headers=admin)
        await story.api(
            "POST /sim-swap/v2/check during an HLR outage",
            503,
            http.post(
                "/sim-swap/v2/check",
                json={"phoneNumber": approves, "maxAge": 24},
                headers=two_legged,
            ),
        )
        await http.delete("/admin/faults/sim_data_register", headers=admin)
        await story.api(
            "POST /sim-swap/v2/check after recovery",
            200,
            http.post(
                "/sim-swap/v2/check",
                json={"phoneNumber": approves, "maxAge": 24},
                headers=two_legged,
            ),
        )
        usage = (await http.get("/admin/usage", headers=admin)).json()
        story.say(f"\nmetered billable calls: {usage}")
    operator.close()
    return story.steps


def _print_endpoints(operator: Operator) -> None:
    meta = operator.identity.metadata()
    table = Table(title=f"{operator.config.display_name} ({operator.config.id}) endpoints")
    table.add_column("what")
    table.add_column("where")
    for name, key in (
        ("issuer", "issuer"),
        ("token", "token_endpoint"),
        ("CIBA", "backchannel_authentication_endpoint"),
        ("authorize", "authorization_endpoint"),
        ("JWKS", "jwks_uri"),
    ):
        table.add_row(name, str(meta.get(key)))
    table.add_row(
        "CAMARA APIs", f"{operator.api_root}/sim-swap/v2, /device-reachability-status/v1, ..."
    )
    table.add_row("admin", f"{operator.api_root}/admin/... and {operator.issuer}/admin/clients")
    console.print(table)


def _client(app: Any, base_url: str, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


def _device_ip(operator: Operator, role: str) -> str:
    subscriber = operator.subscribers.get(operator.subscribers.test_number(role))
    assert subscriber is not None and subscriber.ipv4 is not None
    return subscriber.ipv4


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    data: dict[str, Any] = json.loads(decoded)
    return data
