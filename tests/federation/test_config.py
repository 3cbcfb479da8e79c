"""The federation config: the default is consistent; mistakes are named."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import ValidationError

from federation.config import (
    BRAND_NUMBER,
    PORTED_NUMBER,
    FederationConfig,
    default_federation,
    load_federation,
)
from federation.member import MemberOperator
from operators.config_file import ConfigFileError
from operators.core import CoreSpec, NetworkFunctionKind
from operators.integrator import GuardedExecutor, GuardSettings


def test_default_federation_shape(federation: FederationConfig) -> None:
    assert sorted({o.country for o in federation.operators}) == ["ES", "FR", "GB"]
    assert len(federation.aggregators) == 1
    assert federation.serving_party(PORTED_NUMBER) == "telco-es"
    assert federation.range_holder(PORTED_NUMBER) == "red-azul"
    gb = federation.operator("telco-gb")
    brand = gb.brand_of(BRAND_NUMBER)
    assert brand is not None and gb.owns(BRAND_NUMBER)
    assert gb.operator_config().id == "telco-gb"
    assert any(c.portability for c in federation.countries)


def test_round_trip_through_yaml(tmp_path: Path, federation: FederationConfig) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(federation.model_dump(mode="json")), encoding="utf-8")
    assert load_federation(path) == federation


def test_yaml_errors_name_file_line_and_field(tmp_path: Path) -> None:
    data = default_federation().model_dump(mode="json")
    data["operators"][1]["number_ranges"] = ["+3460"]  # telco-es's range
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigFileError, match=r"bad\.yaml:\d+: .*overlap"):
        load_federation(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ports": {"+33610000001": "telco-es"}}, "across countries"),
        ({"ports": {"+34990000001": "telco-es"}}, "no known number range"),
        ({"trust": ({"party": "telco-es", "trusts": "nobody"},)}, "unknown party"),
        ({"countries": ()}, "not declared"),
    ],
)
def test_inconsistencies_refused(
    federation: FederationConfig, change: dict[str, object], message: str
) -> None:
    data = federation.model_dump(mode="json")
    data.update(change)
    with pytest.raises(ValidationError, match=message):
        FederationConfig.model_validate(data)


def test_no_port_into_a_country_without_portability(federation: FederationConfig) -> None:
    data = federation.model_dump(mode="json")
    data["countries"][1]["other_networks"] = [
        {"id": "autre", "network": "20899", "number_ranges": ["+3370"]}]
    data["ports"] = {"+33700000001": "telco-fr"}
    with pytest.raises(ValidationError, match="no number portability"):
        FederationConfig.model_validate(data)


async def test_an_operators_core_reaches_each_replicas_backends(tmp_path: Path) -> None:
    """The modelled network of an operator is its own: sized in the federation's YAML, it is
    what each data centre's replica calls (the others keep the default)."""
    data = default_federation().model_dump(mode="json")
    data["operators"][0]["core"] = {"location_server": {
        "name": "gmlc", "kind": "location_server", "servers": 64, "queue_limit": 512,
        "service_time": {"distribution": "lognormal", "mean": 0.12, "sigma": 0.6},
    }}  # fmt: skip
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_federation(path)
    resized = config.operators[0]
    assert resized.core.location_server.servers == 64
    assert config.operators[1].core == CoreSpec()  # the others keep the default
    async with httpx.AsyncClient() as unused:
        member = MemberOperator.build(config, resized.id, unused, storage=str(tmp_path / "op.db"))
        try:
            assert len(member.replicas) == len(resized.data_centres) > 1
            for replica in member.replicas.values():
                function = replica.backends.functions[NetworkFunctionKind.LOCATION_SERVER]
                assert function.spec.servers == 64
                assert function.spec.capacity == 64 + 512
                hlr = replica.backends.functions[NetworkFunctionKind.SIM_DATA_REGISTER]
                assert hlr.spec == resized.core.sim_data_register  # untouched slot: default
        finally:
            member.close()


