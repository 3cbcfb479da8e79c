"""The subscriber base: seeded, lazy, consistent across lookups, changed by a persisted log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from faker.providers.geo import Provider as Gazetteer

from operators.config import OperatorConfig, example_operator
from operators.integrator import Coverage
from operators.integrator.geometry import distance_m
from operators.storage import Database
from operators.subscriber import Connectivity, HandsetAnswer, Subscriber
from operators.subscriber_base import ChangeKind, SubscriberBase
from operators.test_numbers import TEST_NUMBERS

REFERENCE = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(REFERENCE.timestamp())


def make_base(
    config: OperatorConfig, clock: FakeClock, db: Database | None = None
) -> SubscriberBase:
    return SubscriberBase(config, db or Database(), clock=clock, reference_time=REFERENCE)


def test_same_seed_same_subscribers(clock: FakeClock) -> None:
    first = make_base(example_operator(seed=3), clock)
    second = make_base(example_operator(seed=3), clock)
    numbers = list(first.numbers(50))
    assert numbers == list(second.numbers(50))
    assert [first.get(n) for n in numbers] == [second.get(n) for n in numbers]


def test_different_seeds_differ(clock: FakeClock) -> None:
    first = make_base(example_operator(seed=3), clock)
    second = make_base(example_operator(seed=4), clock)
    assert list(first.numbers(20)) != list(second.numbers(20))


def test_numbers_are_unique_inside_the_ranges_and_resolvable(clock: FakeClock) -> None:
    config = example_operator().model_copy(update={"subscribers": 2000})
    base = make_base(config, clock)
    numbers = list(base.numbers())
    assert len(set(numbers)) == 2000
    for number in numbers[:300]:
        assert config.owns(number)
        assert len(number) == config.number_digits + 1
        subscriber = base.get(number)
        assert subscriber is not None and subscriber.msisdn == number


def test_unknown_and_foreign_numbers_are_not_served(clock: FakeClock) -> None:
    base = make_base(example_operator(), clock)
    assert base.get("+4477000000001") is None
    assert base.get("+3460000000x") is None
    assert base.get("+346000000099") is None  # reserved suffix without a test number
    assert base.get("+346") is None


def test_device_address_identifies_the_subscriber(clock: FakeClock) -> None:
    base = make_base(example_operator(), clock)
    for number in [*base.numbers(30), base.test_number("approves")]:
        subscriber = base.get(number)
        assert subscriber is not None and subscriber.ipv4 is not None
        found = base.by_ipv4(subscriber.ipv4)
        assert found is not None and found.msisdn == number
    assert base.by_ipv4("192.0.2.1") is None
    assert base.by_ipv4("not-an-ip") is None


def test_imsi_carries_the_operator_network(clock: FakeClock) -> None:
    config = example_operator()
    base = make_base(config, clock)
    subscriber = base.get(next(base.numbers(1)))
    assert subscriber is not None
    assert subscriber.imsi.startswith(config.network) and len(subscriber.imsi) == 15


def test_documented_test_numbers_behave_as_documented(clock: FakeClock) -> None:
    base = make_base(example_operator(), clock)
    roles = {t.role for t in TEST_NUMBERS}
    assert {
        "recent-swap",
        "never-swapped",
        "roaming",
        "unreachable",
        "denies-consent",
        "never-answers",
        "opted-out",
    } <= roles

    def sub(role: str) -> Subscriber:
        found = base.get(base.test_number(role))
        assert found is not None
        return found

    assert REFERENCE - sub("recent-swap").latest_sim_change <= timedelta(hours=3)
    assert sub("never-swapped").sim_swaps == ()
    assert sub("roaming").roaming and sub("roaming").roaming_country != "ES"
    assert not sub("unreachable").reachable
    assert sub("sms-only").connectivity == (Connectivity.SMS,)
    assert sub("denies-consent").handset.answer is HandsetAnswer.DENY
    assert sub("never-answers").handset.answer is HandsetAnswer.NEVER
    assert sub("slow-consent").handset.delay == 10
    assert sub("opted-out").legitimate_interest_opt_out
    assert not sub("approves").roaming and sub("approves").reachable


def test_changes_apply_when_due_and_survive_a_restart(clock: FakeClock, tmp_path: Path) -> None:
    path = str(tmp_path / "op.sqlite3")
    config = example_operator(storage=path)
    db = Database(path)
    base = make_base(config, clock, db)
    number = base.test_number("approves")
    base.record_change(number, ChangeKind.SIM_SWAP, {})
    base.record_change(number, ChangeKind.ROAMING, {"country": "DE"}, at=clock.now + 3600)
    subscriber = base.get(number)
    assert subscriber is not None
    assert subscriber.latest_sim_change == datetime.fromtimestamp(clock.now, UTC)
    assert not subscriber.roaming  # scheduled, not yet due
    db.close()

    clock.now += 3601
    reopened = make_base(config, clock, Database(path))
    later = reopened.get(number)
    assert later is not None and later.roaming_country == "DE"
    assert later.latest_sim_change == datetime.fromtimestamp(clock.now - 3601, UTC)


def test_port_out_and_port_in(clock: FakeClock) -> None:
    spain = make_base(example_operator(), clock)
    number = next(spain.numbers(1))
    spain.record_change(number, ChangeKind.PORT_OUT, {"operator": "telco-fr"})
    assert spain.get(number) is None
    assert spain.known_to_have_left(number) == "telco-fr"

    france_config = OperatorConfig(
        id="telco-fr",
        display_name="Telco France",
        country="FR",
        mcc="208",
        mnc="01",
        number_ranges=("+3366",),
        seed=9,
    )
    france = make_base(france_config, clock)
    assert france.get(number) is None
    france.record_change(number, ChangeKind.PORT_IN, {"from": "telco-es"})
    ported = france.get(number)
    assert ported is not None and ported.imsi.startswith("20801")


def test_malformed_change_is_refused_before_it_lands(clock: FakeClock) -> None:
    base = make_base(example_operator(), clock)
    number = base.test_number("approves")
    with pytest.raises(ValueError, match=r"roaming\.country"):
        base.record_change(number, ChangeKind.ROAMING, {"country": "Germany"})
    assert base.changes(number, include_scheduled=True) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("number_ranges", ("3460",), "E.164"),
        ("country", "Spain", "country"),
        ("mcc", "21", "mcc"),
        ("id", "Bad Id", "id"),
    ],
)
def test_config_errors_name_the_field(field: str, value: object, message: str) -> None:
    data = example_operator().model_dump()
    data[field] = value
    with pytest.raises(ValueError, match=message):
        OperatorConfig.model_validate(data)


def test_a_ported_in_number_is_a_subject_of_the_identity_server(clock: FakeClock) -> None:
    from operators.identity import IdentityServer
    from operators.identity.subjects import UnknownSubjectError

    config = OperatorConfig(
        id="telco-fr",
        display_name="Telco France",
        country="FR",
        mcc="208",
        mnc="01",
        number_ranges=("+3366",),
        seed=9,
    )
    db = Database()
    base = make_base(config, clock, db)
    identity = IdentityServer(config, db, base, clock)
    number = "+34600000107"
    with pytest.raises(UnknownSubjectError):
        identity.subjects.resolve(f"tel:{number}")
    base.record_change(number, ChangeKind.PORT_IN, {"from": "telco-es"})
    assert identity.subjects.resolve(f"tel:{number}").msisdn == number


def test_a_kept_subscriber_changes_when_a_change_falls_due_or_is_written_elsewhere(
    clock: FakeClock, tmp_path: Path
) -> None:
    """``get`` keeps its answer, but never past the next scheduled change nor past a write
    by another data centre's handle on the same file."""
    path = str(tmp_path / "op.sqlite3")
    config = example_operator(storage=path)
    here = make_base(config, clock, Database(path))
    there = make_base(config, clock, Database(path))
    number = here.test_number("approves")
    here.record_change(number, ChangeKind.ROAMING, {"country": "DE"}, at=clock.now + 60)
    before = here.get(number)
    assert before is not None and before.roaming_country is None
    assert here.get(number) is before  # kept
    clock.now += 59.5
    assert here.get(number) is before
    clock.now += 0.5  # due now
    due = here.get(number)
    assert due is not None and due.roaming_country == "DE"
    there.record_change(number, ChangeKind.ROAMING, {"country": None})
    back = here.get(number)
    assert back is not None and back.roaming_country is None


