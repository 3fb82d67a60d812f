"""Paper-style tables (``hccsim.analysis.tables``) against independent computations.

Two cohorts: a hand-built one of five patients (``tests/cohort_builders.py``) whose counts,
Kaplan-Meier values and responses are worked out by hand in the tests, and a small simulated
study of the anchor scenario (4 replicates of 40 patients, seed 11), whose tables are checked
against pandas group-bys written here, against lifelines (Kaplan-Meier, Cox, log-rank) and
statsmodels (Clopper-Pearson), and against the analysis functions the tables are documented to
use. A study table is checked cell by cell against the mean and the 2.5%/97.5% quantiles
(numpy's linear method) of the per-replicate cohort tables, computed here. No randomness beyond
fixed seeds; equalities are exact (1e-12) except where a numpy Cox fit meets lifelines' (1e-6
relative: two Newton solvers stopped at their own tolerances).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test

from hccsim.analysis import liver, safety, scores
from hccsim.analysis import tables as T
from hccsim.analysis.endpoints import overall_survival, progression_free_survival
from hccsim.analysis.response import ResponseRule, best_responses
from hccsim.analysis.summary import _quantile as summary_quantile
from hccsim.analysis.summary import patient_endpoints
from hccsim.analysis.survival import cox_binary_wald, km_median, km_median_ci, rmst, survival_at
from tests.cohort_builders import cohort, patient

ROOT = Path(__file__).resolve().parents[1]
MONTH = 30.4375
SCAN = 42.0
REPS = [0, 1, 2, 3]


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim():
    """Four replicates of 40 patients of the anchor scenario (fixed seed)."""
    from hccsim.simulator.records import concat
    from hccsim.simulator.scenario import load
    from hccsim.simulator.studies.run import simulate_replicates

    sc = load(ROOT / "scenarios" / "anchor_ramucirumab.yaml")
    sc = sc.model_copy(update={"cohort": sc.cohort.model_copy(update={"size": 40})})
    assert sc.imaging_interval_days == SCAN
    return concat([t for _, t in simulate_replicates(sc, 11, REPS)])


@pytest.fixture(scope="module")
def per_rep(sim):
    return {r: T.cohort_tables(sim, scan_interval_days=SCAN, replicate=r) for r in REPS}


@pytest.fixture(scope="module")
def study(sim):
    return T.study_tables(sim, scan_interval_days=SCAN, albi_mixed_model=True)


def one(tables, replicate=0):
    """One replicate's tables as pandas DataFrames."""
    out = {}
    for name, cols in tables.items():
        df = pd.DataFrame(cols)
        out[name] = df[df["replicate"] == replicate].reset_index(drop=True)
    return out


def tiny():
    """Five patients. OS (days): deaths at 100, 200, 50; alive at 300 and 400. RECIST best
    responses: SD, PR, SD, NE, CR. Index lines 2, 3, 2, 1, 6."""
    t = cohort(
        patient(0, last_fu=100, death=True, scans=[(42, "SD"), (84, "PD")], index_line=2),
        patient(1, last_fu=200, death=True, scans=[(42, "PR"), (84, "PR"), (126, "PD")], index_line=3),
        patient(2, last_fu=300, scans=[(42, "SD"), (84, "SD"), (126, "SD")], index_line=2),
        patient(3, last_fu=50, death=True, index_line=1),
        patient(4, last_fu=400, scans=[(42, "CR"), (84, "CR")], index_line=6),
    )  # fmt: skip
    pt = t["patients"]
    pt["age"] = np.array([60.0, 73.0, 80.0, 55.0, 73.0])
    pt["hbv"] = np.array([1.0, 0.0, np.nan, 1.0, 0.0])  # one unknown
    pt["cirrhosis"] = np.full(5, np.nan)  # entirely missing: row left out
    del pt["smoking"]  # absent: row left out
    pt["child_pugh_class"] = np.array(["A", "B", "C", "A", "B"], dtype=object)
    pt["bclc"] = np.array(["A", "B", "C", "C", "D"], dtype=object)
    pt["albi"] = np.array([-2.8, -2.4, -2.0, -1.0, -2.5])
    pt["malbi_grade"] = np.array(["1", None, "2b", None, "2a"], dtype=object)
    pt["mvi"] = np.array([True, False, True, False, False])
    return t


# -- layouts ----------------------------------------------------------------------------------------

SUBGROUP_REQUIRED = (
    "endpoint", "factor", "group_ref", "group_test", "n_ref", "n_test", "median_ref_months",
    "median_test_months", "hr", "hr_lower", "hr_upper", "p_value",
)  # fmt: skip


