"""The KYC register: the identity the operator verified when the subscriber signed up."""

from __future__ import annotations

from operators.subscriber import Subscriber
from operators.subscriber_base import SubscriberBase

from .errors import SubscriberUnknown
from .record_memo import RecordMemo
from .records import KycRecord, MsisdnQuery

__all__ = ["KycRegister"]


class KycRegister:
    """Answers the flat :class:`KycRecord`; the matching (and its scores) is the CAMARA side's."""

    name = "kyc"

    def __init__(self, subscribers: SubscriberBase) -> None:
        self.subscribers = subscribers
        self._memo: RecordMemo[KycRecord] = RecordMemo()

    def __call__(self, query: MsisdnQuery) -> KycRecord:
        msisdn = query.msisdn
        subscriber = self.subscribers.get(msisdn)
        if subscriber is None:
            raise SubscriberUnknown(self.name, f"no subscriber {msisdn}")
        record = self._memo.get(msisdn, subscriber)
        if record is None:
            record = self._memo.put(msisdn, subscriber, None, self._record(subscriber))
        return record

    @staticmethod
    def _record(subscriber: Subscriber) -> KycRecord:
        who = subscriber.identity
        return KycRecord(
            msisdn=subscriber.msisdn,
            given_name=who.given_name,
            family_name=who.family_name,
            birthdate=who.birthdate,
            gender=who.gender,
            email=who.email,
            street_name=who.address.street_name,
            street_number=who.address.street_number,
            postal_code=who.address.postal_code,
            locality=who.address.locality,
            region=who.address.region,
            country=who.address.country,
            id_document_type=who.id_document.kind,
            id_document_number=who.id_document.number,
            id_document_expiry=who.id_document.expires,
        )
