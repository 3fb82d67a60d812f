"""Survival statistics: Kaplan-Meier with confidence limits, RMST, log-rank tests, Cox models.

Everything except the Cox models with covariate tables is numpy (scipy.special for normal and
chi-square tails); lifelines is imported lazily, inside the Cox functions only, so that the
fast per-replicate summary never loads it.

**Kaplan-Meier.** ``kaplan_meier`` gives the product-limit estimate at the distinct event
times; ``km_median`` the median survival time, defined as lifelines defines it: the smallest time
at which the estimate is at or below one half (not reached: ``inf``); where the estimate sits at
exactly one half, R's ``survfit`` takes the midpoint of that flat stretch instead. Ties: deaths
before censorings at the same time (the usual convention), so the number at risk at t counts
everyone whose time is >= t. These are the inner-loop versions used on every replicate; the
tests check them against lifelines and exact rational arithmetic.

**Greenwood and pointwise limits.** ``KaplanMeier.greenwood()`` is Greenwood's sum
sigma^2(t) = sum over event times t_j <= t of d_j / (n_j (n_j - d_j)), the variance of log S;
it is infinite from a time where everyone at risk dies (n_j = d_j, S = 0). ``km_confidence``
and ``survival_at`` give pointwise limits by the log(-log) transform ("exponential Greenwood",
Kalbfleisch & Prentice 2002, section 1.4; lifelines' only method, R's ``conf.type =
"log-log"``): with v = log S < 0, the limits are exp(-exp(log(-v) +- z sigma / |v|)), that is
S^exp(+-z sigma / |v|), z the 1 - alpha/2 normal quantile. They always lie in [0, 1]. At the
ends the transform is undefined and lifelines' conventions apply: where S = 1 (before the first
event) both limits are 1 (lifelines fills the 0/0 with 1), and where S = 0 both limits are 0
(lifelines drops the infinite Greenwood term, so the limits are exp(-exp(+inf)) = 0).

**Median with CI** (``km_median_ci``): Brookmeyer & Crowley (1982) by inverting the pointwise
log(-log) band, as lifelines' ``median_survival_times(kmf.confidence_interval_)`` does: the
lower limit is the first time the lower curve is <= 0.5, the upper limit the first time the
upper curve is <= 0.5. A limit that is never reached is ``inf`` and is reported as "not
reached" (an upper limit often is). lifelines locates the crossing by binary search, which
assumes the curve never rises; we take the first crossing literally (the two agree whenever the
curve does not rise, which the tests check on every dataset they use).

**RMST** (``rmst``): the area under the Kaplan-Meier curve from 0 to tau, with the
Greenwood-type variance of Klein & Moeschberger (2003, eq. 4.5.1) as in Royston & Parmar
(2013) and R's survRM2: Var = sum over event times t_j <= tau of A_j^2 d_j / (n_j (n_j - d_j)),
A_j the area under the curve from t_j to tau (a term with n_j = d_j has A_j = 0 and counts 0).
tau must lie within the follow-up (at most the longest observed time, in each group for a
difference): beyond it the curve is not estimated. lifelines' ``return_variance=True`` gives
another quantity, the variance of min(T, tau) under the estimated distribution (2 int t S dt -
RMST^2), not the sampling variance of the estimate; it is not used.

**Log-rank** (``logrank``): for k >= 2 groups, observed minus expected events per group with
the hypergeometric covariance V_gh = sum_t d_t (n_t - d_t) / (n_t - 1) x (n_gt / n_t)
(delta_gh - n_ht / n_t) (a term with n_t = 1 counts 0); the statistic is (O - E)' V^-1 (O - E)
over the first k - 1 groups, chi-square with k - 1 df (Peto & Peto 1972; R ``survdiff``;
lifelines ``multivariate_logrank_test``). Stratified: O - E and V are summed over strata, each
computed within its stratum (R ``survdiff(... + strata(s))``). Groups never at risk at an event
time (expected 0) are left out, and the df is the rank of the remaining covariance (k - 1
unless the data are degenerate); a statistic that cannot be formed is NaN.
``logrank_many`` is the same two-group test for many replicates at once.

**Cox** (``cox_fit``, ``cox_univariable``, ``cox_multivariable``): lifelines' CoxPHFitter,
Efron ties, Wald CIs and p-values. lifelines' default stopping rule (relative change of the log
partial likelihood < 1e-9 under its damped Newton steps) can stop with hazard ratios 1e-4 away
from the maximum, so the fits here ask for a tighter one (``_COX_FIT_OPTIONS``). Rows with a
missing value in a model's columns are left out of that model and counted (``n_missing``).
A fit that raises, warns about convergence (lifelines' ``ConvergenceWarning``, which includes
its warnings about low variance and complete separation) or gives non-finite estimates is
reported with ``converged=False`` and the reason, never dropped. ``cox_binary_hr`` is a numpy
Newton-Raphson fit of one binary covariate for the inner loop.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from hccsim.analysis.schema import as_columns

#: The estimate is a product of floating-point factors, so a curve that reaches one half exactly
#: (say 2k patients without censoring: S = (2k-1)/2k x ... x k/(k+1) = 1/2) can come out as
#: 0.5000000000000001 and push the median to the next event time. Values within this of 1/2
#: count as 1/2 (R's ``quantile.survfit`` uses a tolerance, sqrt(eps), for the same reason);
#: the rounding error of the product of k factors is about k x 1e-16.
_HALF_TOL = 1e-9

#: Stopping rule for lifelines' Cox fits: stop when the Newton step or the Newton decrement is
#: below 1e-14, or the relative change of the log partial likelihood below 1e-15 (lifelines'
#: defaults, 1e-7 and 1e-9, left hazard ratios up to 3e-4 away from the maximum on test data;
#: these leave them within about 1e-7, checked against statsmodels' PHReg in the tests).
_COX_FIT_OPTIONS = {"precision": 1e-14, "r_precision": 1e-15}


def _show(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class KaplanMeier:
    times: np.ndarray  # distinct event times
    survival: np.ndarray  # S(t) just after each time
    at_risk: np.ndarray
    events: np.ndarray

    def at(self, t) -> np.ndarray:
        """S(t) at arbitrary times (right-continuous step function)."""
        idx = np.searchsorted(self.times, np.asarray(t, dtype=float), side="right")
        # Prepend S = 1 before the first event: also right for a curve without events.
        return np.asarray(np.concatenate(([1.0], self.survival))[idx])

    def greenwood(self) -> np.ndarray:
        """Greenwood's sum at each event time: sum over t_j <= t of d_j / (n_j (n_j - d_j)).

        The variance of log S(t); ``inf`` from a time at which everyone at risk dies.
        """
        n = self.at_risk.astype(float)
        d = self.events.astype(float)
        term = np.full(len(n), np.inf)
        ok = n > d
        term[ok] = d[ok] / (n[ok] * (n[ok] - d[ok]))
        return np.cumsum(term)


def _check(durations, events) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(durations, dtype=float)
    raw = np.asarray(events)
    if raw.dtype.kind != "b" and not np.isin(raw, (0, 1)).all():
        bad = raw[~np.isin(raw, (0, 1))] if raw.shape else raw
        raise ValueError(
            f"events must be true/false or 0/1 (1: event observed, 0: censored); "
            f"got {_show(np.ravel(bad)[:3].tolist())}"
        )
    e = raw.astype(bool)
    if d.shape != e.shape or d.ndim != 1:
        raise ValueError(
            f"durations and events must be 1-d arrays of the same length; got shapes "
            f"{d.shape} and {e.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(d) | (d < 0))
    if len(bad):
        raise ValueError(
            f"durations must be finite and >= 0; got {float(d[bad[0]])!r} at position {bad[0]}"
        )
    return d, e


def _scalar(x):
    """A numpy scalar as the Python value (for messages)."""
    return x.item() if isinstance(x, np.generic) else x


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number in (0, 1), e.g. 0.05; got {_show(alpha)}")
    return float(alpha)


def _z(alpha) -> float:
    from scipy.special import ndtri

    return float(ndtri(1.0 - _check_alpha(alpha) / 2.0))


def _labels(values, name: str, n: int) -> np.ndarray:
    """A 1-d array of ``n`` group or stratum labels without missing values."""
    v = np.asarray(values)
    if v.ndim != 1 or len(v) != n:
        raise ValueError(
            f"{name} must be a 1-d array of length {n} (one per patient); got shape {v.shape}"
        )
    if v.dtype.kind == "f":
        missing = np.isnan(v)
    elif v.dtype.kind == "O":
        missing = np.array([x is None or (isinstance(x, float) and math.isnan(x)) for x in v], bool)
    else:
        missing = np.zeros(n, bool)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"{name} must not have missing values; got {_show(_scalar(v[i]))} at position {i}"
        )
    return v


def kaplan_meier(durations, events) -> KaplanMeier:
    """Product-limit estimate; ``events`` true for an observed event, false for censoring."""
    d, e = _check(durations, events)
    if len(d) == 0:
        return KaplanMeier(np.empty(0), np.empty(0), np.empty(0, int), np.empty(0, int))
    times, inverse = np.unique(d, return_inverse=True)
    deaths = np.bincount(inverse, weights=e, minlength=len(times))
    total = np.bincount(inverse, minlength=len(times))
    at_risk = len(d) - np.concatenate([[0], np.cumsum(total)[:-1]])
    keep = deaths > 0
    surv = np.cumprod(1.0 - deaths[keep] / at_risk[keep])
    return KaplanMeier(times[keep], surv, at_risk[keep].astype(int), deaths[keep].astype(int))


def _median_of(km: KaplanMeier) -> float:
    hit = np.flatnonzero(km.survival <= 0.5 + _HALF_TOL)
    return float(km.times[hit[0]]) if len(hit) else float("inf")


def _nonempty(durations, events, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The checked arrays; an empty sample is refused (there is nothing to estimate: a median
    would read "not reached" and survival 100%)."""
    d, e = _check(durations, events)
    if not len(d):
        raise ValueError(f"durations must not be empty for {what}")
    return d, e


