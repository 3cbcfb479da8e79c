"""A URL that answers, but not as what the command asks (an OpenID provider, an operator's
admin API), is named in words with a non-zero exit: each of these ended in a JSONDecodeError
or a KeyError before. The answering server is a canned one on a loopback port of its own."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from joserfc.jwk import ECKey
from typer.testing import CliRunner

from sim.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "220"}

Answer = tuple[int, str, bytes]
"""A status, a content type and a body."""

NOT_JSON: Answer = (200, "text/html", b"<html><body>a web site</body></html>")
OTHER_JSON: Answer = (200, "application/json", b'{"hello": "world"}')
A_LIST: Answer = (200, "application/json", b"[1, 2, 3]")


@dataclass
class Canned:
    """A loopback HTTP server answering each path as told (404 otherwise)."""

    origin: str
    answers: dict[str, Answer] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)


@pytest.fixture
def canned() -> Iterator[Canned]:
    state = Canned("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            path = urlsplit(self.path).path
            state.asked.append(path)
            status, kind, body = state.answers.get(path, (404, "text/plain", b"not found"))
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815 (http.server's name)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.origin = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _said(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.jwk"
    path.write_text(json.dumps(ECKey.generate_key("P-256", private=True, auto_kid=True)
                               .as_dict(private=True)))
    return path


DISCOVERY = "/oauth/.well-known/openid-configuration"


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (NOT_JSON, "its answer is not JSON"),
        (OTHER_JSON, "has no issuer, token_endpoint"),
        (A_LIST, "not a JSON object"),
        ((200, "application/json", json.dumps({"issuer": "x", "token_endpoint": "y"}).encode()),
         "has no backchannel_authentication_endpoint"),
    ],
)
def test_token_names_an_issuer_that_is_no_openid_provider(
    canned: Canned, key_file: Path, answer: Answer, why: str
) -> None:
    canned.answers[DISCOVERY] = answer
    issuer = f"{canned.origin}/oauth"
    result = runner.invoke(app, ["token", "--issuer", issuer, "--client-id", "app",
                                 "--key", str(key_file)], env=WIDE)
    said = _said(result.output)
    assert result.exit_code == 2, said
    assert f"--issuer: {issuer} is not an OpenID provider" in said and why in said, said
    assert "Traceback" not in said and isinstance(result.exception, SystemExit | None)
    assert canned.asked == [DISCOVERY]


def test_token_says_so_when_the_token_answer_has_no_token(
    canned: Canned, key_file: Path
) -> None:
    """A provider's metadata, then a token endpoint answering 200 without an access_token."""
    issuer = f"{canned.origin}/oauth"
    endpoints = {name: f"{issuer}/{name}" for name in (
        "token_endpoint", "backchannel_authentication_endpoint", "introspection_endpoint",
        "revocation_endpoint")}
    metadata = json.dumps({"issuer": issuer, **endpoints}).encode()
    canned.answers[DISCOVERY] = (200, "application/json", metadata)
    canned.answers["/oauth/token_endpoint"] = (200, "application/json", b'{"ok": true}')
    result = runner.invoke(app, ["token", "--issuer", issuer, "--client-id", "app",
                                 "--key", str(key_file)], env=WIDE)
    said = _said(result.output)
    assert result.exit_code == 1, said
    assert f"{issuer} answered its token request wrongly:" in said, said
    assert "answered a success without an access_token" in said and "refused" not in said, said
    assert canned.asked == [DISCOVERY, "/oauth/token_endpoint"]


def test_invoices_names_a_url_that_is_no_operators_admin_api(canned: Canned) -> None:
    for answer, why in ((NOT_JSON, "no JSON object"), (OTHER_JSON, "no month, status, invoices"),
                        ((200, "application/json",
                          b'{"month": "2025-03", "status": "final", "invoices": [{"a": 1}]}'),
                         "invoices is not a list of invoice documents")):
        canned.answers["/admin/invoices"] = answer
        for form in ("table", "json", "csv"):
            result = runner.invoke(app, ["invoices", "--url", canned.origin, "--format", form],
                                   env=WIDE)
            said = _said(result.output)
            assert result.exit_code == 1, (form, said)
            assert (f"{canned.origin} did not answer as an ogsim operator's admin API ({why})"
                    in said), said
            assert isinstance(result.exception, SystemExit | None), result.exception


@pytest.mark.parametrize(
    ("command", "page", "report"),
    [
        (["funnel"], "/funnel", "funnel"),
        (["cohorts"], "/cohorts", "cohorts"),
        (["anomalies"], "/anomalies", "anomalies"),
        (["segments"], "/segments", "segments"),
        (["revenue"], "", "overview"),
    ],
)
def test_analytics_names_a_url_that_is_no_operators_admin_api(
    canned: Canned, command: list[str], page: str, report: str
) -> None:
    path = f"/portal/admin/analytics{page}"
    for answer, why in ((NOT_JSON, f"no {report} report"),
                        (OTHER_JSON, f"no {report} report"),
                        ((200, "application/json", json.dumps({"report": report}).encode()),
                         f"its {report} report has no ")):
        canned.answers[path] = answer
        result = runner.invoke(app, ["analytics", *command, "--url", canned.origin], env=WIDE)
        said = _said(result.output)
        assert result.exit_code == 1, said
        assert (f"{canned.origin} did not answer as an ogsim operator's admin API ({why}"
                in said), said
        assert isinstance(result.exception, SystemExit | None), result.exception


def test_analytics_says_what_a_foreign_server_refused_with(canned: Canned) -> None:
    """A refusal whose body is JSON but no object (the pages' own is one) is said, not a
    traceback."""
    canned.answers["/portal/admin/analytics/funnel"] = (400, "application/json", b"[1]")
    result = runner.invoke(app, ["analytics", "funnel", "--url", canned.origin], env=WIDE)
    said = _said(result.output)
    assert result.exit_code == 1 and "answered 400: [1]" in said, said
