"""Simulated pools per trial arm, and the statistic of every target on a pool or a sample of it.

A *pool* is a large simulated population for one arm of one emulated study
(``scenarios/calibration/<study>.yaml``): every patient of the pool gets that arm's sequence
(common random numbers across arms, DESIGN section 6), accrual is scaled so that the pool
enrols over the trial's published enrolment period, and the trial's data cut is applied, so
that follow-up and censoring resemble the publication's. A pool keeps per-patient results only
(``analysis.summary.patient_endpoints`` plus baseline AFP and whether a later line started),
never the tables.

The calibration loss evaluates each target on the whole pool; the calibration check resamples
cohorts of the published size from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hccsim.analysis.endpoints import Endpoint, data_cut
from hccsim.analysis.summary import _median_months, concat_endpoints, patient_endpoints
from hccsim.analysis.survival import cox_binary_hr
from hccsim.simulator import scenario as scenario_mod
from hccsim.simulator.calibration.targets import Target
from hccsim.simulator.engine import DAYS_PER_MONTH
from hccsim.simulator.errors import InputError
from hccsim.simulator.studies.run import batches, build_spec, simulate_task

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "calibration"
ANCHOR_FILE = "anchor_study.yaml"
BATCH = 200
#: Baseline columns kept per patient, for the anchor study's side-by-side baseline table.
BASELINE_COLUMNS = (
    "male",
    "age",
    "ecog",
    "child_pugh_score",
    "child_pugh_class",
    "mvi",
    "ehm",
    "bclc",
    "hbv",
    "hcv",
    "albi",
    "intrahepatic_lesions",
    "max_lesion_mm",
    "weight_kg",
)


def scenario_path(study: str, folder: Path | None = None) -> Path:
    folder = folder or SCENARIO_DIR
    name = ANCHOR_FILE if study == "anchor_study" else f"{study.lower()}.yaml"
    return folder / name


def nest(flat: Mapping[str, float]) -> dict:
    """``{"death.base_rate_per_month": x}`` -> ``{"death": {"base_rate_per_month": x}}``."""
    out: dict = {}
    for path, value in flat.items():
        node = out
        *head, last = path.split(".")
        for key in head:
            node = node.setdefault(key, {})
        node[last] = float(value)
    return out


def study_seed(seed: int, study: str) -> int:
    """One root seed per study, derived from the calibration seed (stable across runs)."""
    h = int.from_bytes(hashlib.sha256(study.encode()).digest()[:4], "big")
    return int(np.random.SeedSequence([seed, h]).generate_state(1, dtype=np.uint32)[0])


@dataclass(frozen=True)
class PoolSpec:
    """What to simulate for one arm of one study (small and picklable)."""

    study: str
    arm: str
    size: int
    seed: int


def arm_names(sc) -> list[str]:
    return [a.name for a in sc.treatment.arms] if sc.treatment.arms else [sc.treatment.sequence[0]]


def _arm_scenario(sc, arm: str, size: int, overrides: Mapping[str, float]):
    """The study's scenario with every patient on ``arm``, ``size`` patients, accrual scaled
    so that enrolment lasts as long as in the published trial, and ``overrides`` as its
    parameters (merged over any the file has; calibration files have none)."""
    update: dict = {}
    cohort = {"size": size}
    if sc.cohort.accrual_per_month is not None:
        cohort["accrual_per_month"] = sc.cohort.accrual_per_month * size / sc.cohort.size
    update["cohort"] = sc.cohort.model_copy(update=cohort)
    if sc.treatment.arms:
        chosen = next((a for a in sc.treatment.arms if a.name == arm), None)
        if chosen is None:
            raise InputError(f"{sc.name}: no arm {arm!r}; arms: {arm_names(sc)}")
    params = dict(sc.parameters or {})
    if overrides:
        params = _merge(params, nest(overrides))
    update["parameters"] = params
    return sc.model_copy(update=update)


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def pool_task(path: str, arm: str, size: int, seed: int, overrides, start: int, stop: int):
    """Per-patient results of patients ``start .. stop-1`` of one arm's pool."""
    sc = scenario_mod.load(path)
    asc = _arm_scenario(sc, arm, size, overrides)
    spec = build_spec(asc, seed)
    if spec.arms:
        ctx = next(c for c in spec.arms if c.arm == arm)
        spec = dataclasses.replace(spec, ctx=ctx, arms=(), weights=(), stratify_by=())
    tables = simulate_task(spec, 0, start, stop)
    cut = asc.analysis.data_cut_months
    if cut is not None:
        tables = data_cut(tables, cut * DAYS_PER_MONTH)
    ep = patient_endpoints(
        tables, scan_interval_days=asc.imaging_interval_days, response_rule=asc.response_rule
    )
    pt, ln = tables["patients"], tables["lines"]
    ids = np.asarray(pt["patient_id"], dtype=np.int64)
    index_line = np.asarray(pt["index_line"], dtype=np.int64)
    pid = np.asarray(ln["patient_id"], dtype=np.int64)
    kept = np.isin(pid, ids)  # lines of patients who entered after the data cut are dropped
    pid = pid[kept]
    line = np.asarray(ln["line"], dtype=np.int64)[kept]
    own_index = index_line[np.searchsorted(ids, pid)]  # each line's patient's index line
    later = (line > own_index) & (
        np.asarray(ln["drug"], dtype=object)[kept] != "best_supportive_care"
    )
    ep["later_line"] = np.isin(ids, pid[later])
    # Any-cause discontinuation for adverse events, as trials that count disease-related
    # events report it: the index line ended for toxicity or clinical deterioration.
    reason = np.asarray(ln["end_reason"], dtype=object)[kept]
    stopped = (line == own_index) & np.isin(reason, ("toxicity", "clinical_deterioration"))
    ep["discontinued_any_ae"] = np.isin(ids, pid[stopped])
    ep["afp"] = np.asarray(pt["afp_ng_ml"], dtype=float)
    ep["baseline"] = {c: np.asarray(pt[c]) for c in BASELINE_COLUMNS}
    return ep