def km_median(durations, events) -> float:
    """Median survival: first time with S(t) <= 0.5; ``inf`` when not reached."""
    return _median_of(kaplan_meier(*_nonempty(durations, events, "a median")))


# -- confidence limits -----------------------------------------------------------------------


def km_confidence(km: KaplanMeier, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise 1 - alpha limits of S at ``km.times`` by the log(-log) transform.

    (lower, upper) arrays; both 0 where S = 0 (module docstring).
    """
    if not isinstance(km, KaplanMeier):
        raise ValueError(f"km must be a KaplanMeier (from kaplan_meier); got {type(km).__name__}")
    z = _z(alpha)
    s = km.survival
    lower, upper = np.zeros(len(s)), np.zeros(len(s))
    inner = (s > 0) & (s < 1)
    lower[s >= 1] = upper[s >= 1] = 1.0
    v = np.log(s[inner])  # < 0
    half = z * np.sqrt(km.greenwood()[inner]) / -v
    lower[inner] = np.exp(-np.exp(np.log(-v) + half))
    upper[inner] = np.exp(-np.exp(np.log(-v) - half))
    return lower, upper


class MedianCI(NamedTuple):
    """Median survival with its 1 - alpha limits; ``inf`` means "not reached"."""

    median: float
    lower: float
    upper: float


def _first_at_or_below_half(times: np.ndarray, curve: np.ndarray) -> float:
    hit = np.flatnonzero(curve <= 0.5)
    return float(times[hit[0]]) if len(hit) else math.inf


def km_median_ci(durations, events, alpha: float = 0.05) -> MedianCI:
    """Kaplan-Meier median with Brookmeyer-Crowley limits from the log(-log) band.

    ``median`` is ``km_median``; ``lower`` (``upper``) is the first time the lower (upper)
    pointwise limit is <= 0.5. Any of the three may be ``inf``: not reached (report it so;
    an upper limit often is not reached).
    """
    km = kaplan_meier(*_nonempty(durations, events, "a median"))
    lower, upper = km_confidence(km, alpha)
    return MedianCI(
        _median_of(km),
        _first_at_or_below_half(km.times, lower),
        _first_at_or_below_half(km.times, upper),
    )


@dataclass(frozen=True)
class SurvivalAt:
    """Kaplan-Meier estimate and log(-log) limits at landmark times."""

    times: np.ndarray
    survival: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    at_risk: np.ndarray  # patients with a time >= the landmark


def survival_at(durations, events, times, alpha: float = 0.05) -> SurvivalAt:
    """S(t), its pointwise 1 - alpha limits and the number at risk at each of ``times``.

    Step functions, right-continuous: the value at t includes events at t. ``times`` must be
    finite and >= 0 (before the first event S = 1 with limits 1; beyond the last observed
    time the last values carry on, as in lifelines).
    """
    d, e = _nonempty(durations, events, "survival estimates")
    t = np.atleast_1d(np.asarray(times, dtype=float))
    if t.ndim != 1:
        raise ValueError(f"times must be a number or a 1-d array of times; got shape {t.shape}")
    bad = np.flatnonzero(~np.isfinite(t) | (t < 0))
    if len(bad):
        raise ValueError(
            f"times must be finite and >= 0 (days from day 0); got {float(t[bad[0]])!r}"
        )
    km = kaplan_meier(d, e)
    lower, upper = km_confidence(km, alpha)
    idx = np.searchsorted(km.times, t, side="right")
    one = np.ones(1)
    at_risk = len(d) - np.searchsorted(np.sort(d), t, side="left")
    return SurvivalAt(
        t,
        np.concatenate((one, km.survival))[idx],
        np.concatenate((one, lower))[idx],
        np.concatenate((one, upper))[idx],
        at_risk.astype(int),
    )


# -- restricted mean survival time ----------------------------------------------------------


def _check_tau(tau, longest: float, where: str = "") -> float:
    if isinstance(tau, bool) or not isinstance(tau, int | float | np.integer | np.floating):
        raise ValueError(f"tau must be a number (days); got {_show(tau)}")
    tau = float(tau)
    if not (math.isfinite(tau) and 0 < tau <= longest):
        raise ValueError(
            f"tau must be > 0 and at most the longest observed time{where} ({longest:g}); "
            f"got {tau!r}"
        )
    return tau


def _rmst_km(km: KaplanMeier, tau: float) -> tuple[float, float]:
    keep = km.times <= tau
    edges = np.concatenate(([0.0], km.times[keep], [tau]))
    pieces = np.diff(edges) * np.concatenate(([1.0], km.survival[keep]))
    tail = np.cumsum(pieces[::-1])[::-1]  # tail[i]: area from edges[i] to tau
    area_after = tail[1:]  # A_j: from the j-th event time to tau
    n = km.at_risk[keep].astype(float)
    d = km.events[keep].astype(float)
    weight = np.zeros(len(n))
    ok = n > d  # n = d: S = 0 after t_j, so A_j = 0 and the term counts 0
    weight[ok] = d[ok] / (n[ok] * (n[ok] - d[ok]))
    return float(tail[0]), float(np.sum(area_after**2 * weight))


def rmst(durations, events, tau) -> tuple[float, float]:
    """Restricted mean survival time up to ``tau`` and its variance (module docstring)."""
    d, e = _check(durations, events)
    if len(d) == 0:
        raise ValueError("durations must not be empty for an RMST")
    return _rmst_km(kaplan_meier(d, e), _check_tau(tau, float(d.max())))


@dataclass(frozen=True)
class RMSTDifference:
    """RMST of two groups up to ``tau`` and their difference (second group minus first)."""

    groups: tuple  # the two labels, sorted; the difference is groups[1] - groups[0]
    tau: float
    rmst: tuple[float, float]
    variance: tuple[float, float]
    difference: float
    se: float
    lower: float
    upper: float
    z: float
    p_value: float  # two-sided; NaN when se = 0


def _two_groups(groups, n: int) -> tuple[np.ndarray, np.ndarray]:
    g = _labels(groups, "groups", n)
    labels, index = np.unique(g, return_inverse=True)
    if len(labels) != 2:
        raise ValueError(
            f"groups must hold exactly two distinct values; got {len(labels)}: "
            f"{_show(labels.tolist())}"
        )
    return labels, index


def _plain(label):
    """A group label as a plain Python value (numpy scalars unwrapped; str and objects kept)."""
    return label.item() if isinstance(label, np.generic) else label


def rmst_difference(durations, events, groups, tau, alpha: float = 0.05) -> RMSTDifference:
    """Difference in RMST between two groups with its SE, 1 - alpha CI and two-sided z-test.

    SE = sqrt(Var_0 + Var_1) (independent groups); ``tau`` must not exceed either group's
    longest observed time.
    """
    from scipy.special import ndtr

    d, e = _check(durations, events)
    labels, gi = _two_groups(groups, len(d))
    z_alpha = _z(alpha)
    longest = min(float(d[gi == k].max()) for k in (0, 1))
    tau = _check_tau(tau, longest, " in the group with the shorter follow-up")
    parts = [_rmst_km(kaplan_meier(d[gi == k], e[gi == k]), tau) for k in (0, 1)]
    diff = parts[1][0] - parts[0][0]
    se = math.sqrt(parts[0][1] + parts[1][1])
    z = diff / se if se > 0 else math.nan
    p = float(2.0 * ndtr(-abs(z))) if se > 0 else math.nan
    return RMSTDifference(
        (_plain(labels[0]), _plain(labels[1])),
        tau,
        (parts[0][0], parts[1][0]),
        (parts[0][1], parts[1][1]),
        diff,
        se,
        diff - z_alpha * se,
        diff + z_alpha * se,
        z,
        p,
    )


# -- log-rank --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRank:
    """Log-rank test of k groups (``groups``, sorted labels; the order of the arrays)."""

    statistic: float
    df: int
    p_value: float
    observed: np.ndarray
    expected: np.ndarray
    groups: np.ndarray
    covariance: np.ndarray  # k x k covariance of observed - expected


def _logrank_parts(d, e, g, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed and expected events per group, and the covariance of O - E, in one stratum."""
    times, inv = np.unique(d, return_inverse=True)
    cell = inv * k + g
    size = len(times) * k
    deaths = np.bincount(cell, weights=e, minlength=size).reshape(-1, k)
    leaving = np.bincount(cell, minlength=size).reshape(-1, k).astype(float)
    at_risk = np.cumsum(leaving[::-1], axis=0)[::-1]  # n_gt: time >= t in group g
    dt = deaths.sum(axis=1)
    keep = dt > 0
    deaths, at_risk, dt = deaths[keep], at_risk[keep], dt[keep]
    nt = at_risk.sum(axis=1)
    expected = (at_risk * (dt / nt)[:, None]).sum(axis=0)
    c = np.zeros(len(nt))
    many = nt > 1
    c[many] = dt[many] * (nt[many] - dt[many]) / (nt[many] - 1)
    cov = np.diag((c / nt) @ at_risk) - np.einsum("t,tg,th->gh", c / nt**2, at_risk, at_risk)
    return deaths.sum(axis=0), expected, cov


def logrank(durations, events, groups, strata=None) -> LogRank:
    """Log-rank test of two or more groups, stratified when ``strata`` is given."""
    from scipy.special import chdtrc

    d, e = _check(durations, events)
    labels, gi = np.unique(_labels(groups, "groups", len(d)), return_inverse=True)
    k = len(labels)
    if k < 2:
        raise ValueError(
            f"groups must hold at least two distinct values; got {_show(labels.tolist())}"
        )
    if strata is None:
        si, ns = np.zeros(len(d), dtype=int), 1
    else:
        stratum_labels, si = np.unique(_labels(strata, "strata", len(d)), return_inverse=True)
        ns = len(stratum_labels)
    observed, expected, cov = np.zeros(k), np.zeros(k), np.zeros((k, k))
    for s in range(ns):
        sel = si == s
        o, ex, v = _logrank_parts(d[sel], e[sel], gi[sel], k)
        observed += o
        expected += ex
        cov += v
    kept = np.flatnonzero(expected > 0)[:-1]  # the last group at risk is implied by the others
    sub = cov[np.ix_(kept, kept)]
    df = int(np.linalg.matrix_rank(sub)) if len(kept) else 0
    if df == 0:
        statistic, p = math.nan, math.nan
    else:
        diff = (observed - expected)[kept]
        statistic = float(diff @ np.linalg.pinv(sub) @ diff)
        p = float(chdtrc(df, statistic))
    return LogRank(statistic, df, p, observed, expected, labels, cov)


@dataclass(frozen=True)
class LogRankMany:
    """Two-group log-rank tests of R replicates (arrays of shape (R,)).

    ``z`` = (O - E) / sqrt(V) for group 1: positive when group 1 has more events than expected
    (worse survival); ``statistic`` = z^2 (chi-square, 1 df). NaN where V = 0 (no event with
    both groups at risk).
    """

    statistic: np.ndarray
    z: np.ndarray
    p_value: np.ndarray  # two-sided
    observed_minus_expected: np.ndarray
    variance: np.ndarray


def _as_2d(values, name: str, shape, dtype=None) -> np.ndarray:
    a = np.asarray(values, dtype=dtype)
    if a.ndim != 2 or (shape is not None and a.shape != shape):
        want = (
            "2-d (replicates x patients)" if shape is None else f"of shape {shape} like durations"
        )
        raise ValueError(f"{name} must be {want}; got shape {a.shape}")
    return a


def logrank_many(durations, events, groups, mask=None) -> LogRankMany:
    """Two-group log-rank test for each row of (R, n) arrays, without a loop over rows.

    ``groups`` 0/1 (the signed ``z`` is for group 1). Ragged replicates: give NaN durations for
    absent patients, or a boolean ``mask`` (true: present); absent entries are ignored whatever
    their event and group values. Per row: sort by time, then tie runs and at-risk counts from
    cumulative sums. 1,000 replicates x 400 patients take about 0.05 s on one core.
    """
    from scipy.special import chdtrc

    d = _as_2d(durations, "durations", None, float)
    present = ~np.isnan(d)
    if mask is not None:
        m = _as_2d(mask, "mask", d.shape)
        if m.dtype.kind != "b":
            raise ValueError(f"mask must be boolean (true: patient present); got dtype {m.dtype}")
        present &= m
    raw_e = _as_2d(events, "events", d.shape)
    raw_g = _as_2d(groups, "groups", d.shape)
    bad = present & (~np.isfinite(d) | (d < 0))
    if bad.any():
        r, c = map(int, np.argwhere(bad)[0])
        raise ValueError(
            f"durations must be finite and >= 0 or NaN (absent); got {float(d[r, c])!r} at [{r}, {c}]"
        )
    for name, raw in (("events", raw_e), ("groups", raw_g)):
        wrong = present & ~np.isin(raw, (0, 1))
        if wrong.any():
            r, c = map(int, np.argwhere(wrong)[0])
            raise ValueError(
                f"{name} must be 0/1 or true/false; got {_show(_scalar(raw[r, c]))} at [{r}, {c}]"
            )
    e = present & (raw_e == 1)
    g1 = present & (raw_g == 1)

    rows, n = d.shape
    order = np.argsort(np.where(present, d, np.inf), axis=1, kind="stable")
    t = np.take_along_axis(np.where(present, d, np.inf), order, axis=1)
    ok = np.take_along_axis(present, order, axis=1)
    ev = np.take_along_axis(e, order, axis=1)
    in1 = np.take_along_axis(g1, order, axis=1)
    ev1 = ev & in1

    first = np.ones((rows, n), dtype=bool)  # first patient of a run of tied times
    first[:, 1:] = t[:, 1:] != t[:, :-1]
    last = np.ones((rows, n), dtype=bool)
    last[:, :-1] = first[:, 1:]
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0), axis=1)

    def before_run(x):  # count of x among patients sorted before the run's first
        return np.take_along_axis(np.cumsum(x, axis=1) - x, start, axis=1)

    deaths = np.cumsum(ev, axis=1) - before_run(ev)  # at the run's last patient: deaths at t
    deaths1 = np.cumsum(ev1, axis=1) - before_run(ev1)
    n_risk = (ok.sum(axis=1, keepdims=True) - start).astype(float)
    n1_risk = (in1.sum(axis=1, keepdims=True) - before_run(in1)).astype(float)
    use = last & ok & (deaths > 0)

    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(use, n1_risk / np.where(use, n_risk, 1.0), 0.0)
        expected = np.sum(deaths * share, axis=1)
        scale = np.where(use & (n_risk > 1), (n_risk - deaths) / np.maximum(n_risk - 1, 1), 0.0)
        variance = np.sum(deaths * scale * share * (1.0 - share), axis=1)
        o_minus_e = deaths1.sum(axis=1, where=use) - expected
        z = np.where(variance > 0, o_minus_e / np.sqrt(variance), np.nan)
    statistic = z**2
    return LogRankMany(statistic, z, chdtrc(1, statistic), o_minus_e, variance)


