"""A partner's JSON answer nested past the parser's depth is a bad answer (ValueError), not a
RecursionError that every ``except ValueError`` misses."""

from __future__ import annotations

import httpx
import pytest

from federation.partner_answers import partner_json
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
