"""Locust users that behave like real CAMARA applications against the live federation.

Start a federation (``ogsim up --descriptor ogsim-federation.json``), then run Locust as
usual: ``locust -f loadtests/locustfile.py`` (web UI), with ``--headless``, or distributed
(``--master`` / ``--worker``). The federation is found through its descriptor:
``--ogsim-descriptor PATH`` or ``OGSIM_DESCRIPTOR`` (default ``ogsim-federation.json``).

Users (``FastHttpUser``), each an application with its own credentials:

* :class:`AntiFraudApp` — a bank's fraud engine: CIBA consent for the subscriber (token
  cached until it expires), then SIM Swap check and retrieve-date at the operator.
  Number Verification is left out: it needs network-based authentication (the request
  must come from the subscriber's device address), which loopback cannot give.
* :class:`LocationApp` — location verification (in and far from the device) and retrieval.
* :class:`QodApp` — Quality on Demand sessions: create, read, extend, delete, read again.
* :class:`AggregatorApp` — one set of credentials at the aggregator for subscribers of
  every operator (SIM swap, reachability, roaming, location verification).
* :class:`GreedyApp` — a misbehaving application on the free plan that ignores
  ``Retry-After`` (exactly one such user).
* :class:`SaturatingApp` — calibration's load, off unless ``OGSIM_SATURATING_USERS`` names a
  number of users: one cheap call (device reachability, an HLR lookup) with a cached
  two-legged token, at ``OGSIM_SATURATING_RATE`` calls per second per user (Poisson
  arrivals), or as fast as answers come back when that is 0, spread evenly over the
  operators (or all at ``OGSIM_SATURATING_OPERATOR``).
* :class:`StolenKeyApp` — credential theft, off unless ``OGSIM_STOLEN_KEY_USERS`` names a
  number of users: the location application's own key used, ``OGSIM_STOLEN_KEY_AFTER``
  seconds after the application's first success there, from another network (connections
  bound to ``OGSIM_STOLEN_KEY_SOURCE``, a loopback address in another /24) at high volume.

Every answer is checked: the CAMARA schema of its status, the echoed ``x-correlator`` and the
data against the subscriber's records (read from the operator's admin API before the run).
Throttling (request type ``429``) and protective refusals (``503 protective``) are reported
apart and are not failures; a wrong answer is. A small share of calls names numbers nobody
serves, on purpose, and expects ``404 IDENTIFIER_NOT_FOUND`` (names end in ``(unserved)``);
a CIBA request for one is started like any other and must be denied at its first poll.

Response times are kept to the millisecond below 10 s, not rounded to Locust's two significant
digits, so the reports' percentiles are too (:mod:`loadtests.response_times`).

Every successful billable call is counted exactly, per operator, client and API, and written
to ``<results>/calls-<node>.json`` when the users stop; the master (or local runner) writes
``<results>/run.json`` with the usage snapshot taken at the start. ``ogsim reconcile``
compares them with each operator's metering and the aggregator's settlement.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import gevent
import httpx
from faker import Faker
from gevent.lock import BoundedSemaphore
from gevent.pool import Group
from joserfc import jwt
from joserfc.jwk import ECKey
from locust import FastHttpUser, constant_throughput, events, task
from locust.clients import HttpSession
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from urllib3 import PoolManager

from loadtests import answers
from loadtests.federation_view import (
    ADMIN_SECRET,
    Descriptor,
    SubscriberPool,
    SubscriberTruth,
    UnservedNumber,
    build_pool,
    load_descriptor,
)
from loadtests.operations import path_of, scopes_of
from loadtests.outcomes import REJECTION_TYPES, Kind, Outcome, classify, parse_body
from loadtests.provisioning import (
    FRAUD,
    OPTIONAL_ROLES,
    ROLES,
    SERVICE,
    Credentials,
    register,
    subscribe_aggregator,
    usage_snapshot,
)
from loadtests.reconciliation import RUN_FILE
from loadtests.response_times import use_whole_milliseconds
from loadtests.shapes import shape_from_env
from loadtests.tally import Key, Tally
from operators.camara import operation_named
from operators.integrator import Coverage

log = logging.getLogger("ogsim.loadtest")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CIBA_GRANT = "urn:openid:params:grant-type:ciba"
TOKEN_MARGIN = 30.0
"""Seconds before expiry a cached token is renewed."""
DATA_CENTRE_RETRIES = 3
ANTIFRAUD_SCOPE = f"{scopes_of('checkSimSwap', 'retrieveSimSwapDate')} {FRAUD}"
AGGREGATOR_OPERATIONS = (
    "checkSimSwap",
    "getReachabilityStatus",
    "getRoamingStatus",
    "verifyLocation",
)
"""What the aggregator application calls (every one the hub routes by the body's device)."""
AGGREGATOR_SCOPE = f"{scopes_of(*AGGREGATOR_OPERATIONS)} {FRAUD}"
REACHABILITY_SCOPE = f"device-reachability-status:read {SERVICE}"

use_whole_milliseconds()  # percentiles to the millisecond, not Locust's 10 ms steps

_selected_shape = shape_from_env()
if _selected_shape is not None:
    SelectedShape = _selected_shape


# -- command-line options (also in the web UI) -------------------------------------------


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--ogsim-descriptor",
        env_var="OGSIM_DESCRIPTOR",
        default="ogsim-federation.json",
        include_in_web_ui=True,
        help="descriptor JSON written by `ogsim up --descriptor`",
    )
    parser.add_argument(
        "--ogsim-results",
        env_var="OGSIM_RESULTS",
        default="ogsim-loadtest",
        include_in_web_ui=True,
        help="folder for run.json and the per-process call counters",
    )
    parser.add_argument(
        "--ogsim-seed",
        env_var="OGSIM_SEED",
        type=int,
        default=2024,
        include_in_web_ui=True,
        help="seed of the Faker choices of subscribers",
    )
    parser.add_argument(
        "--ogsim-unserved-share",
        env_var="OGSIM_UNSERVED_SHARE",
        type=float,
        default=0.03,
        include_in_web_ui=True,
        help="share of calls naming a number nobody serves",
    )
    parser.add_argument(
        "--ogsim-fail-data-centre",
        env_var="OGSIM_FAIL_DATA_CENTRE",
        default="",
        include_in_web_ui=True,
        help="OPERATOR/DC@SECONDS: take that data centre down through the admin API mid-run",
    )
    parser.add_argument(
        "--ogsim-admin-secret",
        env_var="OGSIM_ADMIN_SECRET",
        default=ADMIN_SECRET,
        include_in_web_ui=False,
        help="admin credential of the parties",
    )
    parser.add_argument(
        "--ogsim-run-id",
        env_var="OGSIM_RUN_ID",
        default="",
        include_in_web_ui=False,
        help="run id (default: a fresh one per test, chosen by the master)",
    )
    parser.set_defaults(stop_timeout=20)


