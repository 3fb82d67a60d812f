"""The cohort-table contract between the simulator and the analysis (DESIGN section 7).

Six long tables, every row carrying ``replicate`` and ``patient_id``; days count from the start
of the index line (day 0), prior lines have negative days. A real cohort exported to these
tables (one replicate, ``replicate = 0``) runs through the same analysis as a simulated one.

:func:`validate` checks types, units (by range), categories and the ordering rules, and raises
:class:`SchemaError` whose message names the table, the column and the rows at fault. The
column reference is in ``docs/cohort-tables.md``; :func:`describe` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

RESPONSES = ("CR", "PR", "SD", "PD", "NE")
NONTARGET = ("absent", "CR", "non-CR/non-PD", "PD", "NE")
END_REASONS = ("progression", "toxicity", "clinical_deterioration", "death", "end_of_follow_up")
CAUSES_OF_DEATH = ("cancer", "adverse_event", "background")
AE_ACTIONS = ("none", "dose_held", "drug_withdrawn", "death")
ORGANS = ("liver", "lung", "lymph_node", "adrenal", "bone", "peritoneum")


class SchemaError(ValueError):
    """Cohort tables that break the contract; ``problems`` lists every finding."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # int64, float64, bool, string
    unit: str = ""
    description: str = ""
    nullable: bool = False
    low: float | None = None
    high: float | None = None
    allowed: tuple[str, ...] | None = None


def _c(name, dtype, unit="", description="", **kw) -> Column:
    return Column(name, dtype, unit, description, **kw)


