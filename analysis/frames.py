"""Reading cohort tables: one replicate's columns, patients' rows, columns as numbers or text.

Shared by the analysis modules. A table is anything ``schema.as_columns`` reads (a pandas
DataFrame, a pyarrow Table or a mapping of column arrays). Patients are identified by
(replicate, patient_id); :func:`patient_keys` packs the pair into one int64.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from hccsim.analysis.schema import as_columns

_SHIFT = 1 << 32


def one_replicate(tables, names: Iterable[str], replicate) -> dict[str, dict[str, np.ndarray]]:
    """The named tables as numpy columns, restricted to one replicate (see the module docstring)."""
    names = tuple(names)
    if not isinstance(tables, Mapping):
        raise ValueError(f"tables must map table names to tables, not {type(tables).__name__}")
    cols = {}
    for name in names:
        try:
            frame = tables[name]
        except KeyError:
            raise ValueError(
                f"tables: table {name!r} is missing (this function needs {', '.join(names)})"
            ) from None
        cols[name] = as_columns(frame)
        for c in ("replicate", "patient_id"):
            if c not in cols[name]:
                raise ValueError(f"tables: table {name!r} has no column {c!r}")
    reps = {n: np.asarray(c["replicate"], dtype=np.int64) for n, c in cols.items()}
    if replicate is None:
        found: set[int] = set()
        for r in reps.values():
            if not len(r):
                continue
            # min == max: one replicate, without the sort np.unique would do
            found.update(np.unique(r).tolist() if r.min() != r.max() else [int(r[0])])
        if len(found) > 1:
            shown = sorted(found)
            listed = ", ".join(map(str, shown[:10])) + (" ..." if len(shown) > 10 else "")
            raise ValueError(
                f"replicate=None needs tables with one replicate, but they hold {len(shown)} "
                f"({listed}); pass replicate= one of them"
            )
        return cols
    if isinstance(replicate, bool) or not isinstance(replicate, int | np.integer):
        raise ValueError(f"replicate must be None or an integer, not {replicate!r}")
    present = reps[names[0]]
    if not np.any(present == replicate):
        listed = ", ".join(map(str, np.unique(present)[:10].tolist())) or "none"
        raise ValueError(
            f"replicate={replicate!r} is not in table {names[0]!r} (replicates: {listed})"
        )
    return {
        n: {c: np.asarray(v)[reps[n] == replicate] for c, v in frame.items()}
        for n, frame in cols.items()
    }


def need_columns(frame: dict, table: str, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise ValueError(f"tables: table {table!r} lacks column(s) {', '.join(missing)}")


def patient_keys(frame) -> np.ndarray:
    return np.asarray(frame["replicate"], dtype=np.int64) * _SHIFT + np.asarray(
        frame["patient_id"], dtype=np.int64
    )


def locate(patients, frame) -> tuple[np.ndarray, np.ndarray]:
    """Row of each ``frame`` row's patient in ``patients``, and whether it was found."""
    pk = patient_keys(patients)
    k = patient_keys(frame)
    if not len(pk):
        return np.zeros(len(k), dtype=np.intp), np.zeros(len(k), dtype=bool)
    order = np.argsort(pk, kind="stable")
    pos = np.minimum(np.searchsorted(pk[order], k), len(pk) - 1)
    return order[pos], pk[order][pos] == k


def index_line_rows(pt, ln) -> np.ndarray:
    """Row of each patient's index line in ``ln``; -1 when there is none."""
    out = np.full(len(pt["patient_id"]), -1, dtype=np.intp)
    if not len(ln["patient_id"]):
        return out
    row, found = locate(pt, ln)
    index_line = np.asarray(pt["index_line"], dtype=np.int64)
    hit = found & (np.asarray(ln["line"], dtype=np.int64) == index_line[row])
    out[row[hit]] = np.flatnonzero(hit)
    return out


def as_float(values) -> np.ndarray:
    """A column as floats, missing markers (None, NaN, pandas' NA) as NaN."""
    a = np.asarray(values)
    if a.dtype.kind in "fiub":
        return a.astype(float)

    def one(v) -> float:
        try:
            return float(v)
        except (TypeError, ValueError):
            return math.nan

    return np.array([one(v) for v in a], dtype=float)


def as_text(values) -> np.ndarray:
    """A column as an object array of str, missing markers as None."""
    a = np.asarray(values, dtype=object)
    out = np.empty(len(a), dtype=object)
    for i, v in enumerate(a):
        missing = v is None or (isinstance(v, float) and math.isnan(v)) or str(v) in ("", "<NA>")
        out[i] = None if missing else str(v)
    return out