# -- one test's state in one Locust process -------------------------------------------------


TokenKey = tuple[str, str, str, str]
"""(issuer, client id, subject or "", scope): what a cached token is good for."""


@dataclass
class Endpoints:
    token: str
    backchannel: str


@dataclass
class LoadRun:
    """What the users of one process share during one test."""

    descriptor: Descriptor
    pool: SubscriberPool
    credentials: dict[tuple[str, str], Credentials]
    endpoints: dict[str, Endpoints]
    tally: Tally
    schemas: answers.SchemaBook
    seed: int
    unserved_share: float
    worker_index: int
    tokens: dict[TokenKey, tuple[str, float]] = field(default_factory=dict)
    locks: dict[TokenKey, BoundedSemaphore] = field(default_factory=dict)
    keys: dict[str, ECKey] = field(default_factory=dict)
    qod_busy: set[str] = field(default_factory=set)
    in_flight: Group = field(default_factory=Group)
    users_started: int = 0

    def key_of(self, jwk: dict[str, Any]) -> ECKey:
        """The private key of a registration (the same client id has one per operator)."""
        kid = str(jwk["kid"])
        if kid not in self.keys:
            self.keys[kid] = ECKey.import_key(jwk)
        return self.keys[kid]

    def lock(self, key: TokenKey) -> BoundedSemaphore:
        if key not in self.locks:
            self.locks[key] = BoundedSemaphore(1)
        return self.locks[key]


def _run_of(environment: Environment) -> LoadRun:
    run = getattr(environment, "ogsim_run", None)
    if run is None:
        raise RuntimeError("the ogsim load test did not start (see the log for why)")
    return run


def _parsed(environment: Environment) -> Any:
    """Locust's parsed command line, with the ``--ogsim-*`` options added below."""
    if environment.parsed_options is None:
        raise RuntimeError("the ogsim load test runs from the locust command line")
    return environment.parsed_options


def _results(environment: Environment) -> Path:
    return Path(_parsed(environment).ogsim_results)


@events.test_start.add_listener
def _start(environment: Environment, **_: Any) -> None:
    options = _parsed(environment)
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        options.ogsim_run_id = options.ogsim_run_id or secrets.token_hex(4)
    descriptor = load_descriptor(options.ogsim_descriptor)
    secret = options.ogsim_admin_secret
    with httpx.Client(timeout=15.0) as http:
        if not isinstance(runner, WorkerRunner):
            _write_run_file(environment, descriptor, http)
        if isinstance(runner, MasterRunner):
            _schedule_data_centre_failure(environment, descriptor)
            return
        tally = Tally(options.ogsim_run_id)
        subscribe_aggregator(descriptor, http, secret)
        credentials = register(
            descriptor,
            http,
            run_id=options.ogsim_run_id,
            node=tally.node[-6:],
            roles=_roles(environment),
            admin_secret=secret,
        )
        pool = build_pool(descriptor, http, seed=options.ogsim_seed, admin_secret=secret)
        endpoints = {}
        issuers = {o.issuer for o in descriptor.operators}
        if descriptor.aggregator is not None:
            issuers.add(descriptor.aggregator.issuer)
        for issuer in issuers:
            metadata = http.get(issuer + "/.well-known/openid-configuration").json()
            endpoints[issuer] = Endpoints(
                metadata["token_endpoint"], metadata["backchannel_authentication_endpoint"]
            )
    worker_index = getattr(runner, "worker_index", 0) or 0
    environment.ogsim_run = LoadRun(  # type: ignore[attr-defined]
        descriptor,
        pool,
        credentials,
        endpoints,
        tally,
        answers.SchemaBook(),
        options.ogsim_seed,
        options.ogsim_unserved_share,
        worker_index,
    )
    if not isinstance(runner, WorkerRunner):
        _schedule_data_centre_failure(environment, descriptor)


def _roles(environment: Environment) -> list[str]:
    """The applications to register: every role but the optional ones, which only a run with
    their users needs; a run of saturating users alone needs theirs only."""
    chosen = {user.__name__ for user in environment.user_classes}
    if SATURATING_USERS and chosen == {"SaturatingApp"}:
        return ["saturating"]
    return [r for r in ROLES if r not in OPTIONAL_ROLES or (r == "saturating" and SATURATING_USERS)]