# -- Cox models ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoxTerm:
    """One covariate of a Cox model: log hazard ratio, its SE, HR with 1 - alpha CI, Wald p."""

    covariate: str
    coef: float
    se: float
    hazard_ratio: float
    lower: float
    upper: float
    p_value: float


@dataclass(frozen=True)
class CoxResult:
    """A Cox model fit (``terms`` in covariate order; NaN when the fit raised).

    ``n`` and ``events`` count the rows used (complete cases); ``n_missing`` the rows left out
    for a missing value. ``converged`` is false when lifelines raised, warned about convergence
    or gave non-finite estimates; ``error`` says why. ``dropped`` and ``drop_reason``: the
    covariates a multivariable model left out for the events-per-covariate cap.
    """

    covariates: tuple[str, ...]
    terms: tuple[CoxTerm, ...]
    n: int
    events: int
    n_missing: int
    converged: bool
    error: str | None = None
    warnings: tuple[str, ...] = ()
    strata: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    drop_reason: str | None = None

    def term(self, covariate: str) -> CoxTerm:
        for t in self.terms:
            if t.covariate == covariate:
                return t
        raise ValueError(
            f"covariate must be one of the model's {list(self.covariates)}; got {covariate!r}"
        )


class CoxResults(list):
    """A list of :class:`CoxResult` that counts its failed fits (``n_failed``, ``failed``)."""

    @property
    def failed(self) -> list[CoxResult]:
        return [r for r in self if not r.converged]

    @property
    def n_failed(self) -> int:
        return len(self.failed)