def simulate_pools(
    studies: Sequence[str],
    sizes: Mapping[tuple[str, str], int],
    overrides: Mapping[str, float],
    seed: int,
    run_map,
    folder: Path | None = None,
) -> dict[tuple[str, str], dict]:
    """``{(study, arm): per-patient results}`` for every arm of ``studies`` that ``sizes``
    gives a pool size; ``run_map`` is ``run.mapper``'s map."""
    tasks, keys = [], []
    for study in studies:
        path = str(scenario_path(study, folder))
        sc = scenario_mod.load(path)
        for arm in arm_names(sc):
            if (study, arm) not in sizes:
                continue
            size = sizes[(study, arm)]
            for a, b in batches(size, BATCH):
                tasks.append((path, arm, size, study_seed(seed, study), dict(overrides), a, b))
                keys.append((study, arm))
    parts: dict[tuple[str, str], list] = {}
    for key, ep in zip(keys, run_map(pool_task, tasks), strict=True):
        parts.setdefault(key, []).append(ep)
    return {k: concat_endpoints(v) for k, v in parts.items()}


# --- statistics -------------------------------------------------------------------------------


def take(ep: Mapping, idx: np.ndarray) -> dict:
    """The per-patient results of the patients ``idx`` (a resampled cohort)."""
    out = {}
    for name, v in ep.items():
        if isinstance(v, Endpoint):
            out[name] = Endpoint(v.name, v.durations[idx], v.events[idx])
        elif isinstance(v, dict):
            out[name] = {t: a[idx] for t, a in v.items()}
        else:
            out[name] = v[idx]
    return out


def _subgroup(ep: Mapping, group: str) -> np.ndarray:
    afp = ep["afp"]
    if group == "afp_ge_400":
        return afp >= 400.0
    if group == "afp_lt_400":
        return afp < 400.0
    raise ValueError(f"unknown subgroup {group!r}")


def km_at(e: Endpoint, day: float) -> float:
    """Kaplan-Meier survival just after ``day``."""
    d, ev = e.durations, e.events.astype(bool)
    order = np.lexsort((~ev, d))  # deaths before censorings at the same time
    d, ev = d[order], ev[order]
    n = len(d)
    at_risk = n - np.arange(n)
    factors = np.where(ev & (d <= day), 1.0 - 1.0 / at_risk, 1.0)
    # ties: the product over tied deaths equals 1 - d/n at that time
    return float(np.prod(factors))