def _write_run_file(environment: Environment, descriptor: Descriptor, http: httpx.Client) -> None:
    options = _parsed(environment)
    results = _results(environment)
    results.mkdir(parents=True, exist_ok=True)
    application = descriptor.application.client_id if descriptor.application else None
    run = {
        "runId": options.ogsim_run_id,
        "startedAt": time.time(),
        "descriptor": str(descriptor.path.resolve()),
        "aggregatorApplication": application,
        "seed": options.ogsim_seed,
        "baseline": usage_snapshot(descriptor, http, options.ogsim_admin_secret),
        "events": [],
    }
    (results / RUN_FILE).write_text(json.dumps(run, indent=1))


def _record_event(environment: Environment, event: dict[str, Any]) -> None:
    path = _results(environment) / RUN_FILE
    run = json.loads(path.read_text())
    run["events"].append(event)
    path.write_text(json.dumps(run, indent=1))


def _schedule_data_centre_failure(environment: Environment, descriptor: Descriptor) -> None:
    """``--ogsim-fail-data-centre telco-es/madrid@10``: down after 10 s, via the admin API."""
    spec = _parsed(environment).ogsim_fail_data_centre
    if not spec:
        return
    target, _, after = spec.partition("@")
    operator_id, _, centre = target.partition("/")
    operator = descriptor.operator(operator_id)
    if centre not in operator.data_centres:
        raise ValueError(f"{operator_id} has no data centre {centre!r}: {operator.data_centres}")
    secret = _parsed(environment).ogsim_admin_secret

    def fail() -> None:
        response = httpx.post(
            f"{operator.data_centre_admin}/{centre}/fail",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=10.0,
        )
        log.warning("data centre %s/%s taken down: %s", operator_id, centre, response.status_code)
        _record_event(
            environment,
            {
                "at": time.time(),
                "event": "data-centre-down",
                "operator": operator_id,
                "dataCentre": centre,
                "status": response.status_code,
            },
        )

    gevent.spawn_later(float(after or 0), fail)


@events.test_stop.add_listener
def _stop(environment: Environment, **_: Any) -> None:
    run = getattr(environment, "ogsim_run", None)
    if run is None or isinstance(environment.runner, MasterRunner):
        return
    run.in_flight.join(timeout=30)
    path = run.tally.write(_results(environment))
    log.info("call counters written to %s", path)


def summary(environment: Environment) -> dict[str, Any]:
    """Served calls (everything but throttling and protective refusals) and the rejections."""
    from locust.stats import StatsEntry

    stats = environment.stats
    served = StatsEntry(stats, "served", "", use_response_times_cache=False)
    rejected: dict[str, int] = {kind: 0 for kind in REJECTION_TYPES}
    failures: dict[str, int] = {}
    for (name, method), entry in stats.entries.items():
        if method in REJECTION_TYPES:
            rejected[method] += entry.num_requests
            continue
        served.extend(entry)
        if entry.num_failures:
            failures[f"{method} {name}"] = entry.num_failures
    requests = served.num_requests
    return {
        "served": {
            "requests": requests,
            "failures": served.num_failures,
            "failureRatio": served.num_failures / requests if requests else 0.0,
            "p50": served.get_response_time_percentile(0.5) if requests else 0.0,
            "p95": served.get_response_time_percentile(0.95) if requests else 0.0,
            "p99": served.get_response_time_percentile(0.99) if requests else 0.0,
            "rps": served.total_rps,
        },
        "throttled": rejected["429"],
        "protective": rejected["503 protective"],
        "failuresByRequest": failures,
        "requestsByName": {
            f"{method} {name}": e.num_requests for (name, method), e in stats.entries.items()
        },
    }


@events.quitting.add_listener
def _quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    results = _results(environment)
    results.mkdir(parents=True, exist_ok=True)
    (results / "summary.json").write_text(json.dumps(summary(environment), indent=1))


# -- the applications ------------------------------------------------------------------------


THINK_SCALE = float(os.environ.get("OGSIM_THINK_SCALE", "1") or 1)
"""Multiplies every user's think time (the capacity benchmark shortens it)."""


