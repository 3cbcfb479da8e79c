"""Housekeeping purges what is past its life on a fake clock, keeps the rest, and keeps a busy
operator's database bounded round after round (the soak)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from federation.client import ApplicationClient, new_client_key
from operators import Housekeeping, Retention
from operators.analytics.alerts import Alert
from operators.analytics.monitor import AlertLog
from operators.analytics.records import MAX_DISTINCT
from operators.analytics.usage_recorder import UsageRecorder
from operators.billing import LATE_USAGE, Month
from operators.config import AnalyticsConfig, TokenLifetimes
from operators.housekeeping import (
    ACCESS_LOG_RETENTION,
    ANALYTICS_HISTORY,
    KEYS_MARGIN,
    REPLAY_WINDOW,
)
from operators.operator import Operator, create_operator_app
from operators.portal.accounts import INVITATION_LIFETIME, AccountError, DeveloperAccounts
from operators.portal.login_throttle import WINDOW as LOGIN_FAILURE_WINDOW
from operators.portal.login_throttle import LoginThrottle
from operators.portal.password_links import LINK_LIFETIME, PasswordLinks
from operators.storage import Database
from tests.operators.gateway.conftest import ADMIN, FRAUD, SCOPES, FakeClock, gateway_config

TABLES = (
    "identity_access_tokens",
    "identity_authorization_codes",
    "identity_ciba_requests",
    "identity_seen_jti",
)


@dataclass
class Live:
    operator: Operator
    http: httpx.AsyncClient
    client: ApplicationClient
    clock: FakeClock

    def rows(self, table: str) -> int:
        row = self.operator.db.one(f"SELECT COUNT(*) AS n FROM {table}")
        assert row is not None
        return int(row["n"])

    def answers(self) -> int:
        row = self.operator.db.one(
            "SELECT COUNT(*) AS n FROM usage_events WHERE response IS NOT NULL"
        )
        assert row is not None
        return int(row["n"])

    def code(self, name: str) -> None:
        """An authorization code row as ``/authorize`` writes it (that flow needs a handset)."""
        now = self.clock()
        self.operator.db.execute(
            "INSERT INTO identity_authorization_codes (code_hash, client_id, redirect_uri,"
            " msisdn, scope, code_challenge, created_at, expires_at)"
            " VALUES (?, 'fraud-app', 'https://app.example/cb', '+34600000001', 'openid', 'x',"
            " ?, ?)",
            (name, now, now + self.operator.config.lifetimes.authorization_code),
        )

    async def call(self, token: str, correlator: str) -> httpx.Response:
        return await self.http.post(
            "/sim-swap/v2/check",
            json={"phoneNumber": self.operator.subscribers.test_number("recent-swap")},
            headers={"Authorization": f"Bearer {token}", "x-correlator": correlator,
                     "Idempotency-Key": correlator},
        )


async def started(clock: FakeClock, storage: str = ":memory:") -> AsyncIterator[Live]:
    config = gateway_config().model_copy(update={"storage": storage})
    operator = Operator.from_config(config, clock=clock, monotonic=clock)
    transport = httpx.ASGITransport(app=create_operator_app(operator), client=("203.0.113.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url=operator.api_root) as http:
        key = new_client_key()
        registered = await http.post(
            f"{operator.issuer}/admin/clients",
            headers=ADMIN,
            json={
                "client_id": "fraud-app",
                "client_name": "Fraud app",
                "jwks": {"keys": [key.as_dict(private=False)]},
                "grant_types": ["client_credentials", "urn:openid:params:grant-type:ciba"],
                "scope": SCOPES,
                "purposes": [FRAUD],
            },
        )
        assert registered.status_code == 201, registered.text
        client = await ApplicationClient.discover("fraud-app", key, operator.issuer, http)
        client.clock = clock

        async def no_wait(_: float) -> None:
            return None

        client.sleep = no_wait
        yield Live(operator, http, client, clock)
    operator.close()


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    async for live in started(FakeClock()):
        yield live


def test_cutoffs_are_the_clock_minus_each_retention() -> None:
    lifetimes = TokenLifetimes(access_token=600, authorization_code=60, ciba_request=120)
    retention = Retention.for_lifetimes(lifetimes)
    assert retention == Retention(
        access_token=10, authorization_code=610, ciba_request=120, seen_jti=0
    )
    now = 10_000.0
    cutoffs = Housekeeping(None, retention, clock=lambda: now).cutoffs(now)  # type: ignore[arg-type]
    assert cutoffs == {
        "identity_access_tokens": now - 10,
        "identity_authorization_codes": now - 610,
        "identity_ciba_requests": now - 120,
        "identity_seen_jti": now,
        "identity_operator_tokens": now,
        "usage_events": now - REPLAY_WINDOW,
        "aggregator_qod_sessions": now - REPLAY_WINDOW,
        "portal_codes": now - 600,
        "portal_invitations": now,
        "portal_password_links": now,
        "portal_login_failures": now - LOGIN_FAILURE_WINDOW,
        "unbilled_calls": now - ACCESS_LOG_RETENTION,
        "analytics_usage_buckets": now - ANALYTICS_HISTORY,
        "analytics_subscriber_keys": now - (3600 + 5 + KEYS_MARGIN),
        "analytics_alerts": now - ANALYTICS_HISTORY,
    }
    analytics = AnalyticsConfig(
        bucket_seconds=60, flush_seconds=1, grace_seconds=2, retention_days=30
    )
    own = Retention.for_lifetimes(lifetimes, analytics)
    assert (own.analytics_history, own.analytics_keys) == (30 * 86400, 60 + 2 + KEYS_MARGIN)


async def test_a_purge_removes_only_what_is_past_its_life(live: Live) -> None:
    lifetimes = live.operator.config.lifetimes
    two_legged = (await live.client.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    await live.client.ciba(
        f"tel:{live.operator.subscribers.test_number('approves')}", f"sim-swap:check {FRAUD}"
    )
    live.code("code-1")
    assert (await live.call(two_legged, "call-1")).status_code == 200
    before = {t: live.rows(t) for t in TABLES}
    assert before == {
        "identity_access_tokens": 2,
        "identity_authorization_codes": 1,
        "identity_ciba_requests": 1,
        "identity_seen_jti": 3,  # one client assertion per token-endpoint request
    }
    housekeeping = live.operator.housekeeping
    assert not any(housekeeping.purge().values())

    start = live.clock()

    def at(elapsed: float) -> None:
        live.clock.now = start + elapsed

    # A TS.43 operator token goes once it expires (it resolves nobody after).
    subjects = live.operator.identity.subjects
    subjects.issue_operator_token(live.operator.subscribers.test_number("approves"), 60.0)
    at(59)
    assert not housekeeping.purge().get("identity_operator_tokens")
    at(61)
    assert housekeeping.purge()["identity_operator_tokens"] == 1

    # The CIBA request is kept as long again as it lived: a late poll reads expired_token.
    at(lifetimes.ciba_request * 2 - 1)
    assert not housekeeping.purge().get("identity_ciba_requests")
    at(lifetimes.ciba_request * 2 + 1)
    assert housekeeping.purge()["identity_ciba_requests"] == 1

    # Tokens go once they cannot verify (expiry + skew); the code outlives them by its own
    # life, so a replayed code still finds the tokens it must revoke; the jtis are long gone.
    at(lifetimes.access_token + lifetimes.clock_skew + 1)
    counts = housekeeping.purge()
    assert counts["identity_access_tokens"] == 2
    assert counts["identity_seen_jti"] == 0  # purged already by the replay guard itself
    assert live.rows("identity_seen_jti") == 0
    assert live.rows("identity_authorization_codes") == 1
    at(lifetimes.access_token + lifetimes.clock_skew + lifetimes.authorization_code + 1)
    assert housekeeping.purge()["identity_authorization_codes"] == 1
    assert {t: live.rows(t) for t in TABLES} == dict.fromkeys(TABLES, 0)

    # The billed call's answer stays for the replay window, then goes; its event stays.
    assert live.answers() == 1
    token = (await live.client.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    replayed = await live.call(token, "call-1")
    assert replayed.headers.get("idempotent-replayed") == "true"
    live.clock.advance(REPLAY_WINDOW)
    assert housekeeping.purge()["usage_events"] == 1
    assert live.answers() == 0
    token = (await live.client.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    again = await live.call(token, "call-1")  # its key is still taken: refused, not free
    assert again.status_code == 400 and "idempotent-replayed" not in again.headers
    assert live.operator.gateway.ledger.totals() == {("fraud-app", "sim-swap"): 1}


async def test_sign_in_failures_go_once_they_no_longer_count(live: Live) -> None:
    """A failure followed by no other (the throttle deletes old rows only on a failure) is
    still gone after the window: the row hashes what a stranger typed."""
    throttle = LoginThrottle(live.operator.db, clock=live.clock)  # as the portal makes it
    start = live.clock()
    for _ in range(throttle.limit):
        throttle.failed("ada@example.com", "198.51.100.4")
    live.clock.now = start + 60
    throttle.failed("grace@example.com", None)
    assert live.rows("portal_login_failures") == 2 * throttle.limit + 1

    housekeeping = live.operator.housekeeping
    live.clock.now = start + LOGIN_FAILURE_WINDOW - 1
    assert not housekeeping.purge().get("portal_login_failures")
    assert throttle.retry_after("ada@example.com", None) is not None  # still counting
    live.clock.now = start + LOGIN_FAILURE_WINDOW
    assert housekeeping.purge()["portal_login_failures"] == 2 * throttle.limit
    assert throttle.retry_after("ada@example.com", "198.51.100.4") is None
    live.clock.now = start + 60 + LOGIN_FAILURE_WINDOW
    assert housekeeping.purge()["portal_login_failures"] == 1
    assert live.rows("portal_login_failures") == 0


def test_invitations_and_password_links_go_once_expired(live: Live) -> None:
    """Neither lets anybody in past its expiry, used or not; kept, they only grow."""
    accounts = DeveloperAccounts(live.operator.db, live.operator.identity, live.clock)
    ada = accounts.sign_up("Corp", "ada@corp.example", "Ada", "a strong enough password")
    start = live.clock()
    invitation = accounts.invite(ada.org_id, by=ada.developer_id)
    accounts.set_idp(ada.org_id, "https://idp.corp.test")
    accounts.create_federated(ada.org_id, "u-bob", "bob@corp.example", "Bob")
    live.clock.now = start + 60
    links = PasswordLinks(live.operator.db, accounts, live.clock)
    (link,) = links.stop_federating(ada.org_id)

    housekeeping = live.operator.housekeeping
    live.clock.now = start + INVITATION_LIFETIME
    assert not housekeeping.purge().get("portal_invitations")
    live.clock.now = start + INVITATION_LIFETIME + 1
    assert housekeeping.purge()["portal_invitations"] == 1
    with pytest.raises(AccountError, match="unknown, used or expired"):
        accounts.join(ada.org_id, "eve@corp.example", "Eve", "a strong enough password",
                      invitation=invitation)
    assert links.holder(link.code).email == "bob@corp.example"
    assert not housekeeping.purge().get("portal_password_links")
    live.clock.now = start + 60 + LINK_LIFETIME + 1
    assert housekeeping.purge()["portal_password_links"] == 1
    assert live.rows("portal_password_links") == live.rows("portal_invitations") == 0


def _alert(at: float) -> Alert:
    return Alert("volume_spike", "fraud-app", "sim-swap", "", "", at - 3600, at, 9.0, 90, 9, "")


async def test_analytics_rows_go_past_the_history_and_keys_past_the_last_part(
    live: Live,
) -> None:
    """Through the operator's own gateway and wiring: a call's usage bucket keeps its
    subscriber keys while a replica's part may still come, then only its count; the bucket
    and the alerts go past the history window; developers' milestones stay."""
    token = (await live.client.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    assert (await live.call(token, "call-1")).status_code == 200
    usage = live.operator.gateway.usage
    usage.flush()
    (bucket,) = usage.read_buckets()
    assert bucket.subscribers.count == 1
    alerts = AlertLog(live.operator.db)
    assert alerts.add(_alert(bucket.start + 3600))
    live.operator.activity.note("signed_up", developer_id="dev-1", org_id="org-1")
    live.operator.activity.flush()
    milestones = live.rows("analytics_activities")
    housekeeping = live.operator.housekeeping
    analytics = live.operator.config.analytics

    def keys() -> str:
        row = live.operator.db.one("SELECT subscriber_keys FROM analytics_usage_buckets")
        assert row is not None
        return str(row["subscriber_keys"])

    keyed_until = bucket.start + analytics.bucket_seconds + analytics.grace_seconds + KEYS_MARGIN
    live.clock.now = keyed_until
    assert housekeeping.purge()["analytics_subscriber_keys"] == 0
    assert keys() != "[]"
    live.clock.now = keyed_until + 1
    assert housekeeping.purge()["analytics_subscriber_keys"] == 1
    assert keys() == "[]"
    (kept,) = usage.read_buckets()
    assert (kept.calls, kept.subscribers.count) == (1, 1), "the count stays"
    assert housekeeping.purge()["analytics_subscriber_keys"] == 0, "done once"

    history = analytics.retention_days * 86400
    live.clock.now = bucket.start + history
    counts = housekeeping.purge()
    assert counts["analytics_usage_buckets"] == counts["analytics_alerts"] == 0
    live.clock.now = bucket.start + 3600 + history + 1
    counts = housekeeping.purge()
    assert counts["analytics_usage_buckets"] == counts["analytics_alerts"] == 1
    assert usage.read_buckets() == [] and alerts.read() == []
    assert live.rows("analytics_activities") == milestones


def test_a_bucket_without_its_keys_keeps_its_count_and_saturation(tmp_path: Path) -> None:
    """A saturated bucket stays saturated once its keys are dropped; a part merged in after
    that adds its subscribers to the count."""
    clock = FakeClock()
    begun = clock.now
    db = Database(str(tmp_path / "op.db"))
    usage = UsageRecorder(db, clock, bucket_seconds=60)
    for n in range(MAX_DISTINCT + 5):
        usage.record("enumerator", "sim-swap", 200, subscriber=f"+346{n:08d}")
    for n in range(3):
        usage.record("steady", "sim-swap", 200, subscriber=f"+347{n:08d}")
    usage.flush()
    analytics = AnalyticsConfig(bucket_seconds=60, flush_seconds=1, grace_seconds=2)
    housekeeping = Housekeeping(
        db, Retention.for_lifetimes(TokenLifetimes(), analytics), clock=clock
    )
    clock.advance(60 + 2 + KEYS_MARGIN + 60)
    assert housekeeping.purge()["analytics_subscriber_keys"] == 2
    counts = {b.client_id: b.subscribers.count for b in usage.read_buckets()}
    assert counts == {"enumerator": MAX_DISTINCT, "steady": 3}
    late = UsageRecorder(db, clock, bucket_seconds=60)  # a replica stalled past the margin
    clock.now = begun
    late.record("steady", "sim-swap", 200, subscriber="+34800000000")
    late.flush()
    (steady,) = late.read_buckets(client_ids=["steady"])
    assert (steady.calls, steady.subscribers.count) == (4, 4)


async def test_the_live_operator_purges_in_the_background_of_its_lifespan(live: Live) -> None:
    live.operator.housekeeping.interval = 0.01
    await live.client.client_credentials(f"sim-swap:check {FRAUD}")
    live.clock.advance(live.operator.config.lifetimes.access_token + 3600)
    await live.operator.start()
    try:
        for _ in range(3000):  # a generous bound on a condition, not a timed assertion
            if live.rows("identity_access_tokens") == 0:
                break
            await asyncio.sleep(0.01)
        assert live.rows("identity_access_tokens") == 0
    finally:
        await live.operator.stop()
    assert live.operator.housekeeping.purged["identity_access_tokens"] == 1


async def test_the_live_operator_issues_a_closed_months_invoices_in_its_lifespan(
    live: Live,
) -> None:
    """The month-end invoice run beside the housekeeping: a billed call's month, once closed,
    is issued without anyone drawing its invoice."""
    live.operator.invoice_run.interval = 0.01
    token = (await live.client.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    assert (await live.call(str(token), "billed-1")).status_code == 200
    month = Month.of(live.clock())
    live.clock.advance(month.end + LATE_USAGE - live.clock())
    await live.operator.start()
    try:
        for _ in range(3000):  # a generous bound on a condition, not a timed assertion
            if live.rows("billing_invoice_runs") == 1:
                break
            await asyncio.sleep(0.01)
    finally:
        await live.operator.stop()
    row = live.operator.db.one("SELECT customer, month FROM billing_issued_invoices")
    assert row is not None and (row["customer"], row["month"]) == ("fraud-app", str(month))


async def test_soak_a_busy_operator_keeps_its_database_bounded(tmp_path: Path) -> None:
    """Rounds of token issuance, CIBA and billed calls, the clock past every life between
    rounds: the identity tables hold one round at most and the file stops growing but for
    the billing records (usage events, kept without their answers)."""
    rounds, per_round = 12, 15
    peaks = dict.fromkeys((*TABLES, "answers"), 0)
    pages: list[int] = []
    async for live in started(FakeClock(), str(tmp_path / "soak.sqlite3")):
        number = live.operator.subscribers.test_number("approves")
        scope = f"sim-swap:check {FRAUD}"
        for r in range(rounds):
            for i in range(per_round):
                token = (await live.client.client_credentials(scope))["access_token"]
                await live.client.ciba(f"tel:{number}", scope)
                live.code(f"code-{r}-{i}")
                assert (await live.call(token, f"soak-{r}-{i}")).status_code == 200
            for table in TABLES:
                peaks[table] = max(peaks[table], live.rows(table))
            peaks["answers"] = max(peaks["answers"], live.answers())
            live.clock.advance(REPLAY_WINDOW + 1)
            live.operator.housekeeping.purge()
            used = live.operator.db.one(
                "SELECT (SELECT page_count FROM pragma_page_count())"
                " - (SELECT freelist_count FROM pragma_freelist_count()) AS n"
            )
            assert used is not None
            pages.append(int(used["n"]))
            assert {t: live.rows(t) for t in TABLES} == dict.fromkeys(TABLES, 0)
            assert live.answers() == 0
        events = len(live.operator.gateway.ledger.events())
        file_bytes = (tmp_path / "soak.sqlite3").stat().st_size
    assert events == rounds * per_round  # billing records stay, exactly one per call
    assert peaks == {
        "identity_access_tokens": 2 * per_round,
        "identity_authorization_codes": per_round,
        "identity_ciba_requests": per_round,
        "identity_seen_jti": 3 * per_round,  # client_credentials, bc-authorize, CIBA poll
        "answers": per_round,
    }
    growth = pages[-1] - pages[len(pages) // 2]
    print(
        f"soak: {rounds} rounds x {per_round} (2 tokens, 1 CIBA request, 1 code, 1 billed call"
        f" each): peak rows {peaks}; {events} usage events kept; pages in use per round"
        f" {pages}; file {file_bytes} bytes"
    )
    # The second half of the run adds only usage events (one small row per call): a few pages.
    assert growth <= 2 + rounds // 2, pages
