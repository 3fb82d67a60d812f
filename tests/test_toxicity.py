"""The event-based adverse-event processes (``simulator/disease/toxicity.py``) against their
definitions: onset counts, grade distributions and the split between onsets that need a
decision and those filled in afterwards. Fixed seeds; tolerances from Poisson/multinomial error."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hccsim.simulator import parameters
from hccsim.simulator.disease.toxicity import LineToxicity, action_grade
from hccsim.simulator.parameters import AEParams


def _drug(*terms: AEParams):
    base = parameters.resolve().drugs["ramucirumab"]
    return dataclasses.replace(base, adverse_events=tuple(terms))


SPREAD = AEParams("spread", 0.05, (0.4, 0.3, 0.2, 0.07, 0.03), 10.0, 3, 4)
NO_HOLD = AEParams("no_hold", 0.05, (0.1, 0.2, 0.3, 0.25, 0.15), 10.0, 5, 5)
ANY_STOPS = AEParams("any_stops", 0.01, (0.0, 0.0, 0.8, 0.1, 0.1), 10.0, 1, 1)


@pytest.mark.parametrize("ae", [SPREAD, NO_HOLD, ANY_STOPS], ids=lambda a: a.term)
def test_lower_grade_onsets_follow_the_grade_distribution_below_the_action_grade(ae):
    """Over 20,000 patient-days at rate 0.05/day the lower-grade onsets are Poisson with mean
    rate x P(grade < action) x exposure, and their grades follow the distribution renormalised
    below the action grade. Tolerances: 5 Poisson SDs on the count; 5 binomial SEs per grade."""
    tox = LineToxicity.for_drug(_drug(ae))
    rng = np.random.default_rng(20261125)
    exposure = 20_000.0
    _, grade, onset, _ = tox.minor_events([(0.0, exposure, 1.0)], rng)
    g0 = action_grade(ae)
    below = np.array(ae.grade_probs[: g0 - 1])
    mean = ae.rate_per_day * below.sum() * exposure
    assert abs(len(grade) - mean) <= 5 * math.sqrt(max(mean, 1.0))
    if not len(grade):
        return
    assert grade.max() < g0 and grade.min() >= 1
    assert np.all((onset >= 0) & (onset <= exposure))
    share = np.bincount(grade, minlength=6)[1:g0] / len(grade)
    expected = below / below.sum()
    se = np.sqrt(expected * (1 - expected) / len(grade))
    assert np.all(np.abs(share - expected) <= 5 * se + 1e-12), (share, expected)


@pytest.mark.parametrize("ae", [SPREAD, NO_HOLD, ANY_STOPS], ids=lambda a: a.term)
def test_action_onsets_have_grades_at_or_above_the_action_grade(ae):
    """The onsets that need a decision: rate x P(grade >= action grade), grades drawn from the
    upper part of the distribution (5 binomial SEs over 20,000 draws)."""
    tox = LineToxicity.for_drug(_drug(ae))
    g0 = action_grade(ae)
    above = np.array(ae.grade_probs[g0 - 1 :])
    assert tox.action_total == pytest.approx(ae.rate_per_day * above.sum())
    rng = np.random.default_rng(7)
    n = 20_000
    grades = np.array([tox.draw_action_event(rng)[1] for _ in range(n)])
    assert grades.min() >= g0
    share = np.bincount(grades, minlength=6)[g0:] / n
    expected = above / above.sum()
    se = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(share - expected) <= 5 * se + 1e-12)


def test_onsets_scale_with_dose_intensity_and_skip_gaps():
    """Half the dose, half the onsets; nothing falls between on-drug intervals."""
    tox = LineToxicity.for_drug(_drug(SPREAD))
    rng = np.random.default_rng(3)
    intervals = [(0.0, 5000.0, 1.0), (6000.0, 16000.0, 0.5)]
    _, _, onset, _ = tox.minor_events(intervals, rng)
    assert not np.any((onset > 5000.0) & (onset < 6000.0))
    first, second = np.sum(onset <= 5000.0), np.sum(onset >= 6000.0)
    # Equal expected counts (5000 x 1.0 and 10000 x 0.5): difference within 5 SDs.
    assert abs(first - second) <= 5 * math.sqrt(first + second)


@pytest.mark.parametrize("q", [0.0, 0.3, 1.0])
def test_intolerable_grade2_moves_a_share_of_grade2_onsets_to_the_action_process(q):
    """With a share q of grade 2 onsets needing a decision, the action process has rate
    rate x (q P(2) + P(>= 3)) and the filled-in one rate x (P(1) + (1 - q) P(2)); together they
    keep the term's grade distribution. Counts over 40,000 patient-days within 5 Poisson SDs,
    grade shares within 5 binomial SEs."""
    tox = LineToxicity.for_drug(_drug(SPREAD), q)
    p = np.array(SPREAD.grade_probs)
    r = SPREAD.rate_per_day
    assert tox.action_total == pytest.approx(r * (q * p[1] + p[2:].sum()))
    assert tox.minor_rates.sum() == pytest.approx(r * (p[0] + (1 - q) * p[1]))
    rng = np.random.default_rng(11)
    exposure = 40_000.0
    _, minor, _, _ = tox.minor_events([(0.0, exposure, 1.0)], rng)
    n_action = rng.poisson(tox.action_total * exposure)
    action = np.array([tox.draw_action_event(rng)[1] for _ in range(n_action)], dtype=int)
    grades = np.concatenate([minor, action]).astype(int)
    mean = r * exposure
    assert abs(len(grades) - mean) <= 5 * math.sqrt(mean)
    share = np.bincount(grades, minlength=6)[1:] / len(grades)
    se = np.sqrt(p * (1 - p) / len(grades))
    assert np.all(np.abs(share - p) <= 5 * se + 1e-12), (share, p)
    if q == 0.0:
        assert action.size == 0 or action.min() >= 3
    else:
        assert np.sum(action == 2) > 0 and np.all(minor <= 2)


def test_intolerable_grade2_share_leaves_terms_acting_at_grade_2_or_below_alone():
    """A term that is already acted on at grade 1 or 2 has no 'intolerable' share to add."""
    for q in (0.0, 0.7):
        tox = LineToxicity.for_drug(_drug(ANY_STOPS), q)
        assert tox.action_total == pytest.approx(ANY_STOPS.rate_per_day)


def test_the_withdrawal_uniform_is_the_fourth_draw():
    """draw_action_event consumes four uniforms per onset: term, grade, duration, withdrawal."""
    tox = LineToxicity.for_drug(_drug(SPREAD))
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    *_, u = tox.draw_action_event(a)
    assert u == pytest.approx(b.random(4)[3])
