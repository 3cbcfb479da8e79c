"""The operator's subscriber base: generated lazily from the seed, changed by a persisted log.

Subscriber ``i`` is a pure function of ``(seed, i, reference time)``: its number comes from an
affine permutation of the number space (so number → index is arithmetic, not a lookup table)
and its attributes from a Faker instance re-seeded for that index. A base of a million
subscribers therefore costs no memory until a subscriber is asked for, and the same seed
always gives the same people. Changes over time (a SIM swap, a trip abroad, a port-out) are
rows in the operator's database, applied in order when their time has come, so a restart
loses nothing and a change can be scheduled for later.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import random
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

import pycountry
from faker import Faker
from faker.providers.geo import Provider as Gazetteer

from .config import OperatorConfig
from .request_body import unencodable
from .storage import Database
from .subscriber import (
    Address,
    Connectivity,
    HandsetAnswer,
    HandsetBehaviour,
    HandsetMode,
    IdDocument,
    Identity,
    Location,
    Subscriber,
)
from .test_numbers import RESERVED_SUFFIXES, TEST_NUMBERS, TestNumber, by_suffix
from .types import Clock

_PLACES: tuple[tuple[float, float, str], ...] = tuple(
    (float(lat), float(lon), code) for lat, lon, _name, code, _zone in Gazetteer.land_coords
)
"""The gazetteer subscribers are placed by (Faker's): latitude, longitude, country code."""
_PLACE_COUNTRIES = frozenset(code for _, _, code in _PLACES)
"""The countries the gazetteer has a place of."""
_COUNTRY_CODES = frozenset(c.alpha_2 for c in pycountry.countries) | _PLACE_COUNTRIES
"""ISO 3166-1 alpha-2 (pycountry's), and the user-assigned codes the gazetteer uses (XK)."""

LOCALES = {
    "ES": "es_ES",
    "GB": "en_GB",
    "DE": "de_DE",
    "FR": "fr_FR",
    "IT": "it_IT",
    "US": "en_US",
    "PT": "pt_PT",
    "NL": "nl_NL",
    "BR": "pt_BR",
    "MX": "es_MX",
}
VISITED_COUNTRIES = ("FR", "DE", "IT", "PT", "GB", "US", "NL", "ES")
log = logging.getLogger("ogsim.subscribers")
_MULTIPLIER = 7_919_993  # prime, so coprime with every 10^k - 100 that is not its multiple

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriber_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    msisdn TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    effective_at REAL NOT NULL,
    recorded_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriber_changes_msisdn ON subscriber_changes (msisdn);
"""


class ChangeKind(StrEnum):
    """What can happen to a subscriber over time; each has a small JSON payload."""

    SIM_SWAP = "sim_swap"
    ROAMING = "roaming"  # {"country": "FR"} or {"country": null} to come home
    CONNECTIVITY = "connectivity"  # {"connectivity": ["DATA", "SMS"]}
    LOCATION = "location"  # {"latitude": .., "longitude": .., "accuracy": ..}
    PORT_OUT = "port_out"  # {"operator": "telco-fr"}
    PORT_IN = "port_in"  # {"from": "telco-fr"}: the number is now served here
    HANDSET = "handset"  # {"answer": "deny", "delay": 2}
    OPT_OUT = "opt_out"  # {"opt_out": true}, or for one purpose {.., "purpose": "dpv:Marketing"}


@dataclass(frozen=True)
class Change:
    msisdn: str
    kind: ChangeKind
    payload: dict[str, Any]
    effective_at: float


class NumberPlan:
    """The bijection between subscriber indices and numbers (and device addresses)."""

    def __init__(self, config: OperatorConfig) -> None:
        self.ranges = config.number_ranges
        self.count = config.subscribers
        self.digits = config.number_digits
        self.networks = [ipaddress.IPv4Network(cidr) for cidr in config.ipv4_ranges]
        self._offset = config.seed % 1_000_003

    def _space(self, prefix: str) -> int:
        return 10 ** (self.digits - (len(prefix) - 1)) - RESERVED_SUFFIXES

    def _suffix_width(self, prefix: str) -> int:
        return self.digits - (len(prefix) - 1)

    def number(self, index: int) -> str:
        prefix = self.ranges[index % len(self.ranges)]
        slot = index // len(self.ranges)
        space = self._space(prefix)
        suffix = RESERVED_SUFFIXES + (_MULTIPLIER * slot + self._offset) % space
        return prefix + str(suffix).zfill(self._suffix_width(prefix))

    def test_number(self, test: TestNumber, range_index: int = 0) -> str:
        prefix = self.ranges[range_index]
        return prefix + str(test.suffix).zfill(self._suffix_width(prefix))

    def locate(self, msisdn: str) -> tuple[int | None, TestNumber | None]:
        """The generated index or the test number behind ``msisdn`` (both None if unknown)."""
        for range_index, prefix in enumerate(self.ranges):
            if not msisdn.startswith(prefix) or len(msisdn) != self.digits + 1:
                continue
            digits = msisdn[len(prefix) :]
            if not (digits.isascii() and digits.isdigit()):  # int() takes other scripts' too
                return None, None
            suffix = int(digits)
            if suffix < RESERVED_SUFFIXES:
                return None, by_suffix(suffix) if range_index == 0 else None
            space = self._space(prefix)
            inverse = pow(_MULTIPLIER, -1, space)
            slot = (inverse * (suffix - RESERVED_SUFFIXES - self._offset)) % space
            index = slot * len(self.ranges) + range_index
            return (index if index < self.count else None), None
        return None, None

    def ipv4(self, index: int | None, test: TestNumber | None) -> str | None:
        """Test numbers take the first hosts of the first range; generated ones follow."""
        position = test.suffix if test is not None else RESERVED_SUFFIXES + (index or 0)
        for network in self.networks:
            hosts = network.num_addresses - 2
            if position < hosts:
                return str(network.network_address + 1 + position)
            position -= hosts
        return None

    def position_of_ipv4(self, address: str) -> int | None:
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            return None
        position = 0
        for network in self.networks:
            if ip in network:
                offset = int(ip) - int(network.network_address) - 1
                return position + offset if 0 <= offset < network.num_addresses - 2 else None
            position += network.num_addresses - 2
        return None


class SubscriberBase:
    """Answers who a number or a device address is, as of now, for every API and both modes."""

    def __init__(
        self,
        config: OperatorConfig,
        db: Database,
        *,
        clock: Clock = time.time,
        reference_time: datetime | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.reference_time = (reference_time or datetime.fromtimestamp(clock(), UTC)).replace(
            microsecond=0
        )
        self.plan = NumberPlan(config)
        self._faker = Faker(LOCALES.get(config.country, "en_US"))
        self._faker_lock = threading.Lock()
        self._generate = lru_cache(maxsize=4096)(self._generate_uncached)
        self._log_cache: dict[str, tuple[tuple[int, ...], list[Change]]] = {}
        self._as_of: dict[str, tuple[tuple[int, ...], float, float, Subscriber | None]] = {}
        """``msisdn → (stamp, computed at, valid until, subscriber)``: see :meth:`get`."""
        self._ported_cache: tuple[tuple[int, ...], dict[str, int]] | None = None
        db.ensure_schema(SCHEMA)

    # -- lookups ---------------------------------------------------------------------------

    def get(self, msisdn: str) -> Subscriber | None:
        """The subscriber as of now, or None when this operator does not serve the number.

        The answer stands until the change log is written or the number's next scheduled
        change falls due, so it is kept until then: a gateway asks for the same subscriber
        twice per call (the grant's facts, then the device), and rebuilding it (locating the
        number, folding its changes) was about 5 % of a call.
        """
        stamp = self.db.version("subscriber_changes")
        now = self.clock()
        kept = self._as_of.get(msisdn)
        if kept is not None and kept[0] == stamp and kept[1] <= now < kept[2]:
            return kept[3]
        found = self._current(msisdn)
        due = self.next_change_after(msisdn, now)
        if len(self._as_of) >= 4096:  # whole subscribers: ~5 KiB each
            self._as_of.clear()
        self._as_of[msisdn] = (stamp, now, math.inf if due is None else due, found)
        return found

    def _current(self, msisdn: str) -> Subscriber | None:
        changes = self._changes(msisdn)
        index, test = self.plan.locate(msisdn)
        ported_in = [c for c in changes if c.kind is ChangeKind.PORT_IN]
        if index is None and test is None and not ported_in:
            return None
        base = self._generate(msisdn, index, test)
        subscriber = _apply(base, changes, self.reference_time, self._place)
        if not subscriber.active:
            return None
        if index is None and test is None:  # ported in: the device address it was given here
            ordinal = self._ported_in().get(msisdn)
            ipv4 = (
                self.plan.ipv4(self.config.subscribers + ordinal, None)
                if ordinal is not None
                else None
            )
            subscriber = subscriber.model_copy(update={"ipv4": ipv4})
        return subscriber

    def by_ipv4(self, address: str) -> Subscriber | None:
        position = self.plan.position_of_ipv4(address)
        if position is None:
            return None
        if position < RESERVED_SUFFIXES:
            test = by_suffix(position)
            return self.get(self.plan.test_number(test)) if test else None
        index = position - RESERVED_SUFFIXES
        if index < self.config.subscribers:
            return self.get(self.plan.number(index))
        ordinal = index - self.config.subscribers
        number = next((n for n, k in self._ported_in().items() if k == ordinal), None)
        return self.get(number) if number is not None else None

    def _ported_in(self) -> dict[str, int]:
        """Numbers from outside the plan ported in, each with its ordinal (0, 1, ...).

        A ported-in number's device address follows the generated subscribers' addresses, in
        the order the numbers were first ported in: unique within the operator's ranges, and
        the same for the same seed and the same history of ports.
        """
        stamp = self.db.version("subscriber_changes")
        if self._ported_cache is not None and self._ported_cache[0] == stamp:
            return self._ported_cache[1]
        rows = self.db.all(
            "SELECT msisdn FROM subscriber_changes WHERE kind = ? GROUP BY msisdn ORDER BY MIN(id)",
            (ChangeKind.PORT_IN.value,),
        )
        outside = [r["msisdn"] for r in rows if self.plan.locate(r["msisdn"]) == (None, None)]
        ordinals = {number: k for k, number in enumerate(outside)}
        self._ported_cache = (stamp, ordinals)
        return ordinals

    def known_to_have_left(self, msisdn: str) -> str | None:
        """The operator a number was ported to, when it was ours and left."""
        ports = [c for c in self._changes(msisdn) if c.kind is ChangeKind.PORT_OUT]
        return str(ports[-1].payload["operator"]) if ports else None

    def is_test_number(self, msisdn: str) -> bool:
        """Whether ``msisdn`` is one of the documented test numbers (all a sandbox reaches)."""
        return self.plan.locate(msisdn)[1] is not None

    def test_numbers(self) -> list[tuple[TestNumber, str]]:
        return [(test, self.plan.test_number(test)) for test in TEST_NUMBERS]

    def test_number(self, role: str) -> str:
        test = next((t for t in TEST_NUMBERS if t.role == role), None)
        if test is None:
            raise KeyError(f"no test number with role {role!r}")
        return self.plan.test_number(test)

    def numbers(self, limit: int | None = None) -> Iterator[str]:
        """Generated (non-test) numbers in index order."""
        count = self.config.subscribers if limit is None else min(limit, self.config.subscribers)
        for index in range(count):
            yield self.plan.number(index)

    # -- changes ---------------------------------------------------------------------------

    def record_change(
        self, msisdn: str, kind: ChangeKind, payload: dict[str, Any], at: float | None = None
    ) -> Change:
        """Persist a change, effective now or at a scheduled time; validated before it lands."""
        effective = self.clock() if at is None else at
        if unencodable(payload):  # it could be stored, but never read back as JSON text
            raise ValueError("a string in the payload cannot be encoded as UTF-8")
        change = Change(msisdn, kind, payload, effective)
        probe = self._generate(msisdn, *self.plan.locate(msisdn))
        _apply(probe, [change], self.reference_time)  # raises on a malformed payload
        self.db.insert(
            "INSERT INTO subscriber_changes (msisdn, kind, payload, effective_at, recorded_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (msisdn, kind.value, json.dumps(payload), effective, time.time()),
        )
        return change

    def changes(self, msisdn: str, *, include_scheduled: bool = False) -> list[Change]:
        return self._changes(msisdn, include_scheduled=include_scheduled)

    def _changes(self, msisdn: str, *, include_scheduled: bool = False) -> list[Change]:
        now = self.clock()
        return [c for c in self._log(msisdn) if include_scheduled or c.effective_at <= now]

    def next_change_after(self, msisdn: str, moment: float) -> float | None:
        """When the next scheduled change of ``msisdn`` becomes due, if one is scheduled."""
        due = [c.effective_at for c in self._log(msisdn) if c.effective_at > moment]
        return min(due) if due else None

    def _log(self, msisdn: str) -> list[Change]:
        """Every change of ``msisdn``, due or scheduled, read again only after a write."""
        stamp = self.db.version("subscriber_changes")
        cached = self._log_cache.get(msisdn)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        rows = self.db.all(
            "SELECT id, msisdn, kind, payload, effective_at FROM subscriber_changes"
            " WHERE msisdn = ? ORDER BY effective_at, id",
            (msisdn,),
        )
        changes = [c for c in (self._readable(r) for r in rows) if c is not None]
        if len(self._log_cache) >= 65_536:
            self._log_cache.clear()
        self._log_cache[msisdn] = (stamp, changes)
        return changes

    def _readable(self, row: Any) -> Change | None:
        """A stored change, or None (logged) when it cannot be read or applied: a row an older
        version let in (an unknown kind, a payload that is not JSON, a lone surrogate, a shape
        ``_apply`` refuses) is skipped, so nothing stored makes a later read fail."""
        try:
            payload = json.loads(row["payload"])
            if not isinstance(payload, dict) or unencodable(payload):
                raise ValueError("payload is not an object of encodable strings")
            kind = ChangeKind(row["kind"])
            if kind is ChangeKind.ROAMING and isinstance(payload.get("country"), str):
                # stored before codes had to be upper case: 'fr' was France all along
                payload = {**payload, "country": payload["country"].upper()}
            change = Change(row["msisdn"], kind, payload, float(row["effective_at"]))
            probe = self._generate(change.msisdn, *self.plan.locate(change.msisdn))
            _apply(probe, [change], self.reference_time)
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as error:
            log.warning(
                "subscriber change %s of %s skipped: unreadable (%s)",
                row["id"],
                row["msisdn"],
                error,
            )
            return None
        return change

    # -- generation ------------------------------------------------------------------------

    def _generate_uncached(
        self, msisdn: str, index: int | None, test: TestNumber | None
    ) -> Subscriber:
        if index is not None:
            key = index
        elif test is not None:
            key = -test.suffix
        else:  # ported in: derive a stable key from the number itself
            key = -(10**6) - int(msisdn[1:]) % 10**9
        rng = random.Random(f"{self.config.seed}:{key}")
        with self._faker_lock:
            self._faker.seed_instance(f"{self.config.seed}:{key}")
            subscriber = self._draw(msisdn, rng, index, test)
            if test is not None:
                subscriber = self._as_test_number(subscriber, test, rng)
        if msisdn in self.config.interactive_handsets:
            handset = subscriber.handset.model_copy(update={"mode": HandsetMode.INTERACTIVE})
            subscriber = subscriber.model_copy(update={"handset": handset})
        return subscriber

    def _as_test_number(
        self, drawn: Subscriber, test: TestNumber, rng: random.Random
    ) -> Subscriber:
        """The drawn subscriber with the test number's fixed behaviour. A test number whose
        roaming differs from the draw's is placed again, in the country it is in: the
        ``roaming`` number was flagged abroad but located at home."""
        subscriber = drawn.model_copy(
            update=test.overrides(self.reference_time, self.config.country)
        )
        if subscriber.roaming_country == drawn.roaming_country:
            return subscriber
        country = subscriber.roaming_country or self.config.country
        return subscriber.model_copy(update={"location": self._location(rng, country)})

    def _draw(
        self, msisdn: str, rng: random.Random, index: int | None, test: TestNumber | None
    ) -> Subscriber:
        ref = self.reference_time
        activated = ref - timedelta(days=rng.uniform(30, 5 * 365))
        swaps: list[datetime] = []
        if rng.random() < 0.3:
            for _ in range(rng.randint(1, 3)):
                swaps.append(activated + (ref - activated) * rng.random())
            if rng.random() < 0.15:
                swaps.append(ref - timedelta(hours=rng.uniform(0.5, 48)))
        roll = rng.random()
        connectivity: tuple[Connectivity, ...] = (
            (Connectivity.DATA, Connectivity.SMS)
            if roll < 0.85
            else (Connectivity.SMS,)
            if roll < 0.90
            else (Connectivity.DATA,)
            if roll < 0.93
            else ()
        )
        roaming = None
        if rng.random() < 0.08:
            roaming = rng.choice([c for c in VISITED_COUNTRIES if c != self.config.country])
        return Subscriber(
            msisdn=msisdn,
            imsi=self._imsi(msisdn),
            activated_at=activated.replace(microsecond=0),
            sim_swaps=tuple(sorted(s.replace(microsecond=0) for s in swaps)),
            connectivity=connectivity,
            roaming_country=roaming,
            location=self._location(rng, roaming or self.config.country),
            identity=self._identity(rng),
            ipv4=self.plan.ipv4(index, test) if index is not None or test else None,
            handset=_handset(rng),
            legitimate_interest_opt_out=rng.random() < 0.03,
        )

    def _imsi(self, msisdn: str) -> str:
        msin_digits = 15 - len(self.config.network)
        return self.config.network + str(int(msisdn[1:]) % 10**msin_digits).zfill(msin_digits)

    def _place(
        self, subscriber: Subscriber, country: str | None, when: datetime
    ) -> Location | None:
        """Where a device that crossed into ``country`` (home when None) at ``when`` is.

        A location already in that country stays (a scenario that put the device in Paris,
        then marked it roaming in France, keeps it in Paris): one whose nearest place in the
        gazetteer is of that country. So does any location when the gazetteer has no place of
        the country. Otherwise a place is drawn like a generated one, from the number and the
        crossing, so every replica and every run puts the device in the same place.
        """
        entered = country or self.config.country
        here = subscriber.location
        if entered not in _PLACE_COUNTRIES or (
            here is not None and _country_at(here.latitude, here.longitude) == entered
        ):
            return here
        key = f"{self.config.seed}:{subscriber.msisdn}:{country}:{when.timestamp()}"
        with self._faker_lock:
            self._faker.seed_instance(key)
            placed = self._location(random.Random(key), entered)
        return placed.model_copy(update={"observed_at": when})

    def _location(self, rng: random.Random, country: str) -> Location:
        place = self._faker.local_latlng(country_code=country, coords_only=True)
        if place is None:
            lat, lon = rng.uniform(-60, 70), rng.uniform(-180, 180)
        else:
            lat = float(place[0]) + rng.uniform(-0.05, 0.05)
            lon = float(place[1]) + rng.uniform(-0.05, 0.05)
        observed = self.reference_time - timedelta(minutes=rng.uniform(0, 90))
        return Location(
            latitude=round(max(-90.0, min(90.0, lat)), 6),
            longitude=round(max(-180.0, min(180.0, lon)), 6),
            accuracy=round(rng.choice((20, 50, 100, 500, 2000)) * rng.uniform(0.8, 1.2), 1),
            observed_at=observed.replace(microsecond=0),
        )

    def _identity(self, rng: random.Random) -> Identity:
        fake = self._faker
        gender = rng.choice(("MALE", "FEMALE", "OTHER"))
        given = fake.first_name_female() if gender == "FEMALE" else fake.first_name_male()
        family = fake.last_name()
        region = _first_available(fake, ("state", "region", "administrative_unit", "city"))
        return Identity(
            given_name=given,
            family_name=family,
            birthdate=fake.date_of_birth(minimum_age=18, maximum_age=90),
            gender=gender,
            email=_ascii(f"{given}.{family}@{fake.free_email_domain()}"),
            address=Address(
                street_name=fake.street_name(),
                street_number=str(fake.building_number()),
                postal_code=fake.postcode(),
                locality=fake.city(),
                region=region,
                country=self.config.country,
            ),
            id_document=IdDocument(
                kind=rng.choice(("national_id", "passport")),
                number=fake.bothify("########?").upper(),
                expires=date(self.reference_time.year + rng.randint(1, 9), 12, 31),
            ),
        )


def _first_available(fake: Faker, providers: tuple[str, ...]) -> str:
    for name in providers:
        try:
            return str(getattr(fake, name)())
        except AttributeError:
            continue
    return ""


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return folded.lower().replace(" ", "")


def _handset(rng: random.Random) -> HandsetBehaviour:
    roll = rng.random()
    if roll < 0.80:
        return HandsetBehaviour(answer=HandsetAnswer.APPROVE, delay=round(rng.uniform(0, 8), 1))
    if roll < 0.88:
        return HandsetBehaviour(answer=HandsetAnswer.DENY, delay=round(rng.uniform(1, 5), 1))
    if roll < 0.92:
        return HandsetBehaviour(answer=HandsetAnswer.NEVER)
    return HandsetBehaviour(answer=HandsetAnswer.APPROVE, delay=round(rng.uniform(10, 30), 1))


Placer = Callable[[Subscriber, str | None, datetime], "Location | None"]
"""Where a device that crossed a border is: (the subscriber before the crossing, the country
visited or None for home, when)."""


def _country_at(latitude: float, longitude: float) -> str:
    """The country of the gazetteer place nearest the point: which side of a border it is on
    (a distance to the country's places would not tell: Gronau, DE, is 6 km from Losser, NL).
    Nearest on the local flat projection, which ranks places as the great circle does at the
    distances that decide."""
    scale = math.cos(math.radians(latitude))

    def squared(place: tuple[float, float, str]) -> float:
        east = ((place[1] - longitude + 180.0) % 360.0 - 180.0) * scale
        return (place[0] - latitude) ** 2 + east**2

    return min(_PLACES, key=squared)[2]


def _is_country_code(value: object) -> bool:
    return isinstance(value, str) and value in _COUNTRY_CODES


def _apply(
    subscriber: Subscriber,
    changes: list[Change],
    reference: datetime,
    place: Placer | None = None,
) -> Subscriber:
    """Fold the change log over the generated subscriber, oldest first.

    A roaming change moves the device too (with ``place``): the flag alone left a subscriber
    who came home located abroad, so the network read "not roaming" and placed it in a
    country it has no cell in.
    """
    for change in changes:
        p = change.payload
        when = datetime.fromtimestamp(change.effective_at, UTC).replace(microsecond=0)
        update: dict[str, Any]
        match change.kind:
            case ChangeKind.SIM_SWAP:
                update = {"sim_swaps": (*subscriber.sim_swaps, when)}
            case ChangeKind.ROAMING:
                country = p.get("country")
                if country is not None and not _is_country_code(country):
                    raise ValueError(
                        "roaming.country must be an ISO 3166-1 alpha-2 country code in upper"
                        " case (like 'FR') or null"
                    )
                update = {"roaming_country": country}
                if place is not None and country != subscriber.roaming_country:
                    update["location"] = place(subscriber, country, when)
            case ChangeKind.CONNECTIVITY:
                update = {"connectivity": tuple(Connectivity(c) for c in p["connectivity"])}
            case ChangeKind.LOCATION:
                update = {
                    "location": Location(
                        latitude=p["latitude"],
                        longitude=p["longitude"],
                        accuracy=p.get("accuracy", 100.0),
                        observed_at=when,
                    )
                }
            case ChangeKind.PORT_OUT:
                update = {"ported_to": str(p["operator"])}
            case ChangeKind.PORT_IN:
                update = {"ported_to": None, "sim_swaps": (*subscriber.sim_swaps, when)}
            case ChangeKind.HANDSET:
                update = {"handset": HandsetBehaviour.model_validate(p)}
            case ChangeKind.OPT_OUT:
                if not isinstance(p["opt_out"], bool):
                    raise ValueError("opt_out must be true or false")
                purpose = p.get("purpose")
                if purpose is None:
                    update = {"legitimate_interest_opt_out": p["opt_out"]}
                elif not isinstance(purpose, str) or not purpose.startswith("dpv:"):
                    raise ValueError("opt_out.purpose must be a DPV purpose like 'dpv:Marketing'")
                else:
                    others = tuple(x for x in subscriber.purpose_opt_outs if x != purpose)
                    update = {"purpose_opt_outs": (*others, purpose) if p["opt_out"] else others}
        subscriber = Subscriber.model_validate({**subscriber.model_dump(), **update})
    return subscriber
