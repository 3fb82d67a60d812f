"""Reading a cohort from files: the six cohort tables as CSV or parquet, checked against the
contract of ``schema.py`` with messages that name the file, the column and the lines at fault.

**Where the tables are.** :func:`read_cohort` takes a folder that holds ``<table>.csv`` and/or
``<table>.parquet`` files, or ``<table>/`` folders of parquet parts (``part-*.parquet``, as a
run's ``cohort/`` folder holds them), or a run folder that contains ``cohort/``. File and folder
names are matched ignoring case. Files whose names start with ``.`` or ``~$`` are ignored, as
are files of other types (a README); CSV and parquet files that are not one of the six tables
are ignored with a warning. A table given twice (``labs.csv`` and ``labs.parquet``) is an error.

**Required and optional tables.** ``patients`` and ``lines`` are required (every analysis needs
the patients and their index line). ``assessments``, ``labs``, ``adverse_events`` and
``lesions`` are optional: an absent optional table is read as an empty table with the schema's
columns, listed in :attr:`Cohort.absent`, and a warning says what cannot be computed without
it (:data:`OPTIONAL_TABLES`). A report must say so rather than show, for example, no adverse
events.

**Required and optional columns.** Every column of the schema must be present except those
whose values may be empty (``nullable`` in ``schema.TABLES``): such a column may be left out and
is then read as empty (a warning lists them). ``replicate`` may be left out and is then 0 (a
real cohort is one replicate). Column names are matched ignoring case, surrounding spaces, and
spaces or hyphens written for underscores. Columns that are not in the schema are kept, after
the schema's columns, as they were read (CSV: as text), and a warning lists them; the analysis
does not use them.

**Reading CSV.** UTF-8 text (a byte-order mark is allowed), comma-separated, the first line
naming the columns, quotes as Excel writes them. Every value is read as text, stripped of
surrounding spaces; the markers of :data:`MISSING_MARKERS` (ignoring case) are missing values.
Each column is then converted to its schema type here, so that text in a numeric column is
reported with its lines and values: numbers are written with a decimal point (``3.5``, not
``3,5``), optionally with an exponent; whole-number columns take numbers without a fraction
(``2`` or ``2.0``); true/false columns take ``true``/``false``, ``1``/``0`` or ``yes``/``no``
(ignoring case); a value of a column with allowed categories is matched ignoring case and
stored in the schema's spelling (``pd`` becomes ``PD``). Lines that are empty (or only commas)
are skipped. A line with more or fewer values than the header is an error (usually a comma
inside an unquoted value, such as a decimal comma). ``adverse_events.term`` is written in
snake_case (``Fatigue`` becomes ``fatigue``, ``Blood bilirubin increased`` becomes
``blood_bilirubin_increased``), with a warning listing the terms changed.

**Reading parquet.** Columns of the schema's type are taken as they are; others (text written
for numbers, floats for whole numbers) go through the same conversion as CSV text.

**Checks.** After conversion the tables go through ``schema.validate`` (types, ranges with
units, categories, one row per patient in ``patients``, ``death_day`` against ``death``, nothing
after the last follow-up, lines ordered and not overlapping) and then through the checks of this
module: each patient has exactly one row of its index line in ``lines`` (``line`` equal to
``patients.index_line``), ``lines.index`` is true on that row and on no other, and the index
line starts on day 0. Every problem found is collected; then one :class:`CohortInputError`
lists them all, one line each. Checks that need clean values (the relations between tables) run
once the values are clean, so fixing one round of problems may reveal the next.

**Row numbers in messages.** CSV: ``line N`` is the line of the file as a text editor shows it,
counting the header as line 1 (in a spreadsheet, row N). Parquet: ``row N`` counts the data rows
from 1; a folder of parts names the part (``part-00002.parquet row 5``).

**Dtypes of the result.** ``int64``, ``float64`` and ``bool`` columns are numpy ``int64``,
``float64`` and ``bool``; a whole-number or true/false column with missing values is pandas'
nullable ``Int64`` or ``boolean``; text columns are pandas' default text dtype with missing
values as NA. ``schema.as_columns`` reads all of them.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hccsim.analysis import scores
from hccsim.analysis.frames import locate
from hccsim.analysis.schema import TABLES, Column, SchemaError, validate

#: Tables without which nothing can be analysed.
REQUIRED_TABLES = ("patients", "lines")

#: The optional tables and what cannot be computed without them.
OPTIONAL_TABLES = {
    "assessments": (
        "best overall response, ORR and DCR, PFS, time to progression, duration of response "
        "and disease control at 4 weeks"
    ),
    "labs": "ALBI and Child-Pugh over time (ALBI by week, Child-Pugh transitions)",
    "adverse_events": "the adverse-event table and the patients with grade >= 3 events",
    "lesions": "per-lesion measurements (the standard analysis reads responses from assessments)",
}

#: What one row of each table is.
TABLE_ROWS = {
    "patients": "one row per patient: baseline at the start of the index line, and the outcome",
    "lines": "one row per line of systemic therapy: lines before the index line, the index line "
    "and later lines",
    "lesions": "one row per lesion per scan",
    "assessments": "one row per scan (imaging visit), with its response",
    "labs": "one row per blood draw",
    "adverse_events": "one row per adverse-event episode",
}

#: Text read as a missing value (ignoring case and surrounding spaces).
MISSING_MARKERS = ("", "NA", "N/A", "NaN", "null")

_MISSING = frozenset(m.lower() for m in MISSING_MARKERS)
_TRUE = frozenset(("true", "1", "yes"))
_FALSE = frozenset(("false", "0", "no"))
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_SHOWN = 5  # rows listed per message before "and N more"
_DAY_TOL = 1e-6
_FORMATS = (".csv", ".parquet")
_OTHER_FORMATS = (".xlsx", ".xls", ".ods", ".tsv", ".txt", ".json", ".sav", ".dta", ".sas7bdat")
_SCHEMA_PROBLEM = re.compile(r"table (\w+)(?:, column (\w+))?: ")
_SCHEMA_ROW = re.compile(r"row (\d+) \(patient ([^)]*)\)")


class CohortInputError(ValueError):
    """Cohort files that cannot be analysed; ``messages`` lists every problem, one line each,
    and ``warnings`` what was read with a warning before the problems were found."""

    def __init__(
        self, messages: list[str], *, folder: str = "", warnings: list[str] | None = None
    ) -> None:
        self.messages = list(messages)
        self.warnings = list(warnings or [])
        self.folder = folder
        n = len(self.messages)
        head = f"{n} problem{'s' if n != 1 else ''} with the cohort tables"
        head += f" in {folder}:" if folder else ":"
        super().__init__("\n".join([head, *(f"- {m}" for m in self.messages)]))


class Cohort(dict):
    """The six tables read by :func:`read_cohort` (table name -> pandas DataFrame), with

    - ``folder``: the folder the tables were read from;
    - ``files``: table -> the file or folder read, relative to the path given (absent: "");
    - ``absent``: the optional tables that were not given (read as empty tables);
    - ``extra_columns``: table -> columns kept that are not in the schema;
    - ``warnings``: one line each, as the messages of :class:`CohortInputError`.
    """

    def __init__(self, tables, *, folder, files, absent, extra_columns, warnings) -> None:
        super().__init__(tables)
        self.folder: Path = folder
        self.files: dict[str, str] = files
        self.absent: tuple[str, ...] = absent
        self.extra_columns: dict[str, list[str]] = extra_columns
        self.warnings: list[str] = warnings


# -- where a row is --------------------------------------------------------------------------------


@dataclass
class _Where:
    """A table's file label and how to name its rows in messages."""

    label: str
    csv_lines: np.ndarray | None = None  # CSV: the file line of each data row
    parts: list[tuple[str, int]] = field(default_factory=list)  # parquet parts: (name, rows)

    def row(self, i: int) -> str:
        if self.csv_lines is not None:
            return f"line {int(self.csv_lines[i])}"
        if self.parts:
            for name, n in self.parts:
                if i < n:
                    return f"{name} row {i + 1}"
                i -= n
        return f"row {i + 1}"

    def rows(self, mask: np.ndarray, show: Callable[[int], str] | None = None) -> str:
        idx = np.flatnonzero(mask)
        shown = [self.row(i) + (f" ({show(i)})" if show else "") for i in idx[:_SHOWN]]
        more = f" and {len(idx) - _SHOWN} more" if len(idx) > _SHOWN else ""
        return ", ".join(shown) + more


