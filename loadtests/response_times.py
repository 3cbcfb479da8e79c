"""Locust's response-time percentiles to the whole millisecond.

Locust keeps each request's response time in a histogram whose keys it rounds to about two
significant digits (``locust.stats.bucket_response_time``): 147 ms counts as 150, 1,234 ms as
1,200. Its percentiles come from that histogram, so between 100 ms and 1 s a p95 moves in steps
of 10 ms. The capacity benchmark's bound is 20 % over the light load's p95, which is about
185 ms for the federation: a light load read as 180 or 190 puts the bound at 216 or 228 ms,
and a level measured at 220 or 230 is in or out by that rounding alone.

:func:`use_whole_milliseconds` replaces the rounding (Locust made it a module-level function for
this, in 2.43.4) with :func:`whole_milliseconds`: whole milliseconds up to :data:`FINE_UP_TO`,
Locust's own steps beyond. Every process that logs requests must install it: a worker rounds
before it reports to the master, and the master only adds the workers' histograms. Both
locustfiles install it when imported, which every Locust process (local, master, worker) does.

The histogram stays bounded (at most :data:`FINE_UP_TO` fine keys plus Locust's coarse ones
beyond), which is what Locust's rounding protects: the master receives each worker's
histogram every three seconds.
"""

from __future__ import annotations

import locust.stats

__all__ = ["FINE_UP_TO", "use_whole_milliseconds", "whole_milliseconds"]

FINE_UP_TO = 10_000
"""Response times below this many milliseconds are kept to the millisecond."""

_locust_rounding = locust.stats.bucket_response_time
"""Locust's own rounding, for response times of :data:`FINE_UP_TO` or more."""


def whole_milliseconds(response_time: float) -> int:
    """The histogram key of ``response_time`` (ms): rounded to the millisecond below
    :data:`FINE_UP_TO`, to Locust's two significant digits above."""
    if response_time < FINE_UP_TO:
        return round(response_time)
    return _locust_rounding(response_time)


def use_whole_milliseconds() -> None:
    """Make this process's Locust statistics keep response times to the millisecond."""
    locust.stats.bucket_response_time = whole_milliseconds
