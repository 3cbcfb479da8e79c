"""A number is ASCII digits: Python's ``\\d``, ``isdigit()`` and ``int()`` also take Arabic-Indic
(or full-width) ones, which named the same subscriber under a second key. Consents,
withdrawals, the interactive handset and the access log are all kept under the ASCII number,
so a CIBA request for ``tel:+3460`` and seven Arabic-Indic digits got around a withdrawal the
subscriber had made."""

from __future__ import annotations

import pytest

from federation.client import OAuthClientError
from operators.subscriber_base import NumberPlan
from tests.operators.gateway.conftest import Harness

from .conftest import IDENTITY, Browser, ciba_consent

ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


def spelt(harness: Harness, number: str, digits: dict[int, int]) -> str:
    """``number`` with the digits after its range written in another script."""
    prefix = harness.operator.config.number_ranges[0]
    return prefix + number[len(prefix) :].translate(digits)


@pytest.mark.parametrize("digits", [ARABIC_INDIC, FULL_WIDTH], ids=["arabic-indic", "full-width"])
async def test_a_withdrawn_consent_stays_withdrawn_whatever_the_digits(
    harness: Harness, browser: Browser, digits: dict[int, int]
) -> None:
    number = harness.number("approves")
    token = await ciba_consent(harness)
    await browser.sign_in(number)
    assert (await browser.post("/my/applications/fraud-app/revoke")).status_code == 200
    assert (await harness.check(token)).status_code == 403
    other = spelt(harness, number, digits)
    with pytest.raises(OAuthClientError) as refused:
        await harness.client.ciba(f"tel:{other}", f"sim-swap:check {IDENTITY}")
    assert refused.value.error in {"unknown_user_id", "invalid_request"}
    assert harness.operator.identity.consents.for_subscriber(other) == []


def test_the_number_plan_knows_no_number_in_other_digits(harness: Harness) -> None:
    plan = NumberPlan(harness.operator.config)
    number = harness.number("approves")
    assert plan.locate(number) != (None, None)
    assert plan.locate(spelt(harness, number, ARABIC_INDIC)) == (None, None)
    assert harness.operator.subscribers.get(spelt(harness, number, FULL_WIDTH)) is None


async def test_the_portal_refuses_a_number_in_other_digits(
    harness: Harness, browser: Browser
) -> None:
    number = harness.number("approves")
    asked = await browser.ask_code(spelt(harness, number, ARABIC_INDIC))
    assert asked.status_code == 400, asked.text
    assert not [m for m in harness.operator.handsets.messages(number) if m.kind == "code"]
