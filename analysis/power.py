"""Trial design and power: per-trial tests, Monte-Carlo power, closed-form event counts.

A simulated power study runs many replicates of a trial, applies one test to each
(:func:`two_arm_test`, :func:`single_arm_test`; :func:`logrank_reject_many` does the plain
log-rank for many replicates at once), estimates the power as the share of replicates that
reject (:func:`power_estimate`) and reads off the size that reaches a target power
(:func:`sample_size_for_power`). The closed forms of Schoenfeld and Freedman give the
cross-check columns. Only numpy and scipy are used (lifelines never), so the module can run
in the per-replicate loop.

**Conventions.** ``arm`` is 0 for control and 1 for experimental. Durations may be in any unit
(days in the cohort tables); an RMST difference is in that unit. ``alpha`` is the level of the
test as run: with ``sides=2`` the two-sided level (0.05: 0.025 in each tail), with ``sides=1``
the one-sided level in the hypothesised direction.

**Direction rule.** Two-sided power means rejection with the effect in the hypothesised
direction: with ``sides=2`` a trial rejects when the two-sided p-value is below ``alpha`` *and*
the estimate lies on the hypothesised side (``direction_ok``); a significant effect the other
way (a harmful experimental arm) is not a success. With ``sides=1`` it rejects when the
one-sided p-value in the hypothesised direction is below ``alpha``. For two arms,
``hypothesised="lower"`` means an experimental hazard lower than control: a hazard ratio
(experimental / control) below 1, or an RMST difference (experimental - control) above 0;
``"higher"`` the reverse. For one arm, ``"better"`` means fewer events than the benchmark
predicts (observed / expected < 1) or a response rate above ``p0``; ``"worse"`` the reverse.

**Signs.** ``TestResult.statistic`` is the signed z statistic of the test, with the sign of
log(estimate) for the ratio estimates (hazard ratio, observed / expected) and the sign of the
estimate for the RMST difference; for the binomial test it is the number of responders.
``TestResult.p_value`` is the p-value of the test as run: two-sided for ``sides=2``, one-sided
in the hypothesised direction for ``sides=1``. For the normal-theory tests the one-sided p is
Phi(-u) and the two-sided 2 Phi(-|u|), u the z statistic oriented so that u > 0 points the
hypothesised way. A test that cannot be formed (no events, zero variance, a Cox likelihood
without a finite maximum) has NaN statistic and p-value and does not reject.

**The tests.**

- ``logrank``: the two-group log-rank test (:func:`hccsim.analysis.survival.logrank`); z =
  (O1 - E1) / sqrt(V), O1 and E1 the observed and expected events of the experimental arm and
  V the hypergeometric variance. Estimate: Peto's one-step hazard ratio exp((O1 - E1) / V)
  (Yusuf et al., Prog Cardiovasc Dis 1985;27:335), whose logarithm has exactly the sign of z,
  so the direction rule and the test never disagree. It is close to the Cox estimate for
  hazard ratios between about 0.5 and 2 and biased towards 1 beyond. (Pike's estimate
  (O1/E1) / (O0/E0) is not used.)
- ``stratified_logrank``: O1 - E1 and V summed over the strata of ``strata`` (R ``survdiff(...
  + strata(s))``); z and the Peto estimate as above from the sums.
- ``cox_wald``: the Wald test of a Cox model with the arm as its only covariate, Efron ties
  (:func:`hccsim.analysis.survival.cox_binary_wald`); z = log(HR) / SE, estimate the Cox HR.
- ``rmst``: the difference in restricted mean survival time up to ``tau``, experimental minus
  control, with its Greenwood-type SE (:func:`hccsim.analysis.survival.rmst_difference`);
  z = difference / SE. Without ``tau``, tau is the smaller of the two arms' longest observed
  times (the default of R's survRM2); a given ``tau`` beyond that raises, as in survRM2.
- ``one_sample_logrank`` (one arm against a benchmark survival curve): O = the number of
  observed events, E = sum over patients of the benchmark cumulative hazard at their follow-up
  time, Lambda0(t_i) (the caller computes it; :func:`exponential_cumhaz`,
  :func:`weibull_cumhaz`). Wu's modified one-sample log-rank statistic
  z = (O - E) / sqrt((O + E) / 2) (Wu J, A new one-sample log-rank test, J Biom Biostat
  2014;5:210; the same statistic is ``L2`` of R's OneArm2stage ``OneArmTTEDesign``): the
  variance is estimated by the mean of O and E instead of E. The classical statistic
  (O - E) / sqrt(E) (Breslow 1975; its sample size: Wu, Pharm Stat 2015;14:26) is
  conservative for the usual hypothesis "better than the benchmark" (rejection for O < E) in
  small samples and anti-conservative the other way: at one-sided 0.05 and about 16 events,
  0.038 and 0.065 (verification/power_validity.py). Wu's is much closer but not exact:
  0.055 and 0.046 there, within 0.3 points of 0.05 from about 250 events.
  :func:`one_sample_logrank_z` computes both. Estimate: the standardised mortality ratio
  O / E, the maximum-likelihood hazard ratio against the benchmark under proportional
  hazards. The statistic has the sign of O - E (negative: better); Z = (E - O) / sqrt((O +
  E) / 2), as it is sometimes written, is its negative.
- ``binomial``: the exact binomial test of ``responders`` of ``n`` against ``p0``
  (``scipy.stats.binomtest``). One-sided: the exact tail probability in the hypothesised
  direction. Two-sided: the central p-value, twice the smaller tail (capped at 1), which
  rejects exactly when ``p0`` lies outside the Clopper-Pearson interval
  (:func:`hccsim.analysis.response.clopper_pearson`), so that two-sided with the direction rule
  is the one-sided test at alpha / 2, as for the normal-theory tests. scipy's default
  two-sided p (the sum of the probabilities of all outcomes no more likely than the one
  observed) is not used: with the direction rule its size can approach alpha instead of
  alpha / 2 when ``p0`` is far from 1/2 (verification/power_validity.py). Statistic: the
  number of responders; estimate: the response rate.

**Aggregation.** :func:`power_estimate`: the share of replicates that reject, its Monte-Carlo
standard error sqrt(p (1 - p) / R) and the 95% Wilson score interval (Wilson, JASA 1927;22:209;
``statsmodels`` ``proportion_confint(method="wilson")``). :func:`sample_size_for_power`: the
simulated power curve is first made non-decreasing in the size by isotonic regression
(pool-adjacent-violators, weighted when the numbers of replicates differ); then the size at the
target is linearly interpolated between the two neighbouring sizes; the smallest size when the
target is already reached there; NaN when no size reaches it (the grid must be extended).

**Closed forms** (the arm of hazard ratio ``hr`` receives the share ``allocation`` of the
patients; z_a = the 1 - alpha/sides normal quantile, z_b = the ``power`` quantile):

- Schoenfeld (Biometrika 1981;68:316; Biometrics 1983;39:499): events
  D = (z_a + z_b)^2 / (p (1 - p) (log HR)^2), p = ``allocation``; power
  Phi(sqrt(D p (1 - p)) |log HR| - z_a). HR 0.75, two-sided 0.05, power 0.9, 1:1: 507.8, so 508
  events.
- Freedman (Stat Med 1982;1:121): with k = p / (1 - p) patients on the experimental arm per
  control patient, D = (z_a + z_b)^2 (1 + k HR)^2 / (k (1 - HR)^2); with k = 1,
  (z_a + z_b)^2 (1 + HR)^2 / (1 - HR)^2. It follows from the chance pHR / (pHR + 1 - p) that a
  death falls in the experimental arm when a fixed share p of those at risk is on it: the
  expected O1 - E1 per death is p (1 - p) (HR - 1) / (p HR + 1 - p) and its null variance
  p (1 - p). lifelines' ``sample_size_necessary_under_cph`` and ``power_under_cph`` use the
  same formula (ratio_of_participants = k). Power Phi(sqrt(D k) |1 - HR| / (1 + k HR) - z_a).

Both powers are the probability of rejecting in the direction of the true effect (the other
tail, at most alpha / 2, is not counted: the direction rule above). At HR = 1 the event counts
are infinite.

**Independent simulation.** :func:`simulate_exponential_trial` is a plain-numpy two-arm
exponential proportional-hazards trial (uniform accrual, administrative censoring at a
calendar cut or at the calendar day of the d-th event) that shares no code with the simulator;
the tests use it to check the power machinery against the closed forms.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.special import ndtr, ndtri

from hccsim.analysis.survival import cox_binary_wald, logrank, rmst_difference

TESTS = ("logrank", "stratified_logrank", "cox_wald", "rmst", "one_sample_logrank", "binomial")
TWO_ARM_TESTS = TESTS[:4]
SINGLE_ARM_TESTS = TESTS[4:]
_LN2 = math.log(2.0)


@dataclass(frozen=True)
class TestResult:
    """One test on one trial (module docstring for signs and the direction rule)."""

    __test__ = False  # not a pytest test class

    statistic: float
    p_value: float
    estimate: float
    reject: bool
    direction_ok: bool


# -- argument checks -------------------------------------------------------------------------


def _show(value, limit: int = 60) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number; got {_show(value)}")
    return float(value)


def _alpha(alpha) -> float:
    a = _number(alpha, "alpha")
    if not 0.0 < a < 1.0:
        raise ValueError(f"alpha must be a number in (0, 1), e.g. 0.05; got {_show(alpha)}")
    return a


def _sides(sides) -> int:
    if isinstance(sides, bool) or sides not in (1, 2):
        raise ValueError(f"sides must be 1 or 2; got {_show(sides)}")
    return int(sides)


def _choice(value, name: str, allowed: tuple) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}; got {_show(value)}")
    return value


def _positive(value, name: str, *, allow_zero: bool = False) -> float:
    x = _number(value, name)
    if not math.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        want = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {want}; got {_show(value)}")
    return x


def _share(value, name: str) -> float:
    x = _number(value, name)
    if not 0.0 < x < 1.0:
        raise ValueError(f"{name} must be a share in (0, 1), e.g. 0.5; got {_show(value)}")
    return x


def _whole(value, name: str, minimum: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not float(value).is_integer()
        or value < minimum
    ):
        raise ValueError(f"{name} must be a whole number >= {minimum}; got {_show(value)}")
    return int(value)


def _flags(values, name: str, n: int | None = None) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1 or (n is not None and len(a) != n):
        want = "a 1-d array" if n is None else f"a 1-d array of length {n} (one per patient)"
        raise ValueError(f"{name} must be {want}; got shape {a.shape}")
    if a.dtype.kind != "b":
        bad = ~np.isin(a, (0, 1))
        if bad.any():
            raise ValueError(
                f"{name} must be 0/1 or true/false; got {_show(a[bad][0])} at position "
                f"{int(np.flatnonzero(bad)[0])}"
            )
    return a.astype(bool)


# -- the per-trial tests ----------------------------------------------------------------------


def _decide(z: float, estimate: float, negative: bool, alpha: float, sides: int) -> TestResult:
    """The decision from a z statistic; ``negative``: the hypothesised direction is z < 0."""
    u = -z if negative else z  # > 0: the hypothesised way
    direction_ok = bool(math.isfinite(u) and u > 0)
    if not math.isfinite(u):
        return TestResult(z, math.nan, estimate, False, False)
    if sides == 1:
        p = float(ndtr(-u))
        return TestResult(z, p, estimate, bool(p < alpha), direction_ok)
    p = float(2.0 * ndtr(-abs(u)))
    return TestResult(z, p, estimate, bool(p < alpha and direction_ok), direction_ok)


def _logrank_z(durations, events, arm, strata) -> tuple[float, float]:
    """(z, Peto HR) of the experimental arm (arm 1) from the (stratified) log-rank test."""
    lr = logrank(durations, events, arm, strata)  # groups sorted: index 1 is arm 1
    o_minus_e = float(lr.observed[1] - lr.expected[1])
    v = float(lr.covariance[1, 1])
    if not v > 0:
        return math.nan, math.nan
    return o_minus_e / math.sqrt(v), math.exp(o_minus_e / v)


def two_arm_test(
    test: str,
    durations,
    events,
    arm,
    *,
    strata=None,
    alpha: float = 0.05,
    sides: int = 2,
    tau=None,
    hypothesised: str = "lower",
) -> TestResult:
    """Test experimental (``arm`` 1) against control (``arm`` 0) in one trial.

    ``test``: "logrank", "stratified_logrank" (needs ``strata``, one label per patient),
    "cox_wald" or "rmst" (``tau``: the restriction time, in the unit of ``durations``).
    ``hypothesised``: "lower" (experimental hazard lower: HR < 1, RMST difference > 0) or
    "higher". Estimate: Peto's HR for the log-rank tests, the Cox HR, the RMST difference
    (experimental - control). Module docstring for the decision rule.
    """
    _choice(test, "test", TWO_ARM_TESTS)
    a, s = _alpha(alpha), _sides(sides)
    lower = _choice(hypothesised, "hypothesised", ("lower", "higher")) == "lower"
    d = np.asarray(durations, dtype=float)
    if d.ndim != 1:
        raise ValueError(f"durations must be a 1-d array; got shape {d.shape}")
    e = _flags(events, "events", len(d))
    g = _flags(arm, "arm", len(d))
    if (strata is None) == (test == "stratified_logrank"):
        raise ValueError(
            f"strata must be given for test 'stratified_logrank' and only for it; got test "
            f"{test!r} with strata {'None' if strata is None else 'given'}"
        )
    if tau is not None and test != "rmst":
        raise ValueError(f"tau is used only by test 'rmst'; got tau {_show(tau)} with {test!r}")
    if not (g.any() and (~g).any()):
        raise ValueError(
            f"arm must hold both arms, 0 (control) and 1 (experimental); got only {int(g[0])}"
            if len(g)
            else "arm must hold both arms; got no patients"
        )
    if test in ("logrank", "stratified_logrank"):
        z, hr = _logrank_z(d, e, g.astype(int), strata)
        return _decide(z, hr, lower, a, s)
    if test == "cox_wald":
        hr, low, high, _ = cox_binary_wald(d, e, g, alpha=0.05)
        if not (math.isfinite(hr) and math.isfinite(low) and math.isfinite(high) and high > low):
            return TestResult(math.nan, math.nan, hr, False, False)
        se = (math.log(high) - math.log(low)) / (2.0 * float(ndtri(0.975)))
        return _decide(math.log(hr) / se, hr, lower, a, s)
    if tau is None:
        tau = min(float(d[g].max()), float(d[~g].max()))
    res = rmst_difference(d, e, g.astype(int), tau)  # experimental - control
    # A lower experimental hazard means a longer RMST: positive z is the hypothesised way.
    return _decide(res.z, res.difference, not lower, a, s)


def exponential_cumhaz(durations, median) -> np.ndarray:
    """Benchmark cumulative hazard log(2) t / median at each follow-up time (same units)."""
    m = _positive(median, "median")
    t = _times(durations)
    return _LN2 * t / m


def weibull_cumhaz(durations, median, shape) -> np.ndarray:
    """Benchmark Weibull cumulative hazard log(2) (t / median)^shape at each follow-up time
    (S(t) = exp(-Lambda(t)) is 1/2 at ``median``; shape 1 is the exponential)."""
    m = _positive(median, "median")
    k = _positive(shape, "shape")
    t = _times(durations)
    return _LN2 * (t / m) ** k


def _times(durations) -> np.ndarray:
    t = np.asarray(durations, dtype=float)
    bad = ~np.isfinite(t) | (t < 0)
    if bad.any():
        raise ValueError(f"durations must be finite and >= 0; got {float(t[bad].ravel()[0])!r}")
    return t


def one_sample_logrank_z(observed, expected, *, method: str = "wu") -> np.ndarray:
    """One-sample log-rank z from observed (O) and expected (E) event counts, elementwise.

    ``method="wu"``: (O - E) / sqrt((O + E) / 2) (Wu 2014); ``"classical"``:
    (O - E) / sqrt(E). Negative: fewer events than the benchmark predicts. NaN where the
    denominator is 0.
    """
    _choice(method, "method", ("wu", "classical"))
    o = np.asarray(observed, dtype=float)
    ex = np.asarray(expected, dtype=float)
    for name, x in (("observed", o), ("expected", ex)):
        bad = ~np.isfinite(x) | (x < 0)
        if bad.any():
            raise ValueError(f"{name} must be finite and >= 0; got {float(x[bad].ravel()[0])!r}")
    var = (o + ex) / 2.0 if method == "wu" else ex
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, (o - ex) / np.sqrt(np.where(var > 0, var, 1.0)), np.nan)


def single_arm_test(
    test: str,
    *,
    durations=None,
    events=None,
    expected_cumhaz=None,
    responders=None,
    n=None,
    p0=None,
    alpha: float = 0.05,
    sides: int = 1,
    hypothesised: str = "better",
) -> TestResult:
    """Test one arm against a benchmark.

    "one_sample_logrank": ``events`` (one flag per patient) and ``expected_cumhaz``, the
    benchmark cumulative hazard at each patient's follow-up time (``durations``, if given, is
    only checked for length). "binomial": ``responders`` of ``n`` against the rate ``p0``.
    ``hypothesised``: "better" (fewer events than expected, or a rate above ``p0``) or
    "worse". Module docstring for the statistics and the decision rule.
    """
    _choice(test, "test", SINGLE_ARM_TESTS)
    a, s = _alpha(alpha), _sides(sides)
    better = _choice(hypothesised, "hypothesised", ("better", "worse")) == "better"
    if test == "one_sample_logrank":
        for name, value in (("responders", responders), ("n", n), ("p0", p0)):
            if value is not None:
                raise ValueError(f"{name} is used only by test 'binomial'; got {_show(value)}")
        if events is None or expected_cumhaz is None:
            raise ValueError(
                "events and expected_cumhaz must be given for test 'one_sample_logrank'; got "
                f"events {'None' if events is None else 'given'}, expected_cumhaz "
                f"{'None' if expected_cumhaz is None else 'given'}"
            )
        e = _flags(events, "events")
        cum = np.asarray(expected_cumhaz, dtype=float)
        if cum.shape != e.shape:
            raise ValueError(
                f"expected_cumhaz must have one value per patient ({e.shape}); got shape "
                f"{cum.shape}"
            )
        bad = ~np.isfinite(cum) | (cum < 0)
        if bad.any():
            raise ValueError(
                f"expected_cumhaz must be finite and >= 0; got {float(cum[bad][0])!r} at "
                f"position {int(np.flatnonzero(bad)[0])}"
            )
        if durations is not None:
            d = _times(durations)
            if d.shape != e.shape:
                raise ValueError(
                    f"durations must have one value per patient ({e.shape}); got shape {d.shape}"
                )
        o, ex = float(e.sum()), float(cum.sum())
        z = float(one_sample_logrank_z(o, ex))
        smr = o / ex if ex > 0 else math.nan
        return _decide(z, smr, better, a, s)

    from scipy.stats import binomtest

    for name, value in (
        ("durations", durations),
        ("events", events),
        ("expected_cumhaz", expected_cumhaz),
    ):
        if value is not None:
            raise ValueError(f"{name} is used only by test 'one_sample_logrank'; got it given")
    size = _whole(n, "n", 1)
    x = _whole(responders, "responders", 0)
    if x > size:
        raise ValueError(f"responders must be a whole number from 0 to n ({size}); got {x}")
    if p0 is None:
        raise ValueError("p0 must be given for test 'binomial' (the benchmark response rate)")
    rate0 = _share(p0, "p0")
    rate = x / size
    direction_ok = rate > rate0 if better else rate < rate0
    if s == 1:
        p = float(binomtest(x, size, rate0, alternative="greater" if better else "less").pvalue)
        return TestResult(float(x), p, rate, bool(p < a), bool(direction_ok))
    greater = float(binomtest(x, size, rate0, alternative="greater").pvalue)
    less = float(binomtest(x, size, rate0, alternative="less").pvalue)
    p = min(1.0, 2.0 * min(greater, less))
    return TestResult(float(x), p, rate, bool(p < a and direction_ok), bool(direction_ok))


def logrank_reject_many(
    durations,
    events,
    arm,
    *,
    alpha: float = 0.05,
    sides: int = 2,
    hypothesised: str = "lower",
    mask=None,
) -> np.ndarray:
    """The decision of ``two_arm_test("logrank", ...)`` for each row of (R, n) arrays at once
    (:func:`hccsim.analysis.survival.logrank_many`; NaN durations or a false ``mask`` entry
    mark absent patients). Boolean array of shape (R,)."""
    from hccsim.analysis.survival import logrank_many

    a, s = _alpha(alpha), _sides(sides)
    lower = _choice(hypothesised, "hypothesised", ("lower", "higher")) == "lower"
    lr = logrank_many(durations, events, arm, mask)
    u = -lr.z if lower else lr.z
    with np.errstate(invalid="ignore"):
        if s == 1:
            return ndtr(-u) < a
        return (2.0 * ndtr(-np.abs(u)) < a) & (u > 0)


# -- aggregation ------------------------------------------------------------------------------


class PowerEstimate(NamedTuple):
    """Simulated power with its Monte-Carlo SE and 95% Wilson interval."""

    power: float
    mc_se: float
    wilson_low: float
    wilson_high: float


def power_estimate(rejections) -> PowerEstimate:
    """Share of replicates that rejected, sqrt(p (1 - p) / R), and the 95% Wilson interval
    (p + z^2/2R +- z sqrt(p (1 - p) / R + z^2 / 4R^2)) / (1 + z^2 / R)."""
    r = _flags(rejections, "rejections")
    total = len(r)
    if total == 0:
        raise ValueError("rejections must hold at least one replicate; got an empty array")
    p = float(r.sum()) / total
    z = float(ndtri(0.975))
    z2 = z * z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    return PowerEstimate(p, math.sqrt(p * (1 - p) / total), centre - half, centre + half)


def isotonic_increasing(values, weights=None) -> np.ndarray:
    """Least-squares non-decreasing fit to ``values`` in their order (pool-adjacent-violators:
    adjacent blocks whose means decrease are merged into their weighted mean until none do)."""
    y = np.asarray(values, dtype=float)
    if y.ndim != 1 or not np.isfinite(y).all():
        raise ValueError(f"values must be a 1-d array of finite numbers; got {_show(y.tolist())}")
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != y.shape or not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError(
            f"weights must be positive finite numbers, one per value ({len(y)}); got "
            f"{_show(np.asarray(weights).tolist())}"
        )
    means, sizes, counts = [], [], []
    for yi, wi in zip(y, w, strict=True):
        means.append(float(yi))
        sizes.append(float(wi))
        counts.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            m2, w2, c2 = means.pop(), sizes.pop(), counts.pop()
            w1 = sizes[-1]
            means[-1] = (means[-1] * w1 + m2 * w2) / (w1 + w2)
            sizes[-1] = w1 + w2
            counts[-1] += c2
    return np.repeat(means, counts)


def sample_size_for_power(sizes, powers, target, weights=None) -> float:
    """The size at which the (isotonic) simulated power curve reaches ``target``.

    ``sizes`` distinct numbers (any order; the powers follow them), ``powers`` in [0, 1],
    ``weights`` optional (e.g. replicates per size) for the isotonic fit. Linear interpolation
    between the last size below the target and the first at or above it; the smallest size if
    it already reaches the target; NaN if no size does.
    """
    s = np.asarray(sizes, dtype=float)
    p = np.asarray(powers, dtype=float)
    if s.ndim != 1 or len(s) == 0 or not np.isfinite(s).all():
        raise ValueError(
            f"sizes must be a non-empty 1-d array of finite numbers; got {_show(s.tolist())}"
        )
    if p.shape != s.shape or not (np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()):
        raise ValueError(
            f"powers must hold one number in [0, 1] per size ({len(s)}); got {_show(p.tolist())}"
        )
    t = _share(target, "target")
    order = np.argsort(s, kind="stable")
    s, p = s[order], p[order]
    if (np.diff(s) == 0).any():
        raise ValueError(f"sizes must be distinct; got {_show(s.tolist())}")
    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is not None:
        if w.shape != s.shape:
            raise ValueError(
                f"weights must have one value per size ({len(s)}); got shape {w.shape}"
            )
        w = w[order]
    fit = isotonic_increasing(p, w)
    if fit[0] >= t:
        return float(s[0])
    above = np.flatnonzero(fit >= t)
    if len(above) == 0:
        return math.nan
    j = int(above[0])  # fit[j - 1] < t <= fit[j], so the slope is positive
    return float(s[j - 1] + (t - fit[j - 1]) * (s[j] - s[j - 1]) / (fit[j] - fit[j - 1]))


# -- closed forms -----------------------------------------------------------------------------


def _design(hr, alpha, sides, allocation) -> tuple[float, float, float]:
    h = _positive(hr, "hr")
    a, s = _alpha(alpha), _sides(sides)
    p = _share(allocation, "allocation")
    if a / s >= 0.5:
        raise ValueError(f"alpha / sides must be below 0.5; got alpha {a!r} with sides {s}")
    return h, float(ndtri(1.0 - a / s)), p


def _z_sum(power, z_a: float, alpha: float, sides: int) -> float:
    b = _share(power, "power")
    if b <= alpha / sides:
        raise ValueError(f"power must exceed alpha / sides ({alpha / sides:g}); got {_show(power)}")
    return z_a + float(ndtri(b))


def schoenfeld_events(hr, alpha, power, sides=2, allocation=0.5) -> float:
    """Schoenfeld's number of events (module docstring); ``inf`` at HR = 1."""
    h, z_a, p = _design(hr, alpha, sides, allocation)
    z = _z_sum(power, z_a, alpha, sides)
    if h == 1.0:
        return math.inf
    return z * z / (p * (1 - p) * math.log(h) ** 2)


