"""Fixtures: a fresh subscriber base with a fixed calendar clock, and small station specs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from operators.config import example_operator
from operators.storage import Database
from operators.subscriber_base import SubscriberBase

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def subscribers() -> SubscriberBase:
    return SubscriberBase(example_operator(), Database(), clock=lambda: NOW)
