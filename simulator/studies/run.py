"""``hccsim run``: simulate a scenario's replicates in parallel and write the run folder.

The folder (DESIGN section 9)::

    scenario.resolved.yaml   every default filled in, seed included; re-runnable as is
    provenance.json          version, seed, scenario hash, parameter set, library versions
    manifest.json            scenario hash, seed, version and the replicates finished
    cohort/<table>/part-<replicate>.parquet   one part per replicate and table
    summary.json             headline metrics across replicates

Work is cut into tasks of one batch of patients of one replicate and sent through joblib: in
this process (``--jobs 1``), to local worker processes (loky), or to a Dask cluster
(``--backend dask``). Workers return numpy column buffers; results come back in task order, and
the client checks each batch against the table contract, streams it to the replicate's parts
(``parts.py``) and keeps only the per-patient endpoints for the summary. Memory therefore stays
flat in the cohort size. Every number depends only on the seed, the replicate and the patient
index, so the folder is byte for byte the same whatever the backend, the number of workers or
the batch size.

``--resume`` finishes an interrupted run: it refuses when the scenario, seed or hccsim version
differ from the manifest, skips the replicates the manifest lists with all six parts present,
and redoes the rest (half-written parts are never trusted).
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from hccsim.analysis import schema
from hccsim.analysis.endpoints import data_cut, followed_beyond
from hccsim.analysis.summary import (
    concat_endpoints,
    metrics_from_endpoints,
    patient_endpoints,
    summarise,
)
from hccsim.simulator import __version__, cohort, parameters
from hccsim.simulator.engine import simulate_batch
from hccsim.simulator.errors import InputError
from hccsim.simulator.patient import Context
from hccsim.simulator.records import concat
from hccsim.simulator.scenario import Scenario
from hccsim.simulator.streams import check_seed, draw_root_seed
from hccsim.simulator.studies import faults
from hccsim.simulator.studies.parts import (
    MANIFEST,
    ReplicateWriter,
    complete_replicates,
    remove_temporaries,
    write_json,
)

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
RUN_FILES = (
    "scenario.resolved.yaml",
    "provenance.json",
    MANIFEST,
    "summary.json",
    "cohort",
    "error.log",
)
BACKENDS = ("loky", "dask")
#: The manifest's list of the replicates whose simulated follow-up ended before the calendar
#: data cut (``analysis.data_cut_months``) with patients alive: the cut was not reached.
CUT_NOT_REACHED = "data_cut_not_reached"


def unreached_cut(sc: Scenario) -> tuple[str, str]:
    """The scenario's data cut and why it can go unreached, as the notes of run, power,
    compare and sweep say them: ("analysis.data_cut_months: 20", "the simulated follow-up,
    ... ended before it with patients alive")."""
    a = sc.analysis
    if a.data_cut_months is not None:
        return f"analysis.data_cut_months: {a.data_cut_months:g}", (
            "the simulated follow-up, observation.max_follow_up_months "
            f"{sc.observation.max_follow_up_months:g}, ended before it with patients alive"
        )
    return f"analysis.data_cut_events: {a.data_cut_events}", (
        "fewer events in the whole simulated follow-up"
    )


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs for its tasks (small and picklable)."""

    ctx: Context  # the first arm's (the only one of a single-sequence scenario)
    preset: cohort.Preset
    root: int
    first_line: bool
    accrual_per_month: float | None
    criteria: cohort.Criteria
    arms: tuple[Context, ...] = ()  # a randomised trial's arms, in the scenario's order
    weights: tuple[int, ...] = ()  # their allocation weights
    block_multiple: int = 1
    stratify_by: tuple[str, ...] = ()
    accrual_ramp_up_months: float | None = None


def build_spec(scenario: Scenario, seed: int) -> RunSpec:
    params = parameters.resolve(scenario.parameters)
    preset = cohort.apply_overrides(
        cohort.presets()[scenario.population.preset], scenario.population.overrides
    )
    if scenario.population.prior_lines is not None:  # the scenario's own treatment streams
        preset = preset.model_copy(
            update={
                "index_line": None,
                "prior_lines": cohort.PriorLines(
                    streams=tuple(
                        cohort.Stream(prior=tuple(s.prior), weight=s.weight)
                        for s in scenario.population.prior_lines
                    ),
                    source="the scenario's population.prior_lines",
                ),
            }
        )
    first_line = scenario.cohort.entry == "first_line"
    streams = (
        preset.prior_lines.streams if preset.prior_lines is not None and not first_line else ()
    )

    def context(sequence, arm: str, death_hazard_ratio: float = 1.0) -> Context:
        return Context(
            params=params,
            sequence=tuple(params.drugs[d] for d in sequence),
            arm=arm,
            criterion=scenario.treatment.progression_criterion,
            imaging_interval=scenario.imaging_interval_days,
            imaging_window=scenario.observation.imaging_window_days,
            lab_interval=scenario.observation.lab_weeks * 7.0,
            labs_off_treatment=scenario.observation.labs_off_treatment,
            horizon=scenario.horizon_days,
            streams=tuple(s.prior for s in streams),
            history_known=first_line or preset.prior_lines is not None,
            death_hazard_ratio=death_hazard_ratio,
            label_restrictions=scenario.treatment.label_restrictions,
            enrolment_year=scenario.cohort.enrolment_year,
            treat_beyond_progression=scenario.treatment.treat_beyond_progression,
            assessor=scenario.observation.assessor,
        )

    criteria = preset.eligibility.merged(scenario.population.eligibility.criteria())
    t = scenario.treatment
    if t.arms is None:
        ctx = context(t.sequence, scenario.name)
        arms: tuple[Context, ...] = ()
    else:
        arms = tuple(context(a.sequence, a.name, a.death_hazard_ratio) for a in t.arms)
        ctx = arms[0]
    return RunSpec(
        ctx,
        preset,
        seed,
        first_line,
        scenario.cohort.accrual_per_month,
        criteria,
        arms=arms,
        weights=tuple(a.allocation for a in t.arms or ()),
        block_multiple=t.randomisation.block_multiple,
        stratify_by=tuple(t.randomisation.stratify_by),
        accrual_ramp_up_months=scenario.cohort.accrual_ramp_up_months,
    )


def check_eligibility(spec: RunSpec, source: str = "") -> None:
    """Refuse (exit 2) eligibility that almost no candidate meets, before any work is sent.

    4,000 candidates from a dedicated generator estimate the acceptance; below 1% the run would
    need more than 100 candidates per patient on average and would likely hit the cap of 1,000.
    """
    import numpy as np

    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(spec.root, spawn_key=(2**32 - 2,)))
    )
    joint, each = cohort.acceptance(spec.preset, spec.criteria, rng, spec.first_line)
    if joint >= 0.01:
        return
    worst = min(each, key=each.get) if each else "criteria"
    value = getattr(spec.criteria, worst, None)
    prefix = f"{source}: " if source else ""
    raise InputError(
        f"{prefix}population.eligibility.{worst}: {value!r} cannot be met in preset "
        f"{spec.preset.name!r}: {100 * each.get(worst, 0):.2g}% of drawn patients meet it, "
        f"{100 * joint:.2g}% meet all criteria (at least 1% are needed); loosen the criteria or "
        "choose another preset"
    )


def simulate_task(spec: RunSpec, replicate: int, start: int, stop: int):
    """One task: patients ``start .. stop-1`` of one replicate, as numpy columns."""
    if start == 0:
        faults.check("simulate", replicate)
    return simulate_batch(
        spec.ctx,
        spec.preset,
        root=spec.root,
        replicate=replicate,
        start=start,
        stop=stop,
        first_line=spec.first_line,
        accrual_per_month=spec.accrual_per_month,
        criteria=spec.criteria,
        design=spec if spec.arms else None,
        ramp_up_months=spec.accrual_ramp_up_months,
    )


@dataclass(frozen=True)
class TaskError:
    """What a failed task sends back instead of raising, so that a failure in one replicate
    does not discard the finished results of others still in flight."""

    message: str
    details: str
    input_error: bool = False


def guarded_task(spec: RunSpec, replicate: int, start: int, stop: int):
    try:
        return simulate_task(spec, replicate, start, stop)
    except cohort.EligibilityError as exc:  # bad input, not a failure: exit 2 in the client
        return TaskError(str(exc), "", input_error=True)
    except Exception as exc:  # reported by the client, with the replicate and patients
        import traceback

        return TaskError(f"{type(exc).__name__}: {exc}", traceback.format_exc())


class RunFailed(RuntimeError):
    """Some replicates failed; the others were written and are kept for --resume."""

    def __init__(self, failures: dict[int, TaskError]) -> None:
        self.failures = failures
        first = failures[min(failures)]
        reps = ", ".join(str(r) for r in sorted(failures))
        super().__init__(f"replicate(s) {reps} failed; the first: {first.message}")


def batches(n: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(n, i + size)) for i in range(0, n, size)]


# -- backends ---------------------------------------------------------------------------------
def local_jobs_max() -> int:
    """The most worker processes started on this machine: four per core (at least 8). More
    only queue for the same cores, and tens of thousands exhaust the system's semaphores."""
    return max(8, 4 * (os.cpu_count() or 1))


def _check_backend(jobs: int, backend: str, scheduler: str | None) -> None:
    if backend not in BACKENDS:
        raise InputError(
            f"--backend {backend!r} is not allowed; expected one of: {', '.join(BACKENDS)}"
        )
    if backend == "loky" and scheduler:
        raise InputError(
            "--scheduler is for --backend dask; add --backend dask or drop --scheduler"
        )
    local = backend == "loky" or not scheduler
    if local and jobs > local_jobs_max():
        raise InputError(
            f"--jobs {jobs} is not allowed; expected at most {local_jobs_max()} worker "
            f"processes on this machine ({os.cpu_count() or 1} cores), or -1 for all cores"
        )


@contextmanager
def executor(jobs: int = 1, backend: str = "loky", scheduler: str | None = None):
    """A function that maps :func:`simulate_task` over task tuples, yielding results in order.

    ``loky`` with one job runs in this process. ``dask`` uses the cluster at ``scheduler``
    (``tcp://host:8786``), or starts a local one with ``jobs`` single-threaded worker processes
    on 127.0.0.1 and closes it afterwards.
    """
    from joblib import Parallel, delayed, parallel_config

    def calls(spec, tasks):
        return (delayed(guarded_task)(spec, r, a, b) for r, a, b in tasks)

    _check_backend(jobs, backend, scheduler)
    if backend == "loky":
        if jobs == 1:
            yield lambda spec, tasks: (guarded_task(spec, r, a, b) for r, a, b in tasks)
        else:
            yield lambda spec, tasks: Parallel(n_jobs=jobs, backend="loky", return_as="generator")(
                calls(spec, tasks)
            )
        return
    client, cluster = _dask_client(jobs, scheduler)
    try:
        with parallel_config(backend="dask"):
            yield lambda spec, tasks: Parallel(n_jobs=-1, return_as="generator")(calls(spec, tasks))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextmanager
def mapper(jobs: int = 1, backend: str = "loky", scheduler: str | None = None):
    """Like :func:`executor`, for any picklable function: yields ``map(fn, argument tuples)``
    that returns the results in order (``hccsim compare`` and ``hccsim sweep``)."""
    from joblib import Parallel, delayed, parallel_config

    _check_backend(jobs, backend, scheduler)
    if backend == "loky":
        if jobs == 1:
            yield lambda fn, items: (fn(*args) for args in items)
        else:
            yield lambda fn, items: Parallel(n_jobs=jobs, backend="loky", return_as="generator")(
                delayed(fn)(*args) for args in items
            )
        return
    client, cluster = _dask_client(jobs, scheduler)
    try:
        with parallel_config(backend="dask"):
            yield lambda fn, items: Parallel(n_jobs=-1, return_as="generator")(
                delayed(fn)(*args) for args in items
            )
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _dask_client(jobs: int, scheduler: str | None):
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError(
            "--backend dask needs dask.distributed: pip install 'hccsim[dask]'"
        ) from None
    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(
                f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({exc}); "
                "expected an address such as tcp://10.0.0.5:8786"
            ) from None
    workers = jobs if jobs > 0 else None
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    return Client(cluster), cluster


def iter_batches(scenario: Scenario, seed: int, replicates: list[int], run_tasks) -> Iterator:
    """Yield ``(replicate, start, stop, tables)`` for every batch, in order."""
    spec = build_spec(scenario, seed)
    cuts = batches(scenario.cohort.size, scenario.cohort.batch_size)
    tasks = [(r, a, b) for r in replicates for a, b in cuts]
    for (r, a, b), tables in zip(tasks, run_tasks(spec, tasks), strict=True):
        yield r, a, b, tables


def simulate_replicates(
    scenario: Scenario,
    seed: int,
    replicates: list[int],
    *,
    jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
) -> Iterator[tuple[int, dict]]:
    """Yield ``(replicate, whole tables as numpy columns)`` in order (for in-memory use)."""
    size = scenario.cohort.size
    with executor(jobs, backend, scheduler) as run_tasks:
        pending: list = []
        for r, _, b, tables in iter_batches(scenario, seed, replicates, run_tasks):
            if isinstance(tables, TaskError):
                if tables.input_error:
                    raise InputError(tables.message)
                raise RunFailed({r: tables})
            pending.append(tables)
            if b == size:
                yield r, concat(pending)
                pending = []


# -- the run folder ----------------------------------------------------------------------------
def _encode(metrics: dict) -> dict:
    """A replicate's metrics for the manifest (strict JSON): a median not reached (inf) or a
    statistic that could not be formed (NaN) is written as the text "inf", "-inf" or "nan"."""
    return {k: v if math.isfinite(v) else str(v) for k, v in metrics.items()}


def _decode(metrics: dict) -> dict:
    """The manifest's metrics back as floats (inverse of :func:`_encode`)."""
    return {k: float(v) for k, v in metrics.items()}


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "not installed"
    return out


def make_folder(out: Path) -> None:
    """Create the output folder ``out`` (and its parents) and check that it takes files, so
    that a folder that cannot be made (a path through a file, a read-only place) is refused
    before any simulation rather than after it."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".hccsim-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise InputError(
            f"--out {out}: cannot create the folder or write in it ({why}); choose another --out"
        ) from None


def prepare_folder(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            hint = " or --resume to finish it" if (out / MANIFEST).exists() else ""
            raise InputError(
                f"--out {out}: the folder exists and is not empty; choose another --out, "
                f"add --overwrite to replace it{hint}"
            )
        if not (out / "provenance.json").exists():
            raise InputError(
                f"--out {out}: --overwrite only replaces an hccsim run folder, and this one has "
                "no provenance.json"
            )
        for name in RUN_FILES:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    make_folder(out)


def _read_manifest(out: Path) -> dict:
    path = out / MANIFEST
    if not path.is_file():
        raise InputError(f"--resume: {out} has no {MANIFEST}; there is no run to resume there")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(
            f"--resume: {path} cannot be read ({exc}); start again with --overwrite"
        ) from None
    if not isinstance(manifest, dict) or not {"hccsim", "seed", "scenario_hash", "done"} <= set(
        manifest
    ):
        raise InputError(
            f"--resume: {path} is not an hccsim manifest; start again with --overwrite"
        )
    return manifest


def _check_resumable(manifest: dict, scenario_hash: str, seed: int, n_rep: int, out: Path) -> None:
    differ = []
    if manifest["scenario_hash"] != scenario_hash:
        differ.append(
            f"the scenario (hash {manifest['scenario_hash'][:12]}… in the manifest, "
            f"{scenario_hash[:12]}… now)"
        )
    if manifest["seed"] != seed:
        differ.append(f"the seed ({manifest['seed']} in the manifest, {seed} now)")
    if manifest["hccsim"] != __version__:
        differ.append(
            f"the hccsim version ({manifest['hccsim']} in the manifest, {__version__} now)"
        )
    if differ:
        raise InputError(
            f"--resume: {out} was made with a different run: "
            + "; ".join(differ)
            + ". Resume with the same scenario, seed and version, or start again with --overwrite"
        )
    if n_rep < manifest.get("replicates", 0):
        raise InputError(
            f"--replicates {n_rep}: the run at {out} has {manifest['replicates']} replicates; "
            "resuming may keep or raise that number, not lower it"
        )


@dataclass(frozen=True)
class RunResult:
    out: Path
    seed: int
    replicates: int
    summary: dict
    resumed: int = 0  # replicates kept from an earlier run
    cut_not_reached: int = 0  # replicates whose follow-up ended before analysis.data_cut_months


def run(
    scenario: Scenario,
    out: str | Path,
    *,
    replicates: int | None = None,
    seed: int | None = None,
    jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    source: str = "",
) -> RunResult:
    """Simulate ``scenario`` and write (or finish, with ``resume``) its run folder at ``out``."""
    out = Path(out)
    if resume and overwrite:
        raise InputError("--resume and --overwrite contradict each other; choose one")
    manifest = _read_manifest(out) if resume else None
    if seed is None:
        seed = (
            scenario.seed
            if scenario.seed is not None
            else (manifest["seed"] if manifest else draw_root_seed())
        )
    seed = check_seed(seed)
    n_rep = (
        replicates
        if replicates is not None
        else max(scenario.replicates, manifest.get("replicates", 0) if manifest else 0)
    )
    resolved = scenario.model_copy(update={"seed": seed, "replicates": n_rep})
    scenario_hash = resolved.content_hash()
    check_eligibility(build_spec(resolved, seed), source)

    if manifest is not None:
        _check_resumable(manifest, scenario_hash, seed, n_rep, out)
        remove_temporaries(out)
        kept = complete_replicates(out, manifest)
        metrics = {int(r): _decode(m) for r, m in manifest["done"].items() if int(r) in kept}
        missed = {r for r in manifest.get(CUT_NOT_REACHED, []) if r in metrics}
    else:
        prepare_folder(out, overwrite)
        metrics, missed = {}, set()
        write_json(
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
    (out / "scenario.resolved.yaml").write_text(
        f"# Resolved from {source or 'a scenario'} by hccsim {__version__}: every default "
        "filled in.\n" + resolved.to_yaml()
    )
    cut = resolved.analysis.data_cut_months
    cut = None if cut is None else cut * 30.4375
    manifest = {
        "hccsim": __version__,
        "seed": seed,
        "scenario_hash": scenario_hash,
        "replicates": n_rep,
        "done": {str(r): _encode(m) for r, m in sorted(metrics.items())},
        **({CUT_NOT_REACHED: sorted(missed)} if cut is not None else {}),
    }
    write_json(out / MANIFEST, manifest)

    todo = [r for r in range(n_rep) if r not in metrics]
    size = resolved.cohort.size
    total, done_patients = len(todo) * size, 0
    interval = resolved.imaging_interval_days
    failures: dict[int, TaskError] = {}
    with executor(jobs, backend, scheduler) as run_tasks:
        writer, endpoints = None, []
        try:
            for r, a, b, tables in iter_batches(resolved, seed, todo, run_tasks):
                done_patients += b - a
                if r in failures:
                    continue
                if isinstance(tables, TaskError):  # keep going: other replicates may finish
                    if tables.input_error:
                        raise InputError(tables.message)
                    failures[r] = tables
                    if writer is not None:
                        writer.abort()
                    writer, endpoints = None, []
                    continue
                if writer is None:
                    writer = ReplicateWriter(out, r)
                    beyond = alive = False  # of the replicate's batches so far
                schema.validate(tables, where=f"replicate {r}, patients {a}-{b - 1}")
                writer.add(tables)
                seen = tables if cut is None else data_cut(tables, cut)
                endpoints.append(
                    patient_endpoints(
                        seen, scan_interval_days=interval, response_rule=resolved.response_rule
                    )
                )
                if cut is not None:
                    batch_beyond, batch_alive = followed_beyond(tables, cut)
                    beyond, alive = beyond or batch_beyond, alive or batch_alive
                if b == size:
                    writer.commit()
                    writer = None
                    metrics[r] = metrics_from_endpoints(concat_endpoints(endpoints))
                    endpoints = []
                    manifest["done"][str(r)] = _encode(metrics[r])
                    if cut is not None and alive and not beyond:
                        missed.add(r)
                        manifest[CUT_NOT_REACHED] = sorted(missed)
                    write_json(out / MANIFEST, manifest)
                if progress:
                    progress(done_patients, total)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    if failures:
        (out / "error.log").write_text(
            "\n\n".join(f"replicate {r}:\n{failures[r].details}" for r in sorted(failures))
        )
        raise RunFailed(failures)
    summary = {
        "scenario": resolved.name,
        "n": size,
        "replicates": n_rep,
        "seed": seed,
        "metrics": summarise([metrics[r] for r in range(n_rep)]),
    }
    write_json(out / "summary.json", summary)
    return RunResult(
        out, seed, n_rep, summary, resumed=n_rep - len(todo), cut_not_reached=len(missed)
    )
