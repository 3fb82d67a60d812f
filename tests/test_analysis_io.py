"""``read_cohort``: reading cohort tables from CSV and parquet folders, and the messages for bad
input.

Expected values: the tables read equal the tables written (values and dtypes, as
``pandas.testing.assert_frame_equal`` checks them) for simulated tables written as CSV, as
parquet files and as a run's parquet parts; every broken input gives a ``CohortInputError``
whose messages name the file, the column and the file lines (CSV lines counting the header as
line 1), and the common mistakes give exactly the messages docs/data-format.md quotes. The
short example of docs/data-format.md is the cohort the broken inputs start from, so the doc's
example is checked too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from hccsim.analysis import schema
from hccsim.analysis.ctcae import LAB_TERMS
from hccsim.analysis.io import (
    OPTIONAL_TABLES,
    REQUIRED_TABLES,
    CohortInputError,
    example_cohort,
    format_reference,
    read_cohort,
)
from hccsim.simulator.records import to_arrow
from hccsim.simulator.scenario import loads
from hccsim.simulator.studies.run import run, simulate_replicates

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "data-format.md"

SMALL = """\
name: io-test
description: A small cohort for the reading tests.
seed: 11
replicates: 2
population: {preset: anchor_ramucirumab}
cohort: {size: 40}
treatment: {sequence: [ramucirumab, regorafenib]}
observation: {imaging_weeks: 6, max_follow_up_months: 24}
"""


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated() -> dict[str, pd.DataFrame]:
    """Two replicates of 40 simulated patients as DataFrames (the reference of round trips)."""
    sc = loads(SMALL, "small")
    parts = [t for _, t in simulate_replicates(sc, 11, [0, 1])]
    return {
        name: pd.DataFrame({c: np.concatenate([p[name][c] for p in parts]) for c in parts[0][name]})
        for name in schema.TABLES
    }


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("io") / "run"
    run(loads(SMALL, "small"), out)
    return out


def _doc_example() -> dict[str, str]:
    """The CSV files of the short example in docs/data-format.md."""
    text = DOC.read_text()
    found = dict(re.findall(r"`(\w+)\.csv`\n\n```csv\n(.*?)```", text, flags=re.S))
    assert set(found) == set(schema.TABLES)
    return found


@pytest.fixture
def mini(tmp_path) -> Path:
    """The doc's 3-patient example, written to a fresh folder."""
    folder = tmp_path / "mini"
    folder.mkdir()
    for name, text in _doc_example().items():
        (folder / f"{name}.csv").write_text(text)
    return folder


def _edit(folder: Path, table: str, old: str, new: str) -> None:
    path = folder / f"{table}.csv"
    text = path.read_text()
    assert text.count(old) == 1, (table, old)  # the edit hits exactly one place
    path.write_text(text.replace(old, new))


def _messages(folder) -> list[str]:
    with pytest.raises(CohortInputError) as info:
        read_cohort(folder)
    err = info.value
    assert str(err).splitlines()[1:] == [f"- {m}" for m in err.messages]
    assert all("\n" not in m for m in err.messages)
    return err.messages


def _only(folder) -> str:
    (message,) = _messages(folder)
    return message


# -- reading good tables -------------------------------------------------------------------------


def test_example_cohort_reads_without_warnings():
    folder = example_cohort()
    tables = read_cohort(folder)
    assert tables.warnings == [] and tables.absent == ()
    assert set(tables) == set(schema.TABLES)
    assert tables.files == {t: f"{t}.csv" for t in schema.TABLES}
    assert len(tables["patients"]) == 40
    assert (tables["patients"]["replicate"] == 0).all()
    schema.validate(tables)
    readme = (folder / "README.md").read_text()
    assert "SYNTHETIC" in readme and "not real patients" in readme
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 1_000_000