class CamaraApp(FastHttpUser):
    """A CAMARA application: OAuth with private_key_jwt, checked calls, exact counting."""

    abstract = True
    think: tuple[float, float] = (0.5, 1.5)

    def wait_time(self) -> float:
        low, high = self.think
        return self.fake.random.uniform(low, high) * THINK_SCALE

    host = "http://127.0.0.1"
    network_timeout = 30.0
    connection_timeout = 10.0
    honours_retry_after = True

    def on_start(self) -> None:
        self.load_run = _run_of(self.environment)
        self.load_run.users_started += 1
        self.fake = Faker()
        self.fake.seed_instance(
            f"{self.load_run.seed}:{self.load_run.worker_index}:{type(self).__name__}:"
            f"{self.load_run.users_started}"
        )

    # -- choices ----------------------------------------------------------------------------

    def unserved(self) -> bool:
        return self.fake.random.random() < self.load_run.unserved_share

    def pick_operator(self) -> str:
        return str(self.fake.random_element([o.id for o in self.load_run.descriptor.operators]))

    def pick(self, subscribers: list[SubscriberTruth]) -> SubscriberTruth:
        return subscribers[self.fake.random_int(0, len(subscribers) - 1)]

    def pick_unserved(self, operator: str | None = None) -> UnservedNumber:
        unserved = self.load_run.pool.unserved
        choices = [u for u in unserved if operator is None or u.range_of == operator]
        return choices[self.fake.random_int(0, len(choices) - 1)]

    # -- OAuth ------------------------------------------------------------------------------

    def _assertion(self, client_id: str, jwk: dict[str, Any], audience: str, **extra: Any) -> str:
        key = self.load_run.key_of(jwk)
        now = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
            **extra,
        }
        return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)

    def _oauth(
        self,
        url: str,
        client_id: str,
        jwk: dict[str, Any],
        form: dict[str, str],
        name: str,
        expected_errors: tuple[str, ...] = (),
        refusal_only: bool = False,
    ) -> tuple[dict[str, Any] | None, str]:
        """POST a form to an OAuth endpoint; (body, "") or (None, error code).

        A 503 (the data centre that took it is down) is retried with a fresh assertion.
        ``refusal_only``: only an expected error is right (a 200 is a failure).
        """
        for attempt in range(DATA_CENTRE_RETRIES + 1):
            signed = {
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self._assertion(client_id, jwk, url),
                **form,
            }
            with self.client.post(
                url,
                data=urlencode(signed),
                name=name,
                catch_response=True,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ) as response:
                body = parse_body(response.content)
                if response.status_code == 200 and isinstance(body, dict):
                    if refusal_only:
                        response.failure(f"200 where {' or '.join(expected_errors)} was due")
                        return None, "unexpected success"
                    response.success()
                    return body, ""
                error = str(body.get("error", "")) if isinstance(body, dict) else ""
                if error in expected_errors:
                    response.request_meta["name"] = f"{name} ({error})"
                    response.success()
                    return None, error
                outcome = classify(response.status_code, body)
                if outcome.kind is Kind.DATA_CENTRE_DOWN:
                    response.request_meta["request_type"] = "503 data centre down"
                response.failure(f"{response.status_code} {error or response.text[:200]}")
            if outcome.kind is not Kind.DATA_CENTRE_DOWN or attempt == DATA_CENTRE_RETRIES:
                return None, error or f"http {response.status_code}"
            gevent.sleep(0.3 * (attempt + 1))
        return None, "unreachable"

    def reachability_call(self, operator: str, role: str, name: str) -> None:
        """One checked device reachability call with the ``role`` application's cached
        two-legged token at ``operator`` (the greedy and saturating users' only call)."""
        credentials = self.load_run.credentials[(role, operator)]
        token = self.two_legged_token(
            credentials.client_id, credentials.private_jwk, credentials.issuer, REACHABILITY_SCOPE
        )
        subscriber = self.pick(self.load_run.pool.usable(operator))
        self.camara(
            key=(operator, credentials.client_id, "device-reachability-status"),
            url=_operator_url(self.load_run, operator, path_of("getReachabilityStatus")),
            name=name,
            token=token,
            operation="getReachabilityStatus",
            body={"device": {"phoneNumber": subscriber.number}},
            check=answers.reachability(subscriber),
        )

    def two_legged_token(self, client_id: str, jwk: dict[str, Any], issuer: str, scope: str) -> str:
        """Client credentials, cached (shared by the users of this process) until expiry."""
        return self._cached(
            (issuer, client_id, "", scope), lambda: self._fetch_cc(client_id, jwk, issuer, scope)
        )

    def _fetch_cc(
        self, client_id: str, jwk: dict[str, Any], issuer: str, scope: str
    ) -> tuple[str, float] | None:
        body, _ = self._oauth(
            self.load_run.endpoints[issuer].token,
            client_id,
            jwk,
            {"grant_type": "client_credentials", "scope": scope},
            "oauth token (client_credentials)",
        )
        if body is None:
            return None
        return str(body["access_token"]), time.time() + float(body.get("expires_in", 300))

    def ciba_token(self, credentials: Credentials, number: str, scope: str) -> str | None:
        """CIBA consent for ``number`` (poll mode), cached until the token expires."""
        return self._cached_or_none(
            (credentials.issuer, credentials.client_id, number, scope),
            lambda: self._fetch_ciba(credentials, number, scope),
        )

    def _unserved_ciba(self, credentials: Credentials, number: str) -> None:
        """CIBA for a number the operator does not serve: started like any other (the answer
        must not tell who is a subscriber), then denied at the first poll."""
        endpoints = self.load_run.endpoints[credentials.issuer]
        started, _ = self._oauth(
            endpoints.backchannel,
            credentials.client_id,
            credentials.private_jwk,
            {"login_hint": f"tel:{number}", "scope": ANTIFRAUD_SCOPE},
            "oauth ciba start (unserved)",
        )
        if started is None:
            return
        gevent.sleep(float(started.get("interval", 2)))
        self._oauth(
            endpoints.token,
            credentials.client_id,
            credentials.private_jwk,
            {"grant_type": CIBA_GRANT, "auth_req_id": str(started["auth_req_id"])},
            "oauth ciba poll (unserved)",
            expected_errors=("access_denied",),
            refusal_only=True,
        )

    def _fetch_ciba(
        self, credentials: Credentials, number: str, scope: str
    ) -> tuple[str, float] | None:
        endpoints = self.load_run.endpoints[credentials.issuer]
        started, _ = self._oauth(
            endpoints.backchannel,
            credentials.client_id,
            credentials.private_jwk,
            {"login_hint": f"tel:{number}", "scope": scope, "binding_message": "ogsim-lt"},
            "oauth ciba start",
            expected_errors=("access_denied",),
        )
        if started is None:
            return None
        interval = float(started.get("interval", 2))
        deadline = time.time() + float(started.get("expires_in", 120))
        while time.time() < deadline:
            gevent.sleep(interval)
            body, error = self._oauth(
                endpoints.token,
                credentials.client_id,
                credentials.private_jwk,
                {"grant_type": CIBA_GRANT, "auth_req_id": str(started["auth_req_id"])},
                "oauth ciba poll",
                expected_errors=("authorization_pending", "slow_down", "access_denied"),
            )
            if body is not None:
                return str(body["access_token"]), time.time() + float(body.get("expires_in", 300))
            if error == "slow_down":
                interval += 5
            elif error != "authorization_pending":
                return None
        return None

    def _cached(self, key: TokenKey, fetch: Callable[[], tuple[str, float] | None]) -> str:
        token = self._cached_or_none(key, fetch)
        if token is None:
            raise _TokenRefusedError(key)
        return token

    def _cached_or_none(
        self, key: TokenKey, fetch: Callable[[], tuple[str, float] | None]
    ) -> str | None:
        cached = self.load_run.tokens.get(key)
        if cached is not None and cached[1] - TOKEN_MARGIN > time.time():
            return cached[0]
        with self.load_run.lock(key):
            cached = self.load_run.tokens.get(key)
            if cached is not None and cached[1] - TOKEN_MARGIN > time.time():
                return cached[0]
            fetched = fetch()
            if fetched is None:
                return None
            self.load_run.tokens[key] = fetched
            return fetched[0]

    # -- CAMARA calls -----------------------------------------------------------------------

    def camara(
        self,
        *,
        key: Key,
        url: str,
        name: str,
        token: str,
        operation: str,
        method: str = "POST",
        body: dict[str, Any] | None = None,
        check: answers.Check = answers.nothing,
        unserved: bool = False,
        allowed: tuple[tuple[int, str], ...] = (),
        through_aggregator: bool = False,
        retry_transport: bool = True,
    ) -> Outcome | None:
        """One call as a careful client makes it: the same correlator and idempotency key
        across its retries (the key is what makes a retry of a call the server did answer
        come back replayed instead of billed twice)."""
        tally = self.load_run.tally
        tally.calls[type(self).__name__] += 1
        correlator = tally.correlator()
        headers = {
            "Authorization": f"Bearer {token}",
            "x-correlator": correlator,
            "Idempotency-Key": correlator,
        }
        label = f"{name} (unserved)" if unserved else name
        outcome: Outcome | None = None
        for attempt in range(DATA_CENTRE_RETRIES + 1):
            # The request runs in its own greenlet, so that a user killed at the end of the
            # run (Locust kills users it stops) never abandons a call the server metered.
            request = self.load_run.in_flight.spawn(
                self._attempt,
                method,
                url,
                label,
                headers,
                body,
                key,
                correlator,
                operation,
                check,
                unserved,
                allowed,
                through_aggregator,
            )
            outcome = request.get()
            last = attempt == DATA_CENTRE_RETRIES
            if outcome is None and retry_transport and not last:
                gevent.sleep(0.2 * (attempt + 1))
                continue
            if outcome is not None and outcome.kind is Kind.DATA_CENTRE_DOWN and not last:
                gevent.sleep(0.3 * (attempt + 1))
                continue
            break
        if outcome is None:
            tally.unresolved_call(key, correlator)
        elif outcome.kind is Kind.THROTTLED and self.honours_retry_after:
            gevent.sleep(min(outcome.retry_after or 1.0, 5.0))
        return outcome

    def _attempt(
        self,
        method: str,
        url: str,
        label: str,
        headers: dict[str, str],
        body: dict[str, Any] | None,
        key: Key,
        correlator: str,
        operation: str,
        check: answers.Check,
        unserved: bool,
        allowed: tuple[tuple[int, str], ...],
        through_aggregator: bool,
    ) -> Outcome | None:
        with self.client.request(
            method, url, json=body, headers=headers, name=label, catch_response=True
        ) as response:
            status = response.status_code
            if not status:
                response.failure(f"no answer: {response.error}")
                return None
            payload = parse_body(response.content)
            outcome = classify(status, payload, response.headers.get("Retry-After"))
            if outcome.billable:
                self.load_run.tally.count(key, correlator, settled=through_aggregator)
            wrong: list[str] = []
            if response.headers.get("x-correlator") != correlator:
                wrong.append(f"x-correlator {response.headers.get('x-correlator')!r} not echoed")
            if outcome.kind is Kind.THROTTLED:
                response.request_meta["request_type"] = "429"
            elif outcome.kind is Kind.PROTECTIVE:
                response.request_meta["request_type"] = "503 protective"
            elif outcome.kind is Kind.DATA_CENTRE_DOWN:
                response.request_meta["request_type"] = "503 data centre down"
                wrong.append(outcome.message)
            elif outcome.kind is Kind.SUCCESS:
                if unserved:
                    wrong.append(f"a number nobody serves was answered {status}")
                else:
                    wrong += self.load_run.schemas.errors(key[2], operation, status, payload)
                    wrong += check(payload)
            elif unserved and status == 404 and outcome.code == "IDENTIFIER_NOT_FOUND":
                pass
            elif (status, outcome.code) in allowed:
                response.request_meta["name"] = f"{label} ({status} {outcome.code})"
            else:
                wrong.append(f"{status} {outcome.code}: {outcome.message or response.text}")
            if not wrong:
                errors = self.load_run.schemas.errors(key[2], operation, status, payload)
                if not outcome.billable and status not in (429, 503) and errors:
                    wrong += errors
            if wrong:
                response.failure("; ".join(wrong)[:500])
            else:
                response.success()
            return outcome


