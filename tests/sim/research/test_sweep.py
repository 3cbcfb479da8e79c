"""Sweeps: parsing --vary, the grid, and the same results locally, in processes and on Dask."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sim.replications import execute, run_task
from sim.sweep import parse_vary, plan_sweep, write_sweep_report


def test_vary_splits_at_top_level_commas_only() -> None:
    d = parse_vary("traffic.app.client.retry={policy: none},{policy: backoff, max_attempts: 3}")
    assert d.key == "traffic.app.client.retry"
    assert d.values == ({"policy": "none"}, {"policy": "backoff", "max_attempts": 3})
    assert parse_vary("seed=1,2,3").values == (1, 2, 3)
    with pytest.raises(ValueError, match="key=v1"):
        parse_vary("no-equals")


def test_grid_replications_and_seed_dimension(small: Path) -> None:
    plan = plan_sweep(
        small,
        [parse_vary("traffic.applications.app.arrival.rate=10,20"), parse_vary("seed=1,2")],
        replications=2,
    )
    assert len(plan.points) == 4 and len(plan.tasks) == 8
    rates = {t.scenario.traffic.applications["app"].arrival.rate for t in plan.tasks}
    assert rates == {10, 20}
    # Replication 0 keeps the point's seed; replication 1 derives its own.
    first, second = plan.tasks[0].scenario.seed, plan.tasks[1].scenario.seed
    assert first == 1 and second != 1
    assert plan.labels(3) == {"traffic.applications.app.arrival.rate": "20", "seed": "2"}


def _table(folder: Path) -> list[dict[str, str]]:
    with (folder / "sweep.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_sweep_on_a_dask_local_cluster_equals_the_local_run(small: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    plan = plan_sweep(
        small,
        [
            parse_vary("traffic.applications.app.arrival.rate=10,30"),
            parse_vary("topology.operators.telco-es.core.sim_data_register.servers=1,2"),
        ],
        replications=2,
    )
    local = execute(run_task, list(plan.tasks), workers=1)
    in_processes = execute(run_task, list(plan.tasks), workers=2)
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        seen: list[int] = []
        on_dask = execute(
            run_task, list(plan.tasks), scheduler=cluster.scheduler_address, done=seen.append
        )
    assert seen == list(range(1, len(plan.tasks) + 1))
    assert on_dask == local
    assert in_processes == local
    write_sweep_report(plan, local, tmp_path / "local", metric="goodput")
    write_sweep_report(plan, on_dask, tmp_path / "dask", metric="goodput")
    assert _table(tmp_path / "local") == _table(tmp_path / "dask")
    assert (tmp_path / "dask" / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = _table(tmp_path / "local")
    columns = {"expectation: goodput mean", "expectation: goodput low", "expectation: goodput high"}
    assert len(rows) == 4 and columns <= set(rows[0])


def test_one_dimension_draws_a_line_plot(small: Path, tmp_path: Path) -> None:
    plan = plan_sweep(small, [parse_vary("traffic.applications.app.arrival.rate=10,20")])
    digests = execute(run_task, list(plan.tasks), workers=1)
    _, metric, plot = write_sweep_report(plan, digests, tmp_path)
    assert metric == "availability" and plot == tmp_path / "sweep.png"
    with pytest.raises(ValueError, match="unknown metric"):
        write_sweep_report(plan, digests, tmp_path, metric="nonsense")
