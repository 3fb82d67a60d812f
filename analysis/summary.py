"""Headline metrics of one replicate in numpy, and their spread across replicates.

``summarise_replicate`` is the inner loop of every study (milliseconds per replicate); the
metric names are stable and documented in the README:

- ``n``: patients;
- ``os_median_months``: Kaplan-Meier median overall survival;
- ``pfs_recist_median_months``, ``pfs_mrecist_median_months``: Kaplan-Meier median PFS by
  RECIST 1.1 and by mRECIST (censoring rules in ``endpoints``);
- ``orr_recist``, ``orr_mrecist``, ``dcr_recist``, ``dcr_mrecist``: objective response (CR or
  PR) and disease control (CR, PR or SD) rates, from the best overall response of the index
  line (SD at least 42 days after its start; no confirmation);
- ``bor_recist_cr`` ... ``bor_mrecist_ne``: the share of each best overall response;
- ``afp_response_rate``: the share with an AFP fall of at least 20% by weeks 6-8, among
  patients with both measurements.

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
from hccsim.analysis.response import RESPONSES, SD_MIN_DAYS, afp_response, best_responses
from hccsim.analysis.survival import km_median

DAYS_PER_MONTH = 30.4375
METRICS = (
    "n", "os_median_months", "pfs_recist_median_months", "pfs_mrecist_median_months",
    "orr_recist", "orr_mrecist", "dcr_recist", "dcr_mrecist",
    *(f"bor_{c}_{r}" for c in ("recist", "mrecist") for r in ("cr", "pr", "sd", "pd", "ne")),
    "afp_response_rate",
)  # fmt: skip


def patient_endpoints(tables, *, scan_interval_days: float) -> dict:
    """The per-patient results behind the headline metrics: OS and PFS by each criterion
    (:class:`Endpoint`), best overall responses and AFP responses (arrays).

    Patients are independent, so the results of a replicate are the concatenation of those of
    its batches: a run of a million patients keeps these arrays, not the tables.
    """
    out: dict = {"os": overall_survival(tables)}
    for crit, name in (("recist1.1", "recist"), ("mrecist", "mrecist")):
        out[f"pfs_{name}"] = progression_free_survival(
            tables, crit, scan_interval_days=scan_interval_days
        )
        out[f"bor_{name}"] = best_responses(tables, crit, sd_min_days=SD_MIN_DAYS)
    out["afp_response"] = afp_response(tables)
    return out


def concat_endpoints(parts: Sequence[Mapping]) -> dict:
    """Per-patient results of consecutive batches of one replicate, joined."""
    out = {}
    for name, first in parts[0].items():
        if isinstance(first, Endpoint):
            out[name] = Endpoint(
                first.name,
                np.concatenate([p[name].durations for p in parts]),
                np.concatenate([p[name].events for p in parts]),
            )
        else:
            out[name] = np.concatenate([p[name] for p in parts])
    return out


def metrics_from_endpoints(endpoints: Mapping) -> dict[str, float]:
    """The headline metrics from one replicate's per-patient results."""
    n = len(endpoints["os"].durations)
    out = {"n": float(n)}
    for name in ("os", "pfs_recist", "pfs_mrecist"):
        e = endpoints[name]
        out[f"{name}_median_months"] = km_median(e.durations, e.events) / DAYS_PER_MONTH
    for crit in ("recist", "mrecist"):
        bor = endpoints[f"bor_{crit}"]
        share = {r: float(np.mean(bor == r)) if n else math.nan for r in RESPONSES}
        out[f"orr_{crit}"] = share["CR"] + share["PR"]
        out[f"dcr_{crit}"] = share["CR"] + share["PR"] + share["SD"]
        for r in RESPONSES:
            out[f"bor_{crit}_{r.lower()}"] = share[r]
    afp = endpoints["afp_response"]
    known = afp[afp != None]  # noqa: E711 - an object array: None marks no measurement
    out["afp_response_rate"] = float(np.mean(known.astype(bool))) if len(known) else math.nan
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
