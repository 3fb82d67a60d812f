"""Time-to-event endpoints from the cohort tables (DESIGN section 8).

Times are in days from the start of the index line (day 0), as in the tables.

**OS**: from day 0 to death; alive patients are censored at their last follow-up.

**PFS** by a criterion (RECIST 1.1 or mRECIST), from day 0 to the first scan of the index line
read as progression (PD) or to death, whichever comes first, with these censoring rules:

- no adequate scan after baseline (an adequate scan has a response other than NE): censored at
  day 0, unless death comes within two scan intervals of day 0 (then death is the event);
- death after two or more missed scans (more than ``2 x scan_interval_days`` after the last
  adequate scan): censored at the last adequate scan;
- a new anticancer therapy (the next line) started before progression: censored at the last
  adequate scan before its start. This follows the FDA guidance on endpoints (2018) and common
  practice; DESIGN section 8 wrote "at its start", and the docs record the choice;
- otherwise alive without progression: censored at the last adequate scan.

Progression seen after missed scans is counted as an event on the day of the scan that showed
it (as EMA guidance does; FDA guidance prefers censoring it at the last adequate scan). Only
death after missed scans is censored, as DESIGN section 8 specifies.

Only scans of the index line count: later lines have their own baselines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hccsim.analysis.schema import as_columns

_NOT_PD = ("CR", "PR", "SD")  # adequate scans without progression


@dataclass(frozen=True)
class Endpoint:
    """One time-to-event endpoint: durations (days) and event flags, in patients-table order."""

    name: str
    durations: np.ndarray
    events: np.ndarray


def _keys(frame) -> np.ndarray:
    return np.asarray(frame["replicate"], dtype=np.int64) * (1 << 32) + np.asarray(
        frame["patient_id"], dtype=np.int64
    )


def _locate(patients, frame) -> tuple[np.ndarray, np.ndarray]:
    """Row of each ``frame`` row's patient in ``patients`` (and whether it was found)."""
    pk = _keys(patients)
    order = np.argsort(pk, kind="stable")
    k = _keys(frame)
    pos = np.searchsorted(pk[order], k)
    if not len(pk):
        return np.zeros(len(k), dtype=np.intp), np.zeros(len(k), dtype=bool)
    pos = np.minimum(pos, len(pk) - 1)
    found = pk[order][pos] == k
    return order[pos], found


def overall_survival(tables) -> Endpoint:
    pt = as_columns(tables["patients"])
    return Endpoint(
        "os",
        np.asarray(pt["last_follow_up_day"], dtype=float),
        np.asarray(pt["death"], dtype=bool),
    )


def progression_free_survival(
    tables, criterion: str = "recist1.1", *, scan_interval_days: float
) -> Endpoint:
    """PFS by ``criterion`` with the censoring rules of the module docstring."""
    if criterion not in ("recist1.1", "mrecist"):
        raise ValueError(f"criterion must be 'recist1.1' or 'mrecist', not {criterion!r}")
    if not scan_interval_days > 0:
        raise ValueError("scan_interval_days must be positive")
    pt = as_columns(tables["patients"])
    n = len(pt["patient_id"])
    if n == 0:
        return Endpoint(f"pfs_{criterion}", np.empty(0), np.empty(0, dtype=bool))
    index_line = np.asarray(pt["index_line"], dtype=np.int64)
    death = np.asarray(pt["death"], dtype=bool)
    last_fu = np.asarray(pt["last_follow_up_day"], dtype=float)

    # New anticancer therapy: the start of the line after the index line.
    ln = as_columns(tables["lines"])
    new_therapy = np.full(n, np.inf)
    if len(ln["patient_id"]):
        row, found = _locate(pt, ln)
        nxt = found & (np.asarray(ln["line"], dtype=np.int64) == index_line[row] + 1)
        np.minimum.at(new_therapy, row[nxt], np.asarray(ln["start_day"], dtype=float)[nxt])

    a = as_columns(tables["assessments"])
    first_pd = np.full(n, np.inf)
    last_ok = np.zeros(n)
    if len(a["patient_id"]):
        row, found = _locate(pt, a)
        day = np.asarray(a["day"], dtype=float)
        resp = np.asarray(
            a["response_recist" if criterion == "recist1.1" else "response_mrecist"], dtype=object
        )
        on_index = (
            found
            & (np.asarray(a["line"], dtype=np.int64) == index_line[row])
            & ~np.asarray(a["baseline"], dtype=bool)
        )
        is_pd = on_index & (resp == "PD")
        np.minimum.at(first_pd, row[is_pd], day[is_pd])
        cutoff = np.minimum(first_pd, new_therapy)[row]
        ok = on_index & np.isin(resp, _NOT_PD) & (day < cutoff)
        np.maximum.at(last_ok, row[ok], day[ok])

    # A PD scan on the day the next line starts is progression (the therapy did not start
    # before it): an event, not a censoring.
    progressed = np.isfinite(first_pd) & (first_pd <= new_therapy)
    died_first = death & ~progressed & (last_fu <= new_therapy)
    missed = last_fu - last_ok > 2.0 * scan_interval_days
    event_death = died_first & ~missed
    durations = np.where(progressed, first_pd, np.where(event_death, last_fu, last_ok))
    events = progressed | event_death
    return Endpoint(f"pfs_{criterion}", durations, events)


def data_cut(tables, calendar_day: float) -> dict:
    """The tables as they stand at a data cut on ``calendar_day`` (days from the study start,
    the scale of ``patients.entry_day``), applied as censoring: each patient is followed up to
    ``calendar_day - entry_day`` days from the index start at most; deaths after that are not
    known; lines running then are ongoing (end_reason ``end_of_follow_up``); scans, labs, lesions
    and adverse events after it are dropped. Patients who entered after the cut are dropped.
    """
    pt = as_columns(tables["patients"])
    limit_by_patient = calendar_day - np.asarray(pt["entry_day"], dtype=float)
    keep = limit_by_patient >= 0.0
    key = _keys(pt)
    limit = dict(zip(key.tolist(), limit_by_patient.tolist(), strict=True))
    out = {}
    cut_pt = {c: np.asarray(v)[keep] for c, v in pt.items()}
    lim = limit_by_patient[keep]
    last = np.asarray(cut_pt["last_follow_up_day"], dtype=float)
    died = np.asarray(cut_pt["death"], dtype=bool) & (last <= lim)
    cut_pt["death"] = died
    cut_pt["last_follow_up_day"] = np.minimum(last, lim)
    cut_pt["death_day"] = np.where(died, cut_pt["last_follow_up_day"], np.nan)
    cut_pt["cause_of_death"] = np.where(
        died, np.asarray(cut_pt["cause_of_death"], dtype=object), None
    )
    out["patients"] = cut_pt
    day_col = {
        "lines": "start_day",
        "lesions": "day",
        "assessments": "day",
        "labs": "day",
        "adverse_events": "onset_day",
    }
    for name, col in day_col.items():
        t = as_columns(tables[name])
        k = _keys(t)
        lim_rows = np.array([limit.get(x, -np.inf) for x in k.tolist()]) if len(k) else np.empty(0)
        rows = np.asarray(t[col], dtype=float) <= lim_rows
        sub = {c: np.asarray(v)[rows] for c, v in t.items()}
        if name == "lines" and len(sub["line"]):
            lr = lim_rows[rows]
            running = np.asarray(sub["end_day"], dtype=float) > lr
            sub["end_day"] = np.where(running, lr, sub["end_day"])
            sub["end_reason"] = np.where(
                running, "end_of_follow_up", np.asarray(sub["end_reason"], dtype=object)
            )
        out[name] = sub
    return out
