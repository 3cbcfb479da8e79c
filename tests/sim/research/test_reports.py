"""Reports: report.html is one file with every plot embedded; replications and compare."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import typer
from typer.testing import CliRunner

from sim.cli import app
from sim.cli.simulate import compare, run, sweep

PNG = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects image sources and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.links.append(value)
                if tag == "img":
                    self.images.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _embedded_pngs(page: _Page) -> list[bytes]:
    prefix = "data:image/png;base64,"
    assert all(src.startswith(prefix) for src in page.images)
    return [base64.b64decode(src[len(prefix) :], validate=True) for src in page.images]


def _commands() -> typer.Typer:
    research = typer.Typer()
    research.command("run")(run)
    research.command("sweep")(sweep)
    research.command("compare")(compare)
    return research


def test_run_writes_one_self_contained_html_with_every_plot(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["run", str(small), "--out", str(out), "--set", "traffic.applications.app.arrival.rate=15"],
    )
    assert result.exit_code == 0, result.output
    page = _page(out / "report.html")
    pngs = _embedded_pngs(page)
    plots = sorted(out.glob("*.png"))
    assert len(pngs) == len(plots) == 4
    assert sorted(pngs) == sorted(p.read_bytes() for p in plots)
    assert all(png.startswith(PNG) for png in pngs)
    assert all(link.startswith("data:") for link in page.links)  # nothing fetched
    text = " ".join(page.text)
    for needle in (
        "Scenario as run",
        "traffic.applications.app.arrival.rate",
        "slow hlr",
        "availability",
        "PASS",
        "Little's law",
    ):
        assert needle in text


def test_replications_judge_on_the_interval_and_say_so(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "reps"
    result = CliRunner().invoke(
        _commands(), ["run", str(small), "--replications", "3", "--workers", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "judged on its 95 % interval" in result.output
    page = _page(out / "report.html")
    assert len(_embedded_pngs(page)) == len(list(out.glob("*.png"))) == 3
    text = " ".join(page.text)
    assert "Student-t" in text and "UNDECIDED" in text and "whole interval" in text
    lines = (out / "replications.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 3 and lines[1].startswith("default,0,3,")  # replication 0: seed 3


def test_a_failing_interval_exits_1(small: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _commands(),
        [
            "run",
            str(small),
            "--replications",
            "2",
            "--workers",
            "1",
            "--out",
            str(tmp_path),
            "--set",
            "traffic.applications.app.arrival.rate=2",
        ],
    )
    assert result.exit_code == 1, result.output  # goodput ≈ 2 < 5


def test_compare_two_runs(small: Path, tmp_path: Path) -> None:
    runner, commands = CliRunner(), _commands()
    for name, rate in (("a", "10"), ("b", "30")):
        result = runner.invoke(
            commands,
            [
                "run",
                str(small),
                "--out",
                str(tmp_path / name),
                "--set",
                f"traffic.applications.app.arrival.rate={rate}",
            ],
        )
        assert result.exit_code == 0, result.output
    target = tmp_path / "ab.html"
    result = runner.invoke(
        commands, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert "goodput_per_second" in result.output
    page = _page(target)
    assert len(_embedded_pngs(page)) == 1
    assert "B - A" in " ".join(page.text)
    png = tmp_path / "ab.png"
    result = runner.invoke(
        commands, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(png)]
    )
    assert result.exit_code == 0 and png.read_bytes().startswith(PNG)
    # a folder that is no capacity run, or a summary damaged by hand: named, never a traceback
    summary = tmp_path / "b" / "summary.json"
    document = json.loads(summary.read_text())
    for damaged, said in (
        ({"scenario": "x", "days": 30}, "not the folder of a capacity scenario's run"),
        ({**document, "variants": {"default": {"totals": []}}}, "summary.json is damaged"),
        ("[1, 2", "summary.json is not JSON"),
    ):
        summary.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
        refused = runner.invoke(commands, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
        assert refused.exit_code == 2 and said in " ".join(refused.output.split()), refused.output
        assert "Traceback" not in refused.output


def test_sweep_command_writes_table_heatmap_and_report(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    result = CliRunner().invoke(
        _commands(),
        [
            "sweep",
            str(small),
            "--vary",
            "traffic.applications.app.arrival.rate=10,20",
            "--vary",
            "seed=1,2",
            "--workers",
            "1",
            "--metric",
            "goodput",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert {"sweep.csv", "runs.csv", "summary.json", "heatmap.png", "report.html"} <= {
        p.name for p in out.iterdir()
    }
    assert len(_embedded_pngs(_page(out / "report.html"))) == 1
