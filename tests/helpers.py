"""Shared helpers for the command-line tests: run hccsim in a child process, read a run's files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def hccsim(
    *args: str, fault: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``python -m hccsim.simulator ARGS`` in a child process; ``fault`` sets HCCSIM_FAULT."""
    env = dict(os.environ)
    env.pop("HCCSIM_FAULT", None)
    if fault:
        env["HCCSIM_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "hccsim.simulator", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def parquet_files(folder: Path) -> dict[str, bytes]:
    """Every parquet part of a run folder, by relative path, as bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted((folder / "cohort").rglob("*.parquet"))
    }
