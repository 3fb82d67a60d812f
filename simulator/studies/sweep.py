"""One scenario over a grid of values (``hccsim sweep``).

The scenario's ``sweep.grid`` maps up to three dotted paths to lists of values; every
combination (the first path varying slowest) is a point, validated as a scenario of its own
when the file is loaded (``scenario.sweep_points``). Every point is simulated with the same root
seed, so patient ``i`` of replicate ``r`` has the same baseline and latent biology at every point
and the points share common random numbers as far as the model allows (DESIGN section 6):
differences between points are far less noisy than between independent cohorts.

Two modes:

- summary (no ``power:`` section): per point, ``replicates`` replicates are simulated, censored
  at the point's ``analysis.data_cut_months``, and the metrics of ``analysis.summary``
  (``sweep.metrics``, default :data:`DEFAULT_METRICS`) summarised across replicates: mean, its
  Monte-Carlo standard error (SD / sqrt(R)), median and central 95% range. A randomised
  scenario's arms are pooled, as in ``hccsim run``.
- power (a ``power:`` section): per point, ``power.replicates`` trials as ``hccsim power``
  simulates them (``studies.power``): power by sample size with Wilson intervals, mean events,
  the effect estimate, and the sample size reaching ``power.target_power``.

Tasks are (point, replicate) pairs sent through ``run.mapper`` (loky or Dask); results come back
in task order, so every output is the same whatever the number of workers or the backend.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hccsim.analysis.endpoints import data_cut, followed_beyond
from hccsim.analysis.summary import (
    concat_endpoints,
    metrics_from_endpoints,
    patient_endpoints,
    summarise,
)
from hccsim.simulator import cohort
from hccsim.simulator.errors import InputError
from hccsim.simulator.scenario import (
    DAYS_PER_MONTH,
    Scenario,
    _point_label,
    sweep_points,
    validate_data,
)
from hccsim.simulator.streams import check_seed, draw_root_seed
from hccsim.simulator.studies import power as power_mod
from hccsim.simulator.studies.run import (
    batches,
    build_spec,
    check_eligibility,
    mapper,
    simulate_task,
    unreached_cut,
)

#: Metrics of a summary-mode sweep when ``sweep.metrics`` is not given.
DEFAULT_METRICS = (
    "os_median_months",
    "pfs_recist_median_months",
    "pfs_mrecist_median_months",
    "orr_recist",
    "orr_mrecist",
)
#: Per metric in sweep.csv and sweep.json, in this order.
STATISTICS = ("mean", "mc_se", "q025", "q975", "median")
#: Per sample size of a power-mode point (the fields of ``power.PowerRow``).
POWER_FIELDS = (
    "n",
    "replicates",
    "power",
    "mc_se",
    "wilson_low",
    "wilson_high",
    "mean_events",
    "mean_study_months",
    "estimate",
    "schoenfeld_power",
    "freedman_power",
)
OUTPUTS = ("scenario.resolved.yaml", "sweep.csv", "sweep.json", "figures/sweep.png", "report.html")

LABELS = {
    "os_median_months": "Median OS (months)",
    "pfs_recist_median_months": "Median PFS, RECIST 1.1 (months)",
    "pfs_mrecist_median_months": "Median PFS, mRECIST (months)",
    "ttp_recist_median_months": "Median TTP, RECIST 1.1 (months)",
    "orr_recist": "ORR, RECIST 1.1",
    "orr_mrecist": "ORR, mRECIST",
    "dcr_recist": "DCR, RECIST 1.1",
    "dcr_mrecist": "DCR, mRECIST",
    "grade3plus_ae": "Grade >= 3 adverse event",
    "dose_reduction": "Dose reduction",
    "discontinued_for_ae": "Discontinued for an adverse event",
}


def label(metric: str) -> str:
    return LABELS.get(metric, metric)


# -- planning -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """A validated sweep: the base scenario (seed and replicates resolved) and its points."""

    scenario: Scenario
    seed: int
    mode: str  # "summary" or "power"
    paths: list[str]
    points: list[dict[str, Any]]
    scenarios: list[Scenario]
    metrics: list[str]  # summary mode; empty in power mode
    source: str = "<scenario>"

    def replicates(self, i: int) -> int:
        sc = self.scenarios[i]
        return sc.power.replicates if self.mode == "power" else sc.replicates

    def patients(self, i: int) -> int:
        """Patients simulated per replicate of point ``i`` (for the progress bar)."""
        sc = self.scenarios[i]
        return sc.power.sample_sizes[-1] if self.mode == "power" else sc.cohort.size


def plan(
    scenario: Scenario,
    *,
    source: str = "<scenario>",
    replicates: int | None = None,
    seed: int | None = None,
    check: bool = True,
) -> Plan:
    """Validate the sweep of ``scenario`` and resolve its seed and replicates.

    ``replicates`` overrides ``replicates`` (summary mode) or ``power.replicates`` (power mode),
    also at points whose grid sets ``power.replicates``. ``check``: refuse (exit 2) a point
    whose eligibility almost no candidate meets, before any work is sent.
    """
    if scenario.sweep is None:
        sweep_points(scenario, source)  # raises the message that names the missing section
    mode = "power" if scenario.power is not None else "summary"
    if replicates is not None:
        data = scenario.model_dump(mode="json", exclude_none=True)
        if mode == "power":
            data["power"]["replicates"] = replicates
        else:
            data["replicates"] = replicates
        scenario = validate_data(data, f"{source} (with --replicates {replicates})")
    if seed is None:
        seed = scenario.seed if scenario.seed is not None else draw_root_seed()
    seed = check_seed(seed)
    scenario = scenario.resolved(seed)
    pairs = sweep_points(scenario, source)
    if replicates is not None and mode == "power":
        pairs = [
            (
                p,
                s.model_copy(
                    update={"power": s.power.model_copy(update={"replicates": replicates})}
                ),
            )
            for p, s in pairs
        ]
    for point, sc in pairs:
        where = f"{source}: sweep point {_point_label(point)}"
        if mode == "summary" and sc.analysis.data_cut_events is not None:
            swept = "analysis.data_cut_events" in point
            raise InputError(
                f"{where if swept else source}: analysis.data_cut_events: "
                f"{sc.analysis.data_cut_events} is not used by hccsim sweep without a power: "
                "section; expected a calendar cut (analysis.data_cut_months) or none"
            )
        if check:
            check_eligibility(build_spec(sc, seed), where)
    metrics = list(scenario.sweep.metrics or DEFAULT_METRICS) if mode == "summary" else []
    return Plan(
        scenario=scenario,
        seed=seed,
        mode=mode,
        paths=list(scenario.sweep.grid),
        points=[p for p, _ in pairs],
        scenarios=[s for _, s in pairs],
        metrics=metrics,
        source=source,
    )


# -- workers ------------------------------------------------------------------------------------
def replicate_tables(sc: Scenario, seed: int, replicate: int):
    """One replicate of ``sc`` as numpy columns, batch by batch (a generator)."""
    spec = build_spec(sc, seed)
    for a, b in batches(sc.cohort.size, sc.cohort.batch_size):
        yield simulate_task(spec, replicate, a, b)


def summary_replicate(
    sc: Scenario, seed: int, replicate: int, names: list[str]
) -> tuple[dict, bool]:
    """The metrics ``names`` of one replicate of ``sc`` at its calendar data cut (computed as
    ``hccsim run`` does: per batch, then joined), and whether that cut was not reached (the
    simulated follow-up ended before it with patients alive; ``endpoints.followed_beyond``,
    the batches' answers combined with or)."""
    cut = sc.analysis.data_cut_months
    parts = []
    beyond = alive = False
    for tables in replicate_tables(sc, seed, replicate):
        if cut is not None:
            batch_beyond, batch_alive = followed_beyond(tables, cut * DAYS_PER_MONTH)
            beyond, alive = beyond or batch_beyond, alive or batch_alive
            tables = data_cut(tables, cut * DAYS_PER_MONTH)
        parts.append(
            patient_endpoints(
                tables, scan_interval_days=sc.imaging_interval_days, response_rule=sc.response_rule
            )
        )
    metrics = metrics_from_endpoints(concat_endpoints(parts))
    # An ae_* term that never occurred is absent; summarise counts it 0.
    return {m: metrics[m] for m in names if m in metrics}, alive and not beyond


def _summary_task(sc: Scenario, seed: int, replicate: int, names: list[str]) -> tuple[dict, bool]:
    try:
        return summary_replicate(sc, seed, replicate, names)
    except cohort.EligibilityError as exc:  # bad input: a picklable InputError for the client
        raise InputError(str(exc)) from None


def _power_task(sc: Scenario, seed: int, replicate: int) -> np.ndarray:
    try:
        return power_mod.replicate_results(sc, seed, replicate)
    except cohort.EligibilityError as exc:
        raise InputError(str(exc)) from None


# -- simulation ---------------------------------------------------------------------------------
def mc_se(values: np.ndarray) -> float:
    """Monte-Carlo standard error of the mean, SD / sqrt(R); NaN with fewer than two replicates
    or any value not finite (a median not reached)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2 or not np.isfinite(v).all():
        return math.nan
    return float(np.std(v, ddof=1) / math.sqrt(len(v)))


def summarise_point(per_replicate: list[dict], names: list[str]) -> dict:
    """Per metric: mean, Monte-Carlo SE, central 95% range and median across replicates (None
    where not finite)."""
    stats = summarise(per_replicate)
    out = {}
    for m in names:
        fill = 0.0 if m.startswith(("ae_any_", "ae_g3_")) else math.nan
        se = mc_se(np.array([r.get(m, fill) for r in per_replicate], dtype=float))
        s = stats.get(m, {"mean": None, "median": None, "q025": None, "q975": None})
        out[m] = {
            "mean": s["mean"],
            "mc_se": se if math.isfinite(se) else None,
            "q025": s["q025"],
            "q975": s["q975"],
            "median": s["median"],
        }
    return out


@dataclass
class SweepResult:
    plan: Plan
    #: summary mode: per point, per metric the statistics of :data:`STATISTICS`
    summaries: list[dict] = field(default_factory=list)
    #: power mode: per point, one ``power.PowerRow`` per sample size, and n at target power
    power_rows: list[list] = field(default_factory=list)
    n_target: list[float] = field(default_factory=list)
    #: per point, the replicates in which the data cut was not reached: one count (summary
    #: mode), or one per sample size of ``power.sample_sizes`` (power mode: simulated trials)
    cut_not_reached: list[list[int]] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        p = self.plan
        out = []
        if p.mode == "summary" and any(s.treatment.arms for s in p.scenarios):
            out.append(
                "The scenario randomises patients to treatment.arms; as in hccsim run, the "
                "summary pools the arms (use hccsim compare or a power: section to contrast "
                "them)."
            )
        if p.mode == "summary" and any(
            s[m]["mean"] is None for s in self.summaries for m in p.metrics
        ):
            out.append(
                "A mean (and its Monte-Carlo SE) shown as n/a: in at least one replicate the "
                "median was not reached or the statistic could not be formed; the median and "
                "95% range across replicates are still given where defined."
            )
        for i, missed in enumerate(self.cut_not_reached):
            if any(missed):
                point, sc, total = p.points[i], p.scenarios[i], p.replicates(i)
                if p.mode == "summary":
                    counts = f"{missed[0]} of {total} replicates"
                else:
                    counts = ", ".join(
                        f"{k} of {total} simulated trials at n={n}"
                        for n, k in zip(sc.power.sample_sizes, missed, strict=True)
                        if k
                    )
                cut, why = unreached_cut(sc)
                out.append(
                    f"At {_point_label(point)}: {cut} was not reached in {counts} ({why}); "
                    "those are analysed with all their follow-up."
                )
        return out


def simulate_sweep(
    p: Plan,
    *,
    jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Simulate every (point, replicate) task; ``progress(done, total)`` counts patients."""
    tasks: list[tuple] = []
    owner: list[int] = []
    for i, sc in enumerate(p.scenarios):
        for r in range(p.replicates(i)):
            tasks.append((sc, p.seed, r, p.metrics) if p.mode == "summary" else (sc, p.seed, r))
            owner.append(i)
    fn = _summary_task if p.mode == "summary" else _power_task
    total = sum(p.patients(i) * p.replicates(i) for i in range(len(p.points)))
    per_point: list[list] = [[] for _ in p.points]
    done = 0
    with mapper(jobs, backend, scheduler) as run_map:
        results = run_map(fn, tasks)
        k = 0
        while True:
            try:
                value = next(results)
            except StopIteration:
                break
            except InputError as exc:  # bad input found by a worker: exit 2
                raise InputError(
                    f"{p.source}: sweep point {_point_label(p.points[owner[k]])}: {exc}"
                ) from None
            i = owner[k]
            per_point[i].append(value)
            k += 1
            done += p.patients(i)
            if progress:
                progress(done, total)
    result = SweepResult(p)
    for i, sc in enumerate(p.scenarios):
        if p.mode == "summary":
            result.summaries.append(summarise_point([m for m, _ in per_point[i]], p.metrics))
            result.cut_not_reached.append([sum(missed for _, missed in per_point[i])])
        else:
            trials = np.stack(per_point[i])
            missed = trials[:, :, power_mod.FIELDS.index("cut_not_reached")].sum(axis=0)
            result.cut_not_reached.append([int(k) for k in missed])
            rows = power_mod.summarise_power(sc, trials)
            result.power_rows.append(rows)
            result.n_target.append(power_mod.sample_size_at_target(sc, rows))
    return result


# -- outputs ------------------------------------------------------------------------------------
def _clean(x):
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def _cell(value: Any):
    """A swept value in a CSV cell: numbers and text as they are, lists and mappings as JSON."""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def _value_text(value: Any) -> str:
    return "none" if value is None else (value if isinstance(value, str) else json.dumps(value))


def sweep_frame(result: SweepResult):
    """sweep.csv: one row per point (per point and sample size in power mode)."""
    import pandas as pd

    p = result.plan
    rows = []
    for i, point in enumerate(p.points):
        base = {path: _cell(point[path]) for path in p.paths}
        if p.mode == "summary":
            row = dict(base)
            for m in p.metrics:
                for s in STATISTICS:
                    v = result.summaries[i][m][s]
                    row[f"{m}_{s}"] = math.nan if v is None else v
            rows.append(row)
        else:
            for r in result.power_rows[i]:
                row = dict(base)
                row.update({f: getattr(r, f) for f in POWER_FIELDS})
                row["n_for_target_power"] = result.n_target[i]
                rows.append(row)
    return pd.DataFrame(rows)


def sweep_json(result: SweepResult) -> dict:
    p = result.plan
    sc = p.scenario
    points = []
    for i, point in enumerate(p.points):
        missed = result.cut_not_reached[i]
        entry: dict[str, Any] = {
            "point": point,
            # replicates (summary mode) or trials per sample size (power mode)
            "data_cut_not_reached": missed[0] if p.mode == "summary" else missed,
        }
        if p.mode == "summary":
            entry["metrics"] = result.summaries[i]
            entry["replicates"] = p.replicates(i)
        else:
            entry["replicates"] = p.replicates(i)
            entry["rows"] = [
                {f: _clean(getattr(r, f)) for f in POWER_FIELDS} for r in result.power_rows[i]
            ]
            entry["n_for_target_power"] = _clean(result.n_target[i])
        points.append(entry)
    data: dict[str, Any] = {
        "scenario": sc.name,
        "mode": p.mode,
        "seed": p.seed,
        "replicates": sc.power.replicates if p.mode == "power" else sc.replicates,
        "paths": p.paths,
    }
    if p.mode == "summary":
        data["n"] = sc.cohort.size
        data["metrics"] = p.metrics
    else:
        pw = sc.power
        # A swept field (e.g. power.endpoint) varies by point: the top level gives "swept"
        # and each point carries its own value under its path.
        swept = {k.split(".", 1)[1] for k in p.paths if k.startswith("power.")}
        data.update(
            {
                k: "swept" if k in swept else getattr(pw, k)
                for k in ("endpoint", "test", "sides", "target_power")
            }
        )
    data["points"] = points
    data["notes"] = result.notes
    return data


def _groups(p: Plan) -> tuple[list[Any], list[tuple[str, list[int]]]]:
    """The values of the first path, and per combination of the other paths its label and the
    point indices in the order of the first path's values."""
    first, others = p.paths[0], p.paths[1:]
    xs = list(p.scenario.sweep.grid[first])
    groups: dict[str, list[int]] = {}
    for i, point in enumerate(p.points):
        key = ", ".join(f"{k.split('.')[-1]}={_value_text(point[k])}" for k in others)
        groups.setdefault(key, []).append(i)
    return xs, list(groups.items())


def _x_positions(values: list[Any]) -> tuple[np.ndarray, list[str] | None]:
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numeric:
        return np.asarray(values, dtype=float), None
    return np.arange(len(values), dtype=float), [_value_text(v) for v in values]


def _num(x) -> float:
    return math.nan if x is None else float(x)


def _summary_figure(result: SweepResult, path: Path, dpi: int) -> Path:
    from hccsim.analysis.figures import CURVE_COLOURS, _new_figure, _save, _style

    p = result.plan
    xs, groups = _groups(p)
    x, ticks = _x_positions(xs)
    span = float(x.max() - x.min()) or 1.0
    n = len(p.metrics)
    ncols = 1 if n == 1 else 2
    nrows = math.ceil(n / ncols)
    markers = ("o", "s", "^", "D", "v", "P", "X")
    with _style():
        fig = _new_figure((8.0 if ncols == 2 else 7.0, 1.0 + 3.0 * nrows))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for k, m in enumerate(p.metrics):
            ax = axes[k // ncols][k % ncols]
            for j, (name, idx) in enumerate(groups):
                colour = CURVE_COLOURS[j % len(CURVE_COLOURS)]
                s = [result.summaries[i][m] for i in idx]
                mean = np.array([_num(v["mean"]) for v in s])
                se = np.array([_num(v["mc_se"]) for v in s])
                lo = np.array([_num(v["q025"]) for v in s])
                hi = np.array([_num(v["q975"]) for v in s])
                ax.fill_between(x, lo, hi, color=colour, alpha=0.15, linewidth=0)
                dodge = (j - (len(groups) - 1) / 2) * 0.012 * span  # bars side by side
                ax.errorbar(
                    x + dodge, mean, yerr=np.nan_to_num(1.96 * se), color=colour, capsize=3,
                    marker=markers[j % len(markers)], markersize=4, linewidth=1.4,
                    label=name or "mean",
                )  # fmt: skip
            ax.set_title(label(m), fontsize=10)
            ax.set_xlabel(p.paths[0])
            if ticks is not None:
                ax.set_xticks(x, ticks)
            ax.grid(color="#DDDDDD", linewidth=0.6)
            if k == 0 and len(groups) > 1:
                ax.legend(fontsize=7)
        for k in range(n, nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        fig.suptitle(
            f"{p.scenario.name}: mean over {p.scenario.replicates} replicates "
            "(bars: Monte-Carlo 95% interval; band: central 95% of replicates)",
            fontsize=9,
        )
        return _save(fig, path, dpi)


def _power_figure(result: SweepResult, path: Path, dpi: int) -> Path:
    from hccsim.analysis.figures import CURVE_COLOURS, _new_figure, _save, _style

    p = result.plan
    markers = ("o", "s", "^", "D", "v", "P", "X")
    with _style():
        fig = _new_figure((7.5, 4.8))
        ax = fig.add_subplot()
        for i, point in enumerate(p.points):
            rows = result.power_rows[i]
            n = np.array([r.n for r in rows], dtype=float)
            pw = np.array([r.power for r in rows])
            err = np.array([pw - [r.wilson_low for r in rows], [r.wilson_high for r in rows] - pw])
            ax.errorbar(
                n, pw, yerr=np.clip(err, 0, None), capsize=3,
                color=CURVE_COLOURS[i % len(CURVE_COLOURS)], marker=markers[i % len(markers)],
                markersize=4, linewidth=1.4,
                label=", ".join(f"{k.split('.')[-1]}={_value_text(v)}" for k, v in point.items()),
            )  # fmt: skip
        target = p.scenario.power.target_power
        ax.axhline(
            target, color="#555555", linewidth=0.9, linestyle="--", label=f"target {target:g}"
        )
        ax.set_ylim(0, 1)
        ax.set_xlabel("Patients enrolled (n)")
        ax.set_ylabel("Power")
        pw = p.scenario.power
        ax.set_title(f"{p.scenario.name}: {_design(p)}", fontsize=11)
        ax.grid(color="#DDDDDD", linewidth=0.6)
        ax.legend(fontsize=7, ncol=2 if len(p.points) > 8 else 1, loc="lower right")
        return _save(fig, path, dpi)


def _fmt(x, digits: int = 3) -> str:
    return (
        "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"
    )


def _design(p: Plan) -> str:
    """ "TEST on ENDPOINT" of a power-mode sweep, naming what the grid varies."""
    pw = p.scenario.power
    test = "the test of each point" if "power.test" in p.points[0] else pw.test
    endpoint = "the endpoint of each point" if "power.endpoint" in p.points[0] else pw.endpoint
    return f"{test} on {endpoint}"


def _report_tables(result: SweepResult) -> dict:
    import pandas as pd

    p = result.plan
    rows = []
    for i, point in enumerate(p.points):
        base = {path: _value_text(point[path]) for path in p.paths}
        if p.mode == "summary":
            row = dict(base)
            for m in p.metrics:
                s = result.summaries[i][m]
                row[label(m)] = (
                    f"{_fmt(s['mean'])} ± {_fmt(s['mc_se'], 2)} "
                    f"({_fmt(s['q025'])}-{_fmt(s['q975'])})"
                )
            rows.append(row)
        else:
            for r in result.power_rows[i]:
                row = dict(base)
                row.update(
                    {
                        "n": str(r.n),
                        "Power": f"{r.power:.3f}",
                        "95% Wilson interval": f"{r.wilson_low:.3f}-{r.wilson_high:.3f}",
                        "Mean events": _fmt(r.mean_events),
                        "Estimate": _fmt(r.estimate),
                    }
                )
                rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["title"] = "Sweep"
    if p.mode == "summary":
        table.attrs["note"] = (
            f"Per point: mean across {p.scenario.replicates} replicates of "
            f"{p.scenario.cohort.size} patients ± its Monte-Carlo standard error (SD / sqrt(R)), "
            "then the central 95% range across replicates. Every point uses the same root seed "
            "(common random numbers). Medians in months, response rates as fractions."
        )
        return {"sweep": table}
    pw = p.scenario.power
    table.attrs["note"] = (
        "Per point and sample size: the share of simulated trials rejecting with the effect in "
        "the hypothesised direction, its 95% Wilson interval, the mean number of events of the "
        "primary endpoint and the median effect estimate (hazard ratio experimental vs control "
        f"for log-rank and Cox; RMST difference in days; the rate for single-arm tests). "
        f"{_design(p)}; trials nested by sample size as in hccsim power; the same "
        "root seed at every point."
    )
    targets = pd.DataFrame(
        [
            {
                **{path: _value_text(point[path]) for path in p.paths},
                f"n for power {pw.target_power:g}": "not reached"
                if not math.isfinite(result.n_target[i])
                else f"{result.n_target[i]:.0f}",
            }
            for i, point in enumerate(p.points)
        ]
    )
    targets.attrs["title"] = "Sample size at the target power"
    targets.attrs["note"] = (
        "Monotone interpolation of each point's power curve (power.target_power; 'not reached' "
        "within the largest sample size)."
    )
    return {"sweep": table, "sample_size": targets}


METHODS = (
    (
        "Grid and common random numbers",
        "Every combination of the values in sweep.grid is a point: the scenario with those "
        "values set, validated as a scenario of its own. All points are simulated with the same "
        "root seed, so each virtual patient has the same baseline and latent biology at every "
        "point and the same treatment-keyed random numbers where the treatment is the same; "
        "differences between points therefore carry much less Monte-Carlo noise than "
        "differences between independent cohorts.",
    ),
    (
        "Summary mode",
        "For each point and replicate the tables are censored at analysis.data_cut_months "
        "(when given) and the headline metrics computed as in hccsim run (Kaplan-Meier medians; "
        "best overall response under the point's analysis.stable_disease_min_weeks and "
        "analysis.confirm_responses). Across replicates: the mean with its "
        "Monte-Carlo standard error SD / sqrt(R) (the precision of the expected value; the "
        "figure shows mean +- 1.96 SE), and the central 95% range (how far one cohort of this "
        "size can stray).",
    ),
    (
        "Power mode",
        "With a power: section each point is a trial design, simulated as hccsim power does: "
        "each replicate is one trial at the largest sample size, the trial of size n its first "
        "n patients, the data cut and test of the point's scenario applied. Power is the share "
        "of trials rejecting with the effect in the hypothesised direction, with a 95% Wilson "
        "interval; the sample size at the target power by monotone interpolation.",
    ),
)


def write_outputs(out, result: SweepResult, provenance: dict, *, source: str = "", dpi: int = 120):
    """scenario.resolved.yaml, sweep.csv, sweep.json, figures/sweep.png and report.html in
    ``out`` (created if needed)."""
    from hccsim.analysis import report
    from hccsim.simulator import __version__

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    p = result.plan
    sc = p.scenario
    (out / "scenario.resolved.yaml").write_text(
        f"# Resolved from {source or 'a scenario'} by hccsim {__version__}: every default "
        "filled in.\n" + sc.to_yaml()
    )
    sweep_frame(result).to_csv(out / "sweep.csv", index=False)
    (out / "sweep.json").write_text(
        json.dumps(sweep_json(result), indent=2, allow_nan=False) + "\n"
    )
    draw = _summary_figure if p.mode == "summary" else _power_figure
    figure = draw(result, out / "figures" / "sweep.png", dpi)
    caption = (
        f"{label(p.metrics[0])} and the other metrics against {p.paths[0]}"
        if p.mode == "summary"
        else "Power by sample size at each point of the sweep; dashed: the target power"
    )
    report.write_report(
        out / "report.html",
        title=f"hccsim sweep: {sc.name}",
        subtitle=sc.description.strip().splitlines()[0],
        provenance=provenance,
        summary=None,
        headline=(),
        tables=_report_tables(result),
        figures={"sweep": (figure, caption)},
        notes=result.notes,
        methods=methods(sc, p.paths),
    )
    return out


def methods(sc: Scenario, paths) -> tuple[tuple[str, str], ...]:
    """The report's Methods: :data:`METHODS` and whose reading the responses and progression
    are (the scenario's ``observation.assessor``, or per point when the grid sweeps it)."""
    from hccsim.analysis.report import ASSESSOR_TEXT

    if "observation.assessor" in paths:
        reading = (
            "Whose reading the responses and progression are is swept (observation.assessor): "
            "at each point, the investigator's or a blinded independent central review's, as "
            "hccsim run describes them."
        )
    else:
        reading = ASSESSOR_TEXT[sc.observation.assessor].strip()
    return (*METHODS, ("Reading of scans", reading))


def text_table(result: SweepResult) -> str:
    """The short table ``hccsim sweep`` prints: per point the metric means and 95% ranges, or
    per point and sample size the power, and n at the target power."""
    p = result.plan
    sc = p.scenario
    heads = [path.split(".")[-1] for path in p.paths]
    values = [[_value_text(point[path]) for path in p.paths] for point in p.points]
    widths = [max(len(h), *(len(v[k]) for v in values)) for k, h in enumerate(heads)]

    def left(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))

    if p.mode == "summary":
        lines = [
            f"hccsim sweep '{sc.name}': {len(p.points)} points x {sc.replicates} replicate(s) "
            f"of {sc.cohort.size} patients, seed {p.seed} (summary mode)",
            "  mean (central 95% range across replicates)",
        ]
        cells = [
            [
                f"{_fmt(s['mean'])} ({_fmt(s['q025'])}-{_fmt(s['q975'])})"
                for s in (result.summaries[i][m] for m in p.metrics)
            ]
            for i in range(len(p.points))
        ]
        mw = [max(len(m), *(len(c[k]) for c in cells)) for k, m in enumerate(p.metrics)]
        lines.append(
            "  "
            + left(heads)
            + "  "
            + "  ".join(m.ljust(w) for m, w in zip(p.metrics, mw, strict=True))
        )
        for v, c in zip(values, cells, strict=True):
            lines.append(
                "  " + left(v) + "  " + "  ".join(x.ljust(w) for x, w in zip(c, mw, strict=True))
            )
        lines += [f"  note: {n}" for n in result.notes]
        return "\n".join(line.rstrip() for line in lines)
    pw = sc.power
    lines = [
        f"hccsim sweep '{sc.name}': {len(p.points)} points, {_design(p)}, "
        f"{pw.replicates} trials per size, seed {p.seed} (power mode)",
        "  " + left(heads) + "        n   power  (95% Wilson)      events  estimate",
    ]
    for i, v in enumerate(values):
        for r in result.power_rows[i]:
            lines.append(
                "  " + left(v) + f"  {r.n:7d}  {r.power:6.3f}  ({r.wilson_low:.3f}-"
                f"{r.wilson_high:.3f})  {r.mean_events:8.1f}  {_fmt(r.estimate):>8s}"
            )
    lines.append(f"  n for power {pw.target_power:g}:")
    for i, v in enumerate(values):
        n = result.n_target[i]
        lines.append(
            "  " + left(v) + "  " + ("not reached" if not math.isfinite(n) else f"{n:.0f} patients")
        )
    return "\n".join(line.rstrip() for line in lines)