class _TokenRefusedError(Exception):
    """The authorization server refused a token (already reported as a failure)."""


def _operator_url(run: LoadRun, operator: str, path: str) -> str:
    return run.descriptor.operator(operator).api_root + path


class AntiFraudApp(CamaraApp):
    """A bank's fraud engine: CIBA consent per subscriber, then SIM Swap at the operator."""

    weight = 3

    @task
    def check_subscriber(self) -> None:
        operator = self.pick_operator()
        credentials = self.load_run.credentials[("antifraud", operator)]
        if self.unserved():
            self._unserved_ciba(credentials, self.pick_unserved(operator).number)
            return
        subscriber = self.pick(self.load_run.pool.for_consent(operator))
        token = self.ciba_token(credentials, subscriber.number, ANTIFRAUD_SCOPE)
        if token is None:
            return
        key = (operator, credentials.client_id, "sim-swap")
        max_age = int(self.fake.random_element([24, 240, 2400]))
        now = datetime.now(UTC)
        self.camara(
            key=key,
            url=_operator_url(self.load_run, operator, path_of("checkSimSwap")),
            name="sim-swap check",
            token=token,
            operation="checkSimSwap",
            body={"maxAge": max_age},
            check=answers.sim_swap_check(subscriber, max_age, now),
        )
        self.camara(
            key=key,
            url=_operator_url(self.load_run, operator, path_of("retrieveSimSwapDate")),
            name="sim-swap retrieve-date",
            token=token,
            operation="retrieveSimSwapDate",
            body={},
            check=answers.sim_swap_date(subscriber),
        )


