"""Which hosts the operator sends requests to on a third party's word.

Saving the trust settings makes the operator fetch an organisation's chosen issuer's discovery
document, and a corporate sign-in posts to the token endpoint that document names; a QoD
session's ``sink`` makes the operator (or the aggregator) post notifications to a URL an
application chose. With ``allowed`` (the operator config's ``corporate_idp_hosts``, for
identity providers) only those hosts are used. Without it any host is used but link-local,
multicast, reserved, unspecified and shared (CGNAT) addresses and the clouds' metadata
addresses, in the spellings a resolver takes (decimal, hex, a trailing dot, IPv4-mapped and
6to4 IPv6). Loopback and private addresses pass, because a simulator's providers and sinks run
there: this keeps the cloud's metadata service out of reach, not every internal host. A host
*name* is not resolved here, so one that resolves to such an address passes: an exposed
deployment sets ``corporate_idp_hosts`` and filters egress.

Whatever the host, an identity provider's issuer and the endpoints its discovery document names,
and a federation partner's issuer, carry client secrets, codes, tokens and the keys that vouch
for them: :func:`scheme_problem` wants https for them, and lets plain http through only to a
loopback host (where the demo and the tests run every party), which no network path can observe.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

__all__ = ["host_problem", "is_loopback", "scheme_problem", "sink_problem"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
"""RFC 6598 shared address space: Alibaba's metadata service is 100.100.100.200."""

_METADATA = frozenset({ipaddress.ip_address("fd00:ec2::254")})
"""Cloud metadata addresses outside the ranges refused whole (AWS's IPv6 one)."""


def sink_problem(url: str) -> str | None:
    """Why the operator will not post notifications to ``url`` (a QoD ``sink``), or None:
    not an https URL it can read, or a host :func:`host_problem` refuses."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises only when read)
    except ValueError:
        return "not a URL the operator can send to"
    if parts.scheme != "https" or not parts.hostname:
        return "an https URL with a host is required"
    return host_problem(parts, None)


def host_problem(parts: SplitResult, allowed: tuple[str, ...] | None) -> str | None:
    """Why the operator will not fetch from this URL's host, or None if it will."""
    host = (parts.hostname or "").lower()
    if allowed is not None:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        names = {entry.lower() for entry in allowed}
        with_port = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # IPv6 in brackets
        if host in names or with_port in names:
            return None
        return (f"this operator accepts identity providers only on "
                f"{', '.join(allowed) or 'no host'}; ask the operator to add {host}.")
    address = _literal_address(host.rstrip("."))
    if address is None:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or address.sixtofour or address
    if address.is_loopback:  # ::1 lies in ::/8, which counts as reserved
        return None
    if (address.is_link_local or address.is_multicast or address.is_reserved
            or address.is_unspecified or address in _METADATA
            or (isinstance(address, ipaddress.IPv4Address) and address in _SHARED)):
        return f"{host} is not an address the operator sends requests to."
    return None


def scheme_problem(url: str | SplitResult) -> str | None:
    """Why credentials must not travel to ``url`` (an issuer or an endpoint its discovery
    document names), or None: https is required, plain http only on a loopback host, since on
    any other a man in the middle would read secrets, codes and tokens and could swap the keys
    that verify them."""
    try:
        parts = urlsplit(url) if isinstance(url, str) else url
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return "not a URL the operator can send to."
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname:
        return None
    if scheme == "http" and is_loopback(parts.hostname or ""):
        return None
    if scheme == "http":
        return ("http:// is accepted only on a loopback host (127.0.0.0/8, ::1, localhost); "
                "use https://.")
    return "an https:// URL with a host is required."


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost``, or an address in 127.0.0.0/8 or ::1
    (also IPv4-mapped). Only the usual spellings: ``localhost.`` or a decimal address is
    refused rather than guessed at, as what it reaches is the resolver's say."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _literal_address(host: str) -> Address | None:
    """The address ``host`` spells, in any form a resolver takes (``169.254.169.254``, but
    also ``2852039166`` or ``0xa9.0xfe.0xa9.0xfe``), or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(char in "0123456789abcdefx." for char in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None
