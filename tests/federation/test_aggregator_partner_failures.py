"""What the application is told when the serving operator fails the aggregator, not the call.

A token endpoint that answers 200 with no token, an API that answers an error page instead of
a CAMARA error, a rate limit on the aggregator's own token requests, and a subscriber who does
not answer the consent prompt: each gets a CAMARA error the application can act on (503, 429
with ``Retry-After``, 504), never a 500 or a 403 that blames the application, and a consent
prompt is shown once however often the application retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from federation.config import FederationConfig
from federation.federation import Federation, quick_consent, start_federation

FRAUD = "dpv:FraudPreventionAndDetection"
CONSENTED = "dpv:ServiceProvision"
SCOPE = "sim-swap:check device-reachability-status:read"
ASGI = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def answering(inner: ASGI, path: str, status: int, body: bytes, media: bytes) -> ASGI:
    """``inner``, except that requests to ``path`` get this fixed answer."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != path:
            await inner(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", media)]})
        await send({"type": "http.response.body", "body": body})

    return app


async def started(config: FederationConfig, tmp_path: Path) -> tuple[Federation, str, str]:
    fed = await start_federation(quick_consent(config), tmp_path, probes=False)
    app = await fed.register_application("app", SCOPE, [FRAUD, CONSENTED])
    fraud = (await app.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    consent = (await app.client_credentials(f"device-reachability-status:read {CONSENTED}"))[
        "access_token"
    ]
    return fed, fraud, consent


@pytest.fixture
async def world(
    federation: FederationConfig, tmp_path: Path
) -> AsyncIterator[tuple[Federation, str, str]]:
    fed, fraud, consent = await started(federation, tmp_path)
    yield fed, fraud, consent
    await fed.stop()


async def check(fed: Federation, token: str, number: str) -> httpx.Response:
    return await fed.http.post(
        f"{fed.aggregator.api_root}/sim-swap/v2/check",
        json={"phoneNumber": number, "maxAge": 24},
        headers={"Authorization": f"Bearer {token}"},
    )


def error_info(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert isinstance(body.get("message"), str) and body["message"], body
    assert body["status"] == response.status_code, body
    return response.status_code, body["code"]


GARBLED_TOKENS = {
    "an HTML page": (b"<html>maintenance</html>", b"text/html"),
    "a JSON list": (b"[]", b"application/json"),
    "no access_token": (b'{"token_type": "Bearer"}', b"application/json"),
    "an expires_in that is no number": (
        b'{"access_token": "x", "token_type": "Bearer", "expires_in": "soon"}',
        b"application/json",
    ),
}


@pytest.mark.parametrize("answer", list(GARBLED_TOKENS))
async def test_a_token_endpoint_answering_200_without_a_token_is_a_503(
    world: tuple[Federation, str, str], answer: str
) -> None:
    """Before, the hub failed on a missing key or a bad float: a 500."""
    fed, fraud, _ = world
    member = fed.members["telco-fr"]
    body, media = GARBLED_TOKENS[answer]
    fed.network.add(member.api_root, answering(member.front, "/oauth/token", 200, body, media))
    refused = await check(fed, fraud, fed.operator("telco-fr").subscribers.test_number("approves"))
    assert error_info(refused) == (503, "UNAVAILABLE")
    assert "telco-fr's authorization server failed" in refused.json()["message"]
    served = await check(fed, fraud, fed.operator("telco-es").subscribers.test_number("approves"))
    assert served.status_code == 200, served.text


@pytest.mark.parametrize(
    ("status", "body", "media"),
    [
        (500, b"Internal Server Error", b"text/plain"),
        (502, b"<html>Bad Gateway</html>", b"text/html"),
        (404, b'{"detail": "Not Found"}', b"application/json"),
    ],
)
async def test_an_error_that_is_no_camara_error_is_a_503(
    world: tuple[Federation, str, str], status: int, body: bytes, media: bytes
) -> None:
    """Before, the operator's page or text went to the application as it was."""
    fed, fraud, _ = world
    member = fed.members["telco-fr"]
    fed.network.add(
        member.api_root, answering(member.front, "/sim-swap/v2/check", status, body, media)
    )
    failed = await check(fed, fraud, fed.operator("telco-fr").subscribers.test_number("approves"))
    assert error_info(failed) == (503, "UNAVAILABLE")
    assert f"({status}, not a CAMARA error)" in failed.json()["message"]


async def test_a_camara_error_of_the_operator_goes_back_as_it_is(
    world: tuple[Federation, str, str],
) -> None:
    fed, fraud, _ = world
    member = fed.members["telco-fr"]
    error = b'{"status": 422, "code": "SOME_CODE", "message": "as the operator said"}'
    fed.network.add(
        member.api_root,
        answering(member.front, "/sim-swap/v2/check", 422, error, b"application/json"),
    )
    passed = await check(fed, fraud, fed.operator("telco-fr").subscribers.test_number("approves"))
    assert error_info(passed) == (422, "SOME_CODE")


async def test_an_operator_limiting_the_hubs_token_requests_is_a_429_not_a_refusal(
    federation: FederationConfig, tmp_path: Path
) -> None:
    """Before, the operator's 429 on the hub's own token requests reached the application
    as 403 PERMISSION_DENIED, as if it were not allowed."""
    limited = tuple(
        o.model_copy(update={"token_rate_limit": o.token_rate_limit.model_copy(
            update={"burst": 2, "rate_per_second": 0.01})}) if o.id == "telco-fr" else o
        for o in federation.operators
    )  # fmt: skip
    fed, fraud, _ = await started(
        federation.model_copy(update={"operators": limited}), tmp_path
    )
    try:
        subscribers = fed.operator("telco-fr").subscribers
        answers = [
            await check(fed, fraud, subscribers.test_number(role))
            for role in ("approves", "recent-swap", "never-swapped", "roaming")
        ]
        statuses = [a.status_code for a in answers]
        assert 200 in statuses and 403 not in statuses, [a.text for a in answers]
        limited_answer = next(a for a in answers if a.status_code != 200)
        assert error_info(limited_answer) == (429, "TOO_MANY_REQUESTS")
        assert int(limited_answer.headers["retry-after"]) >= 1
    finally:
        await fed.stop()


def pending_rounds(fed: Federation, operator: str, number: str) -> int:
    rows = fed.operator(operator).identity.db.all(
        "SELECT auth_req_id FROM identity_ciba_requests WHERE msisdn = ?", (number,)
    )
    return len(rows)


async def test_a_consent_nobody_answers_is_a_504_and_retries_share_one_prompt(
    world: tuple[Federation, str, str],
) -> None:
    """Before, each call (and each retry) started its own CIBA request, one more prompt on
    the subscriber's handset, and held the application for the request's whole lifetime."""
    fed, _, consent = world
    fed.aggregator.consent_wait = 0.3
    number = fed.operator("telco-es").subscribers.test_number("never-answers")

    async def retrieve() -> httpx.Response:
        return await fed.http.post(
            f"{fed.aggregator.api_root}/device-reachability-status/v1/retrieve",
            json={"device": {"phoneNumber": number}},
            headers={"Authorization": f"Bearer {consent}"},
        )

    together = await asyncio.gather(retrieve(), retrieve(), retrieve())
    again = await retrieve()
    for answer in (*together, again):
        assert error_info(answer) == (504, "TIMEOUT")
        assert "has not answered telco-es's consent request in 0.3 s" in answer.json()["message"]
    assert pending_rounds(fed, "telco-es", number) == 1
