"""Time-to-event endpoints from the cohort tables (DESIGN section 8).

Times are in days from the start of the index line (day 0), as in the tables. Every function
returns its values in patients-table order; the endpoints defined on a subset of patients
(duration of response, post-progression survival, a landmark analysis) return the
:class:`Endpoint` of that subset and the subset's row numbers in the patients table.

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

Only scans of the index line count: later lines have their own baselines. "Progression on the
index line" below always means what PFS counts as progression: the first PD scan of the index
line, on or before the start of the next line.

**TTP** (time to progression): as PFS, but progression is the only event; every death without
progression is censored at the last adequate scan (whether or not scans were missed), and the
other PFS censoring rules apply unchanged.

**DoR** (duration of response), among responders: patients whose best overall response on the
index line is CR or PR as :func:`hccsim.analysis.response.best_responses` reads it (with or
without confirmation). From the first index-line scan that reads CR or PR
(:func:`hccsim.analysis.response.time_to_response`) to progression or death, with the PFS
censoring rules: DoR = PFS - time to response, with the PFS event flag. (A response read on the
day the next line starts, which the PFS rules place after the censoring scan, would give a
negative difference; it is set to 0, censored. Valid tables do not have index-line scans after
the next line has started.)

**PPS** (post-progression survival), among patients with a progression on the index line: from
the day of that progression to death, censored at the last follow-up (OS - PFS for them).

**Time on treatment**: from the start of the index line to its end (``lines.end_day -
lines.start_day``); the event is the line's end for any reason (progression, toxicity, clinical
deterioration, death); a line still running at the last follow-up (``end_of_follow_up``) is
censored there.

**Disease control at >= 4 weeks** (:func:`disease_control_4w`): a patient has it when some scan
of the index line on day ``min_days`` (28) or later reads CR, PR or SD and no scan of the index
line on or before that day reads PD. Patients who die, leave follow-up or progress before such a scan do
not have it. Comparing OS from day 0 between patients with and without it, as the anchor study
did, carries guarantee-time bias: a patient must live to a scan on day 28 or later to be
counted as controlled, so early deaths all fall in the other group. The landmark analysis
(:func:`landmark`) removes the bias: it keeps the patients still at risk at a landmark day
(chosen so that the classification is known by then: ``disease_control_4w(by_day=landmark)``)
and measures the endpoint from the landmark.

**Data cuts**: :func:`data_cut` censors the tables at a calendar day (the scale of
``patients.entry_day``); :func:`data_cut_at_events` cuts them on the day the n-th event of an
endpoint occurs in calendar time (an event-driven analysis); :func:`followed_beyond` tells
whether a calendar cut is reached before the simulated follow-up ends.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from hccsim.analysis.frames import locate, patient_keys
from hccsim.analysis.response import time_to_response
from hccsim.analysis.schema import as_columns

_NOT_PD = ("CR", "PR", "SD")  # adequate scans without progression


@dataclass(frozen=True)
class Endpoint:
    """One time-to-event endpoint: durations (days) and event flags, in patients-table order."""

    name: str
    durations: np.ndarray
    events: np.ndarray


def overall_survival(tables) -> Endpoint:
    pt = as_columns(tables["patients"])
    return Endpoint(
        "os",
        np.asarray(pt["last_follow_up_day"], dtype=float),
        np.asarray(pt["death"], dtype=bool),
    )


def _check_criterion(criterion) -> None:
    if criterion not in ("recist1.1", "mrecist"):
        raise ValueError(f"criterion must be 'recist1.1' or 'mrecist', not {criterion!r}")


def _check_interval(scan_interval_days) -> None:
    x = scan_interval_days
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not x > 0:  # NaN fails too
        raise ValueError(
            f"scan_interval_days must be a positive number of days, not {scan_interval_days!r}"
        )


def _check_day(name: str, value) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number of days >= 0, not {value!r}")


def _index_scans(tables, criterion: str):
    """The index line's post-baseline scans: (patients columns, patient row of each scan,
    day, response under ``criterion``)."""
    pt = as_columns(tables["patients"])
    a = as_columns(tables["assessments"])
    if not len(a["patient_id"]) or not len(pt["patient_id"]):
        return pt, np.empty(0, dtype=np.intp), np.empty(0), np.empty(0, dtype=object)
    index_line = np.asarray(pt["index_line"], dtype=np.int64)
    row, found = locate(pt, a)
    resp = np.asarray(
        a["response_recist" if criterion == "recist1.1" else "response_mrecist"], dtype=object
    )
    on_index = (
        found
        & (np.asarray(a["line"], dtype=np.int64) == index_line[row])
        & ~np.asarray(a["baseline"], dtype=bool)
    )
    return pt, row[on_index], np.asarray(a["day"], dtype=float)[on_index], resp[on_index]


def imaged_on_index(tables) -> np.ndarray:
    """Per patient (patients-table order), whether any assessment, baseline included, belongs
    to the index line. A cohort where nobody is imaged (supportive care only) has no
    measurable response or progression."""
    pt = as_columns(tables["patients"])
    a = as_columns(tables["assessments"])
    n = len(pt["patient_id"])
    out = np.zeros(n, dtype=bool)
    if not len(a["patient_id"]) or not n:
        return out
    row, found = locate(pt, a)
    index_line = np.asarray(pt["index_line"], dtype=np.int64)
    hit = found & (np.asarray(a["line"], dtype=np.int64) == index_line[row])
    out[row[hit]] = True
    return out


def _first_day(n: int, row: np.ndarray, day: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per patient, the earliest ``day`` of the rows in ``mask`` (inf: none)."""
    out = np.full(n, np.inf)
    np.minimum.at(out, row[mask], day[mask])
    return out