def test_crossing_a_border_moves_the_device_too(clock: FakeClock) -> None:
    """Roaming changes moved the flag alone: a subscriber who came home read 'not roaming'
    but was still located abroad, where its home network has no cell."""
    base = make_base(example_operator(), clock)  # a Spanish network
    spain, france = Coverage.of_country("ES"), Coverage.of_country("FR")
    assert spain is not None and france is not None
    number = base.test_number("approves")

    def located(subscriber: Subscriber | None) -> tuple[float, float]:
        assert subscriber is not None and subscriber.location is not None
        return subscriber.location.latitude, subscriber.location.longitude

    assert spain.reaches(*located(base.get(number)), 1.0)
    base.record_change(number, ChangeKind.ROAMING, {"country": "FR"})
    abroad = base.get(number)
    assert abroad is not None and abroad.roaming_country == "FR"
    assert france.reaches(*located(abroad), 1.0) and not spain.reaches(*located(abroad), 1.0)
    assert abroad.location is not None
    assert abroad.location.observed_at == datetime.fromtimestamp(clock.now, UTC)

    clock.now += 3600
    base.record_change(number, ChangeKind.ROAMING, {"country": None})
    home = base.get(number)
    assert home is not None and not home.roaming
    assert spain.reaches(*located(home), 1.0) and not france.reaches(*located(home), 1.0)
    # the same log read by another replica places the device in the same spot
    assert located(make_base(example_operator(), clock, base.db).get(number)) == located(home)