async def test_an_operators_protection_guards_each_replicas_backends(tmp_path: Path) -> None:
    """The integrator's protection of an operator's backends is set in the federation's YAML,
    as a scenario's policies set the simulation's; each replica's guards follow it."""
    data = default_federation().model_dump(mode="json")
    data["operators"][0]["protection"] = {
        "max_concurrent": 40, "max_waiting": 200, "max_wait": 0.4, "shed_target": 0.25,
        "breaker": {"minimum_number_of_calls": 30, "wait_duration_in_open_state": 2.0},
    }  # fmt: skip
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_federation(path)
    guarded = config.operators[0]
    assert config.operators[1].protection == GuardSettings()  # the others keep the default
    assert "protection" not in guarded.operator_config().model_dump()
    async with httpx.AsyncClient() as unused:
        member = MemberOperator.build(config, guarded.id, unused, storage=str(tmp_path / "op.db"))
        try:
            assert len(member.replicas) == len(guarded.data_centres) > 1
            for replica in member.replicas.values():
                executor = replica.integrator.execute
                assert isinstance(executor, GuardedExecutor)
                guard = executor.guards[NetworkFunctionKind.LOCATION_SERVER]
                assert guard.settings == guarded.protection
                assert guard.max_concurrent == 40
                assert guard.breaker.config.minimum_number_of_calls == 30
        finally:
            member.close()


def test_a_bad_protection_is_named_at_its_field(tmp_path: Path) -> None:
    data = default_federation().model_dump(mode="json")
    data["operators"][0]["protection"] = {"max_concurrent": 0}
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigFileError, match=r"protection\.max_concurrent"):
        load_federation(path)


def test_a_bad_core_is_named_at_its_field(tmp_path: Path) -> None:
    data = default_federation().model_dump(mode="json")
    data["operators"][0]["core"] = {"location_server": {"servers": 0}}
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigFileError, match=r"core\.location_server\.servers"):
        load_federation(path)


@pytest.mark.parametrize(("party", "key"), [("operators", "issuer"), ("aggregators", "issuer")])
def test_a_plain_http_issuer_off_loopback_is_named_at_its_key(
    tmp_path: Path, party: str, key: str
) -> None:
    """Partners fetch a party's keys and post assertions at its issuer: over plain http off
    loopback a man in the middle could read them or swap the keys."""
    data = default_federation().model_dump(mode="json")
    data[party][0][key] = "http://partner.example.net/oauth"
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigFileError,
                       match=rf"federation\.yaml:\d+: {party}\.0\.{key}: .*http:// is accepted"
                             r" only on a loopback host"):
        load_federation(path)


def test_a_plain_http_network_id_service_off_loopback_is_named_at_its_key(
    tmp_path: Path,
) -> None:
    """The aggregator sends a country's Network Id service subscribers' numbers."""
    data = default_federation().model_dump(mode="json")
    index = next(i for i, c in enumerate(data["countries"]) if c["network_id_url"])
    data["countries"][index]["network_id_url"] = "http://network-id.example.net"
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigFileError,
                       match=rf"countries\.{index}\.network_id_url: .*http:// is accepted"):
        load_federation(path)
    data["countries"][index]["network_id_url"] = "http://127.0.0.1:8004/countries/es"
    FederationConfig.model_validate(data)


def test_https_issuers_and_plain_http_ones_on_loopback_are_accepted() -> None:
    """``ogsim up`` runs every party on 127.0.0.1 over http; any host will do over https."""
    data = default_federation().model_dump(mode="json")
    data["operators"][0]["issuer"] = "http://127.0.0.1:8001/oauth"
    data["operators"][1]["issuer"] = "http://localhost:8002/oauth"
    data["operators"][2]["issuer"] = "https://telco-gb.example.net/oauth"
    data["aggregators"][0]["issuer"] = "http://[::1]:8004/oauth"
    config = FederationConfig.model_validate(data)
    assert config.issuer_of("hub") == "http://[::1]:8004/oauth"
