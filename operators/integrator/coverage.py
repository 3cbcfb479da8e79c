"""Where an operator's network can locate a device: its radio coverage, for Location
Verification's ``AREA_NOT_COVERED``.

A device is placed by the cells that hear it, so an operator can verify an area only where it
has cells: an area around Sydney asked of a Spanish operator cannot be verified at all, which
location-verification.yaml answers with 422 ``LOCATION_VERIFICATION.AREA_NOT_COVERED`` rather
than ``FALSE``. The model: cells within :data:`CELL_REACH` of each of the country's places in
the same gazetteer the subscriber base puts its subscribers' homes at (Faker's, within 6 km of
a place), so every generated home is covered and the open sea, other continents and most of
the neighbours are not. A roaming subscriber is placed in the country it visits, so mostly out
of the home network's coverage, as a home operator cannot page a device on a visited network;
the model asks only where the area is, so a roaming device near the border (within the cells'
reach of home) can still be verified by its home network.
"""

from __future__ import annotations

from dataclasses import dataclass

from faker.providers.geo import Provider as _Places

from .geometry import distance_m

__all__ = ["CELL_REACH", "Coverage"]

CELL_REACH = 120_000.0
"""Metres from a place of the country within which the network has cells."""


@dataclass(frozen=True, slots=True)
class Coverage:
    """The places (latitude, longitude) of a network's coverage, each reaching ``reach`` metres."""

    places: tuple[tuple[float, float], ...]
    reach: float = CELL_REACH

    @classmethod
    def of_country(cls, country: str, reach: float = CELL_REACH) -> Coverage | None:
        """The coverage of a network in ``country`` (ISO 3166-1 alpha-2); None for a country
        the gazetteer has no place of, whose coverage is then not modelled (everything is
        covered, as before coverage was)."""
        places = tuple(
            (float(lat), float(lon))
            for lat, lon, _name, code, _zone in _Places.land_coords
            if code == country
        )
        return cls(places, reach) if places else None

    def reaches(self, latitude: float, longitude: float, radius: float) -> bool:
        """Whether any cell can hear a device in the circle: some place's reach meets it."""
        return any(
            distance_m(latitude, longitude, lat, lon) <= radius + self.reach
            for lat, lon in self.places
        )

    def centre(self) -> tuple[float, float]:
        """A covered point (the first place): where a simulated workload asks about."""
        return self.places[0]
