"""Identity vocabulary: grant types, URNs, client auth methods; imports nothing from ogsim."""

from __future__ import annotations

from enum import StrEnum


class GrantType(StrEnum):
    """The grants this authorization server answers at its token endpoint."""

    CLIENT_CREDENTIALS = "client_credentials"
    AUTHORIZATION_CODE = "authorization_code"
    CIBA = "urn:openid:params:grant-type:ciba"
    JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class AuthMethod(StrEnum):
    """Token endpoint client authentication methods (``token_endpoint_auth_method``)."""

    PRIVATE_KEY_JWT = "private_key_jwt"
    CLIENT_SECRET_BASIC = "client_secret_basic"


CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ACCESS_TOKEN_TYP = "at+jwt"
OPENID = "openid"
PURPOSE_PREFIX = "dpv:"