def _names(value, arg: str) -> list[str]:
    names = [value] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(x, str) for x in names):
        raise ValueError(
            f"{arg} must be a column name or a non-empty list of names; got {_show(value)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"{arg} must not repeat a name; got {_show(names)}")
    return names


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return np.array(
            [x is None or (isinstance(x, float) and math.isnan(x)) for x in values], bool
        )
    return np.zeros(len(values), bool)


def _cox_columns(df, duration_col, event_col, covariates, strata):
    """Validated columns: (columns dict, covariate names, strata names)."""
    cols = as_columns(df)
    for arg, name in (("duration_col", duration_col), ("event_col", event_col)):
        if not isinstance(name, str) or name not in cols:
            raise ValueError(
                f"{arg} must name a column of df; got {_show(name)} (columns: {_show(sorted(cols))})"
            )
    covariates = _names(covariates, "covariates")
    strata = [] if strata is None else _names(strata, "strata")
    for arg, names in (("covariates", covariates), ("strata", strata)):
        for name in names:
            if name not in cols:
                raise ValueError(
                    f"{arg} must name columns of df; got {name!r} (columns: {_show(sorted(cols))})"
                )
    used = [duration_col, event_col, *covariates, *strata]
    if len(set(used)) != len(used):
        raise ValueError(
            f"duration_col, event_col, covariates and strata must be different columns; got {_show(used)}"
        )
    return cols, covariates, strata


def _cox_frame(cols, duration_col, event_col, covariates, strata):
    """Complete-case pandas frame for lifelines, and the number of rows left out."""
    import pandas as pd

    n = len(cols[duration_col])
    missing = np.zeros(n, bool)
    data = {}
    for name in (duration_col, event_col, *covariates):
        raw = np.asarray(cols[name])
        miss = _missing(raw)
        try:
            x = np.where(miss, np.nan, raw).astype(float)
        except (TypeError, ValueError):
            raise ValueError(
                f"column {name!r} must be numeric (code categories as 0/1 indicators); got values like {_show(raw[:3].tolist())}"
            ) from None
        if np.isinf(x).any():
            raise ValueError(f"column {name!r} must be finite; got {float(x[np.isinf(x)][0])!r}")
        missing |= miss
        data[name] = x
    d, ev = data[duration_col], data[event_col]
    if np.any(d[~missing] < 0):
        raise ValueError(
            f"column {duration_col!r} (duration_col) must be >= 0; got {float(d[~missing & (d < 0)][0])!r}"
        )
    if not np.isin(ev[~missing], (0.0, 1.0)).all():
        raise ValueError(
            f"column {event_col!r} (event_col) must be 0/1 or true/false; got {float(ev[~missing & ~np.isin(ev, (0.0, 1.0))][0])!r}"
        )
    for name in strata:
        codes, _ = pd.factorize(np.asarray(cols[name], dtype=object))
        missing |= codes < 0
        data[name] = codes
    frame = pd.DataFrame({k: v[~missing] for k, v in data.items()})
    return frame, int(missing.sum())


def _fit_cox(frame, duration_col, event_col, covariates, strata, alpha, n_missing) -> CoxResult:
    from scipy.special import ndtr

    z = _z(alpha)
    n, events = len(frame), int(frame[event_col].sum())

    def result(coef, se, converged, error, notes=()):
        coef, se = np.asarray(coef, float), np.asarray(se, float)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            terms = tuple(
                CoxTerm(c, float(b), float(s), float(np.exp(b)), float(np.exp(b - z * s)),
                        float(np.exp(b + z * s)), float(2.0 * ndtr(-abs(b / s))))
                for c, b, s in zip(covariates, coef, se, strict=True)
            )  # fmt: skip
        return CoxResult(
            tuple(covariates), terms, n, events, n_missing, converged, error, tuple(notes),
            tuple(strata),
        )  # fmt: skip

    nan = np.full(len(covariates), np.nan)
    if events == 0:
        return result(nan, nan, False, f"no events among the {n} complete rows")
    constant = [c for c in covariates if frame[c].nunique() < 2]
    if constant:
        return result(
            nan,
            nan,
            False,
            f"covariate(s) {constant} take a single value among the {n} complete rows",
        )

    from lifelines import CoxPHFitter
    from lifelines import exceptions as lx

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cph = CoxPHFitter(alpha=alpha).fit(
                frame, duration_col, event_col, strata=strata or None,
                fit_options=dict(_COX_FIT_OPTIONS),
            )  # fmt: skip
        except (lx.ConvergenceError, np.linalg.LinAlgError, ArithmeticError, ValueError) as exc:
            # Arguments were checked above, so a ValueError here is lifelines failing on the
            # data (for example NaN in its Newton steps): a failed fit, reported as such.
            return result(nan, nan, False, f"{type(exc).__name__}: {_short(str(exc))}")
    lifelines_warnings = (lx.ConvergenceWarning, lx.StatisticalWarning, lx.ApproximationWarning)
    notes = [_short(str(w.message)) for w in caught if issubclass(w.category, lifelines_warnings)]
    trouble = [
        _short(str(w.message)) for w in caught if issubclass(w.category, lx.ConvergenceWarning)
    ]
    coef = cph.params_[covariates].to_numpy(float)
    se = cph.standard_errors_[covariates].to_numpy(float)
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(se))):
        trouble.append("non-finite coefficient or standard error")
    return result(coef, se, not trouble, "; ".join(trouble) or None, notes)