def test_every_table_has_its_documented_columns(per_rep, study):
    tabs = per_rep[0]
    assert tuple(tabs) == T.TABLE_NAMES == tuple(study)
    expected = {
        "baseline": list(T.BASELINE_COLUMNS),
        "adverse_events": ["section", "term", "label", "any_grade_n", "any_grade_pct",
                           "grade3plus_n", "grade3plus_pct"],
        "discontinuation": ["factor", "group", "n", "discontinued_n", "discontinued_pct",
                            "p_value", "n_excluded", "definition"],
        "best_response": ["criterion", "response", "n", "pct", "ci_lower", "ci_upper"],
        "survival": ["endpoint", "label", *T.SURVIVAL_COLUMNS],
        "subgroups": ["endpoint", "factor", "label", "group_ref", "group_test",
                      *T.SUBGROUP_COLUMNS, "note"],
        "cox": ["model", "factor", "label", *T.COX_COLUMNS, *T.COX_FLAGS, "note"],
        "albi": ["item", "label", *T.ALBI_COLUMNS, "significant", "note"],
    }  # fmt: skip
    assert set(SUBGROUP_REQUIRED) <= set(tabs["subgroups"].columns)
    for name, df in tabs.items():
        assert list(df.columns) == expected[name], name
        a = df.attrs
        assert a["table"] == name and a["mode"] == "cohort" and a["replicate"] == 0
        assert a["title"].startswith("Table ") and len(a["note"]) > 50
        roles = a["label_columns"] + a["numeric_columns"] + a["flag_columns"] + a["text_columns"]
        assert roles == list(df.columns)  # labels first, then numbers, then text
        for c in a["numeric_columns"] + a["flag_columns"]:
            assert df[c].dtype == float, (name, c)
    # a study: labels, then per numeric column mean, quantiles and counts, then flag counts
    for name, df in study.items():
        a = df.attrs
        cols = list(a["label_columns"])
        for c in a["numeric_columns"]:
            cols += [c, f"{c}_q025", f"{c}_q975", f"{c}_n_defined", f"{c}_n_inf"]
        cols += [f"{c}_replicates" for c in a["flag_columns"]]
        assert list(df.columns) == cols, name
        assert a["mode"] == "study" and a["n_replicates"] == 4 and a["replicates"] == REPS
        assert "all 4 replicates" in a["note"]
    assert "hr_lower" not in study["subgroups"].columns  # no per-replicate CIs in a study


def test_the_layout_is_the_same_for_every_replicate_of_a_study(sim, study):
    # Adverse-event rows: every term seen in any replicate, most frequent first.
    pt_all = pd.DataFrame(sim["patients"])
    ae_all = pd.DataFrame(sim["adverse_events"]).merge(
        pt_all[["replicate", "patient_id", "index_line"]], on=["replicate", "patient_id"]
    )
    ae_all = ae_all[ae_all["line"] == ae_all["index_line"]]
    counts = ae_all.drop_duplicates(["replicate", "patient_id", "term"])["term"].value_counts()
    order = sorted(counts.index, key=lambda t: (-counts[t], t))
    terms = study["adverse_events"].query("section == 'term'")["term"].tolist()
    assert terms == order
    assert study["cox"]["factor"].tolist() == [f for f, _, _ in T._cox_factors(sim["patients"])] * 2


# -- hand-built cohort ------------------------------------------------------------------------------


def test_baseline_by_hand():
    df = T.cohort_tables(tiny(), scan_interval_days=SCAN)["baseline"].set_index("key")
    assert df.loc["patients", "n"] == 5
    assert df.loc["age", ["n", "median", "min", "max"]].tolist() == [5, 73, 55, 80]
    assert df.loc["age_ge_73", ["n", "pct"]].tolist() == [3, 60.0]
    # one of five unknown: 2 positive, 40% of all five, 1 missing
    assert df.loc["hbv", ["n", "pct", "n_missing"]].tolist() == [2, 40.0, 1]
    for key in ("smoking", "cirrhosis", "hcv"):
        assert key not in df.index
    skipped = df.attrs["skipped_rows"]
    assert "Smoking history: column smoking absent" in skipped
    assert "Liver cirrhosis: cirrhosis: no values" in skipped
    assert "Smoking history" in df.attrs["note"]
    assert "Table 1: row left out (Smoking history: column smoking absent)" in df.attrs["problems"]
    # optional rows appear because someone is in them; BCLC 0 does not
    assert df.loc[["child_pugh_a", "child_pugh_b", "child_pugh_c"], "n"].tolist() == [2, 2, 1]
    assert df.loc[["bclc_a_b", "bclc_c", "bclc_d"], "n"].tolist() == [2, 2, 1]
    assert "bclc_0" not in df.index
    lines = ["index_line_1", "index_line_2", "index_line_3", "index_line_4", "index_line_5",
             "index_line_ge_6"]  # fmt: skip
    assert df.loc[lines, "n"].tolist() == [1, 2, 1, 0, 0, 1]
    # mALBI: given "1", "2b", "2a"; derived from ALBI -2.4 (2a) and -1.0 (3)
    assert scores.malbi_grade([-2.4, -1.0]).tolist() == ["2a", "3"]
    grades = df.loc[["malbi_1", "malbi_2a", "malbi_2b", "malbi_3"], "n"].tolist()
    assert grades == [1, 2, 1, 1]
    # MVI: 2 of 5; prior local therapy unknown for all (TACE no, the others missing)
    assert df.loc["mvi", ["n", "pct"]].tolist() == [2, 40.0]
    assert "prior_local_therapy" not in df.index and "prior_tace" in df.index


