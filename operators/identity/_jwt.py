"""Private JOSE plumbing: parse a compact JWS defensively, verify it with a pinned algorithm.

joserfc does the cryptography; this module adds what an authorization server must refuse
before it ever reaches the cryptography (oversized tokens, ``alg: none``, ``crit``, key-bearing
headers) and checks time claims against the injected clock, never joserfc's wall clock.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import Key

MAX_TOKEN_BYTES = 8 * 1024
MAX_SECONDS = 1e12
"""Largest time claim taken (about the year 33,700); NaN is not within it either."""
ASYMMETRIC_ALGS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)
"""Algorithms accepted from clients: asymmetric only, so a public key can never be a secret."""

KEY_BEARING_HEADERS = ("jku", "x5u", "jwk", "x5c")
"""Headers that would let a token name its own verification key: never fetched, refused."""

_ALG_KTY = {"ES": "EC", "RS": "RSA", "PS": "RSA", "Ed": "OKP"}


class JwtRejectedError(ValueError):
    """A JWT failed a structural, cryptographic or claim check; the message says which."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_strict(data: str | bytes) -> Any:
    """JSON as RFC 8259 has it, and nothing Python's parser lets through besides: no ``NaN``
    or ``Infinity`` (every comparison with NaN is false, so a NaN ``iat`` would switch the time
    checks off) and no lone surrogate from a ``\\ud800`` escape (such a string has no UTF-8:
    storing or comparing it fails far from here). Raises ValueError (UnicodeError included)."""
    value = json.loads(data, parse_constant=_refuse_constant)
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # a lone surrogate cannot encode
    return value


def _b64json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        return loads_strict(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, RecursionError) as error:
        # RecursionError: JSON nested beyond the parser's depth, a forged header's easy 500
        raise JwtRejectedError("malformed JWT segment") from error


def read_header(token: object) -> dict[str, Any]:
    """The protected header of a compact JWS, after size and shape checks; no signature check."""
    if not isinstance(token, str) or not token:
        raise JwtRejectedError("not a JWT")
    if len(token.encode("utf-8", "replace")) > MAX_TOKEN_BYTES:
        raise JwtRejectedError(f"JWT larger than {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtRejectedError("not a compact JWS (three segments expected)")
    if not parts[2]:
        raise JwtRejectedError("unsigned JWT")
    header = _b64json(parts[0])
    if not isinstance(header, dict):
        raise JwtRejectedError("JWT header is not a JSON object")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise JwtRejectedError("missing or 'none' algorithm")
    if "crit" in header:
        raise JwtRejectedError("'crit' header names an extension this server does not understand")
    for name in KEY_BEARING_HEADERS:
        if name in header:
            raise JwtRejectedError(f"'{name}' header refused: keys come only from metadata")
    if "kid" in header and not isinstance(header["kid"], str):
        raise JwtRejectedError("'kid' must be a string")
    return header


_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}

MIN_RSA_BITS = 2048
"""Smallest RSA modulus a client may register (FAPI 2.0's floor)."""


def registrable_key_problem(key: Key) -> str | None:
    """Why a client's public key cannot be registered, or None. Signature checks refuse a
    weak or mislabelled key anyway; refusing it at registration tells the developer now,
    instead of at their first assertion, and keeps a bogus ``alg`` out of generated examples."""
    if key.key_type == "RSA":
        bits = int(getattr(key.raw_value, "key_size", 0))
        if bits < MIN_RSA_BITS:
            return f"an RSA key needs at least {MIN_RSA_BITS} bits (this one has {bits})"
    kid = key.get("kid")
    if kid is not None and not (isinstance(kid, str) and 0 < len(kid) <= 200):
        return "a key's kid must be text of 1 to 200 characters"
    alg = key.get("alg")
    if alg is None:
        return None
    if alg not in ASYMMETRIC_ALGS or _ALG_KTY.get(str(alg)[:2]) != key.key_type:
        return f"alg {alg!r} is not an asymmetric algorithm for a {key.key_type} key"
    curve = _EC_CURVES.get(alg)
    if curve is not None and key.get("crv") != curve:
        return f"alg {alg} needs a {curve} key, not {key.get('crv')}"
    return None


def key_fits_alg(key: Key, alg: str) -> bool:
    """Whether ``alg`` may be used with ``key``: the key's own ``alg`` wins, else its type."""
    declared = key.get("alg")
    if declared:
        return bool(declared == alg)
    return _ALG_KTY.get(alg[:2]) == key.key_type


