"""The step library on its own: each kind of step does what its sentence says, and says so
when the response differs, so a passing conformance run means something."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from loadtests.conformance import CommandTokens, StepFailed, TokenNeed, Unsupported
from loadtests.conformance.runner import ConformanceReport, Scenario, ScenarioResult
from loadtests.conformance.steps import default_library, normalise
from loadtests.conformance.world import REMOVE, assign, lookup, present


async def _sent(world: Any, *steps: str) -> None:
    library = default_library()
    for text in steps:
        assert await library.run(world, text), text
    await world.send()


async def test_a_response_property_mismatch_is_detected(make_world: Any) -> None:
    world = make_world("sim-swap", httpx.Response(200, json={"swapped": False}))
    await _sent(world, 'the request "checkSimSwap" is sent')
    library = default_library()
    assert await library.run(world, 'the response property "$.swapped" is false')
    with pytest.raises(StepFailed, match="swapped"):
        await library.run(world, 'the value of response property "$.swapped" == true')


async def test_status_code_and_error_code_are_checked(make_world: Any) -> None:
    error = {"status": 401, "code": "UNAUTHENTICATED", "message": "no"}
    world = make_world("sim-swap", httpx.Response(401, json=error))
    await _sent(
        world, 'the header "Authorization" is removed', 'the request "checkSimSwap" is sent'
    )
    library = default_library()
    assert await library.run(world, 'the response status code is "401"')
    with pytest.raises(StepFailed):
        await library.run(world, "the response status code is 403")
    with pytest.raises(StepFailed):
        await library.run(world, 'the response property "$.code" is "PERMISSION_DENIED"')
    assert await library.run(
        world, 'the response property "$.code" is "UNAUTHENTICATED" or "AUTHENTICATION_REQUIRED"'
    )
    assert "Authorization" not in world.sent_headers


async def test_schema_compliance_uses_the_yaml(make_world: Any) -> None:
    world = make_world("sim-swap", httpx.Response(200, json={"swapped": "yes"}))
    await _sent(world, 'the request "checkSimSwap" is sent')
    library = default_library()
    with pytest.raises(StepFailed, match="CheckSimSwapInfo"):
        await library.run(
            world,
            "the response body complies with the OAS schema at "
            '"/components/schemas/CheckSimSwapInfo"',
        )


async def test_x_correlator_must_be_echoed(make_world: Any) -> None:
    world = make_world("sim-swap", httpx.Response(200, json={}, headers={"x-correlator": "other"}))
    await _sent(
        world,
        'the header "x-correlator" is set to a UUID value',
        'the request "checkSimSwap" is sent',
    )
    with pytest.raises(StepFailed, match="x-correlator"):
        await default_library().run(
            world,
            'the response header "x-correlator" has same value as '
            'the request header "x-correlator"',
        )


async def test_two_legged_tokens_put_the_device_in_the_body(make_world: Any) -> None:
    world = make_world("device-reachability-status")
    await _sent(
        world,
        'the header "Authorization" is set to a valid access token '
        "which does not identify a single device",
        'the request "getReachabilityStatus" is sent',
    )
    assert world.sent_body == {"device": {"phoneNumber": "+34600000001"}}
    assert world.target.tokens.needs[-1].phone_number is None


async def test_three_legged_tokens_keep_the_device_out_of_the_body(make_world: Any) -> None:
    world = make_world("device-reachability-status")
    await _sent(
        world,
        "a valid testing device supported by the service, "
        "identified by the token or provided in the request body",
        'the request "getReachabilityStatus" is sent',
    )
    assert "device" not in world.sent_body
    need = world.target.tokens.needs[-1]
    assert (need.phone_number, need.scopes) == (
        "+34600000001",
        ("device-reachability-status:read",),
    )


async def test_invalid_tokens_are_tampered_valid_ones(make_world: Any) -> None:
    world = make_world("sim-swap")
    await _sent(
        world,
        'the header "Authorization" is set to an invalid access token',
        'the request "checkSimSwap" is sent',
    )
    assert world.sent_headers["Authorization"].startswith("Bearer header.payload.")
    assert world.sent_headers["Authorization"] != "Bearer header.payload.signature"


async def test_an_unmet_precondition_skips(make_world: Any) -> None:
    world = make_world("sim-swap")
    with pytest.raises(Unsupported):
        await default_library().run(world, "the phone number is not associated to any sim card")


async def test_undefined_steps_are_reported_not_ignored(make_world: Any) -> None:
    assert not await default_library().run(make_world("sim-swap"), "the moon is made of cheese")


def test_paths_read_and_write_nested_properties() -> None:
    body: dict[str, Any] = {}
    assign(body, "$.device.ipv4Address.publicPort", 70000)
    assert body == {"device": {"ipv4Address": {"publicPort": 70000}}}
    assert lookup([{"name": "QOS_E"}], "$[0].name") == "QOS_E"
    assign(body, "$.device", REMOVE)
    assert not present(body, "$.device")


def test_steps_are_matched_after_normalising_whitespace() -> None:
    assert normalise('And  the resource "/x"   |') == 'And the resource "/x"'
    assert normalise("that some types are supported") == "some types are supported"


def test_the_summary_line_counts_errors_as_failures() -> None:
    scenario = Scenario("sim-swap", "f", "n", ("@t",), (), None)
    report = ConformanceReport(
        [
            ScenarioResult(scenario, "passed"),
            ScenarioResult(scenario, "error", "undefined"),
            ScenarioResult(scenario, "skipped", "why"),
        ]
    )
    assert report.summary() == "conformance: 1 passed, 1 failed, 1 skipped"
    assert report.per_api() == [("sim-swap", 3, 1, 1, 1, 0)]


async def test_the_token_command_gets_the_need_as_environment() -> None:
    tokens = CommandTokens(
        'printf "%s|%s|%s" "$OGSIM_TOKEN_KIND" "$OGSIM_SCOPE" "$OGSIM_PHONE_NUMBER"'
    )
    need = TokenNeed(("sim-swap:check",), "dpv:FraudPreventionAndDetection", "+34600000001")
    assert await tokens.token(need) == (
        "three-legged|sim-swap:check dpv:FraudPreventionAndDetection|+34600000001"
    )
    with pytest.raises(Unsupported, match="cannot"):
        await CommandTokens("echo cannot >&2; exit 3").token(need)


def test_a_known_deviation_explains_only_its_own_step_of_its_own_scenario() -> None:
    from loadtests.conformance.deviations import Deviation, deviation_of

    row = Deviation("@outline", "reads $.b", '"$.b"')
    whole = Deviation("@single", "wants JSON on a 204", '"Content-Type" is "application/json"')
    known = [row, whole]

    def scenario(tag: str) -> Scenario:
        return Scenario("kyc-match", "f", "n", ("@kyc", tag), (), None)

    assert deviation_of(scenario("@outline"), 'the response property "$.b" is 1', known) is row
    assert deviation_of(scenario("@outline"), 'the response property "$.a" is 1', known) is None
    header = 'the response header "Content-Type" is "application/json"'
    assert deviation_of(scenario("@single"), header, known) is whole
    assert deviation_of(scenario("@single"), "the response status code is 204", known) is None
    assert deviation_of(scenario("@other"), 'the response property "$.b" is 1', known) is None


def test_deviations_are_counted_apart_from_failures() -> None:
    scenario = Scenario("qos-profiles", "f", "n", ("@t",), (), None)
    report = ConformanceReport(
        [
            ScenarioResult(scenario, "passed"),
            ScenarioResult(scenario, "deviates", "the scenario wants an array"),
            ScenarioResult(scenario, "failed", "status 500"),
        ]
    )
    assert report.failed == 1 and report.deviates == 1 and report.pass_rate == 0.5
    assert report.summary() == (
        "conformance: 1 passed, 1 failed, 0 skipped, 1 contradict their YAML")
    assert report.per_api() == [("qos-profiles", 3, 1, 1, 0, 1)]