def _short(message: str) -> str:
    """A lifelines message without its pointer to the documentation, on one line."""
    text = " ".join(message.split())
    return text.split(" Please see the following tips")[0].split(" See https://")[0]


def cox_fit(
    df, duration_col: str, event_col: str, covariates, strata=None, *, alpha: float = 0.05
) -> CoxResult:
    """One Cox model (lifelines, Efron ties) of ``covariates`` (numeric columns of ``df``, a
    DataFrame or mapping of arrays), stratified by the ``strata`` columns when given.

    Never raises for a fit that fails: see :class:`CoxResult`. Bad arguments raise ValueError.
    """
    _check_alpha(alpha)
    cols, covariates, strata = _cox_columns(df, duration_col, event_col, covariates, strata)
    frame, n_missing = _cox_frame(cols, duration_col, event_col, covariates, strata)
    return _fit_cox(frame, duration_col, event_col, covariates, strata, alpha, n_missing)


def cox_univariable(
    df, duration_col: str, event_col: str, covariates, *, strata=None, alpha: float = 0.05
) -> CoxResults:
    """One Cox model per covariate (each on its own complete cases), failures included."""
    _check_alpha(alpha)
    cols, covariates, strata = _cox_columns(df, duration_col, event_col, covariates, strata)
    out = CoxResults()
    for c in covariates:
        frame, n_missing = _cox_frame(cols, duration_col, event_col, [c], strata)
        out.append(_fit_cox(frame, duration_col, event_col, [c], strata, alpha, n_missing))
    return out


