"""``summarise_replicate`` against the slower reference functions and lifelines.

Every headline metric of a simulated replicate is recomputed here by another route: the
Kaplan-Meier medians and Cox hazard ratios by lifelines (``KaplanMeierFitter``,
``CoxPHFitter`` with Efron ties, fitted to a tight tolerance), the response shares by
``response_rates``, the adverse-event shares by ``safety.ae_table`` (pandas), ALBI by
``liver.albi_by_week`` (pandas), the rest by pandas group-bys on the tables. No randomness
beyond the fixed-seed simulation; equalities are exact or to 1e-6 relative (Cox by Newton in
numpy against lifelines' own Newton).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter

from hccsim.analysis import liver, safety
from hccsim.analysis.endpoints import (
    disease_control_4w,
    landmark,
    overall_survival,
    progression_free_survival,
    time_to_progression,
)
from hccsim.analysis.response import best_responses, response_rates
from hccsim.analysis.summary import (
    DEFAULT_AE_TERMS,
    LANDMARK_DAYS,
    METRICS,
    concat_endpoints,
    metrics_from_endpoints,
    patient_endpoints,
    summarise,
    summarise_replicate,
)
from hccsim.simulator.records import concat
from hccsim.simulator.scenario import Scenario
from hccsim.simulator.studies.run import batches, build_spec, simulate_task

SCAN = 42.0
MONTH = 30.4375


def _simulate(preset, sequence, n, seed, batch=1000):
    sc = Scenario.model_validate(
        {
            "name": "summary-check",
            "description": "summary check",
            "seed": seed,
            "population": {"preset": preset},
            "cohort": {"size": n, "batch_size": batch},
            "treatment": {"sequence": sequence},
            "observation": {"imaging_weeks": 6, "max_follow_up_months": 24, "lab_weeks": 2},
        }
    )
    spec = build_spec(sc, seed)
    return [simulate_task(spec, 0, a, b) for a, b in batches(n, batch)]


@pytest.fixture(scope="module")
def anchor():
    return concat(_simulate("anchor_ramucirumab", ["ramucirumab", "best_supportive_care"], 400, 11))


@pytest.fixture(scope="module")
def first_line():
    return concat(_simulate("first_line_trial", ["lenvatinib", "sorafenib"], 300, 12))


def _km_median_months(durations, events):
    """First time lifelines' Kaplan-Meier curve is <= 0.5, read with a 1e-9 tolerance: where the
    exact curve equals 1/2 (the anchor fixture's no-DC4W group: 71/140, then exactly 1/2 at
    111.75 days), lifelines' floating-point product can land a hair above it and its
    ``median_survival_time_`` then jumps to the next event time; hccsim's ``km_median`` takes
    the time where S is exactly one half, as the definition asks."""
    d, e = np.asarray(durations, float), np.asarray(events, bool)
    sf = KaplanMeierFitter().fit(d, e).survival_function_.iloc[:, 0]
    hit = sf[sf <= 0.5 + 1e-9]
    return (float(hit.index[0]) if len(hit) else math.inf) / MONTH


def _cox_hr(durations, events, x):
    """lifelines' HR of x = 1 vs 0; NaN when a group is empty or has no events (no estimate)."""
    x, events = np.asarray(x, bool), np.asarray(events, bool)
    if not (events & x).any() or not (events & ~x).any():
        return math.nan
    df = pd.DataFrame({"t": durations, "e": np.asarray(events, int), "x": np.asarray(x, float)})
    cph = CoxPHFitter().fit(df, "t", "e", fit_options={"precision": 1e-14, "r_precision": 1e-15})
    return float(np.exp(cph.params_["x"]))


def _close(a, b, rel=1e-9):
    if isinstance(b, float) and math.isnan(b):
        return math.isnan(a)
    return a == pytest.approx(b, rel=rel, abs=1e-12)


