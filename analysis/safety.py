"""Safety of the index line as the anchor study tabulated it (DESIGN section 8): the
adverse-event table by CTCAE term, patients with a grade >= 3 event, dose reductions,
discontinuation for adverse events, and discontinuation by subgroup with Fisher exact tests.

**One replicate.** Every function analyses one replicate. With ``replicate=None`` (the default)
the tables must hold at most one replicate (a real cohort: 0), else a ``ValueError`` asks for
``replicate=``; ``replicate=r`` analyses replicate ``r`` of tables that hold several. Patients
are identified by (replicate, patient_id); rows of ``lines`` and ``adverse_events`` whose
patient is not in ``patients`` are ignored.

**Denominator.** Counts are of patients, and shares and percentages are of *all* the patients of
the ``patients`` table (of that replicate), with or without an adverse event: the anchor study's
"n (%) of 37". A share of no patients is NaN.

**Index line.** The line numbered ``patients.index_line``. An adverse event belongs to the line
on which it began (``adverse_events.line``). ``line="index"`` counts the events of the index
line; ``line=None`` counts those of every line (a patient still counts once).

**Definitions.**

- AE table (:func:`ae_table`): for each CTCAE term, the patients with at least one event of the
  term (any grade) and those whose worst grade of the term is 3 or more (grade 5 included). A
  patient counts once per term, however many events of it they had.
- :func:`grade3plus_patients`: patients with any event of grade >= 3.
- :func:`dose_reduction_patients`: patients whose index line has ``dose_reductions >= 1``.
- :func:`discontinued_for_ae`: patients whose index line ended with ``end_reason ==
  "toxicity"`` (a line ended by death from an adverse event has ``end_reason == "death"``: it is
  not counted, as a published table of discontinuation would not).
- A patient without an index-line row in ``lines`` counts as no dose reduction and no
  discontinuation.

**Subgroups** (:func:`discontinuation_by_subgroup`), the baseline covariates of ``patients``:
age below the cohort median vs at or above it (median of the known ages, numpy's median: the
mean of the two middle values for an even count); ECOG 0 vs >= 1; Child-Pugh class A vs B
(``child_pugh_class``, or the class of ``child_pugh_score`` where the class is missing); BCLC
A or B vs C. Patients whose value is missing, or outside the two groups (Child-Pugh C; BCLC 0
or D), are left out of that factor only and counted in ``n_excluded``. Each factor is a 2 x 2
table (group x discontinued or not) with a two-sided Fisher exact test
(``scipy.stats.fisher_exact``). When one group is empty there is nothing to compare: the
p-value is NaN (shown "NA"), not the 1.0 that the only possible table would give.

The per-patient flags are numpy arrays in patients-table order; they are what a fast
per-replicate summary uses. pandas and scipy are imported only by the functions that return
tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hccsim.analysis import scores
from hccsim.analysis.frames import (
    as_float,
    as_text,
    index_line_rows,
    locate,
    need_columns,
    one_replicate,
)
from hccsim.analysis.schema import as_columns

#: ``end_reason`` of a line stopped for adverse events.
TOXICITY = "toxicity"
#: The lowest grade counted as "grade >= 3".
SEVERE_GRADE = 3
#: Columns of :func:`ae_table`.
AE_TABLE_COLUMNS = ("term", "any_grade_n", "any_grade_pct", "grade3plus_n", "grade3plus_pct")
#: Columns of :func:`discontinuation_by_subgroup`.
SUBGROUP_COLUMNS = (
    "factor",
    "group",
    "definition",
    "n",
    "discontinued_n",
    "discontinued_pct",
    "p_value",
    "n_excluded",
)


@dataclass(frozen=True)
class PatientCount:
    """Patients meeting a definition: one flag per patient (patients-table order)."""

    name: str
    flags: np.ndarray

    @property
    def n(self) -> int:
        """The denominator: every patient of the replicate."""
        return len(self.flags)

    @property
    def count(self) -> int:
        return int(np.count_nonzero(self.flags))

    @property
    def share(self) -> float:
        """``count / n`` (a fraction, not a percentage); NaN without patients."""
        return self.count / self.n if self.n else math.nan


# -- adverse events ------------------------------------------------------------------------------


def _check_line(line) -> None:
    if line is not None and not (isinstance(line, str) and line == "index"):
        raise ValueError(f"line must be 'index' or None (every line), not {line!r}")


def _ae_rows(pt, ae, line) -> tuple[np.ndarray, np.ndarray]:
    """Patients-table row of each adverse event counted, and the mask of those rows."""
    _check_line(line)
    row, keep = locate(pt, ae)
    if line == "index" and len(row):
        index_line = np.asarray(pt["index_line"], dtype=np.int64)
        keep &= np.asarray(ae["line"], dtype=np.int64) == index_line[row]
    return row, keep


def ae_table(tables, *, line="index", replicate=None):
    """Adverse events by CTCAE term: patients with the term at any grade and at grade >= 3.

    One row per term that occurred, columns :data:`AE_TABLE_COLUMNS`: counts of patients and
    percentages (0-100) of all the patients of the ``patients`` table, sorted by the any-grade
    count (descending), then by term. ``line``: ``"index"`` (the index line) or ``None`` (every
    line). ``df.attrs`` holds ``denominator`` (the number of patients), ``line`` and
    ``replicate``.
    """
    import pandas as pd

    terms, worst = worst_grades(tables, line=line, replicate=replicate)
    n = worst.shape[0]
    any_n = np.count_nonzero(worst >= 1, axis=0)
    g3_n = np.count_nonzero(worst >= SEVERE_GRADE, axis=0)
    order = np.lexsort((terms, -any_n))

    def pct(c):
        return 100.0 * c / n if n else np.full(len(c), math.nan)

    df = pd.DataFrame(
        {
            "term": pd.Series(terms[order], dtype=object),
            "any_grade_n": any_n[order].astype(np.int64),
            "any_grade_pct": pct(any_n[order]),
            "grade3plus_n": g3_n[order].astype(np.int64),
            "grade3plus_pct": pct(g3_n[order]),
        },
        columns=list(AE_TABLE_COLUMNS),
    )
    df.attrs.update(denominator=n, line=line, replicate=replicate)
    return df


def worst_grades(tables, *, line="index", replicate=None) -> tuple[np.ndarray, np.ndarray]:
    """Each patient's worst grade of each CTCAE term: ``(terms, grades)``, the terms that
    occurred (sorted) and an int matrix of patients (patients-table order) x terms, 0 where the
    patient had no event of the term. ``line`` as for :func:`ae_table`. A grade that is missing
    counts as an event of grade 1 (the term occurred); grades are clipped to 1-5, the schema's
    range."""
    cols = one_replicate(tables, ("patients", "adverse_events"), replicate)
    pt, ae = cols["patients"], cols["adverse_events"]
    need_columns(ae, "adverse_events", ("line", "term", "grade"))
    n = len(pt["patient_id"])
    row, keep = _ae_rows(pt, ae, line)
    term = np.asarray(ae["term"], dtype=object)[keep].astype(str)
    grade = np.nan_to_num(as_float(ae["grade"])[keep], nan=1.0).clip(1, 5).astype(np.int64)
    terms, t = np.unique(term, return_inverse=True)
    worst = np.zeros((n, len(terms)), dtype=np.int64)
    np.maximum.at(worst, (row[keep], t), grade)
    return terms.astype(object), worst


def grade3plus_patients(tables, *, line="index", replicate=None) -> PatientCount:
    """Patients with at least one adverse event of grade >= 3 (on the index line by default)."""
    cols = one_replicate(tables, ("patients", "adverse_events"), replicate)
    pt, ae = cols["patients"], cols["adverse_events"]
    need_columns(ae, "adverse_events", ("line", "grade"))
    row, keep = _ae_rows(pt, ae, line)
    flags = np.zeros(len(pt["patient_id"]), dtype=bool)
    keep &= as_float(ae["grade"]) >= SEVERE_GRADE
    flags[row[keep]] = True
    return PatientCount("grade3plus_ae", flags)


def _index_line_flags(tables, replicate, column: str, test) -> np.ndarray:
    cols = one_replicate(tables, ("patients", "lines"), replicate)
    pt, ln = cols["patients"], cols["lines"]
    need_columns(ln, "lines", ("line", column))
    rows = index_line_rows(pt, ln)
    flags = np.zeros(len(rows), dtype=bool)
    has = rows >= 0
    flags[has] = test(np.asarray(ln[column])[rows[has]])
    return flags


def dose_reduction_patients(tables, *, replicate=None) -> PatientCount:
    """Patients with at least one dose reduction on the index line."""
    flags = _index_line_flags(tables, replicate, "dose_reductions", lambda v: as_float(v) >= 1)
    return PatientCount("dose_reduction", flags)


def discontinued_for_ae(tables, *, replicate=None) -> PatientCount:
    """Patients whose index line ended for toxicity (``end_reason == "toxicity"``)."""
    flags = _index_line_flags(
        tables, replicate, "end_reason", lambda v: np.asarray(v, dtype=object) == TOXICITY
    )
    return PatientCount("discontinued_for_ae", flags)


# -- discontinuation by subgroup -----------------------------------------------------------------


def child_pugh_classes(patients) -> np.ndarray:
    """Baseline Child-Pugh class per patient ("A", "B", "C"; None when unknown): the
    ``child_pugh_class`` column, or the class of ``child_pugh_score`` where the class is
    missing."""
    pt = patients if isinstance(patients, dict) else as_columns(patients)
    n = len(pt["patient_id"])
    cp = as_text(pt["child_pugh_class"]) if "child_pugh_class" in pt else None
    if cp is None:
        cp = np.full(n, None, dtype=object)
    if "child_pugh_score" in pt:
        score = as_float(pt["child_pugh_score"])
        fill = np.array([c is None for c in cp], dtype=bool) & ~np.isnan(score)
        cp[fill] = scores.child_pugh_class(score[fill])
    return cp


def _subgroups(pt) -> tuple[list, float]:
    """(factor, group names, definitions, membership: 0, 1 or -1 for excluded) per factor, and
    the median age."""
    out = []
    age = as_float(pt["age"])
    known = ~np.isnan(age)
    median = float(np.median(age[known])) if known.any() else math.nan
    member = np.where(~known, -1, np.where(age < median, 0, 1))
    out.append(
        (
            "age",
            ("below_median", "median_or_above"),
            (f"age < {median:g} (cohort median)", f"age >= {median:g} (cohort median)"),
            member,
        )
    )
    ecog = as_float(pt["ecog"])
    member = np.where(np.isnan(ecog), -1, np.where(ecog == 0, 0, 1))
    out.append(("ecog", ("0", ">=1"), ("ECOG 0", "ECOG 1 or more"), member))

    cp = child_pugh_classes(pt)
    member = np.where(cp == "A", 0, np.where(cp == "B", 1, -1))
    out.append(("child_pugh", ("A", "B"), ("Child-Pugh A", "Child-Pugh B"), member))

    bclc = as_text(pt["bclc"])
    early = np.array([b in ("A", "B") for b in bclc], dtype=bool)
    member = np.where(early, 0, np.where(bclc == "C", 1, -1))
    out.append(("bclc", ("A/B", "C"), ("BCLC A or B", "BCLC C"), member))
    return out, median


def discontinuation_by_subgroup(tables, *, replicate=None):
    """Discontinuation for adverse events by baseline subgroup, with Fisher exact tests.

    Two rows per factor (age, ecog, child_pugh, bclc; definitions in the module docstring),
    columns :data:`SUBGROUP_COLUMNS`: ``n`` patients in the group, ``discontinued_n`` and
    ``discontinued_pct`` (0-100, of the group), the two-sided Fisher exact p-value of the
    factor's 2 x 2 table (on both rows; NaN when a group is empty), and ``n_excluded``
    (patients left out of the factor: missing or outside the two groups). ``df.attrs`` holds
    ``age_median`` and ``n_patients``.
    """
    import pandas as pd
    from scipy.stats import fisher_exact

    cols = one_replicate(tables, ("patients", "lines"), replicate)
    pt = cols["patients"]
    need_columns(pt, "patients", ("age", "ecog", "bclc"))
    if "child_pugh_class" not in pt and "child_pugh_score" not in pt:
        raise ValueError("tables: table 'patients' lacks child_pugh_class and child_pugh_score")
    disc = discontinued_for_ae(cols).flags  # cols hold one replicate
    rows = []
    factors, median = _subgroups(pt)
    for factor, groups, definitions, member in factors:
        n = [int(np.count_nonzero(member == g)) for g in (0, 1)]
        d = [int(np.count_nonzero(disc & (member == g))) for g in (0, 1)]
        p = (
            float(fisher_exact([[d[0], n[0] - d[0]], [d[1], n[1] - d[1]]]).pvalue)
            if min(n) > 0
            else math.nan  # an empty group: no comparison, not "no difference"
        )
        excluded = int(np.count_nonzero(member < 0))
        for g in (0, 1):
            rows.append(
                {
                    "factor": factor,
                    "group": groups[g],
                    "definition": definitions[g],
                    "n": n[g],
                    "discontinued_n": d[g],
                    "discontinued_pct": 100.0 * d[g] / n[g] if n[g] else math.nan,
                    "p_value": p,
                    "n_excluded": excluded,
                }
            )
    df = pd.DataFrame(rows, columns=list(SUBGROUP_COLUMNS))
    df.attrs.update(age_median=median, n_patients=len(disc), replicate=replicate)
    return df
