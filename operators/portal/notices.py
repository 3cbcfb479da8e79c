"""The portal's "done" notices, carried across a redirect by a fixed key, never by their text.

A page that showed the ``notice`` query parameter as it came would show anyone's words in the
portal's own green box: a link such as ``/portal?notice=Your+key+leaked.+Mail+it+to+...``
reads as the operator speaking. The redirect names a key; the page shows that key's text and
nothing for a key it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

__all__ = ["NOTICES", "notice_of", "with_notice"]

NOTICES = {
    "key-replaced": "Key replaced.",
    "plan-changed": "Plan changed.",
    "production-requested": "Production requested.",
    "application-disabled": "Application disabled.",
    "production-approved": "Production approved.",
    "production-refused": "Production refused.",
    "developer-deactivated": "Developer deactivated; {count} application(s) suspended.",
    "confirmation-sent": "A new confirmation link is on its way to your address.",
}


def with_notice(path: str, key: str, count: int | None = None) -> str:
    """``path`` with the notice ``key`` (and the number its text shows, if any) to show."""
    if key not in NOTICES:
        raise KeyError(f"no portal notice {key!r}")
    params = {"notice": key} if count is None else {"notice": key, "count": str(count)}
    return f"{path}?{urlencode(params)}"


def notice_of(params: Mapping[str, str]) -> str | None:
    """The text of the notice a redirect named, or None (no key, an unknown one, or a count
    that is not a number)."""
    text = NOTICES.get(params.get("notice", ""))
    if text is None:
        return None
    if "{count}" not in text:
        return text
    count = params.get("count", "")
    wellformed = count.isascii() and count.isdigit() and len(count) < 7  # "²" is a digit too
    return text.format(count=int(count)) if wellformed else None
