"""Kaplan-Meier estimation in numpy.

``kaplan_meier`` gives the product-limit estimate at the distinct event times; ``km_median``
the median survival time, defined as lifelines defines it: the smallest time at which the
estimate is at or below one half (not reached: ``inf``); where the estimate sits at exactly one
half, R's ``survfit`` takes the midpoint of that flat stretch instead. Ties: deaths before
censorings at the same time (the usual convention). These are the inner-loop versions used on
every replicate; the tests check them against lifelines and exact rational arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The estimate is a product of floating-point factors, so a curve that reaches one half exactly
#: (say 2k patients without censoring: S = (2k-1)/2k x ... x k/(k+1) = 1/2) can come out as
#: 0.5000000000000001 and push the median to the next event time. Values within this of 1/2
#: count as 1/2 (R's ``quantile.survfit`` uses a tolerance, sqrt(eps), for the same reason);
#: the rounding error of the product of k factors is about k x 1e-16.
_HALF_TOL = 1e-9


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


def _check(durations, events) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(durations, dtype=float)
    raw = np.asarray(events)
    if raw.dtype.kind != "b" and not np.isin(raw, (0, 1)).all():
        raise ValueError("events must be true/false or 0/1 (1: event observed, 0: censored)")
    e = raw.astype(bool)
    if d.shape != e.shape or d.ndim != 1:
        raise ValueError("durations and events must be 1-d arrays of the same length")
    if np.any(~np.isfinite(d)) or np.any(d < 0):
        raise ValueError("durations must be finite and >= 0")
    return d, e


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


def km_median(durations, events) -> float:
    """Median survival: first time with S(t) <= 0.5; ``inf`` when not reached."""
    km = kaplan_meier(durations, events)
    hit = np.flatnonzero(km.survival <= 0.5 + _HALF_TOL)
    return float(km.times[hit[0]]) if len(hit) else float("inf")
