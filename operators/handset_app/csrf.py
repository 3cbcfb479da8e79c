"""CSRF protection of the handset's buttons without a login: a signed double-submit token.

Who may open the phone is :mod:`.pairing`'s question; this token answers another one: that
the press came from the page itself. The browser gets a random nonce in a ``SameSite=Strict``
cookie and each form carries ``HMAC(key, nonce, number)``: another site can neither read the
cookie nor forge the field, so it cannot approve a prompt by posting a form behind a visitor's
back.
Nothing is stored, so every data centre of the operator checks a token any other one issued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

COOKIE = "ogsim_handset"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def signing_key(secret: str) -> bytes:
    """A key of its own for the handset tokens, derived from the operator's admin secret (one
    per operator, the same at every data centre)."""
    return hashlib.sha256(b"ogsim handset csrf\0" + secret.encode()).digest()


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def usable_nonce(value: str | None) -> str | None:
    """The cookie's nonce if it looks like one we issued, else None (a new one is issued)."""
    return value if value is not None and _NONCE.match(value) else None


def form_token(key: bytes, nonce: str, msisdn: str) -> str:
    mac = hmac.new(key, f"{nonce}\0{msisdn}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def valid(key: bytes, nonce: str | None, msisdn: str, token: str | None) -> bool:
    """Whether a posted token matches the browser's cookie for this number (constant time)."""
    if usable_nonce(nonce) is None or not token:
        return False
    assert nonce is not None
    return hmac.compare_digest(form_token(key, nonce, msisdn).encode(), token.encode())
