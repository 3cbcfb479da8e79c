"""Who a ``login_hint`` or a JWT-bearer ``sub`` names: ``tel:``, ``ipport:`` or ``operatortoken:``.

A number outside this operator's ranges, ported away, or simply unknown all resolve the same
way (:class:`UnknownSubjectError`): the operator never tells a client which other operator serves
a number, and a client cannot probe the subscriber base through error differences.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets

from ..config import OperatorConfig
from ..storage import Database
from ..subscriber import Subscriber
from ..subscriber_base import SubscriberBase
from ..types import Clock

SCHEMA = """
CREATE TABLE IF NOT EXISTS identity_operator_tokens (
    token_hash TEXT PRIMARY KEY,
    msisdn TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""

OPERATOR_TOKEN = "operatortoken:"
"""The prefix of a TS.43 temporary token's subject: the SIM, through the network, proved
who the subscriber is."""
TEL = re.compile(r"^tel:(\+[1-9][0-9]{6,14})$")
IPPORT = re.compile(
    r"^ipport:(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<v4>[0-9.]+))(?::(?P<port>[0-9]{1,5}))?$"
)


class UnknownSubjectError(ValueError):
    """The hint names nobody this operator serves (or is malformed, when ``malformed``)."""

    def __init__(self, description: str, *, malformed: bool = False) -> None:
        super().__init__(description)
        self.malformed = malformed


class SubjectResolver:
    """Turns a CAMARA subject hint into the subscriber it names, as of the injected clock."""

    def __init__(
        self, config: OperatorConfig, subscribers: SubscriberBase, db: Database, *, clock: Clock
    ) -> None:
        self.config = config
        self.subscribers = subscribers
        self.db = db
        self.clock = clock
        db.ensure_schema(SCHEMA)

    def resolve(self, hint: str) -> Subscriber:
        tel = TEL.match(hint)
        if tel:
            return self._by_number(tel.group(1))
        ipport = IPPORT.match(hint)
        if ipport:
            if ipport.group("v6"):
                raise UnknownSubjectError("no subscriber is known by this IPv6 address")
            try:
                address = str(ipaddress.IPv4Address(ipport.group("v4")))
            except ValueError as error:
                raise UnknownSubjectError("malformed IPv4 address", malformed=True) from error
            subscriber = self.subscribers.by_ipv4(address)
            if subscriber is None:
                raise UnknownSubjectError("no subscriber of this operator uses this address")
            return subscriber
        if hint.startswith(OPERATOR_TOKEN):
            return self._by_operator_token(hint.removeprefix(OPERATOR_TOKEN))
        raise UnknownSubjectError(
            "hint must be tel:+<E.164>, ipport:<address> or operatortoken:<token>", malformed=True
        )

    def _by_number(self, msisdn: str) -> Subscriber:
        # The subscriber base knows who is served here, ported-in numbers included, and
        # answers None for a number ported away, whatever the ranges say.
        subscriber = self.subscribers.get(msisdn)
        if subscriber is None:
            raise UnknownSubjectError("no subscriber of this operator has this number")
        return subscriber

    def issue_operator_token(self, msisdn: str, lifetime: float = 600.0) -> str:
        """An opaque TS.43-style token standing for ``msisdn`` for ``lifetime`` seconds."""
        token = secrets.token_urlsafe(24)
        self.db.insert(
            "INSERT INTO identity_operator_tokens (token_hash, msisdn, expires_at)"
            " VALUES (?, ?, ?)",
            (hashlib.sha256(token.encode()).hexdigest(), msisdn, self.clock() + lifetime),
        )
        return token

    def _by_operator_token(self, token: str) -> Subscriber:
        row = self.db.one(
            "SELECT msisdn, expires_at FROM identity_operator_tokens WHERE token_hash = ?",
            (hashlib.sha256(token.encode()).hexdigest(),),
        )
        if row is None or row["expires_at"] <= self.clock():
            raise UnknownSubjectError("unknown or expired operator token")
        return self._by_number(row["msisdn"])
