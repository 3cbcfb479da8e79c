"""Service-time draws as plain functions, apart from the models that describe them.

:mod:`operators.core.description`'s pydantic models say which distribution a network function
has; each model's ``sampler()`` hands out one of these, with its parameters worked out once.
They live here because the simulation draws one per backend call, and the opt-in compiled
build (``benchmarks/build_compiled.py``) can compile this module but not one that defines
pydantic models. Each draws exactly what the model's ``sample`` draws from the same stream.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

__all__ = ["Sampler", "constant", "empirical", "exponential", "lognormal"]

Sampler = Callable[[random.Random], float]
"""Draws one service time from a stream: a distribution with its parameters worked out."""


def exponential(rate: float) -> Sampler:
    """``Random.expovariate(rate)``'s own formula written out (as
    :func:`sim.traffic.arrival_times` does): the same bits give the same float, one frame less."""
    log = math.log

    def sample(rng: random.Random) -> float:
        return -log(1.0 - rng.random()) / rate

    return sample


def lognormal(mu: float, sigma: float) -> Sampler:
    """``Random.lognormvariate(mu, sigma)``."""

    def sample(rng: random.Random) -> float:
        return rng.lognormvariate(mu, sigma)

    return sample


def constant(value: float) -> Sampler:
    """Always ``value``: the stream is not read."""

    def sample(rng: random.Random) -> float:
        return value

    return sample


def empirical(samples: tuple[float, ...]) -> Sampler:
    """One of ``samples``, as ``samples[rng.randrange(len(samples))]`` picks it."""
    count = len(samples)

    def sample(rng: random.Random) -> float:
        return samples[rng.randrange(count)]

    return sample
