"""CTCAE v5.0 grades of the laboratory-based adverse-event terms, and the treatment-emergent lab
adverse events of each line (DESIGN section 3, "Adverse events").

Source: National Cancer Institute, Common Terminology Criteria for Adverse Events (CTCAE)
Version 5.0, US Department of Health and Human Services, 27 November 2017. Each grade function
quotes the definition it implements. Grade 0 means no adverse event.

**Boundaries.** CTCAE writes ranges as "lower - upper" with the comparison on the first value:
">" for increases ("Grade 2: >1.5 - 3.0 x ULN": above 1.5 x ULN, up to and including 3.0 x
ULN, so exactly 1.5 x ULN is still grade 1) and "<" for decreases ("Grade 2: <75.0 - 50.0 x
10e9/L": below 75, down to and including 50, so exactly 75 is still grade 1). Proteinuria is
written with ">=" and "<" ("1.0 - <3.5 g/24 hrs": exactly 1.0 is grade 2). Where CTCAE writes a
range without a sign, the bound is inclusive: AST and ALT, "1.5 - 3.0 x baseline if baseline
was abnormal", make exactly 1.5 x baseline grade 1. Limits are decimal numbers held in binary
floating point (1.5 x 1.2 mg/dL is 1.7999999999999998), so every comparison with a limit allows
a relative rounding error of ``_REL_TOL`` (1e-9), far below the resolution of any laboratory
value: 1.8 mg/dL against a ULN of 1.2 mg/dL is exactly 1.5 x ULN, grade 1.

**Baseline.** For the terms whose definition depends on the baseline (bilirubin, AST, ALT and
hccsim's ammonia convention), a baseline at or below the ULN is "normal" and the grade is read
in multiples of the ULN; a baseline above the ULN is "abnormal" and the grade is read in
multiples of the baseline. A missing baseline (None or NaN) is read as normal.

**Missing values.** A missing value (NaN) has grade 0; whether a value was measured is the
caller's business (``np.isnan``).

**Reference ranges** are typical adult values, held in :class:`ReferenceRanges`; a laboratory's
own ranges can be passed in. Haemoglobin has one lower limit for both sexes (12.0 g/dL, the
usual lower limit for women; men's is about 13.5 g/dL), so mild anaemia in men between the two
limits is not counted.

**Treatment-emergent events** (:func:`treatment_emergent_events`). Cirrhotic patients start
with low albumin and platelets, so a lab value counts only when it is worse than the patient's
baseline (DESIGN section 3). For each line and term:

- the baseline is the last measurement on or before the line's start day (it may have been
  taken during an earlier line); a patient with no such measurement takes the first
  measurement during the line as the baseline, and that visit is not graded;
- the visits of the line are the measurements with ``start_day < day <= end_day``; a visit's
  event grade is its grade when that is above the baseline's grade, else 0. For the
  baseline-dependent terms the grade is read against the baseline value itself, so the
  baseline's own grade is 0 and every graded visit is an event;
- an episode starts at the first visit with event grade >= 1 and ends at the next visit with
  event grade 0 (``end_day`` is that visit's day) or, when there is none, at the line's last
  visit for the term; it is one row with its maximum grade. A line may have several episodes of
  one term;
- a missing value (NaN) is no visit for that term.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from hccsim.analysis.frames import patient_keys
from hccsim.analysis.schema import TABLES, as_columns

# -- reference ranges: typical adult values; a laboratory's own can be passed in ---------------

#: Serum albumin, lower limit of normal (g/dL).
ALBUMIN_LLN_G_DL = 3.5
#: Total bilirubin, upper limit of normal (mg/dL).
BILIRUBIN_ULN_MG_DL = 1.2
#: Aspartate aminotransferase, upper limit of normal (U/L).
AST_ULN_U_L = 40.0
#: Alanine aminotransferase, upper limit of normal (U/L).
ALT_ULN_U_L = 40.0
#: Platelet count, lower limit of normal (10^9/L).
PLATELETS_LLN_10E9_L = 150.0
#: Haemoglobin, lower limit of normal (g/dL): one value for both sexes (women's usual limit).
HAEMOGLOBIN_LLN_G_DL = 12.0
#: Blood ammonia, upper limit of normal (µmol/L).
AMMONIA_ULN_UMOL_L = 60.0
#: Urine protein, upper limit of normal (g/24 h).
URINE_PROTEIN_ULN_G_24H = 0.15

#: Relative rounding error allowed in comparisons with a limit (see the module docstring).
_REL_TOL = 1e-9


@dataclass(frozen=True)
class ReferenceRanges:
    """Limits of normal used for grading; the defaults are typical adult values.

    The fixed CTCAE limits below the LLN (albumin 3 g/dL, platelets 75 x 10^9/L, haemoglobin
    10.0 g/dL) and above the ULN (urine protein 1.0 g/24 h) assume the limit of normal lies on
    the other side of them; a range that does not is refused.
    """

    albumin_lln_g_dl: float = ALBUMIN_LLN_G_DL
    bilirubin_uln_mg_dl: float = BILIRUBIN_ULN_MG_DL
    ast_uln_u_l: float = AST_ULN_U_L
    alt_uln_u_l: float = ALT_ULN_U_L
    platelets_lln_10e9_l: float = PLATELETS_LLN_10E9_L
    haemoglobin_lln_g_dl: float = HAEMOGLOBIN_LLN_G_DL
    ammonia_uln_umol_l: float = AMMONIA_ULN_UMOL_L
    urine_protein_uln_g_24h: float = URINE_PROTEIN_ULN_G_24H

    def __post_init__(self) -> None:
        checks = (
            ("albumin_lln_g_dl", self.albumin_lln_g_dl > 3.0, "above 3 g/dL"),
            ("bilirubin_uln_mg_dl", self.bilirubin_uln_mg_dl > 0, "positive"),
            ("ast_uln_u_l", self.ast_uln_u_l > 0, "positive"),
            ("alt_uln_u_l", self.alt_uln_u_l > 0, "positive"),
            ("platelets_lln_10e9_l", self.platelets_lln_10e9_l > 75.0, "above 75 x 10^9/L"),
            ("haemoglobin_lln_g_dl", self.haemoglobin_lln_g_dl > 10.0, "above 10.0 g/dL"),
            ("ammonia_uln_umol_l", self.ammonia_uln_umol_l > 0, "positive"),
            (
                "urine_protein_uln_g_24h",
                0 < self.urine_protein_uln_g_24h < 1.0,
                "positive and below 1.0 g/24 h",
            ),
        )
        bad = [f"{name} must be {what}" for name, ok, what in checks if not ok]
        if bad:
            raise ValueError("; ".join(bad))


DEFAULT_RANGES = ReferenceRanges()


# -- comparisons with limits -------------------------------------------------------------------


def _values(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _above(x: np.ndarray, limit) -> np.ndarray:
    """``x > limit`` beyond rounding error (NaN: False)."""
    return x > limit + _REL_TOL * np.abs(limit)


def _at_least(x: np.ndarray, limit) -> np.ndarray:
    """``x >= limit`` up to rounding error (NaN: False)."""
    return x >= limit - _REL_TOL * np.abs(limit)


def _below(x: np.ndarray, limit) -> np.ndarray:
    """``x < limit`` beyond rounding error (NaN: False)."""
    return x < limit - _REL_TOL * np.abs(limit)


def _count(crossed: Iterable[np.ndarray]) -> np.ndarray:
    """The grade: how many of the increasingly severe limits a value has crossed.

    The limits of each term are monotone (a value past grade k's limit is past grade k-1's), so
    the count is the highest grade whose condition holds.
    """
    return np.sum(np.broadcast_arrays(*crossed), axis=0).astype(np.int64)


def _rise_grade(value, baseline, uln: float, normal: tuple, abnormal: tuple) -> np.ndarray:
    """Grade of an increase read in multiples of the ULN (baseline normal) or of the baseline
    (baseline above the ULN). ``normal`` and ``abnormal`` list, from grade 1 up, the multiple
    and whether the limit itself is included (">=") or not (">")."""
    x = _values(value)
    b = _values(np.nan if baseline is None else baseline)
    abnormal_baseline = _above(b, uln)  # NaN baseline: normal
    crossed = []
    for (mult_n, incl_n), (mult_a, incl_a) in zip(normal, abnormal, strict=True):
        on_uln = (_at_least if incl_n else _above)(x, mult_n * uln)
        on_base = (_at_least if incl_a else _above)(x, mult_a * b)
        crossed.append(np.where(abnormal_baseline, on_base, on_uln))
    return _count(crossed)


# -- grade functions ---------------------------------------------------------------------------


def hypoalbuminemia(albumin_g_dl, *, ranges: ReferenceRanges = DEFAULT_RANGES) -> np.ndarray:
    """CTCAE v5.0 "Hypoalbuminemia" (Metabolism and nutrition disorders) from serum albumin.

    "Grade 1: <LLN - 3 g/dL; <LLN - 30 g/L. Grade 2: <3 - 2 g/dL; <30 - 20 g/L. Grade 3:
    <2 g/dL; <20 g/L. Grade 4: Life-threatening consequences; urgent intervention indicated.
    Grade 5: Death."

    Exactly 3 g/dL is grade 1, exactly 2 g/dL grade 2. Grades 4 and 5 need a clinical
    consequence and are not graded from a value.
    """
    x = _values(albumin_g_dl)
    return _count((_below(x, ranges.albumin_lln_g_dl), _below(x, 3.0), _below(x, 2.0)))


def blood_bilirubin_increased(
    bilirubin_mg_dl, baseline=None, *, ranges: ReferenceRanges = DEFAULT_RANGES
) -> np.ndarray:
    """CTCAE v5.0 "Blood bilirubin increased" (Investigations) from total bilirubin.

    "Grade 1: >ULN - 1.5 x ULN if baseline was normal; > 1.0 - 1.5 x baseline if baseline was
    abnormal. Grade 2: >1.5 - 3.0 x ULN if baseline was normal; >1.5 - 3.0 x baseline if
    baseline was abnormal. Grade 3: >3.0 - 10.0 x ULN if baseline was normal; >3.0 - 10.0 x
    baseline if baseline was abnormal. Grade 4: >10.0 x ULN if baseline was normal; >10.0 x
    baseline if baseline was abnormal."

    Exactly 1.5 x ULN is grade 1. ``baseline`` (mg/dL) above the ULN is abnormal; None or NaN
    reads as normal.
    """
    return _rise_grade(
        bilirubin_mg_dl,
        baseline,
        ranges.bilirubin_uln_mg_dl,
        normal=((1.0, False), (1.5, False), (3.0, False), (10.0, False)),
        abnormal=((1.0, False), (1.5, False), (3.0, False), (10.0, False)),
    )


#: AST and ALT: multiples from grade 1 up and whether the limit itself is included. CTCAE v5.0
#: writes grade 1 with an abnormal baseline without a sign ("1.5 - 3.0 x baseline"): inclusive.
_AMINOTRANSFERASE_NORMAL = ((1.0, False), (3.0, False), (5.0, False), (20.0, False))
_AMINOTRANSFERASE_ABNORMAL = ((1.5, True), (3.0, False), (5.0, False), (20.0, False))


def ast_increased(
    ast_u_l, baseline=None, *, ranges: ReferenceRanges = DEFAULT_RANGES
) -> np.ndarray:
    """CTCAE v5.0 "Aspartate aminotransferase increased" (Investigations) from AST.

    "Grade 1: >ULN - 3.0 x ULN if baseline was normal; 1.5 - 3.0 x baseline if baseline was
    abnormal. Grade 2: >3.0 - 5.0 x ULN if baseline was normal; >3.0 - 5.0 x baseline if
    baseline was abnormal. Grade 3: >5.0 - 20.0 x ULN if baseline was normal; >5.0 - 20.0 x
    baseline if baseline was abnormal. Grade 4: >20.0 x ULN if baseline was normal; >20.0 x
    baseline if baseline was abnormal."

    Exactly 3.0 x ULN is grade 1. With an abnormal baseline, grade 1 starts *at* 1.5 x baseline
    (CTCAE writes no ">" there) and a rise below 1.5 x baseline is grade 0. ``baseline`` (U/L)
    above the ULN is abnormal; None or NaN reads as normal.
    """
    return _rise_grade(
        ast_u_l,
        baseline,
        ranges.ast_uln_u_l,
        normal=_AMINOTRANSFERASE_NORMAL,
        abnormal=_AMINOTRANSFERASE_ABNORMAL,
    )


def alt_increased(
    alt_u_l, baseline=None, *, ranges: ReferenceRanges = DEFAULT_RANGES
) -> np.ndarray:
    """CTCAE v5.0 "Alanine aminotransferase increased" (Investigations) from ALT.

    "Grade 1: >ULN - 3.0 x ULN if baseline was normal; 1.5 - 3.0 x baseline if baseline was
    abnormal. Grade 2: >3.0 - 5.0 x ULN if baseline was normal; >3.0 - 5.0 x baseline if
    baseline was abnormal. Grade 3: >5.0 - 20.0 x ULN if baseline was normal; >5.0 - 20.0 x
    baseline if baseline was abnormal. Grade 4: >20.0 x ULN if baseline was normal; >20.0 x
    baseline if baseline was abnormal."

    Boundaries as for :func:`ast_increased`.
    """
    return _rise_grade(
        alt_u_l,
        baseline,
        ranges.alt_uln_u_l,
        normal=_AMINOTRANSFERASE_NORMAL,
        abnormal=_AMINOTRANSFERASE_ABNORMAL,
    )


def platelet_count_decreased(
    platelets_10e9_l, *, ranges: ReferenceRanges = DEFAULT_RANGES
) -> np.ndarray:
    """CTCAE v5.0 "Platelet count decreased" (Investigations) from the platelet count.

    "Grade 1: <LLN - 75,000/mm3; <LLN - 75.0 x 10e9 /L. Grade 2: <75,000 - 50,000/mm3; <75.0 -
    50.0 x 10e9 /L. Grade 3: <50,000 - 25,000/mm3; <50.0 - 25.0 x 10e9 /L. Grade 4:
    <25,000/mm3; <25.0 x 10e9 /L."

    Exactly 75 x 10^9/L is grade 1, 50 grade 2, 25 grade 3.
    """
    x = _values(platelets_10e9_l)
    return _count(
        (_below(x, ranges.platelets_lln_10e9_l), _below(x, 75.0), _below(x, 50.0), _below(x, 25.0))
    )


def anemia(haemoglobin_g_dl, *, ranges: ReferenceRanges = DEFAULT_RANGES) -> np.ndarray:
    """CTCAE v5.0 "Anemia" (Blood and lymphatic system disorders) from haemoglobin.

    "Grade 1: Hemoglobin (Hgb) <LLN - 10.0 g/dL; <LLN - 6.2 mmol/L; <LLN - 100 g/L. Grade 2:
    Hgb <10.0 - 8.0 g/dL; <6.2 - 4.9 mmol/L; <100 - 80g/L. Grade 3: Hgb <8.0 g/dL; <4.9 mmol/L;
    <80 g/L; transfusion indicated. Grade 4: Life-threatening consequences; urgent intervention
    indicated. Grade 5: Death."

    Exactly 10.0 g/dL is grade 1, exactly 8.0 g/dL grade 2. Grade 4 needs a clinical
    consequence and is not graded from a value. The LLN is one value for both sexes
    (:data:`HAEMOGLOBIN_LLN_G_DL`).
    """
    x = _values(haemoglobin_g_dl)
    return _count((_below(x, ranges.haemoglobin_lln_g_dl), _below(x, 10.0), _below(x, 8.0)))


def proteinuria(urine_protein_g_24h, *, ranges: ReferenceRanges = DEFAULT_RANGES) -> np.ndarray:
    """CTCAE v5.0 "Proteinuria" (Renal and urinary disorders), adult, from 24-hour urine protein.

    "Grade 1: 1+ proteinuria; urinary protein >=ULN - <1.0 g/24 hrs. Grade 2: Adult: 2+ and 3+
    proteinuria; urinary protein 1.0 - <3.5 g/24 hrs. Grade 3: Adult: Urinary protein
    >=3.5 g/24 hrs; 4+ proteinuria."

    Exactly the ULN is grade 1, exactly 1.0 g/24 h grade 2, exactly 3.5 g/24 h grade 3. The
    dipstick readings and the paediatric criteria (protein/creatinine ratio) are not used;
    CTCAE defines no grade 4 or 5.
    """
    x = _values(urine_protein_g_24h)
    return _count(
        (_at_least(x, ranges.urine_protein_uln_g_24h), _at_least(x, 1.0), _at_least(x, 3.5))
    )


def ammonia_increased(
    ammonia_umol_l, baseline=None, *, ranges: ReferenceRanges = DEFAULT_RANGES
) -> np.ndarray:
    """Blood ammonia increased: an **hccsim convention, not a CTCAE v5.0 definition**.

    CTCAE v5.0 has no ammonia term; the anchor study reported hyperammonaemia, most likely as
    "Investigations - Other, specify", which CTCAE leaves to the investigator. hccsim grades it
    by the pattern of the CTCAE liver-test terms, with the multiples of "Blood bilirubin
    increased" and no grade 4:

    - baseline normal: grade 1 >ULN - 1.5 x ULN; grade 2 >1.5 - 3.0 x ULN; grade 3 >3.0 x ULN;
    - baseline abnormal: grade 1 >1.0 - 1.5 x baseline; grade 2 >1.5 - 3.0 x baseline; grade 3
      >3.0 x baseline.

    Exactly 1.5 x ULN is grade 1. ``baseline`` (µmol/L) above the ULN is abnormal; None or NaN
    reads as normal. Clinical hepatic encephalopathy is a separate CTCAE term and not graded
    here.
    """
    return _rise_grade(
        ammonia_umol_l,
        baseline,
        ranges.ammonia_uln_umol_l,
        normal=((1.0, False), (1.5, False), (3.0, False)),
        abnormal=((1.0, False), (1.5, False), (3.0, False)),
    )


class LabTerm(NamedTuple):
    """A lab-based term: the labs column it is graded from, its grade function and whether the
    grade function takes the baseline value (``grade(values, baseline, ranges=...)``, else
    ``grade(values, ranges=...)``)."""

    column: str
    grade: Callable[..., np.ndarray]
    needs_baseline: bool


#: The lab-based terms (snake_case CTCAE terms, as in the ``adverse_events`` table).
LAB_TERMS: Mapping[str, LabTerm] = {
    "hypoalbuminemia": LabTerm("albumin_g_dl", hypoalbuminemia, False),
    "blood_bilirubin_increased": LabTerm("bilirubin_mg_dl", blood_bilirubin_increased, True),
    "ast_increased": LabTerm("ast_u_l", ast_increased, True),
    "alt_increased": LabTerm("alt_u_l", alt_increased, True),
    "platelet_count_decreased": LabTerm("platelets_10e9_l", platelet_count_decreased, False),
    "anemia": LabTerm("haemoglobin_g_dl", anemia, False),
    "proteinuria": LabTerm("urine_protein_g_24h", proteinuria, False),
    "ammonia_increased": LabTerm("ammonia_umol_l", ammonia_increased, True),
}


def grade_term(
    term: str, values, baseline=None, *, ranges: ReferenceRanges = DEFAULT_RANGES
) -> np.ndarray:
    """Grades of ``values`` under ``term`` (a :data:`LAB_TERMS` name); ``baseline`` is used by
    the baseline-dependent terms and ignored by the others."""
    spec = _term(term)
    if spec.needs_baseline:
        return spec.grade(values, baseline, ranges=ranges)
    return spec.grade(values, ranges=ranges)


def _term(term: str) -> LabTerm:
    if term not in LAB_TERMS:
        raise ValueError(f"unknown lab term {term!r}; known: {', '.join(LAB_TERMS)}")
    return LAB_TERMS[term]


# -- treatment-emergent events -----------------------------------------------------------------

_AE_COLUMNS = tuple(c.name for c in TABLES["adverse_events"])
_AE_DTYPES = {"int64": np.int64, "float64": np.float64, "string": object}


def _empty_events() -> dict[str, np.ndarray]:
    return {c.name: np.empty(0, dtype=_AE_DTYPES[c.dtype]) for c in TABLES["adverse_events"]}


class _Codes(NamedTuple):
    """Measurements and line limits on one integer scale: patient rank x span + day rank."""

    lab: np.ndarray
    start: np.ndarray
    end: np.ndarray
    floor: np.ndarray  # the smallest code of each line's patient


def _codes(lab_key, lab_day, line_key, start, end) -> _Codes:
    """Integer codes that order rows by patient, then by day, exactly.

    Days are replaced by their rank among all the days involved, so replicates, patient ids and
    negative days (prior lines) need no float arithmetic.
    """
    n_lab, n_line = len(lab_key), len(line_key)
    _, patient = np.unique(np.concatenate([lab_key, line_key]), return_inverse=True)
    days, rank = np.unique(np.concatenate([lab_day, start, end]), return_inverse=True)
    span = np.int64(len(days))
    patient = patient.astype(np.int64) * span
    rank = rank.astype(np.int64)
    line_patient = patient[n_lab:]
    return _Codes(
        lab=patient[:n_lab] + rank[:n_lab],
        start=line_patient + rank[n_lab : n_lab + n_line],
        end=line_patient + rank[n_lab + n_line :],
        floor=line_patient,
    )


class _Visits(NamedTuple):
    """The graded visits of every line for one term, lines one after another in day order."""

    line: np.ndarray  # row of the lines table
    position: np.ndarray  # row of the sorted measurements
    baseline: np.ndarray  # baseline value of each line (NaN: none)


def _visits(code: np.ndarray, value: np.ndarray, codes: _Codes) -> _Visits:
    """Each line's baseline and visits among measurements sorted by ``code``.

    The baseline is the last measurement with ``day <= start_day``; the visits are those with
    ``start_day < day <= end_day``. A line without a baseline takes its first visit as the
    baseline, and that visit is not graded.
    """
    last = np.searchsorted(code, codes.start, side="right") - 1
    first = last + 1
    stop = np.maximum(np.searchsorted(code, codes.end, side="right"), first)
    has_base = (last >= 0) & (code[np.maximum(last, 0)] >= codes.floor)
    borrow = ~has_base & (first < stop)  # no baseline: the first visit becomes the baseline
    at = np.where(has_base, last, first)
    baseline = np.where(has_base | borrow, value[np.minimum(at, len(value) - 1)], np.nan)
    first = first + borrow
    counts = stop - first
    line = np.repeat(np.arange(len(counts)), counts)
    offsets = np.cumsum(counts) - counts
    position = first[line] + np.arange(len(line)) - offsets[line]
    return _Visits(line, position, baseline)


def _event_grades(spec: LabTerm, value, baseline, line, ranges) -> np.ndarray:
    """Each visit's grade when it is above its line's baseline grade, else 0."""
    if spec.needs_baseline:
        grade = spec.grade(value, baseline[line], ranges=ranges)
        base_grade = spec.grade(baseline, baseline, ranges=ranges)  # 0 by construction
    else:
        grade = spec.grade(value, ranges=ranges)
        base_grade = spec.grade(baseline, ranges=ranges)
    return np.where(grade > base_grade[line], grade, 0).astype(np.int64)


class _Episodes(NamedTuple):
    line: np.ndarray
    onset_day: np.ndarray
    end_day: np.ndarray
    grade: np.ndarray


def _episodes(event: np.ndarray, line: np.ndarray, day: np.ndarray) -> _Episodes:
    """Runs of visits with event grade >= 1 within each line (visits grouped by line, in day
    order): onset at the run's first visit, end at the next visit (event grade 0) or, when the
    run reaches the line's last visit, at that visit; grade the run's maximum."""
    n = len(event)
    if not n:
        return _Episodes(np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0, np.int64))
    on = event > 0
    new_line = np.ones(n, dtype=bool)
    new_line[1:] = line[1:] != line[:-1]
    last_of_line = np.ones(n, dtype=bool)
    last_of_line[:-1] = new_line[1:]
    before = np.zeros(n, dtype=bool)
    before[1:] = on[:-1]
    after = np.zeros(n, dtype=bool)
    after[:-1] = on[1:]
    starts = np.flatnonzero(on & (new_line | ~before))
    ends = np.flatnonzero(on & (last_of_line | ~after))
    if not len(starts):
        return _Episodes(np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0, np.int64))
    # Between one run's start and the next there are only that run and grade-0 visits.
    grade = np.maximum.reduceat(event, starts)
    end_day = np.where(last_of_line[ends], day[ends], day[np.minimum(ends + 1, n - 1)])
    return _Episodes(line[starts], day[starts], end_day, grade)


def _term_episodes(spec: LabTerm, lab, lab_code, codes: _Codes, ranges) -> _Episodes:
    value = np.asarray(lab[spec.column], dtype=float)
    ok = np.isfinite(value)
    code, value, day = lab_code[ok], value[ok], lab["day"][ok]
    if not len(code):
        return _episodes(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    order = np.lexsort((value, code))  # same-day duplicates: by value, whatever the row order
    code, value, day = code[order], value[order], day[order]
    visits = _visits(code, value, codes)
    event = _event_grades(spec, value[visits.position], visits.baseline, visits.line, ranges)
    return _episodes(event, visits.line, day[visits.position])


def _selected_terms(terms) -> list[str]:
    if terms is None:
        return list(LAB_TERMS)
    names = [terms] if isinstance(terms, str) else list(terms)
    for name in names:
        _term(name)
    return list(dict.fromkeys(names))


def treatment_emergent_events(
    tables: Mapping[str, object],
    *,
    ranges: ReferenceRanges = DEFAULT_RANGES,
    terms: Iterable[str] | None = None,
) -> dict[str, np.ndarray]:
    """The treatment-emergent lab adverse events of every line, as ``adverse_events`` rows.

    Reads the ``labs`` and ``lines`` tables (pyarrow Tables, pandas DataFrames or mappings of
    arrays) and applies the rules of the module docstring to each term of ``terms`` (names of
    :data:`LAB_TERMS`; all by default). Returns a dict of numpy arrays with the columns of the
    ``adverse_events`` table, one row per episode: ``drug`` is the line's regimen, ``action``
    is "none" (the labs do not say what was done with the drug). Rows are sorted by replicate,
    patient, line, onset day and term (in :data:`LAB_TERMS` order), whatever the input order.
    """
    names = _selected_terms(terms)
    lab, ln = as_columns(tables["labs"]), as_columns(tables["lines"])
    if not len(ln["patient_id"]) or not len(lab["patient_id"]) or not names:
        return _empty_events()
    lab_day = np.asarray(lab["day"], dtype=float)
    keep = np.isfinite(lab_day)
    lab = {n: np.asarray(v)[keep] for n, v in lab.items()}
    lab["day"] = lab_day[keep]
    start = np.asarray(ln["start_day"], dtype=float)
    end = np.asarray(ln["end_day"], dtype=float)
    codes = _codes(patient_keys(lab), lab["day"], patient_keys(ln), start, end)
    parts = []
    for t, name in enumerate(names):
        ep = _term_episodes(LAB_TERMS[name], lab, codes.lab, codes, ranges)
        parts.append((np.full(len(ep.line), t, dtype=np.int64), ep))
    term_rank = np.concatenate([t for t, _ in parts])
    row = np.concatenate([ep.line for _, ep in parts])
    onset = np.concatenate([ep.onset_day for _, ep in parts])
    out = {
        "replicate": np.asarray(ln["replicate"], dtype=np.int64)[row],
        "patient_id": np.asarray(ln["patient_id"], dtype=np.int64)[row],
        "line": np.asarray(ln["line"], dtype=np.int64)[row],
        "drug": np.asarray(ln["drug"], dtype=object)[row],
        "term": np.asarray(names, dtype=object)[term_rank],
        "grade": np.concatenate([ep.grade for _, ep in parts]).astype(np.int64),
        "onset_day": onset.astype(np.float64),
        "end_day": np.concatenate([ep.end_day for _, ep in parts]).astype(np.float64),
        "action": np.full(len(row), "none", dtype=object),
    }
    order = np.lexsort((term_rank, onset, out["line"], out["patient_id"], out["replicate"]))
    return {c: out[c][order] for c in _AE_COLUMNS}
