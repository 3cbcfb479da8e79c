"""Steps of CAMARA's Consent Info feature: test assets set up through the operator's admin
API, and the subscriber's side of a consent capture played by the runner.

Each scenario's subscriber is a different test number, so a consent one scenario records
never decides another's status. The capture journey is driven like a browser would: open the
capture URL (with ``state`` when the scenario says so), read the one-time code the
subscriber's simulated phone received, enter it, approve, and follow nothing further: the
redirection to the application's callback is what the scenario checks.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from .target import Unsupported
from .world import StepFailed, World

__all__ = ["register_consent_info"]

Q = r'"([^"]*)"'
ALLOWED = (["sim-swap:check"], "dpv:FraudPreventionAndDetection")
"""Legitimate interest: processing stands unless the subscriber objected."""
NEEDS_CONSENT = (["kyc-match:match"], "dpv:IdentityVerification")
CALLBACK = "https://consumer.example.com/consent/callback"
CLIENT = "conformance-primary"
RESULTS = {"granted", "partial_grant", "denied", "error", "timeout"}


FRESH_SUBSCRIBERS = ("never-swapped", "unreachable", "sms-only", "roaming", "recent-swap",
                     "approves")
"""Test numbers whose handsets approve at once (a three-legged token is obtained for them),
handed out one per scenario that records or asks for consent."""


def _fresh(world: World) -> str:
    """A subscriber no earlier scenario of this run has given consent to or been asked."""
    used: list[str] = world.run_cache.setdefault("consent-info-subscribers", [])
    left = [r for r in FRESH_SUBSCRIBERS if r not in used]
    if not left:
        raise Unsupported("no fresh test subscriber left for a consent scenario")
    used.append(left[0])
    return left[0]


def _ask(world: World, scopes: list[str], purpose: str, role: str | None = None) -> None:
    world.role = role or _fresh(world)
    world.body_edits += [("$.scopes", scopes), ("$.purpose", purpose)]
    world.facts["asked"] = (scopes, purpose)


def valid_scopes(world: World, *_: str) -> None:
    world.body_edits.append(("$.scopes", ALLOWED[0]))


def valid_purpose(world: World, *_: str) -> None:
    world.body_edits.append(("$.purpose", ALLOWED[1]))


def processing_allowed(world: World) -> None:
    _ask(world, *ALLOWED, role="approves")


def processing_not_allowed(world: World) -> None:
    _ask(world, *NEEDS_CONSENT)  # consent never given: PENDING


async def consent_with_expiry(world: World) -> None:
    _ask(world, *NEEDS_CONSENT)
    number = await world.number()
    await world.target.environment.grant_consent(  # type: ignore[attr-defined]
        number, CLIENT, NEEDS_CONSENT[1], NEEDS_CONSENT[0], 3600)


async def consent_expired(world: World) -> None:
    _ask(world, *NEEDS_CONSENT)
    number = await world.number()
    await world.target.environment.grant_consent(  # type: ignore[attr-defined]
        number, CLIENT, NEEDS_CONSENT[1], NEEDS_CONSENT[0], 1)
    await asyncio.sleep(1.2)  # the consent ran out a second after it was granted


def consent_pending(world: World) -> None:
    _ask(world, *NEEDS_CONSENT)


def capture_requested(world: World) -> None:
    world.body_edits.append(("$.requestCaptureUrl", True))


def not_allowed_for_consumer(world: World, *_: str) -> None:
    world.body_edits += [("$.scopes", ["not-onboarded:read"]), ("$.purpose", "dpv:Marketing")]


def invalid_callback(world: World, *_: str) -> None:
    world.body_edits += [("$.requestCaptureUrl", True),
                         ("$.callbackUrl", "http://consumer.example.com/not-https")]


def bad_correlator(world: World, *_: str) -> None:
    world.headers["x-correlator"] = "not a valid correlator!"


async def captures_exhausted(world: World) -> None:
    """Ask for capture URLs (a new callback each time, so each is a new request) until the
    operator refuses: the scenario's precondition, reached however low the cap is."""
    _ask(world, *NEEDS_CONSENT, role="denies-consent")
    capture_requested(world)
    for n in range(50):
        world.body_edits.append(("$.callbackUrl", f"{CALLBACK}/{n}"))
        response = await world.send()
        if response.status_code == 403:
            world.response = None
            return
        if response.status_code != 200:
            raise StepFailed(f"asking for capture URL {n}: {response.status_code}")
        world.response = None
    raise Unsupported("no cap on capture URLs within 50 requests")


