"""Nothing lost, nothing doubled: ``ogsim serve`` killed with SIGKILL in the middle of a stream
of concurrent calls, restarted on the same database, and ``ogsim serve`` stopped by SIGTERM.

Every call that got a 2xx has exactly one usage event; an event whose answer no client saw
belongs to a call cut off by the kill; every acknowledged client registration, consent grant
and revocation and QoD session is there after the restart; an idempotency key replayed after the
restart gets the stored answer (``Idempotent-Replayed: true``) and no second event. Loopback
only, bounded in calls and time; conditions are waited for with generous bounds.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from federation.client import ApplicationClient, new_client_key
from federation.ports import free_port_block
from operators.config import TokenLifetimes, example_operator
from operators.storage import Database
from operators.subscriber_base import SubscriberBase

ADMIN = {"Authorization": "Bearer admin-secret"}
FRAUD = "dpv:FraudPreventionAndDetection"
CONSENTED = "dpv:ServiceProvision"
CONTRACT = "dpv:RequestedServiceProvision"
SCOPES = (
    "sim-swap:check quality-on-demand:sessions:create quality-on-demand:sessions:read"
)
APPLICATIONS = 4
CALLS_PER_APPLICATION = 75
KILL_AFTER = 120
"""Answered calls before the SIGKILL: the rest of the stream is in flight or still to come."""


def wait_until(condition: Any, what: str, bound: float = 60.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {bound:.0f} s: {what}")
        time.sleep(0.1)


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Served:
    """``ogsim serve`` on a loopback port over one SQLite file, restartable."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        return self.folder / "operator.sqlite3"

    def start(self) -> None:
        config = self.folder / "operator.yaml"
        if not config.exists():
            operator = example_operator().model_copy(
                update={"lifetimes": TokenLifetimes(ciba_interval=0)}
            )
            config.write_text(yaml.safe_dump(operator.model_dump(mode="json")))
        log = (self.folder / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "sim.cli", "serve", "--config", str(config),
                "--port", str(self.port), "--storage", str(self.database),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: healthy(self.base) or self.process.poll() is not None, "health")
        assert self.process.poll() is None, (self.folder / "serve.log").read_text()[-2000:]

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(timeout=30) == -signal.SIGKILL

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


@dataclass
class Seen:
    """What the clients were told: only an acknowledged answer counts as done."""

    answered: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    sent: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # key -> body
    cut_off: set[tuple[str, str]] = field(default_factory=set)
    registered: list[str] = field(default_factory=list)
    granted: dict[str, str] = field(default_factory=dict)  # consent id -> status last acked
    sessions: dict[str, str] = field(default_factory=dict)  # session id -> client
    keys: dict[str, Any] = field(default_factory=dict)  # client id -> private key

    @property
    def ok(self) -> dict[tuple[str, str], tuple[int, bytes]]:
        return {k: v for k, v in self.answered.items() if 200 <= v[0] < 300}


async def register(
    http: httpx.AsyncClient, base: str, client_id: str, seen: Seen
) -> ApplicationClient:
    key = seen.keys[client_id] = new_client_key()
    response = await http.post(
        f"{base}/oauth/admin/clients",
        headers=ADMIN,
        json={
            "client_id": client_id,
            "client_name": client_id,
            "jwks": {"keys": [key.as_dict(private=False)]},
            "grant_types": ["client_credentials"],
            "scope": SCOPES,
            "purposes": [FRAUD, CONSENTED, CONTRACT],
        },
    )
    assert response.status_code == 201, response.text
    for api in ("sim-swap", "quality-on-demand"):
        plan = await http.put(
            f"{base}/admin/subscriptions/{client_id}/{api}", headers=ADMIN,
            json={"plan": "enterprise"},
        )
        assert plan.status_code == 200, plan.text
    return await ApplicationClient.discover(client_id, key, f"{base}/oauth", http)