def test_survival_best_response_and_formatting_by_hand():
    from statsmodels.stats.proportion import proportion_confint

    tabs = T.cohort_tables(tiny(), scan_interval_days=SCAN)
    s = tabs["survival"].set_index("endpoint").loc["os"]
    # KM: 50 (n 5) -> 0.8, 100 (n 4) -> 0.6, 200 (n 3) -> 0.4; censored at 300 and 400
    assert s["n"] == 5 and s["events"] == 3
    assert s["median_months"] == pytest.approx(200 / MONTH, abs=1e-12)
    assert s["surv_6m_pct"] == pytest.approx(60.0) and s["surv_12m_pct"] == pytest.approx(40.0)
    # RMST to 365.25 days: 50 x 1 + 50 x 0.8 + 100 x 0.6 + 165.25 x 0.4
    assert s["rmst_12m_months"] * MONTH == pytest.approx(50 + 40 + 60 + 165.25 * 0.4, abs=1e-9)
    assert math.isinf(s["median_upper"])  # not reached
    shown = T.format_table(tabs["survival"]).iloc[0]["Median, months (95% CI)"]
    assert shown == f"{200 / MONTH:.1f} ({s['median_lower']:.1f}-NR)"

    br = tabs["best_response"].set_index(["criterion", "response"]).loc["RECIST 1.1"]
    assert br["n"].tolist() == [1, 1, 2, 0, 1, 2, 4]  # CR PR SD PD NE, ORR, DCR
    lo, hi = proportion_confint(2, 5, alpha=0.05, method="beta")
    assert br.loc["ORR", ["pct", "ci_lower", "ci_upper"]].tolist() == pytest.approx(
        [40.0, 100 * lo, 100 * hi], abs=1e-9
    )
    fb = T.format_table(tabs["best_response"])
    assert fb.iloc[5]["n (%)"] == "2 (40.0%)"
    assert fb.iloc[5]["95% CI, %"] == f"{100 * lo:.1f}-{100 * hi:.1f}"
    base = T.format_table(tabs["baseline"]).set_index("Characteristic")
    assert base.loc["HBsAg positive", "n (%) or median (range)"] == "2 (40.0%)"
    assert base.loc["HBsAg positive", "Missing"] == "1"
    assert base.loc["Age, years", "n (%) or median (range)"] == "73 (55-80)"
    assert base.loc["ALBI score", "n (%) or median (range)"] == "-2.40 (-2.80 to -1.00)"
    # every patient has one grade-1 fatigue on the index line
    ae = tabs["adverse_events"].set_index("term")
    assert ae.loc["fatigue", ["any_grade_n", "any_grade_pct", "grade3plus_n"]].tolist() == [
        5,
        100,
        0,
    ]
    assert ae.loc["any_ae", ["any_grade_n", "grade3plus_n"]].tolist() == [5, 0]


def test_the_minimum_time_for_stable_disease_is_the_callers():
    """Patient 0 reads SD on day 42 and PD on day 84: SD with the default 42 days (and with
    0), PD when the protocol asks for SD at 60 days or later; the note says which rule ran."""
    rows = {}
    for sd_min in (None, 0.0, 60.0):
        rule = None if sd_min is None else ResponseRule(sd_min)
        tabs = T.cohort_tables(tiny(), scan_interval_days=SCAN, response_rule=rule)
        br = tabs["best_response"].set_index(["criterion", "response"]).loc["RECIST 1.1"]
        rows[sd_min] = br["n"].tolist()
        assert (
            f"SD at least {42 if sd_min is None else sd_min:g} days"
            in (tabs["best_response"].attrs["note"])
        )
    assert rows[None] == rows[0.0] == [1, 1, 2, 0, 1, 2, 4]  # CR PR SD PD NE, ORR, DCR
    assert rows[60.0] == [1, 1, 1, 1, 1, 2, 3]
    study = T.study_tables(tiny(), scan_interval_days=SCAN, response_rule=ResponseRule(60.0))
    br = study["best_response"].set_index(["criterion", "response"]).loc["RECIST 1.1"]
    assert br["n"].tolist() == rows[60.0]
    ep = patient_endpoints(tiny(), scan_interval_days=SCAN, response_rule=ResponseRule(60.0))
    assert ep["bor_recist"].tolist() == ["PD", "PR", "SD", "NE", "CR"]
    assert patient_endpoints(tiny(), scan_interval_days=SCAN)["bor_recist"][0] == "SD"


