"""A partner's JSON answer nested past the parser's depth is a bad answer (ValueError), not a
RecursionError that every ``except ValueError`` misses."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from federation.network_id import HttpNetworkId
from federation.partner_answers import partner_json
from federation.telco_finder import HttpSecondLevelFinder, SearchRequest
from operators import CamaraError
from operators.camara.consent_info import status_info
from operators.identity.consent_status import ProcessingStatus


def answer(content: bytes) -> httpx.Response:
    return httpx.Response(200, content=content, request=httpx.Request("POST", "http://p.test/"))


def test_json_is_read_and_nested_json_is_a_value_error() -> None:
    assert partner_json(answer(b'{"operatorId": "telco-es"}')) == {"operatorId": "telco-es"}
    with pytest.raises(ValueError, match="nested too deeply"):
        partner_json(answer(b"[" * 5000))
    with pytest.raises(ValueError):
        partner_json(answer(b"not json"))


def test_a_consent_stored_for_centuries_shows_no_date_rather_than_failing() -> None:
    """Stored before grants were capped at ten years: no date can hold its expiry."""
    shown = status_info(ProcessingStatus(("kyc-match:match",), "dpv:IdentityVerification",
                                         True, None, 1e13))
    assert shown.statusValidForProcessing and shown.expirationDate is None
    near = status_info(ProcessingStatus(("kyc-match:match",), "dpv:IdentityVerification",
                                        True, None, 2e9))
    assert near.expirationDate is not None and near.expirationDate.year == 2033


PARTNER_DOWN = [
    ("down", lambda request: (_ for _ in ()).throw(httpx.ConnectError("refused", request=request))),
    ("503", lambda request: httpx.Response(503, json={"code": "UNAVAILABLE"})),
    ("429", lambda request: httpx.Response(429, json={"code": "TOO_MANY_REQUESTS"})),
    ("not json", lambda request: httpx.Response(200, content=b"<html>")),
    ("a list", lambda request: httpx.Response(200, json=["telco-gb"])),
]


@pytest.mark.parametrize(("case", "answers"), PARTNER_DOWN, ids=[c for c, _ in PARTNER_DOWN])
async def test_a_partner_lookup_that_fails_is_a_503_not_a_500(case: str, answers: Any) -> None:
    """A second-level Telco Finder or a Network ID register that is down, refuses or answers
    nonsense makes the hub answer 503 UNAVAILABLE, as for a partner gateway that is down;
    a 404 still means that nobody is known."""
    request = SearchRequest.model_validate({"target": {"phoneNumber": "+447700900123"}})
    async with httpx.AsyncClient(transport=httpx.MockTransport(answers)) as http:
        with pytest.raises(CamaraError) as finder:
            await HttpSecondLevelFinder(http)("http://gb.test/telco-finder/v1/search", request)
        with pytest.raises(CamaraError) as register:
            await HttpNetworkId(http, "http://es.test")("+34600000001")
    for refused in (finder.value, register.value):
        assert (refused.status, refused.code) == (503, "UNAVAILABLE"), case


async def test_a_finder_answer_without_its_operator_is_a_503() -> None:
    bare = httpx.MockTransport(lambda request: httpx.Response(200, json={"apiRoot": "x"}))
    request = SearchRequest.model_validate({"target": {"phoneNumber": "+447700900123"}})
    async with httpx.AsyncClient(transport=bare) as http:
        with pytest.raises(CamaraError) as refused:
            await HttpSecondLevelFinder(http)("http://gb.test/search", request)
    assert refused.value.status == 503


async def test_a_partner_that_knows_nobody_is_not_an_outage() -> None:
    nobody = httpx.MockTransport(lambda request: httpx.Response(404, json={"code": "NOT_FOUND"}))
    request = SearchRequest.model_validate({"target": {"phoneNumber": "+447700900123"}})
    async with httpx.AsyncClient(transport=nobody) as http:
        assert await HttpSecondLevelFinder(http)("http://gb.test/search", request) is None
        assert await HttpNetworkId(http, "http://es.test")("+34600000001") is None