async def stream(served: Served, numbers: list[str], seen: Seen) -> None:
    """Several applications calling at once, each call with its own correlator; an admin
    granting and revoking consents and registering clients meanwhile; SIGKILL mid-way."""
    base = served.base
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as http:
        apps = [await register(http, base, f"app-{i}", seen) for i in range(APPLICATIONS)]
        seen.registered += [a.client_id for a in apps]
        tokens = {
            a.client_id: (await a.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
            for a in apps
        }
        qod = (await apps[0].client_credentials(
            f"quality-on-demand:sessions:create {CONTRACT}"))["access_token"]
        done = 0
        killed = asyncio.Event()

        def answered() -> None:
            nonlocal done
            done += 1
            if done == KILL_AFTER and not killed.is_set():
                served.kill()  # blocks the loop for the kill only: calls stay in flight
                killed.set()

        async def calls(app: ApplicationClient, index: int) -> None:
            for n in range(CALLS_PER_APPLICATION):
                key = (app.client_id, f"{app.client_id}-call-{n}")
                body = seen.sent[key] = {
                    "phoneNumber": numbers[(index * 7 + n) % len(numbers)], "maxAge": 240}
                try:
                    response = await http.post(
                        f"{base}/sim-swap/v2/check",
                        json=body,
                        headers={"Authorization": f"Bearer {tokens[app.client_id]}",
                                 "x-correlator": key[1], "Idempotency-Key": key[1]},
                    )
                except httpx.TransportError:
                    seen.cut_off.add(key)
                    continue
                seen.answered[key] = (response.status_code, response.content)
                answered()

        async def administration() -> None:
            n = 0
            while not killed.is_set() and n < 40:
                n += 1
                try:
                    if n % 5 == 0:
                        app = f"late-app-{n}"
                        await register(http, base, app, seen)
                        seen.registered.append(app)
                    elif n % 3 == 0 and seen.granted:
                        consent = next(c for c, s in seen.granted.items() if s == "active")
                        r = await http.delete(f"{base}/oauth/consents/{consent}", headers=ADMIN)
                        assert r.status_code == 200, r.text
                        seen.granted[consent] = r.json()["status"]
                    else:
                        r = await http.post(
                            f"{base}/oauth/consents", headers=ADMIN,
                            json={"phoneNumber": numbers[n % len(numbers)],
                                  "clientId": apps[n % APPLICATIONS].client_id,
                                  "purpose": CONSENTED, "scopes": ["sim-swap:check"]},
                        )
                        assert r.status_code == 201, r.text
                        seen.granted[r.json()["id"]] = r.json()["status"]
                    if n % 4 == 0:
                        r = await http.post(
                            f"{base}/quality-on-demand/v1/sessions",
                            headers={"Authorization": f"Bearer {qod}",
                                     "x-correlator": f"qod-{n}",
                                     "Idempotency-Key": f"qod-{n}"},
                            json={"device": {"phoneNumber": numbers[-1 - n // 4]},
                                  "applicationServer": {"ipv4Address": "198.51.100.1"},
                                  "qosProfile": "QOS_E", "duration": 3600},
                        )
                        assert r.status_code == 201, r.text
                        seen.sessions[r.json()["sessionId"]] = apps[0].client_id
                except httpx.TransportError:
                    return
                await asyncio.sleep(0.01)

        await asyncio.gather(
            *(calls(app, i) for i, app in enumerate(apps)), administration()
        )
        assert killed.is_set(), f"only {done} answers before the stream ended"


def ledger(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return [(c, k) for c, k in conn.execute("SELECT client_id, correlator FROM usage_events")]


def test_sigkill_mid_stream_loses_and_doubles_nothing(tmp_path: Path) -> None:
    numbers = list(SubscriberBase(example_operator(), Database()).numbers(40))
    served = Served(tmp_path, free_port_block(1))
    seen = Seen()
    try:
        served.start()
        asyncio.run(stream(served, numbers, seen))
        served.start()  # the same port, the same database file
        asyncio.run(check_after_restart(served, seen))
    finally:
        served.stop()


async def check_after_restart(served: Served, seen: Seen) -> None:
    base = served.base
    events = ledger(served.database)
    assert len(events) == len(set(events))  # the key makes doubling impossible; say so anyway
    ok = seen.ok
    missing = set(ok) - set(events)
    assert not missing, f"{len(missing)} answered calls lost their event: {sorted(missing)[:5]}"
    unseen = {e for e in events if e not in ok and not e[1].startswith("qod-")}
    assert unseen <= seen.cut_off, unseen - seen.cut_off  # committed, answer lost in the kill
    async with httpx.AsyncClient(timeout=10.0) as http:
        usage = (await http.get(f"{base}/admin/usage", headers=ADMIN)).json()
        assert sum(u["calls"] for u in usage) == len(events)
        for client_id in seen.registered:
            r = await http.get(f"{base}/oauth/admin/clients/{client_id}", headers=ADMIN)
            assert r.status_code == 200, (client_id, r.text)
        stored = {c["id"]: c for c in (await http.get(f"{base}/oauth/consents",
                                                      headers=ADMIN)).json()}
        for consent, status in seen.granted.items():
            assert stored[consent]["status"] == status, (consent, stored.get(consent))
        clients = {
            c: await ApplicationClient.discover(c, seen.keys[c], f"{base}/oauth", http)
            for c in sorted({c for c, _ in ok})
        }
        reader = (await clients["app-0"].client_credentials(
            f"quality-on-demand:sessions:read {CONTRACT}"))["access_token"]
        for session in seen.sessions:
            r = await http.get(f"{base}/quality-on-demand/v1/sessions/{session}",
                               headers={"Authorization": f"Bearer {reader}"})
            assert r.status_code == 200, r.text
        # Replays after the restart (the same request, a new token): the stored answer,
        # flagged, and no second event.
        tokens = {c: (await a.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
                  for c, a in clients.items()}
        sample = sorted(k for k in ok if not k[1].startswith("qod-"))[::7]
        for client_id, correlator in sample:
            r = await http.post(
                f"{base}/sim-swap/v2/check", json=seen.sent[(client_id, correlator)],
                headers={"Authorization": f"Bearer {tokens[client_id]}",
                         "x-correlator": correlator, "Idempotency-Key": correlator},
            )
            assert r.headers.get("idempotent-replayed") == "true", (correlator, r.text)
            assert (r.status_code, r.content) == ok[(client_id, correlator)]
    new = set(ledger(served.database)) - set(events)
    assert len(new) == len(seen.sessions)  # the session reads above, billed; no replay billed
    assert not any("-call-" in correlator for _, correlator in new)
    print(
        f"kill -9 of ogsim serve: {len(seen.answered)} calls answered ({len(ok)} 2xx), "
        f"{len(seen.cut_off)} cut off by the kill; {len(events)} usage events found, "
        f"{len(ok)} of them for the 2xx answers, {len(events) - len(ok) - len(unseen)} for the "
        f"QoD creates, {len(unseen)} for calls cut off after their commit, 0 doubled; "
        f"{len(seen.granted)} consents acknowledged, all found "
        f"({sum(s == 'revoked' for s in seen.granted.values())} revoked); "
        f"{len(seen.registered)} clients and {len(seen.sessions)} QoD sessions found; "
        f"{len(sample)} correlators replayed after the restart, no new event"
    )


def test_sigterm_stops_ogsim_serve_cleanly_with_status_0(tmp_path: Path) -> None:
    served = Served(tmp_path, free_port_block(1))
    try:
        served.start()
    finally:
        code = served.stop()
    assert code == 0, (tmp_path / "serve.log").read_text()[-2000:]
    with sqlite3.connect(served.database) as conn:  # closed cleanly: the WAL checkpointed
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    wal = Path(f"{served.database}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