_KEYS = (
    _c("replicate", "int64", "", "replicate number (a real cohort: 0)", low=0),
    _c("patient_id", "int64", "", "patient number within the replicate", low=0),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "patients": (
        *_KEYS,
        _c(
            "arm",
            "string",
            "",
            "arm name (a cohort without arms: the scenario name)",
        ),
        _c("stratum", "string", "", "randomisation stratum", nullable=True),
        _c("entry_day", "float64", "days", "calendar day of entry from the study start", low=0),
        _c(
            "index_line",
            "int64",
            "",
            "line number of the index line (1 = first line)",
            low=1,
            high=20,
        ),
        _c("index_drug", "string", "", "regimen of the index line"),
        _c("age", "float64", "years", "age at index start", low=18, high=110),
        _c("male", "bool", "", "sex is male"),
        _c("weight_kg", "float64", "kg", "body weight", low=20, high=250),
        _c("hbv", "bool", "", "HBsAg positive", nullable=True),
        _c(
            "hbv_dna_suppressed",
            "bool",
            "",
            "HBV DNA suppressed on nucleos(t)ide analogues",
            nullable=True,
        ),
        _c("hcv", "bool", "", "HCV antibody positive", nullable=True),
        _c(
            "hcv_svr",
            "bool",
            "",
            "sustained virological response after HCV treatment",
            nullable=True,
        ),
        _c("alcohol", "bool", "", "alcohol abuse", nullable=True),
        _c("nash", "bool", "", "metabolic (NASH/MASLD) liver disease", nullable=True),
        _c("smoking", "bool", "", "smoking history", nullable=True),
        _c("hypertension", "bool", "", "hypertension", nullable=True),
        _c("diabetes", "bool", "", "diabetes mellitus", nullable=True),
        _c("hyperlipidemia", "bool", "", "hyperlipidaemia", nullable=True),
        _c("cirrhosis", "bool", "", "liver cirrhosis", nullable=True),
        _c("ecog", "int64", "", "ECOG performance status", low=0, high=4),
        _c("albumin_g_dl", "float64", "g/dL", "serum albumin", low=0.5, high=7),
        _c("bilirubin_mg_dl", "float64", "mg/dL", "total bilirubin", low=0.05, high=50),
        _c("inr", "float64", "", "prothrombin time INR", low=0.5, high=10),
        _c("ascites", "int64", "", "0 none, 1 mild, 2 moderate-severe", low=0, high=2),
        _c("encephalopathy", "int64", "", "0 none, 1 grade 1-2, 2 grade 3-4", low=0, high=2),
        _c("albi", "float64", "", "ALBI score", low=-6, high=2),
        _c("albi_grade", "int64", "", "ALBI grade", nullable=True, low=1, high=3),
        _c(
            "malbi_grade",
            "string",
            "",
            "modified ALBI grade",
            nullable=True,
            allowed=("1", "2a", "2b", "3"),
        ),
        _c("child_pugh_score", "int64", "", "Child-Pugh score", low=5, high=15),
        _c("child_pugh_class", "string", "", "Child-Pugh class", allowed=("A", "B", "C")),
        _c("bclc", "string", "", "BCLC stage", allowed=("0", "A", "B", "C", "D")),
        _c("intrahepatic_lesions", "int64", "", "number of intrahepatic lesions", low=0, high=1000),
        _c("max_lesion_mm", "float64", "mm", "largest intrahepatic lesion", low=0, high=400),
        _c(
            "occupation_pct",
            "float64",
            "%",
            "share of the liver occupied by tumour",
            nullable=True,
            low=0,
            high=100,
        ),
        _c("mvi", "bool", "", "macrovascular invasion"),
        _c("ehm", "bool", "", "extrahepatic metastasis"),
        _c("afp_ng_ml", "float64", "ng/mL", "alpha-fetoprotein", low=0, high=1e8),
        _c("prior_tace", "bool", "", "prior transarterial chemoembolisation"),
        _c("prior_resection", "bool", "", "prior hepatic resection", nullable=True),
        _c("prior_ablation", "bool", "", "prior local ablation", nullable=True),
        _c(
            "differentiation",
            "string",
            "",
            "histological differentiation",
            nullable=True,
            allowed=("well", "moderate", "poor", "unknown"),
        ),
        _c("death", "bool", "", "died during follow-up"),
        _c("death_day", "float64", "days", "day of death from index start", nullable=True, low=0),
        _c("last_follow_up_day", "float64", "days", "day of death or of the last contact", low=0),
        _c(
            "cause_of_death", "string", "", "cause of death", nullable=True, allowed=CAUSES_OF_DEATH
        ),
    ),
    "lines": (
        *_KEYS,
        _c("line", "int64", "", "line number (1 = first line)", low=1, high=20),
        _c("drug", "string", "", "regimen"),
        _c("index", "bool", "", "this is the index line"),
        _c("start_day", "float64", "days", "start of the line"),
        _c("end_day", "float64", "days", "end of the line (last follow-up if ongoing)"),
        _c("end_reason", "string", "", "why the line ended", allowed=END_REASONS),
        _c("cycles", "int64", "", "treatment cycles started", low=0),
        _c("dose_reductions", "int64", "", "dose reductions", low=0),
        _c("holds", "int64", "", "treatment holds for adverse events", low=0),
    ),
    "lesions": (
        *_KEYS,
        _c("line", "int64", "", "line during which the scan was taken", low=1, high=20),
        _c("visit", "int64", "", "scan number within the line (0 = the line's baseline)", low=0),
        _c("day", "float64", "days", "day of the scan"),
        _c("lesion_id", "int64", "", "lesion number within the patient", low=0),
        _c("organ", "string", "", "organ", allowed=ORGANS),
        _c("target_recist", "bool", "", "target lesion under RECIST 1.1"),
        _c("target_mrecist", "bool", "", "target lesion under mRECIST"),
        _c("diameter_mm", "float64", "mm", "longest diameter (0: disappeared)", low=0, high=1000),
        _c(
            "viable_diameter_mm",
            "float64",
            "mm",
            "longest viable (enhancing) diameter",
            low=0,
            high=1000,
        ),
        _c("enhancing", "bool", "", "arterially enhancing (evaluable by mRECIST)"),
        _c("new", "bool", "", "a new lesion"),
    ),
    "assessments": (
        *_KEYS,
        _c("line", "int64", "", "line during which the scan was taken", low=1, high=20),
        _c("visit", "int64", "", "scan number within the line (0 = the line's baseline)", low=0),
        _c("day", "float64", "days", "day of the scan"),
        _c("baseline", "bool", "", "the line's baseline scan"),
        _c(
            "sum_recist_mm",
            "float64",
            "mm",
            "sum of target diameters (RECIST 1.1)",
            nullable=True,
            low=0,
        ),
        _c(
            "sum_mrecist_mm",
            "float64",
            "mm",
            "sum of viable target diameters (mRECIST)",
            nullable=True,
            low=0,
        ),
        _c("nontarget", "string", "", "non-target status", allowed=NONTARGET),
        _c("new_lesions", "bool", "", "new lesions seen (any of the three below)"),
        _c("new_intrahepatic", "bool", "", "a new intrahepatic lesion", nullable=True),
        _c("new_extrahepatic", "bool", "", "new extrahepatic spread", nullable=True),
        _c("new_vascular_invasion", "bool", "", "new macrovascular invasion", nullable=True),
        _c(
            "response_recist",
            "string",
            "",
            "visit response, RECIST 1.1 (baseline: null)",
            nullable=True,
            allowed=RESPONSES,
        ),
        _c(
            "response_mrecist",
            "string",
            "",
            "visit response, mRECIST (baseline: null)",
            nullable=True,
            allowed=RESPONSES,
        ),
    ),
    "labs": (
        *_KEYS,
        _c("day", "float64", "days", "day of the blood draw"),
        _c("albumin_g_dl", "float64", "g/dL", "serum albumin", nullable=True, low=0.5, high=7),
        _c(
            "bilirubin_mg_dl",
            "float64",
            "mg/dL",
            "total bilirubin",
            nullable=True,
            low=0.05,
            high=60,
        ),
        _c("inr", "float64", "", "prothrombin time INR", nullable=True, low=0.5, high=15),
        _c("albi", "float64", "", "ALBI score", nullable=True, low=-6, high=3),
        _c(
            "ascites",
            "int64",
            "",
            "ascites at the visit: 0 none, 1 mild, 2 moderate to severe (Child-Pugh points - 1)",
            nullable=True,
            low=0,
            high=2,
        ),
        _c(
            "encephalopathy",
            "int64",
            "",
            "hepatic encephalopathy at the visit: 0 none, 1 grade 1-2, 2 grade 3-4",
            nullable=True,
            low=0,
            high=2,
        ),
        _c(
            "child_pugh_score",
            "int64",
            "",
            "Child-Pugh score 5-15 from the visit's bilirubin, albumin, INR, ascites and "
            "encephalopathy",
            nullable=True,
            low=5,
            high=15,
        ),
        _c(
            "ecog",
            "int64",
            "",
            "ECOG performance status at the visit",
            nullable=True,
            low=0,
            high=4,
        ),
        _c("afp_ng_ml", "float64", "ng/mL", "alpha-fetoprotein", nullable=True, low=0, high=1e9),
        _c("ast_u_l", "float64", "U/L", "aspartate aminotransferase", nullable=True, low=0),
        _c("alt_u_l", "float64", "U/L", "alanine aminotransferase", nullable=True, low=0),
        _c("platelets_10e9_l", "float64", "10^9/L", "platelet count", nullable=True, low=0),
        _c("haemoglobin_g_dl", "float64", "g/dL", "haemoglobin", nullable=True, low=0),
        _c("ammonia_umol_l", "float64", "µmol/L", "blood ammonia", nullable=True, low=0),
        _c("urine_protein_g_24h", "float64", "g/24 h", "urine protein", nullable=True, low=0),
    ),
    "adverse_events": (
        *_KEYS,
        _c("line", "int64", "", "line on which the event began", low=1, high=20),
        _c("drug", "string", "", "regimen in force at onset"),
        _c("term", "string", "", "CTCAE v5.0 term (snake_case)"),
        _c("grade", "int64", "", "CTCAE grade", low=1, high=5),
        _c("onset_day", "float64", "days", "day of onset"),
        _c("end_day", "float64", "days", "day of resolution (may fall after the last follow-up)"),
        _c("action", "string", "", "action taken with the drug", allowed=AE_ACTIONS),
    ),
}

