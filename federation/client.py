"""An application's side of the CAMARA security profile: private_key_jwt, CIBA polling, tokens.

This is what a third-party developer's backend does against an operator (or, later, the
aggregator): it is used by ``ogsim demo``, the federation's aggregator and the load tests, so
they all exercise the identity server exactly as a real client would.
:func:`fetch_access_token` is the whole of it for one token (``ogsim token``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CIBA_GRANT = "urn:openid:params:grant-type:ciba"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_REDIRECTS = 5
"""Redirects a device follows before it reaches the client's redirect URI."""


class ClientKeyError(ValueError):
    """A JWK file that cannot sign a client assertion here (not a P-256 private EC key).

    A ValueError, so a caller that catches a file's bad contents catches this too."""


class DiscoveryError(ValueError):
    """An issuer whose discovery document is not OpenID provider metadata (no JSON, or the
    endpoints missing): a wrong URL that answered, told apart from one that did not."""


class OAuthClientError(Exception):
    """The authorization server answered with an OAuth error, or with a success that is no
    answer of its kind (``invalid_response``, status 502)."""

    def __init__(
        self, status: int, error: str, description: str = "", retry_after: int | None = None
    ) -> None:
        super().__init__(f"{status} {error}: {description}".rstrip(": "))
        self.status = status
        self.error = error
        self.description = description
        self.retry_after = retry_after
        """The server's ``Retry-After`` in seconds, when it gave one (a rate limit)."""


INVALID_RESPONSE = "invalid_response"


def _invalid(endpoint: str, problem: str) -> OAuthClientError:
    return OAuthClientError(502, INVALID_RESPONSE, f"{endpoint} answered {problem}")


def _seconds(value: object) -> bool:
    """Whether ``value`` is a JSON number of seconds (not a boolean, finite, not negative)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _token_answer(endpoint: str, reply: dict[str, Any]) -> dict[str, Any]:
    """``reply`` when it is a token response (RFC 6749 5.1): a string ``access_token`` and,
    if given, a number ``expires_in``. A server that answers 200 with anything else failed:
    its caller would otherwise fail later, far from the cause, on a missing key."""
    token = reply.get("access_token")
    if not isinstance(token, str) or not token:
        raise _invalid(endpoint, "a success without an access_token")
    if "expires_in" in reply and not _seconds(reply["expires_in"]):
        raise _invalid(endpoint, f"expires_in {reply['expires_in']!r}, not a number of seconds")
    return reply


def _ciba_answer(endpoint: str, reply: dict[str, Any]) -> dict[str, Any]:
    """``reply`` when it is a backchannel authentication response (CIBA 7.3): a string
    ``auth_req_id``, a number ``expires_in`` and, if given, a number ``interval``."""
    if not isinstance(reply.get("auth_req_id"), str) or not reply["auth_req_id"]:
        raise _invalid(endpoint, "a success without an auth_req_id")
    for field in ("expires_in", "interval"):
        if (field in reply or field == "expires_in") and not _seconds(reply.get(field)):
            raise _invalid(endpoint, f"{field} {reply.get(field)!r}, not a number of seconds")
    return reply


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "")
    return int(value) if value.isascii() and value.isdigit() else None


REQUIRED_METADATA = (
    "issuer",
    "token_endpoint",
    "backchannel_authentication_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
)
"""The discovery document's members an application client cannot work without."""


@dataclass(frozen=True)
class Endpoints:
    """What the client needs from the issuer's discovery document."""

    issuer: str
    token: str
    backchannel: str
    introspection: str
    revocation: str
    authorization: str = ""

    @classmethod
    def from_metadata(cls, metadata: Any) -> Endpoints:
        """The endpoints of a discovery document; :class:`DiscoveryError` naming what is
        missing when it is no OpenID provider's (a KeyError used to say only a key's name)."""
        if not isinstance(metadata, dict):
            raise DiscoveryError("its discovery document is not a JSON object")
        missing = [name for name in REQUIRED_METADATA if not isinstance(metadata.get(name), str)]
        if missing:
            raise DiscoveryError(f"its discovery document has no {', '.join(missing)}")
        authorization = metadata.get("authorization_endpoint")
        return cls(
            issuer=metadata["issuer"],
            token=metadata["token_endpoint"],
            backchannel=metadata["backchannel_authentication_endpoint"],
            introspection=metadata["introspection_endpoint"],
            revocation=metadata["revocation_endpoint"],
            authorization=authorization if isinstance(authorization, str) else "",
        )