@dataclass
class _Source:
    table: str
    kind: str  # csv, parquet, parts
    paths: list[Path]
    label: str


@dataclass
class _Raw:
    """A table as read: columns in file order (header name -> array) and where its rows are."""

    columns: dict[str, np.ndarray]
    where: _Where
    n: int


# -- the folder ------------------------------------------------------------------------------------


def _expected_files() -> str:
    return (
        "patients.csv and lines.csv (required), and assessments.csv, labs.csv, "
        "adverse_events.csv and lesions.csv (optional); or the same names as .parquet, or a "
        "run folder with cohort/"
    )


def _resolve(path) -> Path:
    """The folder given; raises for a path that is no folder."""
    import os

    if isinstance(path, bool) or not isinstance(path, str | os.PathLike):
        raise ValueError(f"path must be a folder path (str or pathlib.Path), not {path!r}")
    given = Path(path)
    if not given.exists():
        raise CohortInputError(
            [f"{given}: the folder does not exist; give the folder that holds {_expected_files()}"]
        )
    if not given.is_dir():
        hint = ""
        if given.suffix.lower() in _FORMATS:
            hint = f"; give the folder that holds it ({given.parent}) and the other tables"
        raise CohortInputError([f"{given}: is a file, not a folder of cohort tables{hint}"])
    return given


