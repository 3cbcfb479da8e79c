"""/bc-authorize tells nothing about the number (CAMARA IdentityAndConsentManagement #258).

An unknown number, a subscriber who objected to the purpose and one whose handset will approve
get the same status, the same body shape and, within a generous bound, the same latency. The
requests are interleaved in a shuffled order each round, so that a busy machine slows every
kind alike (in a fixed order the last request of a round is the one most often cut off by the
scheduler), and the medians of a few hundred are compared, which shrug off the odd pause of a
loaded 2-core runner. The work itself is compared too, as the CPU time of the thread serving
the request (the ASGI transport serves in the caller's thread), which load hardly moves.
"""

from __future__ import annotations

import random
import statistics
import time

import httpx

from .conftest import App, FakeClock, Operator

SCOPE = "sim-swap:check dpv:FraudPreventionAndDetection"  # legitimate interest: opt-out counts
ROUNDS = 100
WARM_UP = 10
RELATIVE = 0.30
ABSOLUTE = 0.002
"""Each kind's median within 30 % or 2 ms of every other's, whichever is looser."""


async def test_unknown_objecting_and_approving_numbers_look_alike(
    http: httpx.AsyncClient, app: App, operator: Operator, clock: FakeClock
) -> None:
    numbers = {
        "unknown": operator.number("approves")[:-5] + "00099",  # reserved, nobody has it
        "opted-out": operator.number("opted-out"),
        "approves": operator.number("approves"),
    }
    latencies: dict[str, list[float]] = {kind: [] for kind in numbers}
    work: dict[str, list[float]] = {kind: [] for kind in numbers}
    order = random.Random(258)
    shapes: set[tuple[int, tuple[str, ...], int, int]] = set()
    ids: dict[str, list[str]] = {kind: [] for kind in numbers}
    for round_ in range(ROUNDS + WARM_UP):
        clock.advance(1.0)  # keeps the per-client /bc-authorize bucket full
        kinds = list(numbers)
        order.shuffle(kinds)
        for kind in kinds:
            form = {**app.auth("/bc-authorize"), "login_hint": f"tel:{numbers[kind]}",
                    "scope": SCOPE}
            started, cpu = time.perf_counter(), time.thread_time()
            response = await http.post("/bc-authorize", data=form)
            elapsed, used = time.perf_counter() - started, time.thread_time() - cpu
            body = response.json()
            shapes.add((response.status_code, tuple(sorted(body)), body.get("expires_in"),
                        body.get("interval")))
            if round_ >= WARM_UP:
                latencies[kind].append(elapsed)
                work[kind].append(used)
                ids[kind].append(body["auth_req_id"])
    assert shapes == {(200, ("auth_req_id", "expires_in", "interval"), 120, 2)}
    assert {len(i) for kind in ids for i in ids[kind]} == {32}  # one id format for all

    for what, samples in (("latency", latencies), ("CPU time", work)):
        medians = {kind: statistics.median(values) for kind, values in samples.items()}
        print(f"median /bc-authorize {what} (ms):",
              {kind: round(m * 1000, 3) for kind, m in medians.items()})
        for kind, median in medians.items():
            for other, other_median in medians.items():
                bound = max(RELATIVE * other_median, ABSOLUTE)
                assert abs(median - other_median) <= bound, (what, kind, other, medians)

    # and each ends as a denial or a token would, at poll time
    clock.advance(2)
    outcomes = {}
    for kind in numbers:
        polled = await http.post("/token", data={
            **app.auth(), "grant_type": "urn:openid:params:grant-type:ciba",
            "auth_req_id": ids[kind][-1]})
        outcomes[kind] = (polled.status_code, polled.json().get("error"))
    assert outcomes == {"unknown": (400, "access_denied"), "opted-out": (400, "access_denied"),
                        "approves": (200, None)}


async def test_the_same_writes_for_every_kind(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    """The work is equal, not only the answer: one row per request whoever the number is."""
    kinds = [operator.number("approves")[:-5] + "00099", operator.number("opted-out"),
             operator.number("approves")]
    for number in kinds:
        before = operator.db.one("SELECT COUNT(*) AS n FROM identity_ciba_requests")
        response = await http.post("/bc-authorize", data={
            **app.auth("/bc-authorize"), "login_hint": f"tel:{number}", "scope": SCOPE})
        after = operator.db.one("SELECT COUNT(*) AS n FROM identity_ciba_requests")
        assert response.status_code == 200
        assert before is not None and after is not None and after["n"] == before["n"] + 1
