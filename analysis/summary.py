"""Headline metrics of one replicate in numpy, and their spread across replicates.

``summarise_replicate`` is the inner loop of every study: a few milliseconds for a cohort of
400 (``benchmarks/summary.py``). It needs no lifelines, pandas or statsmodels; the tests check
every metric against the slower reference functions of ``endpoints``, ``survival``,
``response``, ``safety`` and ``liver`` and against lifelines. A replicate's per-patient results
(:func:`patient_endpoints`) can be computed batch by batch and joined
(:func:`concat_endpoints`), so that a run of a million patients keeps arrays, not tables.

The metric names are stable and documented in the README (:data:`METRICS`, plus
``ae_any_<term>`` and ``ae_g3_<term>``). Definitions, all on the index line (day 0 = its start):

- ``n``: patients.
- ``os_median_months``, ``pfs_recist_median_months``, ``pfs_mrecist_median_months``,
  ``ttp_recist_median_months``: Kaplan-Meier medians (``endpoints`` gives the censoring rules).
- ``bor_<criterion>_<response>``, ``orr_<criterion>``, ``dcr_<criterion>``: shares of all
  patients by best overall response under the response rule (``response_rule``; by default
  SD at least 42 days after day 0 and no confirmation).
- ``dc4w``: disease control at >= 4 weeks, the anchor study's grouping: a RECIST 1.1 scan on
  day 28 or later reads CR, PR or SD with no PD before it.
- ``os_median_months_dc4w_yes`` / ``_no``: OS medians of the two groups from day 0, as
  published (this carries guarantee-time bias: a patient must live to a scan to be "yes").
- ``os_landmark_hr_dc4w``: the landmark version: patients alive and followed beyond day
  :data:`LANDMARK_DAYS` (8 weeks), classified by the scans up to that day, OS from the
  landmark, Cox hazard ratio (Efron ties) of disease control vs none.
- ``ae_any_<term>``, ``ae_g3_<term>``: shares of all patients with the CTCAE term (snake case,
  as in the ``adverse_events`` table) at any grade and at grade >= 3; one pair per term of
  :data:`DEFAULT_AE_TERMS` and per term seen in the replicate (a term absent from a replicate
  counts 0 there, see :func:`summarise`).
- ``grade3plus_ae``, ``dose_reduction``, ``discontinued_for_ae``: shares of all patients with
  an adverse event of grade >= 3, with a dose reduction, and whose index line ended for
  toxicity (``safety``).
- ``albi_median_week_0`` ... ``albi_median_week_12``: median ALBI of the patients measured in
  that week while on the index line (closest draw within 3 days of day 7 x week; ``liver``).
- ``cycles_median``: median index-line cycles.
- ``index_line_2`` ... ``index_line_5``: share of patients whose index line is that line.
- ``os_hr_late_vs_second_line``: univariable Cox OS hazard ratio of index line >= 3 vs line 2
  (patients on line 2 or later).
- ``os_hr_child_pugh_b_vs_a``: univariable Cox OS hazard ratio of baseline Child-Pugh B vs A
  (class C and unknown left out).
- ``afp_response_rate``: share with an AFP fall of at least 20% by weeks 6-8, among patients
  with both measurements.

A median that is not reached is ``inf`` in a replicate; a statistic that cannot be formed (no
patients in a group, a hazard ratio without events in a group) is NaN. Across replicates,
``summarise`` gives the mean, median and central 95% range (2.5% and 97.5% quantiles, linear
interpolation); a statistic that is not finite is ``None`` (null in JSON), never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from hccsim.analysis import liver, safety
from hccsim.analysis.endpoints import (
    Endpoint,
    cycles,
    disease_control_4w,
    imaged_on_index,
    overall_survival,
    progression_free_survival,
    time_to_progression,
)
from hccsim.analysis.response import RESPONSES, ResponseRule, afp_response, as_response_rule
from hccsim.analysis.schema import as_columns
from hccsim.analysis.survival import cox_binary_hr, km_median

DAYS_PER_MONTH = 30.4375
#: Disease control "at >= 4 weeks": the first day a controlling scan counts.
DC_MIN_DAYS = 28.0
#: The landmark of ``os_landmark_hr_dc4w``: 8 weeks, by when a first scan scheduled every 4-8
#: weeks has usually been read.
LANDMARK_DAYS = 56.0
ALBI_WEEKS = liver.DEFAULT_WEEKS
#: Metrics that need imaging on the index line (besides the ``bor_*`` shares).
NOT_MEASURED_WITHOUT_IMAGING = (
    "pfs_recist_median_months", "pfs_mrecist_median_months", "ttp_recist_median_months",
    "orr_recist", "orr_mrecist", "dcr_recist", "dcr_mrecist",
    "dc4w", "os_median_months_dc4w_yes", "os_median_months_dc4w_no", "os_landmark_hr_dc4w",
)  # fmt: skip
INDEX_LINES = (2, 3, 4, 5)
#: The CTCAE terms of the anchor study's adverse-event table (its "edema" is CTCAE "edema
#: limbs"), reported in every summary whether seen or not.
DEFAULT_AE_TERMS = (
    "alt_increased", "ammonia_increased", "anemia", "anorexia", "ast_increased", "bleeding",
    "blood_bilirubin_increased", "diarrhea", "edema_limbs", "fatigue", "fever", "hypertension",
    "hyperuricemia", "hypoalbuminemia", "infusion_related_reaction", "platelet_count_decreased",
    "proteinuria", "serum_amylase_increased", "weight_loss",
)  # fmt: skip
AE_PREFIXES = ("ae_any_", "ae_g3_")

METRICS = (
    "n", "os_median_months", "pfs_recist_median_months", "pfs_mrecist_median_months",
    "ttp_recist_median_months",
    *(f"bor_{c}_{r}" for c in ("recist", "mrecist") for r in ("cr", "pr", "sd", "pd", "ne")),
    "orr_recist", "dcr_recist", "orr_mrecist", "dcr_mrecist",
    "dc4w", "os_median_months_dc4w_yes", "os_median_months_dc4w_no", "os_landmark_hr_dc4w",
    "grade3plus_ae", "dose_reduction", "discontinued_for_ae",
    *(f"albi_median_week_{w}" for w in ALBI_WEEKS),
    "cycles_median",
    *(f"index_line_{k}" for k in INDEX_LINES),
    "os_hr_late_vs_second_line", "os_hr_child_pugh_b_vs_a",
    "afp_response_rate",
)  # fmt: skip
"""Every metric but the per-term ``ae_any_<term>`` and ``ae_g3_<term>``, in report order."""


def patient_endpoints(
    tables, *, scan_interval_days: float, response_rule: ResponseRule | None = None
) -> dict:
    """The per-patient results behind the headline metrics (one replicate's tables, or a
    batch of its patients): :class:`Endpoint` objects for OS, PFS and TTP, and arrays in
    patients-table order for the rest. ``response_rule``: how best overall response is read
    (None: SD from 42 days, unconfirmed)."""
    rule = as_response_rule(response_rule)
    out: dict = {"os": overall_survival(tables)}
    for crit, name in (("recist1.1", "recist"), ("mrecist", "mrecist")):
        out[f"pfs_{name}"] = progression_free_survival(
            tables, crit, scan_interval_days=scan_interval_days
        )
        out[f"bor_{name}"] = rule.best(tables, crit)
    out["ttp_recist"] = time_to_progression(
        tables, "recist1.1", scan_interval_days=scan_interval_days
    )
    out["afp_response"] = afp_response(tables)
    out["dc4w"] = disease_control_4w(tables, "recist1.1", DC_MIN_DAYS)
    out["dc_landmark"] = disease_control_4w(tables, "recist1.1", DC_MIN_DAYS, by_day=LANDMARK_DAYS)
    terms, worst = safety.worst_grades(tables)
    out["ae_worst"] = {t: worst[:, j] for j, t in enumerate(terms)}
    out["grade3plus"] = (worst >= safety.SEVERE_GRADE).any(axis=1)
    out["dose_reduction"] = safety.dose_reduction_patients(tables).flags
    out["discontinued_for_ae"] = safety.discontinued_for_ae(tables).flags
    out["albi_weeks"] = liver.albi_values(tables, ALBI_WEEKS, on_index_line=True)
    out["cycles"] = cycles(tables).astype(float)
    out["imaged"] = imaged_on_index(tables)
    pt = as_columns(tables["patients"])
    out["index_line"] = np.asarray(pt["index_line"], dtype=np.int64)
    cp = safety.child_pugh_classes(pt)
    out["child_pugh_b"] = np.where(cp == "B", 1.0, np.where(cp == "A", 0.0, np.nan))
    return out


def concat_endpoints(parts: Sequence[Mapping]) -> dict:
    """Per-patient results of consecutive batches of one replicate, joined. A term of
    ``ae_worst`` missing from a batch is grade 0 for its patients."""
    out = {}
    sizes = [len(p["os"].durations) for p in parts]
    for name, first in parts[0].items():
        if isinstance(first, Endpoint):
            out[name] = Endpoint(
                first.name,
                np.concatenate([p[name].durations for p in parts]),
                np.concatenate([p[name].events for p in parts]),
            )
        elif isinstance(first, dict):
            terms = sorted(set().union(*(p[name] for p in parts)))
            out[name] = {
                t: np.concatenate(
                    [
                        p[name].get(t, np.zeros(k, dtype=np.int64))
                        for p, k in zip(parts, sizes, strict=True)
                    ]
                )
                for t in terms
            }
        else:
            out[name] = np.concatenate([p[name] for p in parts])
    return out


def _median_months(e: Endpoint, mask=None) -> float:
    d, ev = e.durations, e.events
    if mask is not None:
        d, ev = d[mask], ev[mask]
    if not len(d):
        return math.nan
    return km_median(d, ev) / DAYS_PER_MONTH


def _share(flags) -> float:
    return float(np.mean(flags)) if len(flags) else math.nan


def _hr(e: Endpoint, x: np.ndarray, keep: np.ndarray) -> float:
    if not keep.any():
        return math.nan
    return cox_binary_hr(e.durations[keep], e.events[keep], x[keep])


def metrics_from_endpoints(endpoints: Mapping) -> dict[str, float]:
    """The headline metrics from one replicate's per-patient results."""
    os_ = endpoints["os"]
    n = len(os_.durations)
    out: dict[str, float] = {"n": float(n)}
    for name in ("os", "pfs_recist", "pfs_mrecist", "ttp_recist"):
        out[f"{name}_median_months"] = _median_months(endpoints[name])
    for crit in ("recist", "mrecist"):
        bor = endpoints[f"bor_{crit}"]
        share = {r: _share(bor == r) for r in RESPONSES}
        for r in RESPONSES:
            out[f"bor_{crit}_{r.lower()}"] = share[r]
        out[f"orr_{crit}"] = share["CR"] + share["PR"]
        out[f"dcr_{crit}"] = share["CR"] + share["PR"] + share["SD"]

    dc = endpoints["dc4w"]
    out["dc4w"] = _share(dc)
    out["os_median_months_dc4w_yes"] = _median_months(os_, dc)
    out["os_median_months_dc4w_no"] = _median_months(os_, ~dc)
    at_risk = os_.durations > LANDMARK_DAYS
    lm = Endpoint("os_landmark", os_.durations - LANDMARK_DAYS, os_.events)
    out["os_landmark_hr_dc4w"] = _hr(lm, endpoints["dc_landmark"], at_risk)
    if n and not endpoints["imaged"].any():
        # Nobody imaged on the index line (supportive care only): response and progression
        # were not measured, so their metrics are undefined rather than 0% or a median of
        # deaths alone.
        for name in (*NOT_MEASURED_WITHOUT_IMAGING, *(k for k in out if k.startswith("bor_"))):
            out[name] = math.nan

    out["grade3plus_ae"] = _share(endpoints["grade3plus"])
    out["dose_reduction"] = _share(endpoints["dose_reduction"])
    out["discontinued_for_ae"] = _share(endpoints["discontinued_for_ae"])
    albi = endpoints["albi_weeks"]
    for j, w in enumerate(ALBI_WEEKS):
        col = albi[:, j][~np.isnan(albi[:, j])]
        out[f"albi_median_week_{w}"] = float(np.median(col)) if len(col) else math.nan
    cyc = endpoints["cycles"]
    out["cycles_median"] = float(np.median(cyc)) if len(cyc) else math.nan
    line = endpoints["index_line"]
    for k in INDEX_LINES:
        out[f"index_line_{k}"] = _share(line == k)
    out["os_hr_late_vs_second_line"] = _hr(os_, line >= 3, line >= 2)
    cp_b = endpoints["child_pugh_b"]
    out["os_hr_child_pugh_b_vs_a"] = _hr(os_, cp_b == 1.0, ~np.isnan(cp_b))

    afp = endpoints["afp_response"]
    known = afp[afp != None]  # noqa: E711 - an object array: None marks no measurement
    out["afp_response_rate"] = float(np.mean(known.astype(bool))) if len(known) else math.nan

    worst = endpoints["ae_worst"]
    for term in sorted(set(DEFAULT_AE_TERMS) | set(worst)):
        g = worst.get(term)
        out[f"ae_any_{term}"] = _share(g >= 1) if g is not None else (0.0 if n else math.nan)
        out[f"ae_g3_{term}"] = _share(g >= 3) if g is not None else (0.0 if n else math.nan)
    return out


