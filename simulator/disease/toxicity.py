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

Interim (foundation issue): every term is an event process and the grade of an onset is drawn
from the term's distribution. The adverse-event issue grades lab-based terms from the simulated
labs (treatment-emergent worsening from baseline) and adds the label's dose rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from hccsim.simulator.parameters import AEParams, DrugParams

HOLD_GRADE = 3
_STD_NORMAL = NormalDist()
#: Log-normal spread of event durations around the term's median.
DURATION_SD_LOG = 0.5


def action_grade(ae: AEParams) -> int:
    return min(HOLD_GRADE, ae.stop_at_grade)


@dataclass(frozen=True, slots=True)
class LineToxicity:
    """Pre-computed rates of one regimen for one patient (susceptibility applied)."""

    terms: tuple[AEParams, ...]
    action_rates: np.ndarray  # per day at full dose, per term
    action_total: float
    action_cdf: np.ndarray
    minor_rates: np.ndarray  # per day at full dose, per term

    @classmethod
    def for_drug(cls, drug: DrugParams, susceptibility: float) -> LineToxicity:
        terms = drug.adverse_events
        action = (
            np.array(
                [ae.rate_per_day * sum(ae.grade_probs[action_grade(ae) - 1 :]) for ae in terms]
            )
            * susceptibility
        )
        minor = (
            np.array(
                [ae.rate_per_day * sum(ae.grade_probs[: action_grade(ae) - 1]) for ae in terms]
            )
            * susceptibility
        )
        total = float(action.sum()) if len(terms) else 0.0
        cdf = np.cumsum(action) / total if total > 0 else np.zeros(len(terms))
        return cls(terms, action, total, cdf, minor)

    def next_action_onset(self, now: float, di: float, rng: np.random.Generator) -> float:
        """Time of the next onset that needs a decision, at dose intensity ``di`` (inf if none)."""
        rate = self.action_total * di
        if rate <= 0.0:
            return math.inf
        return now + rng.standard_exponential() / rate

    def draw_action_event(self, rng: np.random.Generator) -> tuple[AEParams, int, float]:
        """Term, grade (>= its action grade) and duration (days) of an action onset."""
        u = rng.random(3)
        j = min(int(np.searchsorted(self.action_cdf, u[0], side="right")), len(self.terms) - 1)
        ae = self.terms[j]
        g0 = action_grade(ae)
        probs = np.asarray(ae.grade_probs[g0 - 1 :])
        grade = g0 + min(
            int(np.searchsorted(np.cumsum(probs) / probs.sum(), u[1], side="right")), len(probs) - 1
        )
        return ae, grade, _duration(ae, u[2])

    def minor_events(self, intervals: list[tuple[float, float, float]], rng: np.random.Generator):
        """Lower-grade onsets over on-drug ``(start, end, dose intensity)`` intervals.

        Yields ``(term, grade, onset, duration)``. The number of draws depends on the
        intervals only through Poisson counts, all from the caller's keyed stream.
        """
        for start, end, di in intervals:
            length = end - start
            if length <= 0 or di <= 0:
                continue
            counts = rng.poisson(self.minor_rates * di * length)
            for j in np.flatnonzero(counts):
                ae = self.terms[j]
                g0 = action_grade(ae)
                probs = np.asarray(ae.grade_probs[: g0 - 1])
                cdf = np.cumsum(probs) / probs.sum()
                for _ in range(int(counts[j])):
                    u = rng.random(3)
                    grade = 1 + min(int(np.searchsorted(cdf, u[0], side="right")), len(probs) - 1)
                    yield ae.term, grade, start + u[1] * length, _duration(ae, u[2])


def _duration(ae: AEParams, u: float) -> float:
    z = _STD_NORMAL.inv_cdf(min(max(u, 1e-12), 1.0 - 1e-12))
    return ae.duration_days * math.exp(DURATION_SD_LOG * z)
