"""Is an answer right? Its body against the official CAMARA schema, its data against the
subscriber's records. Each check returns the reasons it is wrong (empty when it is right).

Schemas come from the CAMARA definitions (``$OGSIM_CAMARA_DIR``, else ``../shared/camara``)
through :mod:`loadtests.conformance.openapi`; an API whose definition is missing is checked
on its data only, and :func:`schema_source` says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .camara_definitions import camara_dir
from .conformance.openapi import ApiSpec, load_spec
from .federation_view import SubscriberTruth

SPEC_FILES: dict[str, str] = {
    "sim-swap": "sim-swap/sim-swap.yaml",
    "location-verification": "location/location-verification.yaml",
    "location-retrieval": "location/location-retrieval.yaml",
    "device-reachability-status": "device-status/device-reachability-status.yaml",
    "device-roaming-status": "device-status/device-roaming-status.yaml",
    "quality-on-demand": "quality-on-demand/quality-on-demand.yaml",
}

BOUNDARY = timedelta(hours=1)
"""A SIM change this close to a ``maxAge`` boundary may be judged either way; not checked."""


class SchemaBook:
    """Response schemas of the CAMARA operations a load test calls, loaded once."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or camara_dir()
        common = self.root / "commonalities" / "CAMARA_common.yaml"
        self.specs: dict[str, ApiSpec] = {}
        self._schemas: dict[tuple[str, str, int], dict[str, Any] | None] = {}
        for api, relative in SPEC_FILES.items():
            path = self.root / relative
            if path.exists():
                self.specs[api] = load_spec(path, common)

    def schema_source(self) -> str:
        missing = sorted(set(SPEC_FILES) - set(self.specs))
        where = f"CAMARA definitions in {self.root}"
        return where + (f" (missing, data checks only: {', '.join(missing)})" if missing else "")

    def errors(self, api: str, operation_id: str, status: int, body: Any) -> list[str]:
        spec = self.specs.get(api)
        if spec is None:
            return []
        key = (api, operation_id, status)
        schema = self._schemas.get(key, ...)
        if schema is ...:  # looked up once: every answer of the run asks again
            operation = spec.operations.get(operation_id)
            if operation is None:
                return [f"{api} has no operation {operation_id}"]
            schema = self._schemas[key] = spec.response_schema(operation, status)
        if schema is None:
            return [] if status == 204 else [f"{operation_id} declares no {status} answer"]
        return [f"schema: {e}" for e in spec.errors(body, schema)]


# -- data checks: each returns the reasons an answer is wrong -----------------------------

Check = Callable[[Any], list[str]]


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def sim_swap_check(truth: SubscriberTruth, max_age_hours: int, now: datetime) -> Check:
    boundary = now - timedelta(hours=max_age_hours)
    latest = max(truth.sim_swaps) if truth.sim_swaps else None
    undecidable = latest is not None and abs(latest - boundary) < BOUNDARY
    expected = latest is not None and latest >= boundary

    def check(body: Any) -> list[str]:
        if undecidable or not isinstance(body, dict):
            return []
        if body.get("swapped") is not expected:
            return [f"swapped={body.get('swapped')} for {truth.number}, records say {expected}"]
        return []

    return check


def sim_swap_date(truth: SubscriberTruth) -> Check:
    def check(body: Any) -> list[str]:
        if not isinstance(body, dict):
            return []
        got = _parse(body.get("latestSimChange"))
        want = truth.latest_sim_change
        if got is None or abs((got - want).total_seconds()) > 1:
            return [
                f"latestSimChange={body.get('latestSimChange')} for {truth.number}, "
                f"records say {want.isoformat()}"
            ]
        return []

    return check


def reachability(truth: SubscriberTruth) -> Check:
    def check(body: Any) -> list[str]:
        if not isinstance(body, dict):
            return []
        reachable = bool(truth.connectivity)
        wrong = []
        if body.get("reachable") is not reachable:
            wrong.append(f"reachable={body.get('reachable')} for {truth.number}")
        if reachable and set(body.get("connectivity") or ()) != set(truth.connectivity):
            wrong.append(
                f"connectivity={body.get('connectivity')} for {truth.number}, "
                f"records say {list(truth.connectivity)}"
            )
        return wrong

    return check


