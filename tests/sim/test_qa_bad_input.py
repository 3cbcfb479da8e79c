"""The QA commands refuse bad input by name and never report an earlier run, or a run that
checked nothing, as a success (``conformance``, ``loadtest``, ``reconcile``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from federation.ports import free_port_block
from loadtests import camara_dir
from loadtests.conformance import ConformanceReport, Scenario, ScenarioResult
from sim.cli import app
from sim.cli.qa import SHAPES

runner = CliRunner()

EARLIER = {
    "served": {"requests": 999, "rps": 9.0, "failures": 0, "failureRatio": 0.0, "p95": 12.0},
    "throttled": 0,
    "protective": 0,
}
"""An earlier run's summary, left in the folder a new run writes to."""


def _said(output: str) -> str:
    """The output with rich's error panel unwrapped, so a message reads as one line."""
    return " ".join(output.replace("│", " ").split())


@pytest.fixture
def definitions() -> Path:
    folder = camara_dir()
    if not folder.is_dir():
        pytest.skip(f"no CAMARA definitions at {folder}")
    return folder


class _NotFound(BaseHTTPRequestHandler):
    """Answers 404 to everything: a server that is up and serves no CAMARA API."""

    def _answer(self) -> None:
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer  # noqa: N815 - http.server's names

    def log_message(self, *_: object) -> None:
        """Quiet: the test reads the command's output, not the server's."""


@pytest.fixture
def answering() -> Iterator[str]:
    """An HTTP server on loopback that answers 404; its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_conformance_names_a_target_that_does_not_answer(definitions: Path) -> None:
    """Every scenario was skipped and the run exited 0; the dead URL was never mentioned."""
    url = f"http://127.0.0.1:{free_port_block(1)}"
    result = runner.invoke(app, ["conformance", "--base-url", url, "--token-command", "false",
                                 "--camara-dir", str(definitions), "--api", "sim-swap"])
    said = _said(result.output)
    assert result.exit_code == 2, said
    assert "--base-url" in said and f"{url} does not answer" in said
    assert "skipped" not in said


def test_conformance_names_a_token_command_that_never_gives_a_token(
    definitions: Path, answering: str
) -> None:
    result = runner.invoke(app, ["conformance", "--base-url", answering, "--token-command",
                                 "echo no such key >&2; exit 3", "--camara-dir",
                                 str(definitions), "--api", "sim-swap"])
    said = _said(result.output)
    assert result.exit_code == 2, said
    assert "--token-command" in said and "gave no token" in said and "no such key" in said


def test_conformance_refuses_a_malformed_base_url() -> None:
    for url in ("foo", "ftp://127.0.0.1/", "http://"):
        result = runner.invoke(app, ["conformance", "--base-url", url, "--token-command", "x"])
        said = _said(result.output)
        assert result.exit_code == 2 and "--base-url" in said and "not an http(s) URL" in said


def test_conformance_names_an_unknown_api_and_lists_the_known(tmp_path: Path) -> None:
    (tmp_path / "sim-swap").mkdir()
    (tmp_path / "sim-swap" / "sim-swap.yaml").write_text("openapi: 3.0.3\n")
    (tmp_path / "sim-swap" / "sim-swap-checkSimSwap.feature").write_text("Feature: x\n")
    result = runner.invoke(app, ["conformance", "--camara-dir", str(tmp_path), "--api",
                                 "sim-swap", "--api", "nope"])
    said = _said(result.output)
    assert result.exit_code == 2, said
    assert "--api" in said and "'nope'" in said and "known: sim-swap" in said


def test_conformance_in_which_nothing_passed_is_not_a_success(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every scenario skipped (no test numbers, say): 0 failed was reported as success."""
    scenario = Scenario("sim-swap", "f.feature", "n", ("@one",), (), "checkSimSwap")
    why = "no test number with role 'approves'"

    async def all_skipped(*_: object, **__: object) -> ConformanceReport:
        return ConformanceReport([ScenarioResult(scenario, "skipped", why)] * 3)

    monkeypatch.setattr("sim.cli.qa.run_conformance_command", all_skipped)
    result = runner.invoke(app, ["conformance", "--camara-dir", str(tmp_path)])
    said = _said(result.output)
    assert result.exit_code == 1, said
    assert "no scenario passed" in said and f"(3 of 3): {why}" in said