async def prior_capture(world: World, *_: str) -> None:
    world.facts["prior"] = True


async def callback_was_set(world: World, *_: str) -> None:
    """Send the prior request now: capture URL asked for, with the consumer's callback."""
    _ask(world, *NEEDS_CONSENT)
    capture_requested(world)
    world.body_edits.append(("$.callbackUrl", CALLBACK))
    world.facts["callback"] = CALLBACK
    response = await world.send()
    if response.status_code != 200:
        raise StepFailed(f"prior retrieveStatus: {response.status_code} {response.text[:200]}")


def capture_url_present(world: World, *_: str) -> None:
    url = world.json().get("captureUrl") if isinstance(world.json(), dict) else None
    parts = urlsplit(url or "")
    if not (parts.scheme in ("http", "https") and parts.netloc):
        raise StepFailed(f"captureUrl is {url!r}, not a URL")
    world.facts["capture_url"] = url


async def user_opens_capture(world: World, state: str | None = None) -> None:
    url = world.facts.get("capture_url")
    if not url:
        raise StepFailed("no capture URL to open")
    if state is not None:
        world.facts["state"] = state = "conformance-state-4711"
    world.facts["opened"] = await _browser_get(world, url, {"state": state} if state else None)


async def capture_reaches_final_state(world: World, *_: str) -> None:
    """Prove to be the subscriber with the code the phone received, then approve."""
    opened: httpx.Response = world.facts["opened"]
    browser: dict[str, str] = world.facts["cookies"]
    path = urlsplit(str(opened.url)).path
    page = opened.text
    if 'id="approve"' not in page:
        code = await world.target.environment.handset_code(  # type: ignore[attr-defined]
            await world.number())
        page = (await _post(world, f"{path}/code", {"csrf": _csrf(page), "code": code},
                            browser)).text
    decided = await _post(world, f"{path}/decide", {"csrf": _csrf(page), "decision": "approve"},
                          browser)
    world.facts["redirect"] = decided


def redirected_to_callback(world: World, *_: str) -> None:
    decided: httpx.Response = world.facts["redirect"]
    location = decided.headers.get("location", "")
    if decided.status_code not in (302, 303, 307) or not location.startswith(
            world.facts["callback"]):
        raise StepFailed(f"no redirection to the callback: {decided.status_code} {location!r}")


def capture_result_valid(world: World, *_: str) -> None:
    query = _query(world)
    if query.get("capture_result") not in RESULTS:
        raise StepFailed(f"capture_result is {query.get('capture_result')!r}")


def state_kept(world: World, *_: str) -> None:
    if _query(world).get("state") != world.facts.get("state"):
        raise StepFailed(f"state is {_query(world).get('state')!r}, sent {world.facts['state']!r}")


def _query(world: World) -> dict[str, str]:
    location = world.facts["redirect"].headers.get("location", "")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    if found is None:
        raise StepFailed("the capture page has no form")
    return found.group(1)


async def _browser_get(world: World, url: str, params: dict[str, str] | None) -> httpx.Response:
    response = await world.target.http.get(url, params=params)
    world.facts["cookies"] = dict(response.cookies)
    if response.status_code != 200:
        raise StepFailed(f"the capture page answered {response.status_code}")
    return response


async def _post(world: World, path: str, form: dict[str, str], cookies: dict[str, str]
                ) -> httpx.Response:
    sent = world.target.http.build_request("POST", path, data=form)
    sent.headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    response = await world.target.http.send(sent)
    cookies.update(dict(response.cookies))
    return response


# -- checks over every statusInfo item ---------------------------------------------------


def _items(world: World) -> list[dict[str, Any]]:
    body = world.json()
    items = body.get("statusInfo") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise StepFailed(f"no statusInfo in {body!r}")
    return items


def scopes_subset(world: World, *_: str) -> None:
    asked = set(world.sent_body.get("scopes", []))
    for item in _items(world):
        if not set(item.get("scopes", [])) <= asked:
            raise StepFailed(f"{item['scopes']} not within the requested {sorted(asked)}")


def purpose_matches(world: World, *_: str) -> None:
    for item in _items(world):
        if item.get("purpose") != world.sent_body.get("purpose"):
            raise StepFailed(f"purpose {item.get('purpose')!r} is not the requested one")


