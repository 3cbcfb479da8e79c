"""The number-verification authenticator: which MSISDN holds the device address of a request."""

from __future__ import annotations

from operators.subscriber_base import SubscriberBase

from .errors import SubscriberUnknown
from .records import IpQuery, NvBinding

__all__ = ["NvAuthenticator"]


class NvAuthenticator:
    """Maps a device IPv4 address (as seen on the operator's data path) to its subscriber."""

    name = "nv"

    def __init__(self, subscribers: SubscriberBase) -> None:
        self.subscribers = subscribers

    def __call__(self, query: IpQuery) -> NvBinding:
        subscriber = self.subscribers.by_ipv4(query.ipv4)
        if subscriber is None:
            raise SubscriberUnknown(self.name, f"no device at {query.ipv4}")
        return NvBinding(ipv4=query.ipv4, msisdn=subscriber.msisdn, imsi=subscriber.imsi)
