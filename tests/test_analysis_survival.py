"""``kaplan_meier`` and ``km_median`` against lifelines' KaplanMeierFitter and exact arithmetic.

Two references:

- lifelines 0.30 (``KaplanMeierFitter``), the reference DESIGN section 8 names;
- the product-limit estimate in exact rational arithmetic (``fractions.Fraction``), written
  here from its definition (Kaplan & Meier 1958): S(t) = prod over event times t_i <= t of
  (1 - d_i / n_i), with n_i counting everyone whose time is >= t_i (deaths before censorings at
  tied times).

Median convention. lifelines defines the median as the smallest time with S(t) <= 0.5
(``lifelines.utils.qth_survival_time``: ``(-S).searchsorted(-0.5)``, side left), so where S
reaches exactly 0.5 the median is the time it gets there; R's ``survfit`` takes the midpoint of
that flat stretch and the next event time instead (``quantile.survfit``: "the median of the
flat"). hccsim follows lifelines (docs/analysis.md). lifelines computes S as
exp(sum log(1 - d/n)), so a curve that is 0.5 in exact arithmetic can come out 0.5000000000000001
there, and its median then moves to the next event time; ``km_median`` treats values within 1e-9
of one half as one half, so it matches the exact definition. The tests therefore require
equality with the exact-arithmetic median always, and with lifelines' whenever lifelines'
curve is not within 1e-9 of 0.5 (where it may differ by that rounding alone, and then only by
moving to the next event time).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_leukemia, load_waltons

from hccsim.analysis.survival import (
    KaplanMeier,
    kaplan_meier,
    km_median,
    km_median_ci,
    survival_at,
)


def _lifelines(durations, events) -> KaplanMeierFitter:
    return KaplanMeierFitter().fit(np.asarray(durations, float), np.asarray(events, bool))


def _exact(durations, events) -> list[tuple[float, Fraction, int, int]]:
    """(time, S just after it, at risk, deaths) at each distinct event time, exactly."""
    out, s = [], Fraction(1)
    pairs = list(zip(durations, events, strict=True))
    for t in sorted(set(durations)):
        deaths = sum(1 for x, e in pairs if x == t and e)
        if deaths:
            at_risk = sum(1 for x, _ in pairs if x >= t)
            s *= Fraction(at_risk - deaths, at_risk)
            out.append((float(t), s, at_risk, deaths))
    return out


def _exact_median(durations, events) -> float:
    """Smallest event time with S(t) <= 1/2 in exact arithmetic (lifelines' definition)."""
    return next((t for t, s, _, _ in _exact(durations, events) if s <= Fraction(1, 2)), math.inf)


def _check_against_references(durations, events) -> None:
    km = kaplan_meier(durations, events)
    kmf = _lifelines(durations, events)
    sf = kmf.survival_function_.iloc[:, 0]
    table = kmf.event_table

    # Event times, numbers at risk and deaths: lifelines' event table, rows with deaths.
    with_deaths = table[table["observed"] > 0]
    np.testing.assert_array_equal(km.times, with_deaths.index.to_numpy(float))
    np.testing.assert_array_equal(km.at_risk, with_deaths["at_risk"].to_numpy())
    np.testing.assert_array_equal(km.events, with_deaths["observed"].to_numpy())
    # S at every event time, and the whole step function on lifelines' timeline (which also
    # holds the censoring times and 0): lifelines' survival_function_ to 1e-12.
    np.testing.assert_allclose(km.survival, sf.loc[km.times].to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(km.at(sf.index.to_numpy()), sf.to_numpy(), rtol=0, atol=1e-12)

    # The same against exact rational arithmetic.
    exact = _exact(list(map(float, durations)), list(map(bool, events)))
    np.testing.assert_array_equal(km.times, [t for t, _, _, _ in exact])
    np.testing.assert_allclose(km.survival, [float(s) for _, s, _, _ in exact], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(km.at_risk, [n for _, _, n, _ in exact])
    np.testing.assert_array_equal(km.events, [d for _, _, _, d in exact])

    # Median: the exact definition always; lifelines' own value unless its floating-point curve
    # sits within 1e-9 of 0.5 (module docstring), where it may only be the next event time.
    median = km_median(durations, events)
    assert median == _exact_median(list(map(float, durations)), list(map(bool, events)))
    theirs = kmf.median_survival_time_
    if np.any(np.abs(sf.to_numpy() - 0.5) <= 1e-9):
        later = km.times[km.times > median]
        assert theirs == median or theirs == (later[0] if len(later) else math.inf)
    else:
        assert median == theirs


# -- (a) textbook data -------------------------------------------------------------------------


def test_freireich_6mp_leukaemia_matches_published_values_and_lifelines():
    # Freireich et al., Blood 1963;21:699 (Gehan 1965), as bundled in lifelines
    # (load_leukemia: Rx 0 = 6-MP, Rx 1 = placebo). Published 6-MP estimates (Kleinbaum & Klein,
    # Survival Analysis, 3rd ed., Table 2.1): S = .8571, .8067, .7529, .6902, .6275, .5378,
    # .4482 at weeks 6, 7, 10, 13, 16, 22, 23; median 23 weeks (6-MP) and 8 weeks (placebo).
    df = load_leukemia()
    mp = df[df["Rx"] == 0]
    km = kaplan_meier(mp["t"], mp["status"])
    np.testing.assert_array_equal(km.times, [6, 7, 10, 13, 16, 22, 23])
    np.testing.assert_array_equal(km.at_risk, [21, 17, 15, 12, 11, 7, 6])
    np.testing.assert_array_equal(km.events, [3, 1, 1, 1, 1, 1, 1])
    # Exact products from those risk sets: 18/21, x16/17, x14/15, x11/12, x10/11, x6/7, x5/6.
    factors = [Fraction(18, 21), Fraction(16, 17), Fraction(14, 15), Fraction(11, 12)]
    factors += [Fraction(10, 11), Fraction(6, 7), Fraction(5, 6)]
    exact = np.cumprod([float(f) for f in factors])
    np.testing.assert_allclose(km.survival, exact, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        km.survival, [0.8571, 0.8067, 0.7529, 0.6902, 0.6275, 0.5378, 0.4482], atol=5e-5
    )
    assert km_median(mp["t"], mp["status"]) == 23.0
    placebo = df[df["Rx"] == 1]
    assert km_median(placebo["t"], placebo["status"]) == 8.0
    for group in (mp, placebo, df):
        _check_against_references(group["t"].to_numpy(), group["status"].to_numpy())


def test_waltons_matches_lifelines():
    # lifelines' bundled Walton et al. fruit-fly data (163 flies, heavy ties, two groups).
    df = load_waltons()
    for _, group in [("all", df), *df.groupby("group")]:
        d, e = group["T"].to_numpy(), group["E"].to_numpy()
        _check_against_references(d, e)
        assert km_median(d, e) == _lifelines(d, e).median_survival_time_


# -- (b) generated data ------------------------------------------------------------------------

# Integer days 0-12 among up to 40 patients: many tied times, censorings at event times, zero
# durations; all-censored and single-patient samples arise too (and are pinned by @example).
_samples = st.lists(st.tuples(st.integers(0, 12), st.booleans()), min_size=1, max_size=40)


@given(_samples)
@example([(3, False), (5, False), (5, False)])  # all censored
@example([(4, True)])  # a single death
@example([(4, False)])  # a single censoring
@example([(0, True), (0, False), (0, True), (2, True)])  # zero durations, ties at 0
@example([(1, True), (1, False), (2, True), (2, False), (2, True)])  # censored at event times
@example([(1, True), (2, True), (3, True), (4, True), (5, True), (6, True)])  # S = 1/2 exactly
def test_kaplan_meier_matches_lifelines_and_exact_arithmetic(sample):
    durations = np.array([d for d, _ in sample], dtype=float)
    events = np.array([e for _, e in sample], dtype=bool)
    _check_against_references(durations, events)


@given(
    st.lists(
        st.tuples(st.floats(0, 1000, allow_subnormal=False), st.booleans()),
        min_size=1,
        max_size=30,
    )
)
def test_kaplan_meier_matches_lifelines_on_continuous_times(sample):
    durations = np.array([d for d, _ in sample], dtype=float)
    events = np.array([e for _, e in sample], dtype=bool)
    _check_against_references(durations, events)


def test_empty_input():
    km = kaplan_meier([], [])
    assert len(km.times) == len(km.survival) == 0
    np.testing.assert_array_equal(km.at([0.0, 5.0]), [1.0, 1.0])
    # the estimates refuse it (test_an_empty_sample_is_refused): no median "not reached"


# -- median convention at exactly one half -----------------------------------------------------


@pytest.mark.parametrize("k", range(1, 31))
def test_median_where_the_curve_reaches_exactly_one_half(k):
    # 2k patients dying on days 1..2k, none censored: S(k) = (2k-1)/2k x ... x k/(k+1) = 1/2
    # exactly, so by lifelines' definition (smallest t with S(t) <= 0.5) the median is day k.
    # R's survfit would print k + 0.5 (midpoint of the flat stretch [k, k+1)). Before the 1e-9
    # tolerance in km_median, the floating-point product came out above 0.5 for k = 12, 14,
    # 15, 19, 22, 23 and 27, and the median jumped to day k + 1.
    durations = np.arange(1, 2 * k + 1, dtype=float)
    events = np.ones(2 * k, dtype=bool)
    assert km_median(durations, events) == float(k)


def test_median_where_lifelines_lands_exactly_on_one_half():
    # 4 deaths on days 1..4: S(2) = 3/4 x 2/3 = 1/2 and lifelines' float S(2) is exactly 0.5,
    # so lifelines' convention shows directly: median 2 (R: (2 + 3) / 2 = 2.5).
    d, e = [1.0, 2.0, 3.0, 4.0], [True] * 4
    assert _lifelines(d, e).survival_function_.loc[2.0].iloc[0] == 0.5
    assert _lifelines(d, e).median_survival_time_ == 2.0
    assert km_median(d, e) == 2.0


def test_median_with_a_flat_stretch_at_one_half_after_censoring():
    # Deaths on days 1 and 2 of 4, then censorings on days 5 and 6: S = 1/2 from day 2 on and
    # never lower. The median is day 2 (lifelines' rule: the time S first gets to 0.5).
    d, e = [1.0, 2.0, 5.0, 6.0], [True, True, False, False]
    assert km_median(d, e) == 2.0 == _lifelines(d, e).median_survival_time_


# -- (c) median not reached --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("durations", "events"),
    [
        ([1.0, 2.0, 3.0, 4.0], [True, False, False, False]),  # S bottoms out at 3/4
        ([5.0, 6.0, 7.0], [False, False, False]),  # nobody dies
        ([1.0, 2.0, 3.0, 4.0, 5.0], [True, True, False, False, False]),  # S = 3/5 at the end
    ],
)
def test_median_not_reached_is_infinite(durations, events):
    assert km_median(durations, events) == math.inf
    assert _lifelines(durations, events).median_survival_time_ == math.inf


# -- (d) the step function ---------------------------------------------------------------------


def test_at_is_a_right_continuous_step_function():
    # Hand values: deaths on days 2 and 5 among 4 patients (censored on 3 and 9):
    # S = 1 before day 2, 3/4 on [2, 5), 3/4 x 1/2 = 3/8 from day 5 on.
    km = kaplan_meier([2.0, 3.0, 5.0, 9.0], [True, False, True, False])
    assert isinstance(km, KaplanMeier)
    eps = 1e-9
    np.testing.assert_array_equal(
        km.at([0.0, 2.0 - eps, 2.0, 3.0, 5.0 - eps, 5.0, 9.0, 1e6]),
        [1.0, 1.0, 0.75, 0.75, 0.75, 0.375, 0.375, 0.375],
    )
    assert km.at(2.0) == 0.75 and np.ndim(km.at(2.0)) == 0
    np.testing.assert_array_equal(km.at(np.array([[2.0, 5.0]])), [[0.75, 0.375]])


def test_at_without_any_event_is_one():
    # All censored: no event time at all, so S = 1 everywhere (this used to raise IndexError).
    km = kaplan_meier([1.0, 2.0, 3.0], [False, False, False])
    np.testing.assert_array_equal(km.at([0.0, 2.5, 100.0]), [1.0, 1.0, 1.0])


# -- (e) input validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("durations", "events"),
    [
        ([1.0, -0.5], [True, True]),  # negative duration
        ([1.0, math.nan], [True, True]),  # NaN duration
        ([1.0, math.inf], [True, False]),  # infinite duration
        ([1.0, 2.0, 3.0], [True, False]),  # shape mismatch
        ([[1.0, 2.0]], [[True, False]]),  # not 1-d
    ],
)
@pytest.mark.parametrize("function", [kaplan_meier, km_median])
def test_invalid_input_is_rejected(function, durations, events):
    with pytest.raises(ValueError, match="durations"):
        function(durations, events)


@pytest.mark.parametrize(
    "call",
    [
        lambda: km_median([], []),
        lambda: km_median_ci([], []),
        lambda: survival_at([], [], [10.0]),
    ],
    ids=["km_median", "km_median_ci", "survival_at"],
)
def test_an_empty_sample_is_refused(call):
    """No patients, nothing to estimate: an error, not a median "not reached" or a survival of
    100% with limits [1, 1] (as these functions returned before)."""
    with pytest.raises(ValueError, match="durations must not be empty"):
        call()