@pytest.mark.parametrize("confirm", [False, True])
def test_best_response_under_a_rule_equals_pandas(sim, confirm):
    """Confirmed or not, the table counts what ``best_responses`` gives under the same rule,
    and confirmation can only move responders to SD or PD."""
    t = one(sim)
    rule = ResponseRule(confirm=confirm)
    df = T.cohort_tables(t, scan_interval_days=SCAN, response_rule=rule)["best_response"]
    df = df.set_index(["criterion", "response"])
    assert ("CR/PR confirmed" in df.attrs["note"]) == confirm
    for crit, name in (("recist1.1", "RECIST 1.1"), ("mrecist", "mRECIST")):
        bor = best_responses(t, crit, confirm=confirm)
        counts = pd.Series(bor).value_counts()
        for r in ("CR", "PR", "SD", "PD", "NE"):
            assert df.loc[(name, r), "n"] == counts.get(r, 0)
        if confirm:
            plain = best_responses(t, crit)
            assert np.isin(plain[np.isin(bor, ("CR", "PR"))], ("CR", "PR")).all()


def test_dataframes_and_dicts_give_the_same_tables():
    t = tiny()
    frames = {k: pd.DataFrame(v) for k, v in t.items()}
    a = T.cohort_tables(t, scan_interval_days=SCAN)
    b = T.cohort_tables(frames, scan_interval_days=SCAN)
    for name in T.TABLE_NAMES:
        pd.testing.assert_frame_equal(a[name], b[name])


def test_p_values_and_not_reached_are_formatted():
    assert T.format_p(0.04249) == "0.042"
    assert T.format_p(0.0424) == "0.042"
    assert T.format_p(0.00099) == "<0.001"
    assert T.format_p(0.001) == "0.001"
    assert T.format_p(1.0) == "1.000"
    assert T.format_p(math.nan) == "NA"
    assert T._num(math.inf) == "NR" and T._num(math.nan) == "NA" and T._num(2.345, 2) == "2.35"


# -- a simulated replicate against independent computations --------------------------------------


def test_baseline_counts_equal_pandas(sim, per_rep):
    pt = one(sim)["patients"]
    n = len(pt)
    df = per_rep[0]["baseline"].set_index("key")
    counts = {
        "male": pt["male"].sum(),
        "age_ge_73": (pt["age"] >= 73).sum(),
        "hbv": pt["hbv"].sum(),
        "weight_lt_60": (pt["weight_kg"] < 60).sum(),
        "ecog_0": (pt["ecog"] == 0).sum(),
        "ecog_ge_2": (pt["ecog"] >= 2).sum(),
        "child_pugh_score_ge_7": (pt["child_pugh_score"] >= 7).sum(),
        "child_pugh_b": (pt["child_pugh_class"] == "B").sum(),
        "intrahepatic_lesions_ge_8": (pt["intrahepatic_lesions"] >= 8).sum(),
        "max_lesion_gt_50": (pt["max_lesion_mm"] > 50).sum(),
        "occupation_ge_50": (pt["occupation_pct"] >= 50).sum(),
        "bclc_a_b": pt["bclc"].isin(["A", "B"]).sum(),
        "differentiation_unknown": (pt["differentiation"] == "unknown").sum(),
        "prior_local_therapy": (pt["prior_tace"] | pt["prior_resection"] | pt["prior_ablation"]).sum(),
        "malbi_2b": (pt["malbi_grade"] == "2b").sum(),
        "index_line_3": (pt["index_line"] == 3).sum(),
    }  # fmt: skip
    for key, count in counts.items():
        assert df.loc[key, "n"] == count, key
        assert df.loc[key, "pct"] == pytest.approx(100 * count / n, abs=1e-12), key
    for key, col in (("age", "age"), ("afp", "afp_ng_ml"), ("albi", "albi")):
        got = df.loc[key, ["median", "min", "max"]].tolist()
        assert got == [pt[col].median(), pt[col].min(), pt[col].max()], key
    assert (df["n_missing"] == 0).all()


def test_adverse_events_equal_pandas(sim, per_rep):
    t = one(sim)
    pt, ae, ln = t["patients"], t["adverse_events"], t["lines"]
    n = len(pt)
    ae = ae.merge(pt[["patient_id", "index_line"]], on="patient_id")
    ae = ae[ae["line"] == ae["index_line"]]
    worst = ae.groupby(["term", "patient_id"])["grade"].max().reset_index()
    df = per_rep[0]["adverse_events"].set_index("term")
    for term, g in worst.groupby("term"):
        assert df.loc[term, "any_grade_n"] == len(g)
        assert df.loc[term, "grade3plus_n"] == (g["grade"] >= 3).sum()
        assert df.loc[term, "any_grade_pct"] == pytest.approx(100 * len(g) / n, abs=1e-12)
    assert df.loc["any_ae", "any_grade_n"] == ae["patient_id"].nunique()
    assert df.loc["any_ae", "grade3plus_n"] == ae.loc[ae["grade"] >= 3, "patient_id"].nunique()
    index = ln.merge(pt[["patient_id", "index_line"]], on="patient_id")
    index = index[index["line"] == index["index_line"]]
    assert df.loc["dose_reduction", "any_grade_n"] == (index["dose_reductions"] >= 1).sum()
    assert df.loc["discontinued_for_ae", "any_grade_n"] == (index["end_reason"] == "toxicity").sum()
    # the same rows as safety.ae_table, plus the summary rows
    ref = safety.ae_table(t).set_index("term")
    terms = df.query("section == 'term'")
    assert terms.index.tolist() == ref.index.tolist()
    np.testing.assert_array_equal(terms[list(ref.columns)].to_numpy(float), ref.to_numpy(float))


