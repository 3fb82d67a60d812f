"""Adverse events on drug (DESIGN section 3, "Adverse events"; CTCAE v5.0 grades).

Each term of a regimen has an onset hazard per day on drug, scaled by the dose intensity and by
the patient's susceptibility (a log-normal frailty shared by all terms, so terms correlate
within a patient), and a distribution of grades. Onsets of grade >= the term's action grade
(3, or its stop grade if lower) need a decision: hold until resolved, then resume (at the next
reduced dose where the label says so) or stop. By Poisson thinning these onsets form their own
Poisson process with rate ``rate * P(grade >= action grade)``, which the engine schedules as
events; the lower-grade onsets need no decision and are filled in afterwards over the on-drug
intervals with rate ``rate * P(grade < action grade)``. Together they are exactly the onset
process of the term.

**Intolerable grade 2.** Oral kinase inhibitors are also held and reduced for grade 2 events
the patient cannot tolerate (hand-foot skin reaction, diarrhoea, fatigue: the labels of
sorafenib, lenvatinib, regorafenib and cabozantinib say so). For such a drug a grade 2 onset of
a term whose action grade is 3 or 4 needs a decision with probability ``q`` (the share of
grade 2 onsets found intolerable): by thinning again, the action process has rate
``rate * (q P(grade 2) + P(grade >= action grade))`` and the filled-in process
``rate * (P(grade < action grade) - q P(grade 2))``; the two still add up to the term's onsets
with their grade distribution unchanged. An intolerable grade 2 onset is held, then resumed at
the next reduced dose (or stops the drug when no lower dose is left).

**Withdrawal.** At an onset of grade 3 or more below the term's stop grade, the drug is stopped
rather than held with probability ``w`` (patient or physician choice; trials report more
discontinuations for adverse events than the stop grades alone give).

The terms here are the event-based ones (hypertension, edema, fatigue, bleeding, ...). The
lab-based terms (hypoalbuminemia, AST increased, proteinuria, ...) are not drawn: they are graded
from the simulated labs by CTCAE v5.0 (``hccsim.analysis.ctcae``), and the label's lab rules act
on the lab values themselves (``Course._lab_action``), so each term has one source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from scipy.special import ndtri

from hccsim.simulator.parameters import AEParams, DrugParams

_CACHE: dict[int, tuple[DrugParams, LineToxicity]] = {}
_STD_NORMAL = NormalDist()
_NO_EVENTS = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0))
#: Log-normal spread of event durations around the term's median.
DURATION_SD_LOG = 0.5


def action_grade(ae: AEParams) -> int:
    """The lowest grade at which an onset of this term needs a decision (hold or stop)."""
    return min(ae.hold_at_grade, ae.stop_at_grade)


def _grade2_acts(ae: AEParams, grade2: float) -> float:
    """Share of this term's grade 2 onsets that need a decision: ``grade2`` where the term is
    acted on from grade 3 or 4; none where it is acted on at grade 2 or below (they are action
    onsets already) or never before grade 5 (a term the label never holds for)."""
    return grade2 if action_grade(ae) in (3, 4) else 0.0


def _minor_cdf(ae: AEParams, grade2: float = 0.0) -> np.ndarray:
    """Cumulative distribution of grades 1-4 among onsets that need no decision: below the
    action grade, less the intolerable share of grade 2 (grades at or above the action grade
    have cumulative 1.0, so they are never drawn)."""
    below = np.zeros(4)
    below[: action_grade(ae) - 1] = ae.grade_probs[: action_grade(ae) - 1]
    below[1] *= 1.0 - _grade2_acts(ae, grade2)
    total = below.sum()
    if total <= 0:
        return np.ones(4)
    cdf = np.cumsum(below) / total
    cdf[action_grade(ae) - 2 :] = 1.0
    return cdf


def _action_probs(ae: AEParams, grade2: float) -> np.ndarray:
    """Unnormalised probabilities of grades 1-5 among the onsets that need a decision."""
    probs = np.zeros(5)
    g0 = action_grade(ae)
    probs[g0 - 1 :] = ae.grade_probs[g0 - 1 :]
    probs[1] += _grade2_acts(ae, grade2) * ae.grade_probs[1]
    return probs


@dataclass(frozen=True, slots=True)
class LineToxicity:
    """Onset rates of one regimen at full dose for a patient of susceptibility 1.

    Rates scale with ``dose intensity x susceptibility`` at use. Built once per regimen and
    intolerable grade 2 share (:meth:`for_drug` caches it).
    """

    terms: tuple[AEParams, ...]
    action_total: float  # per day, all terms
    action_cdf: np.ndarray  # which term an action onset belongs to
    minor_rates: np.ndarray  # per day, per term
    minor_cdf: np.ndarray  # (term, 4): P(grade <= g | lower-grade onset), g = 1..4
    durations: np.ndarray  # median duration (days), per term
    action_grade_cdf: np.ndarray  # (term, 5): P(grade <= g | action onset), g = 1..5

    @classmethod
    def for_drug(cls, drug: DrugParams, grade2: float = 0.0) -> LineToxicity:
        """``grade2``: the share of grade 2 onsets that need a decision (0 for a regimen that
        is not held for intolerable grade 2 events)."""
        key = (id(drug), grade2)
        hit = _CACHE.get(key)
        if hit is not None and hit[0] is drug:
            return hit[1]
        terms = drug.adverse_events
        probs = np.array([_action_probs(ae, grade2) for ae in terms]).reshape(len(terms), 5)
        rates = np.array([ae.rate_per_day for ae in terms])
        action = rates * probs.sum(axis=1)
        minor = rates * (1.0 - probs.sum(axis=1))
        total = float(action.sum()) if len(terms) else 0.0
        cdf = np.cumsum(action) / total if total > 0 else np.zeros(len(terms))
        minor_cdf = np.array([_minor_cdf(ae, grade2) for ae in terms]).reshape(len(terms), 4)
        sums = probs.sum(axis=1, keepdims=True)
        grade_cdf = np.cumsum(probs, axis=1) / np.where(sums > 0, sums, 1.0)
        grade_cdf[:, -1] = 1.0
        durations = np.array([ae.duration_days for ae in terms])
        tox = cls(terms, total, cdf, np.maximum(minor, 0.0), minor_cdf, durations, grade_cdf)
        _CACHE[key] = (drug, tox)  # holding the drug keeps its id from being reused
        return tox

    def next_action_onset(self, now: float, scale: float, rng: np.random.Generator) -> float:
        """Time of the next onset that needs a decision; ``scale`` is dose intensity x
        susceptibility (no onset when it is zero)."""
        rate = self.action_total * scale
        if rate <= 0.0:
            return math.inf
        return now + rng.standard_exponential() / rate

    def draw_action_event(self, rng: np.random.Generator) -> tuple[AEParams, int, float, float]:
        """Term, grade (its action grade or more, or an intolerable grade 2), duration (days)
        of an action onset, and a uniform for the withdrawal decision."""
        u = rng.random(4)
        j = min(int(np.searchsorted(self.action_cdf, u[0], side="right")), len(self.terms) - 1)
        grade = 1 + min(int(np.searchsorted(self.action_grade_cdf[j], u[1], side="right")), 4)
        ae = self.terms[j]
        return ae, grade, _duration(ae, u[2]), float(u[3])

    def minor_events(self, intervals: list[tuple[float, float, float]], rng: np.random.Generator):
        """Lower-grade onsets over on-drug ``(start, end, scale)`` intervals, where ``scale`` is
        dose intensity x susceptibility.

        Per term, the number of onsets is Poisson with mean ``rate x sum(scale x length)``;
        given the counts, onsets are independent with density proportional to the intensity
        (placed by inverting the cumulative intensity), which is exactly a Poisson process with
        that piecewise-constant intensity. Returns arrays ``(term index, grade, onset,
        duration)``; the draws are a Poisson vector and one uniform triple per onset.
        """
        starts = np.array([a for a, _, _ in intervals])
        lengths = np.array([b - a for a, b, _ in intervals])
        weights = np.maximum(lengths, 0.0) * np.array([c for _, _, c in intervals])
        cum = np.cumsum(weights)
        total = float(cum[-1]) if len(cum) else 0.0
        if total <= 0.0 or not len(self.terms):
            return _NO_EVENTS
        counts = rng.poisson(self.minor_rates * total)
        k = int(counts.sum())
        if k == 0:
            return _NO_EVENTS
        u = rng.random((k, 3))
        term = np.repeat(np.arange(len(self.terms)), counts)
        # Onset: invert the cumulative intensity, skipping the gaps between intervals.
        v = u[:, 0] * total
        piece = np.minimum(np.searchsorted(cum, v, side="right"), len(cum) - 1)
        before = np.where(piece > 0, cum[piece - 1], 0.0)
        onset = starts[piece] + (v - before) / (weights[piece] / lengths[piece])
        grade = 1 + (u[:, 1, None] > self.minor_cdf[term]).sum(axis=1).astype(np.int64)
        duration = self.durations[term] * np.exp(DURATION_SD_LOG * ndtri(u[:, 2]))
        return term, grade, onset, duration


def _duration(ae: AEParams, u: float) -> float:
    z = _STD_NORMAL.inv_cdf(min(max(u, 1e-12), 1.0 - 1e-12))
    return ae.duration_days * math.exp(DURATION_SD_LOG * z)