@dataclass(frozen=True)
class _Progression:
    """Per patient: what PFS, TTP and PPS are built from (days from the index start)."""

    first_pd: np.ndarray  # first PD scan of the index line (inf: none)
    new_therapy: np.ndarray  # start of the next line (inf: none)
    last_ok: np.ndarray  # last adequate scan before both of those (0: none)
    progressed: np.ndarray  # progression on the index line: first_pd <= new_therapy
    death: np.ndarray
    last_fu: np.ndarray


def _progression(tables, criterion: str) -> _Progression:
    pt, row, day, resp = _index_scans(tables, criterion)
    n = len(pt["patient_id"])
    index_line = np.asarray(pt["index_line"], dtype=np.int64)

    # New anticancer therapy: the start of the line after the index line.
    ln = as_columns(tables["lines"])
    new_therapy = np.full(n, np.inf)
    if n and len(ln["patient_id"]):
        lrow, found = locate(pt, ln)
        nxt = found & (np.asarray(ln["line"], dtype=np.int64) == index_line[lrow] + 1)
        np.minimum.at(new_therapy, lrow[nxt], np.asarray(ln["start_day"], dtype=float)[nxt])

    first_pd = _first_day(n, row, day, resp == "PD")
    last_ok = np.zeros(n)
    ok = np.isin(resp, _NOT_PD) & (day < np.minimum(first_pd, new_therapy)[row])
    np.maximum.at(last_ok, row[ok], day[ok])

    # A PD scan on the day the next line starts is progression (the therapy did not start
    # before it): an event, not a censoring.
    progressed = np.isfinite(first_pd) & (first_pd <= new_therapy)
    return _Progression(
        first_pd,
        new_therapy,
        last_ok,
        progressed,
        np.asarray(pt["death"], dtype=bool),
        np.asarray(pt["last_follow_up_day"], dtype=float),
    )


def progression_free_survival(
    tables, criterion: str = "recist1.1", *, scan_interval_days: float
) -> Endpoint:
    """PFS by ``criterion`` with the censoring rules of the module docstring."""
    _check_criterion(criterion)
    _check_interval(scan_interval_days)
    p = _progression(tables, criterion)
    died_first = p.death & ~p.progressed & (p.last_fu <= p.new_therapy)
    missed = p.last_fu - p.last_ok > 2.0 * scan_interval_days
    event_death = died_first & ~missed
    durations = np.where(p.progressed, p.first_pd, np.where(event_death, p.last_fu, p.last_ok))
    events = p.progressed | event_death
    return Endpoint(f"pfs_{criterion}", durations, events)


