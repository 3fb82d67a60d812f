"""Treatment sequences compared on the same virtual patients (``hccsim compare``).

Every patient of every replicate receives every arm of ``treatment.arms``: the allocation and
randomisation of a trial are ignored, and patient ``i`` of replicate ``r`` has the same
baseline, entry day and latent biology in each arm, and the same treatment-keyed random numbers
for as long as the arms give the same regimen in the same line (common random numbers, DESIGN
section 6). A difference between arms is therefore computed within each replicate, where most of
the patient-to-patient noise cancels, and its Monte-Carlo error is far smaller than that of two
independent cohorts of the same size (tests/test_compare.py measures it).

Per arm and replicate, at the scenario's calendar data cut: the headline metrics of
``analysis.summary`` (medians by Kaplan-Meier, response, safety), restricted mean survival times
up to ``compare.rmst_months``, the share of patients who started 1, 2, 3 lines after the index
line, and per drug the share who received it and the mean months on it (from the start of the
index line; patients who never received it count zero). Differences are arm minus reference, per
replicate; reported as their mean with a Monte-Carlo 95% interval (mean +- 1.96 SD / sqrt(R),
the precision of the expected difference) and the central 95% range across replicates (how
much one cohort of this size can differ). A median not reached in one arm of a replicate makes
that replicate's difference undefined; the replicates used are counted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hccsim.analysis.endpoints import data_cut, followed_beyond
from hccsim.analysis.summary import metrics_from_endpoints, patient_endpoints
from hccsim.analysis.survival import _rmst_km, kaplan_meier
from hccsim.simulator.errors import InputError
from hccsim.simulator.records import concat
from hccsim.simulator.scenario import DAYS_PER_MONTH, Scenario
from hccsim.simulator.studies.run import (
    batches,
    build_spec,
    mapper,
    simulate_task,
    unreached_cut,
)

#: Metrics of ``analysis.summary`` carried into a comparison, in report order.
BASE_METRICS = (
    "os_median_months",
    "pfs_recist_median_months",
    "pfs_mrecist_median_months",
    "ttp_recist_median_months",
    "orr_recist",
    "orr_mrecist",
    "dcr_recist",
    "grade3plus_ae",
    "dose_reduction",
    "discontinued_for_ae",
)
RMST_ENDPOINTS = ("os", "pfs_recist", "pfs_mrecist")
LATER_LINES = (1, 2, 3)
#: Patients per arm whose survival times are kept for the overlaid Kaplan-Meier figures.
KM_MAX_PATIENTS = 200_000
#: Headline differences printed by the command and shown first in the report.
HEADLINE = (
    "os_median_months",
    "pfs_recist_median_months",
    "pfs_mrecist_median_months",
    "os_rmst_months",
    "pfs_recist_rmst_months",
    "orr_recist",
    "later_line_1",
)


def drugs_of(sc: Scenario) -> list[str]:
    """The regimens of every arm, in order of first appearance."""
    out: list[str] = []
    for arm in sc.treatment.arms or ():
        for d in arm.sequence:
            if d not in out:
                out.append(d)
    return out


def metric_names(sc: Scenario) -> list[str]:
    names = list(BASE_METRICS)
    names += [f"{e}_rmst_months" for e in RMST_ENDPOINTS]
    names += [f"later_line_{k}" for k in LATER_LINES]
    for d in drugs_of(sc):
        names += [f"received_{d}", f"months_on_{d}"]
    return names


def check_comparable(sc: Scenario, source: str = "") -> None:
    """Refuse (exit 2) what ``hccsim compare`` cannot do with this scenario."""
    prefix = f"{source}: " if source else ""
    if sc.treatment.arms is None:
        raise InputError(
            f"{prefix}treatment.arms: missing; hccsim compare needs two or more arms, e.g. "
            "arms: [{name: a, sequence: [cabozantinib]}, {name: b, sequence: [regorafenib]}] "
            "(a scenario with one treatment.sequence has nothing to compare)"
        )
    if sc.analysis.data_cut_events is not None:
        raise InputError(
            f"{prefix}analysis.data_cut_events: {sc.analysis.data_cut_events} is not used by "
            "hccsim compare, which gives every patient every arm; expected a calendar cut "
            "(analysis.data_cut_months) or none"
        )


def reference_arm(sc: Scenario) -> str:
    c = sc.compare
    return c.reference if c is not None and c.reference else sc.treatment.arms[0].name


def _rmst_months(durations: np.ndarray, events: np.ndarray, tau: float) -> float:
    """RMST up to ``tau`` days in months; NaN when the Kaplan-Meier curve is not known up to
    ``tau`` (follow-up ends earlier with patients still at risk)."""
    if not len(durations):
        return math.nan
    km = kaplan_meier(durations, events)
    if float(durations.max()) < tau and not (len(km.survival) and km.survival[-1] == 0.0):
        return math.nan
    return _rmst_km(km, tau)[0] / DAYS_PER_MONTH


def arm_metrics(tables: dict, sc: Scenario, drugs: list[str], ep: dict | None = None) -> dict:
    """One arm's metrics in one replicate (tables already at the data cut)."""
    if ep is None:
        ep = patient_endpoints(
            tables, scan_interval_days=sc.imaging_interval_days, response_rule=sc.response_rule
        )
    base = metrics_from_endpoints(ep)
    out = {k: base[k] for k in BASE_METRICS}
    tau = (sc.compare.rmst_months if sc.compare else 12.0) * DAYS_PER_MONTH
    for e in RMST_ENDPOINTS:
        out[f"{e}_rmst_months"] = _rmst_months(ep[e].durations, ep[e].events, tau)
    pt, ln = tables["patients"], tables["lines"]
    ids = np.asarray(pt["patient_id"], dtype=np.int64)
    n = len(ids)
    index_line = dict(zip(ids.tolist(), np.asarray(pt["index_line"]).tolist(), strict=True))
    pid = np.asarray(ln["patient_id"], dtype=np.int64)
    line = np.asarray(ln["line"], dtype=np.int64)
    after = line - np.array([index_line.get(p, 10**6) for p in pid.tolist()], dtype=np.int64)
    on_or_after = after >= 0
    most = np.zeros(n, dtype=np.int64)
    pos = np.searchsorted(ids, pid)  # patients are in id order
    np.maximum.at(most, pos[on_or_after], after[on_or_after])
    for k in LATER_LINES:
        out[f"later_line_{k}"] = float(np.mean(most >= k)) if n else math.nan
    drug = np.asarray(ln["drug"], dtype=object)
    span = np.asarray(ln["end_day"], dtype=float) - np.asarray(ln["start_day"], dtype=float)
    for d in drugs:
        rows = on_or_after & (drug == d)
        out[f"received_{d}"] = float(len(np.unique(pid[rows])) / n) if n else math.nan
        out[f"months_on_{d}"] = float(span[rows].sum() / n / DAYS_PER_MONTH) if n else math.nan
    return out


