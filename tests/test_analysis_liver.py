"""ALBI by week, repeated-measures ANOVA, the mixed model and Child-Pugh transitions.

Closest-visit values and the by-week summaries are checked by hand on tiny cohorts (rules in the
docstring of ``hccsim.analysis.liver``). The repeated-measures ANOVA is checked against a hand
computation with exact rational values and against ``statsmodels.stats.anova.AnovaRM``. The
mixed model (statsmodels ``MixedLM``) is checked on data simulated from a known random-intercept
model with fixed seeds, and on complete (balanced) data against closed forms: there generalised
least squares equals ordinary least squares, so the week effects are the differences of the week
means exactly, and REML gives the ANOVA estimators of the variance components (residual variance
= MS_error, patient variance = (MS_patients - MS_error) / k) whenever the latter is positive.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hccsim.analysis import schema, scores
from hccsim.analysis.liver import (
    BY_WEEK_COLUMNS,
    EFFECT_COLUMNS,
    albi_by_week,
    albi_matrix,
    albi_mixed_model,
    albi_rm_anova,
    child_pugh_transitions,
    mixed_model,
    rm_anova,
)
from tests.cohort_builders import cohort, patient

NAN = math.nan
LAB_COLUMNS = [c.name for c in schema.TABLES["labs"]]
_INT = ("replicate", "patient_id")


def set_labs(tables, *rows: dict) -> None:
    """Replace the labs by ``{"patient_id": ..., "day": ..., column: value}`` rows (replicate 0
    unless given); columns a row does not give are missing (NaN)."""
    out = {}
    for c in LAB_COLUMNS:
        if c in _INT:
            out[c] = np.array([r.get(c, 0) for r in rows], dtype=np.int64)
        else:
            out[c] = np.array([r.get(c, NAN) for r in rows], dtype=float)
    tables["labs"] = out


def albi_rows(pid, *day_albi, replicate=0) -> list[dict]:
    return [
        {"patient_id": pid, "day": float(d), "albi": a, "replicate": replicate} for d, a in day_albi
    ]


def patients(n: int, last_fu: float = 200.0, replicate: int = 0):
    return cohort(*(patient(i, last_fu=last_fu, replicate=replicate) for i in range(n)))


ALBI_35_10 = 0.66 * math.log10(17.1) - 0.085 * 35  # albumin 3.5 g/dL, bilirubin 1.0 mg/dL


def closest_cohort():
    """Four patients, weeks 0 and 2 (days 0 and 14), window 3 days.

    - 0: days -2 and 1 (week 0: day 1 is closer); days 12 and 16 (week 2: equally close, the
      earlier, 12).
    - 1: day 0 without ALBI but with albumin 3.5 and bilirubin 1.0 (ALBI computed); day 17 (3
      days from 14: inside, the window is inclusive) and day 10.5 (3.5 days: outside).
    - 2: day 0 without ALBI or bilirubin (no value), day 2 (week 0); week 2: only day 17.5
      (outside).
    - 3: nothing near week 0; two draws on day 14: the first in table order.
    A row of patient 99, who is not in the patients table, is ignored.
    """
    t = patients(4)
    set_labs(
        t,
        *albi_rows(0, (-2, -2.9), (1, -2.8), (16, -2.4), (12, -2.5)),
        {"patient_id": 1, "day": 0.0, "albumin_g_dl": 3.5, "bilirubin_mg_dl": 1.0},
        *albi_rows(1, (17, -2.0), (10.5, -1.0)),
        {"patient_id": 2, "day": 0.0, "albumin_g_dl": 3.5},
        *albi_rows(2, (2, -2.6), (17.5, -1.5)),
        *albi_rows(3, (14, -2.1), (14, -2.2), (30, -1.9)),
        *albi_rows(99, (0, -3.0)),
    )
    return t


def test_closest_visit_rules():
    m = albi_matrix(closest_cohort(), weeks=(0, 2), window_days=3)
    assert list(m.columns) == [0, 2]
    assert m.index.names == ["replicate", "patient_id"]
    assert m.index.tolist() == [(0, 0), (0, 1), (0, 2), (0, 3)]
    np.testing.assert_array_equal(
        m.to_numpy(),
        [[-2.8, -2.5], [ALBI_35_10, -2.0], [-2.6, NAN], [NAN, -2.1]],
    )


def test_on_index_line_drops_draws_after_the_line_ended():
    # Patient 0's index line ends on day 11.5: its week-2 draws (12 and 16) no longer count.
    t = closest_cohort()
    ln = t["lines"]
    ln["end_day"][ln["patient_id"] == 0] = 11.5
    ln["end_reason"][ln["patient_id"] == 0] = "progression"
    known = t["labs"]["patient_id"] != 99
    schema.validate({**t, "labs": {c: v[known] for c, v in t["labs"].items()}})
    m = albi_matrix(t, weeks=(0, 2), window_days=3, on_index_line=True)
    assert math.isnan(m.loc[(0, 0), 2]) and m.loc[(0, 0), 0] == -2.8
    assert m.loc[(0, 1), 2] == -2.0  # the others' lines run to day 200


def test_a_wider_window_reaches_further_but_the_closest_draw_still_wins():
    # Window 3.5: patient 2's day 17.5 now counts for week 2; patient 1 still takes day 17
    # (3 days away) over day 10.5 (3.5 days).
    m = albi_matrix(closest_cohort(), weeks=(0, 2), window_days=3.5)
    assert m.loc[(0, 2), 2] == -1.5
    assert m.loc[(0, 1), 2] == -2.0


def test_albi_by_week_by_hand():
    # Week 0, five patients: -3.0, -2.60, -2.27, -1.39, -1.0. Median -2.27; linear quartiles at
    # positions 1 and 3 of the sorted values: -2.60 and -1.39. mALBI (1 <= -2.60 < 2a <= -2.27 <
    # 2b <= -1.39 < 3): 1, 1, 2a, 2b, 3 -> shares 0.4, 0.2, 0.2, 0.2.
    # Week 2, four patients: -2.8, -2.4, -2.2, -2.0. Median -2.3; q25 at position 0.75:
    # -2.8 + 0.75 x 0.4 = -2.5; q75 at position 2.25: -2.2 + 0.25 x 0.2 = -2.15. mALBI: 1, 2a,
    # 2b, 2b. Week 4: nobody.
    t = patients(5)
    w0 = [-3.0, -2.60, -2.27, -1.39, -1.0]
    w2 = [-2.8, -2.4, -2.2, -2.0, None]
    rows = []
    for i in range(5):
        rows += albi_rows(i, (0, w0[i]))
        if w2[i] is not None:
            rows += albi_rows(i, (14, w2[i]))
    set_labs(t, *rows)
    df = albi_by_week(t, weeks=(0, 2, 4))
    assert list(df.columns) == list(BY_WEEK_COLUMNS)
    assert df["week"].tolist() == [0, 2, 4] and df["day"].tolist() == [0.0, 14.0, 28.0]
    assert df["n_measured"].tolist() == [5, 4, 0]
    expected = {
        "median": [-2.27, -2.3, NAN],
        "q25": [-2.60, -2.5, NAN],
        "q75": [-1.39, -2.15, NAN],
        "malbi_1_share": [0.4, 0.25, NAN],
        "malbi_2a_share": [0.2, 0.25, NAN],
        "malbi_2b_share": [0.2, 0.5, NAN],
        "malbi_3_share": [0.2, 0.0, NAN],
    }
    for c, v in expected.items():
        np.testing.assert_allclose(df[c].to_numpy(dtype=float), v, rtol=0, atol=1e-12)
    assert df.attrs["n_patients"] == 5 and df.attrs["quantile_method"] == "linear"
    # The grades are those of hccsim.analysis.scores (the module's stated cut-offs).
    assert scores.malbi_grade(np.array(w0)).tolist() == ["1", "1", "2a", "2b", "3"]


def test_two_replicates_are_kept_apart():
    a, b = closest_cohort(), closest_cohort()
    for name in b:
        b[name]["replicate"] = np.ones(len(b[name]["replicate"]), dtype=np.int64)
    b["labs"]["albi"] = b["labs"]["albi"] + 1.0
    t = {name: {c: np.concatenate([a[name][c], b[name][c]]) for c in a[name]} for name in a}
    with pytest.raises(ValueError, match=r"replicate=None .* pass replicate="):
        albi_by_week(t)
    m1 = albi_matrix(t, weeks=(0, 2), replicate=1)
    m0 = albi_matrix(closest_cohort(), weeks=(0, 2))
    assert m1.index.tolist() == [(1, 0), (1, 1), (1, 2), (1, 3)]
    # Patient 1's week 0 was computed from albumin and bilirubin (its albi stays missing).
    expected = m0.to_numpy() + np.array([[1, 1], [0, 1], [1, 1], [1, 1]])
    np.testing.assert_allclose(m1.to_numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weeks": ()}, r"weeks must be distinct finite numbers \(at least one\), not \(\)"),
        ({"weeks": (0, 2, 2)}, r"weeks must be distinct finite numbers"),
        ({"weeks": (0, math.inf)}, r"weeks must be distinct finite numbers"),
        ({"weeks": "ab"}, r"weeks must be a sequence of numbers"),
        ({"window_days": -1}, r"window_days must be a finite number >= 0, not -1"),
        ({"window_days": None}, r"window_days must be a finite number >= 0, not None"),
        ({"replicate": 3}, r"replicate=3 is not in table 'patients'"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    for f in (albi_by_week, albi_matrix, albi_rm_anova):
        with pytest.raises(ValueError, match=message):
            f(closest_cohort(), **kwargs)


# -- repeated-measures ANOVA ------------------------------------------------------------------------

HAND = np.array([[1, 2, 3], [2, 4, 6], [3, 3, 6], [2, 3, 5]], dtype=float)


def test_rm_anova_by_hand():
    # n = 4 patients, k = 3 weeks, grand mean 40/12 = 10/3. Week means 2, 3, 5:
    # SS_time = 4 x ((2 - 10/3)^2 + (3 - 10/3)^2 + (5 - 10/3)^2) = 4 x 42/9 = 168/9.
    # Patient means 2, 4, 4, 10/3: SS_subjects = 3 x (16/9 + 4/9 + 4/9 + 0) = 8.
    # SS_total = sum y^2 - 12 m^2 = 162 - 1200/9 = 258/9; SS_error = 258/9 - 168/9 - 72/9 = 2.
    # F = (168/9 / 2) / (2 / 6) = 28 on 2 and 6 df. With 2 numerator df the F tail is
    # (1 + 2F/df2)^(-df2/2) = (31/3)^-3 = 27/29791.
    r = rm_anova(HAND, weeks=(0, 2, 4))
    assert (r.n_patients, r.n_excluded, r.df1, r.df2) == (4, 0, 2.0, 6.0)
    assert r.ss_time == pytest.approx(168 / 9, rel=1e-13)
    assert r.ss_subjects == pytest.approx(8.0, rel=1e-13)
    assert r.ss_error == pytest.approx(2.0, rel=1e-13)
    assert r.f == pytest.approx(28.0, rel=1e-13)
    assert r.p == pytest.approx(27 / 29791, rel=1e-12)
    assert r.reason is None and r.weeks == (0, 2, 4)


def anova_rm_reference(values):
    from statsmodels.stats.anova import AnovaRM

    n, k = values.shape
    long = pd.DataFrame(
        {
            "patient": np.repeat(np.arange(n), k),
            "week": np.tile(np.arange(k), n),
            "albi": values.ravel(),
        }
    )
    return AnovaRM(long, "albi", "patient", within=["week"]).fit().anova_table.iloc[0]


@pytest.mark.parametrize(("seed", "n", "k"), [(1, 4, 3), (2, 12, 7), (3, 40, 4), (4, 3, 2)])
def test_rm_anova_equals_statsmodels_anova_rm(seed, n, k):
    rng = np.random.default_rng(seed)
    y = rng.normal(0.0, 0.3, (n, 1)) + rng.normal(0.0, 0.1, k) + rng.normal(0.0, 0.2, (n, k))
    ref = anova_rm_reference(y)
    r = rm_anova(y)
    assert r.f == pytest.approx(ref["F Value"], rel=1e-10)
    assert (r.df1, r.df2) == (ref["Num DF"], ref["Den DF"])
    assert r.p == pytest.approx(ref["Pr > F"], rel=1e-9)


def test_albi_rm_anova_uses_complete_cases_only():
    # Six patients at weeks 0, 2, 4: patients 0-3 have the HAND values; patient 4 misses week 2
    # and patient 5 has no labs. The ANOVA is that of HAND (n 4, 2 excluded), and the same as
    # AnovaRM on the complete rows.
    t = patients(6)
    rows = []
    for i in range(4):
        rows += albi_rows(i, *zip((0, 14, 28), HAND[i], strict=True))
    rows += albi_rows(4, (0, -2.5), (28, -2.4))
    set_labs(t, *rows)
    r = albi_rm_anova(t, weeks=(0, 2, 4))
    assert (r.n_patients, r.n_excluded) == (4, 2)
    assert r.f == pytest.approx(28.0, rel=1e-13)
    assert r.f == pytest.approx(anova_rm_reference(HAND)["F Value"], rel=1e-10)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (np.empty((0, 3)), "fewer than 2 patients measured at every week (n=0)"),
        (np.array([[1.0, 2.0, 3.0], [1.0, NAN, 2.0]]), "fewer than 2 patients"),
        (np.array([[1.0], [2.0], [4.0]]), "fewer than 2 weeks (k=1)"),
        # y = patient + week exactly: every residual is 0
        (np.array([[0.0, 1.0], [2.0, 3.0]]), "no residual variation"),
        (np.full((3, 3), -2.5), "no residual variation"),
    ],
)
def test_rm_anova_reports_what_it_cannot_compute(values, reason):
    r = rm_anova(values)
    assert r.reason is not None and r.reason.startswith(reason)
    assert all(math.isnan(x) for x in (r.f, r.df1, r.df2, r.p))


def test_albi_rm_anova_without_any_measurement_is_nan_not_an_error():
    t = patients(3)
    set_labs(t)
    r = albi_rm_anova(t)
    assert (r.n_patients, r.n_excluded) == (0, 3) and math.isnan(r.p)
    assert "n=0" in r.reason


def test_rm_anova_refuses_bad_arrays():
    with pytest.raises(ValueError, match=r"values must be a 2-d patients x weeks array"):
        rm_anova(np.zeros(3))
    with pytest.raises(ValueError, match=r"weeks must name the 3 columns of values"):
        rm_anova(HAND, weeks=(0, 2))


# -- mixed model ------------------------------------------------------------------------------------

WEEKS = (0, 2, 4, 6, 8, 10, 12)


def simulate(seed, n, effects, *, sd_patient=0.3, sd_error=0.15, p_missing=0.0):
    """ALBI = -2.3 + effect[week] + patient intercept + error; each cell missing with
    probability ``p_missing`` (completely at random)."""
    rng = np.random.default_rng(seed)
    k = len(effects)
    y = (
        -2.3
        + np.asarray(effects)[None, :]
        + rng.normal(0.0, sd_patient, (n, 1))
        + rng.normal(0.0, sd_error, (n, k))
    )
    y[rng.random((n, k)) < p_missing] = NAN
    return y


def test_mixed_model_recovers_known_week_effects():
    # 300 patients, 30% of the cells missing at random. Each estimate is asymptotically normal
    # around the true effect with the reported standard error, so each lies within 4 SE of it
    # except with probability 6e-5 (1 - (1 - 6e-5)^6 < 4e-4 for all six). The residual variance
    # estimate has standard error about sigma^2 sqrt(2 / df) with df = observations - patients
    # - weeks (the within-patient degrees of freedom): 4 of those is the tolerance.
    effects = np.array([0.0, 0.02, 0.05, 0.08, 0.10, 0.12, 0.15])
    y = simulate(11, 300, effects, p_missing=0.3)
    m = mixed_model(y, WEEKS)
    assert m.reason is None and m.converged
    assert m.n_observations == int(np.isfinite(y).sum()) and m.n_patients == 300
    e = m.effects
    assert list(e.columns) == list(EFFECT_COLUMNS) and e["week"].tolist() == list(WEEKS)
    assert m.reference_week == 0 and e.loc[0, "estimate"] == 0.0 and math.isnan(e.loc[0, "se"])
    est, se = e["estimate"].to_numpy()[1:], e["se"].to_numpy()[1:]
    assert np.all(np.abs(est - effects[1:]) <= 4.0 * se)
    assert np.all(se > 0) and np.all(se < 0.03)
    z = 1.959963984540054
    np.testing.assert_allclose(e["ci_low"].to_numpy()[1:], est - z * se, rtol=1e-12)
    np.testing.assert_allclose(e["ci_high"].to_numpy()[1:], est + z * se, rtol=1e-12)
    df = m.n_observations - m.n_patients - (len(WEEKS) - 1)
    assert abs(m.residual_var - 0.15**2) <= 4.0 * 0.15**2 * math.sqrt(2.0 / df)
    # Effects of 0.15 with standard errors near 0.015: "no change" is clearly rejected.
    assert m.lr_p < 1e-10 and m.wald_p < 1e-10 and m.lr_df == 6


def test_mixed_model_without_a_week_effect_does_not_reject():
    # Under no change the p-values are uniform: below 1e-3 with probability 1e-3 (fixed seed).
    y = simulate(12, 200, np.zeros(7), p_missing=0.25)
    m = mixed_model(y, WEEKS)
    assert m.converged and m.reason is None
    assert m.lr_p > 1e-3 and m.wald_p > 1e-3
    assert np.all(np.abs(m.effects["estimate"].to_numpy()[1:]) <= 4.0 * m.effects["se"][1:])


def test_mixed_model_on_complete_data_is_the_balanced_anova():
    # Balanced complete data: the week effects are the differences of the week means (exactly,
    # for any variance components), the variance components are the ANOVA estimators, each
    # effect's standard error is sqrt(2 sigma_e^2 / n) and the Wald statistic is
    # SS_time / sigma_e^2 = (k - 1) F of the repeated-measures ANOVA.
    n, k = 60, len(WEEKS)
    y = simulate(13, n, np.linspace(0.0, 0.1, k))
    m = mixed_model(y, WEEKS)
    means = y.mean(axis=0)
    np.testing.assert_allclose(
        m.effects["estimate"].to_numpy(), means - means[0], rtol=0, atol=1e-10
    )
    assert m.intercept == pytest.approx(means[0], abs=1e-10)
    a = rm_anova(y, WEEKS)
    ms_error = a.ss_error / a.df2
    ms_patients = a.ss_subjects / (n - 1)
    assert ms_patients > ms_error  # the ANOVA estimate of the patient variance is positive
    # statsmodels stops its optimiser at a gradient tolerance (scipy's BFGS, gtol 1e-5), which
    # leaves the variance components about 1e-4 (relative) from the REML optimum: tolerance
    # 1e-3. ML would give SS_error / (n (k - 1)), (n - 1) / n = 1.7% lower: this tells them apart.
    assert m.residual_var == pytest.approx(ms_error, rel=1e-3)
    assert m.group_var == pytest.approx((ms_patients - ms_error) / k, rel=1e-3)
    np.testing.assert_allclose(
        m.effects["se"].to_numpy()[1:], math.sqrt(2.0 * ms_error / n), rtol=1e-3
    )
    assert m.wald_stat == pytest.approx((k - 1) * a.f, rel=1e-3)
    assert (m.n_patients, m.n_observations) == (n, n * k)


def test_albi_mixed_model_keeps_incomplete_patients():
    # Patient 0: weeks 0, 2, 4; 1: weeks 0, 4; 2: week 2 only; 3: none. 3 patients, 6 values;
    # the complete-case ANOVA would use patient 0 alone.
    t = patients(4)
    set_labs(
        t,
        *albi_rows(0, (0, -2.5), (14, -2.4), (28, -2.2)),
        *albi_rows(1, (0, -2.0), (28, -1.9)),
        *albi_rows(2, (14, -2.9)),
    )
    m = albi_mixed_model(t, weeks=(0, 2, 4))
    assert (m.n_patients, m.n_observations) == (3, 6)
    assert m.effects["n_obs"].tolist() == [2, 2, 2]
    assert albi_rm_anova(t, weeks=(0, 2, 4)).n_patients == 1


def test_a_week_without_measurements_is_left_out_of_the_model():
    y = simulate(14, 50, np.zeros(4))
    y[:, 2] = NAN
    m = mixed_model(y, (0, 2, 4, 6))
    assert m.effects["n_obs"].tolist() == [50, 50, 0, 50]
    assert math.isnan(m.effects.loc[2, "estimate"]) and m.lr_df == 2
    y[:, 0] = NAN  # no baseline: the first measured week is the reference
    m = mixed_model(y, (0, 2, 4, 6))
    assert m.reference_week == 2 and m.lr_df == 1


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (np.full((5, 3), NAN), "fewer than 2 weeks with measurements (0)"),
        (np.array([[1.0, 2.0, 3.0], [NAN, NAN, NAN]]), "fewer than 2 patients"),
        (np.array([[1.0, NAN], [NAN, 2.0]]), "2 observations are too few"),
    ],
)
def test_mixed_model_reports_what_it_cannot_fit(values, reason):
    m = mixed_model(values)
    assert m.reason.startswith(reason)
    assert math.isnan(m.lr_p) and not m.converged


def test_mixed_model_refuses_a_bad_ci_level():
    with pytest.raises(ValueError, match=r"ci_level must be a number strictly between 0 and 1"):
        mixed_model(HAND, ci_level=95)


# -- Child-Pugh transitions --------------------------------------------------------------------------


def test_child_pugh_transitions_by_hand():
    # Scores at day 0 and day 84 (week 12):
    # 0: 5 -> 5 (A -> A); 1: 6 -> 8 (A -> B); 2: 7 -> 7 (B -> B); 3: 9 -> 10 (B -> C);
    # 4: 5 -> none (left out); 5: 6 -> score missing, computed from albumin 3.0 (2 points),
    # bilirubin 2.5 (2), INR 1.1 (1), ascites 1 (2), encephalopathy 0 (1) = 8 (A -> B);
    # 6: 5 -> day 81 score 5 and day 85 score 10: day 85 is closer (A -> C).
    t = patients(7)

    def cp(pid, day, score):
        return {"patient_id": pid, "day": float(day), "child_pugh_score": score}

    set_labs(
        t,
        cp(0, 0, 5), cp(0, 84, 5), cp(1, 0, 6), cp(1, 84, 8), cp(2, 0, 7), cp(2, 84, 7),
        cp(3, 0, 9), cp(3, 84, 10), cp(4, 0, 5), cp(5, 0, 6),
        {"patient_id": 5, "day": 84.0, "albumin_g_dl": 3.0, "bilirubin_mg_dl": 2.5, "inr": 1.1,
         "ascites": 1, "encephalopathy": 0},
        cp(6, 0, 5), cp(6, 81, 5), cp(6, 85, 10),
    )  # fmt: skip
    assert int(scores.child_pugh_score(3.0, 2.5, 1.1, 1, 0)) == 8
    df = child_pugh_transitions(t)
    assert df.index.tolist() == ["A", "B", "C"] and df.columns.tolist() == ["A", "B", "C"]
    assert (df.index.name, df.columns.name) == ("from", "to")
    np.testing.assert_array_equal(df.to_numpy(), [[1, 2, 1], [0, 1, 1], [0, 0, 0]])
    assert (df.attrs["n_both"], df.attrs["n_missing"]) == (6, 1)
    assert (df.attrs["from_week"], df.attrs["to_week"]) == (0, 12)
    # A narrower window: day 81 (3 days) stays, day 85 (1 day) stays: unchanged. Window 0:
    # only draws exactly on days 0 and 84 count, so patient 6 drops out.
    narrow = child_pugh_transitions(t, window_days=0)
    assert narrow.loc["A", "C"] == 0 and narrow.attrs["n_both"] == 5


def test_child_pugh_transitions_refuse_bad_weeks():
    with pytest.raises(ValueError, match=r"to_week must be a finite number, not nan"):
        child_pugh_transitions(patients(1), to_week=NAN)
