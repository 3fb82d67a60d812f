"""``hccsim run``: simulate a scenario's replicates in parallel and write the run folder.

The folder (DESIGN section 9)::

    scenario.resolved.yaml   every default filled in, seed included; re-runnable as is
    provenance.json          version, seed, scenario hash, parameter set, library versions
    manifest.json            scenario hash, seed, version and the replicates written
    cohort/<table>/part-<replicate>.parquet   one part per replicate and table
    summary.json             headline metrics across replicates

Work is cut into tasks of one batch of patients of one replicate, sent through joblib (loky on
local cores). Tasks come back in order; the client joins a replicate's batches, checks the
tables against the contract, writes each part atomically (a temporary file, then a rename) and
summarises it. Every number depends only on the seed, the replicate and the patient index, so
the folder is the same whatever the number of workers or the batch size.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from hccsim.analysis import schema
from hccsim.analysis.summary import summarise, summarise_replicate
from hccsim.simulator import __version__, cohort, parameters
from hccsim.simulator.engine import simulate_batch
from hccsim.simulator.errors import InputError
from hccsim.simulator.patient import Context
from hccsim.simulator.records import concat, to_arrow
from hccsim.simulator.scenario import Scenario
from hccsim.simulator.streams import check_seed, draw_root_seed

LIBRARIES = (
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "simpy",
    "joblib",
    "pydantic",
    "lifelines",
    "pyyaml",
)
RUN_FILES = ("scenario.resolved.yaml", "provenance.json", "manifest.json", "summary.json", "cohort")


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs for its tasks (small and picklable)."""

    ctx: Context
    preset: cohort.Preset
    root: int
    first_line: bool
    accrual_per_month: float | None


def build_spec(scenario: Scenario, seed: int) -> RunSpec:
    params = parameters.resolve(scenario.parameters)
    preset = cohort.apply_overrides(
        cohort.presets()[scenario.population.preset], scenario.population.overrides
    )
    ctx = Context(
        params=params,
        sequence=tuple(params.drugs[d] for d in scenario.treatment.sequence),
        arm=scenario.name,
        criterion=scenario.treatment.progression_criterion,
        imaging_interval=scenario.imaging_interval_days,
        imaging_window=scenario.observation.imaging_window_days,
        lab_interval=scenario.observation.lab_weeks * 7.0,
        horizon=scenario.horizon_days,
    )
    return RunSpec(
        ctx, preset, seed, scenario.cohort.entry == "first_line", scenario.cohort.accrual_per_month
    )


def simulate_task(spec: RunSpec, replicate: int, start: int, stop: int):
    """One task: patients ``start .. stop-1`` of one replicate, as numpy columns."""
    return simulate_batch(
        spec.ctx,
        spec.preset,
        root=spec.root,
        replicate=replicate,
        start=start,
        stop=stop,
        first_line=spec.first_line,
        accrual_per_month=spec.accrual_per_month,
    )


def batches(n: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(n, i + size)) for i in range(0, n, size)]


def simulate_replicates(
    scenario: Scenario,
    seed: int,
    replicates: list[int],
    *,
    jobs: int = 1,
    backend: str = "loky",
) -> Iterator[tuple[int, dict]]:
    """Yield ``(replicate, tables as numpy columns)`` in replicate order."""
    from joblib import Parallel, delayed

    spec = build_spec(scenario, seed)
    cuts = batches(scenario.cohort.size, scenario.cohort.batch_size)
    tasks = [(r, a, b) for r in replicates for a, b in cuts]
    if jobs == 1:
        results = (simulate_task(spec, r, a, b) for r, a, b in tasks)
    else:
        results = Parallel(n_jobs=jobs, backend=backend, return_as="generator")(
            delayed(simulate_task)(spec, r, a, b) for r, a, b in tasks
        )
    pending: list = []
    for (r, _, b), result in zip(tasks, results, strict=True):
        pending.append(result)
        if b == scenario.cohort.size:
            yield r, concat(pending)
            pending = []


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "not installed"
    return out


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def write_part(out: Path, table: str, replicate: int, columns) -> Path:
    """Write one table of one replicate atomically; returns the part's path."""
    import pyarrow.parquet as pq

    folder = out / "cohort" / table
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{replicate:05d}.parquet"
    tmp = folder / f".part-{replicate:05d}.parquet.tmp"
    pq.write_table(to_arrow(table, columns), tmp)
    os.replace(tmp, path)
    return path


def prepare_folder(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InputError(
                f"--out {out}: the folder exists and is not empty; choose another --out or add --overwrite"
            )
        if not (out / "provenance.json").exists():
            raise InputError(
                f"--out {out}: --overwrite only replaces an hccsim run folder, and this one has no provenance.json"
            )
        for name in RUN_FILES:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class RunResult:
    out: Path
    seed: int
    replicates: int
    summary: dict


def run(
    scenario: Scenario,
    out: str | Path,
    *,
    replicates: int | None = None,
    seed: int | None = None,
    jobs: int = 1,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    source: str = "",
) -> RunResult:
    """Simulate ``scenario`` and write its run folder to ``out``."""
    out = Path(out)
    seed = check_seed(
        seed
        if seed is not None
        else scenario.seed
        if scenario.seed is not None
        else draw_root_seed()
    )
    n_rep = replicates if replicates is not None else scenario.replicates
    resolved = scenario.model_copy(update={"seed": seed, "replicates": n_rep})
    prepare_folder(out, overwrite)
    (out / "scenario.resolved.yaml").write_text(
        f"# Resolved from {source or 'a scenario'} by hccsim {__version__}: every default filled in.\n"
        + resolved.to_yaml()
    )
    scenario_hash = resolved.content_hash()
    _write_json(
        out / "provenance.json",
        {
            "hccsim": __version__,
            "seed": seed,
            "scenario": resolved.name,
            "scenario_file": source,
            "scenario_hash": scenario_hash,
            "parameter_set": parameters.resolve().version,
            "libraries": library_versions(),
            "platform": platform.platform(),
            "command": " ".join(sys.argv),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    manifest = {
        "hccsim": __version__,
        "seed": seed,
        "scenario_hash": scenario_hash,
        "replicates": n_rep,
        "done": [],
    }
    _write_json(out / "manifest.json", manifest)

    per_replicate = []
    for r, tables in simulate_replicates(resolved, seed, list(range(n_rep)), jobs=jobs):
        schema.validate(tables, where=f"replicate {r}")
        for name, columns in tables.items():
            write_part(out, name, r, columns)
        per_replicate.append(
            summarise_replicate(tables, scan_interval_days=resolved.imaging_interval_days)
        )
        manifest["done"].append(r)
        _write_json(out / "manifest.json", manifest)
        if progress:
            progress(r + 1, n_rep)
    summary = {
        "scenario": resolved.name,
        "n": resolved.cohort.size,
        "replicates": n_rep,
        "seed": seed,
        "metrics": summarise(per_replicate),
    }
    _write_json(out / "summary.json", summary)
    return RunResult(out, seed, n_rep, summary)