def time_to_progression(
    tables, criterion: str = "recist1.1", *, scan_interval_days: float
) -> Endpoint:
    """TTP by ``criterion``: PFS with deaths censored at the last adequate scan.

    ``scan_interval_days`` is checked as for PFS (and kept for a like-for-like call) but does
    not change TTP: the missed-scan rule only decides whether a death is an event.
    """
    _check_criterion(criterion)
    _check_interval(scan_interval_days)
    p = _progression(tables, criterion)
    return Endpoint(
        f"ttp_{criterion}", np.where(p.progressed, p.first_pd, p.last_ok), p.progressed.copy()
    )


def duration_of_response(
    tables, criterion: str = "recist1.1", *, scan_interval_days: float, confirm: bool = False
) -> tuple[Endpoint, np.ndarray]:
    """DoR by ``criterion`` among responders (module docstring): ``(endpoint, rows)``, where
    ``rows`` are the responders' rows in the patients table (ascending) and the endpoint's
    arrays follow them. ``confirm`` is passed to ``best_responses`` (confirmed responses)."""
    pfs = progression_free_survival(tables, criterion, scan_interval_days=scan_interval_days)
    onset = time_to_response(tables, criterion, confirm=confirm)
    rows = np.flatnonzero(np.isfinite(onset))
    # Negative only when the PFS censoring scan precedes the response (then not an event).
    durations = np.maximum(pfs.durations[rows] - onset[rows], 0.0)
    return Endpoint(f"dor_{criterion}", durations, pfs.events[rows]), rows


def post_progression_survival(tables, criterion: str = "recist1.1") -> tuple[Endpoint, np.ndarray]:
    """PPS by ``criterion`` among patients with a progression on the index line (module
    docstring): ``(endpoint, rows)``, ``rows`` their rows in the patients table (ascending).
    The progression day does not depend on the scan interval, so none is asked for."""
    _check_criterion(criterion)
    p = _progression(tables, criterion)
    rows = np.flatnonzero(p.progressed)
    return Endpoint(
        f"pps_{criterion}", p.last_fu[rows] - p.first_pd[rows], p.death[rows].copy()
    ), rows


def _index_lines(tables) -> tuple[dict, np.ndarray]:
    """The lines table's columns and, per patient, the row of the patient's index line."""
    pt = as_columns(tables["patients"])
    ln = as_columns(tables["lines"])
    n = len(pt["patient_id"])
    at = np.full(n, -1, dtype=np.intp)
    if n and len(ln["patient_id"]):
        row, found = locate(pt, ln)
        hit = found & (
            np.asarray(ln["line"], dtype=np.int64)
            == np.asarray(pt["index_line"], dtype=np.int64)[row]
        )
        at[row[hit]] = np.flatnonzero(hit)
    missing = np.flatnonzero(at < 0)
    if len(missing):
        i = missing[0]
        raise ValueError(
            f"tables['lines'] has no row for the index line of {len(missing)} patient(s), the "
            f"first replicate {pt['replicate'][i]}, patient {pt['patient_id'][i]} "
            f"(index_line {pt['index_line'][i]}); every patient needs one"
        )
    return ln, at


def time_on_treatment(tables) -> Endpoint:
    """Time on the index line (module docstring): end_day - start_day; event: the line ended
    for any reason but ``end_of_follow_up`` (which censors)."""
    ln, at = _index_lines(tables)
    if not len(at):
        return Endpoint("time_on_treatment", np.empty(0), np.empty(0, dtype=bool))
    start = np.asarray(ln["start_day"], dtype=float)[at]
    end = np.asarray(ln["end_day"], dtype=float)[at]
    reason = np.asarray(ln["end_reason"], dtype=object)[at]
    return Endpoint("time_on_treatment", end - start, reason != "end_of_follow_up")


def cycles(tables) -> np.ndarray:
    """Treatment cycles started on the index line, per patient (``lines.cycles``)."""
    ln, at = _index_lines(tables)
    if not len(at):
        return np.empty(0, dtype=np.int64)
    return np.asarray(ln["cycles"], dtype=np.int64)[at]


