from __future__ import annotations

from datetime import date

import pytest

from operators.core import (
    CreateQosSession,
    DeleteQosSession,
    ExtendQosSession,
    Hlr,
    IpQuery,
    KycRegister,
    LocationServer,
    MsisdnQuery,
    MsState,
    NvAuthenticator,
    PolicyFunction,
    QosSessionState,
    ReadQosSession,
    SessionUnknown,
    SubscriberUnknown,
)
from operators.subscriber_base import ChangeKind, SubscriberBase

from .conftest import NOW

UNKNOWN = "+34609999999"


def test_hlr_answers_its_own_record_from_the_subscriber_base(
    subscribers: SubscriberBase,
) -> None:
    number = subscribers.test_number("recent-swap")
    record = Hlr(subscribers)(MsisdnQuery(number))
    subscriber = subscribers.get(number)
    assert subscriber is not None
    assert record.msisdn == number
    assert record.imsi == subscriber.imsi
    assert record.sim_change_timestamp == int(subscriber.latest_sim_change.timestamp())
    assert record.hplmn == "21407"
    assert record.vlr_mcc == "214"
    assert record.ms_state is MsState.ATTACHED
    assert record.gprs_attached and record.sms_attached


def test_hlr_shows_roaming_and_detached_devices(subscribers: SubscriberBase) -> None:
    hlr = Hlr(subscribers)
    assert hlr(MsisdnQuery(subscribers.test_number("roaming"))).vlr_mcc == "208"  # France
    unreachable = hlr(MsisdnQuery(subscribers.test_number("unreachable")))
    assert unreachable.ms_state is MsState.DETACHED
    assert not unreachable.gprs_attached and not unreachable.sms_attached
    sms_only = hlr(MsisdnQuery(subscribers.test_number("sms-only")))
    assert sms_only.sms_attached and not sms_only.gprs_attached


def test_location_server_reports_fix_age_on_the_base_clock(subscribers: SubscriberBase) -> None:
    number = next(subscribers.numbers(1))
    estimate = LocationServer(subscribers)(MsisdnQuery(number))
    subscriber = subscribers.get(number)
    assert subscriber is not None
    assert (estimate.latitude, estimate.longitude) == (
        subscriber.location.latitude,
        subscriber.location.longitude,
    )
    assert estimate.uncertainty_radius == subscriber.location.accuracy
    assert estimate.age_of_location == int(NOW - subscriber.location.observed_at.timestamp())


def test_kyc_register_flattens_the_verified_identity(subscribers: SubscriberBase) -> None:
    number = subscribers.test_number("approves")
    record = KycRegister(subscribers)(MsisdnQuery(number))
    subscriber = subscribers.get(number)
    assert subscriber is not None
    assert record.family_name == subscriber.identity.family_name
    assert record.postal_code == subscriber.identity.address.postal_code
    assert isinstance(record.birthdate, date)


def test_nv_authenticator_maps_device_address_to_number(subscribers: SubscriberBase) -> None:
    number = next(subscribers.numbers(1))
    subscriber = subscribers.get(number)
    assert subscriber is not None and subscriber.ipv4 is not None
    assert NvAuthenticator(subscribers)(IpQuery(subscriber.ipv4)).msisdn == number
    with pytest.raises(SubscriberUnknown):
        NvAuthenticator(subscribers)(IpQuery("192.0.2.1"))


@pytest.mark.parametrize("handler", [Hlr, LocationServer, KycRegister])
def test_unknown_number_raises_a_typed_error(
    subscribers: SubscriberBase, handler: type[Hlr | LocationServer | KycRegister]
) -> None:
    with pytest.raises(SubscriberUnknown) as raised:
        handler(subscribers)(MsisdnQuery(UNKNOWN))
    assert raised.value.code == "UNKNOWN_SUBSCRIBER"


def test_ported_out_number_is_unknown(subscribers: SubscriberBase) -> None:
    number = next(subscribers.numbers(1))
    subscribers.record_change(number, ChangeKind.PORT_OUT, {"operator": "telco-fr"}, at=0)
    with pytest.raises(SubscriberUnknown):
        Hlr(subscribers)(MsisdnQuery(number))


def test_policy_function_session_lifecycle_and_expiry(subscribers: SubscriberBase) -> None:
    now = [1000.0]
    pcf = PolicyFunction(subscribers, clock=lambda: now[0])
    number = subscribers.test_number("approves")
    created = pcf(CreateQosSession(number, "QOS_E", duration=60))
    assert created.expires_at == 1060 and created.state is QosSessionState.ACTIVE
    assert pcf(ReadQosSession(created.session_id)) == created
    extended = pcf(ExtendQosSession(created.session_id, additional=30))
    assert extended.expires_at == 1090
    now[0] = 1089.0
    assert pcf.active_sessions() == 1
    now[0] = 1090.0
    with pytest.raises(SessionUnknown):
        pcf(ReadQosSession(created.session_id))
    second = pcf(CreateQosSession(number, "QOS_L", duration=10))
    assert second.session_id != created.session_id
    assert pcf(DeleteQosSession(second.session_id)).state is QosSessionState.DELETED
    with pytest.raises(SessionUnknown):
        pcf(DeleteQosSession(second.session_id))
    with pytest.raises(SubscriberUnknown):
        pcf(CreateQosSession(UNKNOWN, "QOS_E", duration=10))
