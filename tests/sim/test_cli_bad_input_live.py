"""The live commands' bad input is named by its flag with exit 2, before anything starts:
``token --key`` (a JWK that cannot sign ES256), ``serve --storage`` (no SQLite database),
``up --descriptor`` (a path that cannot be written, though its permission bits pass) and
``calibrate --descriptor`` (missing, broken, or a federation that does not answer). Each of
these ended in a traceback before; a P-256 key without a ``kid`` is now used as it is."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, RSAKey
from typer.testing import CliRunner

from federation import fetch_access_token, load_client_key
from operators.config import example_operator
from operators.identity import KeySealing
from operators.operator import Operator, create_operator_app
from sim.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "220"}
UNUSED_ISSUER = "http://127.0.0.1:9/oauth"
"""Never asked: every key below is refused before a request is sent."""


def _said(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


def _never(*_: object, **__: object) -> None:
    raise AssertionError("the command went on despite a bad option")


def _p256(private: bool = True, kid: bool = True) -> dict[str, Any]:
    key = ECKey.generate_key("P-256", private=private, auto_kid=kid)
    return dict(key.as_dict(private=private))


def _without(data: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != name}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ({}, "kty is None"),
        (_without(_p256(), "crv"), "crv is None"),
        (RSAKey.generate_key(2048, private=True, auto_kid=True).as_dict(private=True),
         "kty is 'RSA'"),
        (ECKey.generate_key("P-384", private=True, auto_kid=True).as_dict(private=True),
         "crv is 'P-384'"),
        (_p256(private=False), "it is a public key"),
        ({**_p256(), "x": "not-a-coordinate"}, "not a P-256 private EC JWK"),
        ({**_p256(), "x": 5}, "x must be base64url text"),
        ([1, 2], "the file holds no JSON object"),
    ],
)
def test_token_names_a_key_that_cannot_sign(tmp_path: Path, content: object, why: str) -> None:
    path = tmp_path / "app.jwk"
    path.write_text(json.dumps(content))
    result = runner.invoke(app, ["token", "--issuer", UNUSED_ISSUER, "--client-id", "app",
                                 "--key", str(path)], env=WIDE)
    said = _said(result.output)
    assert result.exit_code == 2, said
    assert f"--key: cannot read the key {path}" in said and why in said, said
    if not isinstance(content, list):
        assert "not a P-256 private EC JWK" in said, said
    assert isinstance(result.exception, SystemExit | None), result.exception


async def test_a_p256_key_without_a_kid_gets_a_token(tmp_path: Path) -> None:
    """A JWK's ``kid`` is optional: the assertion then names none, and the operator tries
    the client's registered keys (joserfc refused a header ``kid`` of None before)."""
    private = _p256(kid=False)
    path = tmp_path / "app.jwk"
    path.write_text(json.dumps(private))
    operator = Operator.from_config(example_operator())
    try:
        operator.identity.register_client({
            "client_id": "kidless-app", "client_name": "no kid",
            "jwks": {"keys": [_without(private, "d")]}, "grant_types": ["client_credentials"],
            "scope": "sim-swap:check", "purposes": ["dpv:FraudPreventionAndDetection"],
        })
        transport = httpx.ASGITransport(app=create_operator_app(operator))
        async with httpx.AsyncClient(transport=transport) as http:
            answer = await fetch_access_token(
                operator.issuer, "kidless-app", load_client_key(path),
                "sim-swap:check dpv:FraudPreventionAndDetection", http=http,
            )
    finally:
        operator.close()
    assert answer["token_type"] == "Bearer" and answer["access_token"]


@pytest.fixture
def sealed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key-encryption key, so that ``serve`` gets as far as opening ``--storage``; and no
    server ever started."""
    monkeypatch.setenv(KeySealing.ENV, KeySealing.generate())
    monkeypatch.setattr("sim.cli.live.serve_until_stopped", _never)


def test_serve_names_a_storage_that_is_no_database(tmp_path: Path, sealed: None) -> None:
    other = tmp_path / "operator.yaml"
    other.write_text("id: telco-es\n")
    for storage, why in ((tmp_path, "is a folder; give a database file name"),
                         (other, "cannot be the operator's SQLite database (file is not a"),
                         (Path("/proc/ogsim-x.db"), "cannot be the operator's SQLite database")):
        result = runner.invoke(app, ["serve", "--storage", str(storage), "--port", "9"],
                               env=WIDE)
        said = _said(result.output)
        assert result.exit_code == 2, said
        assert f"--storage: {storage} " in said and why in said, said
        assert isinstance(result.exception, SystemExit | None), result.exception
    assert other.read_text() == "id: telco-es\n"  # the wrong file is left as it was


@pytest.mark.parametrize("host", ["999.1.1.1", "10.0.0", "::g", "1::2::3", ""])
def test_serve_names_a_host_that_is_no_address(host: str, sealed: None) -> None:
    """Before, ``999.1.1.1`` was refused as reachable from other machines."""
    result = runner.invoke(app, ["serve", "--host", host, "--port", "9"], env=WIDE)
    said = _said(result.output)
    assert result.exit_code == 2, said
    assert f"--host: {host!r} is not an IP address" in said, said


def test_up_probes_its_descriptor_before_any_party_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/proc passes the permission bits for root, and the descriptor used to be written only
    once every party was up: they were started, then all stopped by a traceback."""
    monkeypatch.setattr("sim.cli.live.FederationProcesses.prepare", _never)
    result = runner.invoke(app, ["up", "--descriptor", "/proc/ogsim-federation.json"],
                           env=WIDE)
    said = _said(result.output)
    assert result.exit_code == 2 and "--descriptor" in said, said
    assert isinstance(result.exception, SystemExit | None), result.exception
    fresh = tmp_path / "new" / "federation.json"
    result = runner.invoke(app, ["up", "--descriptor", str(fresh)], env=WIDE)
    assert isinstance(result.exception, AssertionError)  # probed, then on to the parties
    assert not fresh.exists()  # the probe left no empty descriptor behind


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: a connection there is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_calibrate_names_its_descriptor(tmp_path: Path, closed_port: int) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("not json")
    down = tmp_path / "down.json"
    origin = f"http://127.0.0.1:{closed_port}"
    down.write_text(json.dumps({"operators": [{
        "id": "telco-es", "country": "ES", "issuer": f"{origin}/oauth", "apiRoot": origin,
        "dataCentres": ["madrid"], "testNumbers": {}}]}))
    out = tmp_path / "calibration"
    for descriptor, why, code in (
        (tmp_path / "none.json", "no federation descriptor at", 2),
        (broken, "is not a federation descriptor", 2),
        (down, f"cannot measure the federation in {down} (", 2),
    ):
        result = runner.invoke(app, ["calibrate", "--descriptor", str(descriptor), "--quick",
                                     "--no-federation", "--no-what-if", "--out", str(out)],
                               env=WIDE)
        said = _said(result.output)
        assert result.exit_code == code, said
        assert f"--descriptor: {why}" in said or f"--descriptor: {descriptor}" in said, said
        assert why in said and isinstance(result.exception, SystemExit | None), said
        if descriptor is not down:
            assert not out.exists()  # refused before the out folder was made