def cox_multivariable(
    df, duration_col: str, event_col: str, covariates, events_per_covariate: float = 10, *,
    strata=None, alpha: float = 0.05,
) -> CoxResult:  # fmt: skip
    """A multivariable Cox model with at most one covariate per ``events_per_covariate`` events.

    ``covariates`` in priority order: the model keeps the longest prefix of k covariates
    whose complete cases hold at least k x ``events_per_covariate`` events (at least one
    covariate is always kept); the rest are listed in ``dropped`` with the reason.
    """
    _check_alpha(alpha)
    epc = events_per_covariate
    if (
        isinstance(epc, bool)
        or not isinstance(epc, int | float | np.integer | np.floating)
        or not (math.isfinite(epc) and epc > 0)
    ):
        raise ValueError(
            f"events_per_covariate must be a positive number (usually 10); got {_show(epc)}"
        )
    cols, covariates, strata = _cox_columns(df, duration_col, event_col, covariates, strata)
    rejected = None  # (k, events, cap) of the longest prefix the cap refused
    for k in range(len(covariates), 0, -1):
        frame, n_missing = _cox_frame(cols, duration_col, event_col, covariates[:k], strata)
        events = int(frame[event_col].sum())
        cap = max(1, math.floor(events / epc))
        if k <= cap:
            break
        rejected = rejected or (k, events, cap)
    fit = _fit_cox(frame, duration_col, event_col, covariates[:k], strata, alpha, n_missing)
    dropped = tuple(covariates[k:])
    if not dropped:
        return fit
    k_all, events_all, cap_all = rejected
    reason = (
        f"at most one covariate per {epc:g} events: the complete cases of all {k_all} "
        f"covariates hold {events_all} events, which allow {cap_all}; kept the first {k} in "
        f"priority order (the longest prefix whose complete cases allow it)"
    )
    return CoxResult(**{**fit.__dict__, "dropped": dropped, "drop_reason": reason})