def test_example_cohort_is_what_its_script_writes(tmp_path):
    """The shipped files are the script's output, byte for byte (so the script documents them)."""
    subprocess.run(
        [sys.executable, "-m", "verification.make_example_cohort", "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    shipped = example_cohort()
    names = sorted(p.name for p in shipped.iterdir() if p.is_file())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    for name in names:
        assert (tmp_path / name).read_bytes() == (shipped / name).read_bytes(), name


def test_csv_round_trip(simulated, tmp_path):
    for name, df in simulated.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    tables = read_cohort(tmp_path)
    assert tables.warnings == []
    for name, df in simulated.items():
        pd.testing.assert_frame_equal(tables[name], df, check_exact=True)
    assert tables["patients"]["age"].dtype == np.float64
    assert tables["patients"]["male"].dtype == np.bool_
    assert tables["lines"]["line"].dtype == np.int64


def test_parquet_files_round_trip(simulated, tmp_path):
    for name, df in simulated.items():
        pq.write_table(to_arrow(name, schema.as_columns(df)), tmp_path / f"{name}.parquet")
    tables = read_cohort(tmp_path)
    assert tables.files["labs"] == "labs.parquet"
    for name, df in simulated.items():
        pd.testing.assert_frame_equal(tables[name], df, check_exact=True)


def test_run_folder_and_its_cohort_folder(run_folder):
    tables = read_cohort(run_folder)
    assert tables.files["lines"] == "cohort/lines/"
    assert tables.folder == run_folder / "cohort"
    same = read_cohort(run_folder / "cohort")
    for name in schema.TABLES:
        pd.testing.assert_frame_equal(tables[name], same[name])
        parts = sorted((run_folder / "cohort" / name).glob("part-*.parquet"))
        assert len(parts) == 2
        expected = pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)
        got = tables[name]
        assert list(got.columns) == list(expected.columns)
        for c in got.columns:  # values (text dtypes of all-empty columns may differ)
            np.testing.assert_array_equal(
                schema.as_columns(got)[c], schema.as_columns(expected)[c], err_msg=f"{name}.{c}"
            )
    assert sorted(tables["patients"]["replicate"].unique()) == [0, 1]


def test_rows_of_parquet_parts_are_named_by_part(run_folder, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(run_folder / "cohort", folder)
    part = folder / "patients" / "part-00001.parquet"
    df = pq.read_table(part).to_pandas()
    df.loc[4, "age"] = 12.0
    df.to_parquet(part)
    message = _only(folder)
    assert message.startswith("patients/, column age: values outside [18, 110] years:")
    assert "part-00001.parquet row 5 (patient 4, age 12)" in message


def test_doc_example_reads_with_warnings_for_the_columns_it_leaves_out(mini):
    tables = read_cohort(mini)
    assert tables.absent == ()
    assert len(tables.warnings) == 3
    assert all("optional columns not given, read as empty" in w for w in tables.warnings)
    pt = tables["patients"]
    assert list(pt["patient_id"]) == [1, 2, 3]
    assert (pt["replicate"] == 0).all() and pt["replicate"].dtype == np.int64
    assert pt["stratum"].isna().all() and pt["hcv_svr"].dtype == "boolean"
    assert np.isnan(pt["death_day"][1]) and pt["death_day"][0] == 301.0
    # missing values in nullable whole-number columns: pandas' Int64 with NA
    labs = tables["labs"]
    assert labs["child_pugh_score"].dtype == "Int64"
    assert labs["child_pugh_score"].isna().tolist() == [False, False, True, False, False]
    schema.validate(tables)
    assert list(pt.columns) == [c.name for c in schema.TABLES["patients"]]


def test_missing_markers_booleans_categories_and_terms(mini):
    _edit(mini, "labs", "1,28,3.5,0.9,1.08,,0,0,,0,", "1,28,3.5,0.9,1.08,NA,0,0,null,0,N/a")
    _edit(mini, "patients", "66,false,55.0,true,false", "66,No,55.0,YES,0")
    _edit(mini, "assessments", "SD,PR", " sd , pr ")
    _edit(mini, "adverse_events", "blood_bilirubin_increased", "Blood bilirubin increased")
    _edit(mini, "adverse_events", "fatigue,2,20,62,none", "Fatigue,2,20,62,None")
    tables = read_cohort(mini)
    labs = tables["labs"]
    assert labs["albi"].isna().tolist() == [False, False, True, False, False]
    assert labs["afp_ng_ml"].isna().tolist() == [False, False, True, False, True]
    pt = tables["patients"]
    assert pt.loc[1, ["male", "hbv", "hcv"]].tolist() == [False, True, False]
    a = tables["assessments"]
    assert a.loc[1, ["response_recist", "response_mrecist"]].tolist() == ["SD", "PR"]
    ae = tables["adverse_events"]
    assert ae["term"].tolist()[2:] == ["fatigue", "blood_bilirubin_increased"]
    assert ae["action"].tolist()[2] == "none"  # "none" is a value, not a missing marker
    (warning,) = [w for w in tables.warnings if "CTCAE" in w]
    assert warning == (
        "adverse_events.csv, column term: CTCAE terms written in snake_case: "
        "'Fatigue' -> 'fatigue', 'Blood bilirubin increased' -> 'blood_bilirubin_increased'"
    )


def test_bom_crlf_blank_lines_and_header_spelling(mini):
    path = mini / "labs.csv"
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace("albumin_g_dl", " Albumin G DL ").replace("day", "DAY")
    lines.insert(2, "")  # a blank line 3: the data rows after it are on lines 4-7
    lines.insert(3, ",,,,,,,,,,")  # a line of empty cells (spreadsheets write them): skipped
    lines[5] = lines[5].replace("1,28,3.5", "1,28,abc")
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    message = _only(mini)
    assert message.startswith("labs.csv, column albumin_g_dl: expected a number in g/dL")
    assert "found line 6 ('abc')" in message


def test_extra_columns_are_kept_after_the_schema_columns(mini):
    path = mini / "patients.csv"
    lines = path.read_text().splitlines()
    lines = [lines[0] + ",site"] + [ln + f",clinic {i}" for i, ln in enumerate(lines[1:])]
    path.write_text("\n".join(lines) + "\n")
    tables = read_cohort(mini)
    assert list(tables["patients"].columns)[-1] == "site"
    assert tables["patients"]["site"].tolist() == ["clinic 0", "clinic 1", "clinic 2"]
    assert tables.extra_columns["patients"] == ["site"]
    assert (
        "patients.csv: columns not in the cohort-table schema, kept but not used by the "
        "analysis: site" in tables.warnings
    )


@pytest.mark.parametrize("table", sorted(OPTIONAL_TABLES))
def test_an_absent_optional_table_is_empty_and_says_what_is_lost(mini, table):
    (mini / f"{table}.csv").unlink()
    tables = read_cohort(mini)
    assert tables.absent == (table,) and tables.files[table] == ""
    df = tables[table]
    assert len(df) == 0 and list(df.columns) == [c.name for c in schema.TABLES[table]]
    dtypes = {"int64": np.int64, "float64": np.float64, "bool": np.bool_, "string": object}
    assert [df[c.name].dtype for c in schema.TABLES[table]] == [
        np.dtype(dtypes[c.dtype]) for c in schema.TABLES[table]
    ]
    (warning,) = [w for w in tables.warnings if w.startswith(f"{table}:")]
    assert OPTIONAL_TABLES[table] in warning
    schema.validate(tables)


def test_required_and_optional_tables_cover_the_schema():
    assert set(REQUIRED_TABLES) | set(OPTIONAL_TABLES) == set(schema.TABLES)
    assert not set(REQUIRED_TABLES) & set(OPTIONAL_TABLES)


# -- broken input --------------------------------------------------------------------------------

#: (id, table, text in the doc example, its replacement). Each gives one message, which
#: docs/data-format.md quotes in its table of common mistakes.
MISTAKES = [
    ("decimal comma in quotes", "patients", "71,true,62.5", '71,true,"62,5"'),
    ("decimal comma", "patients", "71,true,62.5", "71,true,62,5"),
    ("date for a day", "lines", "1,1,sorafenib,false,-210", "1,1,sorafenib,false,2021-03-04"),
    ("day 0 elsewhere", "lines", "1,2,ramucirumab,true,0,140", "1,2,ramucirumab,true,35,140"),
    ("negative day", "patients", "false,false,,240.5,", "false,false,,-240.5,"),
    ("death day of the living", "patients", "false,false,,240.5,", "false,false,240.5,240.5,"),
    ("death day", "patients", "true,true,301,301,cancer", "true,true,300,301,cancer"),
    ("missing column", "patients", "albumin_g_dl", "albumin"),
    (
        "empty value",
        "patients",
        "1,ramucirumab,0,2,ramucirumab,71,",
        "1,ramucirumab,0,2,ramucirumab,,",
    ),
    ("duplicate patient", "patients", "\n3,ramucirumab", "\n2,ramucirumab"),
    ("text id", "lines", "\n3,2,ramucirumab", "\nHCC-003,2,ramucirumab"),
    ("category", "assessments", "SD,PR", "stable,PR"),
    ("albumin in g/L", "labs", "1,0,3.8,", "1,0,38,"),
    ("bilirubin in umol/L", "patients", "3.8,0.7,1.05", "3.8,85,1.05"),
    ("below detection limit", "labs", ",1100", ",<10"),
    ("sex as M/F", "patients", "71,true", "71,M"),
    ("after follow-up", "labs", "2,14,3.2", "2,400,3.2"),
    ("overlap", "lines", "-180,-21", "-180,5"),
    ("index flag", "lines", "1,1,sorafenib,false", "1,1,sorafenib,true"),
    ("unknown patient", "adverse_events", "\n3,2", "\n4,2"),
]


@pytest.mark.parametrize(
    ("table", "old", "new"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_common_mistakes_give_the_messages_of_the_doc(mini, table, old, new):
    _edit(mini, table, old, new)
    message = _only(mini)
    assert message.startswith(f"{table}.csv")
    assert re.search(r"\bline \d+\b", message) or "is missing" in message  # the line at fault
    assert f"`{message}`" in DOC.read_text()


def test_semicolons_and_encoding_give_the_messages_of_the_doc(mini):
    path = mini / "labs.csv"
    path.write_text(path.read_text().replace(",", ";").replace(".", ","))
    ae = mini / "adverse_events.csv"
    ae.write_bytes(ae.read_bytes().replace(b"fatigue", "fatigué".encode("latin-1")))
    messages = _messages(mini)
    assert len(messages) == 2
    text = DOC.read_text()
    assert all(f"`{m}`" in text for m in messages)


def test_text_in_numeric_columns_lists_lines_and_values(mini):
    _edit(mini, "labs", "1,14,3.7,", "1,14,abc,")
    _edit(mini, "labs", "2,0,3.3,", '2,0,"3,3",')
    _edit(mini, "labs", "0,0,5,0,1250", "0,0,5.5,0,1250")
    assert _messages(mini) == [
        "labs.csv, column albumin_g_dl: expected a number in g/dL (0.5 to 7), found "
        "line 3 ('abc'), line 5 ('3,3'); write decimals with a point (3.5, not 3,5)",
        "labs.csv, column child_pugh_score: expected whole numbers: line 2 (patient 1, "
        "child_pugh_score 5.5)",
    ]


def test_every_problem_is_reported_at_once(mini):
    _edit(mini, "patients", "71,true,62.5", "71,maybe,62.5")
    _edit(mini, "lines", "10,0,1", "ten,0,1")
    _edit(mini, "labs", "1,0,3.8,", "1,0,38,")
    (mini / "adverse_events.csv").write_text("")
    messages = _messages(mini)
    assert messages == [
        "patients.csv, column male: expected true or false (or 1/0, yes/no), found line 2 "
        "('maybe')",
        "lines.csv, column cycles: expected a whole number (>= 0), found line 3 ('ten')",
        "adverse_events.csv: the file is empty; its first line must name the columns",
        "labs.csv, column albumin_g_dl: values outside [0.5, 7] g/dL: line 2 (patient 1, "
        "albumin_g_dl 38); albumin in g/L divided by 10 gives g/dL",
    ]


def test_index_line_rules(mini):
    _edit(mini, "lines", "3,2,ramucirumab,true", "3,3,ramucirumab,true")
    messages = _messages(mini)
    assert messages == [
        "lines.csv, column index: must be true on the patient's index line (line = patients' "
        "index_line) and false on every other line: line 7 (patient 3, line 3)",
        "patients.csv, column index_line: the patient has no row of this line in lines.csv: "
        "line 4 (patient 3, index_line 2)",
    ]


def test_a_column_given_twice(mini):
    path = mini / "labs.csv"
    lines = path.read_text().splitlines()
    lines = [lines[0] + ",INR"] + [ln + ",1.1" for ln in lines[1:]]
    path.write_text("\n".join(lines) + "\n")
    assert _only(mini) == "labs.csv: columns 'inr' and 'INR' are both read as 'inr'; keep one"


def test_a_patients_file_without_rows(mini):
    path = mini / "patients.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    messages = _messages(mini)
    assert messages[0] == "patients.csv: no patients (the file has no data rows)"
    assert all("patients not in the patients table" in m for m in messages[1:])


def test_a_row_with_an_open_quote(mini):
    path = mini / "lines.csv"
    path.write_text(path.read_text() + '3,3,"regorafenib,false,130,140,death,1,0,0\n')
    assert _only(mini) == "lines.csv, line 8: cannot be read as CSV (unexpected end of data)"


# -- folders -------------------------------------------------------------------------------------


def test_a_folder_that_does_not_exist(tmp_path):
    assert _only(tmp_path / "nowhere").startswith(
        f"{tmp_path / 'nowhere'}: the folder does not exist; give the folder that holds "
        "patients.csv and lines.csv (required)"
    )


def test_a_file_instead_of_a_folder(mini):
    assert _only(mini / "patients.csv") == (
        f"{mini / 'patients.csv'}: is a file, not a folder of cohort tables; give the folder "
        f"that holds it ({mini}) and the other tables"
    )


def test_an_empty_folder_and_a_folder_without_tables(tmp_path):
    assert _only(tmp_path).startswith(f"{tmp_path}: the folder is empty; expected patients.csv")
    (tmp_path / "notes.txt").write_text("x")
    assert _only(tmp_path).startswith(f"{tmp_path}: no cohort tables there (found notes.txt)")


def test_a_missing_required_table_saved_as_a_spreadsheet(mini):
    (mini / "lines.csv").rename(mini / "lines.xlsx")
    assert _only(mini) == (
        f"lines: required table not found in {mini} (expected lines.csv, lines.parquet or a "
        "lines/ folder of parquet parts); found lines.xlsx: export it as CSV (UTF-8, "
        "comma-separated)"
    )


def test_a_table_given_twice_and_unknown_table_files(mini):
    (mini / "notes.csv").write_text("a,b\n1,2\n")
    tables = read_cohort(mini)
    assert (
        "notes.csv: not a cohort table (tables are patients, lines, lesions, assessments, "
        "labs, adverse_events); ignored" in tables.warnings
    )
    pd.read_csv(mini / "labs.csv").to_parquet(mini / "labs.parquet")
    assert _only(mini) == "labs: given more than once (labs.csv, labs.parquet); keep one"


def test_a_table_folder_without_parts(mini):
    (mini / "lesions").mkdir()
    (mini / "lesions.csv").unlink()
    assert _only(mini) == "lesions/: a folder named after a table but without .parquet parts"


def test_a_path_of_the_wrong_type():
    with pytest.raises(ValueError, match=r"path must be a folder path .* not 3"):
        read_cohort(3)


# -- documentation -------------------------------------------------------------------------------


def test_doc_reference_is_generated_from_the_schema():
    text = DOC.read_text()
    block = text.split("<!-- BEGIN format_reference() -->")[1].split(
        "<!-- END format_reference() -->"
    )[0]
    assert block.strip() == format_reference().strip()
    for table, cols in schema.TABLES.items():
        assert all(f"| `{c.name}` |" in format_reference().split(f"### `{table}`")[1] for c in cols)


def test_doc_lists_the_adverse_event_terms_hccsim_writes():
    terms = set(LAB_TERMS)
    for path in (ROOT / "simulator" / "therapies").glob("*.yaml"):
        terms |= set(yaml.safe_load(path.read_text()).get("adverse_events", {}).get("terms", {}))
    terms |= set(read_cohort(example_cohort())["adverse_events"]["term"])
    text = DOC.read_text()
    assert [t for t in sorted(terms) if f"`{t}`" not in text] == []


def test_analysis_io_does_not_import_the_simulator():
    code = (
        "import sys, hccsim.analysis.io as io; io.read_cohort(io.example_cohort()); "
        "print([m for m in sys.modules if m.startswith('hccsim.simulator')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_doc_lists_every_adverse_event_term_the_simulator_writes():
    """docs/data-format.md names the spellings of the simulator's terms so that real tables
    can match them: every catalogue term, every lab-graded term and the two decompensation
    events (simulator/patient.py), and nothing else."""
    from hccsim.analysis import ctcae
    from hccsim.simulator import catalogue

    terms = {"ascites", "hepatic_encephalopathy", *ctcae.LAB_TERMS}
    for therapy in catalogue.catalogue().values():
        terms |= set(therapy.adverse_events.terms)
    text = " ".join(DOC.read_text().split())
    start = text.index("real and simulated tables line up. Those are:")
    listed = set(re.findall(r"`([a-z_]+)`", text[start : text.index("`read_cohort`", start)]))
    assert listed == terms
