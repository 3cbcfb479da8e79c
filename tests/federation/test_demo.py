"""``ogsim demo`` tells the federation story with the expected outcome at every step."""

from __future__ import annotations

from pathlib import Path

from federation.config import PORTED_NUMBER
from federation.demo import UNKNOWN_NUMBER, run_demo


async def test_demo_story_has_the_expected_outcomes(tmp_path: Path) -> None:
    steps = {name: outcome for name, outcome, _ in await run_demo(out=tmp_path)}
    assert not [s for s in steps.values() if s.startswith("UNEXPECTED")], steps
    assert steps["SIM swap check +33610000002 (telco-fr)"] == '200 {"swapped":true}'
    assert steps[f"SIM swap check {PORTED_NUMBER} (ported to telco-es)"].startswith("200")
    assert steps[f"verify location of {PORTED_NUMBER} (ported) within 5 km"].startswith("200")
    unknown = steps[f"SIM swap check {UNKNOWN_NUMBER} (a German number nobody serves)"]
    assert unknown.startswith("404") and "IDENTIFIER_NOT_FOUND" in unknown
    assert steps["reachability of +447700000001 (telco-gb; consent needed)"].startswith("200")
    assert steps["reachability of +447700000001 again, same application"].startswith("403")
    assert "failed, all failures within" in steps["SIM swap checks while madrid is down"]
    assert steps["madrid recovers and the GLB routes to it again"] == "ok"
    diagram = (tmp_path / "sequence.mmd").read_text()
    assert diagram.startswith("sequenceDiagram")
    assert "hub->>telco_fr: token (JWT bearer" in diagram
    assert "madrid out of rotation" in diagram
