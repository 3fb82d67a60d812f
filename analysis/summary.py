"""Headline metrics of one replicate in numpy, and their spread across replicates.

``summarise_replicate`` is the inner loop of every study (milliseconds per replicate); the
metric names are stable and documented in the README:

- ``n``: patients;
- ``os_median_months``: Kaplan-Meier median overall survival;
- ``pfs_recist_median_months``, ``pfs_mrecist_median_months``: Kaplan-Meier median PFS by
  RECIST 1.1 and by mRECIST (censoring rules in ``endpoints``).

A median that is not reached is ``inf`` in a replicate. Across replicates, ``summarise`` gives
the mean, median and central 95% range (2.5% and 97.5% quantiles, linear interpolation); a
statistic that is not finite (for example a mean over replicates some of which did not reach the
median) is reported as ``None`` (null in JSON), never dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from hccsim.analysis.endpoints import Endpoint, overall_survival, progression_free_survival
from hccsim.analysis.survival import km_median

DAYS_PER_MONTH = 30.4375
METRICS = ("n", "os_median_months", "pfs_recist_median_months", "pfs_mrecist_median_months")


def patient_endpoints(tables, *, scan_interval_days: float) -> dict[str, Endpoint]:
    """The per-patient endpoints behind the headline metrics (OS, PFS by each criterion).

    Patients are independent, so the endpoints of a replicate are the concatenation of those of
    its batches: a run of a million patients keeps these arrays, not the tables.
    """
    out = {"os": overall_survival(tables)}
    for crit, name in (("recist1.1", "pfs_recist"), ("mrecist", "pfs_mrecist")):
        out[name] = progression_free_survival(tables, crit, scan_interval_days=scan_interval_days)
    return out


def concat_endpoints(parts: Sequence[Mapping[str, Endpoint]]) -> dict[str, Endpoint]:
    """Endpoints of consecutive batches of one replicate, joined."""
    return {
        name: Endpoint(
            parts[0][name].name,
            np.concatenate([p[name].durations for p in parts]),
            np.concatenate([p[name].events for p in parts]),
        )
        for name in parts[0]
    }


def metrics_from_endpoints(endpoints: Mapping[str, Endpoint]) -> dict[str, float]:
    """The headline metrics from one replicate's endpoints."""
    out = {"n": float(len(endpoints["os"].durations))}
    for name in ("os", "pfs_recist", "pfs_mrecist"):
        e = endpoints[name]
        out[f"{name}_median_months"] = km_median(e.durations, e.events) / DAYS_PER_MONTH
    return out


def summarise_replicate(tables, *, scan_interval_days: float) -> dict[str, float]:
    """The headline metrics of one replicate's tables."""
    return metrics_from_endpoints(patient_endpoints(tables, scan_interval_days=scan_interval_days))


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def summarise(per_replicate: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float | None]]:
    """Mean, median, 2.5% and 97.5% quantiles of each metric across replicates."""
    out = {}
    for name in per_replicate[0]:
        v = np.array([r[name] for r in per_replicate], dtype=float)
        with np.errstate(invalid="ignore"):
            q = np.quantile(v, [0.5, 0.025, 0.975]) if np.all(~np.isnan(v)) else [np.nan] * 3
            mean = float(np.mean(v))
        out[name] = {
            "mean": _finite_or_none(mean),
            "median": _finite_or_none(q[0]),
            "q025": _finite_or_none(q[1]),
            "q975": _finite_or_none(q[2]),
        }
    return out
