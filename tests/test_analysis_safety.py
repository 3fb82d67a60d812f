"""AE table, grade >= 3 patients, dose reductions, discontinuation for AEs and discontinuation by
subgroup, from hand-built tables.

Expected counts are worked out by hand in each test from the definitions in the docstring of
``hccsim.analysis.safety``: events of the index line (``adverse_events.line ==
patients.index_line``), one count per patient and term with its worst grade, percentages of all
the patients of the ``patients`` table. Fisher exact p-values are computed by hand from the
hypergeometric distribution of the 2 x 2 table with its margins fixed: the two-sided p-value sums
the probabilities of the tables no more likely than the one observed (the definition
``scipy.stats.fisher_exact`` uses).
"""

from __future__ import annotations

import math
from fractions import Fraction
from math import comb

import numpy as np
import pandas as pd
import pytest

from hccsim.analysis import schema
from hccsim.analysis.safety import (
    AE_TABLE_COLUMNS,
    SUBGROUP_COLUMNS,
    ae_table,
    discontinuation_by_subgroup,
    discontinued_for_ae,
    dose_reduction_patients,
    grade3plus_patients,
)
from tests.cohort_builders import cohort, patient, to_arrow

AE_DTYPES = {c.name: c.dtype for c in schema.TABLES["adverse_events"]}
_NUMPY = {"int64": np.int64, "float64": float, "string": object}


def set_aes(tables, *rows) -> None:
    """Replace the adverse events by ``(patient_id, line, term, grade, onset_day[, replicate])``
    rows; grade 5 events have action "death", the others "none"."""
    cols = {c: [] for c in AE_DTYPES}
    for r in rows:
        pid, line, term, grade, onset = r[:5]
        cols["replicate"].append(r[5] if len(r) > 5 else 0)
        cols["patient_id"].append(pid)
        cols["line"].append(line)
        cols["drug"].append("ramucirumab")
        cols["term"].append(term)
        cols["grade"].append(grade)
        cols["onset_day"].append(float(onset))
        cols["end_day"].append(float(onset) + 7.0)
        cols["action"].append("death" if grade == 5 else "none")
    tables["adverse_events"] = {c: np.array(v, dtype=_NUMPY[AE_DTYPES[c]]) for c, v in cols.items()}


def set_line(tables, pid, line, replicate=0, **values) -> None:
    ln = tables["lines"]
    hit = (ln["patient_id"] == pid) & (ln["line"] == line) & (ln["replicate"] == replicate)
    assert hit.sum() == 1
    for c, v in values.items():
        ln[c][hit] = v


def safety_cohort(replicate: int = 0):
    """Five patients, listed in the order 4, 0, 3, 1, 2 (not sorted by id).

    - 4: index line 1 (0-300): hypertension grade 2 on day 10 and grade 3 on day 40 (one
      patient, worst grade 3); proteinuria grade 1; 2 dose reductions.
    - 0: index line 2 (0-300) after line 1 (-200 to -20, ended for toxicity, 1 dose reduction):
      hypertension grade 1 on line 2; fatigue grade 3 on line 1 (not the index line).
    - 3: index line 1, died on day 60 of bleeding grade 5 (line ended by death).
    - 1: index line 1, no adverse event.
    - 2: index line 1 (0-150) ended for toxicity, 1 dose reduction: proteinuria grade 2, edema
      grade 1.
    """
    r = replicate
    t = cohort(
        patient(4, last_fu=300.0, replicate=r),
        patient(
            0,
            last_fu=300.0,
            index_line=2,
            lines=[(1, -200.0, -20.0, "toxicity"), (2, 0.0, 300.0)],
            replicate=r,
        ),
        patient(3, last_fu=60.0, death=True, replicate=r),
        patient(1, last_fu=300.0, replicate=r),
        patient(2, last_fu=300.0, lines=[(1, 0.0, 150.0, "toxicity")], replicate=r),
    )
    set_aes(
        t,
        (4, 1, "hypertension", 2, 10.0, r),
        (4, 1, "hypertension", 3, 40.0, r),
        (4, 1, "proteinuria", 1, 20.0, r),
        (0, 2, "hypertension", 1, 15.0, r),
        (0, 1, "fatigue", 3, -100.0, r),
        (3, 1, "bleeding", 5, 60.0, r),
        (2, 1, "proteinuria", 2, 30.0, r),
        (2, 1, "edema", 1, 35.0, r),
    )
    set_line(t, 4, 1, r, dose_reductions=2)
    set_line(t, 0, 1, r, dose_reductions=1)
    set_line(t, 2, 1, r, dose_reductions=1)
    return t


