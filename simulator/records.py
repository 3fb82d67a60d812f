"""Column buffers of one batch of patients, turned into the cohort tables once at the end.

During a batch, rows are appended as tuples (one ``list.append`` per row; a scan appends its
lesions as one chunk of arrays). Patients of a batch are interleaved in simulated time, so at the
end every table is put in patient order by a stable sort on ``patient_id`` (within a patient,
rows stay in the order they were made): the tables do not depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hccsim.analysis.schema import TABLES

#: Column order of the row tuples the course appends (replicate is added at the end).
PATIENT_COLS = tuple(c.name for c in TABLES["patients"][1:])
LINE_COLS = tuple(c.name for c in TABLES["lines"][1:])
ASSESSMENT_COLS = tuple(c.name for c in TABLES["assessments"][1:])
AE_COLS = tuple(c.name for c in TABLES["adverse_events"][1:])
LAB_COLS = tuple(c.name for c in TABLES["labs"][1:])
LESION_COLS = tuple(c.name for c in TABLES["lesions"][1:])

Columns = dict[str, np.ndarray]


class Buffers:
    """Row buffers of one batch."""

    __slots__ = (
        "adverse_events",
        "assessments",
        "lab_actions",
        "labs",
        "lesions",
        "lines",
        "patients",
    )

    def __init__(self) -> None:
        self.patients: list[tuple] = []
        self.lines: list[tuple] = []
        self.assessments: list[tuple] = []
        self.adverse_events: list[tuple] = []
        #: lab chunks: (patient_id, days, values of shape (len(days), n_lab_columns))
        self.labs: list[tuple[int, np.ndarray, np.ndarray]] = []
        #: lesion chunks: (patient_id, line, visit, day, static arrays..., diameters, viable)
        self.lesions: list[tuple] = []
        #: dose actions taken on lab values: (patient_id, [(line, term, day, action), ...])
        self.lab_actions: list[tuple[int, list]] = []

    def to_columns(self, replicate: int) -> dict[str, Columns]:
        """All six tables as numpy columns in patient order, ``replicate`` filled in."""
        out = {
            "patients": _rows_to_columns(self.patients, PATIENT_COLS),
            "lines": _rows_to_columns(self.lines, LINE_COLS),
            "assessments": _rows_to_columns(self.assessments, ASSESSMENT_COLS),
            "adverse_events": _rows_to_columns(self.adverse_events, AE_COLS),
            "labs": _lab_columns(self.labs),
            "lesions": _lesion_columns(self.lesions),
        }
        for name, cols in out.items():
            n = len(cols["patient_id"])
            cols["replicate"] = np.full(n, replicate, dtype=np.int64)
            out[name] = _typed(name, cols)
        return out


def _rows_to_columns(rows: list[tuple], names: tuple[str, ...]) -> Columns:
    """Row tuples to columns in patient order (object arrays; typed by :func:`_typed`)."""
    if not rows:
        return {n: np.empty(0, dtype=object) for n in names}
    order = np.argsort(
        np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)), kind="stable"
    )
    return {n: _column(col, order) for n, col in zip(names, zip(*rows, strict=True), strict=True)}


def _column(values: tuple, order: np.ndarray) -> np.ndarray:
    arr = np.array(values)  # numeric and bool columns get their dtype here, text stays text
    if arr.dtype.kind in "USO":
        arr = np.array(values, dtype=object)
    return arr[order]


def _lab_columns(chunks: list[tuple[int, np.ndarray, np.ndarray]]) -> Columns:
    names = LAB_COLS
    if not chunks:
        return {n: np.empty(0, dtype=object) for n in names}
    chunks = sorted(chunks, key=lambda c: c[0])  # stable: one chunk per patient
    pid = np.concatenate([np.full(len(c[1]), c[0], dtype=np.int64) for c in chunks])
    day = np.concatenate([c[1] for c in chunks])
    values = np.concatenate([c[2] for c in chunks])
    out = {"patient_id": pid, "day": day}
    for j, n in enumerate(names[2:]):
        out[n] = values[:, j]
    return out


def _lesion_columns(chunks: list[tuple]) -> Columns:
    names = LESION_COLS
    if not chunks:
        return {n: np.empty(0, dtype=object) for n in names}
    order = np.argsort(
        np.fromiter((c[0] for c in chunks), dtype=np.int64, count=len(chunks)), kind="stable"
    )
    chunks = [chunks[i] for i in order]
    sizes = np.fromiter((len(c[4]) for c in chunks), dtype=np.int64, count=len(chunks))
    out: Columns = {}
    for j, n in enumerate(("patient_id", "line", "visit", "day")):
        out[n] = np.repeat(
            np.fromiter(
                (c[j] for c in chunks), dtype=float if n == "day" else np.int64, count=len(chunks)
            ),
            sizes,
        )
    for j, n in enumerate(names[4:], start=4):
        out[n] = np.concatenate([c[j] for c in chunks])
    return out


_NUMPY = {"int64": np.int64, "float64": np.float64, "bool": np.bool_}


def _typed(name: str, cols: Columns) -> Columns:
    """Columns in the contract's order and dtypes (text as object arrays, None for null)."""
    out = {}
    for c in TABLES[name]:
        v = cols[c.name]
        if c.dtype == "string":
            out[c.name] = v if v.dtype == object else v.astype(object)
        elif c.dtype == "float64" and v.dtype == object:
            out[c.name] = np.array([np.nan if x is None else x for x in v], dtype=np.float64)
        else:
            out[c.name] = v.astype(_NUMPY[c.dtype], copy=False)
    return out


def concat(parts: list[dict[str, Columns]]) -> dict[str, Columns]:
    """Concatenate the tables of consecutive batches (already in patient order)."""
    if len(parts) == 1:
        return parts[0]
    return {
        name: {col: np.concatenate([p[name][col] for p in parts]) for col in parts[0][name]}
        for name in parts[0]
    }


def to_arrow(name: str, cols: Mapping[str, np.ndarray]):
    """One table as a pyarrow Table with the contract's schema."""
    import pyarrow as pa

    from hccsim.analysis.schema import arrow_schema

    schema = arrow_schema(name)
    arrays = []
    for field in schema:
        v = cols[field.name]
        if pa.types.is_string(field.type):
            arrays.append(pa.array(v.tolist(), type=field.type))
        elif pa.types.is_floating(field.type) and field.nullable:
            arrays.append(pa.array(v, type=field.type, from_pandas=True))
        else:
            arrays.append(pa.array(v, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)
