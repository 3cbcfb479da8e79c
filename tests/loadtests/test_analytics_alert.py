"""A stolen key on the live federation raises an alert for its application and no other.

The default federation runs as ``ogsim up`` runs it (each party its own process), every
operator configured through the federation file with short usage buckets and the alert
webhook pointing at a small HTTP receiver on 127.0.0.1. Locust runs the location and QoD
applications as usual; half-way through, :class:`~loadtests.locustfile.StolenKeyApp` takes the
location application's key to another loopback network (127.0.2.1) and calls many times
faster than the application itself. The first operator's monitor alerts on that application
(a volume spike, calls from a network never seen, which names the thieves' network);
nothing else alerts anywhere, checked once every monitor has scored the run's last buckets
(its end, a bucket and the grace, and a bucket more); every body the receiver got is signed
with the configured secret."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from federation.config import FederationConfig, default_federation
from federation.launcher import FederationProcesses, descriptor
from federation.ports import free_port_block
from loadtests.federation_view import load_descriptor
from loadtests.locust_run import LOCUSTFILE, run_locust
from operators.analytics.alerts import verify_signature
from operators.config import AnalyticsConfig, DetectorConfig

SECRET = "live-test-webhook-secret"
BUCKET = 4.0
GRACE = 1.0
"""Long enough for a thief's bucket to hold about a hundred calls on a loaded machine:
a count's own noise (its square root) is the score's floor, so a spike from a quiet
baseline scores about the square root of the calls in its bucket."""
STOLEN_AFTER = 9
"""Seconds after the application's first success at the operator: two buckets of history."""
RUN_TIME = "40s"
"""Users start after Locust's set-up (registrations, the subscriber pool), which a loaded
machine stretches to ten seconds or more of the run."""


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1: keeps every body with its headers."""

    server: ThreadingHTTPServer
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def bodies(self) -> list[tuple[bytes, dict[str, str]]]:
        with self.lock:
            return list(self.received)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    kept: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with kept[0].lock:
                kept[0].received.append((body, dict(self.headers.items())))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    kept.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield kept[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def short_buckets(config: FederationConfig, webhook: str) -> FederationConfig:
    """Every operator with 4 s buckets, a short non-seasonal history, the webhook and a fast
    network core."""
    analytics = AnalyticsConfig(
        bucket_seconds=BUCKET,
        flush_seconds=0.25,
        grace_seconds=GRACE,
        webhook_url=webhook,
        webhook_secret=SECRET,
        detectors=DetectorConfig(
            season_buckets=None, recent_buckets=8, min_history=2, min_calls=20
        ),
    )
    # the network core ten times faster than modelled: a thief's calls are not held back by
    # the location server's four servers, so its volume is many times the application's
    operators = tuple(
        o.model_copy(update={"analytics": analytics, "core_time_scale": 0.1})
        for o in config.operators
    )
    return config.model_copy(update={"operators": operators})


@pytest.fixture(scope="module")
def federation(
    receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path]]:
    """The federation with the analytics configured; yields its descriptor and run folder."""
    run_dir = tmp_path_factory.mktemp("analytics-federation")
    config = short_buckets(default_federation(), receiver.url)
    processes = FederationProcesses.prepare(config, free_port_block(6), run_dir)
    try:
        processes.start()
        processes.wait_ready(90)
        application = processes.register_demo_application()
        path = run_dir / "descriptor.json"
        path.write_text(json.dumps(descriptor(processes, application), indent=2))
        yield path, run_dir
    finally:
        processes.stop()


def alerts_in(database: Path) -> list[dict[str, object]]:
    with sqlite3.connect(database) as conn:
        conn.row_factory = sqlite3.Row
        try:
            rows = conn.execute("SELECT * FROM analytics_alerts").fetchall()
        except sqlite3.OperationalError:  # the table is made at the operator's start
            return []
    return [dict(row) for row in rows]


def test_a_stolen_key_alerts_for_its_application_alone(
    federation: tuple[Path, Path], receiver: Receiver, tmp_path: Path
) -> None:
    described, run_dir = federation
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OGSIM_STOLEN_KEY_USERS", "3")
        patch.setenv("OGSIM_STOLEN_KEY_AFTER", str(STOLEN_AFTER))
        patch.setenv("OGSIM_UNSERVED_SHARE", "0")
        run = run_locust(
            locustfile=LOCUSTFILE,
            descriptor=described,
            results=tmp_path,
            users=9,
            spawn_rate=9.0,
            run_time=RUN_TIME,
            stop_timeout=5,
            user_classes=["LocationApp", "QodApp", "StolenKeyApp"],
        )
    assert run.returncode in (0, 1), (tmp_path / "locust.log").read_text()[-3000:]
    calls = json.loads(next(tmp_path.glob("calls-*.json")).read_text())["calls"]
    # The application's own users call for the whole run, spread over three operators and
    # two APIs (verification a quarter of its calls at the victim); the thieves for half of
    # it, at one operator and API. Twice as many calls in all is already more than ten times
    # the application's rate there. (A fast machine gave 2.97 times: 1,824 against 615.)
    assert calls.get("StolenKeyApp", 0) > 2 * calls.get("LocationApp", 0) > 0, calls

    run_ended = time.time()  # the operators' clocks are the epoch's

    view = load_descriptor(described)
    victim_operator = view.operators[0].id
    databases = {o.id: run_dir / f"{o.id}.sqlite3" for o in view.operators}
    # Every monitor has scored its last busy bucket once the bucket in progress at the run's
    # end has ended and its grace passed; one bucket more covers a tick a loaded machine
    # delays. Only then can "nothing else alerted" be said.
    settled = run_ended + 2 * BUCKET + GRACE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        time.time() < settled or not alerts_in(databases[victim_operator])
    ):
        time.sleep(0.5)
    assert time.time() >= settled
    raised = alerts_in(databases[victim_operator])
    assert raised, "the stolen key raised no alert"
    victim = {str(a["client_id"]) for a in raised}
    assert len(victim) == 1, raised
    assert {a["api"] for a in raised} == {"location-verification"}, raised
    kinds = {str(a["kind"]) for a in raised}
    assert kinds & {"volume_spike", "new_source"}, raised
    # new_source is scored once, in the first bucket a network appears in: when the thieves
    # start late in a bucket it may hold too few of their calls to score, so it is not
    # required; when it is raised it names the thieves' network
    for alert in raised:
        if alert["kind"] == "new_source":
            assert "127.0.2.0/24" in str(alert["detail"]), alert
    for operator, database in databases.items():
        if operator != victim_operator:
            assert alerts_in(database) == [], f"{operator} alerted"
    print(f"alerts: {sorted(kinds)} ({len(raised)})")

    while time.monotonic() < deadline and len(receiver.bodies()) < len(raised):
        time.sleep(0.2)
    bodies = receiver.bodies()
    assert len(bodies) == len(raised), "each alert posted once"
    for body, headers in bodies:
        assert verify_signature(body, headers, SECRET.encode(), now=time.time())
        assert not verify_signature(body, headers, b"not-the-secret", now=time.time())
        assert json.loads(body)["client_id"] in victim
