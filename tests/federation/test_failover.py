"""Active-active data centres in live mode: a site taken down fails calls only inside the
health-check window, then the GLB routes around it, and back once it recovers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from federation.config import FederationConfig
from federation.data_centres import DATA_CENTRE_HEADER
from federation.federation import running_federation
from federation.global_load_balancer import HealthPolicy

POLICY = HealthPolicy(interval=0.05, failures_to_down=2, successes_to_up=2)
ADMIN = {"Authorization": "Bearer admin-secret"}
FRAUD = "dpv:FraudPreventionAndDetection"


async def test_data_centre_failover_with_a_bounded_error_count(
    federation: FederationConfig, tmp_path: Path
) -> None:
    async with running_federation(federation, tmp_path, health=POLICY) as fed:
        app = await fed.register_application("app", "sim-swap:check", [FRAUD])
        token = (await app.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        number = fed.operator("telco-es").subscribers.test_number("approves")
        root = fed.config.operator("telco-es").api_root
        front = fed.members["telco-es"].front

        async def call() -> tuple[int, str]:
            response = await fed.http.post(
                f"{fed.aggregator.api_root}/sim-swap/v2/check",
                json={"phoneNumber": number},
                headers=headers,
            )
            return response.status_code, response.headers.get(DATA_CENTRE_HEADER, "")

        before = {await call() for _ in range(4)}
        assert before == {(200, "madrid"), (200, "barcelona")}, "both sites serve"

        failed = await fed.http.post(f"{root}/admin/data-centres/madrid/fail", headers=ADMIN)
        assert failed.status_code == 200
        # Calls while the balancer still has madrid in rotation may fail (madrid's share of
        # them); once its health checks take madrid out, none may. Both are conditions on the
        # balancer's own state, not on the wall clock, so a slow machine only lengthens the
        # window; the time to detect is the policy's, tested on a fake clock elsewhere.
        in_rotation: list[tuple[int, str]] = []
        deadline = time.monotonic() + 60  # generous: only a broken health check waits this long
        while front.glb.health.is_up("madrid"):
            assert time.monotonic() < deadline, "madrid was never taken out of rotation"
            in_rotation.append(await call())
            await asyncio.sleep(0.005)
        errors = [result for result in in_rotation if result[0] != 200]
        assert len(errors) <= len(in_rotation) // 2 + 1, "at most madrid's share of the window"
        after_detection = [await call() for _ in range(20)]
        assert after_detection == [(200, "barcelona")] * 20
        assert not front.glb.health.is_up("madrid")
        # tokens, clients and replay state live in the shared database: barcelona knew them

        await fed.http.post(f"{root}/admin/data-centres/madrid/recover", headers=ADMIN)
        deadline = time.monotonic() + 5
        while not front.glb.health.is_up("madrid") and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        after = {await call() for _ in range(4)}
        assert after == {(200, "madrid"), (200, "barcelona")}, "back in rotation"
        status = (await fed.http.get(f"{root}/admin/data-centres", headers=ADMIN)).json()
        assert {s["name"]: s["inRotation"] for s in status} == {"madrid": True, "barcelona": True}
        assert (await fed.http.get(f"{root}/admin/data-centres")).status_code == 401


async def test_replicas_of_one_operator_share_their_limits(
    federation: FederationConfig, tmp_path: Path
) -> None:
    async with running_federation(federation, tmp_path, probes=False) as fed:
        replicas = list(fed.members["telco-es"].replicas.values())
        assert len(replicas) == 2
        assert replicas[0].gateway.admission.throttle is replicas[1].gateway.admission.throttle
        assert replicas[0].gateway.admission.plans is not replicas[1].gateway.admission.plans