def line_group(tables) -> np.ndarray:
    """The index line as a group, per patient: "1st" (index line 1), "2nd" (2) or
    "3rd_or_later" (3 and above), from ``patients.index_line``."""
    pt = as_columns(tables["patients"])
    line = np.asarray(pt["index_line"], dtype=np.int64)
    if np.any(line < 1):
        raise ValueError(f"patients.index_line must be 1 or more, not {int(line[line < 1][0])}")
    out = np.full(len(line), "3rd_or_later", dtype=object)
    out[line == 1] = "1st"
    out[line == 2] = "2nd"
    return out


def disease_control_4w(
    tables,
    criterion: str = "recist1.1",
    min_days: float = 28.0,
    *,
    by_day: float | None = None,
) -> np.ndarray:
    """Disease control at >= ``min_days`` (module docstring), per patient (bool array).

    True when a post-baseline scan of the index line on day ``min_days`` or later (and on
    ``by_day`` or earlier, when given) reads CR, PR or SD under ``criterion`` and no scan of
    the index line on or before that day reads PD; False otherwise (no such scan, whatever the reason).
    With ``by_day`` the classification uses only what is known on that day, as a landmark
    analysis needs.
    """
    _check_criterion(criterion)
    _check_day("min_days", min_days)
    if by_day is not None:
        _check_day("by_day", by_day)
        if by_day < min_days:
            raise ValueError(
                f"by_day must be None or at least min_days ({min_days}), not {by_day!r}"
            )
    pt, row, day, resp = _index_scans(tables, criterion)
    n = len(pt["patient_id"])
    first_pd = _first_day(n, row, day, resp == "PD")
    ok = np.isin(resp, _NOT_PD) & (day >= min_days) & (day < first_pd[row])
    if by_day is not None:
        ok &= day <= by_day
    out = np.zeros(n, dtype=bool)
    out[row[ok]] = True
    return out


def landmark(
    endpoint: Endpoint, landmark_day: float, alive_mask=None
) -> tuple[Endpoint, np.ndarray]:
    """A landmark analysis of ``endpoint`` at ``landmark_day``: ``(endpoint, rows)``.

    Kept: the patients still at risk at the landmark, ``durations > landmark_day`` (an event or
    a censoring on the landmark day itself is before it), and, when ``alive_mask`` is given,
    only those where it is true (for example patients alive at the landmark by OS, when the
    endpoint is another one, or patients whose classification is known). Durations are
    measured from the landmark; ``rows`` are the kept rows (ascending) of ``endpoint``.
    """
    _check_day("landmark_day", landmark_day)
    d = np.asarray(endpoint.durations, dtype=float)
    keep = d > landmark_day
    if alive_mask is not None:
        mask = np.asarray(alive_mask)
        if mask.shape != d.shape or mask.dtype.kind != "b":
            raise ValueError(
                f"alive_mask must be a bool array of shape {d.shape} (one per patient), not "
                f"{mask.dtype} of shape {mask.shape}"
            )
        keep &= mask
    rows = np.flatnonzero(keep)
    return Endpoint(
        f"{endpoint.name}_landmark_{landmark_day:g}",
        d[rows] - landmark_day,
        np.asarray(endpoint.events, dtype=bool)[rows],
    ), rows


def data_cut(tables, calendar_day: float) -> dict:
    """The tables as they stand at a data cut on ``calendar_day`` (days from the study start,
    the scale of ``patients.entry_day``), applied as censoring: each patient is followed up to
    ``calendar_day - entry_day`` days from the index start at most; deaths after that are not
    known; lines running then are ongoing (end_reason ``end_of_follow_up``); scans, labs, lesions
    and adverse events after it are dropped. Patients who entered after the cut are dropped.
    """
    _check_day("calendar_day", calendar_day)
    pt = as_columns(tables["patients"])
    limit_by_patient = calendar_day - np.asarray(pt["entry_day"], dtype=float)
    keep = limit_by_patient >= 0.0
    key = patient_keys(pt)
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
        k = patient_keys(t)
        lim_rows = np.array([limit.get(x, -np.inf) for x in k.tolist()]) if len(k) else np.empty(0)
        # A patient who entered after the cut is not in the study yet: none of their rows
        # stay, not even prior lines that started (negative days) before the cut.
        rows = (np.asarray(t[col], dtype=float) <= lim_rows) & (lim_rows >= 0.0)
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


