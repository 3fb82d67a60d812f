"""Tumour response by RECIST 1.1 and mRECIST: per visit, and best overall response.

One per-visit function, :func:`visit_response`, reads one imaging visit. The simulator's
physician calls it at every scan (so a simulated line ends on exactly the rule an analyst would
apply), and the analysis applies it to real or simulated assessments. :func:`best_overall_response`
reads a patient's sequence of visits.

**RECIST 1.1** (Eisenhauer et al., Eur J Cancer 2009;45:228). Target lesions (at most five, two
per organ) are measurable lesions: longest diameter >= 10 mm, lymph nodes by their *short axis*
>= 15 mm; nodes of 10-15 mm are pathological non-targets, nodes below 10 mm are normal. The sum
includes the nodes' short axes.

- CR: every non-nodal target gone and every nodal target below 10 mm short axis (the sum need
  not be 0 when nodes remain);
- PR: sum at least 30% below the baseline sum;
- PD: sum at least 20% above the nadir (the smallest sum on study, baseline included) *and* at
  least 5 mm above it;
- SD: neither; NE: a target lesion was not assessed (sum NaN).

Overall response (RECIST 1.1 Table 1): new lesions or unequivocal non-target progression make
PD; a target CR with non-target disease present or not evaluated is PR; a non-target NE leaves
PR and SD as they are. Without target lesions (non-measurable disease only, Table 2) the visit
is read from the non-target status: CR, non-CR/non-PD (reported as SD), PD or NE.

**mRECIST for HCC** (Lencioni & Llovet, Semin Liver Dis 2010;30:52). The same thresholds on the
sum of the longest *viable* (arterially enhancing) diameters of typical intrahepatic targets;
extrahepatic targets as in RECIST 1.1 (whole diameter). CR is the disappearance of intratumoral
arterial enhancement in all targets. There is no 5 mm rule; instead, because viable sums can
fall to a few millimetres after necrosis and measurement noise there is large relative to the
sum, the 20% rise is measured against ``max(nadir, MRECIST_NADIR_FLOOR_MM)`` (hccsim's stated
floor, 10 mm: a rise of at least 2 mm). A new lesion counts for PD when it is a typical
(enhancing) intrahepatic nodule of at least 1 cm, or any new extrahepatic lesion. Lesions that
do not enhance (after TACE, say) are not evaluable by mRECIST; a patient without evaluable
targets is read from the non-target status, with NE when nothing is evaluable.

**Best overall response** (RECIST 1.1 section 4.4): the best visit response from the start of
the line until progression, where SD counts only when a visit at least ``sd_min_days`` after
baseline reads SD or better (otherwise the patient is NE, or PD when PD follows); with
``confirm=True``, CR and PR need a later visit, at least ``confirm_min_days`` after, with the
same or a better response (an unconfirmed CR or PR becomes SD if the SD rule is met, and a CR
followed by SD or PD without the SD rule met is PD: the disease came back, RECIST 1.1 Table 3).
A lesion reappearing after a CR is read by the per-visit rules (RECIST 1.1 needs the 5 mm rise);
the EORTC FAQ calls any reappearance after an overall CR progression, which a caller that knows
the previous response can apply.

**Rates** (:func:`response_rates`): from best overall responses, the objective response rate
(ORR: CR or PR) and the disease control rate (DCR: CR, PR or SD) over all patients given (NE
included in the denominator), each with the exact Clopper-Pearson interval
(:func:`clopper_pearson`): for x responders of n at level 1 - alpha, the lower limit is the
alpha/2 quantile of Beta(x, n - x + 1) (0 when x = 0) and the upper the 1 - alpha/2 quantile of
Beta(x + 1, n - x) (1 when x = n).

**Time to response** (:func:`time_to_response`): for a responder (best overall response CR or
PR on the index line, by :func:`best_responses`), the day of the first post-baseline scan of
the index line that reads CR or PR (with confirmation, the first such scan, confirmed or not:
the response is dated from its first documentation).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Criterion = Literal["recist1.1", "mrecist"]
CRITERIA: tuple[Criterion, ...] = ("recist1.1", "mrecist")
RESPONSES = ("CR", "PR", "SD", "PD", "NE")
#: Non-target status values: no non-target lesions at all, complete response, present but not
#: progressing, unequivocal progression, not evaluated.
NONTARGET = ("absent", "CR", "non-CR/non-PD", "PD", "NE")

PR_FALL = 0.30
PD_RISE = 0.20
PD_ABSOLUTE_MM = 5.0
MRECIST_NADIR_FLOOR_MM = 10.0
#: Lymph nodes: measurable (a possible target) from 15 mm short axis, pathological from 10 mm.
NODE_TARGET_MM = 15.0
NODE_NORMAL_MM = 10.0
#: RECIST 1.1: a new lesion must be unequivocal; mRECIST: a typical nodule of at least 1 cm.
MRECIST_NEW_NODULE_MM = 10.0
SD_MIN_DAYS = 42.0
CONFIRM_MIN_DAYS = 28.0
#: Sums are decimal millimetres held in binary floating point, so a change exactly on a
#: threshold (63 mm from a 90 mm baseline: -30%; 3.7 mm to 8.7 mm: +5 mm) can come out a
#: rounding error short of it. Comparisons with the thresholds allow this much (mm), far below
#: the resolution of any reading.
_TOL_MM = 1e-9
_RANK = {"CR": 0, "PR": 1, "SD": 2, "PD": 3, "NE": 4}


def target_response(
    sum_now: float,
    sum_baseline: float,
    sum_nadir: float,
    criterion: Criterion = "recist1.1",
    *,
    resolved: bool | None = None,
) -> str:
    """Response of the target lesions alone: CR, PR, SD, PD or NE (sums in mm).

    ``resolved`` says whether every target has resolved (non-nodal gone, nodal below 10 mm);
    by default it is ``sum_now == 0``.
    """
    if math.isnan(sum_now):
        return "NE"
    rise = sum_now - sum_nadir
    if criterion == "mrecist":
        reference = max(sum_nadir, MRECIST_NADIR_FLOOR_MM)
        absolute_ok = True
    else:
        reference = sum_nadir
        absolute_ok = rise >= PD_ABSOLUTE_MM - _TOL_MM
    if rise > 0 and rise >= PD_RISE * reference - _TOL_MM and absolute_ok:
        return "PD"
    if (sum_now == 0.0) if resolved is None else resolved:
        return "CR"
    if sum_now <= (1.0 - PR_FALL) * sum_baseline + _TOL_MM:
        return "PR"
    return "SD"


def visit_response(
    sum_now: float,
    sum_baseline: float,
    sum_nadir: float,
    *,
    nontarget: str = "absent",
    new_lesions: bool = False,
    criterion: Criterion = "recist1.1",
    resolved: bool | None = None,
) -> str:
    """Overall response at one visit (CR, PR, SD, PD or NE).

    ``sum_baseline`` is 0 when the patient has no target lesions under ``criterion``; then the
    visit is read from ``nontarget`` and ``new_lesions`` alone. ``sum_now`` is NaN when a
    target lesion was not assessed. ``new_lesions`` means new lesions that count under
    ``criterion`` (the caller applies mRECIST's typical-nodule rule).
    """
    if nontarget not in NONTARGET:
        raise ValueError(f"nontarget {nontarget!r} is not one of {', '.join(NONTARGET)}")
    if new_lesions or nontarget == "PD":
        return "PD"
    if sum_baseline <= 0.0:
        return {"CR": "CR", "non-CR/non-PD": "SD", "NE": "NE", "absent": "NE"}[nontarget]
    target = target_response(sum_now, sum_baseline, sum_nadir, criterion, resolved=resolved)
    if target == "CR":
        return "CR" if nontarget in ("absent", "CR") else "PR"
    return target


def best_overall_response(
    days: Sequence[float],
    responses: Sequence[str | None],
    *,
    sd_min_days: float = SD_MIN_DAYS,
    confirm: bool = False,
    confirm_min_days: float = CONFIRM_MIN_DAYS,
) -> str:
    """Best overall response of one line from its visits after baseline, in time order.

    ``days`` count from the line's start (the baseline scan); ``responses`` are visit
    responses (None or NE for visits not evaluated). Visits after the first PD are ignored.
    """
    if len(days) != len(responses):
        raise ValueError("days and responses must have the same length")
    visits: list[tuple[float, str]] = []
    for d, r in zip(days, responses, strict=True):
        r = "NE" if r is None else r
        if r not in _RANK:
            raise ValueError(f"response {r!r} is not one of {', '.join(RESPONSES)}")
        visits.append((float(d), r))
        if r == "PD":
            break
    best = "NE"
    sd_ok = False
    reappeared = False  # disease seen again after an unconfirmed CR (RECIST 1.1 Table 3)
    for i, (day, r) in enumerate(visits):
        if r in ("CR", "PR"):
            if confirm:
                later = [s for d2, s in visits[i + 1 :] if d2 - day >= confirm_min_days - _TOL_MM]
                confirmed = any(_RANK[s] <= _RANK[r] for s in later) if r == "PR" else "CR" in later
                if not confirmed and r == "CR" and any(s == "PR" for s in later):
                    r, confirmed = "PR", True  # a CR followed by PR confirms a PR
                if not confirmed:
                    if r == "CR" and any(s in ("PR", "SD", "PD") for _, s in visits[i + 1 :]):
                        reappeared = True
                    r = "SD"
            if r != "SD" and _RANK[r] < _RANK[best]:
                best = r
        if r in ("CR", "PR", "SD") and day >= sd_min_days - _TOL_MM:
            sd_ok = True
    if best in ("CR", "PR"):
        return best
    if sd_ok:
        return "SD"
    if reappeared or any(r == "PD" for _, r in visits):
        return "PD"
    return "NE"


def _by_patient(frame, order_cols):
    """Row indices of each (replicate, patient) group, rows in ``order_cols`` order."""
    import numpy as np

    rep = np.asarray(frame["replicate"], dtype=np.int64)
    pid = np.asarray(frame["patient_id"], dtype=np.int64)
    keys = [np.asarray(frame[c]) for c in reversed(order_cols)] + [pid, rep]
    order = np.lexsort(keys)
    k = rep[order] * (1 << 32) + pid[order]
    cuts = np.flatnonzero(np.diff(k)) + 1
    return k, order, cuts


def best_responses(
    tables,
    criterion: Criterion = "recist1.1",
    *,
    sd_min_days: float = SD_MIN_DAYS,
    confirm: bool = False,
):
    """Best overall response of every patient's index line, in patients-table order.

    Visits are the index line's assessments after its baseline scan, with days counted from
    the line's start (day 0). Patients without any such visit are NE.
    """
    import numpy as np

    from hccsim.analysis.schema import as_columns

    pt, a = as_columns(tables["patients"]), as_columns(tables["assessments"])
    pkey = np.asarray(pt["replicate"], dtype=np.int64) * (1 << 32) + np.asarray(
        pt["patient_id"], dtype=np.int64
    )
    out = np.full(len(pkey), "NE", dtype=object)
    if not len(a["patient_id"]):
        return out
    index_line = dict(zip(pkey.tolist(), np.asarray(pt["index_line"]).tolist(), strict=True))
    col = "response_recist" if criterion == "recist1.1" else "response_mrecist"
    keep = ~np.asarray(a["baseline"], dtype=bool)
    akey = np.asarray(a["replicate"], dtype=np.int64) * (1 << 32) + np.asarray(
        a["patient_id"], dtype=np.int64
    )
    line = np.asarray(a["line"], dtype=np.int64)
    keep &= line == np.array([index_line.get(k, -1) for k in akey.tolist()])
    sub = {c: np.asarray(a[c])[keep] for c in ("replicate", "patient_id", "day", col)}
    if not len(sub["day"]):
        return out
    k, order, cuts = _by_patient(sub, ["day"])
    days, resp = sub["day"][order], sub[col][order]
    row = {kk: i for i, kk in enumerate(pkey.tolist())}
    for s, e in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(k)]]), strict=True):
        out[row[int(k[s])]] = best_overall_response(
            days[s:e].tolist(), resp[s:e].tolist(), sd_min_days=sd_min_days, confirm=confirm
        )
    return out


def afp_response(tables, *, window_days: tuple[float, float] = (42.0, 56.0), fall: float = 0.20):
    """AFP response of every patient (patients-table order): True when an AFP measured within
    ``window_days`` of the index start (weeks 6-8) is at least ``fall`` below the baseline AFP
    (the last measurement on or before day 0); None when either is missing or the baseline is
    not positive."""
    import numpy as np

    from hccsim.analysis.schema import as_columns

    pt, lab = as_columns(tables["patients"]), as_columns(tables["labs"])
    pkey = np.asarray(pt["replicate"], dtype=np.int64) * (1 << 32) + np.asarray(
        pt["patient_id"], dtype=np.int64
    )
    out = np.full(len(pkey), None, dtype=object)
    day = np.asarray(lab["day"], dtype=float)
    afp = np.asarray(lab["afp_ng_ml"], dtype=float)
    lkey = np.asarray(lab["replicate"], dtype=np.int64) * (1 << 32) + np.asarray(
        lab["patient_id"], dtype=np.int64
    )
    ok = np.isfinite(afp)
    base, late = {}, {}
    for key, d, v in zip(lkey[ok].tolist(), day[ok].tolist(), afp[ok].tolist(), strict=True):
        if d <= 0.0 and (key not in base or d >= base[key][0]):
            base[key] = (d, v)
        if window_days[0] <= d <= window_days[1]:
            late[key] = min(late.get(key, np.inf), v)
    for i, key in enumerate(pkey.tolist()):
        if key in base and key in late and base[key][1] > 0:
            out[i] = late[key] <= (1.0 - fall) * base[key][1]
    return out


def time_to_response(tables, criterion: Criterion = "recist1.1", *, confirm: bool = False):
    """Time to response (module docstring), in patients-table order: the day of the first
    index-line scan reading CR or PR for responders, NaN for everyone else. ``confirm`` is
    passed to :func:`best_responses`."""
    import numpy as np

    from hccsim.analysis.schema import as_columns

    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be 'recist1.1' or 'mrecist', not {criterion!r}")
    bor = best_responses(tables, criterion, confirm=confirm)
    pt, a = as_columns(tables["patients"]), as_columns(tables["assessments"])
    out = np.full(len(bor), np.nan)
    if not len(a["patient_id"]) or not len(bor):
        return out
    pkey = np.asarray(pt["replicate"], dtype=np.int64) * (1 << 32) + np.asarray(
        pt["patient_id"], dtype=np.int64
    )
    row_of = {k: i for i, k in enumerate(pkey.tolist())}
    akey = np.asarray(a["replicate"], dtype=np.int64) * (1 << 32) + np.asarray(
        a["patient_id"], dtype=np.int64
    )
    row = np.array([row_of.get(k, -1) for k in akey.tolist()], dtype=np.intp)
    index_line = np.asarray(pt["index_line"], dtype=np.int64)
    resp = np.asarray(a["response_recist" if criterion == "recist1.1" else "response_mrecist"])
    hit = (
        (row >= 0)
        & ~np.asarray(a["baseline"], dtype=bool)
        & (np.asarray(a["line"], dtype=np.int64) == index_line[np.maximum(row, 0)])
        & np.isin(resp.astype(object), np.array(["CR", "PR"], dtype=object))
    )
    first = np.full(len(bor), np.inf)
    np.minimum.at(first, row[hit], np.asarray(a["day"], dtype=float)[hit])
    responder = np.isin(bor, np.array(["CR", "PR"], dtype=object))
    out[responder] = first[responder]
    return out


@dataclass(frozen=True)
class Rate:
    """A proportion with its exact (Clopper-Pearson) confidence interval at ``1 - alpha``."""

    count: int
    n: int
    proportion: float
    ci_low: float
    ci_high: float
    alpha: float


@dataclass(frozen=True)
class ResponseRule:
    """How a line's best overall response is read (module docstring): stable disease counts
    from ``sd_min_days`` after the start of the line (the protocol's minimum interval, RECIST
    1.1 "in general not less than 6-8 weeks"; 0: any visit after baseline), and with
    ``confirm`` a CR or PR needs a later visit at least ``CONFIRM_MIN_DAYS`` after it with the
    same or a better response (RECIST 1.1: required where response is the primary endpoint of
    a non-randomised trial; many randomised trials also report confirmed responses)."""

    sd_min_days: float = SD_MIN_DAYS
    confirm: bool = False

    def __post_init__(self) -> None:
        v = self.sd_min_days
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v < math.inf:
            raise ValueError(
                "sd_min_days must be a number of days >= 0 (the minimum time after the start "
                f"of the line at which stable disease counts, for example 42); got {v!r}"
            )
        if not isinstance(self.confirm, bool):
            raise ValueError(f"confirm must be True or False; got {self.confirm!r}")
        object.__setattr__(self, "sd_min_days", float(v) + 0.0)  # -0 reads as 0

    def describe(self) -> str:
        """The rule in words, for table notes and report provenance."""
        conf = (
            f"CR/PR confirmed at least {CONFIRM_MIN_DAYS:g} days later"
            if self.confirm
            else "no confirmation"
        )
        return f"SD at least {self.sd_min_days:g} days after its start; {conf}"

    def best(self, tables, criterion: Criterion):
        """:func:`best_responses` of ``tables`` under this rule."""
        return best_responses(tables, criterion, sd_min_days=self.sd_min_days, confirm=self.confirm)


def as_response_rule(rule) -> ResponseRule:
    """``rule`` itself, or the default rule for None; anything else is refused."""
    if rule is None:
        return ResponseRule()
    if not isinstance(rule, ResponseRule):
        raise ValueError(f"response_rule must be a ResponseRule (or None); got {rule!r}")
    return rule


def _check_alpha(alpha) -> float:
    a = float(alpha) if isinstance(alpha, numbers.Real) else math.nan
    if not 0.0 < a < 1.0:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), not {alpha!r}")
    return a


def _whole(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return float(value).is_integer()


def clopper_pearson(count: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Exact two-sided ``1 - alpha`` interval for a binomial proportion of ``count`` in ``n``
    (module docstring); (NaN, NaN) when ``n`` is 0."""
    from scipy.stats import beta

    a = _check_alpha(alpha)
    if not _whole(n) or n < 0:
        raise ValueError(f"n must be a whole number >= 0, not {n!r}")
    if not _whole(count) or not 0 <= count <= n:
        raise ValueError(f"count must be a whole number from 0 to n ({n}), not {count!r}")
    x, n = int(count), int(n)
    if n == 0:
        return math.nan, math.nan
    low = 0.0 if x == 0 else float(beta.ppf(a / 2.0, x, n - x + 1))
    high = 1.0 if x == n else float(beta.ppf(1.0 - a / 2.0, x + 1, n - x))
    return low, high


def response_rates(bor, *, alpha: float = 0.05) -> dict[str, Rate]:
    """ORR and DCR (keys "orr", "dcr") from best overall responses (module docstring).

    ``bor``: one response per patient, each one of CR, PR, SD, PD, NE. With no patients the
    proportions and limits are NaN.
    """
    import numpy as np

    a = _check_alpha(alpha)
    values = np.asarray(bor, dtype=object)
    if values.ndim != 1:
        raise ValueError(f"bor must be a 1-d sequence of responses, not of shape {values.shape}")
    bad = ~np.isin(values, np.array(RESPONSES, dtype=object))
    if bad.any():
        raise ValueError(
            f"bor holds {values[bad][0]!r}, which is not one of {', '.join(RESPONSES)}"
        )
    n = len(values)
    out = {}
    for name, members in (("orr", ("CR", "PR")), ("dcr", ("CR", "PR", "SD"))):
        x = int(np.count_nonzero(np.isin(values, np.array(members, dtype=object))))
        low, high = clopper_pearson(x, n, alpha=a)
        out[name] = Rate(x, n, x / n if n else math.nan, low, high, a)
    return out
