"""The portal's forms: read within bounds, a field once, a number in E.164; else a 400 page."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from fastapi import Request

from ..request_body import BodyRefusedError, ThreatLimits, read_body

FORM_LIMITS = ThreatLimits(max_body_bytes=4096,
                           allowed_content_types=("application/x-www-form-urlencoded",))
NUMBER = re.compile(r"^\+[1-9][0-9]{6,14}$")
CODE = re.compile(r"^[0-9]{6}$")


class FormError(Exception):
    """A form the portal cannot act on: shown as a page with ``status`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def normalise_number(raw: str | None) -> str:
    """``+34 600-000 001`` → ``+34600000001``; anything else that is no E.164 number → 400."""
    number = re.sub(r"[\s\-().]", "", raw or "")
    if not NUMBER.match(number):
        raise FormError(400, "Enter your mobile number in international format, e.g. "
                             "+34600000001.")
    return number


async def read_form(request: Request) -> dict[str, str]:
    """A small urlencoded form (4 KiB, 16 fields, a field given once); else :class:`FormError`."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormError(400, "This page takes a form.")
    try:
        body = await read_body(request, FORM_LIMITS)
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=16)
    except BodyRefusedError as refusal:
        raise FormError(400, "The form could not be read.") from refusal
    except (UnicodeDecodeError, ValueError) as error:
        raise FormError(400, "The form could not be read.") from error
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise FormError(400, "A field of the form is repeated.")
        form[name] = value
    return form
