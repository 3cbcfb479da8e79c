"""Who learns that a number is not served here: a federation partner, not an application.

An application's ``/bc-authorize`` for an unknown number is answered like any other request
(CAMARA IdentityAndConsentManagement #258). The aggregator is told ``unknown_user_id``: its
Telco Finder already says who serves what, and the refusal is how a stale routing answer
turns into a deeper search, as the simulation assumes (``SimOperator.knows``).
"""

from __future__ import annotations

import pytest

from federation.client import new_client_key
from federation.federation import Federation
from operators import OAuthError

IDENTITY = "dpv:IdentityVerification"
UNSERVED = "+34699999999"


@pytest.fixture
def fed(quick_federation: Federation) -> Federation:
    return quick_federation


async def test_the_hub_learns_unknown_numbers_an_application_does_not(fed: Federation) -> None:
    identity = fed.operator("telco-es").identity
    hub = identity.clients.get(fed.aggregator.config.id)
    assert hub is not None, "the hub is a registered federation party"
    form = {"login_hint": f"tel:{UNSERVED}", "scope": f"kyc-match:match {IDENTITY}",
            "on_behalf_of": "kyc-app"}
    with pytest.raises(OAuthError) as refused:
        identity.ciba.start(hub, form)
    assert refused.value.error == "unknown_user_id"

    application, _ = identity.register_client({
        "client_id": "direct-app", "client_name": "Direct app",
        "jwks": {"keys": [new_client_key().as_dict(private=False)]},
        "grant_types": ["urn:openid:params:grant-type:ciba"], "scope": "kyc-match:match",
        "purposes": [IDENTITY],
    })
    answered = identity.ciba.start(application, {k: v for k, v in form.items()
                                                 if k != "on_behalf_of"})
    assert answered.auth_req_id, "an application gets the answer a subscriber's number gets"


async def test_a_consent_call_for_a_number_ported_away_is_not_found_after_a_deep_search(
    fed: Federation,
) -> None:
    """The finder's SHALLOW record still names the old operator; its CIBA refusal sends the
    hub to a DEEP search (as a JWT-bearer refusal does, and as the simulation assumes), which
    finds the number served outside the federation: 404, not the old operator's denial."""
    number = fed.operator("telco-es").subscribers.test_number("approves")
    fed.port(number, "red-azul")
    app = await fed.register_application("kyc-app", "kyc-match:match", [IDENTITY])
    token = (await app.client_credentials(f"kyc-match:match {IDENTITY}"))["access_token"]
    lookups = fed.network_ids["ES"].lookups
    answer = await fed.http.post(
        f"{fed.aggregator.api_root}/kyc-match/v0.3/match",
        headers={"Authorization": f"Bearer {token}"},
        json={"phoneNumber": number, "givenName": "Someone"})
    assert (answer.status_code, answer.json()["code"]) == (404, "IDENTIFIER_NOT_FOUND"), (
        answer.text)
    assert fed.network_ids["ES"].lookups > lookups, "a DEEP search"
