"""Time to first call: a working example in Python and in curl for the developer's application.

Onboarding ends with code to copy (or download) that makes one real call: it signs a
``private_key_jwt`` client assertion with the private JWK the developer downloaded when the
portal generated the application's key, gets an access token at the identity server's token
endpoint (client credentials, the SIM swap scope and a two-legged purpose the application
declared), and checks SIM swap for one of the documented test numbers. Every value in it
(client id, token endpoint, API root, path, scope, number) is the application's and the
party's own, read from the client registry, the operation table and the subscriber base.

curl cannot sign a JWT, so the shell example makes the assertion with one Python line (joserfc,
as in the Python example) and does the two HTTP calls with curl. Values are quoted for their
language (JSON string literals in Python, ``shlex`` quoting in the shell), never pasted raw.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..camara import Operation, operation_named, scopes_satisfied
from ..identity import Client
from .accounts import AccountError
from .console import console_purposes
from .developers import Application, ApplicationStatus
from .host import PortalHost

if TYPE_CHECKING:
    from .accounts import DeveloperAccounts
    from .guard import PortalGuard

__all__ = [
    "FIRST_OPERATION",
    "FirstCall",
    "build_first_call_pages",
    "curl_example",
    "first_call_for",
    "python_example",
]

FIRST_OPERATION = "checkSimSwap"
"""The call every first-call example makes: a plain body, a clear answer, two-legged."""

TEST_NUMBER_ROLE = "recent-swap"
"""The documented test number the example asks about: swapped two hours ago, so the answer
is ``{"swapped": true}`` within the example's ``maxAge``."""

MAX_AGE_HOURS = 240

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

_ALG_OF_KEY = {("EC", "P-256"): "ES256", ("EC", "P-384"): "ES384", ("EC", "P-521"): "ES512",
               ("OKP", "Ed25519"): "EdDSA", ("RSA", None): "RS256"}


def _alg(client: Client) -> str:
    """The algorithm the application's registered key signs with (its ``alg``, else the one
    its key type implies)."""
    for key in client.jwks.get("keys", []):
        if isinstance(key, dict):
            if isinstance(key.get("alg"), str):
                return str(key["alg"])
            kty, crv = str(key.get("kty", "")), key.get("crv")
            found = _ALG_OF_KEY.get((kty, crv if isinstance(crv, str) else None))
            if found:
                return found
    return "ES256"


@dataclass(frozen=True)
class FirstCall:
    """Everything an example needs, each value the application's or the party's own."""

    client_id: str
    token_endpoint: str
    api_root: str
    operation: Operation
    scope: str
    phone_number: str
    alg: str
    party: str
    problems: tuple[str, ...]
    """Why the example, as it stands, would be refused (missing scope or purpose, a
    suspended application); shown above the code."""

    @property
    def url(self) -> str:
        return self.api_root.rstrip("/") + self.operation.template

    @property
    def body(self) -> dict[str, Any]:
        return {"phoneNumber": self.phone_number, "maxAge": MAX_AGE_HOURS}

    @property
    def key_file(self) -> str:
        """The name the portal's key download gives the private JWK file."""
        return f"{self.client_id}.jwk"


def first_call_for(host: PortalHost, application: Application, client: Client,
                   phone_number: str) -> FirstCall:
    """The example's values for ``application``, and what would stop it working."""
    operation = operation_named(FIRST_OPERATION)
    problems: list[str] = []
    if application.status in (ApplicationStatus.SUSPENDED, ApplicationStatus.DISABLED):
        problems.append(f"This application is {application.status.value}: the token "
                        "endpoint will refuse it.")
    held = [s for alternative in operation.scopes for s in alternative if s in client.scopes]
    if not scopes_satisfied(operation, client.scopes):
        problems.append(f"This application was not created for {operation.tag}: the example "
                        f"asks for {operation.scopes[0][0]}, which it may not have.")
    api_scope = held[0] if held else operation.scopes[0][0]
    purposes = console_purposes(host.config, client)
    if operation.purpose in purposes:
        purpose = operation.purpose
    elif purposes:
        purpose = purposes[0]
    else:
        purpose = operation.purpose
        problems.append(f"This application declares no purpose usable without a subscriber; "
                        f"the example names {purpose}, which it may not use.")
    return FirstCall(
        client_id=client.client_id,
        token_endpoint=host.identity.token_endpoint,
        api_root=host.api_root,
        operation=operation,
        scope=f"{api_scope} {purpose}",
        phone_number=phone_number,
        alg=_alg(client),
        party=host.config.display_name,
        problems=tuple(problems),
    )