def roaming(truth: SubscriberTruth) -> Check:
    def check(body: Any) -> list[str]:
        if not isinstance(body, dict):
            return []
        expected = truth.roaming_country is not None
        if body.get("roaming") is not expected:
            return [f"roaming={body.get('roaming')} for {truth.number}, records say {expected}"]
        if expected and truth.roaming_country not in (body.get("countryName") or []):
            return [
                f"countryName={body.get('countryName')} for {truth.number}, "
                f"records say {truth.roaming_country}"
            ]
        return []

    return check


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


@dataclass(frozen=True)
class Area:
    latitude: float
    longitude: float
    radius: int

    def wire(self) -> dict[str, Any]:
        return {
            "areaType": "CIRCLE",
            "center": {"latitude": self.latitude, "longitude": self.longitude},
            "radius": self.radius,
        }


def area_around(truth: SubscriberTruth, radius: int = 5000) -> Area:
    return Area(round(truth.latitude, 6), round(truth.longitude, 6), radius)


def area_far_from(truth: SubscriberTruth, radius: int = 5000) -> Area:
    """A circle some 60 km north (south, near the pole) of the device: it cannot be in it,
    and the circle is still where its network has cells (the other side of the planet is
    no operator's coverage: 422 AREA_NOT_COVERED, not FALSE)."""
    step = 0.55 if truth.latitude < 85 else -0.55
    return Area(round(truth.latitude + step, 6), round(truth.longitude, 6), radius)


def location_verification(truth: SubscriberTruth, area: Area) -> Check:
    centre = distance_m(truth.latitude, truth.longitude, area.latitude, area.longitude)
    if centre + truth.accuracy <= area.radius / 2:
        allowed = {"TRUE"}
    elif centre - truth.accuracy >= area.radius * 2:
        allowed = {"FALSE"}
    else:
        allowed = {"TRUE", "PARTIAL", "FALSE"}

    def check(body: Any) -> list[str]:
        if not isinstance(body, dict):
            return []
        result = body.get("verificationResult")
        if result not in allowed:
            return [
                f"verificationResult={result} for {truth.number} {centre:.0f} m from the "
                f"centre of a {area.radius} m circle, expected {sorted(allowed)}"
            ]
        return []

    return check


def location_retrieval(truth: SubscriberTruth, tolerance_m: float = 1000.0) -> Check:
    def check(body: Any) -> list[str]:
        if not isinstance(body, dict):
            return []
        centre = (body.get("area") or {}).get("center") or {}
        try:
            off = distance_m(
                truth.latitude,
                truth.longitude,
                float(centre["latitude"]),
                float(centre["longitude"]),
            )
        except (KeyError, TypeError, ValueError):
            return [f"no area centre for {truth.number}"]
        if off > tolerance_m + truth.accuracy:
            return [f"retrieved location of {truth.number} is {off:.0f} m from its records"]
        return []

    return check


def qod_session(number: str, profile: str, duration: int, session_id: str | None = None) -> Check:
    def check(body: Any) -> list[str]:
        if not isinstance(body, dict):
            return []
        wrong = []
        if session_id is not None and body.get("sessionId") != session_id:
            wrong.append(f"sessionId={body.get('sessionId')}, asked for {session_id}")
        if body.get("qosProfile") != profile:
            wrong.append(f"qosProfile={body.get('qosProfile')}, asked for {profile}")
        device = body.get("device") or {}
        if device.get("phoneNumber") not in (None, number):
            wrong.append(f"device {device.get('phoneNumber')}, asked for {number}")
        if body.get("duration") != duration:
            wrong.append(f"duration={body.get('duration')}, expected {duration}")
        return wrong

    return check


def nothing(_: Any) -> list[str]:
    return []