def new_client_key() -> ECKey:
    """A fresh P-256 key pair with a thumbprint ``kid``, as a developer would generate."""
    return ECKey.generate_key("P-256", private=True, auto_kid=True)


class ApplicationClient:
    """One registered application talking to one authorization server over ``http``."""

    def __init__(
        self,
        client_id: str,
        key: ECKey | None,
        endpoints: Endpoints,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        signer: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        self.client_id = client_id
        self.key = key
        self.endpoints = endpoints
        self.http = http
        self.clock = clock
        self.sleep = sleep
        self.signer = signer
        """Signs assertions instead of ``key`` (a federation party signs with its key ring)."""

    @classmethod
    async def discover(
        cls, client_id: str, key: ECKey, issuer: str, http: httpx.AsyncClient
    ) -> ApplicationClient:
        """The client of ``issuer``'s endpoints, read from its discovery document; raises
        :class:`DiscoveryError` when what answered there is not an OpenID provider."""
        response = await http.get(issuer.rstrip("/") + "/.well-known/openid-configuration")
        response.raise_for_status()
        try:
            endpoints = Endpoints.from_metadata(response.json())
        except ValueError as error:  # no JSON at all, or not a provider's metadata
            why = error if isinstance(error, DiscoveryError) else "its answer is not JSON"
            raise DiscoveryError(f"{issuer} is not an OpenID provider ({why})") from error
        return cls(client_id, key, endpoints, http)

    def assertion(self, audience: str, lifetime: int = 60, **claims: Any) -> str:
        """A single-use client assertion (fresh ``jti``) for ``audience``."""
        now = int(self.clock())
        body = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(16),
            **claims,
        }
        if self.signer is not None:
            return self.signer(body)
        if self.key is None:
            raise ValueError("an ApplicationClient needs a key or a signer")
        # a JWK need not have a kid: without one, the server tries each of the client's keys
        header = {"alg": "ES256"} if self.key.kid is None else {"alg": "ES256", "kid": self.key.kid}
        return jwt.encode(header, body, self.key)

    def _auth(self, endpoint: str) -> dict[str, str]:
        return {
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.assertion(endpoint),
        }

    async def _post(
        self, endpoint: str, form: dict[str, str], *, answers: bool = True
    ) -> dict[str, Any]:
        """POST ``form`` with the client's assertion; the answer's JSON object. An error
        status raises :class:`OAuthClientError` with the server's error; so does a success
        whose body is no JSON object, where one is expected (``answers``)."""
        response = await self.http.post(endpoint, data={**self._auth(endpoint), **form})
        if response.status_code >= 400:
            body = _json(response)
            raise OAuthClientError(
                response.status_code,
                str(body.get("error", "http_error")),
                str(body.get("error_description", "")),
                _retry_after(response),
            )
        if not answers:
            return {}
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise _invalid(endpoint, f"{response.status_code} without a JSON object")
        return answer

    async def _grant(self, form: dict[str, str]) -> dict[str, Any]:
        """A token request at the token endpoint: its answer, checked to be a token."""
        endpoint = self.endpoints.token
        return _token_answer(endpoint, await self._post(endpoint, form))

    async def client_credentials(self, scope: str) -> dict[str, Any]:
        return await self._grant({"grant_type": "client_credentials", "scope": scope})

    async def start_ciba(
        self,
        login_hint: str,
        scope: str,
        binding_message: str | None = None,
        on_behalf_of: str | None = None,
    ) -> dict[str, Any]:
        """``on_behalf_of`` names the application an aggregator asks for (ogsim's extension),
        so the subscriber's consent is recorded for that application, not the aggregator."""
        form = {"login_hint": login_hint, "scope": scope}
        if binding_message:
            form["binding_message"] = binding_message
        if on_behalf_of:
            form["on_behalf_of"] = on_behalf_of
        endpoint = self.endpoints.backchannel
        return _ciba_answer(endpoint, await self._post(endpoint, form))

    async def poll_ciba(self, auth_req_id: str) -> dict[str, Any]:
        return await self._grant({"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id})

    async def ciba(
        self,
        login_hint: str,
        scope: str,
        binding_message: str | None = None,
        on_pending: Callable[[str], None] | None = None,
        on_behalf_of: str | None = None,
    ) -> dict[str, Any]:
        """Run CIBA to its end, polling no faster than the interval (slower after slow_down)."""
        started = await self.start_ciba(login_hint, scope, binding_message, on_behalf_of)
        interval = float(started.get("interval", 5))
        deadline = self.clock() + float(started["expires_in"])
        while True:
            await self.sleep(interval)
            sent = self.clock()
            try:
                return await self.poll_ciba(started["auth_req_id"])
            except OAuthClientError as error:
                if error.error == "slow_down":
                    interval += 5
                elif error.error != "authorization_pending" or sent > deadline:
                    # Give up only on a poll sent after the request's lifetime: the server,
                    # which started the clock first, then answers expired_token itself.
                    raise
                if on_pending is not None:
                    on_pending(error.error)

    async def jwt_bearer(
        self, subject: str, scope: str, *, on_behalf_of: str | None = None
    ) -> dict[str, Any]:
        """RFC 7523: the assertion carries sub and scope; the form has no scope parameter.

        An aggregator names the application it asks for in the signed ``on_behalf_of`` claim,
        so the operator keeps that application's consents apart from any other's."""
        extra: dict[str, Any] = {"on_behalf_of": on_behalf_of} if on_behalf_of else {}
        assertion = self.assertion(self.endpoints.token, sub=subject, scope=scope, **extra)
        return await self._grant({"grant_type": JWT_BEARER_GRANT, "assertion": assertion})

    async def authorization_code(
        self, device: httpx.AsyncClient, scope: str, redirect_uri: str
    ) -> dict[str, Any]:
        """OIDC code flow with PKCE, the front channel sent from the subscriber's ``device``.

        The operator recognises the device by the network address the request comes from
        (network-based authentication), which is how Number Verification works. The device
        follows redirects until it is sent to ``redirect_uri`` (through an aggregator, it goes
        on to the serving operator and back through the aggregator's callback).
        """
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        state = secrets.token_urlsafe(12)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
        response = await device.get(self.endpoints.authorization, params=params)
        for _ in range(MAX_REDIRECTS):  # an aggregator sends the device on to the operator
            if response.status_code != 302:
                break
            location = response.headers["location"]
            if location.split("?", 1)[0] == redirect_uri:
                break
            response = await device.get(location)
        if response.status_code != 302:
            body = _json(response)
            raise OAuthClientError(
                response.status_code,
                str(body.get("error", "http_error")),
                str(body.get("error_description", "")),
            )
        query = dict(httpx.URL(response.headers["location"]).params)
        if query.get("state") != state:
            raise OAuthClientError(400, "invalid_state", "the redirect carried another state")
        if "error" in query:
            raise OAuthClientError(400, query["error"], query.get("error_description", ""))
        return await self.redeem_code(query["code"], redirect_uri, verifier)

    async def redeem_code(self, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """The ``authorization_code`` grant: a code, the redirect URI and the PKCE verifier."""
        return await self._grant({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        })

    async def introspect(self, token: str) -> dict[str, Any]:
        return await self._post(self.endpoints.introspection, {"token": token})

    async def revoke(self, token: str) -> None:
        await self._post(self.endpoints.revocation, {"token": token}, answers=False)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"error": "http_error", "error_description": response.text[:200]}
    return body if isinstance(body, dict) else {"error": "http_error"}


def load_client_key(path: Path) -> ECKey:
    """An application's private signing key from a JWK file (JSON, as ``jwk.as_dict(True)``).

    Assertions are signed ES256, so only a private P-256 EC key will do: anything else raises
    :class:`ClientKeyError` saying what the file holds, before a request is sent (joserfc's
    own errors named a member, or came only at the first signature). OSError when unreadable.
    """
    try:
        data = json.loads(path.read_text())
    except ValueError as error:
        raise ClientKeyError(f"not a JWK: the file is not JSON ({error})") from error
    problem = _client_key_problem(data)
    if problem is not None:
        raise ClientKeyError(f"not a P-256 private EC JWK: {problem}")
    try:
        return ECKey.import_key(data)
    except (JoseError, ValueError) as error:
        raise ClientKeyError(f"not a P-256 private EC JWK: {error}") from error


def _client_key_problem(data: object) -> str | None:
    """What keeps ``data`` from being a private P-256 EC JWK, or None."""
    if not isinstance(data, dict):
        return "the file holds no JSON object"
    if data.get("kty") != "EC":
        return f"kty is {data.get('kty')!r}, and assertions are signed ES256 (kty 'EC')"
    if data.get("crv") != "P-256":
        return f"crv is {data.get('crv')!r}, and ES256 signs with 'P-256'"
    if "d" not in data:
        return "it is a public key (no 'd'): private_key_jwt needs the private one"
    missing = [name for name in ("x", "y", "d") if not isinstance(data.get(name), str)]
    if missing:
        return f"{', '.join(missing)} must be base64url text"
    kid = data.get("kid")
    if kid is not None and not (isinstance(kid, str) and kid):
        return "kid, when given, must be text"
    return None


async def fetch_operator_token(
    http: httpx.AsyncClient, issuer: str, admin_secret: str, phone_number: str
) -> str:
    """A TS.43 temporary token for ``phone_number`` from the operator's admin API: what the
    device's SIM would get from the entitlement server, for ``operator_token`` below."""
    response = await http.post(
        f"{issuer}/admin/operator-tokens",
        headers={"Authorization": f"Bearer {admin_secret}"},
        json={"phoneNumber": phone_number},
    )
    body = _json(response)
    if response.status_code != 201:
        raise OAuthClientError(response.status_code, str(body.get("error", "http_error")),
                               str(body.get("error_description", "")))
    token = body.get("operatorToken")
    if not isinstance(token, str):  # what answered is not an operator's admin API
        raise OAuthClientError(response.status_code, "http_error", "no operatorToken answered")
    return token


async def fetch_access_token(
    issuer: str,
    client_id: str,
    key: ECKey,
    scope: str,
    *,
    phone_number: str | None = None,
    operator_token: str | None = None,
    http: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """One token as a developer's backend gets it: discovery, then private_key_jwt.

    With ``operator_token`` (a TS.43 temporary token, which Number Verification needs) or
    ``phone_number`` the token is three-legged (CIBA, ``login_hint=operatortoken:...`` or
    ``tel:...``, polled to its end), otherwise two-legged (client credentials). Raises
    :class:`OAuthClientError` when the server refuses, :class:`httpx.HTTPError` when it
    cannot be reached and :class:`DiscoveryError` (a ValueError) when what answers at
    ``issuer`` is not an OpenID provider.
    """
    async with contextlib.AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=30.0))
        client = await ApplicationClient.discover(client_id, key, issuer, http)
        if operator_token:
            return await client.ciba(f"operatortoken:{operator_token}", scope)
        if phone_number:
            return await client.ciba(f"tel:{phone_number}", scope)
        return await client.client_credentials(scope)
