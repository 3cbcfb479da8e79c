"""The operator admin credential: HTTP Basic ``admin:<secret>`` or ``Bearer <secret>``."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable

from fastapi import Request

from .errors import CamaraError

ADMIN_USER = "admin"


def is_admin(authorization: str | None, secret: str) -> bool:
    """Constant-time check of an Authorization header against the operator's admin secret."""
    if not authorization:
        return False
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.encode(), secret.encode())
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except ValueError:  # binascii.Error, UnicodeDecodeError, or a non-ASCII header
            return False
        return hmac.compare_digest(user.encode(), ADMIN_USER.encode()) & hmac.compare_digest(
            password.encode(), secret.encode()
        )
    return False


def admin_guard(secret: str) -> Callable[[Request], None]:
    """A FastAPI dependency refusing anyone without the admin credential (401, CAMARA body)."""

    def guard(request: Request) -> None:
        if not is_admin(request.headers.get("authorization"), secret):
            raise CamaraError(
                401,
                "UNAUTHENTICATED",
                "The operator admin credential is missing or wrong.",
                headers={"WWW-Authenticate": 'Basic realm="ogsim-admin"'},
            )

    return guard
