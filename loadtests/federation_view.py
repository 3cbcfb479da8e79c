"""The running federation as a load test sees it: the descriptor ``ogsim up`` writes, and
the subscribers a run draws from, each with the truth its answers are checked against.

Served subscribers are the documented test numbers of every operator (fixed behaviour), the
ported and brand numbers, and, when the descriptor's ``runDir`` holds the federation file,
a Faker-seeded sample of the generated subscribers. Their truth comes from each operator's
admin API (``GET /admin/subscribers/{number}``) once, before the run. Unserved numbers are
built on purpose: free test suffixes in an operator's own range (nobody holds them), a
number of a network outside the federation and one of a country outside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from faker import Faker

ADMIN_SECRET = "admin-secret"
"""The default admin credential of every party (a config's ``admin_secret``)."""

CIBA_SAFE_ROLES = frozenset(
    {"approves", "recent-swap", "never-swapped", "roaming", "unreachable", "sms-only"}
)
"""Test numbers whose handset approves a consent prompt at once."""


@dataclass(frozen=True)
class OperatorView:
    """One member operator: where it is, its test numbers and data centres."""

    id: str
    country: str
    issuer: str
    api_root: str
    data_centres: tuple[str, ...]
    data_centre_admin: str
    test_numbers: dict[str, str]


@dataclass(frozen=True)
class AggregatorView:
    id: str
    issuer: str
    api_root: str
    settlement: str


@dataclass(frozen=True)
class DemoApplication:
    """The application ``ogsim up`` registers at the aggregator, with its private key."""

    client_id: str
    scope: str
    purposes: tuple[str, ...]
    private_jwk: dict[str, Any]
    issuer: str


@dataclass(frozen=True)
class Descriptor:
    """What ``ogsim up --descriptor`` wrote (see ``federation.launcher.descriptor``)."""

    path: Path
    operators: tuple[OperatorView, ...]
    aggregator: AggregatorView | None
    application: DemoApplication | None
    ported: dict[str, str]
    run_dir: Path | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    def operator(self, operator_id: str) -> OperatorView:
        for operator in self.operators:
            if operator.id == operator_id:
                return operator
        raise KeyError(operator_id)


class DescriptorError(ValueError):
    """A descriptor file that is missing or not what ``ogsim up`` writes; says which."""


def load_descriptor(path: str | Path) -> Descriptor:
    """Read a descriptor; a missing or malformed file says what is wrong and how to get one."""
    path = Path(path)
    if not path.exists():
        raise DescriptorError(
            f"no federation descriptor at {path}: start one with "
            f"`ogsim up --descriptor {path}` or set OGSIM_DESCRIPTOR"
        )
    if not path.is_file():
        raise DescriptorError(f"{path} is not a file: give the descriptor `ogsim up` wrote")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:  # unreadable: permissions, a device, gone meanwhile
        raise DescriptorError(
            f"cannot read the federation descriptor {path}: {error.strerror or error}"
        ) from error
    try:
        return _parse(json.loads(text), path)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise DescriptorError(
            f"{path} is not a federation descriptor written by `ogsim up` "
            f"({type(error).__name__}: {error})"
        ) from error


def _parse(raw: Any, path: Path) -> Descriptor:
    operators = tuple(
        OperatorView(
            id=o["id"],
            country=o["country"],
            issuer=o["issuer"].rstrip("/"),
            api_root=o["apiRoot"].rstrip("/"),
            data_centres=tuple(o.get("dataCentres", ())),
            data_centre_admin=o.get("dataCentreAdmin", o["apiRoot"] + "/admin/data-centres"),
            test_numbers=dict(o["testNumbers"]),
        )
        for o in raw["operators"]
    )
    hub = raw.get("aggregator")
    aggregator = (
        AggregatorView(hub["id"], hub["issuer"].rstrip("/"), hub["apiRoot"], hub["settlement"])
        if hub
        else None
    )
    app = raw.get("application")
    application = (
        DemoApplication(
            app["clientId"],
            app["scope"],
            tuple(app.get("purposes", ())),
            app["privateJwk"],
            app["issuer"].rstrip("/"),
        )
        if app
        else None
    )
    run_dir = Path(raw["runDir"]) if raw.get("runDir") else None
    return Descriptor(
        path, operators, aggregator, application, dict(raw.get("portedNumbers", {})), run_dir, raw
    )


@dataclass(frozen=True)
class SubscriberTruth:
    """What the operator's own records say about one subscriber, for checking answers."""

    number: str
    operator: str
    role: str | None
    """The documented test-number role, or None for a generated subscriber."""
    activated_at: datetime
    sim_swaps: tuple[datetime, ...]
    connectivity: tuple[str, ...]
    roaming_country: str | None
    latitude: float
    longitude: float
    accuracy: float
    handset: str
    handset_delay: float
    opted_out: bool

    @property
    def latest_sim_change(self) -> datetime:
        return max(self.sim_swaps) if self.sim_swaps else self.activated_at

    @property
    def consents_at_once(self) -> bool:
        return self.handset == "approve" and self.handset_delay <= 1.0 and not self.opted_out

    @classmethod
    def from_admin(cls, operator: str, role: str | None, record: dict[str, Any]) -> SubscriberTruth:
        location = record.get("location") or {}
        handset = record.get("handset") or {}
        return cls(
            number=record["msisdn"],
            operator=operator,
            role=role,
            activated_at=_when(record["activated_at"]),
            sim_swaps=tuple(_when(s) for s in record.get("sim_swaps", ())),
            connectivity=tuple(record.get("connectivity", ())),
            roaming_country=record.get("roaming_country"),
            latitude=float(location.get("latitude", 0.0)),
            longitude=float(location.get("longitude", 0.0)),
            accuracy=float(location.get("accuracy", 0.0)),
            handset=str(handset.get("answer", "approve")),
            handset_delay=float(handset.get("delay", 0.0) or 0.0),
            opted_out=bool(record.get("legitimate_interest_opt_out", False)),
        )


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class UnservedNumber:
    """A number nobody in the federation serves; ``range_of`` names the operator whose range
    it lies in (a direct call to that operator must answer 404), None when outside them all."""

    number: str
    range_of: str | None


@dataclass
class SubscriberPool:
    """Every number a run may use, by operator, with the truth behind the served ones."""

    served: dict[str, list[SubscriberTruth]]
    unserved: list[UnservedNumber]

    def all_served(self) -> list[SubscriberTruth]:
        return [s for group in self.served.values() for s in group]

    def for_consent(self, operator: str) -> list[SubscriberTruth]:
        return [s for s in self.served[operator] if s.consents_at_once]

    def usable(self, operator: str) -> list[SubscriberTruth]:
        """Subscribers a two-legged call may name (not opted out of legitimate interest)."""
        return [s for s in self.served[operator] if not s.opted_out]


def _generated_numbers(descriptor: Descriptor, fake: Faker, per_operator: int) -> dict[str, list]:
    """A Faker-seeded sample of generated subscribers, when the federation file is readable."""
    if descriptor.run_dir is None or per_operator <= 0:
        return {}
    config_path = descriptor.run_dir / "federation.yaml"
    if not config_path.exists():
        return {}
    from federation import load_federation
    from operators import NumberPlan

    config = load_federation(config_path)
    sample: dict[str, list] = {}
    for operator in config.operators:
        plan = NumberPlan(operator)
        count = min(per_operator, operator.subscribers)
        indices = fake.random_sample(range(operator.subscribers), length=count)
        sample[operator.id] = [plan.number(i) for i in indices]
    return sample


def unserved_numbers(descriptor: Descriptor, fake: Faker, per_operator: int = 3) -> list:
    """Numbers served by nobody: free test suffixes in each range, plus foreign ones."""
    numbers: list[UnservedNumber] = []
    for operator in descriptor.operators:
        first = operator.test_numbers["approves"]
        stem = first[:-2]
        for suffix in fake.random_sample(range(50, 100), length=per_operator):
            numbers.append(UnservedNumber(f"{stem}{suffix:02d}", operator.id))
    numbers.append(UnservedNumber("+34620000" + str(fake.random_int(200, 999)), None))  # Red Azul
    numbers.append(UnservedNumber("+4930" + str(fake.random_int(1000000, 9999999)), None))
    return numbers


def build_pool(
    descriptor: Descriptor,
    http: httpx.Client,
    *,
    seed: int,
    generated_per_operator: int = 12,
    admin_secret: str = ADMIN_SECRET,
) -> SubscriberPool:
    """Fetch the truth of every served number from its operator's admin API."""
    fake = Faker()
    fake.seed_instance(seed)
    headers = {"Authorization": f"Bearer {admin_secret}"}
    generated = _generated_numbers(descriptor, fake, generated_per_operator)
    served: dict[str, list[SubscriberTruth]] = {}
    for operator in descriptor.operators:
        wanted: list[tuple[str, str | None]] = [
            (number, role) for role, number in operator.test_numbers.items()
        ]
        wanted += [(n, None) for n in generated.get(operator.id, [])]
        wanted += [(n, None) for n, owner in descriptor.ported.items() if owner == operator.id]
        truths = []
        for number, role in wanted:
            response = http.get(f"{operator.api_root}/admin/subscribers/{number}", headers=headers)
            if response.status_code == 404:
                continue
            response.raise_for_status()
            truths.append(SubscriberTruth.from_admin(operator.id, role, response.json()))
        served[operator.id] = truths
    return SubscriberPool(served, unserved_numbers(descriptor, fake))