def freedman_events(hr, alpha, power, sides=2, allocation=0.5) -> float:
    """Freedman's number of events (module docstring); ``inf`` at HR = 1."""
    h, z_a, p = _design(hr, alpha, sides, allocation)
    z = _z_sum(power, z_a, alpha, sides)
    if h == 1.0:
        return math.inf
    k = p / (1 - p)
    return z * z * (1 + k * h) ** 2 / (k * (1 - h) ** 2)


def _events_arg(events) -> float:
    return _positive(events, "events")


def schoenfeld_power(hr, events, alpha, sides=2, allocation=0.5) -> float:
    """Schoenfeld's power with ``events`` deaths: Phi(sqrt(D p (1 - p)) |log HR| - z_a)."""
    h, z_a, p = _design(hr, alpha, sides, allocation)
    d = _events_arg(events)
    return float(ndtr(math.sqrt(d * p * (1 - p)) * abs(math.log(h)) - z_a))


def freedman_power(hr, events, alpha, sides=2, allocation=0.5) -> float:
    """Freedman's power with ``events`` deaths: Phi(sqrt(D k) |1 - HR| / (1 + k HR) - z_a)."""
    h, z_a, p = _design(hr, alpha, sides, allocation)
    d = _events_arg(events)
    k = p / (1 - p)
    return float(ndtr(math.sqrt(d * k) * abs(1 - h) / (1 + k * h) - z_a))


