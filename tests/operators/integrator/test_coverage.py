"""Location Verification of an area the network cannot reach: 422 AREA_NOT_COVERED, not FALSE."""

from __future__ import annotations

import pytest

from operators.camara import Point, VerifyCircle
from operators.config import example_operator
from operators.errors import CamaraError
from operators.integrator import BackendCall, Coverage
from operators.integrator import operations as ops
from operators.storage import Database
from operators.subscriber_base import SubscriberBase

SYDNEY = VerifyCircle(
    areaType="CIRCLE", center=Point(latitude=-33.8688, longitude=151.2093), radius=50_000
)
MADRID = VerifyCircle(
    areaType="CIRCLE", center=Point(latitude=40.4168, longitude=-3.7038), radius=5_000
)


def test_an_area_no_cell_reaches_is_refused_before_the_device_is_looked_for() -> None:
    spain = Coverage.of_country("ES")
    assert spain is not None
    flow = ops.verify_location("+34600000001", SYDNEY, None, 0.0, None, spain)
    with pytest.raises(CamaraError) as refused:
        next(flow)  # no backend call was made: the subscriber's data is not processed
    assert (refused.value.status, refused.value.code) == (
        422,
        "LOCATION_VERIFICATION.AREA_NOT_COVERED",
    )
    covered = ops.verify_location("+34600000001", MADRID, None, 0.0, None, spain)
    assert isinstance(next(covered), BackendCall)


def test_a_circle_large_enough_to_reach_a_cell_is_covered() -> None:
    spain = Coverage.of_country("ES")
    assert spain is not None
    rabat = (34.0209, -6.8416)  # 378 km from the nearest Spanish place of the gazetteer
    assert not spain.reaches(*rabat, 1_000)
    assert spain.reaches(*rabat, 300_000)


def test_every_home_the_subscriber_base_generates_is_covered() -> None:
    """Homes are drawn from the same gazetteer, so no subscriber at home is out of coverage."""
    config = example_operator()
    base = SubscriberBase(config, Database())
    spain = Coverage.of_country(config.country)
    assert spain is not None
    at_home = [s for s in map(base.get, base.numbers(limit=400)) if s and not s.roaming_country]
    assert len(at_home) > 150
    assert all(
        spain.reaches(s.location.latitude, s.location.longitude, 1.0) for s in at_home
    )


def test_a_country_the_gazetteer_does_not_know_is_not_modelled() -> None:
    assert Coverage.of_country("XX") is None
    unmodelled = ops.verify_location("+34600000001", SYDNEY, None, 0.0, None, None)
    assert isinstance(next(unmodelled), BackendCall)