AREA_NOT_COVERED = (422, "LOCATION_VERIFICATION.AREA_NOT_COVERED")
_coverage_of = functools.cache(Coverage.of_country)
"""A country's coverage, built once per process (it scans the gazetteer), not per call."""


def _uncovered(
    run: LoadRun, subscriber: SubscriberTruth, area: answers.Area
) -> tuple[tuple[int, str], ...]:
    """Location Verification's answer for an area the serving network has no cell in (the
    operator's own coverage model): a device roaming abroad, or placed there before its
    roaming ended, is asked about an area its home network cannot verify."""
    country = next(o.country for o in run.descriptor.operators if o.id == subscriber.operator)
    coverage = _coverage_of(country)
    if coverage is None or coverage.reaches(area.latitude, area.longitude, area.radius):
        return ()
    return (AREA_NOT_COVERED,)


class LocationApp(CamaraApp):
    """Location verification and retrieval, two-legged, for the operator's subscribers."""

    weight = 3
    SCOPE = f"location-verification:verify location-retrieval:read {SERVICE}"

    def _setup(self) -> tuple[str, Credentials, str]:
        operator = self.pick_operator()
        credentials = self.load_run.credentials[("location", operator)]
        token = self.two_legged_token(
            credentials.client_id, credentials.private_jwk, credentials.issuer, self.SCOPE
        )
        return operator, credentials, token

    @task(3)
    def verify(self) -> None:
        operator, credentials, token = self._setup()
        key = (operator, credentials.client_id, "location-verification")
        url = _operator_url(self.load_run, operator, path_of("verifyLocation"))
        if self.unserved():
            number = self.pick_unserved(operator).number
            area = answers.Area(40.4, -3.7, 2000)
            self.camara(
                key=key,
                url=url,
                name="location verify",
                token=token,
                operation="verifyLocation",
                unserved=True,
                body={"device": {"phoneNumber": number}, "area": area.wire()},
            )
            return
        subscriber = self.pick(self.load_run.pool.usable(operator))
        inside = self.fake.boolean(chance_of_getting_true=70)
        area = answers.area_around(subscriber) if inside else answers.area_far_from(subscriber)
        self.camara(
            key=key,
            url=url,
            name="location verify",
            token=token,
            operation="verifyLocation",
            body={"device": {"phoneNumber": subscriber.number}, "area": area.wire()},
            check=answers.location_verification(subscriber, area),
            allowed=_uncovered(self.load_run, subscriber, area),
        )

    @task(2)
    def retrieve(self) -> None:
        operator, credentials, token = self._setup()
        subscriber = self.pick(self.load_run.pool.usable(operator))
        self.camara(
            key=(operator, credentials.client_id, "location-retrieval"),
            url=_operator_url(self.load_run, operator, path_of("retrieveLocation")),
            name="location retrieve",
            token=token,
            operation="retrieveLocation",
            body={"device": {"phoneNumber": subscriber.number}},
            check=answers.location_retrieval(subscriber),
        )


