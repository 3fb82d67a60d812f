"""Properties of the survival, response and interval estimators that hold for every input.

Each property follows from a definition (stated beside it) rather than from a reference value:

- Kaplan-Meier: a product of factors 1 - d/n in [0, 1], so non-increasing and within [0, 1],
  with the log(-log) limits around it (``hccsim.analysis.survival``). Censoring beyond the
  last event time carries no information about the curve: every such patient is at risk at
  every event time however long they were followed, so moving those censoring times changes
  nothing; and administrative censoring at a time c (every time above c set to c, censored)
  leaves the curve up to c, and a median at or before c, unchanged. (Adding *more* censored
  patients after the last event does change the curve, since they add to every risk set.)
- Log-rank: a function of the risk sets and deaths at each event time, so it does not depend
  on which group is called first (two groups: the statistic is unchanged and the signed z of
  ``logrank_many`` flips) nor on the unit of time (a common positive rescaling keeps the
  order of the times, ties included).
- RECIST 1.1 / mRECIST (``hccsim.analysis.response``): a partial response needs the sum 30%
  below the baseline sum, and a complete response needs every target resolved. Targets are
  generated lesion by lesion (non-nodal >= 10 mm and nodal >= 15 mm short axis at baseline),
  so ``resolved`` (non-nodal gone, nodes below 10 mm) is consistent with the sums.
- Clopper-Pearson: the limits are beta quantiles at alpha/2 and 1 - alpha/2 around the
  observed proportion, so the interval holds x/n and a smaller alpha gives a wider interval
  containing the narrower one.

Hypothesis settings come from the ``ci`` profile (derandomized) with modest ``max_examples``
so that the file runs in a few seconds.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hccsim.analysis.response import clopper_pearson, target_response, visit_response
from hccsim.analysis.survival import (
    kaplan_meier,
    km_confidence,
    km_median,
    km_median_ci,
    logrank,
    logrank_many,
)

# -- survival data -------------------------------------------------------------------------------


@st.composite
def _survival(draw, min_size: int = 1, max_size: int = 40):
    """Whole-day durations (ties likely) with event flags."""
    n = draw(st.integers(min_size, max_size))
    d = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    e = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return np.array(d, float), np.array(e, bool)


@st.composite
def _two_groups(draw):
    d, e = draw(_survival(min_size=2))
    g = np.array(draw(st.lists(st.integers(0, 1), min_size=len(d), max_size=len(d))))
    g[0], g[1] = 0, 1  # both groups present
    return d, e, g


_SCALES = st.sampled_from([0.5, 2.0, 7.3, 1.0 / 30.4375, 365.25])


@settings(max_examples=60)
@given(_survival())
def test_km_is_non_increasing_within_zero_and_one_and_inside_its_limits(data):
    km = kaplan_meier(*data)
    s = km.survival
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(np.diff(s) <= 0)
    lower, upper = km_confidence(km)
    assert np.all((lower >= 0) & (upper <= 1))
    assert np.all(lower <= s + 1e-15) and np.all(s <= upper + 1e-15)


@settings(max_examples=60)
@given(_survival(), st.lists(st.integers(0, 100), min_size=1, max_size=10))
def test_censoring_beyond_the_last_event_can_move_without_changing_the_curve(data, shifts):
    d, e = data
    late = ~e & (d >= (d[e].max() if e.any() else -1.0))
    moved = d.copy()
    moved[late] += np.resize(np.array(shifts, float), late.sum())  # still >= the last event
    a, b = kaplan_meier(d, e), kaplan_meier(moved, e)
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.survival, b.survival)
    assert km_median(d, e) == km_median(moved, e)
    assert tuple(km_median_ci(d, e)) == tuple(km_median_ci(moved, e))


@settings(max_examples=60)
@given(_survival(), st.integers(0, 60))
def test_administrative_censoring_keeps_the_curve_and_median_before_it(data, cut):
    d, e = data
    cut = float(cut)
    d2 = np.minimum(d, cut)
    e2 = e & (d <= cut)  # a death after the cut is censored at the cut
    full, cens = kaplan_meier(d, e), kaplan_meier(d2, e2)
    grid = np.arange(0.0, cut + 1.0)
    grid = grid[grid <= cut]
    np.testing.assert_array_equal(full.at(grid), cens.at(grid))
    median = km_median(d, e)
    # At or before the cut the median is kept; after it (or never) it is not reached.
    assert km_median(d2, e2) == (median if median <= cut else np.inf)


@settings(max_examples=60)
@given(_two_groups())
def test_logrank_does_not_depend_on_which_group_is_first(data):
    d, e, g = data
    a, b = logrank(d, e, g), logrank(d, e, 1 - g)
    np.testing.assert_allclose(b.statistic, a.statistic, rtol=1e-12)  # NaN only with NaN
    np.testing.assert_array_equal(a.observed, b.observed[::-1])
    many = logrank_many(np.stack([d, d]), np.stack([e, e]), np.stack([g, 1 - g]))
    if np.isnan(many.z[0]):
        assert np.isnan(many.z[1])
    else:
        # E = sum d n1/n is summed in another order for the other group: rounding only.
        np.testing.assert_allclose(-many.z[1], many.z[0], rtol=1e-12)
        np.testing.assert_allclose(many.statistic[1], many.statistic[0], rtol=1e-12)
        np.testing.assert_allclose(many.statistic[0], a.statistic, rtol=1e-10)


@settings(max_examples=40)
@given(_survival(min_size=3), st.permutations([0, 1, 2]))
def test_k_group_logrank_does_not_depend_on_the_labels(data, relabel):
    d, e = data
    g = np.arange(len(d)) % 3
    a = logrank(d, e, g)
    b = logrank(d, e, np.array(relabel)[g])
    np.testing.assert_allclose(b.statistic, a.statistic, rtol=1e-9)  # NaN only with NaN
    assert a.df == b.df


@settings(max_examples=60)
@given(_two_groups(), _SCALES)
def test_logrank_and_km_are_invariant_to_the_unit_of_time(data, scale):
    d, e, g = data
    a, b = logrank(d, e, g), logrank(d * scale, e, g)
    np.testing.assert_array_equal(b.statistic, a.statistic)  # the same counts: bit for bit
    np.testing.assert_array_equal(a.expected, b.expected)
    ka, kb = kaplan_meier(d, e), kaplan_meier(d * scale, e)
    np.testing.assert_array_equal(ka.survival, kb.survival)
    np.testing.assert_array_equal(ka.times * scale, kb.times)
    ma, mb = km_median_ci(d, e), km_median_ci(d * scale, e)
    assert tuple(x * scale for x in ma) == tuple(mb)


# -- response ------------------------------------------------------------------------------------


@st.composite
def _targets(draw):
    """Baseline and current target lesions (mm) and a nadir between current-like and baseline.

    Non-nodal targets: >= 10 mm at baseline; nodal: >= 15 mm short axis. Current sizes:
    anything from 0 (gone) up, on a 0.1 mm grid, with a fair chance of exactly 0 or a node
    just below 10 mm.
    """
    n_plain = draw(st.integers(0, 3))
    n_node = draw(st.integers(0 if n_plain else 1, 2))
    size = st.integers(0, 1500).map(lambda x: x / 10)
    now_size = st.one_of(st.just(0.0), st.just(9.9), size)
    base_plain = draw(st.lists(st.integers(100, 1500), min_size=n_plain, max_size=n_plain))
    base_node = draw(st.lists(st.integers(150, 800), min_size=n_node, max_size=n_node))
    now_plain = draw(st.lists(now_size, min_size=n_plain, max_size=n_plain))
    now_node = draw(st.lists(now_size, min_size=n_node, max_size=n_node))
    baseline = (sum(base_plain) + sum(base_node)) / 10
    now = sum(now_plain) + sum(now_node)
    resolved = all(x == 0 for x in now_plain) and all(x < 10 for x in now_node)
    nadir = draw(st.integers(0, round(10 * baseline))) / 10
    return now, baseline, nadir, resolved


_criterion = st.sampled_from(["recist1.1", "mrecist"])
_nontarget = st.sampled_from(["absent", "CR", "non-CR/non-PD", "NE"])  # PD: overall PD anyway


@settings(max_examples=150)
@given(_targets(), _criterion, _nontarget, st.booleans())
def test_no_pr_without_a_30_percent_fall_and_no_cr_with_targets_left(
    targets, criterion, nontarget, use_resolved
):
    now, baseline, nadir, resolved = targets
    flag = resolved if use_resolved else None  # None: resolved means a sum of 0
    overall = visit_response(now, baseline, nadir, nontarget=nontarget, criterion=criterion,
                             resolved=flag)  # fmt: skip
    target = target_response(now, baseline, nadir, criterion, resolved=flag)
    for r in (overall, target):
        if r == "PR":
            assert now <= 0.7 * baseline + 1e-9
        if r == "CR":
            assert resolved if use_resolved else now == 0.0
    if target == "CR" or overall == "CR":
        assert resolved  # a sum of 0 means every target gone


# -- Clopper-Pearson -----------------------------------------------------------------------------


@st.composite
def _count_n(draw):
    n = draw(st.integers(1, 500))
    return draw(st.integers(0, n)), n


@settings(max_examples=100)
@given(_count_n(), st.sampled_from([0.2, 0.1, 0.05, 0.01, 0.001]), st.floats(0.3, 0.9))
def test_clopper_pearson_holds_the_estimate_and_widens_as_alpha_falls(xn, alpha, shrink):
    x, n = xn
    low, high = clopper_pearson(x, n, alpha=alpha)
    assert 0.0 <= low <= x / n <= high <= 1.0
    wide_low, wide_high = clopper_pearson(x, n, alpha=alpha * shrink)
    assert wide_low <= low and high <= wide_high
    if x > 0:
        assert wide_low < low
    if x < n:
        assert wide_high > high
