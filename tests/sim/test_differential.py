"""The differential test: one script of calls, live and simulated, must get the same answers.

The same sequence runs through the live federation (every operator and the aggregator in this
process over ASGI, all policies on one fake clock) and through the simulation's tiers built
from the very same configs (same numbers, seeds and subscribers, same trust statements, same
Telco Finder records). Every call must end with the same status and CAMARA code in both, and
the aggregator's calls must leave the same settlement rows. The script visits each decision the
simulation once coded for itself: the throttle key (two APIs on one plan), the plan lookup, the
trust gate, consent (granted, then revoked) and the subscriber's objection (an opt-out), Number
Verification's network-authenticated subscriber (the simulation models only that kind), what is
billable, and the fallback from a stale SHALLOW answer to a DEEP search (a number ported after
the finder's last sync), besides a backend outage that opens the circuit breaker.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import simpy

from federation.client import ApplicationClient, Endpoints, new_client_key
from federation.config import (
    AggregatorConfig,
    CountryConfig,
    DataCentre,
    FederatedOperator,
    FederationConfig,
    TrustStatement,
)
from federation.federation import Federation, quick_consent, start_federation
from federation.portability import PortabilityDatabase
from federation.trust import TrustGraph
from operators.core import Faults, NetworkFunctionKind
from operators.integrator import Coverage
from operators.subscriber_base import ChangeKind
from sim.scenario import DataCentreSpec, OperatorSpec
from sim.tiers.aggregator import SimAggregator
from sim.tiers.integrator import workload_circle
from sim.tiers.operator import AGGREGATOR, Answer, Client, Line, SimOperator
from sim.traffic import billable_calls

from ..builds import skip_if_compiled

FRAUD = "dpv:FraudPreventionAndDetection"  # legitimate interest: an opt-out bars it
CONTRACT = "dpv:RequestedServiceProvision"  # contract: nothing to ask
IDENTITY = "dpv:IdentityVerification"  # consent: a record per subscriber and application
CIBA = "urn:openid:params:grant-type:ciba"
ADMIN = {"Authorization": "Bearer admin-secret"}
HLR = NetworkFunctionKind.SIM_DATA_REGISTER
UNSERVED = "+34990000001"  # no operator's range
NOT_A_SUBSCRIBER = "+34609999999"  # telco-es's range, assigned to nobody

BODIES: dict[str, Callable[[str | None], dict[str, Any]]] = {
    "sim-swap.check": lambda n: {"maxAge": 240, **({"phoneNumber": n} if n else {})},
    "device-reachability-status": lambda n: {"device": {"phoneNumber": n}} if n else {},
    "device-roaming-status": lambda n: {"device": {"phoneNumber": n}} if n else {},
    "location-verification.verify": lambda n: {
        "area": workload_circle(None).model_dump(),
        **({"device": {"phoneNumber": n}} if n else {}),
    },
    "kyc-match.match": lambda n: {
        "givenName": "Ana",
        "familyName": "Garcia",
        "postalCode": "28001",
        **({"phoneNumber": n} if n else {}),
    },
}
PATHS = {
    "sim-swap.check": "/sim-swap/v2/check",
    "device-reachability-status": "/device-reachability-status/v1/retrieve",
    "device-roaming-status": "/device-roaming-status/v1/retrieve",
    "kyc-match.match": "/kyc-match/v0.3/match",
    "number-verification.verify": "/number-verification/v2/verify",
    "location-verification.verify": "/location-verification/v3/verify",
}
SCOPES = {
    "sim-swap.check": "sim-swap:check",
    "device-reachability-status": "device-reachability-status:read",
    "device-roaming-status": "device-roaming-status:read",
    "kyc-match.match": "kyc-match:match",
    "number-verification.verify": "number-verification:verify",
    "location-verification.verify": "location-verification:verify",
}
VERIFY = "number-verification.verify"
"""Answered only for a subscriber the network authenticated: live, a TS.43 operator token;
simulated, every verification's token is modelled as one (SimOperator._build_facts)."""