def _placed_then_roaming(
    clock: FakeClock, place: tuple[float, float], country: str
) -> Subscriber | None:
    """A Spanish subscriber put at ``place`` (a LOCATION change), then roaming in ``country``
    a minute later."""
    base = make_base(example_operator(), clock)
    number = base.test_number("approves")
    at = {"latitude": place[0], "longitude": place[1], "accuracy": 50.0}
    base.record_change(number, ChangeKind.LOCATION, at)
    clock.now += 60
    base.record_change(number, ChangeKind.ROAMING, {"country": country})
    return base.get(number)


def test_a_device_placed_in_the_country_it_then_roams_in_stays_where_it_was_put(
    clock: FakeClock,
) -> None:
    """A scenario that put a Spanish device in Paris and then marked it roaming in France
    found it moved to another French town."""
    roaming = _placed_then_roaming(clock, (48.8566, 2.3522), "FR")  # Paris

    assert roaming is not None and roaming.roaming_country == "FR"
    assert roaming.location is not None
    assert (roaming.location.latitude, roaming.location.longitude) == (48.8566, 2.3522)


@pytest.mark.parametrize("country", ["fr", "F1", "FRA", "", "ZZ", 33])
def test_a_roaming_country_that_is_no_upper_case_iso_code_is_refused(
    clock: FakeClock, country: object
) -> None:
    """A lower-case ``fr`` matched no place of the gazetteer, and the device was put at a
    random point on Earth; ``ZZ`` was taken for a country."""
    base = make_base(example_operator(), clock)
    number = base.test_number("approves")

    with pytest.raises(ValueError, match=r"roaming\.country"):
        base.record_change(number, ChangeKind.ROAMING, {"country": country})

    assert base.changes(number) == []


def _country_at(subscriber: Subscriber | None) -> str:
    """The country of the gazetteer place nearest the subscriber's device."""
    assert subscriber is not None and subscriber.location is not None
    here = subscriber.location
    nearest = min(
        Gazetteer.land_coords,
        key=lambda p: distance_m(here.latitude, here.longitude, float(p[0]), float(p[1])),
    )
    return str(nearest[3])


@pytest.mark.parametrize("operator", ["ES", "FR"])
def test_each_test_number_is_located_in_the_country_it_is_in(
    clock: FakeClock, operator: str
) -> None:
    """The ``roaming`` number was flagged as roaming in France but located in Spain; a test
    number the draw made roaming was flagged at home but located abroad."""
    config = example_operator()
    if operator == "FR":
        config = config.model_copy(update={"country": "FR"})
    base = make_base(config, clock)
    for test in TEST_NUMBERS:
        subscriber = base.get(base.test_number(test.role))
        assert subscriber is not None
        country = subscriber.roaming_country or config.country
        assert _country_at(subscriber) == country, test.role


def test_every_device_crossing_a_border_ends_up_in_the_country_it_entered(
    clock: FakeClock,
) -> None:
    """A device within the visited network's cell reach (120 km, well into the home country)
    was taken to be there already, and stayed at home while flagged abroad."""
    base = make_base(example_operator(), clock)  # a Spanish network
    numbers = list(base.numbers(limit=120))
    for number in numbers:
        base.record_change(number, ChangeKind.ROAMING, {"country": "FR"})

    assert {number: _country_at(base.get(number)) for number in numbers} == dict.fromkeys(
        numbers, "FR"
    )


def test_a_lower_case_roaming_country_stored_by_an_older_version_still_reads(
    clock: FakeClock,
) -> None:
    """Codes had to be two characters, not upper case: a stored 'fr' is France, not a row
    to skip (which would have ended the subscriber's roaming on upgrade)."""
    base = make_base(example_operator(), clock)
    number = base.test_number("approves")
    base.db.insert(
        "INSERT INTO subscriber_changes (msisdn, kind, payload, effective_at, recorded_at)"
        " VALUES (?, 'roaming', '{\"country\": \"fr\"}', ?, ?)",
        (number, clock.now, clock.now),
    )

    roaming = base.get(number)

    assert roaming is not None and roaming.roaming_country == "FR"
    assert _country_at(roaming) == "FR"


def test_a_device_a_few_kilometres_from_the_border_is_moved_across_it(clock: FakeClock) -> None:
    """Gronau (DE) is 6 km from Losser (NL): a device there, roaming into the Netherlands, was
    taken to be in the Netherlands already, and stayed in Germany."""
    roaming = _placed_then_roaming(clock, (52.21099, 7.02238), "NL")  # Gronau

    assert _country_at(roaming) == "NL"


@pytest.mark.parametrize("country", ["HK", "PR", "RE", "XK"])
def test_a_roaming_country_the_faker_list_lacks_is_still_a_country(
    clock: FakeClock, country: str
) -> None:
    """ISO codes missing from Faker's list of 195 (and Kosovo's user-assigned XK, which the
    gazetteer has places of) were refused, and a row stored with one was skipped."""
    base = make_base(example_operator(), clock)
    number = base.test_number("approves")

    base.record_change(number, ChangeKind.ROAMING, {"country": country})

    roaming = base.get(number)
    assert roaming is not None and roaming.roaming_country == country
    assert _country_at(roaming) == country
