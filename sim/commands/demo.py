"""``ogsim demo``: one operator in process and a client walking through its identity flows."""

from __future__ import annotations

import asyncio
import base64
import json
import time
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
SCOPE_TWO_LEGGED = "sim-swap:check dpv:FraudPreventionAndDetection"
SCOPE_CONSENT = "number-verification:verify dpv:IdentityVerification"


def command(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print only the summary table"),
) -> None:
    """Start the built-in operator in process and run a client through its identity flows."""
    steps = asyncio.run(run_demo(echo=not quiet))
    table = Table(title="demo summary")
    for column in ("step", "outcome", "ms"):
        table.add_column(column)
    for name, outcome, millis in steps:
        table.add_row(name, outcome, f"{millis:.1f}")
    console.print(table)
    if any(outcome.startswith("UNEXPECTED") for _, outcome, _ in steps):
        raise typer.Exit(1)


async def run_demo(echo: bool = True) -> list[tuple[str, str, float]]:
    """The scripted story; returns (step, outcome, milliseconds) for each step."""
    config = example_operator().model_copy(update={"lifetimes": TokenLifetimes(ciba_interval=1)})
    operator = Operator.from_config(config)
    app = create_operator_app(operator)
    steps: list[tuple[str, str, float]] = []

    def say(text: str) -> None:
        if echo:
            console.print(text)

    _print_endpoints(operator, say)
    admin = {"Authorization": f"Bearer {config.admin_secret}"}
    base = operator.api_root
    async with (
        _client(app, base, "203.0.113.10") as http,
        _client(app, base, _device_ip(operator, "approves")) as handset,
    ):
        key = new_client_key()

        async def step(name: str, expect: str, action: Any) -> Any:
            started = time.perf_counter()
            try:
                result = await action
                outcome = "ok" if expect == "ok" else f"UNEXPECTED ok (wanted {expect})"
            except OAuthClientError as error:
                result = error
                outcome = error.error if error.error == expect else f"UNEXPECTED {error}"
            millis = (time.perf_counter() - started) * 1000
            steps.append((name, outcome, millis))
            say(f"[bold]{name}[/bold] -> {outcome} ({millis:.0f} ms)")
            return result

        registration = {
            "client_id": DEMO_APP,
            "client_name": "Demo anti-fraud application",
            "jwks": {"keys": [key.as_dict(private=False)]},
            "grant_types": ["client_credentials", "urn:openid:params:grant-type:ciba"],
            "scope": "sim-swap:check number-verification:verify",
            "purposes": ["dpv:FraudPreventionAndDetection", "dpv:IdentityVerification"],
        }
        registered = await http.post(
            f"{operator.issuer}/admin/clients", json=registration, headers=admin
        )
        say(
            f"admin registers [cyan]{DEMO_APP}[/cyan] with its public key: "
            f"HTTP {registered.status_code}"
        )
        client = await ApplicationClient.discover(DEMO_APP, key, operator.issuer, http)

        two_legged = await step(
            "client_credentials for fraud prevention",
            "ok",
            client.client_credentials(SCOPE_TWO_LEGGED),
        )
        say(f"  access token claims: {_claims(two_legged['access_token'])}")

        approves = operator.subscribers.test_number("approves")
        say(f"CIBA for {approves} (handset approves); the app polls every second")
        three_legged = await step(
            f"CIBA consent for {approves}",
            "ok",
            client.ciba(f"tel:{approves}", SCOPE_CONSENT, "demo-1"),
        )
        claims = _claims(three_legged["access_token"])
        say(f"  sub is pseudonymous, never the number: sub={claims['sub']}")

        denies = operator.subscribers.test_number("denies-consent")
        await step(
            f"CIBA consent for {denies} (handset denies)",
            "access_denied",
            client.ciba(f"tel:{denies}", SCOPE_CONSENT),
        )
        await step(
            "CIBA for a number of another operator",
            "unknown_user_id",
            client.start_ciba("tel:+447700900123", SCOPE_CONSENT),
        )
        await step(
            "client_credentials asking for a consent purpose",
            "invalid_scope",
            client.client_credentials(SCOPE_CONSENT),
        )

        active = await step(
            "introspect the three-legged token",
            "ok",
            client.introspect(three_legged["access_token"]),
        )
        say(f"  active={active['active']} scope={active.get('scope')}")

        consents = (await handset.get(f"{operator.issuer}/consents")).json()
        say(f"the subscriber lists their consents from their phone: {len(consents)} found")
        for consent in consents:
            await handset.delete(f"{operator.issuer}/consents/{consent['id']}")
        say("the subscriber revokes them")
        after = await step(
            "introspect after revocation", "ok", client.introspect(three_legged["access_token"])
        )
        steps[-1] = (
            steps[-1][0],
            "refused" if not after["active"] else "UNEXPECTED active",
            steps[-1][2],
        )
        say(f"  active={after['active']}: the next API call with this token is refused")
    operator.close()
    return steps


def _print_endpoints(operator: Operator, say: Any) -> None:
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
        ("introspection", "introspection_endpoint"),
    ):
        table.add_row(name, str(meta.get(key)))
    table.add_row("admin: clients", f"{operator.issuer}/admin/clients")
    table.add_row("admin: subscribers", f"{operator.api_root}/admin/subscribers/{{number}}")
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
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data
