"""``schema.validate``: good tables pass; each kind of problem is reported with the table, the
column and the rows at fault (row index and patient id), as DESIGN section 7 and
docs/cohort-tables.md promise, for dicts of arrays, pandas DataFrames and pyarrow Tables.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from hccsim.analysis import schema
from tests.cohort_builders import Scan, cohort, patient, to_arrow


def _good():
    """Three patients: alive with PD, dead after SD, two lines (valid tables throughout)."""
    return cohort(
        patient(0, last_fu=300.0, scans=[(56, "SD"), (112, "PD")]),
        patient(1, last_fu=150.0, death=True, scans=[(56, "SD")]),
        patient(
            2,
            last_fu=400.0,
            scans=[(56, "PR"), Scan(260, "SD", line=2)],
            lines=[(1, 0.0, 150.0, "toxicity"), (2, 200.0, 400.0, "end_of_follow_up")],
        ),
    )


def _problems(tables, **kw) -> list[str]:
    with pytest.raises(schema.SchemaError) as info:
        schema.validate(tables, **kw)
    err = info.value
    assert str(err) == "\n".join(err.problems)
    return err.problems


def _only(tables, **kw) -> str:
    (problem,) = _problems(tables, **kw)
    return problem


def _row(table, pid, **match) -> int:
    """Index of the row of patient ``pid`` in ``table`` (replicate 0) matching ``match``."""
    mask = table["patient_id"] == pid
    for col, value in match.items():
        mask &= table[col] == value
    (idx,) = np.flatnonzero(mask)
    return int(idx)


def _to_pandas(tables):
    return {name: pd.DataFrame(cols) for name, cols in tables.items()}


def _to_arrow(tables, typed=True):
    return to_arrow(tables, typed)


# -- good tables ------------------------------------------------------------------------------------


def test_hand_built_tables_are_valid():
    tables = _good()
    assert set(tables) == set(schema.TABLE_NAMES)
    for name, cols in tables.items():
        assert list(cols) == [c.name for c in schema.TABLES[name]]
        assert len({len(v) for v in cols.values()}) == 1
        assert len(cols["patient_id"]) > 0  # every table has rows to check
    schema.validate(tables)


def test_good_tables_pass_as_pandas_and_arrow():
    schema.validate(_to_pandas(_good()))
    schema.validate(_to_arrow(_good()))
    # Mixed kinds, and an Arrow table made of several chunks.
    mixed = {**_to_pandas(_good()), "lines": _to_arrow(_good())["lines"]}
    arrow = _to_arrow(_good())
    mixed["assessments"] = pa.concat_tables([arrow["assessments"], arrow["assessments"][:0]])
    schema.validate(mixed)


def test_empty_optional_tables_pass():
    tables = _good()
    for name in ("lesions", "labs", "adverse_events"):
        tables[name] = {k: v[:0] for k, v in tables[name].items()}
    schema.validate(tables)


# -- table and column problems ------------------------------------------------------------------


def test_missing_table():
    tables = _good()
    del tables["labs"]
    assert _only(tables) == "missing table(s): labs"


def test_missing_column():
    tables = _good()
    del tables["patients"]["age"]
    assert _only(tables) == "table patients, column age: missing (float64, age at index start)"


def test_unknown_column():
    tables = _good()
    tables["lines"]["dose_mg"] = np.ones(len(tables["lines"]["line"]))
    msg = _only(tables)
    assert msg.startswith("table lines: unknown column 'dose_mg'")


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("patients", "age", math.nan),  # float column
        ("patients", "arm", None),  # string column
        ("assessments", "day", math.nan),
        ("lines", "drug", None),
    ],
)
def test_null_in_a_non_nullable_column(table, column, value):
    tables = _good()
    col = tables[table][column]
    rows = np.flatnonzero(tables[table]["patient_id"] == 1)
    col[rows[-1]] = value
    assert _only(tables) == (
        f"table {table}, column {column}: empty values are not allowed: row {rows[-1]} (patient 1)"
    )


def test_null_in_a_nullable_column_is_fine():
    tables = _good()
    tables["assessments"]["sum_recist_mm"][1] = math.nan
    tables["labs"]["afp_ng_ml"][0] = math.nan
    schema.validate(tables)


@pytest.mark.parametrize(
    ("table", "column", "value", "expected_range"),
    [
        ("patients", "albumin_g_dl", 35.0, "[0.5, 7] g/dL"),  # g/L given for g/dL
        ("patients", "bilirubin_mg_dl", 0.0, "[0.05, 50] mg/dL"),
        ("patients", "age", 12.0, "[18, 110] years"),
        ("patients", "ecog", 5, "[0, 4]"),
        ("patients", "last_follow_up_day", -1.0, "[0, inf] days"),
        ("lesions", "diameter_mm", -3.0, "[0, 1000] mm"),
        ("labs", "bilirubin_mg_dl", math.inf, "[0.05, 60] mg/dL"),
        ("adverse_events", "grade", 6, "[1, 5]"),
    ],
)
def test_value_out_of_range_names_its_unit(table, column, value, expected_range):
    tables = _good()
    row = _row(tables[table], 2) if table != "lesions" else _row(tables[table], 2, visit=1, line=1)
    tables[table][column][row] = value
    assert _only(tables) == (
        f"table {table}, column {column}: values outside {expected_range}: row {row} (patient 2)"
    )


@pytest.mark.parametrize(
    ("table", "column", "value", "allowed"),
    [
        ("lines", "end_reason", "progressed", schema.END_REASONS),
        ("patients", "child_pugh_class", "D", ("A", "B", "C")),
        ("assessments", "response_recist", "iUPD", schema.RESPONSES),
        ("assessments", "nontarget", "present", schema.NONTARGET),
    ],
)
def test_category_not_allowed(table, column, value, allowed):
    tables = _good()
    col = tables[table][column]
    row = int(np.flatnonzero(tables[table]["patient_id"] == 0)[-1])
    col[row] = value
    assert _only(tables) == (
        f"table {table}, column {column}: {value!r} is not allowed; expected one of "
        f"{', '.join(allowed)}: row {row} (patient 0)"
    )


def test_non_integer_in_an_int_column():
    tables = _good()
    ecog = tables["patients"]["ecog"].astype(float)
    ecog[1] = 1.5
    tables["patients"]["ecog"] = ecog
    assert _only(tables) == "table patients, column ecog: expected whole numbers: row 1 (patient 1)"


def test_text_in_a_number_column_names_the_rows():
    tables = _good()
    age = tables["patients"]["age"].astype(object)
    age[2] = "sixty"
    tables["patients"]["age"] = age
    assert (
        _only(tables) == "table patients, column age: expected numbers (years): row 2 (patient 2)"
    )


def test_non_boolean_in_a_bool_column_names_the_rows():
    tables = _good()
    male = tables["patients"]["male"].astype(object)
    male[0] = "yes"
    tables["patients"]["male"] = male
    assert _only(tables) == "table patients, column male: expected true/false: row 0 (patient 0)"


def test_many_bad_rows_are_summarised():
    tables = cohort(*(patient(i, last_fu=100.0) for i in range(8)))
    tables["patients"]["age"][:] = 5.0
    assert _only(tables) == (
        "table patients, column age: values outside [18, 110] years: row 0 (patient 0), "
        "row 1 (patient 1), row 2 (patient 2), row 3 (patient 3), row 4 (patient 4) and 3 more"
    )


def test_every_problem_is_listed_and_prefixed():
    tables = _good()
    tables["patients"]["age"][0] = 5.0
    tables["lines"]["end_reason"][0] = "stopped"
    problems = _problems(tables, where="cohort/replicate-0")
    assert len(problems) == 2
    assert all(p.startswith("cohort/replicate-0: table ") for p in problems)
    assert "column age" in problems[0] and "column end_reason" in problems[1]


# -- relations between rows and tables ------------------------------------------------------------


def test_line_overlap():
    tables = _good()
    ln = tables["lines"]
    second = _row(ln, 2, line=2)
    ln["start_day"][second] = 100.0  # line 1 of patient 2 ends on day 150
    assert _only(tables) == (
        "table lines, column start_day: before the end_day of the patient's previous line "
        f"(overlap): row {second} (patient 2)"
    )


def test_line_numbered_twice():
    tables = _good()
    ln = tables["lines"]
    second = _row(ln, 2, line=2)
    ln["line"][second] = 1
    assert _only(tables) == (
        "table lines, column line: lines of a patient must be numbered once each: "
        f"row {second} (patient 2)"
    )


def test_line_ending_before_it_starts():
    tables = _good()
    first = _row(tables["lines"], 2, line=1)
    tables["lines"]["end_day"][first] = -5.0
    assert _only(tables) == (
        f"table lines, column end_day: before start_day: row {first} (patient 2)"
    )


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("assessments", "day"),
        ("lesions", "day"),
        ("labs", "day"),
        ("lines", "start_day"),
        ("adverse_events", "onset_day"),
    ],
)
def test_record_after_the_last_follow_up(table, column):
    tables = _good()
    row = int(np.flatnonzero(tables[table]["patient_id"] == 1)[-1])
    tables[table][column][row] = 150.5  # patient 1 died on day 150
    if table == "lines":
        tables[table]["end_day"][row] = 150.5
    problems = _problems(tables)
    assert (
        f"table {table}, column {column}: after the patient's last follow-up: row {row} (patient 1)"
        in problems
    )


def test_death_day_inconsistent_with_death():
    tables = _good()
    tables["patients"]["death_day"][1] = 140.0  # died, but last follow-up is 150
    assert _only(tables) == (
        "table patients, column death_day: must equal last_follow_up_day for patients who "
        "died: row 1 (patient 1)"
    )
    tables = _good()
    tables["patients"]["death_day"][0] = 300.0  # alive
    assert _only(tables) == (
        "table patients, column death_day: must be empty for patients alive: row 0 (patient 0)"
    )
    tables = _good()
    tables["patients"]["death_day"][1] = math.nan  # died, no death day
    assert "row 1 (patient 1)" in _only(tables)


def test_repeated_patient_and_unknown_patient():
    tables = cohort(
        patient(0, last_fu=100.0),
        patient(1, last_fu=100.0),
        patient(1, last_fu=100.0, replicate=1),  # same id, other replicate: fine
    )
    schema.validate(tables)
    tables["patients"]["replicate"][2] = 0
    assert _only(tables) == "table patients: (replicate, patient_id) repeated: row 2 (patient 1)"
    tables = _good()
    tables["labs"]["patient_id"][2] = 9
    assert _only(tables) == "table labs: patients not in the patients table: row 2 (patient 9)"


# -- pandas and pyarrow inputs --------------------------------------------------------------------


def test_problems_found_in_pandas_frames():
    tables = _good()
    tables["patients"]["albumin_g_dl"][2] = 35.0
    frames = _to_pandas(tables)
    frames["lines"].loc[0, "drug"] = None
    frames["patients"]["ecog"] = pd.array([0, None, 1], dtype="Int64")  # a nullable int
    problems = _problems(frames)
    assert problems == [
        "table patients, column ecog: empty values are not allowed: row 1 (patient 1)",
        "table patients, column albumin_g_dl: values outside [0.5, 7] g/dL: row 2 (patient 2)",
        "table lines, column drug: empty values are not allowed: row 0 (patient 0)",
    ]


def test_pandas_nullable_dtypes():
    # convert_dtypes() gives pandas' nullable dtypes ("string", "boolean", "Int64"), whose
    # missing value is pd.NA: the null response of baseline scans must read as a null (it used
    # to be reported as "<NA> is not allowed"), and pd.NA in a non-nullable column as empty.
    frames = {k: v.convert_dtypes() for k, v in _to_pandas(_good()).items()}
    assert str(frames["assessments"]["response_recist"].dtype) == "string"
    schema.validate(frames)
    frames["lines"].loc[1, "drug"] = pd.NA
    frames["patients"].loc[2, "male"] = pd.NA
    assert _problems(frames) == [
        "table patients, column male: empty values are not allowed: row 2 (patient 2)",
        "table lines, column drug: empty values are not allowed: row 1 (patient 1)",
    ]


def test_problems_found_in_arrow_tables():
    tables = _good()
    arrow = _to_arrow(tables)
    # An int column with a null and a bool column with a null, as a reader would get them.
    pt = tables["patients"]
    arrow["patients"] = pa.table(
        {
            **{k: v for k, v in pt.items() if k not in ("ecog", "mvi")},
            "ecog": pa.array([0, None, 1], pa.int64()),
            "mvi": pa.array([False, False, None], pa.bool_()),
        }
    )
    end = tables["lines"]["end_reason"].copy()
    end[1] = "cured"
    arrow["lines"] = arrow["lines"].set_column(
        arrow["lines"].schema.get_field_index("end_reason"),
        "end_reason",
        pa.array(end, pa.string()),
    )
    problems = _problems(arrow)
    assert problems == [
        "table patients, column ecog: empty values are not allowed: row 1 (patient 1)",
        "table patients, column mvi: empty values are not allowed: row 2 (patient 2)",
        "table lines, column end_reason: 'cured' is not allowed; expected one of "
        f"{', '.join(schema.END_REASONS)}: row 1 (patient 1)",
    ]


def test_relation_problems_found_in_arrow_tables():
    tables = _good()
    row = int(np.flatnonzero(tables["assessments"]["patient_id"] == 0)[-1])
    tables["assessments"]["day"][row] = 301.0  # patient 0 followed to day 300
    msg = _only(_to_arrow(tables))
    assert msg == (
        f"table assessments, column day: after the patient's last follow-up: row {row} (patient 0)"
    )


def test_messages_name_table_column_and_rows():
    # The documented example format: "table lines, column end_day: before start_day: row 12
    # (patient 4)".
    pattern = re.compile(r"^table \w+, column \w+: .+: row \d+ \(patient \d+\)")
    tables = _good()
    tables["lines"]["end_day"][0] = -1.0
    assert pattern.match(_only(tables))
