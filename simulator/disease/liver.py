"""Liver function (DESIGN section 3, "Liver function").

Albumin, bilirubin and INR follow the patient's baseline values, a drug-specific drift while on
each drug (from the catalogue; sorafenib and lenvatinib worsen albumin and bilirubin over
months, ramucirumab barely moves them), a burden term and visit noise::

    albumin(t)     = albumin0 + sum_d drift_alb_d * months_on_d(t) + c_alb * (log V(t) - log V0)
    log bili(t)    = log bili0 + sum_d drift_bil_d * months_on_d(t) + c_bil * (log V(t) - log V0)
    log INR(t)     = log INR0

ALBI is computed from the observed albumin and bilirubin by its formula.

Interim (foundation issue): no decompensation events (ascites, encephalopathy) and no AST, ALT,
platelets, haemoglobin, ammonia or urine protein: those columns are left empty (null) until the
liver and adverse-event issue simulates them.
"""

from __future__ import annotations

import numpy as np

from hccsim.analysis.scores import albi
from hccsim.simulator.parameters import LiverParams

DAYS_PER_MONTH = 30.4375


def exposure_months(days: np.ndarray, intervals: list[tuple[float, float, float, float]]):
    """Drift accumulated by each day: ``intervals`` are (start, end, albumin/month, log bili/month)."""
    alb = np.zeros(len(days))
    bil = np.zeros(len(days))
    for start, end, d_alb, d_bil in intervals:
        months = np.clip(days - start, 0.0, end - start) / DAYS_PER_MONTH
        alb += d_alb * months
        bil += d_bil * months
    return alb, bil


def liver_labs(
    p: LiverParams,
    days: np.ndarray,
    dlogv: np.ndarray,
    albumin0: float,
    bilirubin0: float,
    inr0: float,
    drift_intervals: list[tuple[float, float, float, float]],
    z: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Observed albumin (g/dL), bilirubin (mg/dL), INR and ALBI at ``days``.

    ``dlogv`` is log V(t) - log V(0) at those days; ``z`` standard normals of shape (n, 3).
    """
    d_alb, d_bil = exposure_months(days, drift_intervals)
    alb = albumin0 + d_alb + p.albumin_per_log_burden * dlogv + p.albumin_visit_sd * z[:, 0]
    alb = np.clip(alb, 1.0, 6.0)
    bil = np.exp(
        np.log(bilirubin0)
        + d_bil
        + p.log_bilirubin_per_log_burden * dlogv
        + p.bilirubin_visit_sd_log * z[:, 1]
    )
    bil = np.clip(bil, 0.1, 50.0)
    inr = inr0 * np.exp(p.inr_visit_sd_log * z[:, 2])
    return alb, bil, inr, albi(alb, bil)
