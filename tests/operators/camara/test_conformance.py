"""The served APIs against the official CAMARA definitions read from OGSIM_CAMARA_DIR."""

from __future__ import annotations

import re
import string
from typing import Any

import pytest
import yaml
from fastapi.routing import APIRoute

from loadtests.camara_definitions import camara_dir
from operators.camara import (
    OPERATION_SCOPES,
    build_camara_routers,
    correlator_pattern,
    operation_at,
)
from operators.camara.device_status import ReachabilityStatusResponse, RoamingStatusResponse
from operators.camara.kyc_match import KycMatchRequest, KycMatchResponse
from operators.camara.location import VerifyLocationRequest, VerifyLocationResponse
from operators.camara.quality_on_demand import CreateSession, SessionInfo
from operators.camara.sim_swap import CheckSimSwapInfo, SimSwapInfo
from operators.integrator import Integrator

CAMARA_DIR = camara_dir()
pytestmark = pytest.mark.skipif(
    not CAMARA_DIR.is_dir(), reason=f"CAMARA definitions not found at {CAMARA_DIR}"
)
FILES = [
    "sim-swap/sim-swap.yaml",
    "number-verification/number-verification.yaml",
    "device-status/device-reachability-status.yaml",
    "device-status/device-roaming-status.yaml",
    "location/location-verification.yaml",
    "location/location-retrieval.yaml",
    "quality-on-demand/quality-on-demand.yaml",
    "quality-on-demand/qos-profiles.yaml",
    "kyc/kyc-match.yaml",
    "consent-info/consent-info.yaml",
]


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CAMARA_DIR / name).read_text())


def _operations() -> dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]]:
    ops = {}
    for name in FILES:
        spec = _load(name)
        base = spec["servers"][0]["url"].replace("{apiRoot}", "")
        for path, methods in spec["paths"].items():
            for method, op in methods.items():
                ops[(method.upper(), base + path)] = (spec, op)
    return ops


