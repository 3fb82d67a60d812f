"""Survival statistics of ``hccsim.analysis.survival`` beyond the Kaplan-Meier estimate itself.

References, and how close each check must be:

- lifelines 0.30 computes the same quantities for pointwise log(-log) limits
  (``KaplanMeierFitter.confidence_interval_``), median limits (``median_survival_times`` of
  those curves), landmark estimates (``survival_function_at_times``), the RMST
  (``restricted_mean_survival_time``) and log-rank statistics (``logrank_test``,
  ``multivariate_logrank_test``): equal to 1e-10 (the arithmetic differs only in summation
  order and in exp(sum log) versus cumprod, about 1e-15).
- The stratified log-rank test: a stratified dataset worked out by hand below, statsmodels'
  ``survdiff(..., strata=)`` (an independent implementation) to 1e-10, and R: ``survdiff(
  Surv(futime, fustat) ~ rx + strata(resid.ds), data = ovarian)`` gives chisq 1.279643 (7
  significant digits as printed; unstratified 1.0627 with expected 6.7665 and 5.2335 for
  rx = 2 and rx = 1), the ovarian data of R's survival package (Edmonson et al. 1979),
  written out below.
- The RMST variance: a dataset worked out by hand in exact fractions, and on random data an
  independent restatement as the double integral of the Greenwood covariance
  Cov(S(u), S(v)) = S(u) S(v) sigma^2(min(u, v)).
- Cox: ``cox_fit`` runs lifelines, so it must reproduce lifelines' own summary exactly
  (1e-10) under the same fit options. ``cox_binary_hr`` is checked against statsmodels'
  ``PHReg(ties="efron")``, which solves the score equation to machine precision (1e-9 on the
  log hazard ratio), and against lifelines' CoxPHFitter to 1e-6 relative on the hazard ratio.
  lifelines must then be run with a tight stopping rule: with its defaults its hazard ratios
  are up to 3e-4 away from the maximum on these data (seed 1: 2.8e-4), with
  precision = 1e-14 and r_precision = 1e-15 within 5e-8.

Random data: exponential event times (mean 10) and censoring times (mean 15 unless stated),
rounded to whole days so that there are tied event times and censorings tied with events,
fixed seeds. There is no stochastic tolerance anywhere: every comparison is deterministic.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.datasets import load_leukemia
from lifelines.statistics import logrank_test, multivariate_logrank_test
from lifelines.utils import median_survival_times, restricted_mean_survival_time
from scipy.stats import norm
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import survdiff

from hccsim.analysis.survival import (
    CoxResults,
    KaplanMeier,
    cox_binary_hr,
    cox_fit,
    cox_multivariable,
    cox_univariable,
    kaplan_meier,
    km_confidence,
    km_median,
    km_median_ci,
    logrank,
    logrank_many,
    rmst,
    rmst_difference,
    survival_at,
)

TIGHT = {"precision": 1e-14, "r_precision": 1e-15}  # lifelines' stopping rule for references


def _data(seed, n=60, censor=15.0, decimals=0):
    """Durations, events, a 0/1 group and the generator (see the module docstring)."""
    rng = np.random.default_rng(seed)
    t = np.round(rng.exponential(10.0, n), decimals)
    c = np.round(rng.exponential(censor, n), decimals)
    return np.minimum(t, c), t <= c, rng.integers(0, 2, n), rng


def _kmf(durations, events, alpha=0.05) -> KaplanMeierFitter:
    return KaplanMeierFitter(alpha=alpha).fit(np.asarray(durations, float), np.asarray(events))


@pytest.fixture(autouse=True)
def _quiet_pandas():
    # lifelines 0.30 calls pandas methods with positional arguments (Pandas4Warning).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*keyword-only.*")
        yield


# Datasets for the comparisons: ties (whole days), continuous times (no ties), heavy censoring,
# a curve that reaches 0 (last patient dies), small and larger samples.
_CASES = [
    *[(seed, 60, 15.0, 0) for seed in range(6)],
    *[(seed, 25, 8.0, 0) for seed in (0, 7, 10)],  # upper median limit not reached
    (1, 40, 10.0, 0),  # upper median limit not reached
    (3, 300, 15.0, 0),
    (4, 50, 15.0, 6),  # continuous times
    (5, 30, 1e6, 0),  # (almost) no censoring: the curve reaches 0
    (9, 40, 3.0, 0),  # heavy censoring: median not reached, lower limit reached
    (1, 40, 3.0, 0),  # heavy censoring: nothing reached
]


# -- Greenwood and pointwise limits --------------------------------------------------------------


def test_greenwood_hand_values():
    # Deaths on days 1, 2, 3, 5 of 6 patients (censored on 2 and 4): n, d = (6, 1), (5, 1),
    # (3, 1), (1, 1); sums 1/30, 1/30 + 1/20 = 1/12, 1/12 + 1/6 = 1/4, then infinite (n = d).
    km = kaplan_meier([1, 2, 2, 3, 4, 5], [1, 1, 0, 1, 0, 1])
    np.testing.assert_allclose(km.greenwood(), [1 / 30, 1 / 12, 1 / 4, np.inf], rtol=1e-15)
    np.testing.assert_allclose(km.survival, [5 / 6, 2 / 3, 4 / 9, 0.0], rtol=1e-15)
    # The limits at day 1 by the formula: S^exp(+-z sigma / |log S|), sigma^2 = 1/30.
    lower, upper = km_confidence(km)
    z, s = norm.ppf(0.975), 5 / 6
    expo = z * math.sqrt(1 / 30) / -math.log(s)
    assert lower[0] == pytest.approx(s ** math.exp(expo), abs=1e-14)
    assert upper[0] == pytest.approx(s ** math.exp(-expo), abs=1e-14)
    assert lower[-1] == upper[-1] == 0.0  # S = 0: both limits 0, as lifelines


@pytest.mark.parametrize(("seed", "n", "censor", "decimals"), _CASES)
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_km_confidence_matches_lifelines(seed, n, censor, decimals, alpha):
    d, e, _, _ = _data(seed, n, censor, decimals)
    km = kaplan_meier(d, e)
    lower, upper = km_confidence(km, alpha)
    ci = _kmf(d, e, alpha).confidence_interval_.loc[km.times].to_numpy()
    np.testing.assert_allclose(lower, ci[:, 0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(upper, ci[:, 1], rtol=0, atol=1e-10)
    assert np.all((lower <= km.survival) & (km.survival <= upper))


def test_km_confidence_on_freireich_6mp_matches_lifelines():
    # Freireich et al. 1963 (6-MP arm), lifelines' bundled copy.
    df = load_leukemia()
    mp = df[df["Rx"] == 0]
    km = kaplan_meier(mp["t"], mp["status"])
    lower, upper = km_confidence(km)
    ci = _kmf(mp["t"], mp["status"]).confidence_interval_.loc[km.times].to_numpy()
    np.testing.assert_allclose(np.c_[lower, upper], ci, rtol=0, atol=1e-10)


# -- median with limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n", "censor", "decimals"), _CASES)
def test_km_median_ci_matches_lifelines(seed, n, censor, decimals):
    d, e, _, _ = _data(seed, n, censor, decimals)
    kmf = _kmf(d, e)
    result = km_median_ci(d, e)
    theirs = median_survival_times(kmf.confidence_interval_).to_numpy().ravel()
    assert (result.lower, result.upper) == (theirs[0], theirs[1])
    assert result.median == km_median(d, e)
    # lifelines' median, unless its float curve sits within 1e-9 of one half (test_analysis_survival).
    if not np.any(np.abs(kmf.survival_function_.to_numpy() - 0.5) <= 1e-9):
        assert result.median == kmf.median_survival_time_
    assert result.lower <= result.median <= result.upper
    # lifelines finds the crossing by binary search; ours is the first crossing. They agree
    # because the limit curves do not rise, which holds on every dataset here:
    for curve in kmf.confidence_interval_.to_numpy().T:
        assert np.all(np.diff(curve) <= 1e-15)


def test_km_median_ci_not_reached_cases_are_present():
    # The parametrised comparison above covers upper limits that are not reached (inf), and a
    # median that is not reached at all; pin that the chosen seeds do so.
    for seed, n, censor in [(0, 25, 8.0), (7, 25, 8.0), (10, 25, 8.0), (1, 40, 10.0)]:
        d, e, _, _ = _data(seed, n, censor)
        result = km_median_ci(d, e)
        assert math.isfinite(result.median) and result.upper == math.inf
    d, e, _, _ = _data(9, 40, 3.0)
    assert km_median_ci(d, e) == (math.inf, 4.0, math.inf)
    d, e, _, _ = _data(1, 40, 3.0)
    assert km_median_ci(d, e) == (math.inf, math.inf, math.inf)


def test_km_median_ci_is_a_named_tuple():
    d, e, _, _ = _data(0)
    median, lower, upper = km_median_ci(d, e)
    assert km_median_ci(d, e)._fields == ("median", "lower", "upper")
    assert lower <= median <= upper


# -- landmark survival ----------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n", "censor", "decimals"), _CASES[:8])
def test_survival_at_matches_lifelines(seed, n, censor, decimals):
    d, e, _, _ = _data(seed, n, censor, decimals)
    km = kaplan_meier(d, e)
    # Day 0, before the first event, exactly at event times, between them, at the last time.
    times = np.unique(np.r_[0.0, km.times[0] / 2, km.times[:3], km.times[:3] + 0.5, d.max()])
    res = survival_at(d, e, times)
    kmf = _kmf(d, e)
    np.testing.assert_allclose(
        res.survival, kmf.survival_function_at_times(times).to_numpy(), rtol=0, atol=1e-12
    )
    ci = kmf.confidence_interval_.asof(times).to_numpy()  # step function, as predict() does
    np.testing.assert_allclose(res.lower, ci[:, 0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.upper, ci[:, 1], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(res.at_risk, [(d >= t).sum() for t in times])
    np.testing.assert_array_equal(res.times, times)


def test_survival_at_before_first_event_is_one_with_limits_one():
    res = survival_at([2.0, 3.0, 5.0], [1, 0, 1], [0.0, 1.999, 2.0, 100.0])
    np.testing.assert_array_equal(res.survival[:2], [1.0, 1.0])
    np.testing.assert_array_equal(res.lower[:2], [1.0, 1.0])
    np.testing.assert_array_equal(res.upper[:2], [1.0, 1.0])
    assert res.survival[2] == pytest.approx(2 / 3, abs=1e-15)
    assert res.survival[3] == res.lower[3] == res.upper[3] == 0.0  # the last patient died
    np.testing.assert_array_equal(res.at_risk, [3, 3, 3, 0])
    assert survival_at([2.0, 3.0], [1, 0], 2.0).survival.shape == (1,)  # a scalar time


# -- RMST -------------------------------------------------------------------------------------


def test_rmst_hand_computation():
    # Deaths on days 1, 2, 3, 5 of 6 (censored on 2 and 4), tau = 4.5. S = 1, 5/6, 2/3, 4/9 on
    # [0,1), [1,2), [2,3), [3,4.5]: RMST = 1 + 5/6 + 2/3 + 1.5 x 4/9 = 19/6.
    # A_j (area from t_j to tau) = 13/6, 4/3, 2/3 with weights d/(n(n-d)) = 1/30, 1/20, 1/6:
    # Var = 169/1080 + 96/1080 + 80/1080 = 23/72. (The death on day 5 is after tau.)
    d, e = [1, 2, 2, 3, 4, 5], [1, 1, 0, 1, 0, 1]
    est, var = rmst(d, e, 4.5)
    expected_var = Fraction(13, 6) ** 2 / 30 + Fraction(4, 3) ** 2 / 20 + Fraction(2, 3) ** 2 / 6
    assert expected_var == Fraction(23, 72)
    assert est == pytest.approx(19 / 6, abs=1e-14)
    assert var == pytest.approx(23 / 72, abs=1e-14)
    assert est == pytest.approx(restricted_mean_survival_time(_kmf(d, e), t=4.5), abs=1e-12)


def _rmst_variance_double_integral(d, e, tau) -> float:
    """Var(int_0^tau S) = int int S(u) S(v) sigma^2(min(u, v)) du dv over the step pieces."""
    km = kaplan_meier(d, e)
    keep = km.times <= tau
    edges = np.r_[0.0, km.times[keep], tau]
    width = np.diff(edges)
    height = np.r_[1.0, km.survival[keep]]
    sigma2 = np.r_[0.0, km.greenwood()[keep]]  # on piece i: the sum up to its left edge
    sigma2 = np.where(np.isfinite(sigma2), sigma2, 0.0)  # S = 0 there: the product is 0
    i = np.arange(len(width))
    cov = np.outer(height, height) * sigma2[np.minimum.outer(i, i)]
    return float(width @ cov @ width)


@pytest.mark.parametrize(("seed", "n", "censor", "decimals"), _CASES)
def test_rmst_matches_lifelines_and_the_greenwood_double_integral(seed, n, censor, decimals):
    d, e, _, _ = _data(seed, n, censor, decimals)
    kmf = _kmf(d, e)
    for tau in (float(np.quantile(d, 0.5)), float(np.quantile(d, 0.9)), float(d.max())):
        est, var = rmst(d, e, tau)
        assert est == pytest.approx(restricted_mean_survival_time(kmf, t=tau), abs=1e-10)
        assert var == pytest.approx(_rmst_variance_double_integral(d, e, tau), rel=1e-10)
        # lifelines' return_variance is the variance of min(T, tau), not of the estimate
        # (it integrates t S(t) by quadrature, which warns about the steps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, their_var = restricted_mean_survival_time(kmf, t=tau, return_variance=True)
        assert their_var > 10 * var


def test_rmst_difference_restates_the_two_rmsts():
    d, e, g, _ = _data(11, 120)
    tau = 20.0
    res = rmst_difference(d, e, g, tau)
    r0, v0 = rmst(d[g == 0], e[g == 0], tau)
    r1, v1 = rmst(d[g == 1], e[g == 1], tau)
    assert res.groups == (0, 1) and res.tau == tau
    assert res.rmst == (r0, r1) and res.variance == (v0, v1)
    assert res.difference == pytest.approx(r1 - r0, abs=1e-12)
    assert res.se == pytest.approx(math.sqrt(v0 + v1), rel=1e-12)
    z = (r1 - r0) / math.sqrt(v0 + v1)
    assert res.z == pytest.approx(z, rel=1e-12)
    assert res.p_value == pytest.approx(2 * norm.sf(abs(z)), rel=1e-10)
    half = norm.ppf(0.975) * res.se
    assert (res.lower, res.upper) == pytest.approx((res.difference - half, res.difference + half))
    # Labels other than 0/1: the difference is the second sorted label minus the first.
    labels = np.where(g == 1, "lenvatinib", "sorafenib")  # group 1 sorts first now
    other = rmst_difference(d, e, labels, tau, alpha=0.1)
    assert other.groups == ("lenvatinib", "sorafenib")
    assert other.difference == pytest.approx(r0 - r1, abs=1e-12)
    assert other.upper - other.lower == pytest.approx(2 * norm.ppf(0.95) * res.se)


def test_rmst_without_events_before_tau():
    est, var = rmst([3.0, 5.0, 8.0], [0, 1, 0], 4.0)
    assert (est, var) == (4.0, 0.0)
    res = rmst_difference([3.0, 5.0, 8.0, 6.0], [0, 1, 0, 0], [0, 0, 1, 1], 4.0)
    assert res.difference == 0.0 and res.se == 0.0 and math.isnan(res.p_value)


# -- log-rank ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n", "censor", "decimals"), _CASES)
def test_logrank_two_groups_matches_lifelines(seed, n, censor, decimals):
    d, e, g, _ = _data(seed, n, censor, decimals)
    res = logrank(d, e, g)
    theirs = logrank_test(d[g == 0], d[g == 1], e[g == 0], e[g == 1])
    assert res.statistic == pytest.approx(theirs.test_statistic, abs=1e-10)
    assert res.p_value == pytest.approx(theirs.p_value, abs=1e-10)
    assert res.df == 1
    np.testing.assert_array_equal(res.observed, [e[g == 0].sum(), e[g == 1].sum()])
    assert res.expected.sum() == pytest.approx(e.sum(), abs=1e-10)


@pytest.mark.parametrize("k", [3, 4])
@pytest.mark.parametrize("seed", range(5))
def test_logrank_k_groups_matches_lifelines(seed, k):
    d, e, _, rng = _data(seed, 90)
    g = rng.integers(0, k, len(d))
    res = logrank(d, e, g)
    theirs = multivariate_logrank_test(d, g, e)
    assert res.statistic == pytest.approx(theirs.test_statistic, abs=1e-10)
    assert res.p_value == pytest.approx(theirs.p_value, abs=1e-10)
    assert res.df == k - 1
    np.testing.assert_allclose(res.covariance.sum(axis=0), 0.0, atol=1e-12)  # rows sum to 0


# R's survival::ovarian (26 patients): futime, fustat, resid.ds, rx.
_OVARIAN = np.array(
    [
        [59, 1, 2, 1], [115, 1, 2, 1], [156, 1, 2, 1], [421, 0, 2, 2], [431, 1, 2, 1],
        [448, 0, 1, 1], [464, 1, 2, 2], [475, 1, 2, 2], [477, 0, 2, 1], [563, 1, 1, 2],
        [638, 1, 1, 1], [744, 0, 1, 2], [769, 0, 2, 2], [770, 0, 2, 2], [803, 0, 1, 1],
        [855, 0, 1, 1], [1040, 0, 2, 1], [1106, 0, 1, 1], [1129, 0, 1, 2], [1206, 0, 2, 2],
        [1227, 0, 1, 2], [268, 1, 2, 1], [329, 1, 2, 1], [353, 1, 1, 2], [365, 1, 2, 2],
        [377, 0, 1, 2],
    ]
)  # fmt: skip


def test_logrank_ovarian_matches_r_survdiff():
    futime, fustat, resid, rx = _OVARIAN.T
    plain = logrank(futime, fustat, rx)
    np.testing.assert_array_equal(plain.observed, [7, 5])  # rx = 1, rx = 2
    np.testing.assert_allclose(plain.expected, [5.2335, 6.7665], atol=5e-5)
    assert plain.statistic == pytest.approx(1.0627, abs=5e-5)
    stratified = logrank(futime, fustat, rx, strata=resid)
    assert stratified.statistic == pytest.approx(1.279643, abs=5e-7)


def test_stratified_logrank_hand_computation():
    # Stratum A: (1, death, g0) (2, death, g1) (3, censored, g0) (4, death, g1)
    #   t=1: n=4 (2 + 2), d=1: E0 = 1/2, V = 1 x 3/3 x 2 x 2/16 = 1/4
    #   t=2: n=3 (1 + 2), d=1: E0 = 1/3, V = 1 x 2/2 x 1 x 2/9 = 2/9
    #   t=4: n=1 (0 + 1), d=1: E0 = 0, V = 0.        O0 = 1, E0 = 5/6, V = 17/36
    # Stratum B: (1, death, g1) (1, death, g0) (2, censored, g1) (3, death, g0)
    #   t=1: n=4 (2 + 2), d=2: E0 = 1, V = 2 x 2/3 x 2 x 2/16 = 1/3
    #   t=3: n=1 (1 + 0), d=1: E0 = 1, V = 0.        O0 = 2, E0 = 2, V = 1/3
    # Sum: O0 - E0 = 3 - 17/6 = 1/6, V = 29/36: chi-square = (1/36) / (29/36) = 1/29.
    d = [1, 2, 3, 4, 1, 1, 2, 3]
    e = [1, 1, 0, 1, 1, 1, 0, 1]
    g = [0, 1, 0, 1, 1, 0, 1, 0]
    s = ["A"] * 4 + ["B"] * 4
    res = logrank(d, e, g, strata=s)
    assert res.statistic == pytest.approx(1 / 29, abs=1e-14)
    np.testing.assert_allclose(res.observed, [3, 3])
    np.testing.assert_allclose(res.expected, [17 / 6, 19 / 6], atol=1e-14)
    np.testing.assert_allclose(
        res.covariance, [[29 / 36, -29 / 36], [-29 / 36, 29 / 36]], atol=1e-14
    )
    assert res.p_value == pytest.approx(norm.sf(math.sqrt(1 / 29)) * 2, abs=1e-12)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_stratified_logrank_matches_statsmodels(seed, k):
    d, e, _, rng = _data(seed, 120)
    g = rng.integers(0, k, len(d))
    s = rng.integers(0, 3, len(d))
    res = logrank(d, e, g, strata=s)
    statistic, p = survdiff(d, e.astype(int), g, strata=s)
    assert res.statistic == pytest.approx(statistic, abs=1e-10)
    assert res.p_value == pytest.approx(p, abs=1e-10)
    assert res.df == k - 1


def test_stratified_logrank_with_one_stratum_is_the_plain_test():
    d, e, g, _ = _data(2, 80)
    plain = logrank(d, e, g)
    one = logrank(d, e, g, strata=np.full(len(d), "all"))
    assert one.statistic == plain.statistic and one.p_value == plain.p_value
    np.testing.assert_array_equal(one.expected, plain.expected)


def test_logrank_group_never_at_risk_at_an_event_is_left_out():
    # Group 2 is censored before the first death: expected 0, so the test is between groups 0
    # and 1 (df 1) and equals the two-group test without group 2.
    d, e, g, _ = _data(3, 60)
    d = d + 1.0  # the first death is on day 1 or later
    d2 = np.r_[d, 0.0, 0.0]
    e2 = np.r_[e, False, False]
    g2 = np.r_[g, 2, 2]
    res = logrank(d2, e2, g2)
    assert res.df == 1 and res.expected[2] == 0.0
    assert res.statistic == pytest.approx(logrank(d, e, g).statistic, abs=1e-12)


def test_logrank_without_information_is_nan():
    # No events: nothing to test. All deaths on one day: V = 0 (lifelines reports 0 here; a
    # statistic of 0 / 0 is not evidence of anything, so it is NaN with df 0).
    for d, e in (([1.0, 2.0, 3.0, 4.0], [0, 0, 0, 0]), ([5.0] * 4, [1] * 4)):
        res = logrank(d, e, [0, 1, 0, 1])
        assert math.isnan(res.statistic) and math.isnan(res.p_value) and res.df == 0


# -- log-rank for many replicates ------------------------------------------------------------------


def _replicates(seed, rows, n, censor=15.0):
    rng = np.random.default_rng(seed)
    t = np.round(rng.exponential(10.0, (rows, n)))
    c = np.round(rng.exponential(censor, (rows, n)))
    return np.minimum(t, c), t <= c, rng.integers(0, 2, (rows, n))


def _lifelines_statistic(d, e, g) -> float:
    return logrank_test(d[g == 0], d[g == 1], e[g == 0], e[g == 1]).test_statistic


def test_logrank_many_matches_lifelines_for_every_replicate():
    """200 replicates of 60 patients, whole-day times (ties among deaths and between deaths and
    censorings), plus replicates where group 1 or group 0 has no events at all.

    Speed (not asserted): 1,000 replicates x 400 patients took 0.05 s on one core of the
    development machine (``test_logrank_many_large_batch``).
    """
    d, e, g = _replicates(0, 200, 60)
    e[0, g[0] == 1] = False  # group 1 without events
    e[1, g[1] == 0] = False  # group 0 without events
    res = logrank_many(d, e, g)
    assert res.statistic.shape == res.z.shape == (200,)
    theirs = np.array([_lifelines_statistic(d[r], e[r], g[r]) for r in range(200)])
    np.testing.assert_allclose(res.statistic, theirs, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.p_value, norm.sf(np.abs(res.z)) * 2, rtol=1e-10, atol=0)
    assert res.z[0] < 0 < res.z[1]  # fewer events than expected in group 1, then more


def test_logrank_many_z_is_signed_for_group_one():
    d, e, g = _replicates(1, 20, 50)
    res = logrank_many(d, e, g)
    for r in range(20):
        one = logrank(d[r], e[r], g[r])
        o_e = one.observed[1] - one.expected[1]
        assert res.observed_minus_expected[r] == pytest.approx(o_e, abs=1e-10)
        assert res.variance[r] == pytest.approx(one.covariance[1, 1], abs=1e-10)
        assert res.z[r] == pytest.approx(o_e / math.sqrt(one.covariance[1, 1]), abs=1e-10)


def test_logrank_many_ragged_replicates_by_nan_or_mask():
    d, e, g = _replicates(2, 30, 80)
    sizes = np.random.default_rng(3).integers(10, 81, 30)
    present = np.arange(80) < sizes[:, None]
    ragged = np.where(present, d, np.nan)
    by_nan = logrank_many(ragged, e, g)
    by_mask = logrank_many(d, e, g, mask=present)
    theirs = [
        _lifelines_statistic(d[r, : sizes[r]], e[r, : sizes[r]], g[r, : sizes[r]])
        for r in range(30)
    ]
    np.testing.assert_allclose(by_nan.statistic, theirs, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(by_mask.statistic, by_nan.statistic)
    # Absent entries are ignored whatever they hold.
    junk_g = np.where(present, g, 7)
    np.testing.assert_array_equal(logrank_many(ragged, e, junk_g).statistic, by_nan.statistic)


def test_logrank_many_large_batch():
    # The size of the docstring's timing; spot-check replicates against lifelines.
    d, e, g = _replicates(4, 1000, 400)
    res = logrank_many(d, e, g)
    for r in (0, 499, 999):
        assert res.statistic[r] == pytest.approx(_lifelines_statistic(d[r], e[r], g[r]), abs=1e-10)


def test_logrank_many_without_information_is_nan():
    d = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0], [1.0, 2.0, 3.0, 4.0]])
    e = np.array([[0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 1, 1]])
    g = np.array([[0, 1, 0, 1], [0, 1, 0, 1], [0, 0, 0, 0]])  # last row: one group only
    res = logrank_many(d, e, g)
    assert np.isnan(res.statistic).all() and np.isnan(res.z).all()


# -- Cox ------------------------------------------------------------------------------------


def _cox_frame(seed, n=150):
    rng = np.random.default_rng(seed)
    age = rng.normal(65, 9, n)
    albi = rng.integers(0, 2, n)
    afp = rng.integers(0, 2, n)
    risk = 0.03 * (age - 65) + 0.5 * albi + 0.3 * afp
    t = np.round(rng.exponential(300 * np.exp(-risk)))
    c = np.round(rng.exponential(500, n))
    return pd.DataFrame(
        {
            "os_days": np.minimum(t, c),
            "death": (t <= c).astype(int),
            "age": age,
            "albi_grade2": albi,
            "afp_high": afp,
            "noise": rng.normal(size=n),
            "site": rng.integers(0, 3, n),
        }
    )


def _lifelines_cox(df, covariates, strata=None):
    cols = ["os_days", "death", *covariates, *([] if strata is None else [strata])]
    return CoxPHFitter().fit(df[cols], "os_days", "death", strata=strata, fit_options=TIGHT)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("strata", [None, "site"])
def test_cox_fit_matches_lifelines_summary(seed, strata):
    df = _cox_frame(seed)
    covariates = ["age", "albi_grade2", "afp_high"]
    res = cox_fit(df, "os_days", "death", covariates, strata=strata)
    summary = _lifelines_cox(df, covariates, strata).summary
    assert res.converged and res.error is None
    assert res.n == len(df) and res.events == df["death"].sum() and res.n_missing == 0
    assert res.covariates == tuple(covariates)
    for term in res.terms:
        row = summary.loc[term.covariate]
        assert term.coef == pytest.approx(row["coef"], abs=1e-10)
        assert term.se == pytest.approx(row["se(coef)"], abs=1e-10)
        assert term.hazard_ratio == pytest.approx(row["exp(coef)"], rel=1e-10)
        assert term.lower == pytest.approx(row["exp(coef) lower 95%"], rel=1e-10)
        assert term.upper == pytest.approx(row["exp(coef) upper 95%"], rel=1e-10)
        assert term.p_value == pytest.approx(row["p"], rel=1e-8, abs=1e-14)
    assert res.term("age") is res.terms[0]


def test_cox_fit_accepts_a_mapping_and_leaves_out_missing_rows():
    df = _cox_frame(5)
    df.loc[[3, 10, 20], "age"] = np.nan
    columns = {c: df[c].to_numpy() for c in df.columns}
    res = cox_fit(columns, "os_days", "death", ["age", "afp_high"])
    assert res.n_missing == 3 and res.n == len(df) - 3
    complete = df.dropna()
    summary = _lifelines_cox(complete, ["age", "afp_high"]).summary
    assert res.term("age").hazard_ratio == pytest.approx(summary.loc["age", "exp(coef)"], rel=1e-10)
    assert res.events == complete["death"].sum()


def test_cox_fit_alpha_sets_the_interval():
    df = _cox_frame(1)
    res = cox_fit(df, "os_days", "death", "age", alpha=0.1)
    t = res.term("age")
    half = norm.ppf(0.95) * t.se
    assert (t.lower, t.upper) == pytest.approx((math.exp(t.coef - half), math.exp(t.coef + half)))


def test_cox_fit_failures_are_reported_not_raised():
    df = _cox_frame(2, n=60)
    # Complete separation: every death in the x = 1 group while x = 0 patients are at risk
    # only after the last of them (lifelines warns; the MLE is infinite).
    sep = pd.DataFrame(
        {"T": [1.0, 2, 3, 4, 5, 6], "E": [1, 1, 1, 0, 1, 0], "x": [1, 1, 1, 0, 0, 0]}
    )
    res = cox_fit(sep, "T", "E", ["x"])
    assert not res.converged and res.error
    assert len(res.terms) == 1  # the row is kept (with lifelines' non-converged estimate)
    # Perfectly collinear covariates: lifelines raises ConvergenceError.
    df["twice_age"] = 2 * df["age"]
    res = cox_fit(df, "os_days", "death", ["age", "twice_age"])
    assert not res.converged and "ConvergenceError" in res.error
    assert all(math.isnan(t.hazard_ratio) for t in res.terms)
    # No events, and a constant covariate: reported without calling lifelines.
    no_events = df.assign(death=0)
    res = cox_fit(no_events, "os_days", "death", ["age"])
    assert not res.converged and "no events" in res.error and res.events == 0
    res = cox_fit(df.assign(one=1.0), "os_days", "death", ["age", "one"])
    assert not res.converged and "single value" in res.error


def test_cox_univariable_one_model_per_covariate_and_counts_failures():
    df = _cox_frame(3)
    df["constant"] = 1.0
    results = cox_univariable(df, "os_days", "death", ["age", "albi_grade2", "constant"])
    assert isinstance(results, CoxResults) and len(results) == 3
    assert results.n_failed == 1 and results.failed[0].covariates == ("constant",)
    for res, c in zip(results[:2], ["age", "albi_grade2"], strict=True):
        single = cox_fit(df, "os_days", "death", [c])
        assert res.covariates == (c,) and res.converged
        assert res.term(c).hazard_ratio == single.term(c).hazard_ratio
        summary = _lifelines_cox(df, [c]).summary
        assert res.term(c).hazard_ratio == pytest.approx(summary.loc[c, "exp(coef)"], rel=1e-10)


def test_cox_multivariable_caps_covariates_by_events():
    df = _cox_frame(4, n=50)
    covariates = ["age", "albi_grade2", "afp_high", "noise"]
    events = int(df["death"].sum())
    cap = events // 10
    assert 1 <= cap < len(covariates)  # the data make the cap bite
    res = cox_multivariable(df, "os_days", "death", covariates)
    assert res.covariates == tuple(covariates[:cap])
    assert res.dropped == tuple(covariates[cap:])
    assert f"all 4 covariates hold {events} events, which allow {cap}" in res.drop_reason
    ref = cox_fit(df, "os_days", "death", covariates[:cap])
    assert [t.hazard_ratio for t in res.terms] == [t.hazard_ratio for t in ref.terms]
    # A looser cap keeps them all; fewer than 10 events still keep one covariate.
    everything = cox_multivariable(df, "os_days", "death", covariates, events_per_covariate=1)
    assert everything.covariates == tuple(covariates) and everything.dropped == ()
    few = df.iloc[:12].copy()
    few_events = int(few["death"].sum())
    assert few_events < 10
    res = cox_multivariable(few, "os_days", "death", covariates)
    assert res.covariates == ("age",) and res.dropped == tuple(covariates[1:])


def test_cox_multivariable_counts_events_in_the_complete_cases():
    # 25 events overall allow 2 covariates, but missing values of the second covariate leave
    # fewer than 20 events in its complete cases: only the first is kept.
    rng = np.random.default_rng(6)
    n = 60
    df = pd.DataFrame(
        {
            "os_days": np.arange(1.0, n + 1),
            "death": np.r_[np.ones(25), np.zeros(n - 25)].astype(int),
            "a": rng.normal(size=n),
            "b": np.where(np.arange(n) < 10, np.nan, rng.normal(size=n)),
        }
    )
    res = cox_multivariable(df, "os_days", "death", ["a", "b"])
    assert res.covariates == ("a",) and res.dropped == ("b",)
    assert "all 2 covariates hold 15 events, which allow 1" in res.drop_reason


# -- Cox with one binary covariate in numpy ---------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_cox_binary_hr_matches_statsmodels_and_lifelines(seed):
    d, e, g, _ = _data(seed, 30 + 20 * seed)
    hr = cox_binary_hr(d, e, g)
    sm = PHReg(d, g[:, None].astype(float), status=e.astype(int), ties="efron").fit(tol=1e-12)
    assert math.log(hr) == pytest.approx(sm.params[0], abs=1e-9)
    df = pd.DataFrame({"T": d, "E": e.astype(int), "x": g})
    lifelines_hr = math.exp(CoxPHFitter().fit(df, "T", "E", fit_options=TIGHT).params_["x"])
    assert hr == pytest.approx(lifelines_hr, rel=1e-6)


def test_cox_binary_hr_continuous_times_and_bool_covariate():
    d, e, g, _ = _data(20, 100, decimals=6)
    sm = PHReg(d, g[:, None].astype(float), status=e.astype(int), ties="efron").fit(tol=1e-12)
    assert math.log(cox_binary_hr(d, e, g.astype(bool))) == pytest.approx(sm.params[0], abs=1e-9)


def test_cox_binary_hr_is_nan_without_a_finite_estimate():
    d, e, g, _ = _data(0, 40)
    assert math.isnan(cox_binary_hr(d, e, np.zeros(40, int)))  # one group empty
    assert math.isnan(cox_binary_hr(d, np.where(g == 1, False, e), g))  # no events in group 1
    assert math.isnan(cox_binary_hr(d, np.where(g == 0, False, e), g))  # none in group 0
    # Monotone likelihood: x = 1 patients all die (days 1-3) before the only x = 0 death (day
    # 5), when no x = 1 patient is at risk any more; the MLE is +infinity.
    assert math.isnan(cox_binary_hr([1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 1, 0], [1, 1, 1, 0, 0, 0]))
    assert math.isnan(cox_binary_hr([], [], []))


# -- edge cases ---------------------------------------------------------------------------------


def test_no_events_anywhere():
    d, e = [2.0, 3.0, 7.0], [0, 0, 0]
    km = kaplan_meier(d, e)
    lower, upper = km_confidence(km)
    assert len(lower) == len(upper) == len(km.greenwood()) == 0
    assert km_median_ci(d, e) == (math.inf, math.inf, math.inf)
    res = survival_at(d, e, [0.0, 5.0])
    np.testing.assert_array_equal(np.c_[res.survival, res.lower, res.upper], np.ones((2, 3)))
    assert rmst(d, e, 7.0) == (7.0, 0.0)


def test_all_events_at_one_time():
    d, e = [5.0] * 6, [1] * 6
    km = kaplan_meier(d, e)
    np.testing.assert_array_equal(km.greenwood(), [np.inf])
    np.testing.assert_array_equal(km_confidence(km), [[0.0], [0.0]])
    ci = _kmf(d, e).confidence_interval_.loc[5.0].to_numpy()
    np.testing.assert_array_equal(ci, [0.0, 0.0])  # lifelines agrees
    assert km_median_ci(d, e) == (5.0, 5.0, 5.0)
    assert rmst(d, e, 5.0) == (5.0, 0.0)


def test_single_patient():
    assert km_median_ci([3.0], [1]) == (3.0, 3.0, 3.0)
    assert km_median_ci([3.0], [0]) == (math.inf, math.inf, math.inf)
    assert rmst([3.0], [1], 2.0) == (2.0, 0.0)
    res = survival_at([3.0], [1], [1.0, 3.0])
    np.testing.assert_array_equal(res.survival, [1.0, 0.0])
    np.testing.assert_array_equal(res.at_risk, [1, 1])


def test_module_import_does_not_load_lifelines_or_statsmodels():
    code = (
        "import sys, hccsim.analysis.survival as s; "
        "assert 'lifelines' not in sys.modules and 'statsmodels' not in sys.modules; "
        "s.logrank_many([[1.0, 2.0]], [[1, 1]], [[0, 1]]); s.cox_binary_hr([1, 2], [1, 1], [0, 1]); "
        "assert 'lifelines' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: km_confidence(kaplan_meier([1.0], [1]), alpha=0.0), "alpha"),
        (lambda: km_confidence(kaplan_meier([1.0], [1]), alpha=1.5), "alpha"),
        (lambda: km_confidence(kaplan_meier([1.0], [1]), alpha="0.05"), "alpha"),
        (lambda: km_confidence(([1.0], [0.5]), alpha=0.05), "km must be a KaplanMeier"),
        (lambda: km_median_ci([1.0, -2.0], [1, 1]), "durations must be finite and >= 0; got -2.0"),
        (lambda: km_median_ci([1.0, 2.0], [1, 2]), "events must be"),
        (lambda: survival_at([1.0, 2.0], [1, 0], [-1.0]), "times must be finite and >= 0"),
        (lambda: survival_at([1.0, 2.0], [1, 0], [np.nan]), "times"),
        (lambda: rmst([1.0, 2.0], [1, 0], 3.0), r"tau must be > 0 and at most .* \(2\)"),
        (lambda: rmst([1.0, 2.0], [1, 0], 0.0), "tau"),
        (lambda: rmst([1.0, 2.0], [1, 0], "5"), "tau must be a number"),
        (lambda: rmst([], [], 1.0), "durations must not be empty"),
        (lambda: rmst_difference([1.0, 2.0, 9.0], [1, 0, 1], [0, 1, 1], 5.0), "shorter follow-up"),
        (lambda: rmst_difference([1.0, 2.0], [1, 0], [0, 0], 1.0), "exactly two distinct"),
        (lambda: logrank([1.0, 2.0], [1, 1], [0, 0]), "at least two distinct"),
        (lambda: logrank([1.0, 2.0], [1, 1], [0, 1, 1]), "groups must be a 1-d array of length 2"),
        (lambda: logrank([1.0, 2.0], [1, 1], [0, None]), "groups must not have missing"),
        (lambda: logrank([1.0, 2.0], [1, 1], [0, 1], strata=[1.0, np.nan]), "strata"),
        (lambda: logrank_many([1.0, 2.0], [1, 1], [0, 1]), r"durations must be 2-d"),
        (lambda: logrank_many([[1.0, 2.0]], [[1, 1, 1]], [[0, 1]]), "events must be of shape"),
        (lambda: logrank_many([[1.0, 2.0]], [[1, 1]], [[0, 2]]), r"groups must be 0/1 .* got 2"),
        (lambda: logrank_many([[1.0, -2.0]], [[1, 1]], [[0, 1]]), "durations must be finite"),
        (
            lambda: logrank_many([[1.0, 2.0]], [[1, 1]], [[0, 1]], mask=[[1, 0]]),
            "mask must be boolean",
        ),
        (lambda: cox_binary_hr([1.0, 2.0], [1, 1], [0, 2]), "x must be 0/1"),
        (lambda: cox_binary_hr([1.0, 2.0], [1, 1], [0]), "x must have one value per patient"),
    ],
)
def test_bad_input_messages(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_cox_arguments():
    df = _cox_frame(0, n=30)
    with pytest.raises(ValueError, match="duration_col must name a column of df; got 'os'"):
        cox_fit(df, "os", "death", ["age"])
    with pytest.raises(ValueError, match="covariates must name columns of df; got 'weight'"):
        cox_fit(df, "os_days", "death", ["age", "weight"])
    with pytest.raises(ValueError, match="covariates must be a column name or a non-empty list"):
        cox_univariable(df, "os_days", "death", [])
    with pytest.raises(ValueError, match="must be different columns"):
        cox_fit(df, "os_days", "death", ["age"], strata="age")
    with pytest.raises(ValueError, match="column 'arm' must be numeric"):
        cox_fit(df.assign(arm=["a", "b", "c"] * 10), "os_days", "death", ["arm"])
    with pytest.raises(ValueError, match="'death' \\(event_col\\) must be 0/1"):
        cox_fit(df.assign(death=2), "os_days", "death", ["age"])
    with pytest.raises(ValueError, match=r"events_per_covariate must be a positive number .*got 0"):
        cox_multivariable(df, "os_days", "death", ["age"], events_per_covariate=0)
    with pytest.raises(ValueError, match="alpha"):
        cox_fit(df, "os_days", "death", ["age"], alpha=1)
    res = cox_fit(df, "os_days", "death", ["age"])
    with pytest.raises(ValueError, match="covariate must be one of the model's"):
        res.term("albi")


def test_kaplan_meier_dataclass_unchanged():
    # The inner-loop estimate keeps its fields (used by the per-replicate summary).
    km = kaplan_meier([1.0, 2.0], [1, 0])
    assert isinstance(km, KaplanMeier)
    assert [f for f in km.__dataclass_fields__] == ["times", "survival", "at_risk", "events"]


def test_rmst_difference_takes_text_labels_as_pandas_gives_them():
    """Group labels in an object array (pandas' default for text) are kept as they are."""
    d = np.array([1.0, 2, 3, 4, 5, 6])
    e = np.array([1, 1, 0, 1, 1, 0])
    text = rmst_difference(d, e, np.array(["a", "b", "a", "b", "a", "b"], dtype=object), 4.0)
    codes = rmst_difference(d, e, np.array([0, 1, 0, 1, 0, 1]), 4.0)
    assert text.groups == ("a", "b") and codes.groups == (0, 1)
    assert text.difference == codes.difference and text.se == codes.se
