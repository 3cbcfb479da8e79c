"""The load test's files when they are not what it wrote: a descriptor that is a folder, a
damaged run file, an earlier run's results, a token command that never gives a token."""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path

import pytest

from loadtests.conformance import CommandTokens, TokenNeed, Unsupported, available_apis
from loadtests.federation_view import DescriptorError, load_descriptor
from loadtests.locust_run import RESULT_FILES, clear_results, run_locust
from loadtests.reconciliation import RunFileError, read_run


def test_a_folder_given_as_descriptor_is_a_descriptor_error(tmp_path: Path) -> None:
    """It was an IsADirectoryError."""
    with pytest.raises(DescriptorError, match=re.escape(f"{tmp_path} is not a file")):
        load_descriptor(tmp_path)


def test_a_damaged_run_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text('{"runId": "r", "baseline": {"x": 3}}')
    with pytest.raises(RunFileError, match=r"run\.json is not a run file.*baseline of x"):
        read_run(tmp_path)
    (tmp_path / "run.json").write_bytes(b"\xff\xfe")
    with pytest.raises(RunFileError, match="cannot be read as a run file"):
        read_run(tmp_path)


def test_an_earlier_runs_results_are_cleared_and_nothing_else(tmp_path: Path) -> None:
    earlier = ["summary.json", "reconciliation.json", "run.json", "report.html", "locust.log",
               "locust_stats.csv", "locust_stats_history.csv", "locust-worker-0.log",
               "calls-1-abc.json"]
    kept = ["federation.json", "notes.txt"]
    for name in earlier + kept:
        (tmp_path / name).write_text("earlier")
    (tmp_path / "federation").mkdir()
    clear_results(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "federation"])
    assert "summary.json" in RESULT_FILES


@pytest.mark.parametrize("grace", [math.nan, -1.0, math.inf])
def test_run_locust_refuses_a_stop_timeout_that_is_not_seconds(
    grace: float, tmp_path: Path
) -> None:
    """NaN was ``ValueError: cannot convert float NaN to integer`` once the federation was up;
    now nothing is cleared or started."""
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(ValueError, match="stop_timeout"):
        run_locust(descriptor=tmp_path / "d.json", results=tmp_path, users=1, spawn_rate=1,
                   run_time="1s", stop_timeout=grace)
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_token_commands_refusals_are_kept() -> None:
    tokens = CommandTokens("echo wrong key >&2; exit 3")
    for scope in ("a", "b"):
        with pytest.raises(Unsupported):
            asyncio.run(tokens.token(TokenNeed((scope,), "dpv:x")))
    assert tokens.refusals == ["wrong key", "wrong key"] and tokens.given == 0
    working = CommandTokens("echo token")
    assert asyncio.run(working.token(TokenNeed(("a",), "dpv:x"))) == "token"
    assert working.given == 1 and working.refusals == []


def test_the_apis_with_scenarios_are_listed(tmp_path: Path) -> None:
    for api, feature in (("sim-swap", "sim-swap-check"), ("kyc", "kyc-match")):
        (tmp_path / api).mkdir()
        (tmp_path / api / f"{api}.yaml").write_text("")
        (tmp_path / api / f"{feature}.feature").write_text("")
    (tmp_path / "commonalities").mkdir()
    (tmp_path / "commonalities" / "CAMARA_common.yaml").write_text("")
    assert available_apis(tmp_path) == ["kyc", "sim-swap"]