def test_served_paths_and_methods_are_exactly_the_definitions(integrator: Integrator) -> None:
    served = {
        (method, route.path)
        for router in build_camara_routers(integrator)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert served == set(_operations())


def test_scopes_are_those_of_each_security_section() -> None:
    expected = {
        key: tuple(tuple(alt["openId"]) for alt in op["security"])
        for key, (_, op) in _operations().items()
    }
    assert expected == OPERATION_SCOPES


def _schema(spec: dict[str, Any], ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in ref_or_schema:
        return spec["components"]["schemas"][ref_or_schema["$ref"].split("/")[-1]]
    return ref_or_schema


def _properties(spec: dict[str, Any], schema: dict[str, Any]) -> tuple[set[str], set[str]]:
    """All property names and required names of a schema, following $ref and allOf."""
    schema = _schema(spec, schema)
    props, required = set(schema.get("properties", {})), set(schema.get("required", []))
    for part in schema.get("allOf", []):
        p, r = _properties(spec, part)
        props |= p
        required |= r
    return props, required


@pytest.mark.parametrize(
    ("key", "request_model", "response_model"),
    [
        (("POST", "/sim-swap/v2/check"), None, CheckSimSwapInfo),
        (("POST", "/sim-swap/v2/retrieve-date"), None, SimSwapInfo),
        (("POST", "/device-reachability-status/v1/retrieve"), None, ReachabilityStatusResponse),
        (("POST", "/device-roaming-status/v1/retrieve"), None, RoamingStatusResponse),
        (
            ("POST", "/location-verification/v3/verify"),
            VerifyLocationRequest,
            VerifyLocationResponse,
        ),
        (("POST", "/quality-on-demand/v1/sessions"), CreateSession, SessionInfo),
        (("POST", "/kyc-match/v0.3/match"), KycMatchRequest, KycMatchResponse),
    ],
)
def test_models_carry_the_fields_and_required_fields_of_the_yaml(
    key: tuple[str, str], request_model: Any, response_model: Any
) -> None:
    spec, op = _operations()[key]
    ok = next(code for code in op["responses"] if code.startswith("2"))
    schema = op["responses"][ok]["content"]["application/json"]["schema"]
    props, required = _properties(spec, schema)
    fields = set(response_model.model_fields)
    assert props == fields
    assert required == {n for n, f in response_model.model_fields.items() if f.is_required()} | (
        required & {"latestSimChange"}
    )
    if request_model is not None:
        body = op["requestBody"]["content"]["application/json"]["schema"]
        props, required = _properties(spec, body)
        assert props == set(request_model.model_fields) - {"from_"}
        assert required == {n for n, f in request_model.model_fields.items() if f.is_required()}


def _error_codes(spec: dict[str, Any], op: dict[str, Any], status: str) -> set[str]:
    response = op["responses"].get(status)
    if response is None:
        return set()
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].split("/")[-1]]
    schema = response["content"]["application/json"]["schema"]
    return set(schema["allOf"][1]["properties"]["code"]["enum"])


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [
        (("POST", "/sim-swap/v2/check"), "422", "UNNECESSARY_IDENTIFIER"),
        (("POST", "/sim-swap/v2/check"), "404", "IDENTIFIER_NOT_FOUND"),
        (("POST", "/sim-swap/v2/check"), "400", "OUT_OF_RANGE"),
        (("POST", "/device-roaming-status/v1/retrieve"), "422", "UNSUPPORTED_IDENTIFIER"),
        (
            ("POST", "/location-verification/v3/verify"),
            "422",
            "LOCATION_VERIFICATION.UNABLE_TO_FULFILL_MAX_AGE",
        ),
        (("POST", "/quality-on-demand/v1/sessions"), "409", "CONFLICT"),
        (
            ("POST", "/quality-on-demand/v1/sessions/{sessionId}/extend"),
            "409",
            "QUALITY_ON_DEMAND.SESSION_EXTENSION_NOT_ALLOWED",
        ),
        (("POST", "/kyc-match/v0.3/match"), "403", "INVALID_TOKEN_CONTEXT"),
        (
            ("POST", "/number-verification/v2/verify"),
            "403",
            "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK",
        ),
    ],
)
def test_error_codes_we_answer_are_declared(key: tuple[str, str], status: str, code: str) -> None:
    spec, op = _operations()[key]
    assert code in _error_codes(spec, op, status)


def _correlator_pattern(spec: dict[str, Any], op: dict[str, Any]) -> str:
    """The pattern of the operation's ``x-correlator`` parameter, following its $refs."""
    for parameter in op.get("parameters", []):
        if "$ref" in parameter:
            parameter = spec["components"]["parameters"][parameter["$ref"].split("/")[-1]]
        if parameter["name"] == "x-correlator":
            return str(_schema(spec, parameter["schema"])["pattern"])
    raise AssertionError("no x-correlator parameter")


PROBES = [
    *string.printable,
    "b4333c46-49c0-4f62-80d7-f0ef930f1c46",
    "a" * 55,
    "a" * 56,
    "a" * 256,
    "a" * 257,
    "urn:call/1",
    "{a;b}",
]


def test_each_operation_takes_the_correlators_its_yaml_takes() -> None:
    """Device Status and KYC Match declare a narrower x-correlator than CAMARA_common's; the
    gateway answers each operation's own (compared on probes: the texts of the patterns
    differ in how they escape a hyphen)."""
    narrower = set()
    for (method, path), (spec, op) in _operations().items():
        declared = re.compile(_correlator_pattern(spec, op))
        operation = operation_at(method, path)
        assert operation is not None
        served = operation.correlator
        for probe in PROBES:
            assert bool(served.match(probe)) == bool(declared.match(probe)), (path, probe)
        assert correlator_pattern(path) is served
        if not declared.match("a" * 56):
            narrower.add(operation.api)
    assert narrower == {"device-reachability-status", "device-roaming-status", "kyc-match"}
