"""Calibration machinery (``hccsim.simulator.calibration``): targets, pool statistics, the
calibration check and the staged fit.

References and tolerances:

- Standard errors of targets: the rules of the targets module, recomputed here by hand.
- Kaplan-Meier values and medians against lifelines' KaplanMeierFitter (exact up to
  floating-point summation, 1e-12); Cox hazard ratios against lifelines' CoxPHFitter (Efron
  ties) run with a tight stopping rule, 1e-6 relative.
- The check and the fit are deterministic functions of their seed: no stochastic tolerance.
- Recovery: targets simulated at known parameters, refitted from a start 35-40% away with the
  same pool size and seed (common random numbers), so that the loss is exactly zero at the
  truth; each parameter must come back within 10%.

Scenario files are written into pytest's temporary folder (a tiny placebo-only study named
RECOVERY); no file of ``scenarios/calibration`` is read.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import ndtri

from hccsim.analysis.endpoints import Endpoint
from hccsim.analysis.summary import ALBI_WEEKS
from hccsim.simulator.calibration import check, fit, pools, targets
from hccsim.simulator.engine import DAYS_PER_MONTH
from hccsim.simulator.errors import InputError
from hccsim.simulator.studies import run

ROOT = Path(__file__).resolve().parents[1]
TARGETS_FILE = ROOT / "calibration" / "targets.yaml"
Z975 = 1.959964
TIGHT = {"precision": 1e-14, "r_precision": 1e-15}  # lifelines' stopping rule for references

RECOVERY_YAML = """\
name: recovery
description: tiny placebo study for the calibration tests
seed: 5
replicates: 1
population: {preset: second_line_post_sorafenib}
cohort: {size: 80}
treatment: {sequence: [placebo, best_supportive_care]}
observation: {imaging_weeks: 6, lab_weeks: 2, max_follow_up_months: 60}
"""
GROWTH = "tumour.growth_median_per_day"
DEATH = "death.base_rate_per_month"
TRUTH = {GROWTH: 0.0033, DEATH: 0.004}  # the defaults of params/default.yaml
NH_PARAMS = (fit.Param(GROWTH, 0.0008, 0.012), fit.Param(DEATH, 0.0005, 0.05))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("calibration_scenarios")
    (d / "recovery.yaml").write_text(RECOVERY_YAML, "utf-8")
    return d


def tgt(
    id_: str,
    statistic: str,
    endpoint: str,
    value: float,
    *,
    arms=("placebo",),
    study: str = "RECOVERY",
    se: float = 0.05,
    scale: str = "log",
    n: int = 100,
    counted: bool = True,
    extra: dict | None = None,
) -> targets.Target:
    return targets.Target(
        id=id_,
        study=study,
        arms=tuple(arms),
        statistic=statistic,
        endpoint=endpoint,
        value=value,
        ci=None,
        se=se,
        scale=scale,
        n=n,
        counted=counted,
        fitted=True,
        approx=False,
        label=id_,
        extra=extra or {},
    )


# --- 1. targets -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo_data() -> dict:
    return targets.load_raw(TARGETS_FILE)[0]


@pytest.fixture(scope="module")
def repo_targets(repo_data) -> dict[str, targets.Target]:
    ts = targets.all_targets(repo_data)
    ids = [t.id for t in ts]
    assert len(ids) == len(set(ids))
    return {t.id: t for t in ts}


def test_every_trial_arm_has_its_os_target(repo_data, repo_targets):
    arms = [(trial, arm) for trial, spec in repo_data["trials"].items() for arm in spec["arms"]]
    assert len(arms) >= 19
    for trial, arm in arms:
        t = repo_targets[f"{trial}.{arm}.os"]
        assert (t.statistic, t.endpoint, t.arms, t.counted, t.fitted) == (
            "median",
            "os",
            (arm,),
            True,
            True,
        )
        assert t.n == repo_data["trials"][trial]["arms"][arm]["n"]
    anchor = repo_targets["anchor_study.os_median"]
    assert (anchor.value, anchor.n, anchor.arms) == (10.3, 37, ("ramucirumab",))


def test_hazard_ratios_counted_never_fitted(repo_data, repo_targets):
    hrs = [t for t in repo_targets.values() if t.statistic in ("hr", "subgroup_hr")]
    published = sum(
        sum(k.startswith("hr_") for k in spec)
        + sum(isinstance(v, dict) and "hr" in v for v in (spec.get("subgroups") or {}).values())
        for spec in repo_data["trials"].values()
    )
    assert len(hrs) == published == 18
    assert all(t.counted and not t.fitted and len(t.arms) == 2 for t in hrs)
    # an HR at another CI level: HIMALAYA's 96.02% interval, approx trial
    h = repo_targets["HIMALAYA.hr_os_stride_vs_sorafenib"]
    z = float(ndtri(0.5 + 0.9602 / 2))
    assert h.arms == ("durvalumab_tremelimumab", "sorafenib")
    assert h.se == pytest.approx(1.5 * (math.log(0.92) - math.log(0.65)) / (2 * z), rel=1e-12)


def test_no_target_is_fitted_twice_and_no_hazard_ratio_is_fitted(repo_targets):
    """Each target serves one stage's loss at most and is marked fitted, so no stage's loss
    holds a hazard ratio (DESIGN section 11: hazard ratios are checks; the test above keeps
    them unfitted)."""
    stages = fit.build_stages(list(repo_targets.values()))
    assert stages[0].name == "natural_history"
    assert "SHARP.placebo.ttp" in stages[0].target_ids
    in_stages = [i for s in stages for i in s.target_ids]
    assert len(in_stages) == len(set(in_stages))
    assert all(repo_targets[i].fitted for i in in_stages)


def test_natural_history_stage_fits_the_pace_of_decline(repo_targets):
    """On placebo a stop "for an adverse event" is clinical decline (ECOG 3 ends a line), so
    SHARP's placebo share sets ``status.worsening_rate_per_month`` with the untreated-course
    parameters; the sorafenib share (drug toxicity as well) stays out of every stage."""
    stages = fit.build_stages(list(repo_targets.values()))
    nh = stages[0]
    assert "status.worsening_rate_per_month" in [p.path for p in nh.params]
    assert "SHARP.placebo_discontinued_for_ae" in nh.target_ids
    assert all(repo_targets[i].arms[0] == "placebo" for i in nh.target_ids)
    assert not any("SHARP.sorafenib_discontinued_for_ae" in s.target_ids for s in stages)


def test_reflect_investigator_orr_is_context_only(repo_targets):
    for arm in ("lenvatinib", "sorafenib"):
        inv = repo_targets[f"REFLECT.{arm}.orr_mrecist_investigator"]
        assert not inv.counted and not inv.fitted
        for key in ("orr_mrecist_independent", "orr_recist_independent"):
            ind = repo_targets[f"REFLECT.{arm}.{key}"]
            assert ind.counted and ind.fitted
    assert repo_targets["REFLECT.lenvatinib.orr_mrecist_independent"].value == 0.406


def test_standard_errors(repo_targets):
    t = repo_targets["CELESTIAL.cabozantinib.os"]
    assert t.se == pytest.approx((math.log(12.0) - math.log(9.1)) / (2 * Z975), rel=1e-6)
    # CELESTIAL placebo PFS: CI [1.9, 1.9] of zero width -> the floor
    assert repo_targets["CELESTIAL.placebo.pfs_recist"].se == targets.FLOOR["log"] == 0.05
    # a bare median in a large arm: 15% beats 1 / sqrt(0.7 n)
    assert repo_targets["SHARP.placebo.ttp"].se == pytest.approx(0.15)
    assert repo_targets["SHARP.placebo.ttp"].endpoint == "ttp_recist"
    # approx trials: 1.5 times, for a CI, a bare median and a proportion
    ap = repo_targets["ASIA_PACIFIC.sorafenib.os"]
    assert ap.approx
    assert ap.se == pytest.approx(1.5 * (math.log(7.56) - math.log(5.56)) / (2 * Z975), rel=1e-6)
    assert repo_targets["ASIA_PACIFIC.placebo.os"].se == pytest.approx(1.5 * 0.15)
    pt = (0.03 * 194 + 1) / (194 + 2)
    assert repo_targets["RESORCE.placebo.orr_recist"].se == pytest.approx(
        1.5 * math.sqrt(pt * (1 - pt) / 194)
    )
    # 0 of 37 keeps a positive error (Agresti-Coull count)
    cr = repo_targets["anchor_study.best_response_recist.CR"]
    assert cr.value == 0.0
    assert cr.se == pytest.approx(math.sqrt((1 / 39) * (38 / 39) / 37)) and cr.se > 0.02
    # landmark: binomial on the arm size (approx trial)
    lm = repo_targets["IMBRAVE150.sorafenib.os_12_months"]
    assert lm.se == pytest.approx(1.5 * math.sqrt(0.546 * 0.454 / 165))
    assert lm.extra == {"at_months": 12.0}


def test_bare_median_of_a_small_arm(repo_data):
    data = copy.deepcopy(repo_data)
    data["trials"]["SMALL"] = {
        "arms": {
            "drug": {"n": 20, "os": 5.0},
            "placebo": {"n": 20, "os": {"value": 3.0, "ci": [2.0, 4.0]}},
        }
    }
    by_id = {t.id: t for t in targets.all_targets(data)}
    assert by_id["SMALL.drug.os"].se == pytest.approx(1 / math.sqrt(0.7 * 20))  # 0.267 > 0.15
    assert by_id["SMALL.placebo.os"].se == pytest.approx(math.log(2.0) / (2 * Z975), rel=1e-6)


def test_published_rounding_digits(repo_targets):
    # the parsed float lost the trailing zero of "8.0" and "0.30"
    assert repo_targets["CELESTIAL.placebo.os"].digits == 1
    assert repo_targets["IMBRAVE150.atezolizumab_bevacizumab.orr_recist"].digits == 2
    assert repo_targets["REFLECT.lenvatinib.orr_mrecist_independent"].digits == 3
    assert repo_targets["SHARP.hr_os"].digits == 2
    assert repo_targets["HIMALAYA.durvalumab_tremelimumab.os"].digits == 2
    assert repo_targets["anchor_study.cycles_median"].digits == 0


def test_bad_targets_files(tmp_path, repo_data):
    missing = tmp_path / "none.yaml"
    with pytest.raises(InputError, match="not found"):
        targets.load_raw(missing)
    no_anchor = tmp_path / "no_anchor.yaml"
    no_anchor.write_text("trials: {}\n", "utf-8")
    with pytest.raises(InputError) as exc:
        targets.load_raw(no_anchor)
    assert str(no_anchor) in str(exc.value) and "anchor_study" in str(exc.value)

    data = copy.deepcopy(repo_data)
    data["trials"]["SHARP"]["arms"]["placebo"]["median_os"] = 7.9
    with pytest.raises(InputError) as exc:
        targets.all_targets(data)
    msg = str(exc.value)
    assert "targets.yaml" in msg and "trials.SHARP.arms.placebo.median_os" in msg
    assert "allowed" in msg

    data = copy.deepcopy(repo_data)
    data["trials"]["SHARP"]["safety"]["sorafenib_grade4_rash"] = 0.1
    with pytest.raises(InputError, match=r"trials\.SHARP\.safety\.sorafenib_grade4_rash"):
        targets.all_targets(data)


# --- 2. statistics against lifelines ----------------------------------------------------------

_times = st.lists(
    st.tuples(st.integers(1, 8), st.booleans()), min_size=1, max_size=25
)  # small integer times: many ties, censorings tied with deaths


@given(_times, st.integers(0, 20))
def test_km_at_matches_lifelines(rows, half_days):
    from lifelines import KaplanMeierFitter

    d = np.array([r[0] for r in rows], dtype=float)
    e = np.array([r[1] for r in rows], dtype=bool)
    day = half_days / 2.0  # on and between the event times
    kmf = KaplanMeierFitter().fit(d, e)
    ref = float(kmf.survival_function_at_times(day).iloc[0])
    assert pools.km_at(Endpoint("os", d, e), day) == pytest.approx(ref, abs=1e-12)
    med = pools._median_months(Endpoint("os", d, e))
    ref_med = float(kmf.median_survival_time_) / DAYS_PER_MONTH
    assert med == ref_med if math.isinf(ref_med) else med == pytest.approx(ref_med, rel=1e-12)


def test_km_at_hand_made_ties():
    # 6 patients: deaths at 2 (two), censoring at 2 (one), death at 5, censored at 5 and 7
    e = Endpoint(
        "os",
        np.array([2, 2, 2, 5, 5, 7], float),
        np.array([True, True, False, True, False, False]),
    )
    assert pools.km_at(e, 1.9) == 1.0
    assert pools.km_at(e, 2.0) == pytest.approx(4 / 6)  # the censoring at 2 is still at risk
    assert pools.km_at(e, 5.0) == pytest.approx(4 / 6 * 2 / 3)
    assert pools.km_at(e, 100.0) == pytest.approx(4 / 6 * 2 / 3)


def _two_arms(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    out = {}
    for arm, scale in (("a", 12.0), ("b", 8.0)):
        t = np.round(rng.exponential(scale, n))
        c = np.round(rng.exponential(15.0, n))
        d = np.maximum(np.minimum(t, c), 1.0)
        out[arm] = {
            "os": Endpoint("os", d, t <= c),
            "afp": np.where(rng.random(n) < 0.4, 1000.0, 50.0),
        }
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hr_matches_lifelines_cox_efron(seed):
    from lifelines import CoxPHFitter

    arms = _two_arms(seed)
    t = tgt("X.hr_os", "hr", "os", 0.7, arms=("a", "b"), study="X")
    ours = pools.statistic(t, arms)

    def ref(mask_a, mask_b):
        a, b = arms["a"]["os"], arms["b"]["os"]
        df = pd.DataFrame(
            {
                "T": np.concatenate([a.durations[mask_a], b.durations[mask_b]]),
                "E": np.concatenate([a.events[mask_a], b.events[mask_b]]),
                "x": np.r_[np.ones(mask_a.sum()), np.zeros(mask_b.sum())],
            }
        )
        cph = CoxPHFitter().fit(df, "T", "E", fit_options=TIGHT)
        return float(cph.hazard_ratios_["x"])

    all_a, all_b = np.ones(60, bool), np.ones(60, bool)
    assert ours == pytest.approx(ref(all_a, all_b), rel=1e-6)
    assert abs(math.log(ours)) > 0.05  # the two arms really differ
    sub = tgt("X.hr_os_afp_ge_400", "subgroup_hr", "os", 0.7, arms=("a", "b"), study="X")
    sub = targets._replace(sub, extra={"subgroup": "afp_ge_400"})
    hi_a, hi_b = arms["a"]["afp"] >= 400, arms["b"]["afp"] >= 400
    assert pools.statistic(sub, arms) == pytest.approx(ref(hi_a, hi_b), rel=1e-6)


def test_subgroup_median_masks_by_afp():
    from lifelines import KaplanMeierFitter

    arms = _two_arms(4, n=80)
    ep = arms["a"]
    for group, mask in (("afp_ge_400", ep["afp"] >= 400.0), ("afp_lt_400", ep["afp"] < 400.0)):
        t = tgt(f"X.a.os_{group}", "subgroup_median", "os", 5.0, arms=("a",), study="X")
        t = targets._replace(t, extra={"subgroup": group})
        kmf = KaplanMeierFitter().fit(ep["os"].durations[mask], ep["os"].events[mask])
        expected = float(kmf.median_survival_time_) / DAYS_PER_MONTH
        assert pools.statistic(t, arms) == pytest.approx(expected, rel=1e-12)
    whole = pools.statistic(tgt("X.a.os", "median", "os", 5.0, arms=("a",), study="X"), arms)
    hi = targets._replace(
        tgt("X.a.hi", "subgroup_median", "os", 5.0, arms=("a",), study="X"),
        extra={"subgroup": "afp_ge_400"},
    )
    lo = targets._replace(hi, extra={"subgroup": "afp_lt_400"})
    assert len({whole, pools.statistic(hi, arms), pools.statistic(lo, arms)}) == 3


def _hand_pool() -> dict:
    """Eight patients, in the structure of ``analysis.summary.patient_endpoints``."""
    n = 8
    albi = np.full((n, len(ALBI_WEEKS)), np.nan)
    j4 = list(ALBI_WEEKS).index(4)
    albi[:5, j4] = [-2.5, -2.1, -2.3, -1.9, -2.0]  # three patients unmeasured at week 4
    days = np.array([30, 60, 90, 120, 200, 300, 400, 500], float)
    return {
        "os": Endpoint("os", days, np.array([1, 1, 0, 1, 1, 1, 0, 1], bool)),
        "pfs_recist": Endpoint("pfs_recist", days / 2, np.ones(n, bool)),
        "pfs_mrecist": Endpoint("pfs_mrecist", days / 2, np.ones(n, bool)),
        "ttp_recist": Endpoint("ttp_recist", days / 2, np.ones(n, bool)),
        "bor_recist": np.array(["CR", "PR", "PR", "SD", "SD", "SD", "PD", "NE"], dtype=object),
        "bor_mrecist": np.array(["CR", "PR", "PR", "PR", "SD", "PD", "PD", "NE"], dtype=object),
        "ae_worst": {
            "hypertension": np.array([0, 1, 2, 3, 0, 0, 4, 1]),
            "fatigue": np.array([0, 0, 0, 0, 0, 0, 0, 2]),
        },
        "grade3plus": np.array([0, 0, 0, 1, 0, 0, 1, 0], bool),
        "dose_reduction": np.array([1, 0, 0, 0, 0, 0, 0, 0], bool),
        "discontinued_for_ae": np.array([0, 0, 0, 1, 1, 1, 0, 0], bool),
        "albi_weeks": albi,
        "cycles": np.array([1, 2, 2, 3, 4, 6, 8, 10], float),
        "later_line": np.array([0, 1, 0, 1, 0, 0, 0, 0], bool),
        "afp": np.array([10, 500, 400, 399.9, 20, 30, 4000, 1], float),
        "index_line": np.array([2, 2, 3, 3, 3, 4, 5, 2], np.int64),
    }


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("orr_recist", 3 / 8),
        ("dcr_recist", 6 / 8),
        ("orr_mrecist", 4 / 8),
        ("dcr_mrecist", 5 / 8),
        ("bor_recist:SD", 3 / 8),
        ("bor_mrecist:PD", 2 / 8),
        ("bor_recist:NE", 1 / 8),
        ("ae_any:hypertension", 5 / 8),
        ("ae_g3:hypertension", 2 / 8),
        ("ae_any:fatigue", 1 / 8),
        ("ae_g3:fatigue", 0.0),
        ("ae_any:proteinuria", 0.0),  # never seen in the pool
        ("grade3plus", 2 / 8),
        ("dose_reduction", 1 / 8),
        ("discontinued_for_ae", 3 / 8),
        ("later_line", 2 / 8),
        ("index_line:3", 3 / 8),
    ],
)
def test_share_statistics(endpoint, expected):
    t = tgt("X.a.s", "share", endpoint, 0.5, arms=("a",), study="X", scale="proportion")
    assert pools.statistic(t, {"a": _hand_pool()}) == pytest.approx(expected, abs=1e-15)


def test_value_and_landmark_statistics():
    arms = {"a": _hand_pool(), "b": _hand_pool()}
    arms["b"]["afp"] = np.zeros(8)
    t = tgt("X.afp", "share", "afp_ge_400", 0.4, arms=("a", "b"), study="X")
    assert pools.statistic(t, arms) == pytest.approx(3 / 16)  # 500, 400, 4000 of 16
    cyc = tgt("X.a.cycles", "median_value", "cycles", 4.0, arms=("a",), study="X")
    assert pools.statistic(cyc, arms) == 3.5
    albi = tgt("X.a.albi4", "median_value", "albi_week:4", -2.2, arms=("a",), study="X")
    assert pools.statistic(albi, arms) == pytest.approx(-2.1)  # NaN ignored
    lm = tgt("X.a.lm", "landmark", "os", 0.5, arms=("a",), study="X", extra={"at_months": 3.5})
    # day 106.5: deaths at 30 and 60 (8 and 7 at risk); censored at 90
    assert pools.statistic(lm, arms) == pytest.approx(7 / 8 * 6 / 7)
    with pytest.raises(ValueError, match="unknown share endpoint"):
        pools.statistic(tgt("X.a.z", "share", "nonsense", 0.1, arms=("a",), study="X"), arms)


# --- 3. check ---------------------------------------------------------------------------------


def test_judge_z_and_inside():
    rng = np.random.default_rng(7)
    raw = rng.normal(0.0, 1.0, 2000)
    at_mean = tgt("S.a.os", "median", "os", 5.0, study="S")
    far = tgt("S.a.pfs", "median", "pfs_recist", 8.0, study="S")
    draws = {
        at_mean.id: 5.0 + 0.5 * (raw - raw.mean()) / raw.std(ddof=1),
        far.id: 5.0 + 0.5 * raw,
    }
    r0, r1 = check.judge([at_mean, far], draws)
    assert r0.mean == pytest.approx(5.0) and r0.z == pytest.approx(0.0, abs=1e-12)
    assert r0.sd == pytest.approx(math.hypot(0.5, 0.05))  # cohorts and rounding of "5.0"
    assert r0.inside and r0.low < 5.0 < r0.high
    assert abs(r1.z) > check.Z_LIMIT and not r1.inside
    assert r1.z == pytest.approx((8.0 - r1.mean) / r1.sd)


def test_judge_rounding_widening():
    # draws whose central 95% range is [1.84, 1.86]
    w = 0.01 / 0.95
    draws = np.linspace(1.85 - w, 1.85 + w, 2001)
    lo, hi = np.quantile(draws, [0.025, 0.975])
    assert lo == pytest.approx(1.84) and hi == pytest.approx(1.86)
    inside = check.judge(
        [tgt("S.a.pfs", "median", "pfs_recist", 1.9, study="S")], {"S.a.pfs": draws}
    )
    assert inside[0].inside  # 1.9 <= 1.86 + 0.05: inside only through the rounding
    beyond = check.judge(
        [tgt("S.a.pfs", "median", "pfs_recist", 1.92, study="S")], {"S.a.pfs": draws}
    )
    assert not beyond[0].inside  # two decimals: rounding 0.005
    # an exact count out of n has no rounding
    count = targets._replace(
        tgt("S.a.pr", "share", "bor_recist:PR", 0.19, study="S", scale="proportion"),
        extra={"count": 7},
    )
    shares = np.linspace(0.17 - 0.01 / 0.95, 0.17 + 0.01 / 0.95, 2001)  # range [0.16, 0.18]
    res = check.judge([count], {"S.a.pr": shares})[0]
    assert not res.inside and res.sd == pytest.approx(shares.std(ddof=1))


def test_judge_undefined_statistic():
    v = np.full(100, np.nan)
    v[:20] = 3.0
    r = check.judge([tgt("S.a.os", "median", "os", 3.0, study="S")], {"S.a.os": v})[0]
    assert r.undefined == 80 and r.mean is None and r.inside is False


def _result(id_: str, inside: bool, z: float | None = 0.5, counted: bool = True):
    return check.Result(
        id_, id_.split(".")[0], id_, counted, True, False, "median", 1.0, None,
        1.0, 0.5, 1.5, 0.2, z, inside, 0, "",
    )  # fmt: skip


def _report_provenance(resamples: int) -> dict:
    """The provenance fields ``report.write`` reads, with made-up values."""
    return {
        "parameters": {"version": "v", "sha256": "0" * 64},
        "targets": {"sha256": "1" * 64},
        "seed": 1,
        "resamples": resamples,
        "pool": {"factor": 4.0, "minimum": 10},
        "hccsim": "0",
        "date": "today",
        "seconds": 1.0,
    }


def _set(n_out: int, anchors_inside: bool = True) -> list:
    res = [_result(a, anchors_inside) for a in check.ANCHOR_REQUIRED]
    res += [_result(f"T.x{i}", i >= n_out) for i in range(17)]
    return res  # 20 counted targets


def test_verdict_rules():
    ok = check.verdict(_set(2))  # 18 of 20 inside: 90%
    assert ok["passed"] and ok["pass_rate"] == pytest.approx(0.9) and ok["counted"] == 20
    assert not check.verdict(_set(3))["passed"]  # 85%
    # a counted target beyond |z| = 3.3 fails even when inside
    res = _set(0)
    res[5] = _result("T.big", True, z=-3.31)
    v = check.verdict(res)
    assert not v["passed"] and v["beyond_z_limit"] == ["T.big"]
    res[5] = _result("T.big", True, z=3.29)
    assert check.verdict(res)["passed"]
    # ... but not when it is not counted; an undefined z counts as beyond
    res[5] = _result("T.big", False, z=9.0, counted=False)
    assert check.verdict(res)["passed"]
    res[5] = _result("T.big", False, z=None)
    assert check.verdict(res)["beyond_z_limit"] == ["T.big"]
    # the anchor medians must be inside, whatever the share
    res = _set(0)
    res[1] = _result(check.ANCHOR_REQUIRED[1], False)
    v = check.verdict(res)
    assert v["pass_rate"] == pytest.approx(0.95) and not v["passed"]
    assert v["anchor_inside"][check.ANCHOR_REQUIRED[1]] is False
    assert not check.verdict(_set(0)[1:])["passed"]  # an anchor median missing
    assert not check.verdict([])["passed"]


def test_known_gaps_are_read_beside_the_targets_and_shown_with_the_misses(tmp_path):
    """known_gaps.yaml beside the targets file: exact ids, '*' prefixes and comma-separated lists
    of them sharing one reason; the report's table of misses carries the reason ('not
    explained' without one) and calibration.json its gap_reason. A key naming no target (or
    with one name in its list that names none), or a reason that is not text, is an input
    error that names the file and the key."""
    from hccsim.simulator.calibration import commands, report

    targets_file = tmp_path / "targets.yaml"
    targets_file.write_text("{}\n")
    ids = ["T.x0", "T.x1", "U.y"]
    assert commands.known_gaps(targets_file, ids) == {}
    gaps_file = tmp_path / commands.KNOWN_GAPS
    gaps_file.write_text("gaps:\n  T.*: no such mechanism\n  U.y: |\n    too few\n    patients\n")
    gaps = commands.known_gaps(targets_file, ids)
    assert gaps == {
        "T.x0": "no such mechanism",
        "T.x1": "no such mechanism",
        "U.y": "too few patients",
    }
    gaps_file.write_text("gaps:\n  ? T.x1, U.y\n  : shared\n  T.x0: own\n")
    assert commands.known_gaps(targets_file, ids) == {
        "T.x0": "own",
        "T.x1": "shared",
        "U.y": "shared",
    }
    for text, key in (
        ("gaps:\n  V.z: reason\n", "gaps.V.z"),
        ("gaps:\n  U.y: 3\n", "gaps.U.y"),
        ("gaps:\n  T.x0, V.z: reason\n", "'V.z'"),
    ):
        gaps_file.write_text(text)
        with pytest.raises(InputError) as e:
            commands.known_gaps(targets_file, ids)
        assert str(gaps_file) in str(e.value) and key in str(e.value)

    results = _set(2)
    verdict = check.verdict(results)
    prov = _report_provenance(10)
    report.write(tmp_path / "out", results, verdict, prov, {}, (), {"T.x0": "no such mechanism"})
    md = (tmp_path / "out" / "report.md").read_text()
    misses = md.split("## Targets that do not pass")[1].split("## Figures")[0]
    assert "Why (model gap)" in misses
    assert "no such mechanism" in misses and "not explained" in misses  # T.x1 has none
    rows = {
        r["id"]: r
        for r in json.loads((tmp_path / "out" / "calibration.json").read_text())["targets"]
    }
    assert rows["T.x0"]["gap_reason"] == "no such mechanism" and rows["T.x1"]["gap_reason"] is None


def _fake_pool(n: int, offset: int) -> dict:
    ids = np.arange(n, dtype=float) + offset
    return {"os": Endpoint("os", ids + 1.0, np.ones(n, bool)), "afp": ids}


def test_resample_sizes_and_determinism(monkeypatch):
    arm_pools = {("S", "a"): _fake_pool(50, 0), ("S", "b"): _fake_pool(30, 1000)}
    published = {("S", "a"): 7, ("S", "b"): 11}
    hr = tgt("S.hr_os", "hr", "os", 0.8, arms=("a", "b"), study="S")
    med = tgt("S.a.os", "median", "os", 1.0, arms=("a",), study="S")
    real = check.resample([med], arm_pools, published, 40, seed=3)
    again = check.resample([med], arm_pools, published, 40, seed=3)
    other = check.resample([med], arm_pools, published, 40, seed=4)
    np.testing.assert_array_equal(real["S.a.os"], again["S.a.os"])
    assert not np.array_equal(real["S.a.os"], other["S.a.os"])

    seen = []

    def counting(t, cohort):
        seen.append({a: c["afp"].copy() for a, c in cohort.items()})
        return float(len(cohort["a"]["os"].durations) * 100 + len(cohort["b"]["os"].durations))

    monkeypatch.setattr(pools, "statistic", counting)
    out = check.resample([hr], arm_pools, published, 25, seed=3)
    assert out["S.hr_os"].tolist() == [711.0] * 25
    assert len(seen) == 25
    for c in seen:  # drawn from each arm's own pool, with replacement
        assert set(c["a"]) <= set(range(50)) and set(c["b"]) <= set(range(1000, 1030))
    assert len(np.unique(np.concatenate([c["a"] for c in seen]))) > 40


# --- 4. fit -----------------------------------------------------------------------------------


def test_param_round_trip_and_bounds():
    p = fit.Param("x", 0.001, 0.1)
    for v in (0.0011, 0.004, 0.01, 0.05, 0.099):
        assert p.from_x(p.to_x(v)) == pytest.approx(v, rel=1e-12)
    # values at or beyond a bound start `margin` (share of the log range) inside it
    span = math.log(0.1 / 0.001)
    assert p.from_x(p.to_x(0.0001)) == pytest.approx(0.001 * math.exp(1e-4 * span), rel=1e-9)
    assert p.from_x(p.to_x(5.0)) == pytest.approx(0.1 * math.exp(-1e-4 * span), rel=1e-9)
    assert p.from_x(p.to_x(0.0, 0.05)) == pytest.approx(0.001 * math.exp(0.05 * span), rel=1e-9)
    assert p.from_x(p.to_x(0.05, 0.05)) == pytest.approx(0.05, rel=1e-12)
    xs = np.linspace(-30, 30, 61)
    vals = [p.from_x(x) for x in xs]
    assert all(0.001 <= v <= 0.1 for v in vals)
    assert all(b > a for a, b in itertools.pairwise(vals) if a > 0.001 and b < 0.1)
    assert p.from_x(0.0) == pytest.approx(math.sqrt(0.001 * 0.1))  # the log-scale middle


def test_distance_of_a_median():
    d_med = 10.0 * DAYS_PER_MONTH
    # 10 patients: 4 die at day 100, 2 at the median day, 4 at day 600: S 0.6 -> 0.4
    e = Endpoint("os", np.r_[[100.0] * 4, [d_med] * 2, [600.0] * 4], np.ones(10, bool))
    assert pools._median_months(e) == pytest.approx(10.0)
    arms = {"placebo": {"os": e}}
    se = 0.1
    scale = fit.SURVIVAL_SLOPE * se
    assert fit.distance(tgt("R.os", "median", "os", 10.0, se=se), arms) == 0.0
    early = fit.distance(tgt("R.os", "median", "os", 8.0, se=se), arms)
    assert early == pytest.approx((0.6 - 0.5) / scale)  # S = 0.6 > 0.5 there: positive
    late = fit.distance(tgt("R.os", "median", "os", 15.0, se=se), arms)
    assert late == pytest.approx((0.4 - 0.5) / scale)
    # a PFS median on a scan day, the curve dropping from 0.9 to 0.3 at that scan: zero at the
    # published median (the mean of the curve either side would be 0.6)
    pfs = Endpoint("pfs_recist", np.r_[20.0, [42.0] * 6, [84.0] * 3], np.ones(10, bool))
    m = pools._median_months(pfs)
    arms = {"placebo": {"pfs_recist": pfs}}
    assert fit.distance(tgt("R.pfs", "median", "pfs_recist", m, se=se), arms) == 0.0
    # published at the next scan: the pool crossed 0.5 too early (S = 0.3 half a scan before)
    nxt = fit.distance(tgt("R.pfs", "median", "pfs_recist", 84 / DAYS_PER_MONTH, se=se), arms)
    assert nxt == pytest.approx((0.3 - 0.5) / scale)
    # published between the two scans (1.0 month, day 30.4): the curve stands at 0.9 there, so
    # the pool is 0.4 above the trial's 0.5, though it crosses 0.5 at the next scan, within
    # half an imaging interval (the window of loss version 1, which gave zero)
    between = fit.distance(tgt("R.pfs", "median", "pfs_recist", 1.0, se=se), arms)
    assert between == pytest.approx((0.9 - 0.5) / scale)
    # the rounding of the published figure is the interval: 1.4 months (42.6 days, 0.05 months
    # = 1.5 days either side) holds the scan at day 42, 1.3 months (39.6 days) does not
    assert fit.distance(tgt("R.pfs", "median", "pfs_recist", 1.4, se=se), arms) == 0.0
    early_pfs = fit.distance(tgt("R.pfs", "median", "pfs_recist", 1.3, se=se), arms)
    assert early_pfs == pytest.approx((0.9 - 0.5) / scale)
    # a median that the pool does not reach: finite and positive
    flat = {"placebo": {"os": Endpoint("os", np.full(10, 50.0), np.zeros(10, bool))}}
    far = fit.distance(tgt("R.os", "median", "os", 10.0, se=se), flat)
    assert far == pytest.approx(0.5 / scale)


def test_distance_of_other_targets():
    arms = {"a": _hand_pool()}
    share = tgt("X.a.orr", "share", "orr_recist", 0.25, arms=("a",), scale="proportion", se=0.05)
    assert fit.distance(share, arms) == pytest.approx((3 / 8 - 0.25) / 0.05)
    cyc = tgt("X.a.cyc", "median_value", "cycles", 4.0, arms=("a",), se=0.15)
    assert fit.distance(cyc, arms) == pytest.approx(math.log(3.5 / 4.0) / 0.15)


def _median_targets(pfs: float = 1.5, os_: float = 8.0) -> list:
    return [
        tgt("RECOVERY.placebo.os", "median", "os", os_),
        tgt("RECOVERY.placebo.pfs_recist", "median", "pfs_recist", pfs),
    ]


def _stage(ts, max_evaluations: int) -> fit.Stage:
    return fit.Stage("natural_history", NH_PARAMS, tuple(t.id for t in ts), "test", max_evaluations)


def test_stage_loss_is_deterministic(folder):
    ts = _median_targets()
    stage = _stage(ts, 3)
    start = {GROWTH: 0.004, DEATH: 0.003}

    def loss(seed):
        with run.mapper(1) as m:
            r = fit.run_stage(
                stage,
                ts,
                start,
                sizes={("RECOVERY", "placebo"): 80},
                seed=seed,
                run_map=m,
                checkpoint=fit.Checkpoint(None, {}),
                folder=folder,
            )
        return r.loss_start, r.loss, r.per_target

    a, b, c = loss(1), loss(1), loss(2)
    assert a == b
    assert a[0] != c[0]
    assert a[0] > 0 and set(a[2]) == {t.id for t in ts}


# --- 5. recovery ------------------------------------------------------------------------------


def test_recovery_of_known_parameters(folder):
    """Targets simulated at TRUTH and refitted from a start 35-40% away.

    Identifiability: the published-style medians alone do not pin the two parameters. A PFS
    median sits on a scan day and stays on the first scan from growth 0.0025 to 0.0045, and the
    OS median moves by about 1% for a 10% change of the base death rate. The PFS landmark at 2 months (between the first two scans) identifies
    the growth rate; the base death rate is identified, weakly, by OS landmarks every 3 months
    to 18 months (a 10% change moves survival at 6 months by about 0.01), so both parameters
    are identifiable from this set of targets.
    """
    size, seed = 800, 11
    sizes = {("RECOVERY", "placebo"): size}
    with run.mapper(1) as m:
        truth_pool = pools.simulate_pools(["RECOVERY"], sizes, TRUTH, seed, m, folder)
        ep = truth_pool[("RECOVERY", "placebo")]
        ts = _median_targets(pools._median_months(ep["pfs_recist"]), pools._median_months(ep["os"]))
        for endpoint, months in [("pfs_recist", 2.0)] + [("os", float(k)) for k in range(3, 19, 3)]:
            v = pools.km_at(ep[endpoint], months * DAYS_PER_MONTH)
            ts.append(
                tgt(
                    f"RECOVERY.placebo.{endpoint}_{months:g}_months",
                    "landmark",
                    endpoint,
                    v,
                    se=math.sqrt(v * (1 - v) / size),
                    scale="proportion",
                    n=size,
                    extra={"at_months": months},
                )
            )
        assert fit.loss_of(ts, truth_pool)[0] == 0.0  # exactly zero at the truth
        start = {GROWTH: 0.0045, DEATH: 0.0025}
        r = fit.run_stage(
            _stage(ts, 60),
            ts,
            start,
            sizes=sizes,
            seed=seed,
            run_map=m,
            checkpoint=fit.Checkpoint(None, {}),
            folder=folder,
        )
    assert r.loss_start > 20 and r.loss < 0.1
    for path, true in TRUTH.items():
        assert abs(r.values[path] / true - 1) < 0.10, (path, r.values[path], true)
        assert abs(start[path] / true - 1) > 0.3


# --- 6. checkpoint and resume -----------------------------------------------------------------


def test_checkpoint_replay_and_resume(folder, tmp_path, monkeypatch):
    ts = _median_targets()
    path = tmp_path / "cp.jsonl"
    header = {"seed": 1, "targets": "abc"}
    kwargs = {
        "sizes": {("RECOVERY", "placebo"): 80},
        "seed": 1,
        "folder": folder,
    }
    start = {GROWTH: 0.005, DEATH: 0.003}
    with run.mapper(1) as m:
        first = fit.run_stage(
            _stage(ts, 5), ts, start, run_map=m, checkpoint=fit.Checkpoint(path, header), **kwargs
        )
        lines = path.read_text("utf-8").splitlines()
        assert json.loads(lines[0]) == {"header": header}
        recorded = [json.loads(x) for x in lines[1:] if "done" not in json.loads(x)]
        assert 3 <= len(recorded) <= first.evaluations and json.loads(lines[-1])["done"]

        calls = {"n": 0}
        real = pools.simulate_pools

        def counting(*args, **kw):
            calls["n"] += 1
            return real(*args, **kw)

        monkeypatch.setattr(pools, "simulate_pools", counting)
        cp = fit.Checkpoint(path, header)
        assert len(cp.memo) == len(recorded) and "natural_history" in cp.done
        again = fit.run_stage(_stage(ts, 5), ts, start, run_map=m, checkpoint=cp, **kwargs)
        assert calls["n"] == 0  # every point replayed from the file
        assert (again.values, again.loss, again.loss_start, again.evaluations) == (
            first.values,
            first.loss,
            first.loss_start,
            first.evaluations,
        )
        # a longer run goes on from the recorded points: only new points are simulated
        cp2 = fit.Checkpoint(path, header)
        longer = fit.run_stage(_stage(ts, 12), ts, start, run_map=m, checkpoint=cp2, **kwargs)
        new = len(cp2.memo) - len(recorded)
        assert calls["n"] == new > 0 and longer.evaluations > new
        assert longer.loss <= first.loss
    with pytest.raises(ValueError, match="checkpoint of another calibration"):
        fit.Checkpoint(path, {**header, "seed": 2})


# --- the command line ---------------------------------------------------------------------


def _hccsim(*argv, cwd):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "hccsim.simulator", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--check", "--stages", "safety"], "--stages, --max-evaluations and --params-out"),
        (["--params", "missing.yaml"], "--params missing.yaml: no such file"),
        (["--check", "--studies", "NOPE"], "--studies: ['NOPE'] not in"),
        (["--stages", "nope", "--params-out", "x.yaml"], "--stages: ['nope'] unknown"),
        (["--studies", "SHARP"], "--studies and --resamples are for --check"),
        (["--resamples", "500"], "--studies and --resamples are for --check"),
        (["--check", "--resamples", "0"], "--resamples"),
    ],
)
def test_calibrate_bad_input_exits_2(tmp_path, argv, message):
    r = _hccsim("calibrate", *argv, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_calibrate_params_file_not_a_parameter_set(tmp_path):
    (tmp_path / "bad.yaml").write_text("tumour: [1, 2]\n")
    r = _hccsim("calibrate", "--check", "--params", "bad.yaml", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "--params bad.yaml" in r.stderr and "Traceback" not in r.stderr


def test_calibrate_check_and_fit_from_the_command_line(tmp_path):
    """A small check writes its report and states its verdict; a one-stage fit writes a
    parameter file with provenance, and running it again replays the checkpoint."""
    quick = ["--pool-factor", "1", "--min-pool", "60", "--seed", "5"]
    r = _hccsim(
        "calibrate", "--check", "--studies", "anchor_study", "--resamples", "20", *quick,
        "--out", "chk", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    assert r.stdout.startswith("hccsim calibrate --check: ")
    payload = json.loads((tmp_path / "chk" / "calibration.json").read_text())
    assert payload["provenance"]["seed"] == 5 and payload["provenance"]["resamples"] == 20
    assert (payload["verdict"]["passed"] is True) == (r.returncode == 0)
    fit_argv = [
        "calibrate", "--stages", "drug_ramucirumab", "--max-evaluations", "2", *quick,
        "--out", "fit", "--params-out", "fitted.yaml",
    ]  # fmt: skip
    first = _hccsim(*fit_argv, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    text = (tmp_path / "fitted.yaml").read_text()
    assert "calibration:  # provenance" in text and "drug_ramucirumab" in text
    assert "ramucirumab:" in text.split("\ndrugs:", 1)[1]
    # A one-stage refit keeps every other fitted value and stage record of the file it started
    # from (an earlier version wrote only the refitted drug under drugs:, silently dropping the
    # calibrated effects of all the others).
    from hccsim.simulator import parameters

    start = yaml.safe_load(parameters.params_source()[1])
    fitted = yaml.safe_load(text)
    for drug, kv in start["drugs"].items():
        for key, entry in kv.items():
            if drug != "ramucirumab" or key.startswith("ae."):
                assert fitted["drugs"][drug][key] == entry, (drug, key)
    assert set(fitted["drugs"]["ramucirumab"]) >= set(start["drugs"]["ramucirumab"])
    names = [st["name"] for st in fitted["calibration"]["stages"]]
    assert names == [st["name"] for st in start["calibration"]["stages"]]
    rerun = next(st for st in fitted["calibration"]["stages"] if st["name"] == "drug_ramucirumab")
    assert rerun["evaluations"] > 0  # the replay below must write the same count, not 0
    assert "refitted here: drug_ramucirumab" in fitted["calibration"]["earlier"]
    assert fitted["version"].endswith("+partial-refit")
    again = _hccsim(*fit_argv, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "done in the checkpoint" in again.stderr
    # the replay writes the same file, evaluations included (recorded in the checkpoint)
    assert (tmp_path / "fitted.yaml").read_text().split("date:")[0] == text.split("date:")[0]


def test_calibration_json_floats_are_rounded_to_ten_significant_digits():
    """Floats that differ only in their last bits (summation order, BLAS) are written alike,
    so the committed calibration.json does not change with the machine; NaN and infinity, ints,
    strings and nesting are kept. Deterministic."""
    import math

    from hccsim.simulator.calibration.report import _rounded

    a = {"z": 0.1 + 0.2, "x": [1.0000000000004, (2, "s")], "n": math.nan, "i": math.inf, "k": 3}
    b = {"z": 0.3, "x": [1.0, (2, "s")], "n": math.nan, "i": math.inf, "k": 3}
    ra, rb = _rounded(a), _rounded(b)
    assert ra["z"] == rb["z"] == 0.3 and ra["x"] == rb["x"] == [1.0, [2, "s"]]
    assert math.isnan(ra["n"]) and ra["i"] == math.inf and ra["k"] == 3
    assert _rounded(12345.678901234) == 12345.67890
    assert _rounded(np.float64(2.0) / 3.0) == 0.6666666667


def test_medians_are_also_shown_on_the_survival_scale(tmp_path):
    """For a median target the check also gives the simulated Kaplan-Meier survival just after
    the published median's day (0.5 on the trial's curve), whole arm or subgroup, equal to
    lifelines' estimate; over resampled cohorts its range holds 0.5 when the published median
    is the pool's own and excludes it when the published median is twice that. Fixed seeds;
    tolerances from the binomial error of a survival share (below)."""
    from lifelines import KaplanMeierFitter

    from hccsim.simulator.calibration import report

    rng = np.random.default_rng(11)
    n = 4000
    event_days = rng.exponential(30.0 / math.log(2.0), n)  # median 30 days
    censor_days = rng.exponential(200.0, n)  # independent censoring, about 13% censored
    days, events = np.minimum(event_days, censor_days), event_days <= censor_days
    afp = np.where(np.arange(n) % 2 == 0, 1000.0, 10.0)
    pool = {"os": Endpoint("os", days, events), "afp": afp}
    month = 30.0 / DAYS_PER_MONTH
    own = tgt("S.a.os", "median", "os", month, arms=("a",), study="S")
    far = tgt("S.a.os_far", "median", "os", 2 * month, arms=("a",), study="S")
    sub = tgt(
        "S.a.os_afp_ge_400", "subgroup_median", "os", month, arms=("a",), study="S",
        extra={"subgroup": "afp_ge_400"},
    )  # fmt: skip
    hr = tgt("S.hr_os", "hr", "os", 0.8, arms=("a", "a"), study="S")

    def lifelines_at(mask):
        km = KaplanMeierFitter().fit(days[mask], events[mask])
        return float(km.survival_function_at_times(30.0).iloc[0])

    everyone = np.ones(n, bool)
    assert pools.survival_at_published(own, {"a": pool}) == pytest.approx(lifelines_at(everyone))
    assert pools.survival_at_published(sub, {"a": pool}) == pytest.approx(lifelines_at(afp >= 400))
    assert math.isnan(pools.survival_at_published(hr, {"a": pool}))

    draws = check.resample([own, far, sub, hr], {("S", "a"): pool}, {("S", "a"): 200}, 400, seed=5)
    assert check.survival_key(hr.id) not in draws
    res = {r.id: r for r in check.judge([own, far, sub, hr], draws)}
    # Cohorts of 200: the survival share has sd about sqrt(0.25 / 200) = 0.035 (the 95% range
    # spans about +-0.07); the pool's own estimate at its median is 0.5 within about
    # 3 x sqrt(0.25 / 4000) = 0.024 (censoring widens it a little: 0.03 allowed).
    r = res[own.id]
    assert abs(r.survival_mean - 0.5) < 0.03
    assert r.survival_low < 0.5 < r.survival_high
    assert 0.08 < r.survival_high - r.survival_low < 0.2
    r = res[far.id]  # survival at twice the median: about 0.25
    assert abs(r.survival_mean - 0.25) < 0.04 and r.survival_high < 0.5
    assert res[hr.id].survival_mean is None

    results = list(res.values())
    prov = _report_provenance(400)
    report.write(tmp_path / "out", results, check.verdict(results), prov, {}, (), {})
    md = (tmp_path / "out" / "report.md").read_text()
    section = md.split("## Medians on the survival scale")[1].split("## Figures")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 3  # header and the three medians, not the hazard ratio
    assert rows[2].rstrip().endswith("| no |")  # the far median
    stored = json.loads((tmp_path / "out" / "calibration.json").read_text())["targets"]
    assert {t["id"]: t["survival_mean"] is None for t in stored}[hr.id]
    assert "Medians on the survival scale" in (tmp_path / "out" / "report.html").read_text()
