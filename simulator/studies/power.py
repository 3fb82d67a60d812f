"""Simulation-based power and sample size (``hccsim power``).

Each replicate is one trial simulated once at the largest sample size; the trial of size ``n``
is its first ``n`` patients by index (entry times and arms depend only on the index, so the
designs are nested: the power curve costs one simulation, not one per size, and is monotone up
to Monte-Carlo noise). For each size the scenario's data cut (``analysis.data_cut_months`` after
the study start, or ``analysis.data_cut_events`` events of the primary endpoint among those
``n`` patients; none: the whole simulated follow-up) is applied as censoring
(``analysis.endpoints.data_cut``), the primary endpoint computed, and the test of
``power.test`` applied (``analysis.power``). Rejection is counted only with the effect in the
hypothesised direction (experimental better), also for two-sided tests.

Replicates run in parallel (joblib); each returns a few numbers per size, so memory stays small
whatever the number of replicates. Results are identical for any number of workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hccsim.analysis import power as stats
from hccsim.analysis.endpoints import (
    data_cut,
    followed_beyond,
    overall_survival,
    progression_free_survival,
)
from hccsim.simulator.records import concat
from hccsim.simulator.scenario import Scenario
from hccsim.simulator.studies.run import batches, build_spec, simulate_task

DAYS_PER_MONTH = 30.4375
#: Per size and replicate: rejected, estimate, events, study months, patients analysed, and 1
#: when the data cut was not reached (the whole simulated follow-up analysed instead).
FIELDS = ("reject", "estimate", "events", "study_months", "n_analysed", "cut_not_reached")


@dataclass(frozen=True)
class PowerRow:
    n: int
    replicates: int
    power: float
    mc_se: float
    wilson_low: float
    wilson_high: float
    mean_events: float
    mean_study_months: float
    estimate: float  # median across replicates of the effect estimate (HR, RMST days, rate)
    schoenfeld_power: float
    freedman_power: float


def _subset(tables: dict, n: int) -> dict:
    """The first ``n`` patients (by index) of one replicate's tables."""
    out = {}
    for name, cols in tables.items():
        keep = np.asarray(cols["patient_id"]) < n
        out[name] = {c: np.asarray(v)[keep] for c, v in cols.items()}
    return out