def followed_beyond(tables, calendar_day: float) -> tuple[bool, bool]:
    """Whether anyone is followed beyond ``calendar_day`` (days from the study start), and
    whether anyone is alive at the end of their follow-up.

    A data cut on that day is not reached when nobody is followed up to it while someone is
    still alive: the simulated follow-up (``observation.max_follow_up_months``) ends first, and
    the cut tables are the whole follow-up (follow-up that ends on the cut day itself loses
    nothing: reached). (When everyone has died by then, it is reached:
    the cut loses nothing.) For a replicate in batches, combine the batches' answers with or.
    """
    _check_day("calendar_day", calendar_day)
    pt = as_columns(tables["patients"])
    limit = calendar_day - np.asarray(pt["entry_day"], dtype=float)  # as data_cut computes it
    beyond = np.asarray(pt["last_follow_up_day"], dtype=float) >= limit
    return bool(beyond.any()), not bool(np.asarray(pt["death"], dtype=bool).all())


@dataclass(frozen=True)
class EventCut:
    """The result of :func:`data_cut_at_events`.

    ``reached``: the n-th event occurs. Then ``tables`` are the tables cut on ``calendar_day``
    (by :func:`data_cut`), the calendar day of the n-th event, and ``n_events`` is the number
    of events of the endpoint in the cut tables: n, or more when other events fall on the same
    calendar day. Otherwise ``tables`` are the tables as given (uncut), ``calendar_day`` is NaN
    and ``n_events`` is the number of events that ever occur (fewer than asked for).
    """

    tables: object
    calendar_day: float
    n_events: int
    reached: bool


def data_cut_at_events(
    tables,
    n_events: int,
    endpoint: str = "os",
    *,
    criterion: str = "recist1.1",
    scan_interval_days: float | None = None,
) -> EventCut:
    """The data cut on the day the ``n_events``-th event of ``endpoint`` occurs (an
    event-driven analysis); see :class:`EventCut` for the result.

    ``endpoint``: "os" (deaths) or "pfs" (PFS events by ``criterion``, which needs
    ``scan_interval_days``). An event's calendar day is ``patients.entry_day`` plus its day
    from the index start; the events are those of the full tables, and :func:`data_cut` keeps
    every event on or before the cut (an event known at the cut is an event in the full
    follow-up, and vice versa). The tables must hold one replicate: the calendar is a
    replicate's own. The day is the n-th event's, moved up by a few units in the last place
    where ``calendar_day - entry_day`` would otherwise round below the event's day (so that the
    cut does keep the event).
    """
    if isinstance(n_events, bool) or not isinstance(n_events, int | np.integer) or n_events < 1:
        raise ValueError(f"n_events must be a whole number >= 1, not {n_events!r}")
    if endpoint == "os":
        ep = overall_survival(tables)
    elif endpoint == "pfs":
        if scan_interval_days is None:
            raise ValueError("scan_interval_days is needed when endpoint is 'pfs', not None")
        ep = progression_free_survival(tables, criterion, scan_interval_days=scan_interval_days)
    else:
        raise ValueError(f"endpoint must be 'os' or 'pfs', not {endpoint!r}")
    pt = as_columns(tables["patients"])
    replicates = np.unique(np.asarray(pt["replicate"], dtype=np.int64))
    if len(replicates) > 1:
        raise ValueError(
            f"tables must hold one replicate (one calendar), not replicates "
            f"{replicates.tolist()}; cut each replicate's tables on their own"
        )
    entry = np.asarray(pt["entry_day"], dtype=float)[ep.events]
    day = ep.durations[ep.events]
    calendar = np.sort(entry + day)
    if len(calendar) < n_events:
        return EventCut(tables, float("nan"), len(calendar), False)
    cut = float(calendar[n_events - 1])
    for _ in range(64):  # data_cut keeps what is on or before cut - entry_day
        if np.count_nonzero(cut - entry >= day) >= n_events:
            break
        cut = float(np.nextafter(cut, np.inf))
    cut_tables = data_cut(tables, cut)
    if endpoint == "os":
        seen = overall_survival(cut_tables)
    else:
        seen = progression_free_survival(
            cut_tables, criterion, scan_interval_days=scan_interval_days
        )
    return EventCut(cut_tables, cut, int(np.count_nonzero(seen.events)), True)