def _share(ep: Mapping, endpoint: str) -> float:
    n = len(ep["os"].durations)
    if not n:
        return math.nan
    kind, _, arg = endpoint.partition(":")
    if kind in ("bor_recist", "bor_mrecist"):
        return float(np.mean(ep[kind] == arg))
    if kind in ("orr_recist", "orr_mrecist", "dcr_recist", "dcr_mrecist"):
        bor = ep["bor_" + kind.split("_")[1]]
        ok = ("CR", "PR") if kind.startswith("orr") else ("CR", "PR", "SD")
        return float(np.mean(np.isin(bor, ok)))
    if kind in ("ae_any", "ae_g3"):
        g = ep["ae_worst"].get(arg)
        if g is None:
            return 0.0
        return float(np.mean(g >= (1 if kind == "ae_any" else 3)))
    if kind == "index_line":
        return float(np.mean(ep["index_line"] == int(arg)))
    if kind == "afp_ge_400":
        return float(np.mean(ep["afp"] >= 400.0))
    if kind in (
        "grade3plus",
        "dose_reduction",
        "discontinued_for_ae",
        "discontinued_any_ae",
        "later_line",
    ):
        return float(np.mean(ep[kind]))
    raise ValueError(f"unknown share endpoint {endpoint!r}")


def _albi_week(ep: Mapping, week: str) -> float:
    from hccsim.analysis.summary import ALBI_WEEKS

    j = list(ALBI_WEEKS).index(int(week))
    col = ep["albi_weeks"][:, j]
    col = col[~np.isnan(col)]
    return float(np.median(col)) if len(col) else math.nan


def _hr(a: Mapping, b: Mapping, endpoint: str, mask_a=None, mask_b=None) -> float:
    ea, eb = a[endpoint], b[endpoint]
    da, va, db, vb = ea.durations, ea.events, eb.durations, eb.events
    if mask_a is not None:
        da, va, db, vb = da[mask_a], va[mask_a], db[mask_b], vb[mask_b]
    d = np.concatenate([da, db])
    e = np.concatenate([va, vb])
    x = np.concatenate([np.ones(len(da), bool), np.zeros(len(db), bool)])
    return cox_binary_hr(d, e, x)


def survival_at_published(t: Target, arms: Mapping[str, Mapping]) -> float:
    """For a median target (whole arm or subgroup): the Kaplan-Meier survival just after the
    published median's day, which the trial's curve put at 0.5. NaN for other statistics.

    A median of an endpoint read at scans is locked to a scan window, so a curve a few points
    off moves it by a whole imaging interval; on the survival scale the same miss is a few
    points."""
    if t.statistic not in ("median", "subgroup_median"):
        return math.nan
    e = arms[t.arms[0]][t.endpoint]
    if t.statistic == "subgroup_median":
        keep = _subgroup(arms[t.arms[0]], t.extra["subgroup"])
        e = Endpoint(e.name, e.durations[keep], e.events[keep])
    if len(e.durations) == 0:
        return math.nan
    return km_at(e, t.value * DAYS_PER_MONTH)


def statistic(t: Target, arms: Mapping[str, Mapping]) -> float:
    """The simulated value of target ``t`` from per-patient results by arm (whole pools or
    resampled cohorts), on the scale of the published figure."""
    if t.statistic == "hr":
        return _hr(arms[t.arms[0]], arms[t.arms[1]], t.endpoint)
    if t.statistic == "subgroup_hr":
        g = t.extra["subgroup"]
        a, b = arms[t.arms[0]], arms[t.arms[1]]
        return _hr(a, b, t.endpoint, _subgroup(a, g), _subgroup(b, g))
    if t.endpoint == "afp_ge_400":  # a whole-study share
        return float(np.mean(np.concatenate([arms[a]["afp"] for a in t.arms]) >= 400.0))
    ep = arms[t.arms[0]]
    if t.statistic == "median":
        return _median_months(ep[t.endpoint])
    if t.statistic == "subgroup_median":
        return _median_months(ep[t.endpoint], _subgroup(ep, t.extra["subgroup"]))
    if t.statistic == "landmark":
        return km_at(ep[t.endpoint], t.extra["at_months"] * DAYS_PER_MONTH)
    if t.statistic == "share":
        return _share(ep, t.endpoint)
    if t.statistic == "median_value":
        if t.endpoint == "cycles":
            return float(np.median(ep["cycles"])) if len(ep["cycles"]) else math.nan
        return _albi_week(ep, t.endpoint.split(":")[1])
    raise ValueError(f"unknown statistic {t.statistic!r}")