class QodApp(CamaraApp):
    """A video service boosting a device: create, read, extend, delete a QoD session."""

    weight = 2
    think = (1.0, 3.0)
    SCOPE = (
        "quality-on-demand:sessions:create quality-on-demand:sessions:read "
        f"quality-on-demand:sessions:update quality-on-demand:sessions:delete {SERVICE}"
    )
    PROFILES = ("QOS_E", "QOS_S", "QOS_M", "QOS_L")

    @task
    def session_lifecycle(self) -> None:
        operator = self.pick_operator()
        credentials = self.load_run.credentials[("qod", operator)]
        token = self.two_legged_token(
            credentials.client_id, credentials.private_jwk, credentials.issuer, self.SCOPE
        )
        key = (operator, credentials.client_id, "quality-on-demand")
        base = _operator_url(self.load_run, operator, path_of("createSession"))
        devices = [
            s
            for s in self.load_run.pool.usable(operator)
            if "DATA" in s.connectivity and s.number not in self.load_run.qod_busy
        ]
        if not devices:
            return
        subscriber = self.pick(devices)
        number = subscriber.number
        profile = str(self.fake.random_element(self.PROFILES))
        duration = self.fake.random_int(60, 600)
        self.load_run.qod_busy.add(number)
        try:
            created = self.camara(
                key=key,
                url=base,
                name="qod create",
                token=token,
                operation="createSession",
                body={
                    "device": {"phoneNumber": number},
                    "applicationServer": {"ipv4Address": "198.51.100.10"},
                    "qosProfile": profile,
                    "duration": duration,
                },
                check=answers.qod_session(number, profile, duration),
                allowed=((409, "CONFLICT"),),
                retry_transport=False,
            )
            if created is None or created.status != 201 or not isinstance(created.body, dict):
                return
            session = str(created.body.get("sessionId"))
            url = f"{base}/{session}"
            self.camara(
                key=key,
                url=url,
                method="GET",
                name="qod read",
                token=token,
                operation="getSession",
                check=answers.qod_session(number, profile, duration, session),
            )
            extended = duration + 60
            self.camara(
                key=key,
                url=f"{url}/extend",
                name="qod extend",
                token=token,
                operation="extendQosSessionDuration",
                body={"requestedAdditionalDuration": 60},
                check=answers.qod_session(number, profile, extended, session),
            )
            self.camara(
                key=key,
                url=url,
                method="GET",
                name="qod read after extend",
                token=token,
                operation="getSession",
                check=answers.qod_session(number, profile, extended, session),
            )
            self.camara(
                key=key,
                url=url,
                method="DELETE",
                name="qod delete",
                token=token,
                operation="deleteSession",
            )
            self.camara(
                key=key,
                url=url,
                method="GET",
                name="qod read after delete",
                token=token,
                operation="getSession",
                allowed=((404, "NOT_FOUND"),),
                check=lambda body: [f"session {session} still answered after its deletion"],
            )
        finally:
            self.load_run.qod_busy.discard(number)


class AggregatorApp(CamaraApp):
    """One application, one set of credentials at the aggregator, every operator's numbers."""

    weight = 3

    def on_start(self) -> None:
        super().on_start()
        application = self.load_run.descriptor.application
        aggregator = self.load_run.descriptor.aggregator
        if application is None or aggregator is None:
            raise RuntimeError("the descriptor names no aggregator and demo application")
        self.application = application
        self.api_root = aggregator.api_root
        self.aggregator_id = aggregator.id

    @task
    def any_subscriber(self) -> None:
        token = self.two_legged_token(
            self.application.client_id,
            self.application.private_jwk,
            self.application.issuer,
            AGGREGATOR_SCOPE,
        )
        calls = [
            (op.api, op.template, op.operation_id)
            for op in map(operation_named, AGGREGATOR_OPERATIONS)
        ]
        api, path, operation = calls[self.fake.random_int(0, len(calls) - 1)]
        if self.unserved():
            nobody = self.pick_unserved()
            body: dict[str, Any] = {"device": {"phoneNumber": nobody.number}}
            if api == "sim-swap":
                body = {"phoneNumber": nobody.number, "maxAge": 240}
            elif api == "location-verification":
                body["area"] = answers.Area(48.85, 2.35, 2000).wire()
            self.camara(
                key=(nobody.range_of or "-", self.aggregator_id, api),
                url=self.api_root + path,
                name=f"hub {api}",
                token=token,
                operation=operation,
                body=body,
                unserved=True,
                through_aggregator=True,
            )
            return
        subscriber = self.pick(self.load_run.pool.usable(self.pick_operator()))
        number = subscriber.number
        check: answers.Check
        allowed: tuple[tuple[int, str], ...] = ()
        if api == "sim-swap":
            body = {"phoneNumber": number, "maxAge": 240}
            check = answers.sim_swap_check(subscriber, 240, datetime.now(UTC))
        elif api == "device-reachability-status":
            body = {"device": {"phoneNumber": number}}
            check = answers.reachability(subscriber)
        elif api == "device-roaming-status":
            body = {"device": {"phoneNumber": number}}
            check = answers.roaming(subscriber)
        else:
            area = answers.area_around(subscriber)
            body = {"device": {"phoneNumber": number}, "area": area.wire()}
            check = answers.location_verification(subscriber, area)
            allowed = _uncovered(self.load_run, subscriber, area)
        self.camara(
            key=(subscriber.operator, self.aggregator_id, api),
            url=self.api_root + path,
            name=f"hub {api}",
            token=token,
            operation=operation,
            body=body,
            check=check,
            allowed=allowed,
            through_aggregator=True,
        )


class GreedyApp(CamaraApp):
    """A misbehaving application on the free plan: it never waits for ``Retry-After``."""

    fixed_count = 1
    wait_time = constant_throughput(20)
    honours_retry_after = False
    SCOPE = REACHABILITY_SCOPE

    @task
    def hammer(self) -> None:
        operator = self.load_run.descriptor.operators[0].id
        self.reachability_call(operator, "greedy", "greedy reachability")


STOLEN_KEY_USERS = int(os.environ.get("OGSIM_STOLEN_KEY_USERS", "0") or 0)
"""Users of :class:`StolenKeyApp` in a run (0: none, so every other run is as it was)."""
STOLEN_KEY_AFTER = float(os.environ.get("OGSIM_STOLEN_KEY_AFTER", "0") or 0)
"""Seconds after the application's own first successful call there before the key is used
elsewhere: the application has a history first (counted from its traffic, not from the start
of the run, whose set-up takes longer on a loaded machine)."""
STOLEN_KEY_SOURCE = os.environ.get("OGSIM_STOLEN_KEY_SOURCE", "127.0.2.1")
"""The thief's address: loopback (Linux routes all of 127/8 there), another /24 than the
application's own 127.0.0.1, so the gateway sees a network it never saw the key used from."""
STOLEN_KEY_RATE = float(os.environ.get("OGSIM_STOLEN_KEY_RATE", "30") or 30)
"""Calls per second each thief aims at."""


