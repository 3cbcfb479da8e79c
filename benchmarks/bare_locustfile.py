"""Locust users for the capacity benchmark's yardstick: a bare FastAPI endpoint.

Each user posts SIM Swap's check body to ``OGSIM_BARE_URL`` with the same think time as the
load test's applications (uniform 0.5 to 1.5 s, times ``OGSIM_THINK_SCALE``) and checks the
answer, so the bare ladder differs from the federation's in what serves the calls only: no
tokens, no policies, no backends, no second hop.
"""

from __future__ import annotations

import os
import random

from locust import task
from locust.contrib.fasthttp import FastHttpUser

from loadtests.response_times import use_whole_milliseconds

use_whole_milliseconds()  # the same percentiles as the federation's ladder

THINK_SCALE = float(os.environ.get("OGSIM_THINK_SCALE", "1") or 1)
BODY = {"phoneNumber": "+34600000001", "maxAge": 24}
EXPECTED = {"swapped": False}


class BareCaller(FastHttpUser):
    """Posts one check, verifies the exact answer, thinks, repeats."""

    host = os.environ.get("OGSIM_BARE_URL", "http://127.0.0.1:8000")
    think = (0.5, 1.5)

    def wait_time(self) -> float:
        low, high = self.think
        return random.uniform(low, high) * THINK_SCALE

    @task
    def check(self) -> None:
        with self.client.post(
            "/sim-swap/v2/check", json=BODY, name="bare check", catch_response=True
        ) as response:
            if response.status_code != 200 or response.json() != EXPECTED:
                response.failure(f"{response.status_code}: {response.text[:200]}")
