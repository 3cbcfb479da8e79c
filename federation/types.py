"""Identifiers and aliases of the federation; this file imports nothing from ogsim."""

from collections.abc import Callable
from typing import NewType

PartyId = NewType("PartyId", str)
"""An operator, aggregator, trust anchor or non-member network id, unique in a federation."""

NetworkId = str
"""MCC+MNC, e.g. ``21407``: what Telco Routing ``network`` rules and Network Id speak."""

Country = str
"""ISO 3166-1 alpha-2."""

Seconds = float
Clock = Callable[[], float]
"""A callable returning seconds: ``time.monotonic`` live, ``lambda: env.now`` in SimPy."""
