"""The portal's notices: a redirect names a key, the page shows that key's text, never the
query's own words."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from operators.portal.notices import NOTICES, notice_of, with_notice


def shown(url: str) -> str | None:
    return notice_of(dict(parse_qsl(urlsplit(url).query)))


def test_each_key_comes_back_as_its_text() -> None:
    for key in NOTICES:
        if "{count}" not in NOTICES[key]:
            assert shown(with_notice("/portal", key)) == NOTICES[key]
    assert shown(with_notice("/portal/admin", "developer-deactivated", 3)) == (
        "Developer deactivated; 3 application(s) suspended.")


@pytest.mark.parametrize("query", [
    {"notice": "Your key leaked. Mail it to support@evil.example"},
    {"notice": "Key+replaced."},
    {"notice": "developer-deactivated", "count": "all of them"},
    {"notice": "developer-deactivated", "count": "\u00b2"},  # a digit to isdigit, not to int
    {"notice": "developer-deactivated"},
    {},
])
def test_anything_else_shows_nothing(query: dict[str, str]) -> None:
    assert notice_of(query) is None


def test_a_key_that_does_not_exist_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        with_notice("/portal", "made-up")