def compare_replicate(sc: Scenario, seed: int, replicate: int, keep_km: bool) -> tuple[dict, bool]:
    """Every arm of one replicate, ``{arm: (metrics, survival times or None)}``, and whether
    the calendar data cut (``analysis.data_cut_months``) was not reached: nobody in any arm is
    followed up to it while someone is alive (``endpoints.followed_beyond``, the arms' answers
    combined with or as ``hccsim run`` combines batches), so the replicate is analysed with all
    its follow-up."""
    spec = build_spec(sc, seed)
    cut = sc.analysis.data_cut_months
    drugs = drugs_of(sc)
    out = {}
    beyond = alive = False
    for ctx in spec.arms:
        arm_spec = dataclasses.replace(spec, ctx=ctx, arms=(), weights=(), stratify_by=())
        tables = concat(
            [
                simulate_task(arm_spec, replicate, a, b)
                for a, b in batches(sc.cohort.size, sc.cohort.batch_size)
            ]
        )
        if cut is not None:
            arm_beyond, arm_alive = followed_beyond(tables, cut * DAYS_PER_MONTH)
            beyond, alive = beyond or arm_beyond, alive or arm_alive
            tables = data_cut(tables, cut * DAYS_PER_MONTH)
        ep = patient_endpoints(
            tables, scan_interval_days=sc.imaging_interval_days, response_rule=sc.response_rule
        )
        km = None
        if keep_km:
            km = {e: (ep[e].durations, ep[e].events) for e in RMST_ENDPOINTS}
        out[ctx.arm] = (arm_metrics(tables, sc, drugs, ep), km)
    return out, cut is not None and alive and not beyond


