"""CAMARA's own scenarios, all of them, against a fresh in-process operator."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from loadtests.conformance import run_conformance
from loadtests.conformance.ogsim_operator import in_process_target
from sim.cli.qa import conformance

APIS = {
    "sim-swap",
    "number-verification",
    "device-reachability-status",
    "device-roaming-status",
    "location-verification",
    "location-retrieval",
    "quality-on-demand",
    "qos-profiles",
    "kyc-match",
    "consent-info",
}


async def test_every_scenario_runs_and_at_least_90_percent_pass(camara_dir: Path) -> None:
    async with in_process_target() as target:
        report = await run_conformance(target, camara_dir)
    errors = [f"{r.scenario.tag}: {r.reason}" for r in report.results if r.outcome == "error"]
    assert errors == []  # an undefined step or an engine exception is never acceptable
    assert set(report.apis) == APIS
    assert len(report.results) > 300
    assert report.pass_rate >= 0.9, report.summary()
    failed = [f"{r.scenario.tag}: {r.reason}" for r in report.results if r.outcome == "failed"]
    assert failed == []  # each one passes, is skipped, or contradicts its own YAML
    assert report.skipped <= 0.1 * len(report.results), report.summary()
    # the scenarios that contradict their own YAML fail as such, each for the listed reason
    deviating = sorted((r.scenario.tag, r.reason.split(" (")[0]) for r in report.results
                       if r.outcome == "deviates")
    assert [tag for tag, _ in deviating] == [
        "@KYC_Match_3_success_specific_property_score",
        "@KYC_Match_3_success_specific_property_score",
        "@location_retrieval_C01.08_device_identifiers_mismatch",
        "@qos_profiles_getQosProfile_01_generic_success_scenario",
        "@quality_on_demand_createSession_400.9_invalid_duration",
        "@quality_on_demand_deleteSession_01_delete_existing_qod_session",
    ], report.summary()
    assert all(reason.startswith("the scenario ") for _, reason in deviating)


async def test_consent_info_passes_all_but_the_one_scenario_the_operator_cannot_have(
    camara_dir: Path,
) -> None:
    """Consent Info: statuses from the operator's records, capture URLs, the capture journey
    with its callback and ``state``; only "service not applicable" cannot apply (every
    ogsim subscriber may be asked about)."""
    async with in_process_target() as target:
        report = await run_conformance(target, camara_dir, ["consent-info"])
    outcomes = {r.scenario.tag: r.outcome for r in report.results}
    assert len(outcomes) == 24
    assert {t for t, o in outcomes.items() if o != "passed"} == {
        "@consent_info_retrieveStatus_C02.05_phone_number_not_supported"
    }, report.summary()


def test_the_command_prints_the_table_and_the_summary_line(camara_dir: Path) -> None:
    """Sync on purpose: the command runs its own event loop, as it does from the shell."""

    app = typer.Typer()
    app.command("conformance")(conformance)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(
        app, ["conformance", "--camara-dir", str(camara_dir), "--api", "sim-swap"]
    )
    assert result.exit_code == 0, result.output
    assert "CAMARA conformance" in result.output
    assert result.output.strip().splitlines()[-1] == "conformance: 32 passed, 0 failed, 5 skipped"