class _TimedSession(HttpSession):
    """requests' session (through Locust) with the fast client's timeouts: requests has none
    by default, and a thief's call must not hang the run's end."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", (CamaraApp.connection_timeout, CamaraApp.network_timeout))
        return super().request(method, url, *args, **kwargs)


class StolenKeyApp(CamaraApp):
    """Credential theft: the location application's key, taken and used from elsewhere.

    The thief holds the legitimate application's client id and private key (this process's
    registration at the first operator), gets its own token with them and verifies locations
    as fast as :data:`STOLEN_KEY_RATE` allows, ignoring ``Retry-After``. Its HTTP connections
    leave from :data:`STOLEN_KEY_SOURCE` (requests' session over a urllib3 pool bound to that
    address; Locust's fast client cannot bind one). Answers are checked like everyone's: a
    stolen key still gets right answers, which is why only the analytics can tell.
    """

    fixed_count = STOLEN_KEY_USERS
    weight = 0
    honours_retry_after = False
    wait_time = constant_throughput(STOLEN_KEY_RATE)
    SCOPE = f"location-verification:verify {SERVICE}"
    """Narrower than the application's own, so the thief's token is its own, not the cached
    one the application got."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.client = _TimedSession(  # type: ignore[assignment]
            base_url=self.host,
            request_event=environment.events.request,
            user=self,
            pool_manager=PoolManager(source_address=(STOLEN_KEY_SOURCE, 0), maxsize=4),
        )

    def on_start(self) -> None:
        super().on_start()
        if STOLEN_KEY_AFTER > 0:
            victim = self._victim()
            while not self.load_run.tally.billable[victim]:  # the owner's first success
                gevent.sleep(0.2)
            gevent.sleep(STOLEN_KEY_AFTER)

    def _victim(self) -> Key:
        operator = self.load_run.descriptor.operators[0].id
        return (
            operator,
            self.load_run.credentials[("location", operator)].client_id,
            "location-verification",
        )

    @task
    def verify_elsewhere(self) -> None:
        operator = self.load_run.descriptor.operators[0].id
        credentials = self.load_run.credentials[("location", operator)]
        token = self.two_legged_token(
            credentials.client_id, credentials.private_jwk, credentials.issuer, self.SCOPE
        )
        subscriber = self.pick(self.load_run.pool.usable(operator))
        area = answers.area_around(subscriber)
        self.camara(
            key=self._victim(),
            url=_operator_url(self.load_run, operator, path_of("verifyLocation")),
            name="stolen-key location verify",
            token=token,
            operation="verifyLocation",
            body={"device": {"phoneNumber": subscriber.number}, "area": area.wire()},
            check=answers.location_verification(subscriber, area),
            allowed=_uncovered(self.load_run, subscriber, area),
        )


SATURATING_USERS = int(os.environ.get("OGSIM_SATURATING_USERS", "0") or 0)
"""Users of :class:`SaturatingApp` in a run (0: none, so every other run is as it was)."""
SATURATING_RATE = float(os.environ.get("OGSIM_SATURATING_RATE", "0") or 0)
"""Calls per second each saturating user aims at; 0: no wait between calls at all."""
SATURATING_OPERATOR = os.environ.get("OGSIM_SATURATING_OPERATOR", "")
"""The one operator the saturating users call (empty: all of them, in turn)."""


class SaturatingApp(CamaraApp):
    """Calibration's load: the cheapest modelled call, so the gateways saturate before Locust.

    Realistic users (a call a second, tokens, CIBA) spend so much of the shared cores in
    Locust that the load generator breaks down first; this user calls device reachability
    (one HLR lookup) with a token cached for the run, round robin over the operators (the
    mix stays even whatever each operator's latency) or at :data:`SATURATING_OPERATOR`
    alone, checked like every answer, at :data:`SATURATING_RATE` per user or back to back.
    """

    fixed_count = SATURATING_USERS
    weight = 0
    SCOPE = REACHABILITY_SCOPE

    def wait_time(self) -> float:
        """Back to back, or until this user's next Poisson arrival: each user's calls start
        at exponential gaps of mean 1/rate counted from the previous start, so many users
        add up to Poisson arrivals, as the simulation's (Locust's constant throughput starts
        every user on the same beat and sends the calls in bursts the gateway queues)."""
        if SATURATING_RATE <= 0:
            return 0.0
        self.next_start += self.fake.random.expovariate(SATURATING_RATE)
        return max(0.0, self.next_start - time.monotonic())

    def on_start(self) -> None:
        super().on_start()
        self.turn = self.load_run.users_started
        self.next_start = time.monotonic()
        if SATURATING_RATE > 0:  # the first call too, not every user's at once
            gevent.sleep(self.fake.random.expovariate(SATURATING_RATE))
            self.next_start = time.monotonic()

    @task
    def reachability(self) -> None:
        operators = [
            o for o in self.load_run.descriptor.operators if SATURATING_OPERATOR in ("", o.id)
        ]
        self.turn += 1
        operator = operators[self.turn % len(operators)].id
        self.reachability_call(operator, "saturating", "saturating reachability")