@pytest.fixture
def earlier_run(tmp_path: Path) -> Path:
    """A results folder holding an earlier run's files."""
    folder = tmp_path / "lt"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(EARLIER))
    (folder / "locust_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count,50%,95%,Requests/s\nGET,earlier,999,0,1,2,9.0\n"
    )
    (folder / "report.html").write_text("earlier")
    (folder / "reconciliation.json").write_text("{}")
    return folder


@pytest.fixture
def described(tmp_path: Path) -> Path:
    """A well-formed descriptor of a federation nobody is asked to serve."""
    path = tmp_path / "federation.json"
    path.write_text(json.dumps({"operators": [{
        "id": "telco-es", "country": "ES", "issuer": "http://127.0.0.1:9/oauth",
        "apiRoot": "http://127.0.0.1:9", "dataCentres": ["madrid"], "testNumbers": {}}]}))
    return path


def _no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_: object, **__: object) -> None:
        raise AssertionError("the load test started despite a bad option")

    monkeypatch.setattr("sim.cli.qa.federation_for_run", never)
    monkeypatch.setattr("sim.cli.qa.run_locust", never)


@pytest.mark.parametrize(
    ("args", "flag", "said"),
    [
        (["--user-class", "Nope"], "--user-class", "no user class 'Nope'; it offers AntiFraudApp"),
        (["--stop-timeout", "nan"], "--stop-timeout", "not a number of seconds >= 0"),
        (["--stop-timeout", "-1"], "--stop-timeout", "not a number of seconds >= 0"),
        (["--stop-timeout", "inf"], "--stop-timeout", "not a number of seconds >= 0"),
        (["--max-failure-ratio", "1.5"], "--max-failure-ratio", "not a share between 0 and 1"),
        (["--max-failure-ratio", "-0.1"], "--max-failure-ratio", "not a share"),
        (["--max-failure-ratio", "nan"], "--max-failure-ratio", "not a share"),
        (["--max-p95", "-1"], "--max-p95", "not a number of milliseconds >= 0"),
        (["--max-p95", "nan"], "--max-p95", "not a number of milliseconds >= 0"),
        (["--shape", "ramp"], "--shape", "one of step, spike, soak"),
        (["--locustfile", "/"], "--locustfile", "is a directory"),
        (["--locustfile", "/no/such/locustfile.py"], "--locustfile", "does not exist"),
    ],
)
def test_loadtest_refuses_a_bad_flag_before_anything_runs(
    args: list[str], flag: str, said: str, earlier_run: Path, described: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each was checked only inside Locust (or not at all: ``nan`` was a traceback, a ratio of
    2 a threshold never broken), and the earlier run's summary was printed as this one's."""
    _no_run(monkeypatch)
    result = runner.invoke(app, ["loadtest", "--descriptor", str(described), "--out",
                                 str(earlier_run), "--no-reconcile", *args])
    output = _said(result.output)
    assert result.exit_code == 2, output
    assert flag in output and said in output and "Traceback" not in output
    assert json.loads((earlier_run / "summary.json").read_text()) == EARLIER  # kept: not run


@pytest.mark.parametrize("where", ["directory", "missing", "corrupt"])
def test_loadtest_and_reconcile_name_a_bad_descriptor(
    where: str, tmp_path: Path, earlier_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory was an IsADirectoryError traceback."""
    _no_run(monkeypatch)
    path = {"directory": tmp_path, "missing": tmp_path / "none.json",
            "corrupt": tmp_path / "bad.json"}[where]
    (tmp_path / "bad.json").write_text("{")
    for command in ("loadtest", "reconcile"):
        result = runner.invoke(app, [command, "--descriptor", str(path), "--out",
                                     str(earlier_run)])
        said = _said(result.output)
        assert result.exit_code == 2, (command, said)
        assert "--descriptor" in said and str(path) in said and "Traceback" not in said


LOCUSTFILES = {
    "writes no summary": (
        "from locust import User, task\n"
        "class Quick(User):\n"
        "    @task\n"
        "    def stop(self) -> None:\n"
        "        self.environment.runner.quit()\n",
        "summary.json missing",
    ),
    "exits abnormally": (
        "import sys\n"
        "from locust import User, task\n"
        "if '--list' not in sys.argv:\n"
        "    sys.exit(3)\n"
        "class Quick(User):\n"
        "    @task\n"
        "    def stop(self) -> None:\n"
        "        self.environment.runner.quit()\n",
        "Locust exited with status 3",
    ),
    "makes no call": (
        "import json, os\n"
        "from pathlib import Path\n"
        "from locust import User, events, task\n"
        "class Quick(User):\n"
        "    @task\n"
        "    def stop(self) -> None:\n"
        "        self.environment.runner.quit()\n"
        "@events.quitting.add_listener\n"
        "def _summary(environment, **_) -> None:\n"
        "    served = {'requests': 0, 'rps': 0.0, 'failures': 0, 'failureRatio': 0.0,\n"
        "              'p95': 0.0}\n"
        "    summary = {'served': served, 'throttled': 0, 'protective': 0}\n"
        "    Path(os.environ['OGSIM_RESULTS'], 'summary.json').write_text(json.dumps(summary))\n",
        "Locust made no calls",
    ),
}


@pytest.mark.parametrize("case", sorted(LOCUSTFILES))
def test_loadtest_never_reports_an_earlier_or_an_empty_run(
    case: str, tmp_path: Path, earlier_run: Path, described: Path
) -> None:
    """The earlier run's summary was printed as this one's, exit 0; a run that made no call
    passed every threshold. Real Locust runs, whose users quit at once."""
    source, said = LOCUSTFILES[case]
    locustfile = tmp_path / "quick.py"
    locustfile.write_text(source)
    result = runner.invoke(app, ["loadtest", "--descriptor", str(described), "--out",
                                 str(earlier_run), "--locustfile", str(locustfile),
                                 "--no-reconcile", "--users", "1", "--run-time", "30s",
                                 "--stop-timeout", "0"])
    output = _said(result.output)
    assert result.exit_code == 2, output
    assert said in output and "999" not in output and "earlier" not in output
    assert not (earlier_run / "reconciliation.json").exists()
    assert not (earlier_run / "report.html").exists() or (
        "earlier" not in (earlier_run / "report.html").read_text())


def test_the_shapes_checked_are_the_locustfiles() -> None:
    from loadtests.shape_plans import PLANS

    assert set(SHAPES) == set(PLANS)


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("{not json", "cannot be read as a run file"),
        ("[]", "a JSON object is expected"),
        ('{"runId": 5}', "runId is missing or not a string"),
        ('{"runId": "r", "startedAt": "soon"}', "startedAt is not a number"),
        ('{"runId": "r", "baseline": []}', "baseline is not an object"),
        ('{"runId": "r", "baseline": {"telco-es": [{"clientId": 1}]}}', "baseline of telco-es"),
    ],
)
def test_reconcile_names_a_damaged_run_file(
    content: str, said: str, tmp_path: Path, described: Path
) -> None:
    """A JSONDecodeError or TypeError traceback before; now the file is named, exit 2."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(content)
    result = runner.invoke(app, ["reconcile", "--descriptor", str(described), "--out", str(run)])
    output = _said(result.output)
    assert result.exit_code == 2, output
    assert str(run / "run.json") in output and said in output and "Traceback" not in output


def test_reconcile_names_damaged_call_counters(tmp_path: Path, described: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"runId": "r"}')
    for content in ("garbage", '{"runId": "r", "node": "a"}'):
        (run / "calls-a.json").write_text(content)
        result = runner.invoke(app, ["reconcile", "--descriptor", str(described), "--out",
                                     str(run)])
        output = _said(result.output)
        assert result.exit_code == 2, output
        assert "calls-*.json cannot be added up" in output and "Traceback" not in output