def _fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace(f"<<{name}>>", value)
    assert "<<" not in template, "a value of the example is missing"
    return template


_PYTHON = '''\
"""First call to <<party_comment>>'s sandbox: a SIM swap check for a documented test number.

Needs Python 3.9+ and two packages:  pip install joserfc httpx
Run:  python first_call.py <<key_file_comment>>
"""

import json
import sys
import time
import uuid

import httpx
from joserfc import jwt
from joserfc.jwk import JWKRegistry

CLIENT_ID = <<client_id>>
TOKEN_ENDPOINT = <<token_endpoint>>
SCOPE = <<scope>>
API_URL = <<url>>
BODY = <<body>>


def client_assertion(key_file: str) -> str:
    """private_key_jwt: a short-lived JWT signed with the application's private key."""
    with open(key_file, encoding="utf-8") as file:
        jwk = json.load(file)
    now = int(time.time())
    header = {"alg": jwk.get("alg", <<alg>>)}
    if "kid" in jwk:
        header["kid"] = jwk["kid"]
    claims = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": TOKEN_ENDPOINT,
              "jti": str(uuid.uuid4()), "iat": now, "exp": now + 60}
    return jwt.encode(header, claims, JWKRegistry.import_key(jwk))


def main() -> int:
    key_file = sys.argv[1] if len(sys.argv) > 1 else <<key_file>>
    token = httpx.post(TOKEN_ENDPOINT, data={
        "grant_type": "client_credentials",
        "client_assertion_type": <<assertion_type>>,
        "client_assertion": client_assertion(key_file),
        "scope": SCOPE,
    })
    if token.status_code != 200:
        print("token refused:", token.status_code, token.text, file=sys.stderr)
        return 1
    access_token = token.json()["access_token"]
    answer = httpx.post(API_URL, json=BODY, headers={
        "Authorization": f"Bearer {access_token}",
        "x-correlator": str(uuid.uuid4()),
    })
    print(answer.status_code, json.dumps(answer.json()))
    return 0 if answer.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
'''


def _py(value: Any) -> str:
    """A Python literal of a JSON value (a JSON string or object literal is valid Python)."""
    return json.dumps(value)


def python_example(call: FirstCall) -> str:
    """A runnable Python file: ``python first_call.py KEY_FILE`` prints ``200 {...}``."""
    return _fill(_PYTHON, {
        "party_comment": call.party.replace("\\", "/").replace('"', "'"),
        "key_file_comment": call.key_file,
        "client_id": _py(call.client_id),
        "token_endpoint": _py(call.token_endpoint),
        "scope": _py(call.scope),
        "url": _py(call.url),
        "body": _py(call.body),
        "alg": _py(call.alg),
        "key_file": _py(call.key_file),
        "assertion_type": _py(CLIENT_ASSERTION_TYPE),
    })


_ASSERTION_LINE = (
    'import json,sys,time,uuid; from joserfc import jwt; from joserfc.jwk import JWKRegistry; '
    'k=json.load(open(sys.argv[1])); n=int(time.time()); '
    'h={"alg": k.get("alg", sys.argv[4]), **({"kid": k["kid"]} if "kid" in k else {})}; '
    'c={"iss": sys.argv[2], "sub": sys.argv[2], "aud": sys.argv[3], "jti": str(uuid.uuid4()), '
    '"iat": n, "exp": n + 60}; print(jwt.encode(h, c, JWKRegistry.import_key(k)))'
)
"""The client assertion in one line of Python, for the shell example (no single quote in
it, so the shell quotes it plainly)."""


