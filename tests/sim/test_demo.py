"""``ogsim demo`` tells its story with the expected outcome at every step."""

from __future__ import annotations

from sim.commands.demo import run_demo


async def test_demo_story_has_the_expected_outcomes() -> None:
    steps = {name: outcome for name, outcome, _ in await run_demo(echo=False)}
    assert not [s for s in steps.values() if s.startswith("UNEXPECTED")], steps
    assert steps["POST /sim-swap/v2/check +34600000002 (recent-swap), maxAge 24 h"] == (
        '200 {"swapped":true}'
    )
    assert steps["POST /sim-swap/v2/check +34600000003 (never-swapped), maxAge 24 h"] == (
        '200 {"swapped":false}'
    )
    assert steps["CIBA for +34600000007 (handset denies)"] == "access_denied"
    assert steps["client_credentials for a consent-based purpose"] == "invalid_scope"
    assert steps["the same token, next call"].startswith("403")
    assert steps["POST /sim-swap/v2/check during an HLR outage"].startswith("503")
