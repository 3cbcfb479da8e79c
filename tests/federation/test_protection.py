"""BearerProtection: a signature checked once per token, everything else on every call."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from federation.protection import BearerProtection
from operators import CamaraError
from operators.identity import AccessTokenClaims

from ..operators.identity.conftest import App, FakeClock, Operator, build_operator
from ..operators.identity.test_access_tokens import (
    LI_SCOPE,
    claims_of,
    signed_by_operator,
    three_legged,
)

SCOPE = "sim-swap:check"


def request(token: str) -> Request:
    headers = [(b"authorization", f"Bearer {token}".encode())]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def operator(clock: FakeClock) -> Operator:
    return build_operator(clock=clock)  # in memory: nothing to close


@pytest.fixture
def verifications(operator: Operator, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token whose signature the identity server was asked to check."""
    seen: list[str] = []
    verify = operator.server.verify_access_token

    def counted(token: str) -> AccessTokenClaims:
        seen.append(token)
        return verify(token)

    monkeypatch.setattr(operator.server, "verify_access_token", counted)
    return seen


async def refusal(protection: BearerProtection, token: str) -> CamaraError:
    with pytest.raises(CamaraError) as caught:
        await protection(request(token))
    return caught.value


async def test_the_signature_is_checked_once_and_the_grant_every_time(
    operator: Operator, verifications: list[str]
) -> None:
    app: App = operator.register()
    async with operator.http() as http:
        token = await three_legged(http, app, operator.number("approves"), LI_SCOPE)
    protection = BearerProtection(operator.server, SCOPE)
    for _ in range(3):
        context = await protection(request(token))
        assert context.client_id == app.client_id
    assert verifications == [token]
    operator.server.tokens.revoke_jti(str(operator.server.verify_access_token(token).jti))
    refused = await refusal(protection, token)
    assert (refused.status, refused.code) == (401, "UNAUTHENTICATED")


async def test_a_remembered_token_still_expires(operator: Operator, clock: FakeClock) -> None:
    app = operator.register()
    async with operator.http() as http:
        token = await three_legged(http, app, operator.number("approves"), LI_SCOPE)
    protection = BearerProtection(operator.server, SCOPE)
    await protection(request(token))
    exp = operator.server.verify_access_token(token).exp
    clock.advance(exp + operator.config.lifetimes.clock_skew - clock())  # the last instant
    refused = await refusal(protection, token)
    assert (refused.status, refused.code) == (401, "UNAUTHENTICATED")
    assert "invalid or expired" in refused.message


async def test_forged_and_scopeless_tokens_are_refused(
    operator: Operator, verifications: list[str]
) -> None:
    app = operator.register()
    forged = signed_by_operator(operator, claims_of(operator, app))[:-4] + "AAAA"
    protection = BearerProtection(operator.server, SCOPE)
    for _ in range(2):
        refused = await refusal(protection, forged)
        assert (refused.status, refused.code) == (401, "UNAUTHENTICATED")
    assert verifications == [forged, forged]  # a refusal is never remembered
    async with operator.http() as http:
        token = await three_legged(http, app, operator.number("approves"), LI_SCOPE)
    refused = await refusal(
        BearerProtection(operator.server, "location-verification:verify"), token
    )
    assert (refused.status, refused.code) == (403, "PERMISSION_DENIED")


async def test_no_bearer_is_refused_before_any_check(
    operator: Operator, verifications: list[str]
) -> None:
    protection = BearerProtection(operator.server, SCOPE)
    bare = Request({"type": "http", "method": "POST", "path": "/", "headers": []})
    for asked in (bare, request("")):
        with pytest.raises(CamaraError) as caught:
            await protection(asked)
        assert caught.value.status == 401 and "missing credentials" in caught.value.message
    assert verifications == []