def federation_config() -> FederationConfig:
    """Two Spanish operators (numbers port between them) and a French one, one site each (a
    call's data centre is then no coin toss), and the aggregator every operator trusts."""

    def member(op_id: str, mnc: str, country: str, prefix: str, net: int, seed: int) -> Any:
        return FederatedOperator(
            id=op_id,
            display_name=op_id,
            country=country,
            mcc="214" if country == "ES" else "208",
            mnc=mnc,
            number_ranges=(prefix,),
            ipv4_ranges=(f"10.{net}.0.0/16",),
            seed=seed,
            data_centres=(DataCentre(name=f"{op_id}-dc"),),
        )

    return FederationConfig(
        name="differential",
        operators=(
            member("telco-es", "07", "ES", "+3460", 34, 7),
            member("movil-es", "01", "ES", "+3462", 35, 17),
            member("telco-fr", "88", "FR", "+3361", 33, 11),
        ),
        aggregators=(
            AggregatorConfig(
                id=AGGREGATOR,
                display_name="Aggregator",
                issuer="https://aggregator.ogsim.test/oauth",
                countries=("ES", "FR"),
            ),
        ),
        trust=tuple(
            TrustStatement(party=op, trusts=AGGREGATOR)
            for op in ("telco-es", "movil-es", "telco-fr")
        ),
        countries=(
            CountryConfig(
                code="ES",
                calling_code="+34",
                portability=True,
                network_id_url="https://network-id.es.ogsim.test",
            ),
            CountryConfig(code="FR", calling_code="+33"),
        ),
    )


class FakeClock:
    """Epoch seconds that move only when the script says so (live policies and tokens)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Call:
    """One step of the script: who calls which API about whom, and how."""

    app: str  # "shop" calls telco-es directly; "market" calls through the aggregator
    api: str
    number: str
    purpose: str
    three_legged: bool = False
    ipv4: str = "0.0.0.0"  # the device's address, where the network authenticates it
    area: dict[str, Any] | None = None  # Location Verification's area, when not Madrid's


SANDBOX_APPS = {"lab"}  # a developer portal's sandbox application at telco-es

Outcome = tuple[int, str | None]
Row = tuple[str, str, bool]  # (application, serving operator, billable)


class Live:
    """The live federation, driven over ASGI."""

    def __init__(self, fed: Federation, clock: FakeClock) -> None:
        self.fed = fed
        self.clock = clock
        self.apps: dict[str, ApplicationClient] = {}
        self.tokens: dict[tuple[str, str, str, str | None], str] = {}

    async def register(self, app: str, issuer: str, scope: str, purposes: list[str]) -> None:
        key = new_client_key()
        response = await self.fed.http.post(
            f"{issuer}/admin/clients",
            headers=ADMIN,
            json={
                "client_id": app,
                "client_name": app,
                "jwks": {"keys": [dict(key.as_dict(private=False))]},
                "grant_types": ["client_credentials", CIBA],
                "scope": scope,
                "purposes": purposes,
            },
        )
        response.raise_for_status()
        metadata = (await self.fed.http.get(f"{issuer}/.well-known/openid-configuration")).json()
        self.apps[app] = ApplicationClient(
            app, key, Endpoints.from_metadata(metadata), self.fed.http, clock=self.clock
        )

    async def token(self, call: Call) -> str:
        subject = call.number if call.three_legged else None
        key = (call.app, call.api, call.purpose, subject)
        if key not in self.tokens:
            client, scope = self.apps[call.app], f"{SCOPES[call.api]} {call.purpose}"
            if subject and call.api == VERIFY:
                subjects = self.fed.operator("telco-es").identity.subjects
                ts43 = subjects.issue_operator_token(subject)
                reply = await client.ciba(f"operatortoken:{ts43}", scope)
            elif subject:
                reply = await client.ciba(f"tel:{subject}", scope)
            else:
                reply = await client.client_credentials(scope)
            self.tokens[key] = reply["access_token"]
        return self.tokens[key]

    async def call(self, call: Call) -> Outcome:
        root = (
            self.fed.aggregator.api_root
            if call.app == "market"
            else self.fed.members["telco-es"].api_root
        )
        body = (
            {"phoneNumber": call.number}  # the number to verify, not whom it is about
            if call.api == VERIFY
            else BODIES[call.api](None if call.three_legged else call.number)
        )
        if call.area is not None:
            body["area"] = call.area
        response = await self.fed.http.post(
            root + PATHS[call.api],
            json=body,
            headers={"Authorization": f"Bearer {await self.token(call)}"},
        )
        code = None if response.status_code < 300 else response.json().get("code")
        return response.status_code, code

    def rows(self) -> list[Row]:
        return [
            (c.application, c.operator, c.billable) for c in self.fed.aggregator.settlement.calls()
        ]


class Simulated:
    """The simulation's tiers, built from the live configs, each call run to its answer."""

    def __init__(self, config: FederationConfig, start: datetime) -> None:
        self.env = simpy.Environment()
        self.trust = TrustGraph.from_config(config)
        self.operators: dict[str, SimOperator] = {}
        for op in config.operators:
            spec = OperatorSpec(
                number_ranges=op.number_ranges,
                data_centres={dc.name: DataCentreSpec() for dc in op.data_centres},
            )
            self.operators[op.id] = SimOperator(
                self.env,
                op.id,
                spec,
                seed="differential",
                start=start,
                trust=self.trust,
                config=op,
            )
        self.register = PortabilityDatabase(config, clock=lambda: self.env.now)
        self.aggregator = SimAggregator(
            self.env, config, self.register, self.operators, lambda *_: False
        )
        self.settled: list[Row] = []
        self._served_by: str | None = None
        for operator in self.operators.values():
            self._watch(operator)

    def _watch(self, operator: SimOperator) -> None:
        """Note the last operator a call through the aggregator reached, by a token request or
        by the call itself: the operator its settlement row names."""
        skip_if_compiled(SimOperator, "handle")
        handle, knows = operator.handle, operator.knows

        def watched(client: Client, api: str, line: Line, via: bool, reply: Any) -> None:
            if via:
                self._served_by = operator.id
            handle(client, api, line, via, reply)

        def asked(number: str) -> bool:
            self._served_by = operator.id
            return knows(number)

        operator.handle = watched  # type: ignore[method-assign]
        operator.knows = asked  # type: ignore[method-assign]

    def call(self, call: Call, plans: dict[str, str]) -> Outcome:
        client = Client(
            call.app,
            plans.get(call.app, "pay-as-you-go"),
            call.purpose,
            call.three_legged,
            sandbox=call.app in SANDBOX_APPS,
        )
        line = Line(call.number, call.ipv4, 0.0)
        answers: list[Answer] = []
        self._served_by = None
        if call.app == "market":
            self.aggregator.handle(client, call.api, line, answers.append)
        else:
            self.operators["telco-es"].handle(client, call.api, line, False, answers.append)
        while not answers:
            self.env.step()
        answer = answers[0]
        if call.app == "market" and self._served_by is not None:
            billed = billable_calls(call.api, answer.status) > 0  # the simulation's own count
            self.settled.append((call.app, self._served_by, billed))
        return answer.status, answer.code

    def advance(self, seconds: float) -> None:
        self.env.run(until=self.env.now + seconds)


