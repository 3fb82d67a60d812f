"""The same tables, byte for byte, under any environment: PYTHONHASHSEED, disturbed global
random states, batch sizes, worker counts and backends (Dask: test_dask.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import parquet_files

SCENARIO = """\
name: determinism
description: Same tables whatever the environment.
seed: 31337
replicates: 2
population: {{preset: anchor_ramucirumab}}
cohort: {{size: 70, batch_size: {batch}, accrual_per_month: 4}}
treatment: {{sequence: [ramucirumab, cabozantinib, regorafenib]}}
observation: {{max_follow_up_months: 30}}
parameters: {{toxicity: {{susceptibility_sd_log: 1.2}}}}
"""

# Seeds the legacy global generators and draws from them before running hccsim, so that any
# use of global random state inside hccsim would change the results.
DISTURB = """
import random, sys
import numpy as np
seed = int(sys.argv[1])
random.seed(seed); np.random.seed(seed)
random.random(); np.random.random(seed % 97 + 1)
from hccsim.simulator.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


def _run(tmp: Path, name: str, batch: int, jobs: int, hashseed: str, disturb: int) -> Path:
    scenario = tmp / f"{name}.yaml"
    scenario.write_text(SCENARIO.format(batch=batch))
    out = tmp / name
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            DISTURB,
            str(disturb),
            "run",
            str(scenario),
            "--out",
            str(out),
            "--jobs",
            str(jobs),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    return out


@pytest.mark.slow
def test_tables_are_byte_identical_under_any_environment(tmp_path):
    runs = [
        _run(tmp_path, "a", batch=1000, jobs=1, hashseed="0", disturb=1),
        _run(tmp_path, "b", batch=7, jobs=2, hashseed="12345", disturb=2),
        _run(tmp_path, "c", batch=33, jobs=1, hashseed="random", disturb=3),
        _run(tmp_path, "d", batch=70, jobs=2, hashseed="4294967295", disturb=4),
    ]
    reference = parquet_files(runs[0])
    assert len(reference) == 12  # six tables x two replicates
    for other in runs[1:]:
        assert parquet_files(other) == reference, other.name