@dataclass
class CompareResult:
    scenario: Scenario
    seed: int
    arms: list[str]
    reference: str
    metrics: list[str]
    values: dict[str, np.ndarray]  # arm -> (replicates x metrics)
    km: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]  # arm -> endpoint -> pooled
    km_replicates: int
    #: replicates in which the calendar data cut was not reached in some arm (analysed with
    #: all their follow-up)
    cut_not_reached: int = 0

    @property
    def replicates(self) -> int:
        return len(next(iter(self.values.values())))

    def column(self, arm: str, metric: str) -> np.ndarray:
        return self.values[arm][:, self.metrics.index(metric)]

    def difference(self, arm: str, metric: str) -> np.ndarray:
        """Per replicate: ``arm`` minus the reference arm (NaN where both are infinite: a
        median not reached in either arm; the summaries count those replicates apart)."""
        with np.errstate(invalid="ignore"):
            return self.column(arm, metric) - self.column(self.reference, metric)


def simulate_compare(
    sc: Scenario,
    seed: int,
    replicates: int,
    *,
    jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CompareResult:
    """Simulate every arm on the same patients in ``replicates`` replicates (in parallel);
    the result is the same whatever ``jobs`` and ``backend``."""
    check_comparable(sc)
    names = [a.name for a in sc.treatment.arms]
    metrics = metric_names(sc)
    km_reps = max(1, min(replicates, KM_MAX_PATIENTS // sc.cohort.size))
    rows: dict[str, list[list[float]]] = {a: [] for a in names}
    km_parts: dict[str, dict[str, list]] = {a: {e: [] for e in RMST_ENDPOINTS} for a in names}
    tasks = [(sc, seed, r, r < km_reps) for r in range(replicates)]
    missed = 0
    with mapper(jobs, backend, scheduler) as run_map:
        for done, (result, not_reached) in enumerate(run_map(compare_replicate, tasks), start=1):
            missed += not_reached
            for arm in names:
                values, km = result[arm]
                rows[arm].append([values[m] for m in metrics])
                if km is not None:
                    for e, pair in km.items():
                        km_parts[arm][e].append(pair)
            if progress:
                progress(done, replicates)
    km = {
        arm: {
            e: (
                np.concatenate([d for d, _ in parts[e]]),
                np.concatenate([v for _, v in parts[e]]),
            )
            for e in RMST_ENDPOINTS
        }
        for arm, parts in km_parts.items()
    }
    return CompareResult(
        sc,
        seed,
        names,
        reference_arm(sc),
        metrics,
        {a: np.array(rows[a], dtype=float).reshape(replicates, len(metrics)) for a in names},
        km,
        km_reps,
        missed,
    )


def _clean(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def difference_stats(d: np.ndarray) -> dict[str, float | None]:
    """Mean of the per-replicate differences, its Monte-Carlo SE and 95% interval, and the
    central 95% range across replicates; replicates with an undefined difference are left out
    and counted."""
    finite = d[np.isfinite(d)]
    k = len(finite)
    if k == 0:
        return {
            "mean": None,
            "mc_se": None,
            "ci_low": None,
            "ci_high": None,
            "q025": None,
            "q975": None,
            "replicates_used": 0,
        }
    mean = float(finite.mean())
    se = float(finite.std(ddof=1) / math.sqrt(k)) if k > 1 else math.nan
    return {
        "mean": mean,
        "mc_se": _clean(se),
        "ci_low": _clean(mean - 1.96 * se),
        "ci_high": _clean(mean + 1.96 * se),
        "q025": float(np.quantile(finite, 0.025)),
        "q975": float(np.quantile(finite, 0.975)),
        "replicates_used": k,
    }


def arm_stats(v: np.ndarray) -> dict[str, float | None]:
    """Mean, median and central 95% range of one arm's metric across replicates, over the
    replicates where it is defined (a median not reached, an RMST whose curve ends before
    tau), which are counted, as for the differences."""
    finite = v[np.isfinite(v)]
    if not len(finite):
        return {"mean": None, "median": None, "q025": None, "q975": None, "replicates_used": 0}
    return {
        "mean": float(finite.mean()),
        "median": float(np.median(finite)),
        "q025": float(np.quantile(finite, 0.025)),
        "q975": float(np.quantile(finite, 0.975)),
        "replicates_used": len(finite),
    }


def summarise_compare(result: CompareResult) -> dict:
    """The JSON-ready summary: per arm the spread of each metric across replicates, and per
    non-reference arm the difference from the reference."""
    per_arm = {
        arm: {m: arm_stats(result.values[arm][:, j]) for j, m in enumerate(result.metrics)}
        for arm in result.arms
    }
    diffs = {
        arm: {m: difference_stats(result.difference(arm, m)) for m in result.metrics}
        for arm in result.arms
        if arm != result.reference
    }
    sc = result.scenario
    return {
        "scenario": sc.name,
        "seed": result.seed,
        "n": sc.cohort.size,
        "replicates": result.replicates,
        "arms": result.arms,
        "reference": result.reference,
        "rmst_months": sc.compare.rmst_months if sc.compare else 12.0,
        "data_cut_months": sc.analysis.data_cut_months,
        "data_cut_not_reached_replicates": result.cut_not_reached,
        "metrics": per_arm,
        "differences": diffs,
    }


# -- outputs -----------------------------------------------------------------------------------
LABELS = {
    "os_median_months": "Median OS (months)",
    "pfs_recist_median_months": "Median PFS, RECIST 1.1 (months)",
    "pfs_mrecist_median_months": "Median PFS, mRECIST (months)",
    "ttp_recist_median_months": "Median TTP, RECIST 1.1 (months)",
    "orr_recist": "ORR, RECIST 1.1",
    "orr_mrecist": "ORR, mRECIST",
    "dcr_recist": "DCR, RECIST 1.1",
    "grade3plus_ae": "Grade >= 3 adverse event",
    "dose_reduction": "Dose reduction",
    "discontinued_for_ae": "Discontinued for an adverse event",
    "os_rmst_months": "RMST of OS (months)",
    "pfs_recist_rmst_months": "RMST of PFS, RECIST 1.1 (months)",
    "pfs_mrecist_rmst_months": "RMST of PFS, mRECIST (months)",
    "later_line_1": "Started >= 1 later line",
    "later_line_2": "Started >= 2 later lines",
    "later_line_3": "Started >= 3 later lines",
}


def label(metric: str) -> str:
    if metric in LABELS:
        return LABELS[metric]
    if metric.startswith("received_"):
        return f"Received {metric.removeprefix('received_')}"
    if metric.startswith("months_on_"):
        return f"Months on {metric.removeprefix('months_on_')} (mean per patient)"
    return metric


def compare_frame(summary: dict):
    """compare.csv: one row per metric and arm; the difference columns are empty for the
    reference arm."""
    import pandas as pd

    rows = []
    for metric in summary["metrics"][summary["reference"]]:
        for arm in summary["arms"]:
            s = summary["metrics"][arm][metric]
            d = summary["differences"].get(arm, {}).get(metric, {})
            rows.append(
                {
                    "metric": metric,
                    "arm": arm,
                    "mean": s["mean"],
                    "q025": s["q025"],
                    "q975": s["q975"],
                    "difference_mean": d.get("mean"),
                    "difference_mc_se": d.get("mc_se"),
                    "difference_ci_low": d.get("ci_low"),
                    "difference_ci_high": d.get("ci_high"),
                    "difference_q025": d.get("q025"),
                    "difference_q975": d.get("q975"),
                    "replicates_used": s["replicates_used"],
                    "difference_replicates_used": d.get("replicates_used"),
                }
            )
    return pd.DataFrame(rows)


def _fmt(x, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _fmt_share(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _shown(metric: str, x) -> str:
    shares = ("orr", "dcr", "grade3", "dose_", "discontinued", "later_line", "received_")
    return _fmt_share(x) if metric.startswith(shares) else _fmt(x)


def _shown_diff(metric: str, x) -> str:
    shares = ("orr", "dcr", "grade3", "dose_", "discontinued", "later_line", "received_")
    if x is None:
        return "n/a"
    return f"{100 * x:+.1f} pts" if metric.startswith(shares) else f"{x:+.2f}"


def report_tables(summary: dict) -> dict:
    """The report's two tables: differences from the reference, and each arm's metrics."""
    import pandas as pd

    ref, arms = summary["reference"], summary["arms"]
    rows = []
    for arm, diffs in summary["differences"].items():
        for metric, d in diffs.items():
            rows.append(
                {
                    "Metric": label(metric),
                    "Comparison": f"{arm} vs {ref}",
                    "Mean difference": _shown_diff(metric, d["mean"]),
                    "Monte-Carlo 95% interval": f"{_shown_diff(metric, d['ci_low'])} to "
                    f"{_shown_diff(metric, d['ci_high'])}",
                    "95% range across cohorts": f"{_shown_diff(metric, d['q025'])} to "
                    f"{_shown_diff(metric, d['q975'])}",
                    "Replicates used": str(d["replicates_used"]),
                }
            )
    diff = pd.DataFrame(rows)
    diff.attrs["title"] = f"Differences from {ref}"
    diff.attrs["note"] = (
        f"Arm minus {ref} within each replicate (the same {summary['n']} virtual patients in "
        f"every arm), over {summary['replicates']} replicates. Monte-Carlo 95% interval: the "
        "precision of the mean difference (mean +- 1.96 SD / sqrt(replicates)); it shrinks "
        "with more replicates. 95% range across cohorts: how far one cohort of this size can "
        "stray. Shares in percentage points. A replicate where the metric is undefined in "
        "either arm (a median not reached, an RMST whose Kaplan-Meier curve ends censored "
        "before the horizon) is left out of that row (Replicates used)."
    )
    per_arm = []
    for metric in summary["metrics"][ref]:
        row = {"Metric": label(metric)}
        for arm in arms:
            s = summary["metrics"][arm][metric]
            row[arm] = (
                f"{_shown(metric, s['mean'])} ({_shown(metric, s['q025'])}-"
                f"{_shown(metric, s['q975'])})"
            )
        per_arm.append(row)
    arm_df = pd.DataFrame(per_arm)
    arm_df.attrs["title"] = "Each arm"
    arm_df.attrs["note"] = (
        "Mean across replicates (central 95% range), over the replicates where the metric is "
        "defined (column replicates_used in compare.csv). RMST up to "
        f"{summary['rmst_months']:g} months. Later lines: share of patients who started at "
        "least 1, 2 or 3 lines after the index line. Received / months on: from the index "
        "line on; months on a drug is the mean over all patients of the arm (zero for those "
        "who never received it)."
    )
    return {"differences": diff, "arms": arm_df}


def _km_figures(result: CompareResult, out, dpi: int = 120) -> dict:
    from hccsim.analysis.figures import KMCurve, km_plot

    titles = {
        "os": "Overall survival",
        "pfs_recist": "Progression-free survival, RECIST 1.1",
        "pfs_mrecist": "Progression-free survival, mRECIST",
    }
    n = result.scenario.cohort.size
    out_figs = {}
    for e, title in titles.items():
        curves = [
            KMCurve(label=arm, durations=result.km[arm][e][0], events=result.km[arm][e][1])
            for arm in result.arms
        ]
        note = (
            f"Pooled over {result.km_replicates} replicate(s) of the same {n} virtual patients "
            "in every arm (common random numbers); the CIs of a pooled curve reflect the number "
            "of simulated patients, not a cohort of the study's size."
        )
        path = km_plot(curves, out / f"km_{e}.png", title=title, note=note, dpi=dpi)
        out_figs[f"km_{e}"] = (path, f"{title}: every arm on the same patients")
    return out_figs


def _bar_figures(result: CompareResult, summary: dict, out, dpi: int = 120) -> dict:
    from hccsim.analysis.figures import CURVE_COLOURS, _new_figure, _save, _style

    arms = result.arms
    x = np.arange(len(arms))
    figs = {}
    with _style():
        fig = _new_figure((7.0, 4.2))
        ax = fig.add_subplot()
        width = 0.8 / len(LATER_LINES)
        for j, k in enumerate(LATER_LINES):
            m = f"later_line_{k}"
            means = [summary["metrics"][a][m]["mean"] or 0.0 for a in arms]
            lo = [summary["metrics"][a][m]["q025"] or 0.0 for a in arms]
            hi = [summary["metrics"][a][m]["q975"] or 0.0 for a in arms]
            err = np.array([np.subtract(means, lo), np.subtract(hi, means)])
            ax.bar(x + (j - 1) * width, means, width, yerr=np.clip(err, 0, None), capsize=3,
                   color=CURVE_COLOURS[j % len(CURVE_COLOURS)],
                   label=f">= {k} later line{'s' if k > 1 else ''}")  # fmt: skip
        ax.set_xticks(x, arms)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("Share of patients")
        ax.set_title("Patients who went on to later lines")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.grid(axis="y", color="#DDDDDD", linewidth=0.6)
        figs["later_lines"] = (
            _save(fig, out / "later_lines.png", dpi),
            "Share starting later lines, mean and 95% range across replicates",
        )
        fig = _new_figure((7.0, 4.2))
        ax = fig.add_subplot()
        bottom = np.zeros(len(arms))
        for j, d in enumerate(drugs_of(result.scenario)):
            vals = np.array([summary["metrics"][a][f"months_on_{d}"]["mean"] or 0.0 for a in arms])
            if not vals.any():
                continue
            ax.bar(x, vals, 0.6, bottom=bottom, label=d,
                   color=CURVE_COLOURS[j % len(CURVE_COLOURS)])  # fmt: skip
            bottom += vals
        ax.set_xticks(x, arms)
        ax.set_ylabel("Months per patient (mean)")
        ax.set_title("Time on each drug from the index line")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.grid(axis="y", color="#DDDDDD", linewidth=0.6)
        figs["time_on_drug"] = (
            _save(fig, out / "time_on_drug.png", dpi),
            "Mean months on each drug per patient",
        )
    return figs


def write_outputs(out, result: CompareResult, summary: dict, provenance: dict) -> dict:
    """compare.json, compare.csv, figures/*.png and report.html in ``out``; returns the
    figures written (name -> (path, caption))."""
    import json
    from pathlib import Path

    from hccsim.analysis import report

    out = Path(out)
    figures_dir = out / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    compare_frame(summary).to_csv(out / "compare.csv", index=False)
    figures = _km_figures(result, figures_dir)
    figures.update(_bar_figures(result, summary, figures_dir))
    sc = result.scenario
    report.write_report(
        out / "report.html",
        title=f"hccsim compare: {sc.name}",
        subtitle=sc.description.strip().splitlines()[0],
        provenance=provenance,
        summary=None,
        headline=(),
        tables=report_tables(summary),
        figures=figures,
        notes=[cut_note(sc, result.cut_not_reached, result.replicates)]
        if result.cut_not_reached
        else [],
        methods=methods(sc.response_rule, sc.observation.assessor),
    )
    return figures


def cut_note(sc: Scenario, missed: int, replicates: int) -> str:
    """What the reports say when the calendar data cut was not reached in ``missed`` of
    ``replicates`` replicates."""
    cut, why = unreached_cut(sc)
    return (
        f"{cut} was not reached in {missed} of {replicates} replicates ({why}); those are "
        "analysed with all their follow-up."
    )


def methods(rule, assessor: str = "investigator") -> tuple[tuple[str, str], ...]:
    """The report's Methods, the endpoints paragraph stating the best-response ``rule`` and
    whose reading the responses are (``assessor``, the scenario's ``observation.assessor``)."""
    from hccsim.analysis.report import ASSESSOR_TEXT

    return tuple(
        (h, (p.format(rule=rule.describe()) + " " + ASSESSOR_TEXT[assessor]).strip())
        if h == "Endpoints"
        else (h, p)
        for h, p in METHODS
    )


METHODS = (
    (
        "Common random numbers",
        "Every virtual patient receives every arm. Patient i of replicate r has the same "
        "baseline, entry day and latent biology in each arm, and the same random numbers for "
        "each treatment-dependent draw for as long as the arms give the same regimen in the "
        "same line, so differences between arms are computed within each replicate and most "
        "patient-to-patient noise cancels. Allocation ratios and stratification of the arms "
        "are not used here (they matter for hccsim power).",
    ),
    (
        "Endpoints",
        "At the scenario's calendar data cut: overall survival from the index-line start; "
        "progression-free survival by RECIST 1.1 and by mRECIST with the censoring rules of "
        "the analysis package; medians by Kaplan-Meier; restricted mean survival time as the "
        "area under the Kaplan-Meier curve up to the horizon (undefined when follow-up does not "
        "reach it); best overall response ({rule}); later lines and drug exposure from the "
        "lines table.",
    ),
    (
        "Monte-Carlo intervals",
        "For each metric the difference arm minus reference is formed in every replicate. The "
        "mean difference estimates the model's expected difference for a cohort of this size; "
        "its Monte-Carlo 95% interval is mean +- 1.96 SD/sqrt(R). The central 95% range of the "
        "per-replicate differences shows how much one real cohort of this size could differ.",
    ),
)
