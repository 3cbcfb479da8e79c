"""Who may open a simulated phone: its holder, the operator, or whoever holds its link.

The handset shows one-time codes and answers CIBA consent prompts, so whoever opens a
number's phone can sign in to that subscriber's consent portal and consent in their name.
A real phone is opened only by the person holding it; the simulated one opens for:

* a request from the phone's own data connection (the device address the operator gave the
  subscriber, as Number Verification recognises it);
* the operator admin's credential (``Authorization``, as on ``/admin``);
* the phone's **link**: ``/handset/<number>?key=<key>``, where the key is an HMAC of the
  number under a key derived from the operator's admin secret. The operator hands it out
  (``GET /admin/handsets/<number>``, ``ogsim serve``'s table, ``ogsim demo --interactive``);
  the page keeps it in a ``SameSite=Strict`` cookie of its own, so the page's reloads and
  buttons need no key in their URLs. Nothing is stored: every data centre of the operator
  derives the same keys, and a new admin secret gives every phone a new link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

COOKIE_PREFIX = "ogsim_phone_"
KEY_LENGTH = 22
"""Characters of a key: 132 bits of the HMAC, base64url."""


def _key_of(secret: str) -> bytes:
    return hashlib.sha256(b"ogsim handset link\0" + secret.encode()).digest()


def phone_key(secret: str, msisdn: str) -> str:
    """The key of ``msisdn``'s phone link under the operator's admin ``secret``."""
    mac = hmac.new(_key_of(secret), msisdn.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode()[:KEY_LENGTH]


def key_matches(secret: str, msisdn: str, key: str | None) -> bool:
    """Whether ``key`` opens ``msisdn``'s phone (constant time)."""
    if not key or len(key) != KEY_LENGTH:
        return False
    return hmac.compare_digest(phone_key(secret, msisdn).encode(), key.encode())


def phone_path(msisdn: str) -> str:
    """The phone's page, without its key (what the page's own links and forms use)."""
    return f"/handset/{quote(msisdn, safe='+')}"


def phone_link(origin: str, secret: str, msisdn: str) -> str:
    """The URL that opens ``msisdn``'s phone in a browser."""
    return f"{origin.rstrip('/')}{phone_path(msisdn)}?key={phone_key(secret, msisdn)}"


def cookie_name(msisdn: str) -> str:
    """The cookie holding a phone's key: one per number, so one browser can hold several."""
    return COOKIE_PREFIX + "".join(c for c in msisdn if c.isdigit())
