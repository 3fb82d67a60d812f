"""``hccsim calibrate --check``: every target against cohorts of its published size.

For each emulated study, one large pool per arm is simulated with the parameter set in use
(:mod:`pools`); ``resamples`` cohorts of each arm's published size are drawn from it with
replacement, and every target's statistic is computed on each cohort as the publication
computed it (Kaplan-Meier medians, Cox hazard ratios with Efron ties, shares of the arm). The
target's simulated distribution gives its mean, its central 95% range (2.5% and 97.5%
quantiles) and the z-score ``(published - mean) / sd``, where ``sd`` combines the spread over
cohorts with the rounding of the published figure (half a unit of its last digit); a published
figure counts as inside when it lies in the central range widened by that rounding.

Acceptance, judged as a set (DESIGN section 11): at least 90% of the counted targets inside,
none beyond ``|z| = 3.3``, and the anchor study's OS and both PFS medians inside.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hccsim.simulator.calibration import pools
from hccsim.simulator.calibration.targets import Target

PASS_SHARE = 0.90
Z_LIMIT = 3.3
ANCHOR_REQUIRED = (
    "anchor_study.os_median",
    "anchor_study.pfs_recist_median",
    "anchor_study.pfs_mrecist_median",
)


@dataclass
class Result:
    id: str
    study: str
    label: str
    counted: bool
    fitted: bool
    approx: bool
    statistic: str
    published: float
    ci: tuple[float, float] | None
    mean: float | None
    low: float | None
    high: float | None
    sd: float | None
    z: float | None
    inside: bool | None
    undefined: int  # resampled cohorts where the statistic could not be formed
    note: str
    # medians only: Kaplan-Meier survival at the published median (0.5 in the trial), mean and
    # central 95% range over the same cohorts; shown, not judged
    survival_mean: float | None = None
    survival_low: float | None = None
    survival_high: float | None = None


def arm_sizes(data: Mapping) -> dict[tuple[str, str], int]:
    """Published size of every arm: ``{(study, arm): n}``."""
    out = {("anchor_study", "ramucirumab"): int(data["anchor_study"]["n"])}
    for trial, spec in data["trials"].items():
        for arm, entry in spec["arms"].items():
            out[(trial, arm)] = int(entry["n"])
    return out


def pool_sizes(
    published: Mapping[tuple[str, str], int], factor: float, minimum: int
) -> dict[tuple[str, str], int]:
    return {k: max(minimum, math.ceil(factor * n)) for k, n in published.items()}


def resample(
    targets: Sequence[Target],
    arm_pools: Mapping[tuple[str, str], Mapping],
    published: Mapping[tuple[str, str], int],
    resamples: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Each target's statistic over ``resamples`` cohorts of the published arm sizes."""
    by_study: dict[str, list[Target]] = {}
    for t in targets:
        by_study.setdefault(t.study, []).append(t)
    out: dict[str, np.ndarray] = {}
    for study, ts in by_study.items():
        rng = np.random.Generator(np.random.PCG64(pools.study_seed(seed + 1, study)))
        arms = sorted({a for t in ts for a in t.arms})
        values = {t.id: np.empty(resamples) for t in ts}
        surv = {
            t.id: np.empty(resamples) for t in ts if t.statistic in ("median", "subgroup_median")
        }
        for r in range(resamples):
            cohort = {}
            for arm in arms:
                pool = arm_pools[(study, arm)]
                size = len(pool["os"].durations)
                cohort[arm] = pools.take(pool, rng.integers(0, size, published[(study, arm)]))
            for t in ts:
                values[t.id][r] = pools.statistic(t, cohort)
                if t.id in surv:
                    surv[t.id][r] = pools.survival_at_published(t, cohort)
        out.update(values)
        out.update({survival_key(k): v for k, v in surv.items()})
    return out


def survival_key(target_id: str) -> str:
    """Key of a median target's survival-at-the-published-median draws in ``resample``'s
    output."""
    return f"{target_id}|survival_at_published"


def judge(targets: Sequence[Target], draws: Mapping[str, np.ndarray]) -> list[Result]:
    results = []
    for t in targets:
        v = draws[t.id]
        finite = v[np.isfinite(v)]
        undefined = int(len(v) - len(finite))
        common = (t.id, t.study, t.label, t.counted, t.fitted, t.approx, t.statistic, t.value, t.ci)
        if len(finite) < max(10, 0.5 * len(v)):
            note = "the statistic could not be formed in most simulated cohorts"
            inside = False if t.counted else None
            results.append(Result(*common, None, None, None, None, None, inside, undefined, note))
            continue
        # a median not reached is +inf: it stays in the quantiles but not in the mean
        lo, hi = (float(x) for x in np.quantile(v, [0.025, 0.975]))
        mean = float(finite.mean())
        sd_sim = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
        r = t.rounding
        sd = math.hypot(sd_sim, r)
        z = (t.value - mean) / sd if sd > 0 else (0.0 if t.value == mean else math.inf)
        inside = (lo - r) <= t.value <= (hi + r)
        s_mean = s_lo = s_hi = None
        sv = draws.get(survival_key(t.id))
        if sv is not None and np.isfinite(sv).any():
            sv = sv[np.isfinite(sv)]
            s_mean = float(sv.mean())
            s_lo, s_hi = (float(x) for x in np.quantile(sv, [0.025, 0.975]))
        results.append(
            Result(*common, mean, lo, hi, sd, z, inside, undefined, t.note, s_mean, s_lo, s_hi)
        )
    return results


def verdict(results: Sequence[Result]) -> dict:
    counted = [r for r in results if r.counted]
    inside = [r for r in counted if r.inside]
    big = [r for r in counted if r.z is None or not math.isfinite(r.z) or abs(r.z) > Z_LIMIT]
    anchor = {r.id: bool(r.inside) for r in results if r.id in ANCHOR_REQUIRED}
    share = len(inside) / len(counted) if counted else math.nan
    return {
        "counted": len(counted),
        "inside": len(inside),
        "pass_rate": share,
        "beyond_z_limit": [r.id for r in big],
        "anchor_inside": anchor,
        "passed": bool(
            counted
            and share >= PASS_SHARE
            and not big
            and len(anchor) == len(ANCHOR_REQUIRED)
            and all(anchor.values())
        ),
        "rules": {
            "pass_share": PASS_SHARE,
            "z_limit": Z_LIMIT,
            "anchor_required": list(ANCHOR_REQUIRED),
        },
    }


def as_dicts(results: Sequence[Result]) -> list[dict]:
    out = []
    for r in results:
        d = asdict(r)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None if math.isnan(v) else ("inf" if v > 0 else "-inf")
        out.append(d)
    return out
