"""Errors that cross the wire, each carrying its wire code; raised once, rendered once.

::

    OgsimError
    ├── OAuthError            RFC 6749 / 8628 / CIBA error code, HTTP status
    └── CamaraError           CAMARA ``status``, ``code``, ``message``
"""

from __future__ import annotations

from typing import Any


class OgsimError(Exception):
    """Base of every error ogsim renders to a client."""


class OAuthError(OgsimError):
    """An OAuth 2.0 / OIDC error: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class CamaraError(OgsimError):
    """A CAMARA error body (``CAMARA_common.yaml`` ErrorInfo): status, code and message."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "message": self.message}


def unavailable(message: str = "Service is currently unavailable") -> CamaraError:
    """What a protective refusal (open breaker, full buffer, shed load) answers: 503."""
    return CamaraError(503, "UNAVAILABLE", message)


def gateway_timeout(message: str = "Request timeout exceeded") -> CamaraError:
    return CamaraError(504, "TIMEOUT", message)