def _efron_weights(d: np.ndarray, e: np.ndarray, g: np.ndarray):
    """Per death, the Efron risk-set weights of group 0 (``a``, relative risk 1) and group 1
    (``b``, relative risk exp(beta)), and the deaths of group 1: the l-th of the d tied deaths
    at a time (l = 0..d-1) sees the risk set with fraction l/d of the tied deaths taken out."""
    times, inv = np.unique(d, return_inverse=True)
    m = len(times)
    n = np.cumsum(np.bincount(inv, minlength=m)[::-1])[::-1].astype(float)
    n1 = np.cumsum(np.bincount(inv, weights=g, minlength=m)[::-1])[::-1]
    dth = np.bincount(inv, weights=e, minlength=m)
    dth1 = np.bincount(inv, weights=e & g, minlength=m)
    keep = dth > 0
    n, n1, dth, dth1 = n[keep], n1[keep], dth[keep], dth1[keep]
    reps = dth.astype(int)
    j = np.repeat(np.arange(len(reps)), reps)
    f = (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)) / reps[j]
    a = (n - n1)[j] - f * (dth - dth1)[j]
    b = n1[j] - f * dth1[j]
    return a, b, float(dth1.sum())


def cox_binary_wald(durations, events, x, *, alpha: float = 0.05):
    """:func:`cox_binary_hr` with its Wald interval and p-value: ``(hr, lower, upper, p)``,
    the standard error of log HR being 1 / sqrt(I) with the Efron information
    ``I = sum over deaths of a b r / (a + b r)^2`` at the estimate (r = HR; lifelines and R
    report the same). All NaN when the hazard ratio is."""
    from scipy.special import ndtr, ndtri

    _check_alpha(alpha)
    hr = cox_binary_hr(durations, events, x)
    if not math.isfinite(hr):
        return (math.nan,) * 4
    d, e = _check(durations, events)
    a, b, _ = _efron_weights(d, e, np.asarray(x).astype(bool))
    info = float(np.sum(a * b * hr / (a + b * hr) ** 2))
    if not info > 0:
        return (math.nan,) * 4
    beta, se = math.log(hr), 1.0 / math.sqrt(info)
    z = float(ndtri(1.0 - alpha / 2.0))
    p = float(2.0 * ndtr(-abs(beta / se)))
    return hr, math.exp(beta - z * se), math.exp(beta + z * se), p


