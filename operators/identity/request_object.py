"""Signed request objects: the ``request`` parameter at ``/authorize`` and ``/bc-authorize``.

A request object is a JWT signed by the client with a key it registered (RFC 9101, OIDC Core
§6.1; CIBA Core §7.1.1 for the signed authentication request), which the CAMARA profile makes
servers accept. What is checked, in order: the JWS shape (no ``alg: none``, no unsigned
token, no ``crit``, no key-bearing header), a ``typ`` that is absent, ``JWT`` or
``oauth-authz-req+jwt``; the signature with one of the client's keys, the algorithm pinned
to the key; ``iss`` (and ``client_id`` if present) the client; ``aud`` this issuer only;
``exp`` and ``iat`` (and ``nbf`` for CIBA, which also demands it) on the injected clock, a
lifetime of at most :data:`MAX_LIFETIME`; ``jti`` present and single use.

Parameters: at ``/authorize`` the request object's values supersede the query's (OIDC Core
§6.3.3), and ``client_id`` and ``response_type`` given in both must match (§6.1). At
``/bc-authorize`` every authentication request parameter is inside the JWT and none may
appear beside it (CIBA Core §7.1.1). ``request`` and ``request_uri`` never nest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..config import OperatorConfig
from ..errors import OAuthError
from ..types import Clock
from . import _jwt
from .client_auth import FUTURE_TOLERANCE
from .client_keys import ClientKeys
from .clients import Client
from .replay import ReplayGuard

MAX_LIFETIME = 3600.0
"""The longest a request object may live (``exp`` - ``iat``), as FAPI-CIBA bounds it."""
TYPES = frozenset({"jwt", "oauth-authz-req+jwt", "application/oauth-authz-req+jwt"})
JWT_CLAIMS = frozenset({"iss", "aud", "exp", "iat", "nbf", "jti", "sub"})
"""Claims about the JWT itself, not request parameters."""
CLIENT_AUTHENTICATION = frozenset({"client_id", "client_assertion", "client_assertion_type"})
"""What may sit beside a signed CIBA request: how the client authenticates, nothing else."""


class RequestObjects:
    """Opens the signed request objects of registered clients, or refuses them."""

    def __init__(
        self,
        config: OperatorConfig,
        *,
        keys: ClientKeys,
        replay: ReplayGuard,
        clock: Clock,
        audiences: Iterable[str],
    ) -> None:
        self.config = config
        self.keys = keys
        self.replay = replay
        self.clock = clock
        self.audiences = frozenset(audiences)

    def authorization(self, client: Client, params: Mapping[str, str]) -> dict[str, str]:
        """The parameters of an authorization request that carries ``request``.

        Raises ``invalid_request_object`` (an error page: the redirect URI inside an object
        that failed cannot be trusted).
        """
        inside = self._open(client, params["request"], "invalid_request_object", ciba=False)
        for name in ("client_id", "response_type"):
            if name in inside and name in params and inside[name] != params[name]:
                raise OAuthError("invalid_request_object",
                                 f"{name} differs inside and outside the request object")
        merged = {k: v for k, v in params.items() if k != "request"}
        merged.update(inside)
        return merged

    def backchannel(self, client: Client, form: Mapping[str, str]) -> dict[str, str]:
        """The parameters of a signed CIBA authentication request (``invalid_request``)."""
        outside = set(form) - CLIENT_AUTHENTICATION - {"request"}
        if outside:
            raise OAuthError("invalid_request", "with a signed request, every parameter goes"
                             f" inside it; found outside: {', '.join(sorted(outside))}")
        return self._open(client, form["request"], "invalid_request", ciba=True)

    def _open(self, client: Client, token: str, error: str, *, ciba: bool) -> dict[str, str]:
        try:
            header = _jwt.read_header(token)
            if str(header.get("typ", "JWT")).lower() not in TYPES:
                raise _jwt.JwtRejectedError(f"typ {header.get('typ')!r} is not a request object")
            claims = _jwt.verify_with_any(token, header, self.keys.of(client))
            if claims.get("iss") != client.client_id:
                raise _jwt.JwtRejectedError("'iss' must be the client id")
            if claims.get("client_id", client.client_id) != client.client_id:
                raise _jwt.JwtRejectedError("'client_id' is another client")
            if ciba and claims.get("nbf") is None:
                raise _jwt.JwtRejectedError("missing 'nbf'")
            _jwt.check_assertion(
                claims,
                now=self.clock(),
                accepted_audiences=self.audiences,
                max_lifetime=MAX_LIFETIME,
                skew=self.config.lifetimes.clock_skew,
                future_tolerance=FUTURE_TOLERANCE,
            )
            jti = _jwt.string(claims, "jti")
        except _jwt.JwtRejectedError as rejected:
            raise OAuthError(error, f"request object rejected: {rejected}") from rejected
        params = _parameters(claims, error)
        if not self.replay.first_use(f"request:{client.client_id}", jti, float(claims["exp"])):
            raise OAuthError(error, "request object 'jti' was already used")
        return params


def _parameters(claims: Mapping[str, Any], error: str) -> dict[str, str]:
    """Request parameters from the claims: strings as they are, integers (``max_age``,
    ``requested_expiry``) written out; anything else, or a nested request, is refused."""
    params: dict[str, str] = {}
    for name, value in claims.items():
        if name in JWT_CLAIMS:
            continue
        if name in ("request", "request_uri"):
            raise OAuthError(error, f"a request object must not contain {name}")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise OAuthError(error, f"request object parameter {name!r} must be a string")
        params[name] = str(value)
    return params
