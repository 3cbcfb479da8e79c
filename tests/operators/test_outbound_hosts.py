"""Outbound hosts: which URLs the operator sends an identity provider's secrets to."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from operators import host_problem, scheme_problem


@pytest.mark.parametrize("url", [
    "https://idp.example.com", "https://10.0.0.5:8443/realms/corp", "https://[2001:db8::1]",
    "http://127.0.0.1:8099", "http://127.8.9.10/oauth", "http://localhost:8080",
    "http://LOCALHOST", "http://[::1]:8099", "http://[::ffff:127.0.0.1]:8099",
])
def test_https_anywhere_and_plain_http_on_loopback_are_accepted(url: str) -> None:
    assert scheme_problem(url) is None
    assert scheme_problem(urlsplit(url)) is None


@pytest.mark.parametrize("url", [
    "http://idp.example.com", "http://10.0.0.5:8080", "http://192.168.1.10",
    "http://[2001:db8::1]:8099", "http://[::2]", "http://128.0.0.1",
    "http://localhost.", "http://localhost.evil.example", "http://127.0.0.1.nip.io",
    "http://2130706433", "http://0x7f.0.0.1",
])
def test_plain_http_off_loopback_is_refused(url: str) -> None:
    """A man in the middle could read the secrets and codes and swap the keys; the odd
    spellings of 127.0.0.1 are the resolver's to read, so they are not taken on trust."""
    assert scheme_problem(url) == (
        "http:// is accepted only on a loopback host (127.0.0.0/8, ::1, localhost); use https://.")


@pytest.mark.parametrize("url", ["ftp://idp.example.com", "https://", "idp.example.com", ""])
def test_other_schemes_and_no_host_are_refused(url: str) -> None:
    assert scheme_problem(url) == "an https:// URL with a host is required."


def test_an_unreadable_url_is_refused_not_raised() -> None:
    assert scheme_problem("http://[x") == "not a URL the operator can send to."


def test_ipv6_loopback_is_a_host_the_operator_sends_to() -> None:
    """::1 lies in ::/8, which Python counts as reserved: it was refused with the reserved."""
    assert host_problem(urlsplit("http://[::1]:8099"), None) is None
    assert host_problem(urlsplit("http://[::]:8099"), None) is not None
    assert host_problem(urlsplit("http://[::2]:8099"), None) is not None
