"""Number Verification for a ported-in number: the recipient gives its device an address in its
own ranges, so the network-based authentication of NV works from that device."""

from __future__ import annotations

from pathlib import Path

from federation.client import ApplicationClient, new_client_key
from federation.config import PORTED_NUMBER, FederationConfig
from federation.federation import quick_consent, running_federation

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