def _table_name(name: str) -> str | None:
    key = name.lower()
    return key if key in TABLES else None


def _find_sources(given: Path, folder: Path) -> tuple[dict[str, _Source], list[str], list[str]]:
    """The table files of ``folder``; problems (a table given twice, a parts folder without
    parts) and warnings (unknown table files)."""
    found: dict[str, list[_Source]] = {}
    problems, warnings = [], []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if name.startswith((".", "~$")):
            continue
        label = entry.relative_to(given).as_posix()
        if entry.is_dir():
            table = _table_name(name)
            if table is None:
                continue
            parts = sorted(
                p for p in entry.glob("*.parquet") if not p.name.startswith(".") and p.is_file()
            )
            if not parts:
                problems.append(
                    f"{label}/: a folder named after a table but without .parquet parts"
                )
                continue
            found.setdefault(table, []).append(_Source(table, "parts", parts, label + "/"))
            continue
        suffix = entry.suffix.lower()
        if suffix not in _FORMATS:
            continue
        table = _table_name(entry.stem)
        if table is None:
            warnings.append(
                f"{label}: not a cohort table (tables are {', '.join(TABLES)}); ignored"
            )
            continue
        found.setdefault(table, []).append(_Source(table, suffix[1:], [entry], label))
    sources = {}
    for table, options in found.items():
        if len(options) > 1:
            problems.append(
                f"{table}: given more than once ({', '.join(s.label for s in options)}); keep one"
            )
        else:
            sources[table] = options[0]
    return sources, problems, warnings


def _other_formats(folder: Path, table: str) -> list[str]:
    return sorted(
        e.name
        for e in folder.iterdir()
        if e.is_file() and e.stem.lower() == table and e.suffix.lower() in _OTHER_FORMATS
    )


# -- reading files ---------------------------------------------------------------------------------


def _norm_name(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip()).lower()


def _read_csv(src: _Source) -> tuple[_Raw | None, list[str]]:
    path, label = src.paths[0], src.label
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    wrong: list[tuple[int, int]] = []  # (line, number of values)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [f"{label}: cannot be read ({exc.strerror or exc})"]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [
            f"{label}, line {line}: not UTF-8 text (byte {data[exc.start : exc.start + 1]!r}); "
            "save the file as CSV in UTF-8 (Excel: 'CSV UTF-8 (comma delimited)')"
        ]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        for record in reader:
            if not record or all(not v.strip() for v in record):
                start = reader.line_num + 1
                continue
            if header is None:
                header = record
            elif len(record) != len(header):
                wrong.append((start, len(record)))
            else:
                rows.append(record)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        return None, [f"{label}, line {reader.line_num}: cannot be read as CSV ({exc})"]
    if header is None:
        return None, [f"{label}: the file is empty; its first line must name the columns"]
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        sep = "';'" if ";" in header[0] else "tabs"
        return None, [
            f"{label}, line 1: the header is one column ({header[0][:60]!r}): the file seems to "
            f"separate values with {sep}; save it with commas between values and decimal points"
        ]
    problems = []
    if wrong:
        shown = ", ".join(f"line {ln} ({k} values)" for ln, k in wrong[:_SHOWN])
        more = f" and {len(wrong) - _SHOWN} more" if len(wrong) > _SHOWN else ""
        problems.append(
            f"{label}: lines with a number of values other than the header's {len(header)}: "
            f"{shown}{more}; a comma inside a value (a decimal comma?) must be quoted or "
            "written as a point"
        )
    table = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    columns: dict[str, np.ndarray] = {}
    for i, name in enumerate(header):
        values = np.array([v.strip() for v in table[i]], dtype=object)
        name = name.strip()
        if not name:
            if all(not v for v in values):
                continue  # an empty trailing column, as spreadsheets write them
            problems.append(f"{label}, line 1: column {i + 1} has values but no name")
            continue
        if name in columns:
            problems.append(f"{label}, line 1: column {name!r} appears more than once")
            continue
        columns[name] = values
    if problems:
        return None, problems
    where = _Where(label, csv_lines=np.array(lines, dtype=np.int64))
    return _Raw(columns, where, len(rows)), []