def test_discontinuation_is_safetys_table(sim, per_rep):
    ref = safety.discontinuation_by_subgroup(one(sim))
    df = per_rep[0]["discontinuation"]
    pd.testing.assert_frame_equal(
        df[list(ref.columns)], ref.astype({c: float for c in ref.columns[3:]}), check_dtype=False
    )


def test_best_response_counts_equal_pandas(sim, per_rep):
    t = one(sim)
    df = per_rep[0]["best_response"].set_index(["criterion", "response"])
    for crit, name in (("recist1.1", "RECIST 1.1"), ("mrecist", "mRECIST")):
        counts = pd.Series(best_responses(t, crit)).value_counts()
        for r in ("CR", "PR", "SD", "PD", "NE"):
            assert df.loc[(name, r), "n"] == counts.get(r, 0)
        assert df.loc[(name, "ORR"), "n"] == counts.get("CR", 0) + counts.get("PR", 0)


def test_survival_equals_the_survival_functions_and_lifelines(sim, per_rep):
    t = one(sim)
    df = per_rep[0]["survival"].set_index("endpoint")
    eps = {
        "os": overall_survival(t),
        "pfs_recist": progression_free_survival(t, "recist1.1", scan_interval_days=SCAN),
        "pfs_mrecist": progression_free_survival(t, "mrecist", scan_interval_days=SCAN),
    }
    for key, ep in eps.items():
        row = df.loc[key]
        m = km_median_ci(ep.durations, ep.events)
        assert row[["median_months", "median_lower", "median_upper"]].tolist() == [
            m.median / MONTH,
            m.lower / MONTH,
            m.upper / MONTH,
        ]
        at = survival_at(ep.durations, ep.events, [6 * MONTH, 12 * MONTH])
        assert row["surv_6m_pct"] == 100 * at.survival[0]
        assert row["surv_12m_lower"] == 100 * at.lower[1]
        kmf = KaplanMeierFitter().fit(ep.durations, ep.events)
        assert row["median_months"] * MONTH == pytest.approx(kmf.median_survival_time_, abs=1e-9)
        assert row["events"] == ep.events.sum()
        if ep.durations.max() >= 12 * MONTH:
            area, var = rmst(ep.durations, ep.events, 12 * MONTH)
            assert row["rmst_12m_months"] == area / MONTH
            half = (row["rmst_12m_upper"] - row["rmst_12m_lower"]) / 2 * MONTH
            assert half == pytest.approx(1.959963984540054 * math.sqrt(var), rel=1e-12)


def _lifelines_hr(d, e, x):
    cph = CoxPHFitter().fit(
        pd.DataFrame({"t": d, "e": e.astype(float), "x": x.astype(float)}), "t", "e",
        fit_options={"precision": 1e-14, "r_precision": 1e-15},
    )  # fmt: skip
    s = cph.summary.loc["x"]
    return s["exp(coef)"], s["exp(coef) lower 95%"], s["exp(coef) upper 95%"], s["p"]


def test_subgroups_equal_pandas_and_lifelines(sim, per_rep):
    t = one(sim)
    pt = t["patients"]
    os_ = overall_survival(t)
    df = per_rep[0]["subgroups"].set_index(["endpoint", "factor"])
    groups = {
        "lesions_gt_7": pt["intrahepatic_lesions"] > 7,
        "afp_gt_median": pt["afp_ng_ml"] > pt["afp_ng_ml"].median(),
        "mvi": pt["mvi"],
        "child_pugh_b": pt["child_pugh_class"] == "B",
    }
    for factor, x in groups.items():
        x = x.to_numpy(bool)
        row = df.loc[("os", factor)]
        assert [row["n_ref"], row["n_test"]] == [(~x).sum(), x.sum()]
        # km_median, not lifelines: lifelines' product can land a rounding error above 1/2
        # where the curve sits at exactly 1/2 (survival.py, _HALF_TOL)
        assert row["median_test_months"] == km_median(os_.durations[x], os_.events[x]) / MONTH
        assert row["median_ref_months"] == km_median(os_.durations[~x], os_.events[~x]) / MONTH
        hr, lo, hi, _ = _lifelines_hr(os_.durations, os_.events, x)
        assert [row["hr"], row["hr_lower"], row["hr_upper"]] == pytest.approx(
            [hr, lo, hi], rel=1e-6
        )
        lr = logrank_test(os_.durations[x], os_.durations[~x], os_.events[x], os_.events[~x])
        assert row["p_value"] == pytest.approx(lr.p_value, rel=1e-9)
    line = df.loc[("os", "line_3_or_later")]
    assert (
        line["n_ref"] == (pt["index_line"] == 2).sum()
        and line["n_excluded"] == (pt["index_line"] == 1).sum()
    )