TABLE_NAMES = tuple(TABLES)


def arrow_schema(table: str):
    """The pyarrow schema of one table."""
    import pyarrow as pa

    types = {
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "string": pa.string(),
    }
    return pa.schema([pa.field(c.name, types[c.dtype], nullable=c.nullable) for c in TABLES[table]])


def describe() -> str:
    """The column reference as Markdown."""
    out = []
    for table, cols in TABLES.items():
        out.append(
            f"### `{table}`\n\n| column | type | unit | null | meaning |\n|---|---|---|---|---|"
        )
        for c in cols:
            meaning = c.description + (f" ({', '.join(c.allowed)})" if c.allowed else "")
            out.append(
                f"| `{c.name}` | {c.dtype} | {c.unit} | {'yes' if c.nullable else 'no'} | {meaning} |"
            )
        out.append("")
    return "\n".join(out)


def _rows(mask: np.ndarray, frame, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    shown = []
    for i in idx[:limit]:
        pid = frame["patient_id"][i] if "patient_id" in frame else "?"
        shown.append(f"row {i} (patient {pid})")
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return ", ".join(shown) + more


def as_columns(table) -> dict[str, np.ndarray]:
    """A pyarrow Table, pandas DataFrame or mapping of arrays as numpy columns."""
    if hasattr(table, "column_names"):  # pyarrow
        return {n: table.column(n).to_numpy(zero_copy_only=False) for n in table.column_names}
    if hasattr(table, "columns"):  # pandas
        out = {}
        for n in table.columns:
            values = table[n].to_numpy()
            if values.dtype.kind == "O":  # pandas' missing markers (pd.NA of nullable dtypes)
                values = np.where(table[n].isna().to_numpy(), None, values)
            out[n] = values
        return out
    return {n: np.asarray(v) for n, v in table.items()}


def validate(tables: Mapping[str, object], *, where: str = "") -> None:
    """Check cohort tables against the contract; raise :class:`SchemaError` listing problems.

    ``tables`` maps table names to pyarrow Tables, pandas DataFrames or mappings of column
    arrays; all six are required.
    ``where`` prefixes messages (for example the folder the tables came from).
    """
    prefix = f"{where}: " if where else ""
    problems: list[str] = []
    missing = [t for t in TABLES if t not in tables]
    if missing:
        raise SchemaError([f"{prefix}missing table(s): {', '.join(missing)}"])
    cols = {}
    for name, spec in TABLES.items():
        frame = as_columns(tables[name])
        cols[name] = frame
        problems.extend(_check_table(name, spec, frame, prefix))
    if not problems:
        problems.extend(_check_relations(cols, prefix))
    if problems:
        raise SchemaError(problems)


def _is_null(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return np.array(
            [v is None or (isinstance(v, float) and np.isnan(v)) for v in values], dtype=bool
        )
    return np.zeros(len(values), dtype=bool)


def _is_number(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _check_table(name: str, spec: tuple[Column, ...], frame: dict, prefix: str) -> list[str]:
    problems = []
    known = {c.name for c in spec}
    for extra in sorted(set(frame) - known):
        problems.append(
            f"{prefix}table {name}: unknown column {extra!r}; see docs/cohort-tables.md"
        )
    for c in spec:
        where = f"{prefix}table {name}, column {c.name}"
        if c.name not in frame:
            problems.append(f"{where}: missing ({c.dtype}, {c.description})")
            continue
        values = frame[c.name]
        null = _is_null(values)
        if null.any() and not c.nullable:
            problems.append(f"{where}: empty values are not allowed: {_rows(null, frame)}")
        ok = ~null
        if c.dtype in ("int64", "float64"):
            try:
                num = values[ok].astype(float)
            except (TypeError, ValueError):
                bad = np.zeros(len(values), dtype=bool)
                bad[np.flatnonzero(ok)] = [not _is_number(v) for v in values[ok]]
                problems.append(
                    f"{where}: expected numbers ({c.unit or 'no unit'}): {_rows(bad, frame)}"
                )
                continue
            if c.dtype == "int64" and len(num) and np.any(num != np.round(num)):
                bad = np.zeros(len(values), dtype=bool)
                bad[np.flatnonzero(ok)[num != np.round(num)]] = True
                problems.append(f"{where}: expected whole numbers: {_rows(bad, frame)}")
            bad = np.zeros(len(values), dtype=bool)
            if len(num):
                out = ~np.isfinite(num)
                if c.low is not None:
                    out |= num < c.low
                if c.high is not None:
                    out |= num > c.high
                bad[np.flatnonzero(ok)[out]] = True
            if bad.any():
                rng = f"[{c.low if c.low is not None else '-inf'}, {c.high if c.high is not None else 'inf'}]"
                unit = f" {c.unit}" if c.unit else ""
                problems.append(f"{where}: values outside {rng}{unit}: {_rows(bad, frame)}")
        elif c.dtype == "bool":
            if values.dtype.kind != "b":
                bad = ok & np.array([v not in (0, 1) for v in values.tolist()], dtype=bool)
                if bad.any():
                    problems.append(f"{where}: expected true/false: {_rows(bad, frame)}")
        elif c.allowed is not None:
            bad = ok & ~np.isin(values.astype(object), np.array(c.allowed, dtype=object))
            if bad.any():
                first = values[np.flatnonzero(bad)[0]]
                problems.append(
                    f"{where}: {first!r} is not allowed; expected one of {', '.join(c.allowed)}: "
                    f"{_rows(bad, frame)}"
                )
    return problems


def _check_relations(cols: dict[str, dict], prefix: str) -> list[str]:
    """Ordering rules: lines ordered and non-overlapping, nothing after the last follow-up."""
    problems = []
    pt = cols["patients"]
    key = pt["replicate"].astype(np.int64) * (1 << 32) + pt["patient_id"].astype(np.int64)
    if len(np.unique(key)) != len(key):
        dup = np.zeros(len(key), dtype=bool)
        _, first = np.unique(key, return_index=True)
        dup[np.setdiff1d(np.arange(len(key)), first)] = True
        problems.append(
            f"{prefix}table patients: (replicate, patient_id) repeated: {_rows(dup, pt)}"
        )
        return problems
    order = np.argsort(key)
    sorted_key = key[order]
    last = pt["last_follow_up_day"].astype(float)
    death = pt["death"].astype(bool)
    dday = pt["death_day"].astype(float)
    bad = death & ~np.isclose(dday, last)
    if bad.any():
        problems.append(
            f"{prefix}table patients, column death_day: must equal last_follow_up_day for patients who died: {_rows(bad, pt)}"
        )
    bad = ~death & ~np.isnan(dday)
    if bad.any():
        problems.append(
            f"{prefix}table patients, column death_day: must be empty for patients alive: {_rows(bad, pt)}"
        )

    def follow_up(frame) -> np.ndarray:
        k = frame["replicate"].astype(np.int64) * (1 << 32) + frame["patient_id"].astype(np.int64)
        pos = np.searchsorted(sorted_key, k)
        pos = np.minimum(pos, len(sorted_key) - 1)
        found = sorted_key[pos] == k if len(sorted_key) else np.zeros(len(k), dtype=bool)
        fu = np.where(found, last[order][pos] if len(order) else np.nan, np.nan)
        return found, fu

    tol = 1e-9
    for table, col in (
        ("lines", "start_day"),
        ("lesions", "day"),
        ("assessments", "day"),
        ("labs", "day"),
        ("adverse_events", "onset_day"),
    ):
        frame = cols[table]
        if not len(frame["patient_id"]):
            continue
        found, fu = follow_up(frame)
        if (~found).any():
            problems.append(
                f"{prefix}table {table}: patients not in the patients table: {_rows(~found, frame)}"
            )
            continue
        after = frame[col].astype(float) > fu + tol
        if after.any():
            problems.append(
                f"{prefix}table {table}, column {col}: after the patient's last follow-up: {_rows(after, frame)}"
            )
    ae = cols["adverse_events"]
    if len(ae["patient_id"]):
        bad = ae["end_day"].astype(float) < ae["onset_day"].astype(float) - tol
        if bad.any():
            problems.append(
                f"{prefix}table adverse_events, column end_day: before onset_day: {_rows(bad, ae)}"
            )
    ln = cols["lines"]
    if len(ln["patient_id"]):
        start, end = ln["start_day"].astype(float), ln["end_day"].astype(float)
        bad = end < start
        if bad.any():
            problems.append(
                f"{prefix}table lines, column end_day: before start_day: {_rows(bad, ln)}"
            )
        found, fu = follow_up(ln)
        bad = end > fu + tol
        if bad.any():
            problems.append(
                f"{prefix}table lines, column end_day: after the patient's last follow-up: {_rows(bad, ln)}"
            )
        k = ln["replicate"].astype(np.int64) * (1 << 32) + ln["patient_id"].astype(np.int64)
        o = np.lexsort((ln["line"].astype(np.int64), k))
        same = k[o][1:] == k[o][:-1]
        overlap = same & (start[o][1:] < end[o][:-1] - tol)
        repeat = same & (ln["line"][o][1:] == ln["line"][o][:-1])
        for mask, col, what in (
            (repeat, "line", "lines of a patient must be numbered once each"),
            (overlap, "start_day", "before the end_day of the patient's previous line (overlap)"),
        ):
            bad = np.zeros(len(k), dtype=bool)
            bad[o[1:][mask]] = True
            if bad.any():
                problems.append(f"{prefix}table lines, column {col}: {what}: {_rows(bad, ln)}")
    return problems
