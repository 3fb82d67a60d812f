"""Per-visit tumour response by RECIST 1.1 and mRECIST.

One function, :func:`visit_response`, reads one imaging visit. The simulator's physician calls
it at every scan (so a simulated line ends on exactly the rule an analyst would apply), and the
analysis applies it to the ``assessments`` table of a real or simulated cohort.

RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228), target lesions:

- CR: all target lesions gone (sum 0; lymph nodes below 10 mm short axis count as gone);
- PR: sum at least 30% below the baseline sum;
- PD: sum at least 20% above the nadir (the smallest sum on study, baseline included) *and* at
  least 5 mm above it;
- SD: neither; NE: a target lesion was not assessed.

mRECIST (Lencioni & Llovet, Semin Liver Dis 2010;30:52) applies the same thresholds to the sum
of the longest *viable* (arterially enhancing) diameters of the targets, without the 5 mm rule;
CR is the disappearance of intratumoral arterial enhancement in all targets.

Overall response combines the target response with the non-target status and new lesions as in
RECIST 1.1 Table 1: new lesions or unequivocal non-target progression make PD; a target CR with
non-target disease still present (or not evaluated) is PR; a non-target NE turns a target CR
into PR and leaves PR and SD as they are. Patients without target lesions (non-measurable
disease only) are read from the non-target status alone (Table 2): CR, non-CR/non-PD (reported
as SD), PD or NE.
"""

from __future__ import annotations

import math
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
#: Sums are decimal millimetres held in binary floating point, so a change exactly on a
#: threshold (63 mm from a 90 mm baseline: -30%; 3.7 mm to 8.7 mm: +5 mm) can come out a
#: rounding error short of it. Comparisons with the thresholds allow this much (mm), far below
#: the resolution of any reading.
_TOL_MM = 1e-9


def target_response(
    sum_now: float, sum_baseline: float, sum_nadir: float, criterion: Criterion = "recist1.1"
) -> str:
    """Response of the target lesions alone: CR, PR, SD, PD or NE (sums in mm)."""
    if math.isnan(sum_now):
        return "NE"
    rise = sum_now - sum_nadir
    absolute_ok = criterion == "mrecist" or rise >= PD_ABSOLUTE_MM - _TOL_MM
    if rise > 0 and rise >= PD_RISE * sum_nadir - _TOL_MM and absolute_ok:
        return "PD"
    if sum_now == 0.0:
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
) -> str:
    """Overall response at one visit (CR, PR, SD, PD or NE).

    ``sum_baseline`` is 0 when the patient has no target lesions under ``criterion``; then
    the visit is read from ``nontarget`` and ``new_lesions`` alone. ``sum_now`` is NaN when a
    target lesion was not assessed.
    """
    if nontarget not in NONTARGET:
        raise ValueError(f"nontarget {nontarget!r} is not one of {', '.join(NONTARGET)}")
    if new_lesions or nontarget == "PD":
        return "PD"
    if sum_baseline <= 0.0:
        return {"CR": "CR", "non-CR/non-PD": "SD", "NE": "NE", "absent": "NE"}[nontarget]
    target = target_response(sum_now, sum_baseline, sum_nadir, criterion)
    if target == "CR":
        return "CR" if nontarget in ("absent", "CR") else "PR"
    return target
