"""Locust's response-time percentiles to the millisecond.

Locust keeps each request's response time in a histogram whose keys it rounds to about two
significant digits (``locust.stats.bucket_response_time``): 147 ms counts as 150, 1,234 ms as
1,200. Its percentiles come from that histogram, so between 100 ms and 1 s a p95 moves in steps
of 10 ms. The capacity benchmark's bound is 20 % over the light load's p95, which is about
185 ms for the federation: read off that grid, the bound itself moves in steps of 12 ms (a light
load read as 180 or 190 puts it at 216 or 228 ms), and a level measured at 220 or 230 ms is in
or out by the rounding alone.

:func:`use_whole_milliseconds` replaces the rounding (Locust made it a module-level function for
this, in 2.43.4) with :func:`whole_milliseconds`: whole milliseconds up to :data:`FINE_UP_TO`,
whole seconds beyond (as Locust rounds there). Every process that logs requests must install it:
a worker rounds before it reports to the master, and the master only adds the workers' counts
up. Both locustfiles install it when imported, which every Locust process (local, master,
worker) does; a locustfile of one's own must call it too.

What it costs: more keys per request name. A worker reports what it logged in the last three
seconds; the master keeps about twenty copies of each name's histogram for its current
percentiles. A review's measurement, 25 names with times around 200 ms: 97 keys a name became
370, and the master's once-a-second statistics work 6.9 ms became 21.7 ms (about 1.5 % of a
core). So Locust's CPU figures before and after this change are not strictly comparable.
"""

from __future__ import annotations

import locust.stats

__all__ = ["FINE_UP_TO", "use_whole_milliseconds", "whole_milliseconds"]

FINE_UP_TO = 10_000
"""Response times below this many milliseconds are kept to the millisecond."""


def whole_milliseconds(response_time: float) -> int:
    """The histogram key of ``response_time`` (ms): rounded to the millisecond below
    :data:`FINE_UP_TO`, to the second above."""
    if response_time < FINE_UP_TO:
        return round(response_time)
    return int(round(response_time, -3))


def use_whole_milliseconds() -> None:
    """Make this process's Locust statistics keep response times to the millisecond."""
    locust.stats.bucket_response_time = whole_milliseconds