def rows(df) -> list[tuple]:
    return [tuple(x) for x in df.itertuples(index=False)]


def test_the_hand_built_cohort_is_valid():
    schema.validate(safety_cohort())


# -- AE table --------------------------------------------------------------------------------------


def test_ae_table_of_the_index_line():
    # Denominator 5. hypertension: 4 (worst grade 3) and 0 -> 2 (40%), grade >= 3: 1 (20%);
    # proteinuria: 4 and 2 -> 2, none >= 3; bleeding: 3 (grade 5) -> 1 and 1; edema: 2 -> 1, 0.
    # Patient 0's fatigue was on line 1, not the index line. Ties in the any-grade count go by
    # term: hypertension before proteinuria, bleeding before edema.
    df = ae_table(safety_cohort())
    assert list(df.columns) == list(AE_TABLE_COLUMNS)
    assert rows(df) == [
        ("hypertension", 2, 40.0, 1, 20.0),
        ("proteinuria", 2, 40.0, 0, 0.0),
        ("bleeding", 1, 20.0, 1, 20.0),
        ("edema", 1, 20.0, 0, 0.0),
    ]
    assert df.attrs["denominator"] == 5
    assert df["any_grade_n"].dtype == np.int64


def test_ae_table_of_every_line_adds_the_prior_line_event():
    df = ae_table(safety_cohort(), line=None)
    assert rows(df)[-1] == ("fatigue", 1, 20.0, 1, 20.0)
    assert [r[0] for r in rows(df)] == [
        "hypertension",
        "proteinuria",
        "bleeding",
        "edema",
        "fatigue",
    ]


def test_a_term_repeated_by_one_patient_counts_once_with_its_worst_grade():
    t = cohort(patient(0, last_fu=100.0), patient(1, last_fu=100.0))
    set_aes(
        t,
        (0, 1, "fatigue", 1, 5.0),
        (0, 1, "fatigue", 3, 10.0),
        (0, 1, "fatigue", 2, 20.0),
        (1, 1, "fatigue", 2, 5.0),
        (1, 1, "fatigue", 2, 50.0),
    )
    # 2 of 2 patients at any grade, 1 of 2 (patient 0) at grade >= 3.
    assert rows(ae_table(t)) == [("fatigue", 2, 100.0, 1, 50.0)]


def test_inputs_as_pandas_and_arrow_give_the_same_table():
    t = safety_cohort()
    expected = rows(ae_table(t))
    as_pandas = {name: pd.DataFrame(cols) for name, cols in t.items()}
    assert rows(ae_table(as_pandas)) == expected
    assert rows(ae_table(to_arrow(t))) == expected


def test_no_adverse_events_and_no_patients():
    t = cohort(patient(0, last_fu=100.0))
    set_aes(t)
    df = ae_table(t)
    assert list(df.columns) == list(AE_TABLE_COLUMNS) and len(df) == 0
    assert df.attrs["denominator"] == 1
    empty = cohort()
    assert len(ae_table(empty)) == 0
    g = grade3plus_patients(empty)
    assert (g.n, g.count) == (0, 0) and math.isnan(g.share)


# -- patient flags ---------------------------------------------------------------------------------


