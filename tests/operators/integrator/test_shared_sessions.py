"""QoD sessions live in the operator's database: every replica answers for every session."""

from __future__ import annotations

from pathlib import Path

import pytest

from operators.camara.context import CallContext
from operators.camara.quality_on_demand import CreateSession, ExtendSessionDuration
from operators.config import example_operator
from operators.core import ConstantServiceTime, CoreSpec
from operators.errors import CamaraError
from operators.integrator import Integrator, build_live_integrator
from operators.storage import Database
from operators.subscriber_base import SubscriberBase


def replica(path: str) -> Integrator:
    config = example_operator(storage=path)
    base = SubscriberBase(config, Database(path))
    fast = ConstantServiceTime(distribution="constant", value=0.0001)
    core = CoreSpec().model_copy(deep=True)
    for name in (
        "sim_data_register",
        "location_server",
        "policy_function",
        "kyc_register",
        "nv_authenticator",
    ):
        spec = getattr(core, name)
        core = core.model_copy(update={name: spec.model_copy(update={"service_time": fast})})
    integrator, _ = build_live_integrator(base, core=core)
    return integrator


async def test_a_session_created_in_one_site_is_read_extended_and_deleted_in_another(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "operator.sqlite3")
    madrid, barcelona = replica(path), replica(path)
    number = madrid.directory.test_number("approves")  # type: ignore[attr-defined]
    ctx = CallContext(client_id="qod-app", msisdn=number, scopes=frozenset())
    body = CreateSession.model_validate(
        {
            "qosProfile": "QOS_E",
            "duration": 600,
            "applicationServer": {"ipv4Address": "198.51.100.10"},
        }
    )
    created = await madrid.create_session(ctx, body)
    read = await barcelona.get_session(ctx, str(created.sessionId))
    assert read.sessionId == created.sessionId and read.qosStatus == created.qosStatus
    extended = await barcelona.extend_session(
        ctx, str(created.sessionId), ExtendSessionDuration(requestedAdditionalDuration=60)
    )
    assert extended.duration == 660
    other = await replica(path).create_session(
        CallContext(
            client_id="qod-app",
            msisdn=madrid.directory.test_number("roaming"),  # type: ignore[attr-defined]
            scopes=frozenset(),
        ),
        body,
    )
    assert other.sessionId != created.sessionId  # ids are unique across sites
    await madrid.delete_session(ctx, str(created.sessionId))
    with pytest.raises(CamaraError) as gone:
        await barcelona.get_session(ctx, str(created.sessionId))
    assert gone.value.status == 404


async def test_concurrent_creates_for_one_device_give_one_session(tmp_path: Path) -> None:
    import asyncio

    path = str(tmp_path / "operator.sqlite3")
    madrid, barcelona = replica(path), replica(path)
    number = madrid.directory.test_number("approves")  # type: ignore[attr-defined]
    ctx = CallContext(client_id="qod-app", msisdn=number, scopes=frozenset())
    body = CreateSession.model_validate(
        {
            "qosProfile": "QOS_E",
            "duration": 600,
            "applicationServer": {"ipv4Address": "198.51.100.10"},
        }
    )
    outcomes = await asyncio.gather(
        *(site.create_session(ctx, body) for site in (madrid, barcelona) for _ in range(3)),
        return_exceptions=True,
    )
    created = [o for o in outcomes if not isinstance(o, BaseException)]
    conflicts = [o for o in outcomes if isinstance(o, CamaraError) and o.status == 409]
    assert len(created) == 1 and len(conflicts) == 5
    assert madrid.sessions.all() and len(madrid.sessions.all()) == 1