def summarise_replicate(
    tables, *, scan_interval_days: float, response_rule: ResponseRule | None = None
) -> dict[str, float]:
    """The headline metrics of one replicate's tables."""
    return metrics_from_endpoints(
        patient_endpoints(
            tables, scan_interval_days=scan_interval_days, response_rule=response_rule
        )
    )


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _quantile(values: np.ndarray, p: float) -> float:
    """numpy's default (linear, R type 7) quantile, but exact where infinite values sit: the
    median of [3, 4, inf] is 4 (numpy's interpolation gives NaN there), that of [3, inf] is inf.
    NaN when any value is NaN."""
    if not len(values) or np.isnan(values).any():
        return math.nan
    x = np.sort(values)
    h = (len(x) - 1) * p
    lo = math.floor(h)
    frac = h - lo
    a, b = x[lo], x[min(lo + 1, len(x) - 1)]
    if frac == 0.0 or a == b:
        return float(a)
    if math.isinf(b) or math.isinf(a):  # a < b, one of them infinite: so is the interpolation
        return float(b if math.isinf(b) else a)
    # numpy's two-sided linear interpolation, so finite values match np.quantile bit for bit
    return float(a + (b - a) * frac) if frac < 0.5 else float(b - (b - a) * (1.0 - frac))


def summarise(per_replicate: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float | None]]:
    """Mean, median, 2.5% and 97.5% quantiles of each metric across replicates.

    The metrics are those of any replicate: an ``ae_any_<term>`` or ``ae_g3_<term>`` that a
    replicate lacks (the term never occurred there) counts 0 in it; any other missing metric
    counts as NaN (and makes its statistics ``None``). Order: :data:`METRICS`, then the
    adverse-event terms alphabetically, then anything else.
    """
    names: dict[str, None] = {}
    for r in per_replicate:
        names.update(dict.fromkeys(r))
    known = [m for m in METRICS if m in names]
    ae = sorted(
        (m for m in names if m.startswith(AE_PREFIXES)),
        key=lambda m: (m.split("_", 2)[2], m.startswith("ae_g3_")),
    )
    rest = [m for m in names if m not in set(known) | set(ae)]
    out = {}
    for name in [*known, *ae, *rest]:
        fill = 0.0 if name.startswith(AE_PREFIXES) else math.nan
        v = np.array([r.get(name, fill) for r in per_replicate], dtype=float)
        q = [_quantile(v, p) for p in (0.5, 0.025, 0.975)]
        with np.errstate(invalid="ignore"):
            mean = float(np.mean(v))
        out[name] = {
            "mean": _finite_or_none(mean),
            "median": _finite_or_none(q[0]),
            "q025": _finite_or_none(q[1]),
            "q975": _finite_or_none(q[2]),
        }
    return out
