"""Invariants of simulated histories over random valid scenarios and seeds (hypothesis).

No event after death; lines ordered and non-overlapping; scans and labs within follow-up; PFS
never longer than OS; one terminal status per patient; the same seed gives the same tables,
whatever the batch size.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hccsim.analysis import schema
from hccsim.analysis.endpoints import overall_survival, progression_free_survival
from hccsim.simulator.catalogue import catalogue
from hccsim.simulator.cohort import preset_names
from hccsim.simulator.scenario import Scenario
from hccsim.simulator.studies.run import simulate_replicates

ACTIVE = sorted(n for n, t in catalogue().items() if t.kind != "supportive")


@st.composite
def scenarios(draw) -> Scenario:
    seq = draw(st.lists(st.sampled_from(ACTIVE), min_size=1, max_size=4))
    if draw(st.booleans()):
        seq.append("best_supportive_care")
    weeks = draw(st.sampled_from([4.0, 6.0, 8.0, 12.0]))
    data = {
        "name": "random",
        "description": "hypothesis scenario",
        "seed": draw(st.integers(0, 2**63 - 1)),
        "population": {"preset": draw(st.sampled_from(preset_names()))},
        "cohort": {
            "size": draw(st.integers(1, 25)),
            "entry": draw(st.sampled_from(["index_line", "first_line"])),
            "batch_size": draw(st.integers(1, 30)),
        },
        "treatment": {
            "sequence": seq,
            "progression_criterion": draw(st.sampled_from(["recist1.1", "mrecist"])),
        },
        "observation": {
            "imaging_weeks": weeks,
            "imaging_window_days": draw(st.sampled_from([0.0, 3.0, 7.0])),
            "lab_weeks": draw(st.sampled_from([1.0, 2.0, 4.0])),
            "max_follow_up_months": draw(st.sampled_from([3.0, 12.0, 60.0])),
            "assessor": draw(st.sampled_from(["investigator", "independent"])),
        },
    }
    if draw(st.booleans()):
        data["cohort"]["accrual_per_month"] = draw(st.sampled_from([0.5, 3.0, 40.0]))
    if draw(st.booleans()):
        # Make adverse events (holds, reductions, withdrawals) frequent.
        data["parameters"] = {"toxicity": {"susceptibility_sd_log": 1.5}}
    return Scenario.model_validate(data)


def _simulate(sc: Scenario, replicate: int = 0):
    ((_, tables),) = list(simulate_replicates(sc, sc.seed, [replicate]))
    return tables


@given(scenarios())
@settings(max_examples=40)
def test_histories_are_consistent(sc):
    tables = _simulate(sc)
    # The contract: types, ranges, lines ordered and non-overlapping, no scan, lab, line or AE
    # onset after the last follow-up (which is the death day for those who died).
    schema.validate(tables)
    pt = tables["patients"]
    n = sc.cohort.size
    assert np.array_equal(pt["patient_id"], np.arange(n))  # one row per patient, in order
    last = pt["last_follow_up_day"]
    horizon = sc.horizon_days
    assert np.all(last <= horizon + 1e-9)
    # One terminal status: died before the horizon, or alive and censored at the horizon.
    assert np.all(np.isclose(last[~pt["death"]], horizon))
    assert np.all(last[pt["death"]] <= horizon)

    # Lines end before follow-up ends; only the last line of a patient may end by death or
    # at the end of follow-up, and it does so exactly at the last follow-up.
    ln = tables["lines"]
    for pid in np.unique(ln["patient_id"]):
        rows = np.flatnonzero(ln["patient_id"] == pid)
        reasons = ln["end_reason"][rows]
        terminal = np.isin(reasons, ["death", "end_of_follow_up"])
        assert terminal[:-1].sum() == 0
        if terminal[-1]:
            assert ln["end_day"][rows[-1]] == last[pid]
            assert (reasons[-1] == "death") == pt["death"][pid]
        assert np.all(np.diff(ln["line"][rows]) == 1) and ln["line"][rows[0]] == 1
        # One index line, numbered as the patient's index line; prior lines end before day 0.
        index = ln["index"][rows]
        assert index.sum() == 1 and ln["line"][rows][index][0] == pt["index_line"][pid]
        before = ln["line"][rows] < pt["index_line"][pid]
        assert np.all(ln["end_day"][rows][before] < 0.0)
        assert np.all(ln["start_day"][rows][~before] >= 0.0)

    # Scans and labs lie within follow-up and after day 0.
    for table in ("assessments", "labs"):
        day = tables[table]["day"]
        assert np.all(day >= 0.0)
        assert np.all(day <= last[tables[table]["patient_id"]] + 1e-9)

    # PFS never exceeds OS, for both criteria.
    os_ = overall_survival(tables)
    for crit in ("recist1.1", "mrecist"):
        pfs = progression_free_survival(tables, crit, scan_interval_days=sc.imaging_interval_days)
        assert np.all(pfs.durations <= os_.durations + 1e-9)


@given(scenarios())
@settings(max_examples=15)
def test_same_seed_same_tables_whatever_the_batch_size(sc):
    first = _simulate(sc)
    again = _simulate(sc)
    rebatched = _simulate(
        sc.model_copy(update={"cohort": sc.cohort.model_copy(update={"batch_size": 1000})})
    )
    for other in (again, rebatched):
        for name, cols in first.items():
            for col, values in cols.items():
                np.testing.assert_array_equal(values, other[name][col], err_msg=f"{name}.{col}")


def test_replicates_differ_and_patients_are_independent_of_cohort_size():
    base = {
        "name": "x",
        "description": "x",
        "seed": 11,
        "population": {"preset": "anchor_ramucirumab"},
        "cohort": {"size": 10},
        "treatment": {"sequence": ["ramucirumab", "regorafenib"]},
    }
    small = Scenario.model_validate(base)
    big = Scenario.model_validate({**base, "cohort": {"size": 30}})
    a, b = _simulate(small), _simulate(big)
    # Patient i is the same virtual patient whatever the cohort size (keyed by its index).
    np.testing.assert_array_equal(a["patients"]["age"], b["patients"]["age"][:10])
    np.testing.assert_array_equal(
        a["patients"]["last_follow_up_day"], b["patients"]["last_follow_up_day"][:10]
    )
    other = _simulate(small, replicate=1)
    assert not np.array_equal(a["patients"]["age"], other["patients"]["age"])


# -- properties across scenarios (common random numbers, follow-up) ------------------------------
# Regimens without label restrictions, so the policy reads the same draws in both arms.
UNRESTRICTED = sorted(
    n
    for n, t in catalogue().items()
    if t.kind != "supportive"
    and not t.restrictions.requires_prior
    and t.restrictions.afp_min is None
)


def _base(seed: int, size: int, sequence: list[str], months: float = 24.0) -> dict:
    return {
        "name": "prop",
        "description": "property test",
        "seed": seed,
        "population": {"preset": "anchor_ramucirumab"},
        "cohort": {"size": size, "batch_size": 8},
        "treatment": {"sequence": sequence},
        "observation": {"max_follow_up_months": months},
    }


@given(
    st.integers(0, 2**63 - 1),
    st.sampled_from(UNRESTRICTED),
    st.lists(st.sampled_from(UNRESTRICTED), min_size=2, max_size=2, unique=True),
)
@settings(max_examples=15)
def test_arms_share_patients_until_treatment_differs(seed, first, seconds):
    """Common random numbers: two scenarios that differ only in the second regimen give the
    same patients, the same index line and the same deaths of patients who never reach it."""
    a, b = (
        _simulate(Scenario.model_validate(_base(seed, 20, [first, second]))) for second in seconds
    )
    for col in ("age", "afp_ng_ml", "max_lesion_mm", "ecog"):
        np.testing.assert_array_equal(a["patients"][col], b["patients"][col])
    for t in (a, b):
        assert np.all(t["lines"]["line"][t["lines"]["index"]] == t["patients"]["index_line"])
    ia, ib = a["lines"]["index"], b["lines"]["index"]
    for col in ("start_day", "end_day", "end_reason", "cycles", "dose_reductions", "holds"):
        np.testing.assert_array_equal(a["lines"][col][ia], b["lines"][col][ib], err_msg=col)
    # Index-line scans are the same scans with the same readings.
    for t in (a, b):
        t["_idx"] = (
            t["assessments"]["line"] == t["patients"]["index_line"][t["assessments"]["patient_id"]]
        )
    for col in ("day", "sum_recist_mm", "response_recist", "response_mrecist"):
        np.testing.assert_array_equal(
            a["assessments"][col][a["_idx"]], b["assessments"][col][b["_idx"]]
        )
    # Patients with a single line never met the second regimen: identical histories.
    one = [p for p in range(20) if (a["lines"]["patient_id"] == p).sum() == 1]
    for p in one:
        assert (b["lines"]["patient_id"] == p).sum() == 1
        for col in ("death", "last_follow_up_day", "cause_of_death"):
            assert a["patients"][col][p] == b["patients"][col][p]


@given(st.integers(0, 2**63 - 1), st.sampled_from([6.0, 12.0]))
@settings(max_examples=10)
def test_longer_follow_up_keeps_what_happened_before(seed, short):
    """Follow-up is a window on a fixed history: deaths before the shorter horizon, and lines
    finished before it, are the same with a longer horizon."""
    seq = ["ramucirumab", "regorafenib", "cabozantinib"]
    s = _simulate(Scenario.model_validate(_base(seed, 15, seq, short)))
    long = _simulate(Scenario.model_validate(_base(seed, 15, seq, 60.0)))
    died = s["patients"]["death"]
    # Equal up to the numerics: budgets are integrated over different intervals (the horizon
    # is a decision time), death is inverted by Newton's method to 1e-6 days, and new lesions
    # are placed by linear interpolation of the seeding intensity's cumulative within pieces,
    # which depends on the pieces: death times agree to about 1e-4 days (seconds).
    np.testing.assert_allclose(
        s["patients"]["last_follow_up_day"][died],
        long["patients"]["last_follow_up_day"][died],
        rtol=0,
        atol=1e-3,
    )
    assert np.all(long["patients"]["death"][died])

    def lines(t, mask):
        ln = t["lines"]
        return {
            (int(p), int(k), round(float(e), 5), str(r))
            for p, k, e, r in zip(
                ln["patient_id"][mask],
                ln["line"][mask],
                ln["end_day"][mask],
                ln["end_reason"][mask],
                strict=True,
            )
        }

    closed = s["lines"]["end_reason"] != "end_of_follow_up"
    assert lines(s, closed) <= lines(long, np.ones(len(long["lines"]["line"]), dtype=bool))