def every_item(field: str, test: Any, wanted: str) -> Any:
    def check(world: World, *_: str) -> None:
        for item in _items(world):
            if not test(item.get(field)):
                raise StepFailed(f"statusInfo[].{field} is {item.get(field)!r}, wanted {wanted}")
    return check


def expiry(direction: str) -> Any:
    def check(world: World, *_: str) -> None:
        now = datetime.now(UTC)
        for item in _items(world):
            value = item.get("expirationDate")
            if not isinstance(value, str):
                raise StepFailed(f"expirationDate is {value!r}")
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if (when > now) != (direction == "future"):
                raise StepFailed(f"expirationDate {value} is not in the {direction}")
    return check


def register_consent_info(lib: Any) -> None:
    """Add the Consent Info steps, ahead of the generic ones they specialise."""
    def add(pattern: str, handler: Any) -> None:
        lib.add(pattern, handler, first=True)

    prop = r'the response property "\$\.statusInfo\[\*\]\.'
    add(r'the request body property "\$\.scopes" is set to a valid scope list', valid_scopes)
    add(r'the request body property "\$\.purpose" is set to a valid purpose for the requested '
        r"scope\(s\)", valid_purpose)
    add(r"the data processing is allowed for the requested scope\(s\) and purpose",
        processing_allowed)
    add(r"the data processing is not allowed for the requested scope\(s\) and purpose",
        processing_not_allowed)
    add(r"the data processing is allowed for the requested scope\(s\) and purpose with an "
        r"expiration date", consent_with_expiry)
    add(r"the data processing is not allowed for the requested scope\(s\) and purpose because "
        r"it has expired", consent_expired)
    add(r"the data processing is not allowed for the requested scope\(s\) and purpose because "
        r"Consent is pending, requested or expired", consent_pending)
    add(r'the request body property "\$\.requestCaptureUrl" is set to true', capture_requested)
    add(r'the request body property "\$\.scopes" and "\$\.purpose" are set to a value which is '
        r"not allowed for the API Consumer", not_allowed_for_consumer)
    add(r'the request body property "\$\.callbackUrl" is set to an invalid URL', invalid_callback)
    add(r'the header "x-correlator" is set to a value which is not compliant with the schema at '
        + Q, bad_correlator)
    add(r"the API Consumer has exceeded the maximum number of captureUrl requests for the same "
        r"phone number within a certain time period", captures_exhausted)
    add(r'a prior "retrieveStatus" request where the API Consumer requested a Consent capture '
        r"URL", prior_capture)
    add(r'the request body property "\$\.callbackUrl" was set to a valid URL belonging to the '
        r"API Consumer", callback_was_set)
    add(r'the response property "\$\.captureUrl" is present and it contains a valid URL',
        capture_url_present)
    add(r"the User is redirected to the Consent capture URL", user_opens_capture)
    add(r'the User is redirected to the Consent capture URL including a query parameter '
        r'"state" with a valid value', lambda w: user_opens_capture(w, "state"))
    add(r"the Consent Capture process reach(?:es)? a final state", capture_reaches_final_state)
    add(r"the API Consumer receives a redirection to the callback URL provided in the original "
        r'"retrieveStatus" request', redirected_to_callback)
    add(r'the redirection includes a query parameter "capture_result" with a valid capture '
        r"result value", capture_result_valid)
    add(r'the redirection includes a query parameter "state" with the same value as provided '
        r"when opening the Consent Capture URL", state_kept)
    add(prop + r'scopes" is either equal to or a subset of the requested scopes', scopes_subset)
    add(prop + r'purpose" matches the requested purpose', purpose_matches)
    add(prop + r'statusValidForProcessing" is true',
        every_item("statusValidForProcessing", lambda v: v is True, "true"))
    add(prop + r'statusValidForProcessing" is false',
        every_item("statusValidForProcessing", lambda v: v is False, "false"))
    add(prop + r'statusReason" is present',
        every_item("statusReason", lambda v: isinstance(v, str), "present"))
    add(prop + r'statusReason" is "EXPIRED"',
        every_item("statusReason", lambda v: v == "EXPIRED", "EXPIRED"))
    add(prop + r'statusReason" is "PENDING", "REQUESTED" or "EXPIRED"',
        every_item("statusReason", lambda v: v in {"PENDING", "REQUESTED", "EXPIRED"},
                   "PENDING, REQUESTED or EXPIRED"))
    add(prop + r'expirationDate" is present and its value is in the future', expiry("future"))
    add(prop + r'expirationDate" is present and its value is in the past', expiry("past"))