def cox_binary_hr(durations, events, x) -> float:
    """Hazard ratio of group x = 1 versus x = 0 from a Cox model with Efron ties, in numpy.

    Newton-Raphson on the score of the Efron partial likelihood, safeguarded by bisection
    (the score is decreasing in the log hazard ratio). NaN when either group is empty or has no
    event, when the maximum lies at +-infinity (monotone likelihood, e.g. every death of one
    group occurs while nobody of the other is at risk; detected from the limits of the score),
    or when 100 iterations do not converge.
    """
    d, e = _check(durations, events)
    raw = np.asarray(x)
    if raw.shape != d.shape:
        raise ValueError(f"x must have one value per patient ({d.shape}); got shape {raw.shape}")
    if raw.dtype.kind != "b" and not np.isin(raw, (0, 1)).all():
        raise ValueError(
            f"x must be 0/1 or true/false; got {_show(raw[~np.isin(raw, (0, 1))][:3].tolist())}"
        )
    g = raw.astype(bool)
    if not (e & g).any() or not (e & ~g).any():
        return math.nan
    a, b, total1 = _efron_weights(d, e, g)
    # Score U(beta) = total1 - sum b r / (a + b r), r = exp(beta), decreasing in beta from
    # total1 - #(a = 0) at -inf to total1 - #(b > 0) at +inf: a finite root needs both signs.
    if total1 - np.count_nonzero(b > 0) >= 0 or total1 - np.count_nonzero(a == 0) <= 0:
        return math.nan
    beta, lo, hi = 0.0, -math.inf, math.inf
    for _ in range(100):
        r = math.exp(beta)
        den = a + b * r
        score = total1 - np.sum(b * r / den)
        info = np.sum(a * b * r / den**2)
        if score == 0:
            return r
        if score > 0:
            lo = beta
        else:
            hi = beta
        new = beta + score / info if info > 0 else math.nan
        if not lo < new < hi:
            new = (
                0.5 * (lo + hi)
                if math.isfinite(lo) and math.isfinite(hi)
                else beta + math.copysign(1.0, score)
            )
        if abs(new - beta) <= 1e-12 * max(1.0, abs(beta)):
            return math.exp(new)
        beta = new
    return math.nan