@dataclass
class Worlds:
    live: Live
    sim: Simulated
    clock: FakeClock
    transcript: list[tuple[str, Outcome, Outcome]]

    async def both(self, label: str, call: Call) -> Outcome:
        live = await self.live.call(call)
        sim = self.sim.call(call, {})
        self.transcript.append((label, live, sim))
        assert live == sim, f"{label}: live {live}, simulated {sim}"
        return live

    def number(self, operator: str, role: str) -> str:
        return self.live.fed.operator(operator).subscribers.test_number(role)

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        self.sim.advance(seconds)


@pytest.fixture
async def worlds(tmp_path: Path) -> AsyncIterator[Worlds]:
    config = quick_consent(federation_config())
    clock = FakeClock(float(int(time.time())))
    fed = await start_federation(config, tmp_path, clock=clock, monotonic=clock, probes=False)
    live = Live(fed, clock)
    everything = " ".join(SCOPES.values())
    await live.register(
        "shop", fed.members["telco-es"].primary.issuer, everything, [FRAUD, CONTRACT, IDENTITY]
    )
    await live.register("market", fed.aggregator.identity.issuer, everything, [FRAUD, IDENTITY])
    await live.register(
        "lab", fed.members["telco-es"].primary.issuer, everything, [FRAUD, CONTRACT]
    )
    fed.operator("telco-es").identity.clients.set_environment("lab", "sandbox")
    sim = Simulated(config, datetime.fromtimestamp(clock.now, UTC))
    yield Worlds(live, sim, clock, [])
    await fed.stop()


