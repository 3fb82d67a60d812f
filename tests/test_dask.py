"""``--backend dask``: the same tables as ``--jobs 1``, on a LocalCluster on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from hccsim.simulator.cli import main  # noqa: E402
from tests.helpers import hccsim, parquet_files  # noqa: E402

SCENARIO = """\
name: dask-check
description: Small run for the Dask backend tests.
seed: 8080
replicates: 3
population: {preset: anchor_ramucirumab}
cohort: {size: 45, batch_size: 20, accrual_per_month: 3}
treatment: {sequence: [ramucirumab, regorafenib, cabozantinib]}
"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dask") / "dask.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module")
def single_core(scenario, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "run"
    assert main(["run", str(scenario), "--out", str(out), "--jobs", "1", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as local:
        yield local


def test_dask_cluster_gives_the_tables_of_one_core(scenario, single_core, cluster, tmp_path):
    out = tmp_path / "dask"
    args = [
        "run",
        str(scenario),
        "--out",
        str(out),
        "--backend",
        "dask",
        "--scheduler",
        cluster.scheduler_address,
        "--quiet",
    ]
    assert main(args) == 0
    assert parquet_files(out) == parquet_files(single_core)
    assert (out / "summary.json").read_text() == (single_core / "summary.json").read_text()


def test_dask_without_a_scheduler_starts_a_local_cluster(scenario, single_core, tmp_path):
    out = tmp_path / "local"
    res = hccsim(
        "run", str(scenario), "--out", str(out), "--backend", "dask", "--jobs", "2", "--quiet"
    )
    assert res.returncode == 0, res.stderr
    assert parquet_files(out) == parquet_files(single_core)


def test_scheduler_needs_the_dask_backend(scenario, tmp_path):
    res = hccsim(
        "run", str(scenario), "--out", str(tmp_path / "x"), "--scheduler", "tcp://127.0.0.1:1"
    )
    assert res.returncode == 2
    assert "--scheduler is for --backend dask" in res.stderr


@pytest.mark.slow
def test_unreachable_scheduler_is_a_clear_error(scenario, tmp_path):
    res = hccsim(
        "run",
        str(scenario),
        "--out",
        str(tmp_path / "x"),
        "--backend",
        "dask",
        "--scheduler",
        "tcp://127.0.0.1:9",
    )
    assert res.returncode == 2
    assert "cannot reach a Dask scheduler there" in res.stderr
    assert "Traceback" not in res.stderr
