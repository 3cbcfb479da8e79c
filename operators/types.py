"""Identifiers and aliases shared by every module; this file imports nothing from ogsim."""

from collections.abc import Callable
from typing import NewType

OperatorId = NewType("OperatorId", str)
ClientId = NewType("ClientId", str)
PhoneNumber = NewType("PhoneNumber", str)
"""An E.164 number with its leading ``+`` and no separators, e.g. ``+34600000001``."""

Seconds = float
Clock = Callable[[], float]
"""A callable returning seconds; monotonic wall time live, ``lambda: env.now`` in SimPy."""

Scope = str
Purpose = str
"""A W3C DPV purpose as a scope value, e.g. ``dpv:FraudPreventionAndDetection``."""