@pytest.mark.parametrize("which", ["anchor", "first_line"])
def test_every_metric_equals_its_reference(which, request):
    tables = request.getfixturevalue(which)
    got = summarise_replicate(tables, scan_interval_days=SCAN)
    pt = pd.DataFrame(tables["patients"])
    ln = pd.DataFrame(tables["lines"])
    n = len(pt)
    want: dict[str, float] = {"n": float(n)}

    os_ = overall_survival(tables)
    want["os_median_months"] = _km_median_months(os_.durations, os_.events)
    for crit, name in (("recist1.1", "recist"), ("mrecist", "mrecist")):
        pfs = progression_free_survival(tables, crit, scan_interval_days=SCAN)
        want[f"pfs_{name}_median_months"] = _km_median_months(pfs.durations, pfs.events)
        bor = best_responses(tables, crit)
        rates = response_rates(bor)
        want[f"orr_{name}"] = rates["orr"].proportion
        want[f"dcr_{name}"] = rates["dcr"].proportion
        counts = pd.Series(bor).value_counts()
        for r in ("CR", "PR", "SD", "PD", "NE"):
            want[f"bor_{name}_{r.lower()}"] = counts.get(r, 0) / n
    ttp = time_to_progression(tables, "recist1.1", scan_interval_days=SCAN)
    want["ttp_recist_median_months"] = _km_median_months(ttp.durations, ttp.events)

    dc = disease_control_4w(tables, "recist1.1", 28.0)
    want["dc4w"] = dc.mean()
    want["os_median_months_dc4w_yes"] = _km_median_months(os_.durations[dc], os_.events[dc])
    want["os_median_months_dc4w_no"] = _km_median_months(os_.durations[~dc], os_.events[~dc])
    lm, rows = landmark(os_, LANDMARK_DAYS)
    dc_lm = disease_control_4w(tables, "recist1.1", 28.0, by_day=LANDMARK_DAYS)[rows]
    want["os_landmark_hr_dc4w"] = _cox_hr(lm.durations, lm.events, dc_lm)

    table = safety.ae_table(tables).set_index("term")
    for term in sorted(set(DEFAULT_AE_TERMS) | set(table.index)):
        row = table.loc[term] if term in table.index else None
        want[f"ae_any_{term}"] = 0.0 if row is None else row["any_grade_pct"] / 100
        want[f"ae_g3_{term}"] = 0.0 if row is None else row["grade3plus_pct"] / 100
    want["grade3plus_ae"] = safety.grade3plus_patients(tables).share
    want["dose_reduction"] = safety.dose_reduction_patients(tables).share
    want["discontinued_for_ae"] = safety.discontinued_for_ae(tables).share

    weekly = liver.albi_by_week(tables, on_index_line=True).set_index("week")
    for w in (0, 2, 4, 6, 8, 10, 12):
        want[f"albi_median_week_{w}"] = float(weekly.loc[w, "median"])

    index_rows = ln.merge(pt[["patient_id", "index_line"]], on="patient_id")
    index_rows = index_rows[index_rows.line == index_rows.index_line]
    want["cycles_median"] = float(index_rows.cycles.median())
    for k in (2, 3, 4, 5):
        want[f"index_line_{k}"] = float((pt.index_line == k).mean())
    later = pt.index_line.to_numpy() >= 2
    want["os_hr_late_vs_second_line"] = _cox_hr(
        os_.durations[later], os_.events[later], pt.index_line.to_numpy()[later] >= 3
    )
    cp = pt.child_pugh_class.to_numpy()
    ab = np.isin(cp, ["A", "B"])
    want["os_hr_child_pugh_b_vs_a"] = _cox_hr(os_.durations[ab], os_.events[ab], cp[ab] == "B")

    known = [v for v in patient_endpoints(tables, scan_interval_days=SCAN)["afp_response"]
             if v is not None]  # fmt: skip
    want["afp_response_rate"] = float(np.mean(known))

    assert set(got) == set(want)
    assert [m for m in METRICS if m not in got] == []
    hr_names = {"os_landmark_hr_dc4w", "os_hr_late_vs_second_line", "os_hr_child_pugh_b_vs_a"}
    for name, value in want.items():
        assert _close(got[name], value, rel=1e-6 if name in hr_names else 1e-9), (
            name,
            got[name],
            value,
        )
    # Not vacuous: these cohorts have grade >= 3 AEs and both disease-control groups; the
    # anchor cohort has both Child-Pugh classes and several index lines.
    assert 0 < got["grade3plus_ae"] < 1 and 0 < got["dc4w"] < 1
    assert math.isfinite(got["os_landmark_hr_dc4w"])
    if which == "anchor":
        assert math.isfinite(got["os_hr_child_pugh_b_vs_a"])
        assert math.isfinite(got["os_hr_late_vs_second_line"])