# -- an independent exponential trial ---------------------------------------------------------


class ExponentialTrial(NamedTuple):
    """Simulated two-arm trial (months). One replicate: 1-d arrays of the patients enrolled by
    the cut. ``replicates``: (R, n) arrays with NaN durations for patients not yet enrolled
    (``logrank_many``'s convention for absent patients)."""

    durations: np.ndarray
    events: np.ndarray
    arm: np.ndarray
    cut_months: np.ndarray | float  # calendar time of the analysis from the first entry


def simulate_exponential_trial(
    rng: np.random.Generator,
    n: int,
    hr: float,
    median_control_months: float,
    accrual_months: float,
    follow_up_months: float | None = None,
    events: int | None = None,
    allocation: float = 0.5,
    *,
    replicates: int | None = None,
) -> ExponentialTrial:
    """Two-arm exponential proportional-hazards trial in plain numpy.

    ``round(n * allocation)`` patients on the experimental arm (1), the rest on control (0),
    in random order (a random permutation: fixed arm sizes). Entry uniform on
    [0, ``accrual_months``]; event times exponential with median ``median_control_months``
    on control and hazard ``hr`` times the control hazard on the experimental arm; no loss to
    follow-up. The analysis is at calendar month ``accrual_months + follow_up_months``, or at
    the calendar time of the ``events``-th event (give exactly one of the two); every patient
    is censored there. ``replicates``: that many independent trials as (R, n) arrays.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng must be a numpy Generator (np.random.default_rng(seed)); got {type(rng).__name__}"
        )
    size = _whole(n, "n", 2)
    h = _positive(hr, "hr")
    median = _positive(median_control_months, "median_control_months")
    accrual = _positive(accrual_months, "accrual_months", allow_zero=True)
    share = _share(allocation, "allocation")
    if (follow_up_months is None) == (events is None):
        raise ValueError(
            "give exactly one of follow_up_months (a calendar cut) and events (a cut at the "
            f"d-th event); got follow_up_months {_show(follow_up_months)} and events {_show(events)}"
        )
    n1 = round(size * share)
    if not 0 < n1 < size:
        raise ValueError(
            f"allocation {share!r} of n {size} leaves an arm empty (round(n * allocation) = {n1})"
        )
    rows = 1 if replicates is None else _whole(replicates, "replicates", 1)
    if events is not None:
        d = _whole(events, "events", 1)
        if d > size:
            raise ValueError(f"events must be at most n ({size}); got {d}")
    else:
        follow = _positive(follow_up_months, "follow_up_months", allow_zero=True)

    arm = rng.permuted(np.tile(np.arange(size) < n1, (rows, 1)), axis=1)
    entry = rng.uniform(0.0, accrual, (rows, size)) if accrual > 0 else np.zeros((rows, size))
    rate = np.where(arm, h, 1.0) * (_LN2 / median)
    t = rng.exponential(1.0, (rows, size)) / rate
    calendar = entry + t
    if events is not None:
        cut = np.partition(calendar, d - 1, axis=1)[:, d - 1]
    else:
        cut = np.full(rows, accrual + follow)
    # Compare calendar times, not t with cut - entry: (entry + t) - entry need not equal t in
    # floating point, and the d-th event must count.
    present = entry <= cut[:, None]
    observed = calendar <= cut[:, None]
    durations = np.where(observed, t, np.where(present, cut[:, None] - entry, np.nan))
    if replicates is None:
        keep = present[0]
        return ExponentialTrial(
            durations[0, keep], observed[0, keep], arm[0, keep].astype(int), float(cut[0])
        )
    return ExponentialTrial(durations, observed, arm.astype(int), cut)