def test_binary_cox_wald_equals_lifelines(sim):
    t = one(sim, 1)
    pt = t["patients"]
    os_ = overall_survival(t)
    pfs = progression_free_survival(t, "recist1.1", scan_interval_days=SCAN)  # ties at scans
    for ep in (os_, pfs):
        for x in (pt["mvi"], pt["ecog"] >= 1, pt["age"] >= 73, pt["intrahepatic_lesions"] > 7):
            x = x.to_numpy(bool)
            got = cox_binary_wald(ep.durations, ep.events, x)
            assert got == pytest.approx(_lifelines_hr(ep.durations, ep.events, x), rel=1e-6)
    assert all(math.isnan(v) for v in cox_binary_wald([1.0, 2.0], [1, 1], [False, False]))


def test_cox_table_equals_lifelines_and_reports_failures(sim, per_rep):
    t = one(sim)
    pt = t["patients"]
    os_ = overall_survival(t)
    df = per_rep[0]["cox"]
    uni = df[df["model"] == "univariable"].set_index("factor")
    for factor, x in (
        ("male", pt["male"]),
        ("ehm", pt["ehm"]),
        ("line_ge_3", pt["index_line"] >= 3),
    ):
        hr, lo, hi, p = _lifelines_hr(os_.durations, os_.events, x.to_numpy(bool))
        got = uni.loc[factor, ["hr", "hr_lower", "hr_upper", "p_value"]].tolist()
        assert got == pytest.approx([hr, lo, hi, p], rel=1e-6)
    # the anchor scenario admits AFP >= 400 only: the AFP model cannot be fitted
    assert (pt["afp_ng_ml"] >= 400).all()
    afp = uni.loc["afp_ge_400"]
    assert afp["failed"] == 1 and math.isnan(afp["hr"]) and "single value" in afp["note"]
    assert "1 univariable" in df.attrs["note"] and df.attrs["counts"]["failed_univariable"] == 1
    assert any(
        p.startswith("Table 7: univariable Cox model, AFP >= 400 ng/mL: failed")
        for p in df.attrs["problems"]
    )
    # selection: univariable p < 0.1, in order of p, then the events-per-covariate cap
    ok = uni[uni["failed"] == 0]
    selected = ok[ok["p_value"] < 0.1].sort_values("p_value").index.tolist()
    multi = df[df["model"] == "multivariable"].set_index("factor")
    assert multi.index[multi["selected"] == 1].tolist() == sorted(selected, key=multi.index.get_loc)
    inside = multi.index[multi["in_model"] == 1].tolist()
    assert set(inside) <= set(selected)
    assert df.attrs["multivariable_covariates"] == selected[: len(inside)]
    assert len(inside) <= max(1, int(os_.events.sum()) // 10)


def test_cox_multivariable_cap_drops_and_notes():
    """25 patients, all dead; OS shortened by MVI, EHM and ECOG >= 1 (strong effects): the three
    are selected (p < 0.1) but 25 events allow 2 covariates, so the third is dropped."""
    rng = np.random.default_rng(1)  # a seed where all three reach p < 0.1 (asserted below)
    n = 25
    x = rng.integers(0, 2, size=(3, n)).astype(bool)
    times = rng.exponential(300.0, n) * np.exp(-1.6 * x.sum(axis=0))
    t = cohort(*(patient(i, last_fu=float(times[i]) + 1.0, death=True) for i in range(n)))
    t["patients"]["mvi"], t["patients"]["ehm"] = x[0], x[1]
    t["patients"]["ecog"] = x[2].astype(np.int64)
    df = T.cohort_tables(t, scan_interval_days=SCAN)["cox"]
    multi = df[df["model"] == "multivariable"].set_index("factor")
    assert multi.loc[["mvi", "ehm", "ecog_ge_1"], "selected"].tolist() == [1, 1, 1]  # precondition
    assert multi["in_model"].sum() == 2 and multi["dropped"].sum() == 1
    dropped = multi.index[multi["dropped"] == 1][0]
    assert multi.loc[dropped, "note"].startswith("dropped: at most one covariate per 10 events")
    assert df.attrs["dropped"] == [dropped]
    shown = T.format_table(df)
    assert shown["Note"].str.startswith("dropped").sum() == 1


def test_albi_table_is_livers(sim, per_rep):
    t = one(sim)
    df = per_rep[0]["albi"].set_index("item")
    ref = liver.albi_by_week(t, on_index_line=True)
    weeks = df.loc[[f"week_{w}" for w in liver.DEFAULT_WEEKS]]
    np.testing.assert_array_equal(weeks["median"], ref["median"])
    np.testing.assert_array_equal(weeks["n_measured"], ref["n_measured"])
    np.testing.assert_array_equal(weeks["malbi_2b_pct"], 100 * ref["malbi_2b_share"])
    anova = liver.albi_rm_anova(t, on_index_line=True)
    assert df.loc["rm_anova", ["statistic", "p_value", "n_measured"]].tolist() == [
        anova.f,
        anova.p,
        anova.n_patients,
    ]
    assert df.loc["rm_anova", "significant"] == float(anova.p < 0.05)
    mixed = liver.albi_mixed_model(t, on_index_line=True)
    assert df.loc["mixed_model", "p_value"] == mixed.lr_p
    assert df.attrs["mixed_model_wald_p"] == mixed.wald_p


# -- a study: mean and quantiles of the replicates' cells ---------------------------------------------

#: Cells a study computes with numpy where a cohort table uses lifelines: equal to 1e-6.
_NUMPY_COX = {("cox", "hr"), ("cox", "hr_lower"), ("cox", "hr_upper"), ("cox", "p_value"),
              ("subgroups", "hr")}  # fmt: skip


def _expected(values: np.ndarray):
    """Mean, 2.5% and 97.5% quantiles of the defined (not NaN) values; inf where any is inf
    (quantiles: summary._quantile, which handles infinite values)."""
    v = values[~np.isnan(values)]
    if not len(v):
        return math.nan, math.nan, math.nan, 0, 0
    if np.isinf(v).any():
        return (
            math.inf,
            summary_quantile(v, 0.025),
            summary_quantile(v, 0.975),
            len(v),
            np.isinf(v).sum(),
        )
    q = np.quantile(v, [0.025, 0.975])
    return v.mean(), q[0], q[1], len(v), 0


def test_study_cells_are_the_mean_and_range_of_the_replicates(per_rep, study):
    for name, st in study.items():
        labels = st.attrs["label_columns"]
        reps = [per_rep[r][name].set_index(labels) for r in REPS]
        for key, row in st.set_index(labels).iterrows():
            for c in st.attrs["numeric_columns"]:
                values = []
                for df in reps:
                    if key in df.index:
                        values.append(df.at[key, c])
                    elif name in ("adverse_events", "baseline") and c != "n_missing":
                        values.append(0.0)  # a term or optional category nobody had
                    else:
                        raise AssertionError(f"{name} {key} missing in a replicate")
                exp = _expected(np.array(values, dtype=float))
                got = [
                    row[c],
                    row[f"{c}_q025"],
                    row[f"{c}_q975"],
                    row[f"{c}_n_defined"],
                    row[f"{c}_n_inf"],
                ]
                rel = 1e-6 if (name, c) in _NUMPY_COX else 1e-12
                assert got == pytest.approx(list(exp), rel=rel, abs=1e-12, nan_ok=True), (
                    name,
                    key,
                    c,
                )
            for c in st.attrs["flag_columns"]:
                flags = [df.at[key, c] for df in reps]
                assert row[f"{c}_replicates"] == sum(f == 1 for f in flags), (name, key, c)
    assert study["cox"].attrs["counts"]["failed_univariable"] == sum(
        per_rep[r]["cox"].attrs["counts"]["failed_univariable"] for r in REPS
    )


def test_study_takes_the_first_replicates_and_formats_mean_and_range(sim, study):
    st = T.study_tables(sim, scan_interval_days=SCAN, max_replicates=3)
    assert st["survival"].attrs["replicates"] == [0, 1, 2]
    assert "the first 3 of 4 replicates (in replicate order)" in st["survival"].attrs["note"]
    assert "mixed_model" not in st["albi"]["item"].tolist()  # not fitted by default
    assert "left out of this table for speed" in st["albi"].attrs["note"]
    os_ = study["survival"].iloc[0]
    shown = T.format_table(study["survival"]).iloc[0]["Median, months (95% CI)"]
    assert (
        shown
        == f"{os_['median_months']:.1f} ({os_['median_months_q025']:.1f}-{os_['median_months_q975']:.1f})"
    )
    male = study["baseline"].set_index("key").loc["male"]
    cell = T.format_table(study["baseline"]).iloc[1]["n (%) or median (range)"]
    assert cell == f"{male['pct']:.1f}% ({male['pct_q025']:.1f}-{male['pct_q975']:.1f})"
    failed = T.format_table(study["cox"]).set_index(["Model", "Factor"])
    assert failed.loc[("univariable", "AFP >= 400 ng/mL"), "Failed"] == "4/4"
    assert (
        "Table 7: univariable Cox model, AFP >= 400 ng/mL: the fit failed in 4 of 4 replicates"
        in study["cox"].attrs["problems"]
    )
    p = study["discontinuation"].iloc[0]
    assert T.format_table(study["discontinuation"]).iloc[0]["p (Fisher)"] == (
        f"{T.format_p(p['p_value'])} ({T.format_p(p['p_value_q025'])}-{T.format_p(p['p_value_q975'])})"
    )


def test_infinite_cells_aggregate_as_not_reached():
    rows = [[{"k": "a", "x": v}] for v in (1.0, 2.0, math.inf, math.nan, 4.0)]
    frames = [T._frame("survival", r, ("k",), ("x",), title="t", note="n") for r in rows]
    out = T._aggregate(frames, "survival").iloc[0]
    finite = [1.0, 2.0, 4.0, math.inf]
    assert out["x"] == math.inf and out["x_n_defined"] == 4 and out["x_n_inf"] == 1
    # h = 3 x 0.025 = 0.075 between 1 and 2
    assert out["x_q025"] == pytest.approx(1.075, abs=1e-15)
    assert out["x_q025"] == summary_quantile(np.array(finite), 0.025)
    assert out["x_q975"] == math.inf
    frames = [T._frame("survival", r, ("k",), ("x",), title="t", note="n") for r in rows[:2]]
    out = T._aggregate(frames, "survival").iloc[0]
    assert [out["x"], out["x_q025"], out["x_q975"]] == [
        1.5,
        *np.quantile([1.0, 2.0], [0.025, 0.975]),
    ]


# -- CSV and bad input ------------------------------------------------------------------------------


def test_write_tables_reads_back_equal(per_rep, study, tmp_path):
    for tabs, folder in ((per_rep[0], tmp_path / "cohort"), (study, tmp_path / "study" / "x")):
        paths = T.write_tables(tabs, folder)
        assert [p.name for p in paths] == [f"{n}.csv" for n in T.TABLE_NAMES]
        for path, df in zip(paths, tabs.values(), strict=True):
            text = df.attrs["label_columns"] + df.attrs["text_columns"]
            back = pd.read_csv(path, dtype={c: object for c in text})
            for c in df.attrs["text_columns"]:
                back[c] = back[c].fillna("")
            pd.testing.assert_frame_equal(back, df, check_exact=True, check_dtype=False)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: T.cohort_tables(t, scan_interval_days=0), "scan_interval_days must be a positive"),
        (lambda t: T.cohort_tables(t, scan_interval_days=True), "scan_interval_days"),
        (lambda t: T.cohort_tables(t, scan_interval_days=SCAN), "replicate=None needs tables with one replicate"),
        (lambda t: T.cohort_tables(t, scan_interval_days=SCAN, replicate=9), "replicate=9 is not in"),
        (lambda t: T.study_tables(t, scan_interval_days=SCAN, max_replicates=0), "max_replicates must be"),
        (lambda t: T.study_tables({"patients": t["patients"]}, scan_interval_days=SCAN), "missing lines"),
        (lambda t: T.study_tables(t, scan_interval_days=SCAN, albi_mixed_model=1), "albi_mixed_model"),
        (lambda t: T.cohort_tables(t, scan_interval_days=SCAN, replicate=0, response_rule=ResponseRule(-1)), "sd_min_days must be a number of days >= 0"),
        (lambda t: T.study_tables(t, scan_interval_days=SCAN, response_rule=ResponseRule(float("nan"))), "sd_min_days must be"),
        (lambda t: T.study_tables(t, scan_interval_days=SCAN, response_rule=ResponseRule(True)), "sd_min_days must be"),
        (lambda t: T.study_tables(t, scan_interval_days=SCAN, response_rule=ResponseRule(confirm=1)), "confirm must be True or False"),
        (lambda t: T.study_tables(t, scan_interval_days=SCAN, response_rule=42), "response_rule must be a ResponseRule"),
        (lambda t: T.format_table(pd.DataFrame({"a": [1]})), r"attrs\['table'\]"),
        (lambda t: T.write_tables([], "x"), "dfs must map"),
    ],
)  # fmt: skip
def test_bad_input_is_refused(call, message):
    a, b = tiny(), tiny()
    b["patients"]["replicate"] = np.ones(5, dtype=np.int64)
    both = {k: {c: np.concatenate([a[k][c], b[k][c]]) for c in a[k] if c in b[k]} for k in a}
    for k in both:  # the second replicate's other tables
        both[k]["replicate"] = np.concatenate(
            [a[k]["replicate"], np.ones(len(b[k]["replicate"]), np.int64)]
        )
    with pytest.raises(ValueError, match=message):
        call(both)


def test_a_landmark_beyond_follow_up_is_not_estimated():
    """Follow-up ending at day 250 with the curve at 0.5: the 12-month survival is NaN (no one
    at risk; the curve would carry 50% on), the 6-month one is estimated. A curve that has
    reached 0 stays 0 at any later landmark. Exact values by hand."""
    from hccsim.analysis.endpoints import Endpoint

    censored_last = Endpoint(
        "os", np.array([50.0, 100.0, 200.0, 250.0]), np.array([1, 0, 0, 0], bool)
    )
    dead_last = Endpoint("os", np.array([50.0, 100.0]), np.array([1, 1], bool))
    frame = T._survival(None, [("os", "OS", censored_last), ("pfs", "PFS", dead_last)])
    a, b = frame.set_index("endpoint").loc["os"], frame.set_index("endpoint").loc["pfs"]
    assert a["surv_6m_pct"] == pytest.approx(75.0)  # 182.6 days: one death of four
    assert math.isnan(a["surv_12m_pct"]) and math.isnan(a["surv_12m_lower"])
    assert b["surv_12m_pct"] == 0.0
