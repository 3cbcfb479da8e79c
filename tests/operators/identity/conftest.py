"""Fresh operators with a hand-driven clock, registered test applications and their keys."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from operators.config import OperatorConfig, example_operator
from operators.identity import IdentityServer, create_identity_app
from operators.identity.types import CLIENT_ASSERTION_TYPE
from operators.storage import Database
from operators.subscriber_base import SubscriberBase

START = 1_750_000_000.0
API_SCOPES = "sim-swap:check number-verification:verify location-verification:verify"
ALL_GRANTS = [
    "client_credentials",
    "authorization_code",
    "urn:openid:params:grant-type:ciba",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
]
REDIRECT = "https://app.example/callback"
OUTSIDE_IP = "203.0.113.9"


class FakeClock:
    """Seconds since the epoch that move only when told to."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> None:
        assert dt >= 0
        self.now += dt


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def raw_jws(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A compact JWS built by hand, so tests can forge what joserfc would refuse to make."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


@dataclass
class App:
    """A registered application and its private key, able to write its own assertions."""

    client_id: str
    key: ECKey
    server: IdentityServer
    clock: FakeClock

    def assertion(self, aud: Any = None, *, header: dict[str, Any] | None = None,
                  key: ECKey | None = None, drop: tuple[str, ...] = (), **claims: Any) -> str:
        now = int(self.clock())
        body: dict[str, Any] = {
            "iss": self.client_id, "sub": self.client_id,
            "aud": aud if aud is not None else self.server.token_endpoint,
            "iat": now, "exp": now + 120, "jti": secrets.token_hex(12),
        }
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        signer = key or self.key
        return jwt.encode(header or {"alg": "ES256", "kid": signer.kid}, body, signer)

    def auth(self, endpoint: str = "/token", **claims: Any) -> dict[str, str]:
        return {
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.assertion(self.server.url(endpoint), **claims),
        }

    def bearer_assertion(self, sub: str, scope: str | None, aud: Any = None,
                         **claims: Any) -> str:
        extra: dict[str, Any] = {"scope": scope} if scope is not None else {}
        return self.assertion(aud or self.server.token_endpoint, sub=sub, **extra, **claims)


def new_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True, auto_kid=True)


@dataclass
class Operator:
    config: OperatorConfig
    db: Database
    subscribers: SubscriberBase
    server: IdentityServer
    clock: FakeClock
    apps: list[App] = field(default_factory=list)

    def http(self, ip: str = OUTSIDE_IP) -> httpx.AsyncClient:
        app = create_identity_app(self.server)
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(ip, 40000)),
            base_url=self.server.issuer, follow_redirects=False,
        )

    def number(self, role: str) -> str:
        return self.subscribers.test_number(role)

    def ip_of(self, role: str) -> str:
        subscriber = self.subscribers.get(self.number(role))
        assert subscriber is not None and subscriber.ipv4 is not None
        return subscriber.ipv4

    def register(self, client_id: str = "app-one", **overrides: Any) -> App:
        key = new_key()
        registration: dict[str, Any] = {
            "client_id": client_id, "client_name": f"Test {client_id}",
            "jwks": {"keys": [key.as_dict(private=False)]}, "grant_types": ALL_GRANTS,
            "scope": API_SCOPES, "purposes": [p.purpose for p in self.config.purposes],
            "redirect_uris": [REDIRECT],
        }
        registration.update(overrides)
        self.server.register_client(registration)
        app = App(client_id, key, self.server, self.clock)
        self.apps.append(app)
        return app


def french_operator(seed: int = 11, storage: str = ":memory:") -> OperatorConfig:
    return OperatorConfig(
        id="telco-fr", display_name="Télécom France", country="FR", mcc="208", mnc="01",
        number_ranges=("+3360",), ipv4_ranges=("10.33.0.0/16",), seed=seed, storage=storage,
    )


def build_operator(
    config: OperatorConfig | None = None, clock: FakeClock | None = None
) -> Operator:
    config = config or example_operator()
    clock = clock or FakeClock()
    db = Database(config.storage)
    subscribers = SubscriberBase(config, db, clock=clock)
    server = IdentityServer(config, db, subscribers, clock)
    return Operator(config, db, subscribers, server, clock)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def operator(clock: FakeClock) -> Operator:
    return build_operator(clock=clock)


@pytest.fixture
def app(operator: Operator) -> App:
    return operator.register()


@pytest.fixture
async def http(operator: Operator) -> AsyncIterator[httpx.AsyncClient]:
    async with operator.http() as client:
        yield client


async def token(http: httpx.AsyncClient, app: App, **form: str) -> httpx.Response:
    return await http.post("/token", data={**app.auth("/token"), **form})
