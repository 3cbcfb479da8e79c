"""A data-centre site counts the calls it serves or refuses; its health probes are not calls."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from federation.data_centres import DataCentreSite


def health_app() -> Starlette:
    return Starlette(routes=[Route("/health", lambda _: PlainTextResponse("ok"))])


async def test_health_probes_are_not_counted_as_served_or_failed_calls() -> None:
    site = DataCentreSite("telco-es", "madrid", health_app())
    assert await site.healthy(1.0)
    assert (site.served, site.failed) == (0, 0)  # was: each probe counted as a served call
    site.available = False
    assert not await site.healthy(1.0)  # a site taken down still fails its probes
    assert (site.served, site.failed) == (0, 0)