async def test_live_and_simulated_answer_every_call_alike(worlds: Worlds) -> None:
    es = worlds.live.fed.operator("telco-es")
    approves, opted_out = (
        worlds.number("telco-es", "approves"),
        worlds.number("telco-es", "opted-out"),
    )
    recent = worlds.number("telco-es", "recent-swap")

    # Purposes decide: legitimate interest honours an opt-out, contract asks nothing.
    assert await worlds.both("fraud check", Call("shop", "sim-swap.check", approves, FRAUD)) == (
        200,
        None,
    )
    assert await worlds.both(
        "opted-out subscriber", Call("shop", "sim-swap.check", opted_out, FRAUD)
    ) == (403, "PERMISSION_DENIED")
    assert await worlds.both(
        "contract", Call("shop", "device-reachability-status", opted_out, CONTRACT)
    ) == (200, None)

    # Number Verification: admission asks whether the network authenticated the subscriber
    # (live, a TS.43 token; simulated, the device's address the authenticator looks up).
    device = es.subscribers.get(approves)
    assert device is not None and device.ipv4 is not None
    assert await worlds.both(
        "number verification",
        Call("shop", VERIFY, approves, FRAUD, three_legged=True, ipv4=device.ipv4),
    ) == (200, None)

    # A sandbox application reaches the documented test numbers only, two- and three-legged.
    real = next(worlds.live.fed.operator("telco-es").subscribers.numbers())
    assert await worlds.both("sandbox, test number", Call("lab", "sim-swap.check", approves,
                                                          FRAUD)) == (200, None)
    assert await worlds.both("sandbox, real subscriber", Call("lab", "sim-swap.check", real,
                                                              FRAUD)) == (403, "PERMISSION_DENIED")
    assert await worlds.both(
        "sandbox, real subscriber, three-legged",
        Call("lab", "device-reachability-status", real, CONTRACT, three_legged=True),
    ) == (403, "PERMISSION_DENIED")

    # Consent: granted through CIBA (live) / recorded (simulated), then revoked.
    kyc = Call("shop", "kyc-match.match", approves, IDENTITY, three_legged=True)
    assert await worlds.both("consented", kyc) == (200, None)
    for consent in es.identity.consents.for_subscriber(approves):
        es.identity.consents.revoke(consent.id, actor="subscriber")
    worlds.sim.operators["telco-es"].consent.revoke(approves)
    assert await worlds.both("consent revoked", kyc) == (403, "PERMISSION_DENIED")

    # An opt-out recorded now binds the next call.
    es.subscribers.record_change(recent, ChangeKind.OPT_OUT, {"opt_out": True})
    worlds.sim.operators["telco-es"].subscribers.record_change(
        recent, ChangeKind.OPT_OUT, {"opt_out": True}
    )
    assert await worlds.both("opted out since", Call("shop", "sim-swap.check", recent, FRAUD)) == (
        403,
        "PERMISSION_DENIED",
    )

    # Plans per API and the throttle key: two APIs on the free plan (burst 5) have a bucket
    # each, so exhausting one leaves the other untouched.
    for api in ("sim-swap", "device-reachability-status"):
        response = await worlds.live.fed.http.put(
            f"{worlds.live.fed.members['telco-es'].api_root}/admin/subscriptions/shop/{api}",
            json={"plan": "free"},
            headers=ADMIN,
        )
        assert response.status_code == 200, response.text
        worlds.sim.operators["telco-es"].plans.subscribe("shop", api, "free")
    reach = Call("shop", "device-reachability-status", approves, CONTRACT)
    burst = [await worlds.both(f"burst {i}", reach) for i in range(7)]
    assert burst[:5] == [(200, None)] * 5 and burst[5:] == [(429, "TOO_MANY_REQUESTS")] * 2
    assert await worlds.both(
        "other API, same plan", Call("shop", "sim-swap.check", approves, FRAUD)
    ) == (200, None)

    # A backend outage: the guard answers 503 until the breaker opens, and after it.
    es_backends = [m.set_faults for m in worlds.live.fed.members["telco-es"].replicas.values()]
    for set_faults in es_backends:
        set_faults(HLR, Faults(outage=True))
    worlds.sim.operators["telco-es"].set_backend_faults(HLR.value, Faults(outage=True))
    roaming = Call("shop", "device-roaming-status", approves, CONTRACT)
    outage = [await worlds.both(f"outage {i}", roaming) for i in range(24)]
    assert all(status == 503 for status, _ in outage)
    for set_faults in es_backends:
        set_faults(HLR, Faults())
    worlds.sim.operators["telco-es"].set_backend_faults(HLR.value, Faults())
    assert (await worlds.both("breaker still open", roaming))[0] == 503
    worlds.advance(11)  # past the breaker's wait in the open state
    assert await worlds.both("breaker half-open", roaming) == (200, None)

    # Through the aggregator: routing, refusals, billing.
    fr = worlds.number("telco-fr", "approves")
    assert await worlds.both("hub to France", Call("market", "sim-swap.check", fr, FRAUD)) == (
        200,
        None,
    )
    assert await worlds.both(
        "hub, opted out", Call("market", "sim-swap.check", opted_out, FRAUD)
    ) == (403, "PERMISSION_DENIED")
    assert await worlds.both(
        "hub, nobody serves it", Call("market", "sim-swap.check", UNSERVED, FRAUD)
    ) == (404, "IDENTIFIER_NOT_FOUND")
    assert await worlds.both(
        "hub, no such subscriber", Call("market", "sim-swap.check", NOT_A_SUBSCRIBER, FRAUD)
    ) == (404, "IDENTIFIER_NOT_FOUND")

    # A number ported after the finder's last sync: SHALLOW names the donor, whose token
    # endpoint no longer knows the subscriber (404), so the aggregator searches DEEP.
    ported = worlds.number("telco-es", "never-swapped")
    worlds.live.fed.port(ported, "movil-es")
    worlds.sim.register.port(ported, "movil-es")
    worlds.sim.operators["telco-es"].subscribers.record_change(
        ported, ChangeKind.PORT_OUT, {"operator": "movil-es"}
    )
    worlds.sim.operators["movil-es"].subscribers.record_change(
        ported, ChangeKind.PORT_IN, {"from": "telco-es"}
    )
    moved = Call("market", "sim-swap.check", ported, FRAUD)
    assert await worlds.both("ported, found by DEEP", moved) == (200, None)

    # Móvil stops trusting the aggregator: its token, still valid, is refused (403).
    worlds.live.fed.members["movil-es"].revoke(AGGREGATOR)
    worlds.sim.trust.revoke("movil-es", AGGREGATOR)
    worlds.sim.operators["movil-es"].refresh_trust()
    assert await worlds.both("trust revoked", moved) == (403, "PERMISSION_DENIED")
    worlds.live.fed.members["movil-es"].reinstate(AGGREGATOR)
    worlds.sim.trust.reinstate("movil-es", AGGREGATOR)
    worlds.sim.operators["movil-es"].refresh_trust()
    assert await worlds.both("trust reinstated", moved) == (200, None)

    # Consent through the aggregator: CIBA on the serving operator, for this application.
    assert await worlds.both("hub, consent", Call("market", "kyc-match.match", fr, IDENTITY)) == (
        200,
        None,
    )

    # Location Verification asks each network about an area it covers (the simulation's
    # workload circle, Madrid's or the network's own); both judge it against the network's
    # coverage.
    paris = workload_circle(Coverage.of_country("FR")).model_dump()
    assert await worlds.both(
        "location, covered", Call("shop", "location-verification.verify", approves, FRAUD)
    ) == (200, None)
    assert await worlds.both(
        "hub, location in France",
        Call("market", "location-verification.verify", fr, FRAUD, area=paris),
    ) == (200, None)

    # The live ledger lists rows by time (one fake instant here), so compare them as sets of
    # rows with their multiplicity.
    assert sorted(worlds.live.rows()) == sorted(worlds.sim.settled)
    assert worlds.sim.settled == [
        ("market", "telco-fr", True),
        ("market", "telco-es", False),
        ("market", "telco-es", False),
        ("market", "movil-es", True),
        ("market", "movil-es", False),
        ("market", "movil-es", True),
        ("market", "telco-fr", True),
        ("market", "telco-fr", True),
    ]
    # the area the simulation never asks of the French network (Madrid's) is not covered
    # there, live: the same check, refusing before the device is looked for
    madrid_of_fr = await worlds.live.call(
        Call("market", "location-verification.verify", fr, FRAUD)
    )
    assert madrid_of_fr == (422, "LOCATION_VERIFICATION.AREA_NOT_COVERED")
