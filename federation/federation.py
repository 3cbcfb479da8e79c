"""A whole federation in one process, every party reached by its real URL over ASGI.

:func:`start_federation` builds every member operator (replicas per data centre behind a
load-balanced front), the aggregator and each country's Network Id service from one
:class:`~federation.config.FederationConfig`, wires them into one
:class:`~federation.transport.AsgiNetwork`, and starts them in dependency order (members
register their partners, the aggregator collects routing tables). Tests and ``ogsim demo``
use it; ``ogsim up`` runs the very same :class:`~federation.member.MemberOperator` and
:class:`~federation.aggregator.Aggregator` objects in separate processes instead.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from operators import Operator
from operators.gateway import install_camara_error_handlers

from .aggregator import Aggregator, create_aggregator_app
from .client import ApplicationClient, new_client_key
from .config import FederationConfig
from .data_centres import DATA_CENTRE_OPT_IN
from .global_load_balancer import HealthPolicy
from .member import MemberOperator
from .network_id import NetworkIdService, build_network_id_router
from .portability import Holder, PortabilityDatabase, port_number
from .protection import open_access
from .tracing import Tracer, no_trace
from .transport import AsgiNetwork
from .types import Clock

APPLICATION_GRANTS = ("client_credentials",)


@dataclass
class Federation:
    """Every party of a running one-process federation, and the network between them."""

    config: FederationConfig
    network: AsgiNetwork
    http: httpx.AsyncClient
    members: dict[str, MemberOperator]
    aggregator: Aggregator
    portability: PortabilityDatabase
    network_ids: dict[str, NetworkIdService] = field(default_factory=dict)

    def operator(self, operator_id: str) -> Operator:
        """The operator's first data-centre replica (they share one database)."""
        return self.members[operator_id].primary

    def operators(self) -> dict[str, Operator]:
        return {op_id: member.primary for op_id, member in self.members.items()}

    def port(self, number: str, to_party: str) -> Holder:
        """Port a number at run time: national register, then the operators concerned."""
        return port_number(self.portability, number, to_party, self.operators())

    def device(self, operator_id: str, number: str) -> httpx.AsyncClient:
        """An HTTP client whose requests come from ``number``'s device address; it reaches
        every party (its operator, the aggregator) as that address."""
        subscriber = self.operator(operator_id).subscribers.get(number)
        if subscriber is None or subscriber.ipv4 is None:
            raise ValueError(f"{number} has no device address at {operator_id}")
        return httpx.AsyncClient(transport=self.network.seen_from((subscriber.ipv4, 50123)))

    async def register_application(
        self,
        client_id: str,
        scope: str,
        purposes: list[str],
        *,
        name: str | None = None,
        redirect_uris: list[str] | None = None,
    ) -> ApplicationClient:
        """Register an application with the aggregator only (its admin API); return its client.

        With ``redirect_uris`` it may also run the authorization code flow (Number
        Verification from the subscriber's device)."""
        key = new_client_key()
        config = self.aggregator.config
        response = await self.http.post(
            f"{self.aggregator.identity.issuer}/admin/clients",
            headers={"Authorization": f"Bearer {config.admin_secret}"},
            json={
                "client_id": client_id,
                "client_name": name or client_id,
                "jwks": {"keys": [dict(key.as_dict(private=False))]},
                "grant_types": [
                    *APPLICATION_GRANTS,
                    *(["authorization_code"] if redirect_uris else []),
                ],
                "redirect_uris": redirect_uris or [],
                "scope": scope,
                "purposes": purposes,
            },
        )
        response.raise_for_status()
        return await ApplicationClient.discover(
            client_id, key, self.aggregator.identity.issuer, self.http
        )

    async def stop(self) -> None:
        for member in self.members.values():
            await member.stop()
        await self.aggregator.stop()
        await self.http.aclose()
        for member in self.members.values():
            member.close()
        self.aggregator.close()


def network_id_apps(
    config: FederationConfig, portability: PortabilityDatabase
) -> tuple[dict[str, NetworkIdService], dict[str, FastAPI]]:
    """A Network Id service per country with portability, each an app at its configured URL."""
    services: dict[str, NetworkIdService] = {}
    apps: dict[str, FastAPI] = {}
    for country in config.countries:
        if country.portability and country.network_id_url:
            service = NetworkIdService(country.code, portability)
            app = FastAPI(title=f"Network Id {country.code}")
            install_camara_error_handlers(app)
            app.include_router(build_network_id_router(service, open_access))
            services[country.code] = service
            apps[country.network_id_url] = app
    return services, apps


async def start_federation(
    config: FederationConfig,
    storage_dir: Path,
    *,
    health: HealthPolicy | None = None,
    tracer: Tracer = no_trace,
    clock: Clock = time.time,
    monotonic: Clock = time.monotonic,
    probes: bool = True,
) -> Federation:
    """Build and start every party in this process; ``storage_dir`` holds their databases.

    ``clock`` is the epoch clock, ``monotonic`` times the policies (throttles, breakers): a
    test passes one fake clock as both to make every decision independent of wall time.
    """
    network = AsgiNetwork()
    # The harness's client (tests, the demo) opts in to the internal data-centre header;
    # an application's own client does not, and gets answers without it.
    http = httpx.AsyncClient(
        transport=network, timeout=10.0, headers={DATA_CENTRE_OPT_IN: "1"}
    )
    members: dict[str, MemberOperator] = {}
    for operator in config.operators:
        member = MemberOperator.build(
            config,
            operator.id,
            http,
            storage=str(storage_dir / f"{operator.id}.sqlite3"),
            clock=clock,
            monotonic=monotonic,
            health=health,
            tracer=tracer,
        )
        network.add(member.api_root, member.front)
        members[operator.id] = member
    aggregator_config = config.aggregators[0]
    aggregator = Aggregator(
        aggregator_config,
        config,
        http,
        clock=clock,
        storage=str(storage_dir / f"{aggregator_config.id}.sqlite3"),
        tracer=tracer,
    )
    aggregator.identity.use_http(http)  # applications' jwks_uri, fetched over the network
    network.add(aggregator.api_root, create_aggregator_app(aggregator))
    portability = PortabilityDatabase(config, clock=clock)
    services, apps = network_id_apps(config, portability)
    for url, app in apps.items():
        network.add(url, app)
    for member in members.values():
        await member.start(probes=probes)
    await aggregator.start()
    return Federation(config, network, http, members, aggregator, portability, services)


def quick_consent(config: FederationConfig) -> FederationConfig:
    """The same federation with CIBA polled at once (interval 0): for tests and the demo.

    A handset that approves at once then answers on the first poll instead of after the
    default two-second interval; nothing else changes.
    """
    operators = tuple(
        o.model_copy(update={"lifetimes": o.lifetimes.model_copy(update={"ciba_interval": 0})})
        for o in config.operators
    )
    return config.model_copy(update={"operators": operators})


@asynccontextmanager
async def running_federation(
    config: FederationConfig, storage_dir: Path | None = None, **options: Any
) -> AsyncIterator[Federation]:
    """:func:`start_federation` as a context: stopped and its databases closed on exit."""
    with tempfile.TemporaryDirectory(prefix="ogsim-federation-") as scratch:
        federation = await start_federation(config, storage_dir or Path(scratch), **options)
        try:
            yield federation
        finally:
            await federation.stop()
