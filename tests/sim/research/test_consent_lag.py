"""Consent revocation with replication lag between data centres: views, ground truth, report."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from operators.config_file import ConfigFileError
from sim.engine import RunResult, run_scenario
from sim.report import write_report
from sim.scenario import load_scenario
from sim.tiers.consent import ConsentReplicas

WORLD = """
name: lagging
seed: 11
duration: 40
topology:
  operators:
    telco-es:
      number_ranges: ["+3460"]
      subscribers: 100
      data_centres:
        mad-1: {weight: 1}
        bcn-1: {weight: 99}
traffic:
  applications:
    lender:
      arrival: {process: poisson, rate: 40}
      apis: {kyc-match.match: 1.0}
      client: {timeout: 2.0}
faults:
  - {name: wave, kind: consent_revocation, operator: telco-es, share: 0.5, at: 10,
     replication_lag: 5, data_centre: mad-1}
expectations:
  - {name: none after the lag, metric: revoked_consent_successes_after_lag, max: 0}
"""


def _write(tmp_path: Path, text: str, name: str = "lagging.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _run(tmp_path: Path, **overrides: Any) -> RunResult:
    (scenario,) = load_scenario(_write(tmp_path, WORLD), overrides=overrides)
    return run_scenario(scenario)


def _denied(result: RunResult, start: float, end: float) -> int:
    return sum(
        int(row.get("errors.PERMISSION_DENIED", 0))
        for row in result.rows
        if start < row["t"] <= end
    )


def test_calls_on_the_lagging_data_centre_succeed_only_within_the_lag(tmp_path: Path) -> None:
    result = _run(tmp_path)
    counts = result.consent["telco-es"]
    # The revocations land in mad-1; 99 % of calls go to bcn-1, which sees them 5 s later.
    assert counts["successes_after_lag"] == 0
    # ~ 40 calls/s x half the lines x 5 s, nearly all on bcn-1.
    assert 70 < counts["successes_within_lag"] < 130
    assert _denied(result, 10, 15) < 0.05 * counts["successes_within_lag"]
    after = _denied(result, 15, 40)
    assert after == pytest.approx(40 * 0.5 * 25, rel=0.15)
    totals = result.totals()
    assert totals["completed"] - totals["succeeded"] == counts["refused"]  # every failure: 403
    assert counts["refused"] == _denied(result, 0, 40)
    assert _denied(result, 0, 10) == 0
    (verdict,) = result.verdicts
    assert verdict.passed and verdict.value == 0


def test_without_lag_nothing_slips_through(tmp_path: Path) -> None:
    result = _run(tmp_path, **{"faults.0.replication_lag": 0})
    counts = result.consent["telco-es"]
    assert counts["successes_within_lag"] == counts["successes_after_lag"] == 0
    assert counts["refused"] > 500


def test_a_replication_that_never_arrives_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ground truth is kept apart from the views: a broken replica shows as a failure."""
    real = ConsentReplicas._apply

    def home_only(
        self: ConsentReplicas, changes: list[tuple[str, str]], applied: list[tuple[str, str]]
    ) -> None:
        real(self, [(dc, number) for dc, number in changes if dc == "mad-1"], applied)

    monkeypatch.setattr(ConsentReplicas, "_apply", home_only)
    result = _run(tmp_path)
    assert result.consent["telco-es"]["successes_after_lag"] > 400
    assert not result.passed


def test_revocations_land_by_data_centre_weight_and_spread_over_the_wave(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        **{
            "faults.0.data_centre": None,
            "faults.0.spread": 10,
            "topology.operators.telco-es.subscribers": 1000,
            "topology.operators.telco-es.data_centres.mad-1.weight": 3,
            "topology.operators.telco-es.data_centres.bcn-1.weight": 1,
        },
    )
    (wave,) = result.consent_waves
    assert wave["lines"] == 500
    assert wave["landed"]["mad-1"] == pytest.approx(375, abs=40)
    assert result.consent["telco-es"]["successes_after_lag"] == 0
    # Spread over ten seconds: refusals grow through the wave rather than jump.
    assert 0 < _denied(result, 10, 12) < _denied(result, 18, 20)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []

    def handle_data(self, data: str) -> None:
        self.cells.append(data.strip())


def test_the_report_shows_the_lag_and_the_counts(tmp_path: Path) -> None:
    result = _run(tmp_path)
    out = tmp_path / "run"
    digest = write_report([result], out)
    section = digest["variants"]["default"]["consent_revocations"]
    assert section["waves"][0]["replication_lag"] == 5
    assert section["waves"][0]["landed"] == {"mad-1": 50}
    assert section["revoked_consent_successes_after_lag"] == 0
    assert section["revoked_consent_successes_within_lag"] > 0
    assert json.loads((out / "summary.json").read_text())["variants"] == digest["variants"]
    page = _Text()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    text = page.cells
    assert "replication lag between DCs (s)" in text
    assert "successes after instant + lag (must be 0)" in text
    # The scenario table: at, spread, operator, share, recorded in, lag.
    row = text.index("mad-1", text.index("replication lag between DCs (s)"))
    assert text[row + 1] == "5"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("data_centre: mad-1}", "data_centre: lis-1}", "unknown data centre 'lis-1'"),
        ("replication_lag: 5,", "replication_lag: -1,", "greater than or equal to 0"),
        (
            "metric: revoked_consent_successes_after_lag, max: 0}",
            "metric: revoked_consent_successes_after_lag, max: 0, window: [0, 5]}",
            "counts the whole run",
        ),
    ],
)
def test_bad_consent_settings_name_the_field(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in WORLD
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(_write(tmp_path, WORLD.replace(old, new)))
    assert message in str(caught.value)


def test_a_consent_expectation_needs_a_wave(tmp_path: Path) -> None:
    text = WORLD.replace(WORLD[WORLD.index("faults:") : WORLD.index("expectations:")], "")
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(_write(tmp_path, text))
    assert "expectations.0.metric: needs a consent_revocation fault" in str(caught.value)
