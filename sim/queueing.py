"""Queueing theory for the network core: M/M/1, M/M/c (Erlang C) and M/M/c/K (loss formula).

Pure functions of rates, so the validation can hold a simulated or live function against the
numbers a textbook gives. Rates are per second; ``offered_load`` is ``λ/μ`` in Erlangs.
``capacity`` is K of M/M/c/K, the most calls in the system (``servers + queue_limit``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["QueueMetrics", "erlang_b", "erlang_c", "mm1", "mmc", "mmck"]


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    """Steady-state means of one station; waits and sojourns are of admitted calls."""

    arrival_rate: float
    service_rate: float
    servers: int
    capacity: int | None
    utilisation: float
    """Share of time an average server is busy (carried load / servers)."""
    p_wait: float
    """Probability that an admitted call waits for a server."""
    p_block: float
    """Probability that an arriving call is rejected (0 with an unbounded waiting room)."""
    lq: float
    l: float  # noqa: E741 - the textbook's L
    wq: float
    w: float
    throughput: float
    """Admitted (and, in steady state, served) calls per second: λ(1 - p_block)."""


def _check(arrival_rate: float, service_rate: float, servers: int) -> None:
    if arrival_rate < 0 or not math.isfinite(arrival_rate):
        raise ValueError("arrival_rate must be finite and non-negative")
    if service_rate <= 0 or not math.isfinite(service_rate):
        raise ValueError("service_rate must be finite and positive")
    if servers < 1:
        raise ValueError("servers must be at least 1")


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B: blocking probability of M/M/c/c, by the stable recursion B(n) = AB/(n + AB)."""
    if servers < 0:
        raise ValueError("servers must be non-negative")
    if offered_load < 0:
        raise ValueError("offered_load must be non-negative")
    blocking = 1.0
    for n in range(1, servers + 1):
        blocking = offered_load * blocking / (n + offered_load * blocking)
    return blocking


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: probability that a call waits in M/M/c; 1 when the load is not below c."""
    if servers < 1:
        raise ValueError("servers must be at least 1")
    if offered_load >= servers:
        return 1.0
    blocking = erlang_b(servers, offered_load)
    return servers * blocking / (servers - offered_load * (1 - blocking))


def mmc(arrival_rate: float, service_rate: float, servers: int) -> QueueMetrics:
    """M/M/c with an unbounded FIFO queue; raises when λ ≥ cμ (no steady state)."""
    _check(arrival_rate, service_rate, servers)
    load = arrival_rate / service_rate
    if load >= servers:
        raise ValueError(f"unstable: offered load {load:g} Erl on {servers} servers")
    p_wait = erlang_c(servers, load)
    wq = p_wait / (servers * service_rate - arrival_rate)
    w = wq + 1 / service_rate
    return QueueMetrics(
        arrival_rate=arrival_rate,
        service_rate=service_rate,
        servers=servers,
        capacity=None,
        utilisation=load / servers,
        p_wait=p_wait,
        p_block=0.0,
        lq=arrival_rate * wq,
        l=arrival_rate * w,
        wq=wq,
        w=w,
        throughput=arrival_rate,
    )


def mm1(arrival_rate: float, service_rate: float) -> QueueMetrics:
    """M/M/1: Wq = rho/(μ - λ), L = rho/(1 - rho) with rho = λ/μ."""
    return mmc(arrival_rate, service_rate, 1)


def mmck(arrival_rate: float, service_rate: float, servers: int, capacity: int) -> QueueMetrics:
    """M/M/c/K: at most K calls in the system, the rest lost; stable at any load.

    The state probabilities are the birth-death ones, p_n ∝ Aⁿ/n! for n ≤ c and
    p_n ∝ Aᶜ/c! (A/c)ⁿ⁻ᶜ above; p_K is the loss formula's blocking probability.
    """
    _check(arrival_rate, service_rate, servers)
    if capacity < servers:
        raise ValueError("capacity (K) must be at least the number of servers")
    load = arrival_rate / service_rate
    terms = [1.0]
    for n in range(1, capacity + 1):
        terms.append(terms[-1] * load / min(n, servers))
    total = math.fsum(terms)
    p = [t / total for t in terms]
    p_block = p[capacity]
    throughput = arrival_rate * (1 - p_block)
    lq = math.fsum((n - servers) * p[n] for n in range(servers + 1, capacity + 1))
    busy = math.fsum(min(n, servers) * p[n] for n in range(capacity + 1))
    admitted = 1 - p_block
    p_wait = math.fsum(p[servers:capacity]) / admitted if admitted > 0 else 1.0
    wq = lq / throughput if throughput > 0 else 0.0
    w = wq + 1 / service_rate
    return QueueMetrics(
        arrival_rate=arrival_rate,
        service_rate=service_rate,
        servers=servers,
        capacity=capacity,
        utilisation=busy / servers,
        p_wait=p_wait,
        p_block=p_block,
        lq=lq,
        l=lq + busy,
        wq=wq,
        w=w,
        throughput=throughput,
    )