_SHELL = '''\
#!/bin/sh
# First call to <<party_comment>>'s sandbox with curl: a SIM swap check for a test number.
# curl cannot sign a JWT, so one Python line (pip install joserfc) makes the client assertion.
# Run:  sh first_call.sh <<key_file_comment>>
set -eu
KEY_FILE=${1:-<<key_file>>}
CLIENT_ID=<<client_id>>
TOKEN_ENDPOINT=<<token_endpoint>>

ASSERTION=$(python3 -c <<assertion_line>> "$KEY_FILE" "$CLIENT_ID" "$TOKEN_ENDPOINT" <<alg>>)

TOKEN=$(curl -sS --fail-with-body "$TOKEN_ENDPOINT" \\
  --data-urlencode grant_type=client_credentials \\
  --data-urlencode client_assertion_type=<<assertion_type>> \\
  --data-urlencode "client_assertion=$ASSERTION" \\
  --data-urlencode scope=<<scope>> \\
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

curl -sS --fail-with-body -X POST <<url>> \\
  -H "Authorization: Bearer $TOKEN" \\
  -H 'Content-Type: application/json' \\
  -d <<body>>
echo
'''


def curl_example(call: FirstCall) -> str:
    """A POSIX shell script: curl for the HTTP calls, one Python line for the assertion."""
    q = shlex.quote
    return _fill(_SHELL, {
        "party_comment": " ".join(call.party.split()),
        "key_file_comment": q(call.key_file),
        "key_file": q(call.key_file),
        "client_id": q(call.client_id),
        "token_endpoint": q(call.token_endpoint),
        "assertion_line": q(_ASSERTION_LINE),
        "alg": q(call.alg),
        "assertion_type": q(CLIENT_ASSERTION_TYPE),
        "scope": q(call.scope),
        "url": q(call.url),
        "body": q(json.dumps(call.body)),
    })


def build_first_call_pages(
    host: PortalHost, accounts: DeveloperAccounts, guard: PortalGuard,
    *, test_number: Callable[[], str] | None = None,
) -> APIRouter:
    """``/portal/applications/{client_id}/first-call`` (signed in, own organisation only),
    and the two examples as downloads (``first-call.py``, ``first-call.sh``).

    ``test_number`` gives the number the examples ask about; by default the party's own
    documented test number (an aggregator, which has no subscribers, passes an operator's).
    """
    router = APIRouter(prefix="/portal/applications/{client_id}", include_in_schema=False)

    def number() -> str:
        if test_number is not None:
            return test_number()
        return next(n for t, n in host.sandbox_numbers() if t.role == TEST_NUMBER_ROLE)

    def call_of(request: Request, client_id: str) -> tuple[Application, FirstCall]:
        developer = guard.require(request)
        application = accounts.owned_application(developer.org_id, client_id)
        client = host.identity.clients.get(client_id) if application is not None else None
        if application is None or client is None:
            raise AccountError(404, "application", "No such application.")
        return application, first_call_for(host, application, client, number())

    @router.get("/first-call")
    def first_call(request: Request, client_id: str) -> HTMLResponse:
        application, call = call_of(request, client_id)
        return guard.page(request, "first_call.html", {
            "heading": "Your first call", "application": application, "call": call,
            "python": python_example(call), "curl": curl_example(call),
        })

    def download(text: str, name: str, media_type: str) -> Response:
        return Response(text, media_type=media_type, headers={
            "content-disposition": f'attachment; filename="{name}"',
            "cache-control": "no-store", "x-content-type-options": "nosniff",
        })

    @router.get("/first-call.py")
    def python_file(request: Request, client_id: str) -> Response:
        _, call = call_of(request, client_id)
        return download(python_example(call), "first_call.py", "text/x-python; charset=utf-8")

    @router.get("/first-call.sh")
    def shell_file(request: Request, client_id: str) -> Response:
        _, call = call_of(request, client_id)
        return download(curl_example(call), "first_call.sh", "text/x-shellscript; charset=utf-8")

    return router
