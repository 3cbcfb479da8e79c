"""The location server (GMLC-like): a position estimate with its uncertainty and age."""

from __future__ import annotations

from operators.subscriber_base import SubscriberBase

from .errors import SubscriberUnknown
from .records import MsisdnQuery, PositionEstimate

__all__ = ["LocationServer"]


class LocationServer:
    """Answers the last fix of a device; its age is measured on the subscriber base's clock.

    Using the base's calendar clock (not the realisation's) keeps the answer for a number the
    same live and in virtual time.
    """

    name = "gmlc"

    def __init__(self, subscribers: SubscriberBase) -> None:
        self.subscribers = subscribers

    def __call__(self, query: MsisdnQuery) -> PositionEstimate:
        subscriber = self.subscribers.get(query.msisdn)
        if subscriber is None:
            raise SubscriberUnknown(self.name, f"no subscriber {query.msisdn}")
        fix = subscriber.location
        fix_time = fix.observed_at.timestamp()
        return PositionEstimate(
            msisdn=subscriber.msisdn,
            latitude=fix.latitude,
            longitude=fix.longitude,
            uncertainty_radius=fix.accuracy,
            age_of_location=max(0, int(self.subscribers.clock() - fix_time)),
            fix_timestamp=int(fix_time),
        )