def _event_times(tables: dict, sc: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Calendar days of the primary endpoint's events and each patient's entry (for an
    event-driven cut)."""
    ep = _endpoint(tables, sc)
    entry = np.asarray(tables["patients"]["entry_day"], dtype=float)
    if ep is None:  # a rate endpoint: the cut counts deaths
        ep = overall_survival(tables)
    return np.sort(entry[ep.events] + ep.durations[ep.events]), entry


def _endpoint(tables: dict, sc: Scenario):
    p = sc.power
    interval = sc.imaging_interval_days
    if p.endpoint == "os":
        return overall_survival(tables)
    if p.endpoint in ("pfs_recist", "pfs_mrecist", "pfs_rate_recist", "pfs_rate_mrecist"):
        crit = "mrecist" if p.endpoint.endswith("mrecist") else "recist1.1"
        return progression_free_survival(tables, crit, scan_interval_days=interval)
    return None


def _cut(tables: dict, sc: Scenario) -> tuple[dict, float, bool]:
    """The tables at the scenario's data cut, the cut's calendar day (inf: none) and whether
    the cut was reached (``endpoints.followed_beyond``; True without a cut)."""
    a = sc.analysis
    if a.data_cut_months is not None:
        day = a.data_cut_months * DAYS_PER_MONTH
        beyond, alive = followed_beyond(tables, day)
        return data_cut(tables, day), day, beyond or not alive
    if a.data_cut_events is not None:
        times, _ = _event_times(tables, sc)
        if len(times) < a.data_cut_events:
            return tables, math.inf, False  # fewer events ever: analysed at the end of follow-up
        day = float(times[a.data_cut_events - 1]) + 1e-9
        return data_cut(tables, day), day, True
    return tables, math.inf, True


def _study_months(tables: dict, cut_day: float) -> float:
    pt = tables["patients"]
    if math.isfinite(cut_day):
        return cut_day / DAYS_PER_MONTH
    end = np.asarray(pt["entry_day"], dtype=float) + np.asarray(
        pt["last_follow_up_day"], dtype=float
    )
    return float(end.max()) / DAYS_PER_MONTH if len(end) else math.nan


def analyse_trial(tables: dict, sc: Scenario) -> tuple[float, ...]:
    """One trial's result: the :data:`FIELDS`."""
    cut_tables, cut_day, reached = _cut(tables, sc)
    return (*_test(cut_tables, cut_day, sc), float(not reached))


def _test(cut_tables: dict, cut_day: float, sc: Scenario) -> tuple[float, ...]:
    """The test on the tables at the data cut: (rejected, estimate, events, study months,
    patients analysed)."""
    p = sc.power
    pt = cut_tables["patients"]
    n = len(pt["patient_id"])
    months = _study_months(cut_tables, cut_day)
    if p.test in ("one_sample_logrank", "binomial"):
        if p.test == "binomial":
            responders, evaluable = _rate(cut_tables, sc)
            if evaluable == 0:  # nobody evaluable at the cut: no test, no rejection
                return 0.0, math.nan, 0.0, months, 0.0
            r = stats.single_arm_test(
                "binomial", responders=responders, n=evaluable, p0=p.benchmark_rate,
                alpha=p.alpha, sides=p.sides,
            )  # fmt: skip
            return float(r.reject), r.estimate, float(responders), months, float(evaluable)
        ep = _endpoint(cut_tables, sc)
        cumhaz = stats.exponential_cumhaz(ep.durations, p.benchmark_median_months * DAYS_PER_MONTH)
        r = stats.single_arm_test(
            "one_sample_logrank", durations=ep.durations, events=ep.events,
            expected_cumhaz=cumhaz, alpha=p.alpha, sides=p.sides,
        )  # fmt: skip
        return float(r.reject), r.estimate, float(ep.events.sum()), months, float(n)
    ep = _endpoint(cut_tables, sc)
    control = sc.treatment.arms[0].name
    arm = (np.asarray(pt["arm"], dtype=object) != control).astype(np.int64)
    strata = None
    if p.test == "stratified_logrank":
        strata = np.asarray(pt["stratum"], dtype=object).astype(str)
    tau = p.rmst_months * DAYS_PER_MONTH if p.test == "rmst" else None
    r = stats.two_arm_test(
        p.test, ep.durations, ep.events, arm, strata=strata, alpha=p.alpha, sides=p.sides,
        tau=tau,
    )  # fmt: skip
    return float(r.reject), r.estimate, float(ep.events.sum()), months, float(n)


def _rate(tables: dict, sc: Scenario) -> tuple[int, int]:
    """Responders (or patients progression-free at the landmark) and the evaluable patients."""
    p = sc.power
    if p.endpoint.startswith("orr"):
        crit = "mrecist" if p.endpoint.endswith("mrecist") else "recist1.1"
        bor = sc.response_rule.best(tables, crit)
        return int(np.isin(bor, ("CR", "PR")).sum()), len(bor)
    # Landmark PFS rate: progression-free and followed at the landmark = success; progression
    # or death before it = failure; censored before it = not evaluable (left out).
    ep = _endpoint(tables, sc)
    t = p.landmark_months * DAYS_PER_MONTH
    success = ep.durations >= t
    failure = ep.events & (ep.durations < t)
    return int(success.sum()), int((success | failure).sum())


def replicate_results(sc: Scenario, seed: int, replicate: int) -> np.ndarray:
    """One replicate: a (sizes x FIELDS) array."""
    sizes = sc.power.sample_sizes
    spec = build_spec(sc, seed)
    nmax = sizes[-1]
    tables = concat(
        [simulate_task(spec, replicate, a, b) for a, b in batches(nmax, sc.cohort.batch_size)]
    )
    out = np.empty((len(sizes), len(FIELDS)))
    for i, n in enumerate(sizes):
        out[i] = analyse_trial(_subset(tables, n) if n < nmax else tables, sc)
    return out


def _chunk(sc: Scenario, seed: int, reps: list[int]) -> list[np.ndarray]:
    return [replicate_results(sc, seed, r) for r in reps]


def simulate_power(
    sc: Scenario,
    seed: int,
    *,
    jobs: int = 1,
    progress=None,
    backend: str = "loky",
    scheduler: str | None = None,
) -> np.ndarray:
    """Every replicate's results: an array (replicates x sizes x FIELDS), in replicate order
    whatever ``jobs`` and ``backend`` (``loky``: local processes; ``dask``: a local cluster of
    ``jobs`` workers, or the one at ``scheduler``)."""
    from hccsim.simulator.studies.run import mapper

    n_rep = sc.power.replicates
    chunk = max(1, min(50, n_rep // (4 * max(jobs, 1)) or 1))
    groups = [list(range(a, min(a + chunk, n_rep))) for a in range(0, n_rep, chunk)]
    done = 0
    results: list[np.ndarray] = []
    with mapper(jobs, backend, scheduler) as pmap:
        for part in pmap(_chunk, [(sc, seed, g) for g in groups]):
            results.extend(part)
            done += len(part)
            if progress:
                progress(done, n_rep)
    return np.stack(results)


def _allocation(sc: Scenario) -> float:
    """The experimental share of patients (for the closed forms)."""
    if sc.treatment.arms is None:
        return 0.5
    w = [a.allocation for a in sc.treatment.arms]
    return w[1] / sum(w)


def summarise_power(sc: Scenario, results: np.ndarray) -> list[PowerRow]:
    p = sc.power
    rows = []
    share = _allocation(sc)
    for i, n in enumerate(p.sample_sizes):
        r = results[:, i, :]
        power, se, lo, hi = stats.power_estimate(r[:, 0].astype(bool))
        est = r[:, 1]
        finite = est[np.isfinite(est)]
        estimate = float(np.median(finite)) if len(finite) else math.nan
        events = float(np.mean(r[:, 2]))
        closed = (math.nan, math.nan)
        # Closed forms for the benefit the simulation shows (HR below 1, some events).
        if (
            p.test in ("logrank", "stratified_logrank", "cox_wald")
            and 0 < estimate < 1
            and events > 0
        ):
            closed = (
                stats.schoenfeld_power(estimate, events, p.alpha, p.sides, share),
                stats.freedman_power(estimate, events, p.alpha, p.sides, share),
            )
        rows.append(
            PowerRow(
                n=int(n),
                replicates=len(r),
                power=power,
                mc_se=se,
                wilson_low=lo,
                wilson_high=hi,
                mean_events=events,
                mean_study_months=float(np.mean(r[:, 3])),
                estimate=estimate,
                schoenfeld_power=closed[0],
                freedman_power=closed[1],
            )
        )
    return rows


def sample_size_at_target(sc: Scenario, rows: list[PowerRow]) -> float:
    return stats.sample_size_for_power(
        [r.n for r in rows], [r.power for r in rows], sc.power.target_power
    )


def power_frame(rows: list[PowerRow]):
    """The power table as a pandas DataFrame (power.csv)."""
    import pandas as pd

    return pd.DataFrame([r.__dict__ for r in rows])


def _figure(sc: Scenario, rows: list[PowerRow], n_target: float, path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    n = [r.n for r in rows]
    ax.fill_between(n, [r.wilson_low for r in rows], [r.wilson_high for r in rows],
                    color="#56B4E9", alpha=0.35, label="95% Wilson interval")  # fmt: skip
    ax.plot(n, [r.power for r in rows], "o-", color="#0072B2", label="simulated power")
    if any(math.isfinite(r.schoenfeld_power) for r in rows):
        ax.plot(n, [r.schoenfeld_power for r in rows], "s--", color="#D55E00",
                label="Schoenfeld (simulated HR and events)")  # fmt: skip
        ax.plot(n, [r.freedman_power for r in rows], "^:", color="#009E73",
                label="Freedman (simulated HR and events)")  # fmt: skip
    ax.axhline(sc.power.target_power, color="#555555", lw=0.8, ls="--")
    if math.isfinite(n_target):
        ax.axvline(n_target, color="#555555", lw=0.8, ls=":")
        ax.annotate(f"n = {n_target:.0f}", (n_target, sc.power.target_power),
                    textcoords="offset points", xytext=(5, -15))  # fmt: skip
    ax.set_ylim(0, 1)
    ax.set_xlabel("Patients enrolled (n)")
    ax.set_ylabel("Power")
    p = sc.power
    ax.set_title(f"{sc.name}: {p.test} on {p.endpoint}, alpha {p.alpha:g} ({p.sides}-sided)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})


def write_outputs(out, sc: Scenario, seed: int, rows: list[PowerRow], provenance: dict):
    """power.json, power.csv, figures/power_curve.png and report.html in ``out``."""
    import json
    from pathlib import Path

    from hccsim.analysis import report

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    n_target = sample_size_at_target(sc, rows)
    frame = power_frame(rows)
    frame.to_csv(out / "power.csv", index=False)

    def clean(x):
        return None if isinstance(x, float) and not math.isfinite(x) else x

    data = {
        "scenario": sc.name,
        "seed": seed,
        "replicates": sc.power.replicates,
        "endpoint": sc.power.endpoint,
        "test": sc.power.test,
        "alpha": sc.power.alpha,
        "sides": sc.power.sides,
        "target_power": sc.power.target_power,
        "n_for_target_power": clean(n_target),
        "rows": [{k: clean(v) for k, v in r.__dict__.items()} for r in rows],
    }
    (out / "power.json").write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    figure = out / "figures" / "power_curve.png"
    _figure(sc, rows, n_target, figure)
    shown = frame.copy()
    for c in ("power", "mc_se", "wilson_low", "wilson_high", "schoenfeld_power", "freedman_power"):
        shown[c] = shown[c].map(lambda v: "" if not math.isfinite(v) else f"{v:.3f}")
    for c in ("mean_events", "mean_study_months", "estimate"):
        shown[c] = shown[c].map(lambda v: "" if not math.isfinite(v) else f"{v:.3g}")
    target = "not reached" if not math.isfinite(n_target) else f"{n_target:.0f} patients"
    shown.attrs["title"] = "Power by sample size"
    shown.attrs["note"] = (
        f"{sc.power.replicates} simulated trials per size, nested (the first n patients of each "
        f"replicate). Power: share rejecting with the effect in the hypothesised direction; MC "
        f"SE and 95% Wilson interval. estimate: median across replicates of the effect (hazard "
        f"ratio, experimental vs control, for log-rank and Cox; RMST difference in days; the "
        f"rate for single-arm tests). Schoenfeld and Freedman: closed-form power for that "
        f"hazard ratio and the mean number of events. Target power {sc.power.target_power:g}: "
        f"{target} (monotone interpolation)."
    )
    if sc.power.endpoint != "os":
        shown.attrs["note"] += " " + report.ASSESSOR_TEXT[sc.observation.assessor].strip()
    report.write_report(
        out / "report.html",
        title=f"hccsim power: {sc.name}",
        subtitle=sc.description.strip().splitlines()[0],
        provenance=provenance,
        summary=None,
        headline=(),
        tables={"power": shown},
        figures={"power_curve": (figure, "Simulated power by sample size with closed forms")},
    )
    return n_target
