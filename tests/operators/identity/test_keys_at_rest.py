"""Signing keys are sealed at rest: no private key in the file, clear rows sealed on open, the
wrong or a missing key-encryption key refused with a clear message."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from operators.identity import KeyEncryptionKeyError, KeySealing
from operators.identity.keys import KeyRing
from operators.storage import Database

from .conftest import FakeClock


def ring(path: str, sealing: KeySealing | None = None) -> KeyRing:
    return KeyRing(Database(path), alg="ES256", clock=FakeClock(), retention=3600, sealing=sealing)


def stored(path: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT private_jwk FROM identity_signing_keys")]


def test_the_file_holds_no_private_key_and_the_same_key_opens_it(tmp_path: Path) -> None:
    path = str(tmp_path / "op.sqlite3")
    sealing = KeySealing.from_text(KeySealing.generate())
    first = ring(path, sealing)
    token = first.sign({"sub": "x"}, typ="JWT")
    rows = stored(path)
    assert rows and all(KeySealing.is_sealed(r) for r in rows)
    private_d = first.active().key.as_dict(private=True)["d"]
    assert all(str(private_d) not in r for r in rows)
    again = ring(path, sealing)
    assert again.active().kid == first.active().kid
    assert again.sign({"sub": "x"}, typ="JWT").split(".")[0] == token.split(".")[0]


def test_another_key_encryption_key_is_refused_at_start(tmp_path: Path) -> None:
    path = str(tmp_path / "op.sqlite3")
    ring(path, KeySealing.from_text(KeySealing.generate()))
    with pytest.raises(KeyEncryptionKeyError, match="sealed with another key-encryption key"):
        ring(path, KeySealing.from_text(KeySealing.generate()))
    with pytest.raises(KeyEncryptionKeyError):
        ring(path, KeySealing.development_key())


def test_keys_stored_in_clear_are_sealed_on_open_with_a_logged_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "old.sqlite3")
    clear = ring(path, KeySealing.development_key())
    kid = clear.active().kid
    jwk = json.dumps(dict(clear.active().key.as_dict(private=True)))
    with sqlite3.connect(path) as conn:  # as an ogsim before sealing wrote it
        conn.execute("UPDATE identity_signing_keys SET private_jwk = ? WHERE kid = ?",
                     (jwk, kid))
    sealing = KeySealing.from_text(KeySealing.generate())
    with caplog.at_level(logging.WARNING, logger="operators.identity.keys"):
        reopened = ring(path, sealing)
    # the access-token key in clear, the ID-token key under the development key: both resealed
    assert "2 signing key(s) were stored in clear" in caplog.text
    assert reopened.active().kid == kid
    assert all(KeySealing.is_sealed(r) for r in stored(path))
    assert ring(path, sealing).active().kid == kid  # and opens with that key from now on


def test_development_sealed_keys_move_under_a_real_key(tmp_path: Path) -> None:
    path = str(tmp_path / "demo.sqlite3")
    kid = ring(path, KeySealing.development_key()).active().kid
    sealing = KeySealing.from_text(KeySealing.generate())
    assert ring(path, sealing).active().kid == kid
    with pytest.raises(KeyEncryptionKeyError):
        ring(path, KeySealing.development_key())  # the development key opens nothing now


def test_the_rule_memory_may_use_the_development_key_a_served_file_may_not() -> None:
    assert KeySealing.for_database(":memory:", {}, required=True).development
    assert KeySealing.for_database("op.sqlite3", {}).development  # a library caller, a demo
    with pytest.raises(KeyEncryptionKeyError, match="OGSIM_KEY_ENCRYPTION_KEY"):
        KeySealing.for_database("op.sqlite3", {}, required=True)
    given = KeySealing.for_database("op.sqlite3", {KeySealing.ENV: KeySealing.generate()},
                                    required=True)
    assert not given.development
    with pytest.raises(KeyEncryptionKeyError, match="32 random bytes"):
        KeySealing.from_text("too-short")


def test_ogsim_serve_on_a_file_refuses_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KeySealing.ENV, raising=False)
    done = subprocess.run(
        [sys.executable, "-m", "sim.cli", "serve", "--port", "1", "--storage",
         str(tmp_path / "op.sqlite3")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "OGSIM_KEY_ENCRYPTION_KEY" in done.stdout + done.stderr
    assert not (tmp_path / "op.sqlite3").exists()
