"""JWKS cache: one fetch per TTL, refresh on an unknown kid (rate-limited), no private keys,
last good keys kept through a partner's outage."""

from __future__ import annotations

from typing import Any

import httpx
from joserfc.jwk import ECKey

from federation.jwks_cache import JwksCache

from .conftest import FakeClock

ISSUER = "https://issuer.example/oauth"


class FakeIssuer:
    """An issuer's discovery document and JWKS, with a request log and an outage switch."""

    def __init__(self) -> None:
        self.keys = [ECKey.generate_key("P-256", private=True, auto_kid=True)]
        self.requests: list[str] = []
        self.down = False
        self.publish_private = False

    def rotate(self) -> ECKey:
        self.keys.append(ECKey.generate_key("P-256", private=True, auto_kid=True))
        return self.keys[-1]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if self.down:
            return httpx.Response(503)
        if request.url.path == "/oauth/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": ISSUER + "/jwks"})
        keys: list[dict[str, Any]] = [
            dict(k.as_dict(private=self.publish_private)) for k in self.keys]
        return httpx.Response(200, json={"keys": keys})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))


def jwks_fetches(issuer: FakeIssuer) -> int:
    return issuer.requests.count("/oauth/jwks")


async def test_cached_for_the_ttl(clock: FakeClock) -> None:
    issuer = FakeIssuer()
    cache = JwksCache(issuer.client(), clock=clock, ttl=300, min_refresh_interval=30)
    assert cache.cached(ISSUER) == ()
    keys = await cache.keys(ISSUER)
    assert [k.kid for k in keys] == [issuer.keys[0].kid]
    assert not any(k.is_private for k in keys)
    await cache.keys(ISSUER)
    clock.advance(299)
    await cache.keys(ISSUER, kid=issuer.keys[0].kid)
    assert jwks_fetches(issuer) == 1
    clock.advance(1)
    await cache.keys(ISSUER)
    assert jwks_fetches(issuer) == 2
    assert issuer.requests.count("/oauth/.well-known/openid-configuration") == 1


async def test_unknown_kid_refreshes_at_once_but_rate_limited(clock: FakeClock) -> None:
    issuer = FakeIssuer()
    cache = JwksCache(issuer.client(), clock=clock, ttl=300, min_refresh_interval=30)
    await cache.keys(ISSUER)
    clock.advance(31)
    new = issuer.rotate()
    keys = await cache.keys(ISSUER, kid=new.kid)
    assert new.kid in {k.kid for k in keys}, "rotation picked up well before the TTL"
    assert jwks_fetches(issuer) == 2
    for _ in range(20):  # a flood of made-up kids
        await cache.keys(ISSUER, kid="made-up")
    assert jwks_fetches(issuer) == 2, "no refresh within min_refresh_interval"
    clock.advance(30)
    await cache.keys(ISSUER, kid="made-up")
    assert jwks_fetches(issuer) == 3


async def test_outage_keeps_the_last_good_keys(clock: FakeClock) -> None:
    issuer = FakeIssuer()
    cache = JwksCache(issuer.client(), clock=clock, ttl=60, min_refresh_interval=10)
    good = await cache.keys(ISSUER)
    issuer.down = True
    clock.advance(61)
    assert await cache.keys(ISSUER) == good
    assert cache.cached(ISSUER) == good


async def test_private_keys_in_a_jwks_are_refused(clock: FakeClock) -> None:
    issuer = FakeIssuer()
    issuer.publish_private = True
    cache = JwksCache(issuer.client(), clock=clock)
    assert await cache.keys(ISSUER) == ()


async def test_jwks_uri_on_another_origin_is_not_fetched(clock: FakeClock) -> None:
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url))
        return httpx.Response(200, json={"issuer": ISSUER,
                                         "jwks_uri": "https://attacker.example/jwks"})

    cache = JwksCache(httpx.AsyncClient(transport=httpx.MockTransport(handler)), clock=clock)
    assert await cache.keys(ISSUER) == ()
    assert not any("attacker" in r for r in requests)


async def test_a_failed_first_fetch_is_retried_after_a_short_backoff(clock: FakeClock) -> None:
    """A partner still starting (or slow under load) answers nothing: the request tries once
    more, and while no key is known at all later requests try again each second instead of
    waiting the whole refresh interval; once keys are known, a made-up kid waits it again."""
    issuer = FakeIssuer()
    cache = JwksCache(issuer.client(), clock=clock, ttl=300, min_refresh_interval=30)
    issuer.down = True
    kid = issuer.keys[0].kid
    assert await cache.keys(ISSUER, kid=kid) == ()
    assert len(issuer.requests) == 2  # the request's own second try
    clock.advance(0.5)
    assert await cache.keys(ISSUER, kid=kid) == ()  # too soon: no new attempt
    assert len(issuer.requests) == 2
    for _ in range(3):  # no doubling while nothing is known
        clock.advance(1.0)
        assert await cache.keys(ISSUER, kid=kid) == ()
    assert len(issuer.requests) == 8
    issuer.down = False
    clock.advance(1.0)
    assert [k.kid for k in await cache.keys(ISSUER, kid=kid)] == [kid]
    fetched = jwks_fetches(issuer)
    await cache.keys(ISSUER, kid="made-up")
    clock.advance(5)
    await cache.keys(ISSUER, kid="made-up")
    assert jwks_fetches(issuer) == fetched