def test_patient_flags_in_patients_table_order():
    # Order 4, 0, 3, 1, 2. Grade >= 3 on the index line: 4 (hypertension 3), 3 (bleeding 5);
    # with every line also 0 (fatigue 3 on line 1). Dose reductions on the index line: 4 and 2
    # (0's reduction was on line 1). Discontinued for AEs: 2 (0's toxicity ended line 1; 3's
    # line ended by death).
    t = safety_cohort()
    g3 = grade3plus_patients(t)
    np.testing.assert_array_equal(g3.flags, [True, False, True, False, False])
    assert (g3.count, g3.n, g3.share) == (2, 5, 0.4)
    assert grade3plus_patients(t, line=None).flags.tolist() == [True, True, True, False, False]
    dr = dose_reduction_patients(t)
    np.testing.assert_array_equal(dr.flags, [True, False, False, False, True])
    assert (dr.count, dr.share) == (2, 0.4)
    dc = discontinued_for_ae(t)
    np.testing.assert_array_equal(dc.flags, [False, False, False, False, True])
    assert (dc.count, dc.share) == (1, 0.2)
    assert g3.flags.dtype == dr.flags.dtype == dc.flags.dtype == np.bool_


def test_a_patient_without_an_index_line_row_counts_as_neither():
    t = safety_cohort()
    keep = ~((t["lines"]["patient_id"] == 2) & (t["lines"]["line"] == 1))
    t["lines"] = {c: v[keep] for c, v in t["lines"].items()}
    assert dose_reduction_patients(t).flags.tolist() == [True, False, False, False, False]
    assert discontinued_for_ae(t).count == 0


def test_rows_of_patients_not_in_the_patients_table_are_ignored():
    t = safety_cohort()
    set_aes(t, (4, 1, "fatigue", 3, 5.0), (99, 1, "fatigue", 3, 5.0))
    assert rows(ae_table(t)) == [("fatigue", 1, 20.0, 1, 20.0)]


# -- replicates ------------------------------------------------------------------------------------


def two_replicates():
    """Replicate 0: the safety cohort; replicate 1: the same patient ids, and only patient 1
    has an event (anorexia grade 3) and its line ended for toxicity."""
    a, b = safety_cohort(0), safety_cohort(1)
    set_aes(b, (1, 1, "anorexia", 3, 5.0, 1))
    set_line(b, 1, 1, 1, end_reason="toxicity")
    set_line(b, 2, 1, 1, end_reason="progression")
    return {name: {c: np.concatenate([a[name][c], b[name][c]]) for c in a[name]} for name in a}


