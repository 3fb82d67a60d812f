"""Randomisation and accrual of trial designs.

**Arms and allocation.** A randomised scenario names two or more arms, each with its treatment
sequence and an integer allocation weight (1:1, 2:1, ...). Patients are allocated by permuted
blocks within strata: each block holds ``block_multiple x sum(weights)`` patients, arm ``a``
appearing ``block_multiple x weight_a`` times in a random order. The order of block ``k`` of
stratum ``s`` comes from its own stream, keyed by (replicate, stratum code, block), so a
patient's arm depends only on the replicate, its stratum and how many earlier patients (lower
index) fell in that stratum, never on the sample size: the first n patients of a replicate are
the same trial at every n (nested sample sizes). Without stratification every patient is in one
stratum.

**Strata** are combinations of baseline factors (:data:`FACTORS`), each with two or more fixed
levels, coded in mixed radix so that the code of a combination never depends on which ones
occur.

**Accrual.** Entry times come from a unit-rate Poisson process per replicate
(``engine.entry_days``). With a ramp-up of ``R`` months the accrual rate rises linearly from 0 to
its full value ``r`` per month over ``R`` months: the expected number accrued by month ``t`` is
``r t^2 / (2R)`` up to ``R`` and ``r (t - R/2)`` after, and the unit-rate times are mapped
through the inverse of that function, which keeps entry times a function of the patient index
alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from hccsim.simulator.streams import Purpose, replicate_stream

DAYS_PER_MONTH = 30.4375


def _levels(values, cut: Callable) -> np.ndarray:
    return np.asarray([cut(v) for v in values], dtype=np.int64)


#: Stratification factors: name -> (level labels, function of the baseline columns giving each
#: patient's level index).
FACTORS: dict[str, tuple[tuple[str, ...], Callable[[Mapping], np.ndarray]]] = {
    "ecog": (("ECOG 0", "ECOG >= 1"), lambda b: (np.asarray(b["ecog"]) >= 1).astype(np.int64)),
    "afp_ge_400": (
        ("AFP < 400", "AFP >= 400"),
        lambda b: (np.asarray(b["afp_ng_ml"], dtype=float) >= 400).astype(np.int64),
    ),
    "child_pugh": (
        ("Child-Pugh A", "Child-Pugh B-C"),
        lambda b: (np.asarray(b["child_pugh_score"], dtype=float) >= 7).astype(np.int64),
    ),
    "mvi_or_ehm": (
        ("no MVI or EHM", "MVI or EHM"),
        lambda b: (np.asarray(b["mvi"], dtype=bool) | np.asarray(b["ehm"], dtype=bool)).astype(
            np.int64
        ),
    ),
    "bclc": (
        ("BCLC 0-B", "BCLC C-D"),
        lambda b: np.isin(np.asarray(b["bclc"], dtype=object), ["C", "D"]).astype(np.int64),
    ),
    "line": (
        ("line 1-2", "line >= 3"),
        lambda b: (np.asarray(b["index_line"]) >= 3).astype(np.int64),
    ),
    "age_ge_65": (
        ("age < 65", "age >= 65"),
        lambda b: (np.asarray(b["age"], dtype=float) >= 65).astype(np.int64),
    ),
}


def strata(baseline: Mapping, factors: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Each patient's stratum: ``(codes, labels)`` from the baseline columns."""
    n = len(next(iter(baseline.values()))) if baseline else 0
    code = np.zeros(n, dtype=np.int64)
    parts: list[list[str]] = [[] for _ in range(n)]
    for name in factors:
        levels, level_of = FACTORS[name]
        lv = level_of(baseline)
        code = code * len(levels) + lv
        for i, j in enumerate(lv.tolist()):
            parts[i].append(levels[j])
    labels = ["; ".join(p) if p else "all" for p in parts]
    return code, labels


def allocate(
    root: int,
    replicate: int,
    codes: np.ndarray,
    weights: Sequence[int],
    block_multiple: int = 1,
) -> np.ndarray:
    """The arm (index into ``weights``) of each patient, in patient order, by permuted blocks
    within strata (module docstring)."""
    block = np.repeat(np.arange(len(weights)), [w * block_multiple for w in weights])
    size = len(block)
    seen: dict[int, int] = {}
    cache: dict[tuple[int, int], np.ndarray] = {}
    out = np.empty(len(codes), dtype=np.int64)
    for i, c in enumerate(codes.tolist()):
        k = seen.get(c, 0)
        seen[c] = k + 1
        key = (c, k // size)
        if key not in cache:
            gen = replicate_stream(root, replicate, Purpose.ALLOCATION, c, k // size)
            cache[key] = gen.permutation(block)
        out[i] = cache[key][k % size]
    return out


def ramp_up_months(unit_times: np.ndarray, rate_per_month: float, ramp_months: float) -> np.ndarray:
    """Calendar months of entry for unit-rate Poisson times (expected patients accrued), under a
    rate rising linearly over ``ramp_months`` to ``rate_per_month`` (module docstring)."""
    s = np.asarray(unit_times, dtype=float)
    if not ramp_months:
        return s / rate_per_month
    knee = rate_per_month * ramp_months / 2.0
    early = np.sqrt(2.0 * ramp_months * np.minimum(s, knee) / rate_per_month)
    return np.where(s <= knee, early, ramp_months + (s - knee) / rate_per_month)


def expected_accrual_months(n: int, rate_per_month: float, ramp_months: float = 0.0) -> float:
    """Months until ``n`` patients are expected to have entered (for reports)."""
    return float(ramp_up_months(np.array([float(n)]), rate_per_month, ramp_months)[0])
