"""Circle geometry for location verification: the share of the network's area in the asked one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Overlap", "OverlapKind", "circle_overlap", "distance_m"]

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class OverlapKind(StrEnum):
    INSIDE = "inside"  # the network's circle lies wholly in the requested one
    DISJOINT = "disjoint"
    PARTIAL = "partial"


@dataclass(frozen=True, slots=True)
class Overlap:
    kind: OverlapKind
    fraction: float
    """Area of (requested ∩ network) / area of network, in [0, 1]."""


def circle_overlap(distance: float, network_radius: float, requested_radius: float) -> Overlap:
    """Relate the network's circle N to the requested circle R (planar, fine at these scales)."""
    d, rn, rr = distance, network_radius, requested_radius
    if d + rn <= rr:
        return Overlap(OverlapKind.INSIDE, 1.0)
    if d >= rn + rr:
        return Overlap(OverlapKind.DISJOINT, 0.0)
    if d + rr <= rn:  # R wholly inside N
        return Overlap(OverlapKind.PARTIAL, (rr / rn) ** 2)
    a = rn * rn * math.acos(max(-1.0, min(1.0, (d * d + rn * rn - rr * rr) / (2 * d * rn))))
    b = rr * rr * math.acos(max(-1.0, min(1.0, (d * d + rr * rr - rn * rn) / (2 * d * rr))))
    c = 0.5 * math.sqrt(max(0.0, (-d + rn + rr) * (d + rn - rr) * (d - rn + rr) * (d + rn + rr)))
    return Overlap(OverlapKind.PARTIAL, (a + b - c) / (math.pi * rn * rn))