def verify(token: str, key: Key, alg: str) -> dict[str, Any]:
    """Verify a compact JWS with exactly ``alg`` and ``key``; returns its JSON object claims."""
    header = read_header(token)
    if header["alg"] != alg:
        raise JwtRejectedError(f"algorithm {header['alg']!r} is not the one pinned for this key")
    registry = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
    try:
        obj = jws.deserialize_compact(token, key, algorithms=[alg], registry=registry)
    except JoseError as error:
        raise JwtRejectedError(f"signature rejected ({error.error})") from error
    except (ValueError, TypeError) as error:
        raise JwtRejectedError("signature rejected") from error
    try:
        claims = loads_strict(obj.payload)
    except (ValueError, TypeError, RecursionError) as error:
        raise JwtRejectedError("JWT payload is not JSON") from error
    if not isinstance(claims, dict):
        raise JwtRejectedError("JWT payload is not a JSON object")
    return claims


def audiences(claims: dict[str, Any]) -> list[str]:
    """``aud`` as a list; a missing or non-string audience raises."""
    aud = claims.get("aud")
    values = [aud] if isinstance(aud, str) else aud
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise JwtRejectedError("missing or malformed 'aud'")
    return values


def number(claims: dict[str, Any], name: str, *, required: bool = True) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise JwtRejectedError(f"missing '{name}'")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JwtRejectedError(f"'{name}' is not a number")
    if not -MAX_SECONDS <= value <= MAX_SECONDS:  # an int of 400 digits has no float
        raise JwtRejectedError(f"'{name}' is out of range")
    return float(value)


def string(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise JwtRejectedError(f"missing or malformed '{name}'")
    return value


def check_assertion(
    claims: dict[str, Any],
    *,
    now: float,
    accepted_audiences: Iterable[str],
    max_lifetime: float,
    skew: float,
    future_tolerance: float,
) -> None:
    """Time and audience rules for a client assertion or an RFC 7523 grant (CAMARA profile).

    ``exp`` must be in the future (``skew`` tolerated), at most ``max_lifetime`` after receipt
    and after ``iat``; ``iat``/``nbf`` may lead our clock by ``future_tolerance`` at most;
    every ``aud`` value must be one of ours (an array with a foreign value is refused).
    """
    exp = number(claims, "exp")
    iat = number(claims, "iat")
    nbf = number(claims, "nbf", required=False)
    assert exp is not None and iat is not None
    if exp < now - skew:
        raise JwtRejectedError("assertion expired")
    if exp > now + max_lifetime + skew:
        raise JwtRejectedError(f"assertion expires more than {max_lifetime:.0f} s after receipt")
    if exp - iat > max_lifetime:
        raise JwtRejectedError(f"assertion lives longer than {max_lifetime:.0f} s")
    if exp <= iat:
        raise JwtRejectedError("assertion 'exp' is not after 'iat'")
    for name, value in (("iat", iat), ("nbf", nbf)):
        if value is not None and value > now + future_tolerance:
            raise JwtRejectedError(f"assertion '{name}' is in the future")
    accepted = set(accepted_audiences)
    if any(value not in accepted for value in audiences(claims)):
        raise JwtRejectedError("assertion 'aud' names an audience other than this server")


def unverified_claims(token: str) -> dict[str, Any]:
    """Claims read before verification, only to learn whose keys to verify with."""
    claims = _b64json(token.split(".")[1])
    if not isinstance(claims, dict):
        raise JwtRejectedError("JWT payload is not a JSON object")
    return claims


def verify_with_any(token: str, header: dict[str, Any], keys: Iterable[Key]) -> dict[str, Any]:
    """Verify with one of ``keys`` (``kid`` narrows them), the algorithm pinned to each key.

    Only asymmetric algorithms are accepted, so a public key can never serve as an HMAC secret.
    """
    alg = str(header["alg"])
    if alg not in ASYMMETRIC_ALGS:
        raise JwtRejectedError(f"algorithm {alg!r} is not allowed")
    kid = header.get("kid")
    candidates = [k for k in keys if (kid is None or k.kid == kid) and key_fits_alg(k, alg)]
    if not candidates:
        raise JwtRejectedError("signed by a key that was never registered")
    last = JwtRejectedError("signature rejected")
    for key in candidates:
        try:
            return verify(token, key, alg)
        except JwtRejectedError as error:
            last = error
    raise last
