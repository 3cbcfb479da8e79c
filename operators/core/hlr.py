"""The SIM data register (HLR/HSS): SIM change time, attach state and the visited network."""

from __future__ import annotations

from operators.config import OperatorConfig
from operators.subscriber import Connectivity, Subscriber
from operators.subscriber_base import SubscriberBase

from .errors import SubscriberUnknown
from .record_memo import RecordMemo
from .records import HlrRecord, MsisdnQuery, MsState

__all__ = ["MCC_BY_COUNTRY", "Hlr", "country_of_mcc"]

MCC_BY_COUNTRY: dict[str, str] = {
    "ES": "214",
    "FR": "208",
    "DE": "262",
    "IT": "222",
    "PT": "268",
    "GB": "234",
    "US": "310",
    "NL": "204",
    "BR": "724",
    "MX": "334",
}
"""Mobile country codes (ITU-T E.212) of the countries subscribers roam to."""


def country_of_mcc(mcc: str) -> str | None:
    """The ISO 3166-1 alpha-2 country of an MCC, as a roaming-status service needs it."""
    return next((c for c, m in MCC_BY_COUNTRY.items() if m == mcc), None)


class Hlr:
    """Answers :class:`HlrRecord` from the operator's subscriber base; pure, no timing."""

    name = "hlr"

    def __init__(self, subscribers: SubscriberBase) -> None:
        self.subscribers = subscribers
        self._memo: RecordMemo[HlrRecord] = RecordMemo()

    def __call__(self, query: MsisdnQuery) -> HlrRecord:
        msisdn = query.msisdn
        subscribers = self.subscribers
        subscriber = subscribers.get(msisdn)
        if subscriber is None:
            raise SubscriberUnknown(self.name, f"no subscriber {msisdn}")
        config = subscribers.config
        record = self._memo.get(msisdn, subscriber, config)
        if record is None:
            record = self._memo.put(msisdn, subscriber, config, self._record(subscriber, config))
        return record

    def _record(self, subscriber: Subscriber, config: OperatorConfig) -> HlrRecord:
        visited = subscriber.roaming_country
        vlr_mcc = config.mcc if visited is None else MCC_BY_COUNTRY.get(visited, "901")
        return HlrRecord(
            imsi=subscriber.imsi,
            msisdn=subscriber.msisdn,
            sim_change_timestamp=int(subscriber.latest_sim_change.timestamp()),
            ms_state=MsState.ATTACHED if subscriber.reachable else MsState.DETACHED,
            gprs_attached=Connectivity.DATA in subscriber.connectivity,
            sms_attached=Connectivity.SMS in subscriber.connectivity,
            hplmn=config.network,
            vlr_mcc=vlr_mcc,
        )
