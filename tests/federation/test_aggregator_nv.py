"""Number Verification from the device: for a ported-in number at its operator (the recipient
gives its device an address in its own ranges), and through the aggregator, which relays the
authorization code flow to the operator that assigned the device's address."""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path

import httpx
import pytest

from federation.client import ApplicationClient, OAuthClientError, new_client_key
from federation.config import PORTED_NUMBER, FederationConfig
from federation.federation import Federation, quick_consent, running_federation

FRAUD = "dpv:FraudPreventionAndDetection"
REDIRECT = "https://app.example/callback"
NV = f"number-verification:verify {FRAUD}"


async def test_a_ported_in_number_verifies_from_its_own_device(
    federation: FederationConfig, tmp_path: Path
) -> None:
    async with running_federation(quick_consent(federation), tmp_path, probes=False) as fed:
        es = fed.operator("telco-es")
        ported = es.subscribers.get(PORTED_NUMBER)
        assert ported is not None and ported.ipv4 is not None
        assert es.subscribers.by_ipv4(ported.ipv4) == ported
        late = "+34620000777"  # Red Azul's, ported at run time
        fed.port(late, "telco-es")
        second = es.subscribers.get(late)
        assert second is not None and second.ipv4 not in (None, ported.ipv4)
        assert es.subscribers.by_ipv4(second.ipv4 or "") == second
        generated = {
            s.ipv4
            for n in es.subscribers.numbers()
            if (s := es.subscribers.get(n)) is not None
        }
        assert not {ported.ipv4, second.ipv4} & generated, "unique within the ranges"

        key = new_client_key()
        es.identity.register_client(
            {
                "client_id": "nv-app",
                "client_name": "nv app",
                "jwks": {"keys": [dict(key.as_dict(private=False))]},
                "grant_types": ["authorization_code"],
                "redirect_uris": [REDIRECT],
                "scope": "number-verification:verify",
                "purposes": [FRAUD],
            }
        )
        app = await ApplicationClient.discover("nv-app", key, es.identity.issuer, fed.http)
        async with fed.device("telco-es", PORTED_NUMBER) as handset:
            token = (await app.authorization_code(handset, NV, REDIRECT))["access_token"]
        verified = await fed.http.post(
            f"{es.api_root}/number-verification/v2/verify",
            json={"phoneNumber": PORTED_NUMBER},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert verified.status_code == 200, verified.text
        assert verified.json() == {"devicePhoneNumberVerified": True}

        fed.port(late, "red-azul")  # ported back: the address serves nobody here
        assert es.subscribers.by_ipv4(second.ipv4 or "") is None


# -- Number Verification through the aggregator: the flow relayed to the serving operator ------

SCOPE = "number-verification:verify number-verification:device-phone-number:read"
FLOW = f"{SCOPE} {FRAUD}"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _authorization(client_id: str, challenge: str, state: str = "app-state") -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": FLOW,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


async def _hub_app(fed: Federation, client_id: str = "nv-hub-app") -> ApplicationClient:
    return await fed.register_application(client_id, SCOPE, [FRAUD], redirect_uris=[REDIRECT])


async def test_numbers_verify_from_their_devices_through_the_hub(
    federation: FederationConfig, tmp_path: Path
) -> None:
    async with running_federation(quick_consent(federation), tmp_path, probes=False) as fed:
        app = await _hub_app(fed)
        hub = fed.aggregator.api_root
        assert app.endpoints.authorization.startswith(hub)
        for operator in ("telco-es", "telco-fr"):
            base = fed.operator(operator).subscribers
            own, other = base.test_number("approves"), base.test_number("roaming")
            async with fed.device(operator, own) as handset:
                token = (await app.authorization_code(handset, FLOW, REDIRECT))["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            same = await fed.http.post(
                f"{hub}/number-verification/v2/verify", json={"phoneNumber": own}, headers=auth
            )
            assert same.status_code == 200, same.text
            assert same.json() == {"devicePhoneNumberVerified": True}
            differs = await fed.http.post(
                f"{hub}/number-verification/v2/verify", json={"phoneNumber": other}, headers=auth
            )
            assert differs.json() == {"devicePhoneNumberVerified": False}
            shared = await fed.http.get(
                f"{hub}/number-verification/v2/device-phone-number", headers=auth
            )
            assert shared.status_code == 200 and shared.json() == {"devicePhoneNumber": own}
            held = fed.operator(operator).identity.clients.get("hub")
            assert held is not None and "authorization_code" in {g.value for g in held.grant_types}
        settled = fed.aggregator.settlement.calls()
        assert [(c.operator, c.operation, c.billable) for c in settled] == [
            ("telco-es", "phoneNumberVerify", True),
            ("telco-es", "phoneNumberVerify", True),
            ("telco-es", "phoneNumberShare", True),
            ("telco-fr", "phoneNumberVerify", True),
            ("telco-fr", "phoneNumberVerify", True),
            ("telco-fr", "phoneNumberShare", True),
        ]

        # a device whose address no operator assigned: a clean OAuth error, back at the app
        with pytest.raises(OAuthClientError) as outsider:
            await app.authorization_code(fed.http, FLOW, REDIRECT)
        assert outsider.value.error == "login_required"

        # a hub token from client credentials is no network-based authentication
        two_legged = await fed.register_application("cc-app", SCOPE, [FRAUD])
        cc = (await two_legged.client_credentials(FLOW))["access_token"]
        refused = await fed.http.post(
            f"{hub}/number-verification/v2/verify",
            json={"phoneNumber": own},
            headers={"Authorization": f"Bearer {cc}"},
        )
        assert refused.status_code == 403
        code = refused.json()["code"]
        assert code == "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK"


async def test_states_and_codes_of_the_relayed_flow_are_refused_when_they_should_be(
    federation: FederationConfig, tmp_path: Path
) -> None:
    async with running_federation(quick_consent(federation), tmp_path, probes=False) as fed:
        app = await _hub_app(fed)
        stranger = await _hub_app(fed, "stranger-app")
        number = fed.operator("telco-es").subscribers.test_number("approves")
        callback = f"{fed.aggregator.identity.issuer}/callback"
        async with fed.device("telco-es", number) as handset:
            forged = await handset.get(callback, params={"state": "forged", "code": "x"})
            assert forged.status_code == 400 and forged.json()["error"] == "invalid_request"
            assert (await handset.get(callback)).status_code == 400, "no state at all"

            verifier, challenge = _pkce()
            to_operator = await handset.get(
                app.endpoints.authorization, params=_authorization(app.client_id, challenge)
            )
            assert to_operator.status_code == 302
            at_operator = to_operator.headers["location"]
            assert at_operator.startswith(fed.config.operator("telco-es").issuer_url)
            assert "client_id=hub" in at_operator and "app-state" not in at_operator
            back = await handset.get(at_operator)
            assert back.status_code == 302 and back.headers["location"].startswith(callback)
            to_app = await handset.get(back.headers["location"])
            assert to_app.status_code == 302
            answer = dict(httpx.URL(to_app.headers["location"]).params)
            assert answer["state"] == "app-state" and "code" in answer
            assert answer["iss"] == fed.aggregator.identity.issuer
            again = await handset.get(back.headers["location"])
            assert again.status_code == 400, "a state is taken once"

        with pytest.raises(OAuthClientError) as other_client:
            await stranger.redeem_code(answer["code"], REDIRECT, verifier)
        assert other_client.value.error == "invalid_grant"
        with pytest.raises(OAuthClientError) as wrong_verifier:
            await app.redeem_code(answer["code"], REDIRECT, _pkce()[0])
        assert wrong_verifier.value.error == "invalid_grant"

        # a fresh flow: the code redeemed once, then refused
        async with fed.device("telco-es", number) as handset:
            verifier, challenge = _pkce()
            response = await handset.get(
                app.endpoints.authorization, params=_authorization(app.client_id, challenge)
            )
            while not response.headers["location"].startswith(REDIRECT):
                response = await handset.get(response.headers["location"])
        code = dict(httpx.URL(response.headers["location"]).params)["code"]
        token = (await app.redeem_code(code, REDIRECT, verifier))["access_token"]
        with pytest.raises(OAuthClientError) as reused:
            await app.redeem_code(code, REDIRECT, verifier)
        assert reused.value.error == "invalid_grant"
        after = await fed.http.post(
            f"{fed.aggregator.api_root}/number-verification/v2/verify",
            json={"phoneNumber": number},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert after.status_code in (401, 403), "tokens of a replayed code are revoked"

        # scopes beyond Number Verification are not relayed
        wide = await fed.register_application(
            "wide-app", f"{SCOPE} sim-swap:check", [FRAUD], redirect_uris=[REDIRECT]
        )
        async with fed.device("telco-es", number) as handset:
            with pytest.raises(OAuthClientError) as too_wide:
                await wide.authorization_code(handset, f"sim-swap:check {FRAUD}", REDIRECT)
        assert too_wide.value.error == "invalid_scope"