def test_several_replicates_need_replicate_and_it_selects_one():
    t = two_replicates()
    for f in (ae_table, grade3plus_patients, dose_reduction_patients, discontinued_for_ae):
        with pytest.raises(ValueError, match=r"replicate=None .* 2 \(0, 1\); pass replicate="):
            f(t)
    assert rows(ae_table(t, replicate=1)) == [("anorexia", 1, 20.0, 1, 20.0)]
    assert rows(ae_table(t, replicate=0)) == rows(ae_table(safety_cohort()))
    assert grade3plus_patients(t, replicate=1).flags.tolist() == [False] * 3 + [True, False]
    assert discontinued_for_ae(t, replicate=1).flags.tolist() == [False] * 3 + [True, False]
    assert discontinuation_by_subgroup(t, replicate=1)["n"].sum() == 4 * 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"replicate": 7}, r"replicate=7 is not in table 'patients' \(replicates: 0, 1\)"),
        ({"replicate": "1"}, r"replicate must be None or an integer, not '1'"),
        ({"replicate": True}, r"replicate must be None or an integer, not True"),
        (
            {"replicate": 0, "line": "all"},
            r"line must be 'index' or None \(every line\), not 'all'",
        ),
        ({"replicate": 0, "line": 2}, r"line must be 'index' or None"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ae_table(two_replicates(), **kwargs)


def test_a_missing_table_is_named():
    t = safety_cohort()
    del t["adverse_events"]
    with pytest.raises(ValueError, match="table 'adverse_events' is missing"):
        grade3plus_patients(t)


# -- discontinuation by subgroup -------------------------------------------------------------------


def fisher_two_sided(a: int, b: int, c: int, d: int) -> Fraction:
    """Exact two-sided Fisher p-value of [[a, b], [c, d]] (hypergeometric, margins fixed)."""
    n1, k, n = a + b, a + c, a + b + c + d

    def prob(x: int) -> Fraction:
        return Fraction(comb(k, x) * comb(n - k, n1 - x), comb(n, n1))

    observed = prob(a)
    return sum(
        (prob(x) for x in range(max(0, n1 + k - n), min(k, n1) + 1) if prob(x) <= observed),
        Fraction(0),
    )


def subgroup_cohort():
    """Nine patients 0-8; discontinued for AEs (index line ended for toxicity): 0, 1, 5, 8.

    ============ ==== ==== ==== ==== ==== ==== ==== ==== ====
    patient      0    1    2    3    4    5    6    7    8
    ============ ==== ==== ==== ==== ==== ==== ==== ==== ====
    age          50   60   70   73   73   80   85   90   -
    ECOG         1    2    0    0    0    1    0    -    0
    CP class     A    A    B    A    C    B    B    -(7) -(-)
    BCLC         C    C    B    A    C    0    D    C    B
    ============ ==== ==== ==== ==== ==== ==== ==== ==== ====

    "-": missing; patient 7's class comes from its score 7 (B); patient 8 has neither.
    """
    t = cohort(*(patient(i, last_fu=200.0) for i in range(9)))
    for i in (0, 1, 5, 8):
        set_line(t, i, 1, end_reason="toxicity")
    pt = t["patients"]
    pt["age"] = np.array([50, 60, 70, 73, 73, 80, 85, 90, np.nan], dtype=float)
    pt["ecog"] = np.array([1, 2, 0, 0, 0, 1, 0, np.nan, 0], dtype=float)
    pt["child_pugh_class"] = np.array(["A", "A", "B", "A", "C", "B", "B", None, None], dtype=object)
    pt["child_pugh_score"] = np.array([5, 6, 7, 6, 10, 8, 9, 7, np.nan], dtype=float)
    pt["bclc"] = np.array(["C", "C", "B", "A", "C", "0", "D", "C", "B"], dtype=object)
    return t


def test_discontinuation_by_subgroup_by_hand():
    df = discontinuation_by_subgroup(subgroup_cohort())
    assert list(df.columns) == list(SUBGROUP_COLUMNS)
    assert df.attrs["age_median"] == 73.0  # known ages 50 ... 90: (73 + 73) / 2
    # Age < 73: 0, 1, 2 (discontinued 0, 1); >= 73: 3, 4, 5, 6, 7 (5); 8 has no age.
    # ECOG 0: 2, 3, 4, 6, 8 (8); >= 1: 0, 1, 5 (all three); 7 has no ECOG.
    # Child-Pugh A: 0, 1, 3 (0, 1); B: 2, 5, 6, 7 (5); excluded 4 (C) and 8 (missing).
    # BCLC A/B: 2, 3, 8 (8); C: 0, 1, 4, 7 (0, 1); excluded 5 (BCLC 0) and 6 (D).
    expected = {
        ("age", "below_median"): (3, 2, 0.0, 1),
        ("age", "median_or_above"): (5, 1, 0.0, 1),
        ("ecog", "0"): (5, 1, 0.0, 1),
        ("ecog", ">=1"): (3, 3, 0.0, 1),
        ("child_pugh", "A"): (3, 2, 0.0, 2),
        ("child_pugh", "B"): (4, 1, 0.0, 2),
        ("bclc", "A/B"): (3, 1, 0.0, 2),
        ("bclc", "C"): (4, 2, 0.0, 2),
    }
    # Two-sided Fisher p-values, hypergeometric by hand (group 1 first):
    # age [[2, 1], [1, 4]]: N 8, 3 discontinued, 3 in group 1: P(x) = C(3,x) C(5,3-x) / 56 =
    #   10, 30, 15, 1 (/56) for x = 0..3; observed x = 2 (15/56): p = (10 + 15 + 1) / 56 = 13/28.
    # ECOG [[1, 4], [3, 0]]: P(x) = C(4,x) C(4,5-x) / 56 = 4, 24, 24, 4 (/56) for x = 1..4;
    #   observed x = 1: p = 8/56 = 1/7.
    # Child-Pugh [[2, 1], [1, 3]]: P(x) = C(3,x) C(4,3-x) / 35 = 4, 18, 12, 1 (/35);
    #   observed x = 2: p = (4 + 12 + 1) / 35 = 17/35.
    # BCLC [[1, 2], [2, 2]]: the same distribution; observed x = 1 (18/35, the mode): p = 1.
    p = {"age": Fraction(13, 28), "ecog": Fraction(1, 7), "child_pugh": Fraction(17, 35)}
    p["bclc"] = Fraction(1)
    for f, tab in (("age", (2, 1, 1, 4)), ("ecog", (1, 4, 3, 0)), ("child_pugh", (2, 1, 1, 3))):
        assert fisher_two_sided(*tab) == p[f]
    assert fisher_two_sided(1, 2, 2, 2) == 1
    for row in df.itertuples(index=False):
        n, d, _, excl = expected[(row.factor, row.group)]
        assert (row.n, row.discontinued_n, row.n_excluded) == (n, d, excl)
        assert row.discontinued_pct == pytest.approx(100.0 * d / n, abs=1e-12)
        assert row.p_value == pytest.approx(float(p[row.factor]), rel=1e-9)
    assert len(df) == 8


def test_subgroups_from_pandas_with_nullable_dtypes():
    # A hospital export read by pandas: missing values as pd.NA in Int64, Float64 and string
    # columns. The result must equal that of the numpy tables with NaN and None.
    t = subgroup_cohort()
    pt = pd.DataFrame(t["patients"])
    pt["ecog"] = pd.array([1, 2, 0, 0, 0, 1, 0, None, 0], dtype="Int64")
    pt["age"] = pd.array([50, 60, 70, 73, 73, 80, 85, 90, None], dtype="Float64")
    pt["child_pugh_class"] = pd.array(["A", "A", "B", "A", "C", "B", "B", None, None], "string")
    pt["child_pugh_score"] = pd.array([5, 6, 7, 6, 10, 8, 9, 7, None], dtype="Int64")
    tables = {**t, "patients": pt, "lines": pd.DataFrame(t["lines"])}
    got = discontinuation_by_subgroup(tables)
    pd.testing.assert_frame_equal(got, discontinuation_by_subgroup(t))


def test_a_factor_with_an_empty_group():
    # Everyone ECOG 0: the >= 1 group is empty; its percentage is NaN, and so is the p-value:
    # Fisher's test on a table with an empty row has one possible table (scipy and R give
    # p = 1), which would read as "no difference" where nothing was compared.
    t = subgroup_cohort()
    t["patients"]["ecog"] = np.zeros(9)
    df = discontinuation_by_subgroup(t).set_index(["factor", "group"])
    assert df.loc[("ecog", ">=1"), "n"] == 0
    assert math.isnan(df.loc[("ecog", ">=1"), "discontinued_pct"])
    assert df.loc[("ecog", "0"), "discontinued_n"] == 4
    assert df.loc[("ecog", "0"), "p_value"] != df.loc[("ecog", "0"), "p_value"]  # NaN
    assert math.isnan(df.loc[("ecog", ">=1"), "p_value"])
    assert df.loc[("age", "below_median"), "p_value"] == pytest.approx(13 / 28)  # others kept