def _read_parquet(src: _Source) -> tuple[_Raw | None, list[str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pieces, names = [], []
    for path in src.paths:
        label = src.label + path.name if src.kind == "parts" else src.label
        try:
            pieces.append(pq.read_table(path))
        except (pa.ArrowException, OSError) as exc:
            return None, [f"{label}: cannot be read as parquet ({exc})"]
        names.append(path.name)
    try:
        table = pa.concat_tables(pieces, promote_options="permissive")
    except pa.ArrowException as exc:
        return None, [f"{src.label}: the parts do not share their columns and types ({exc})"]
    columns = {}
    for name in table.column_names:
        if name in columns:
            return None, [f"{src.label}: column {name!r} appears more than once"]
        columns[name] = table.column(name).to_numpy(zero_copy_only=False)
    where = _Where(src.label)
    if src.kind == "parts":
        where.parts = [(n, p.num_rows) for n, p in zip(names, pieces, strict=True)]
    return _Raw(columns, where, table.num_rows), []


# -- converting columns ----------------------------------------------------------------------------


def _text(v) -> str:
    if isinstance(v, float) and math.isfinite(v) and v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return str(v)


def _parse(v, col: Column):
    """One value: (converted value, 'ok' | 'missing' | 'bad')."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None, "missing"
    if isinstance(v, str):
        s = v.strip()
        if s.lower() in _MISSING:
            return None, "missing"
        if col.dtype in ("int64", "float64"):
            return (float(s), "ok") if _NUMBER.fullmatch(s) else (None, "bad")
        if col.dtype == "bool":
            key = s.lower()
            if key in _TRUE:
                return True, "ok"
            if key in _FALSE:
                return False, "ok"
            return None, "bad"
        if col.allowed is not None:
            for a in col.allowed:
                if s.lower() == a.lower():
                    return a, "ok"
        return s, "ok"
    if isinstance(v, bool | np.bool_):
        if col.dtype == "bool":
            return bool(v), "ok"
        if col.dtype == "string":
            return _parse("true" if v else "false", col)
        return None, "bad"
    if isinstance(v, numbers.Real):
        if col.dtype in ("int64", "float64"):
            return float(v), "ok"
        if col.dtype == "bool":
            return (bool(v), "ok") if v in (0, 1) else (None, "bad")
        return _parse(_text(v), col)
    return _parse(str(v), col)


def _convert(raw: np.ndarray, col: Column) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column in the representation checked by ``schema.validate``: (values, missing, bad).

    Numbers: float64 with NaN where missing or bad (int64 when nothing is missing or bad);
    true/false: bool, or object with None where missing or bad; text: object, None missing.
    """
    import pandas as pd

    n = len(raw)
    kind = raw.dtype.kind
    if col.dtype in ("int64", "float64") and kind in "fiu":
        values = raw.astype(np.float64)
        missing = np.isnan(values)
        bad = np.zeros(n, dtype=bool)
    elif col.dtype == "bool" and kind == "b":
        return raw.astype(bool), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    else:
        codes, uniques = pd.factorize(raw.astype(object), use_na_sentinel=True)
        parsed = [_parse(u, col) for u in uniques]
        status = np.array([s for _, s in parsed] + ["missing"], dtype=object)[codes]
        missing = status == "missing"
        bad = status == "bad"
        if col.dtype in ("int64", "float64"):
            conv = np.array([np.nan if v is None else v for v, _ in parsed] + [np.nan], float)
        else:
            conv = np.array([v for v, _ in parsed] + [None], dtype=object)
        values = conv[codes]
        if col.dtype == "bool" and not (missing | bad).any():
            return values.astype(bool), missing, bad
    if col.dtype == "int64" and not (missing | bad).any():
        whole = values == np.round(values)
        if whole.all() and (np.abs(values) < 2**62).all():
            values = values.astype(np.int64)
    return values, missing, bad


def _expected(col: Column) -> str:
    if col.dtype == "bool":
        return "expected true or false (or 1/0, yes/no)"
    what = "a whole number" if col.dtype == "int64" else "a number"
    if col.unit == "days":
        what += " of days"
    elif col.unit:
        what += f" in {col.unit}"
    allowed = _range(col)
    return f"expected {what}" + (f" ({allowed})" if allowed else "")


def _num(x: float) -> str:
    if math.isfinite(x) and x == int(x) and abs(x) < 1e6:
        return str(int(x))
    return f"{x:g}".replace("e+0", "e").replace("e+", "e")


def _range(col: Column) -> str:
    if col.low is not None and col.high is not None:
        return f"{_num(col.low)} to {_num(col.high)}"
    if col.low is not None:
        return f">= {_num(col.low)}"
    if col.high is not None:
        return f"<= {_num(col.high)}"
    return ""


def _hint(bad_values: list[str]) -> str:
    if any(_DECIMAL_COMMA.fullmatch(v) for v in bad_values):
        return "; write decimals with a point (3.5, not 3,5)"
    if any(v.startswith(("<", ">")) for v in bad_values):
        return "; '<' and '>' are not allowed: give a number (for example the detection limit)"
    return ""


@dataclass
class _Converted:
    columns: dict[str, np.ndarray]  # the schema's columns, as schema.validate checks them
    missing: dict[str, np.ndarray]
    extra: dict[str, np.ndarray]
    problems: list[str]
    reported: set[str]  # columns with a problem reported here (schema's own findings dropped)
    warnings: list[str]


def _snake(term: str) -> str:
    return re.sub(r"[\s\-/,]+", "_", term.strip()).strip("_").lower()


def _convert_table(table: str, raw: _Raw) -> _Converted:
    spec = TABLES[table]
    w = raw.where
    by_norm: dict[str, str] = {}
    extra_names = []
    problems, warnings, reported = [], [], set()
    known = {c.name for c in spec}
    for name in raw.columns:
        key = _norm_name(name)
        if key in known:
            if key in by_norm:
                problems.append(
                    f"{w.label}: columns {by_norm[key]!r} and {name!r} are both read as {key!r}; "
                    "keep one"
                )
                reported.add(key)
                continue
            by_norm[key] = name
        else:
            extra_names.append(name)
    columns, missing, filled = {}, {}, []
    for col in spec:
        source = by_norm.get(col.name)
        if source is None:
            if col.name == "replicate":
                columns[col.name] = np.zeros(raw.n, dtype=np.int64)
                missing[col.name] = np.zeros(raw.n, dtype=bool)
                continue
            if col.nullable:
                filled.append(col.name)
            elif col.name not in reported:
                near = difflib.get_close_matches(col.name, extra_names, n=1, cutoff=0.6)
                hint = f"; is {near[0]!r} this column? rename it" if near else ""
                problems.append(f"{w.label}: column {col.name} is missing ({_describe(col)}){hint}")
                reported.add(col.name)
            columns[col.name] = _empty_column(col, raw.n)
            missing[col.name] = np.ones(raw.n, dtype=bool)
            continue
        if col.name in reported:
            columns[col.name] = _empty_column(col, raw.n)
            missing[col.name] = np.ones(raw.n, dtype=bool)
            continue
        kind = getattr(raw.columns[source], "dtype", np.dtype(object)).kind
        if kind in "mM" and col.dtype != "string":
            # numpy counts durations as integers: nanoseconds would be read as days
            what = "durations" if kind == "m" else "dates/times"
            problems.append(
                f"{w.label}, column {col.name}: holds {what} "
                f"({raw.columns[source].dtype}); {_expected(col)} (days from the index start, "
                "e.g. a pandas duration column as df[col].dt.days)"
            )
            reported.add(col.name)
            columns[col.name] = _empty_column(col, raw.n)
            missing[col.name] = np.ones(raw.n, dtype=bool)
            continue
        values, miss, bad = _convert(raw.columns[source], col)
        if bad.any():
            shown = raw.columns[source]
            texts = [_text(shown[i]) for i in np.flatnonzero(bad)]
            problems.append(
                f"{w.label}, column {col.name}: {_expected(col)}, found "
                f"{w.rows(bad, lambda i, v=shown: repr(_text(v[i])))}{_hint(texts)}"
            )
            reported.add(col.name)
        columns[col.name] = values
        missing[col.name] = miss | bad
    if filled:
        warnings.append(
            f"{w.label}: optional columns not given, read as empty: {', '.join(filled)}"
        )
    if extra_names:
        warnings.append(
            f"{w.label}: columns not in the cohort-table schema, kept but not used by the "
            f"analysis: {', '.join(extra_names)}"
        )
    if table == "adverse_events" and "term" not in reported:
        warnings.extend(_snake_terms(columns, w))
    extra = {}
    for name in extra_names:
        v = raw.columns[name]
        if raw.where.csv_lines is not None:
            v = np.array([None if s.lower() in _MISSING else s for s in v], dtype=object)
        extra[name] = v
    return _Converted(columns, missing, extra, problems, reported, warnings)


def _snake_terms(columns: dict, w: _Where) -> list[str]:
    terms = columns["term"]
    changed = {}
    out = terms.copy()
    for i, t in enumerate(terms):
        if t is None:
            continue
        s = _snake(t)
        if s != t:
            changed.setdefault(t, s)
            out[i] = s
    columns["term"] = out
    if not changed:
        return []
    pairs = [f"{a!r} -> {b!r}" for a, b in list(changed.items())[:_SHOWN]]
    more = f" and {len(changed) - _SHOWN} more" if len(changed) > _SHOWN else ""
    return [f"{w.label}, column term: CTCAE terms written in snake_case: {', '.join(pairs)}{more}"]


def _describe(col: Column) -> str:
    what = {"int64": "whole numbers", "float64": "numbers", "bool": "true/false", "string": "text"}
    parts = [what[col.dtype]]
    if col.unit:
        parts.append(col.unit)
    return ", ".join(parts) + f": {col.description}"


def _empty_column(col: Column, n: int) -> np.ndarray:
    if col.dtype in ("int64", "float64"):
        return np.full(n, np.nan)
    return np.full(n, None, dtype=object)


def _empty_table(table: str) -> dict[str, np.ndarray]:
    dtypes = {"int64": np.int64, "float64": np.float64, "bool": np.bool_, "string": object}
    return {c.name: np.empty(0, dtype=dtypes[c.dtype]) for c in TABLES[table]}


def _duplicates(conv: _Converted, w: _Where) -> list[str]:
    """Patients listed more than once (each occurrence named)."""
    cols = conv.columns
    if {"replicate", "patient_id"} & conv.reported:
        return []
    if conv.missing["patient_id"].any() or conv.missing["replicate"].any():
        return []
    import pandas as pd

    rep = np.asarray(cols["replicate"], dtype=float)
    pid = np.asarray(cols["patient_id"], dtype=float)
    dup = pd.DataFrame({"r": rep, "p": pid}).duplicated(keep=False).to_numpy()
    if not dup.any():
        return []
    conv.reported.add("patient_id")
    return [
        f"{w.label}, column patient_id: each patient must have one row; repeated: "
        f"{w.rows(dup, lambda i: f'patient {_text(pid[i])}')}"
    ]


# -- relations checked here ------------------------------------------------------------------------


def _check_index_lines(pt: dict, ln: dict, wpt: _Where, wln: _Where) -> list[str]:
    """One row of each patient's index line in ``lines``, flagged ``index``, starting on day 0."""
    problems = []
    n = len(pt["patient_id"])
    row, found = locate(pt, ln)
    index_line = np.asarray(pt["index_line"], dtype=np.int64)
    is_index = found & (np.asarray(ln["line"], dtype=np.int64) == index_line[row])
    flagged = np.asarray(ln["index"], dtype=bool)
    pid = np.asarray(pt["patient_id"])
    lpid, lline = np.asarray(ln["patient_id"]), np.asarray(ln["line"])
    start = np.asarray(ln["start_day"], dtype=float)

    def line_of(i: int) -> str:
        return f"patient {lpid[i]}, line {lline[i]}"

    def index_of(i: int) -> str:
        return f"patient {pid[i]}, index_line {index_line[i]}"

    def start_of(i: int) -> str:
        return f"patient {lpid[i]}, start_day {_num(start[i])}"

    bad = flagged != is_index
    if bad.any():
        problems.append(
            f"{wln.label}, column index: must be true on the patient's index line "
            f"(line = patients' index_line) and false on every other line: "
            f"{wln.rows(bad, line_of)}"
        )
    count = np.bincount(row[is_index], minlength=n) if n else np.zeros(0, dtype=np.int64)
    lacking = count == 0
    if lacking.any():
        problems.append(
            f"{wpt.label}, column index_line: the patient has no row of this line in "
            f"{wln.label}: {wpt.rows(lacking, index_of)}"
        )
    off = is_index & (np.abs(start) > _DAY_TOL)
    if off.any():
        problems.append(
            f"{wln.label}, column start_day: the index line must start on day 0 (days count "
            f"from its start; earlier lines have negative days): {wln.rows(off, start_of)}"
        )
    return problems


def _show(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "empty"
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, numbers.Real):
        return _num(float(v))
    return repr(v)


#: Hints for values outside the range of a column, by column: the usual other unit.
_UNIT_HINTS = {
    "albumin_g_dl": "albumin in g/L divided by 10 gives g/dL",
    "haemoglobin_g_dl": "haemoglobin in g/L divided by 10 gives g/dL",
    "bilirubin_mg_dl": (
        f"bilirubin in µmol/L divided by {scores.BILIRUBIN_MG_DL_TO_UMOL_L:g} gives mg/dL"
    ),
}


def _remap(
    problem: str, wheres: dict[str, _Where], columns: dict, skip: set[str], reported: dict
) -> str | None:
    """A ``schema.validate`` message in this module's words, or None when already reported."""
    m = _SCHEMA_PROBLEM.match(problem)
    if m is None:
        return problem
    table, column = m.group(1), m.group(2)
    if table in skip:
        return None
    done = reported.get(table, set())
    if column is not None and column in done:
        return None
    rest = problem[m.end() :]
    if column is None and "patient_id" in done and "repeated" in rest:
        return None
    w = wheres.get(table)
    if w is None:
        return problem
    values = columns.get(table, {}).get(column) if column else None
    with_value = values is not None and "empty values" not in rest

    def row(r: re.Match) -> str:
        i = int(r.group(1))
        value = f", {column} {_show(values[i])}" if with_value else ""
        return f"{w.row(i)} (patient {r.group(2)}{value})"

    rest = _SCHEMA_ROW.sub(row, rest)
    if column is None:
        return f"{w.label}: {rest}"
    col = next((c for c in TABLES[table] if c.name == column), None)
    if col is not None and "values outside" in rest:
        if col.unit == "days" and col.low == 0:
            rest += "; days count from the start of the index line (day 0), and this day cannot be negative"
        elif column in _UNIT_HINTS:
            rest += f"; {_UNIT_HINTS[column]}"
    return f"{w.label}, column {column}: {rest}"


# -- the public functions --------------------------------------------------------------------------


def read_cohort(path) -> Cohort:
    """The cohort tables of the folder ``path`` as pandas DataFrames, checked against the
    contract (see the module docstring for the layout, the rules and the messages).

    Returns a :class:`Cohort`: a dict of the six tables with the folder, the files read, the
    absent optional tables and the warnings. Raises :class:`CohortInputError` listing every
    problem found.
    """
    import pandas as pd

    given = folder = _resolve(path)
    sources, problems, warnings = _find_sources(given, folder)
    if not sources and not problems and (folder / "cohort").is_dir():
        folder = folder / "cohort"
        sources, problems, warnings = _find_sources(given, folder)
    if not sources and not problems:
        entries = [e.name for e in sorted(folder.iterdir()) if not e.name.startswith(".")]
        if not entries:
            raise CohortInputError([f"{given}: the folder is empty; expected {_expected_files()}"])
        listed = ", ".join(entries[:8]) + (" ..." if len(entries) > 8 else "")
        raise CohortInputError(
            [f"{given}: no cohort tables there (found {listed}); expected {_expected_files()}"]
        )
    for table in REQUIRED_TABLES:
        if table not in sources:
            others = _other_formats(folder, table)
            hint = (
                f"; found {', '.join(others)}: export it as CSV (UTF-8, comma-separated)"
                if others
                else ""
            )
            problems.append(
                f"{table}: required table not found in {given} (expected {table}.csv, "
                f"{table}.parquet or a {table}/ folder of parquet parts){hint}"
            )
    absent = tuple(t for t in TABLES if t not in sources and t not in REQUIRED_TABLES)
    for table in absent:
        others = _other_formats(folder, table)
        hint = f" ({', '.join(others)} is not read: export it as CSV)" if others else ""
        warnings.append(
            f"{table}: no {table}.csv or {table}.parquet{hint}; read as an empty table, so "
            f"these cannot be computed: {OPTIONAL_TABLES[table]}"
        )

    converted: dict[str, _Converted] = {}
    wheres: dict[str, _Where] = {}
    skip: set[str] = set()
    for table in TABLES:
        src = sources.get(table)
        if src is None:
            if table in REQUIRED_TABLES:
                skip.add(table)
            continue
        raw, found = _read_csv(src) if src.kind == "csv" else _read_parquet(src)
        problems.extend(found)
        if raw is None:
            skip.add(table)
            continue
        wheres[table] = raw.where
        conv = _convert_table(table, raw)
        if table == "patients":
            if raw.n == 0:
                conv.problems.append(f"{raw.where.label}: no patients (the file has no data rows)")
            conv.problems.extend(_duplicates(conv, raw.where))
        problems.extend(conv.problems)
        warnings.extend(conv.warnings)
        converted[table] = conv

    for_schema: dict[str, object] = {}
    for table in TABLES:
        if table in converted:
            for_schema[table] = converted[table].columns
        elif table in skip:
            for_schema[table] = {}  # no columns: schema reports this table only, relations wait
        else:
            for_schema[table] = _empty_table(table)
    reported = {t: c.reported for t, c in converted.items()}
    try:
        validate(for_schema)
    except SchemaError as exc:
        for p in exc.problems:
            msg = _remap(p, wheres, for_schema, skip, reported)
            if msg is not None:
                problems.append(msg)
    if not problems:
        problems.extend(
            _check_index_lines(
                for_schema["patients"], for_schema["lines"], wheres["patients"], wheres["lines"]
            )
        )
    if problems:
        raise CohortInputError(problems, folder=str(given), warnings=warnings)

    frames, files, extras = {}, {}, {}
    for table in TABLES:
        conv = converted.get(table)
        if conv is None:
            frames[table] = pd.DataFrame(_empty_table(table))
            files[table] = ""
            extras[table] = []
            continue
        data = {
            c.name: _final(conv.columns[c.name], conv.missing[c.name], c) for c in TABLES[table]
        }
        data.update(conv.extra)
        frames[table] = pd.DataFrame(data)
        files[table] = sources[table].label
        extras[table] = list(conv.extra)
    return Cohort(
        frames, folder=folder, files=files, absent=absent, extra_columns=extras, warnings=warnings
    )


def _final(values: np.ndarray, missing: np.ndarray, col: Column):
    """A checked column in the dtype of the result (see the module docstring)."""
    import pandas as pd

    if col.dtype == "float64":
        return values.astype(np.float64)
    if col.dtype == "string":
        return values.astype(object)
    if not missing.any():
        return values.astype(np.int64 if col.dtype == "int64" else bool)
    if col.dtype == "int64":
        filled = np.where(missing, 0, values).astype(np.int64)
        return pd.arrays.IntegerArray(filled, missing.copy())
    filled = np.array([bool(v) if not m else False for v, m in zip(values, missing, strict=True)])
    return pd.arrays.BooleanArray(filled, missing.copy())


def example_cohort() -> Path:
    """The folder of the example dataset shipped with hccsim: 40 SYNTHETIC patients simulated
    from the anchor scenario (see its README.md); not real patients."""
    from importlib.resources import files

    return Path(str(files("hccsim.analysis") / "data" / "example_cohort"))


# -- the column reference --------------------------------------------------------------------------

_TYPES = {"int64": "whole number", "float64": "number", "bool": "true/false", "string": "text"}


def _allowed(col: Column) -> str:
    if col.allowed is not None:
        return ", ".join(f"`{a}`" for a in col.allowed)
    if col.dtype == "bool":
        return "`true`, `false`"
    if col.dtype == "string":
        return "any text"
    r = _range(col)
    if not r and col.unit == "days":
        return "any (negative before day 0)"
    return r if r else "any"


def _required(table: str, col: Column) -> str:
    if col.name == "replicate":
        return "no: 0 when left out"
    if col.nullable:
        return "no: may be left out or empty"
    return "yes"


def format_reference() -> str:
    """The tables and columns a cohort folder holds, as Markdown, from ``schema.TABLES`` (the
    generated part of docs/data-format.md)."""
    out = []
    for table, cols in TABLES.items():
        status = (
            "required"
            if table in REQUIRED_TABLES
            else f"optional; without it, no {OPTIONAL_TABLES[table]}"
        )
        if table == "lesions":
            status = "optional; the standard analysis does not need it"
        out.append(f"### `{table}` ({status})\n")
        out.append(f"`{table}.csv`: {TABLE_ROWS[table]}.\n")
        out.append("| column | type | unit | allowed values | required | meaning |")
        out.append("|---|---|---|---|---|---|")
        for c in cols:
            out.append(
                f"| `{c.name}` | {_TYPES[c.dtype]} | {c.unit} | {_allowed(c)} | "
                f"{_required(table, c)} | {c.description} |"
            )
        out.append("")
    return "\n".join(out)
