"""Developer passwords: scrypt with a per-password salt, checked in constant time.

Parameters (RFC 7914): N = 2^14, r = 8, p = 1, a 16-byte random salt and a 32-byte key; about
16 MiB of memory and tens of milliseconds per guess, so a stolen table is slow to attack while
sign-in stays quick. The stored form names its parameters (``scrypt$N$r$p$salt$key``), so
stronger ones can be introduced later without invalidating stored hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache

N = 2**14
R = 8
P = 1
KEY_BYTES = 32
MIN_LENGTH = 10
MAX_LENGTH = 1024
"""Bounds the work an attacker can make scrypt do with one enormous password."""


class WeakPasswordError(ValueError):
    """A password the portal refuses to set; the message names the field."""


def check_strength(password: str) -> None:
    """Refuse passwords shorter than :data:`MIN_LENGTH` (or absurdly long)."""
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"password: use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"password: use at most {MAX_LENGTH} characters.")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=128 * r * (n + p + 2) + 1024 * 1024, dklen=KEY_BYTES)


def hash_password(password: str) -> str:
    """The stored form of ``password`` under a fresh salt."""
    salt = secrets.token_bytes(16)
    key = _derive(password, salt, N, R, P)
    return f"scrypt${N}${R}${P}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; the comparison takes the same time either way."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt" or len(password) > MAX_LENGTH:
            return False
        candidate = _derive(password, bytes.fromhex(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(candidate, bytes.fromhex(key))


def code_digest(code: str) -> str:
    """How a one-use link's code is stored: SHA-256 is enough for random codes (no salt, no
    slow hash), and a leaked table then opens no link."""
    return hashlib.sha256(code.encode()).hexdigest()


@cache
def dummy_hash() -> str:
    """Checked against when an email is unknown, so a miss costs as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))
