"""Hand-built cohort tables for the analysis tests.

``patient`` describes one patient in a few arguments; ``cohort`` turns patients into the six
tables of ``hccsim.analysis.schema.TABLES`` as dicts of numpy arrays (every column, in the
schema's order), filling the columns a test does not care about with plausible values that pass
``schema.validate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hccsim.analysis import scores
from hccsim.analysis.schema import TABLES
from hccsim.analysis.schema import arrow_schema as TABLES_SCHEMA

_NUMPY = {"int64": np.int64, "float64": np.float64, "bool": np.bool_, "string": object}

#: Target sums (mm) written for each visit response (baseline 50 mm); NE: a target not assessed.
_SUMS = {None: 50.0, "CR": 0.0, "PR": 30.0, "SD": 50.0, "PD": 70.0, "NE": math.nan}


@dataclass
class Line:
    line: int
    start_day: float
    end_day: float
    end_reason: str = "end_of_follow_up"
    drug: str = "sorafenib"


@dataclass
class Scan:
    """A post-baseline scan: its day, the visit responses and the line it belongs to."""

    day: float
    recist: str
    mrecist: str | None = None  # None: the same as ``recist``
    line: int | None = None  # None: the patient's index line


@dataclass
class Patient:
    patient_id: int
    last_follow_up_day: float
    death: bool = False
    replicate: int = 0
    index_line: int = 1
    lines: list[Line] = field(default_factory=list)
    scans: list[Scan] = field(default_factory=list)


def patient(
    patient_id: int,
    *,
    last_fu: float,
    death: bool = False,
    scans=(),
    lines=None,
    index_line: int = 1,
    replicate: int = 0,
) -> Patient:
    """One patient. ``scans``: ``Scan`` objects or ``(day, recist[, mrecist[, line]])`` tuples.

    ``lines``: ``Line`` objects or ``(line, start, end[, end_reason])`` tuples; by default one
    line, the index line, from day 0 to the last follow-up. Every line gets a baseline scan on
    its first day.
    """
    if lines is None:
        lines = [Line(index_line, 0.0, last_fu, "death" if death else "end_of_follow_up")]
    lines = [ln if isinstance(ln, Line) else Line(*ln) for ln in lines]
    scans = [s if isinstance(s, Scan) else Scan(*s) for s in scans]
    return Patient(patient_id, float(last_fu), death, replicate, index_line, lines, scans)


def _table(name: str, rows: list[dict]) -> dict[str, np.ndarray]:
    out = {}
    for c in TABLES[name]:
        values = [r.get(c.name) if c.nullable else r[c.name] for r in rows]  # unknown: null
        dtype = _NUMPY[c.dtype]
        if c.nullable and c.dtype != "string":
            dtype = np.float64  # nulls as NaN
        out[c.name] = np.array(values, dtype=dtype) if values else np.empty(0, dtype=dtype)
    return out


def to_arrow(tables, typed: bool = True):
    """The tables as pyarrow Tables (typed: the contract's schema; NaN in a nullable column is
    a null, as pandas and parquet readers see it)."""
    import pyarrow as pa

    out = {}
    for name, cols in tables.items():
        if not typed:
            out[name] = pa.table(cols)
            continue
        fields = TABLES_SCHEMA(name)
        out[name] = pa.table(
            {f.name: pa.array(cols[f.name], type=f.type, from_pandas=True) for f in fields},
            schema=fields,
        )
    return out


def cohort(*patients: Patient) -> dict[str, dict[str, np.ndarray]]:
    """The six cohort tables of ``patients`` (in the order given)."""
    pt, ln, le, asm, lab, ae = [], [], [], [], [], []
    for p in patients:
        key = {"replicate": p.replicate, "patient_id": p.patient_id}
        alb, bili, inr = 3.8, 0.8, 1.1
        cp = int(scores.child_pugh_score(alb, bili, inr, 0, 0))
        index = next(x for x in p.lines if x.line == p.index_line)
        pt.append(
            {
                **key,
                "arm": "cohort",
                "stratum": None,
                "entry_day": 7.0 * p.patient_id,
                "index_line": p.index_line,
                "index_drug": index.drug,
                "age": 65.0,
                "male": True,
                "weight_kg": 70.0,
                "ecog": 0,
                "albumin_g_dl": alb,
                "bilirubin_mg_dl": bili,
                "inr": inr,
                "ascites": 0,
                "encephalopathy": 0,
                "albi": float(scores.albi(alb, bili)),
                "child_pugh_score": cp,
                "child_pugh_class": str(scores.child_pugh_class(cp)),
                "bclc": "C",
                "intrahepatic_lesions": 2,
                "max_lesion_mm": 40.0,
                "mvi": False,
                "ehm": False,
                "afp_ng_ml": 120.0,
                "prior_tace": False,
                "death": p.death,
                "death_day": p.last_follow_up_day if p.death else math.nan,
                "last_follow_up_day": p.last_follow_up_day,
                "cause_of_death": "cancer" if p.death else None,
            }
        )
        for x in p.lines:
            ln.append(
                {
                    **key,
                    "line": x.line,
                    "drug": x.drug,
                    "index": x.line == p.index_line,
                    "start_day": float(x.start_day),
                    "end_day": float(x.end_day),
                    "end_reason": x.end_reason,
                    "cycles": 1,
                    "dose_reductions": 0,
                    "holds": 0,
                }
            )
        starts = {x.line: x.start_day for x in p.lines}
        reads = [(starts[x.line], x.line, None, None) for x in p.lines]
        for s in p.scans:
            line = p.index_line if s.line is None else s.line
            reads.append((s.day, line, s.recist, s.recist if s.mrecist is None else s.mrecist))
        visit: dict[int, int] = {}
        for day, line, r, m in sorted(reads, key=lambda x: (x[1], x[0], x[2] is not None)):
            v = visit.get(line, 0)
            visit[line] = v + 1
            asm.append(
                {
                    **key,
                    "line": line,
                    "visit": v,
                    "day": float(day),
                    "baseline": r is None,
                    "sum_recist_mm": _SUMS[r],
                    "sum_mrecist_mm": _SUMS[m],
                    "nontarget": "absent",
                    "new_lesions": False,
                    "response_recist": r,
                    "response_mrecist": m,
                }
            )
            if "NE" not in (r, m):  # an unassessed target has no measurement
                le.append(
                    {
                        **key,
                        "line": line,
                        "visit": v,
                        "day": float(day),
                        "lesion_id": 0,
                        "organ": "liver",
                        "target_recist": True,
                        "target_mrecist": True,
                        "diameter_mm": _SUMS[r],
                        "viable_diameter_mm": _SUMS[m],
                        "enhancing": _SUMS[m] > 0,
                        "new": False,
                    }
                )
        lab.append(
            {
                **key,
                "day": 0.0,
                "albumin_g_dl": alb,
                "bilirubin_mg_dl": bili,
                "inr": inr,
                "albi": float(scores.albi(alb, bili)),
                "ascites": 0,
                "encephalopathy": 0,
                "child_pugh_score": int(scores.child_pugh_score(alb, bili, inr, 0, 0)),
                "ecog": 0,
                "afp_ng_ml": 120.0,
                "ast_u_l": 40.0,
                "alt_u_l": 35.0,
                "platelets_10e9_l": 150.0,
                "haemoglobin_g_dl": 13.0,
                "ammonia_umol_l": math.nan,
                "urine_protein_g_24h": math.nan,
            }
        )
        ae.append(
            {
                **key,
                "line": p.index_line,
                "drug": index.drug,
                "term": "fatigue",
                "grade": 1,
                "onset_day": 0.0,
                "end_day": 14.0,
                "action": "none",
            }
        )
    return {
        "patients": _table("patients", pt),
        "lines": _table("lines", ln),
        "lesions": _table("lesions", le),
        "assessments": _table("assessments", asm),
        "labs": _table("labs", lab),
        "adverse_events": _table("adverse_events", ae),
    }