def test_batches_give_the_metrics_of_the_whole():
    """Patients are independent: the per-patient results of batches, joined, give exactly the
    metrics of the whole replicate (the run computes them batch by batch)."""
    parts = _simulate("anchor_ramucirumab", ["ramucirumab", "best_supportive_care"], 300, 5, 100)
    whole = summarise_replicate(concat(parts), scan_interval_days=SCAN)
    joined = metrics_from_endpoints(
        concat_endpoints([patient_endpoints(p, scan_interval_days=SCAN) for p in parts])
    )
    assert joined.keys() == whole.keys()
    for k, v in whole.items():
        assert _close(joined[k], v, rel=1e-12), k


def test_summarise_fills_absent_terms_with_zero_and_reports_non_finite_as_none():
    reps = [
        {"n": 10.0, "os_median_months": 5.0, "ae_any_rash": 0.2, "ae_g3_rash": 0.1},
        {"n": 10.0, "os_median_months": math.inf},
    ]
    out = summarise(reps)
    assert list(out) == ["n", "os_median_months", "ae_any_rash", "ae_g3_rash"]
    assert out["ae_any_rash"]["mean"] == pytest.approx(0.1)
    assert out["ae_g3_rash"]["q025"] == pytest.approx(0.0025)
    assert out["os_median_months"]["mean"] is None  # a mean over a median not reached
    assert out["os_median_months"]["median"] is None  # halfway between 5 and inf
    reps.append({"n": 10.0})  # a missing non-AE metric is NaN: no statistic
    assert summarise(reps)["os_median_months"]["median"] is None


def test_empty_groups_give_nan_not_errors():
    """A replicate where nobody is on a later line or Child-Pugh B: those HRs are NaN."""
    tables = concat(_simulate("first_line_trial", ["sorafenib"], 60, 3))
    got = summarise_replicate(tables, scan_interval_days=SCAN)
    assert math.isnan(got["os_hr_late_vs_second_line"])  # every index line is line 1
    assert got["index_line_2"] == 0.0


def test_pandas_tables_give_the_same_metrics(anchor):
    """A real cohort's tables arrive as pandas DataFrames (``hccsim analyze``)."""
    frames = {name: pd.DataFrame(cols) for name, cols in anchor.items()}
    a = summarise_replicate(anchor, scan_interval_days=SCAN)
    b = summarise_replicate(frames, scan_interval_days=SCAN)
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert _close(b[k], v, rel=0), k


def test_quantiles_across_replicates_handle_medians_not_reached():
    """A median not reached (inf) in some replicates: the median across replicates is still
    the middle value when that is finite (numpy's interpolation would give NaN), and finite
    values agree with np.quantile bit for bit."""
    reps = [{"os_median_months": v} for v in (math.inf, 3.0, 4.0)]
    out = summarise(reps)["os_median_months"]
    assert out["median"] == 4.0
    assert out["q025"] == pytest.approx(3.05)
    assert out["q975"] is None and out["mean"] is None  # infinite: null in JSON
    rng = np.random.default_rng(7)
    for _ in range(200):
        v = rng.normal(size=int(rng.integers(1, 50)))
        got = summarise([{"x": float(x)} for x in v])["x"]
        assert [got["median"], got["q025"], got["q975"]] == np.quantile(
            v, [0.5, 0.025, 0.975]
        ).tolist()
