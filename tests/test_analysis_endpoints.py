"""OS and PFS from hand-built cohort tables, one test per censoring rule.

Expected values come from the rules in the docstring of ``hccsim.analysis.endpoints`` (and
docs/analysis.md): PFS runs from day 0 to the first PD scan of the index line or to death;
censored at the last adequate (non-NE) scan when alive, when death comes more than two scan
intervals after it, or when the next line starts before progression (then the last adequate
scan before that start); no adequate scan: censored at day 0 unless death comes within two
intervals of day 0. Scans every 56 days (8 weeks) throughout, so "two intervals" is 112 days.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hccsim.analysis import schema
from hccsim.analysis.endpoints import overall_survival, progression_free_survival
from tests.cohort_builders import Scan, cohort, patient, to_arrow

INTERVAL = 56.0


def _pfs(tables, criterion="recist1.1"):
    ep = progression_free_survival(tables, criterion, scan_interval_days=INTERVAL)
    return [(float(d), bool(e)) for d, e in zip(ep.durations, ep.events, strict=True)]


def _one(p, criterion="recist1.1"):
    tables = cohort(p)
    schema.validate(tables)  # every hand-built cohort is a valid one
    (result,) = _pfs(tables, criterion)
    return result


# -- OS -------------------------------------------------------------------------------------------


def test_overall_survival_is_death_or_last_follow_up():
    tables = cohort(
        patient(0, last_fu=300.0),
        patient(1, last_fu=120.5, death=True),
        patient(2, last_fu=0.0),  # no follow-up after day 0: censored at 0
    )
    os_ = overall_survival(tables)
    assert os_.name == "os"
    np.testing.assert_array_equal(os_.durations, [300.0, 120.5, 0.0])
    np.testing.assert_array_equal(os_.events, [False, True, False])


# -- PFS, rule by rule -----------------------------------------------------------------------------


def test_progression_at_a_scan():
    # SD at 56, PD at 112, alive at 300: event at 112 (the PD scan, not the follow-up).
    p = patient(0, last_fu=300.0, scans=[(56, "SD"), (112, "PD"), (168, "SD")])
    assert _one(p) == (112.0, True)


def test_first_pd_counts():
    # PD at 56 then again at 112 (a confirmation scan): event at the first, 56.
    assert _one(patient(0, last_fu=200.0, scans=[(56, "PD"), (112, "PD")])) == (56.0, True)


def test_alive_without_progression_censored_at_last_adequate_scan():
    p = patient(0, last_fu=300.0, scans=[(56, "SD"), (112, "PR"), (168, "CR")])
    assert _one(p) == (168.0, False)


@pytest.mark.parametrize(
    ("death_day", "expected"),
    [
        (150.0, (150.0, True)),  # 38 days after the last scan at 112: event at death
        (224.0, (224.0, True)),  # exactly two intervals (112 days) later: still an event
        (224.5, (112.0, False)),  # more than two intervals: censored at the last scan
        (400.0, (112.0, False)),  # several missed scans
    ],
)
def test_death_and_missed_scans(death_day, expected):
    p = patient(0, last_fu=death_day, death=True, scans=[(56, "SD"), (112, "SD")])
    assert _one(p) == expected


@pytest.mark.parametrize(
    ("death", "last_fu", "expected"),
    [
        (False, 30.0, (0.0, False)),  # alive, no scan after baseline: censored at day 0
        (False, 500.0, (0.0, False)),  # ... however long the follow-up
        (True, 40.0, (40.0, True)),  # died within two intervals of day 0: event
        (True, 112.0, (112.0, True)),  # exactly two intervals: event
        (True, 150.0, (0.0, False)),  # died later: censored at day 0
    ],
)
def test_no_scan_after_baseline(death, last_fu, expected):
    assert _one(patient(0, last_fu=last_fu, death=death)) == expected


def test_ne_scans_are_not_adequate():
    # SD at 56, then NE at 112 and 168: the last adequate scan is 56.
    scans = [(56, "SD"), (112, "NE"), (168, "NE")]
    assert _one(patient(0, last_fu=200.0, scans=scans)) == (56.0, False)
    # Death at 160 is 104 days after 56 (within two intervals): event.
    assert _one(patient(0, last_fu=160.0, death=True, scans=scans[:2])) == (160.0, True)
    # Death at 200 is 144 days after 56: censored at 56, although an NE scan was 32 days before.
    assert _one(patient(0, last_fu=200.0, death=True, scans=scans)) == (56.0, False)
    # Only NE scans: no adequate scan, censored at day 0.
    assert _one(patient(0, last_fu=200.0, scans=[(56, "NE"), (112, "NE")])) == (0.0, False)


def test_pd_after_ne_scans_is_still_progression():
    # NE at 56 and 112, PD at 168: event at 168 (the missed-scan rule is for deaths only).
    scans = [(56, "NE"), (112, "NE"), (168, "PD")]
    assert _one(patient(0, last_fu=300.0, scans=scans)) == (168.0, True)


def _two_lines(last_fu, *, pid=0, death=False, scans, end1, start2, reason1="toxicity"):
    """A patient whose line 1 ends at ``end1`` and line 2 starts at ``start2``."""
    return patient(
        pid,
        last_fu=last_fu,
        death=death,
        scans=scans,
        lines=[
            (1, 0.0, end1, reason1),
            (2, start2, last_fu, "death" if death else "end_of_follow_up"),
        ],
    )


def test_new_therapy_before_progression_censors_at_last_adequate_scan_before_it():
    # Line 1 stops for toxicity at 150, line 2 starts at 170; SD at 56 and 112 on line 1; line 2
    # progresses at 226 (its own scans) and the patient dies at 400: censored at 112.
    scans = [(56, "SD"), (112, "SD"), Scan(226, "PD", line=2)]
    p = _two_lines(400.0, death=True, scans=scans, end1=150.0, start2=170.0)
    assert _one(p) == (112.0, False)


def test_death_soon_after_new_therapy_is_not_an_event():
    # Death at 180, 68 days after the last scan (within two intervals) but after line 2 began at
    # 170: censored at 112, the last adequate scan before the new therapy.
    p = _two_lines(180.0, death=True, scans=[(56, "SD"), (112, "SD")], end1=160.0, start2=170.0)
    assert _one(p) == (112.0, False)


def test_progression_then_new_therapy_is_an_event():
    # PD at 112 ends line 1; line 2 starts at 130: event at 112.
    scans = [(56, "SD"), (112, "PD")]
    p = _two_lines(300.0, scans=scans, end1=112.0, start2=130.0, reason1="progression")
    assert _one(p) == (112.0, True)


def test_progression_on_the_day_the_next_line_starts_is_an_event():
    # PD at 112 and line 2 starting the same day: the therapy did not start before progression,
    # so this is progression at 112 (it was censored at 56 before the fix in endpoints.py).
    scans = [(56, "SD"), (112, "PD")]
    p = _two_lines(300.0, scans=scans, end1=112.0, start2=112.0, reason1="progression")
    assert _one(p) == (112.0, True)


def test_scans_of_later_lines_are_ignored():
    # Index line 1 has SD at 56; line 2 (from 100) has its own baseline and a PD at 160:
    # PFS is censored at 56 (the new-therapy rule), not an event at 160.
    scans = [(56, "SD"), Scan(160, "PD", line=2)]
    p = _two_lines(300.0, scans=scans, end1=90.0, start2=100.0)
    assert _one(p) == (56.0, False)


def test_scans_of_earlier_lines_are_ignored():
    # Index line 2 (day 0); line 1 ran from day -200 to -10 and progressed at day -20. The
    # index line has SD at 56 and PD at 112: event at 112, the earlier PD plays no part.
    p = patient(
        0,
        last_fu=300.0,
        index_line=2,
        lines=[(1, -200.0, -10.0, "progression"), (2, 0.0, 300.0, "end_of_follow_up")],
        scans=[Scan(-20, "PD", line=1), (56, "SD"), (112, "PD")],
    )
    assert _one(p) == (112.0, True)
    # Without the index-line PD: censored at 56.
    p.scans = p.scans[:2]
    assert _one(p) == (56.0, False)


def test_criterion_picks_its_own_response_column():
    # RECIST 1.1 reads SD at 56 and PD at 112; mRECIST reads PR then SD.
    p = patient(0, last_fu=300.0, scans=[(56, "SD", "PR"), (112, "PD", "SD")])
    assert _one(p, "recist1.1") == (112.0, True)
    assert _one(p, "mrecist") == (112.0, False)
    tables = cohort(p)
    assert progression_free_survival(tables, "mrecist", scan_interval_days=56).name == (
        "pfs_mrecist"
    )


def test_multiple_replicates_with_the_same_patient_ids():
    # Patient 0 and 1 in replicates 0 and 1, with different histories, rows not sorted: results
    # come in patients-table order and never mix replicates.
    patients = [
        patient(1, replicate=1, last_fu=90.0, death=True, scans=[(56, "SD")]),  # event 90
        patient(0, replicate=0, last_fu=300.0, scans=[(56, "PD")]),  # event 56
        patient(0, replicate=1, last_fu=300.0, scans=[(56, "SD"), (112, "SD")]),  # cens. 112
        patient(1, replicate=0, last_fu=20.0),  # censored at 0
    ]
    tables = cohort(*patients)
    schema.validate(tables)
    assert _pfs(tables) == [(90.0, True), (56.0, True), (112.0, False), (0.0, False)]
    os_ = overall_survival(tables)
    np.testing.assert_array_equal(os_.durations, [90.0, 300.0, 300.0, 20.0])
    np.testing.assert_array_equal(os_.events, [True, False, False, False])


def test_pandas_and_arrow_tables_give_the_same_endpoints():
    import pandas as pd

    tables = cohort(
        patient(0, last_fu=300.0, scans=[(56, "SD"), (112, "PD")]),  # event 112
        patient(1, last_fu=100.0, death=True),  # event 100
        patient(2, last_fu=250.0, scans=[(56, "PR"), (112, "NE")]),  # censored 56
    )
    frames = {k: pd.DataFrame(v) for k, v in tables.items()}
    arrow = to_arrow(tables)
    for t in (tables, frames, arrow):
        assert _pfs(t) == [(112.0, True), (100.0, True), (56.0, False)]
        np.testing.assert_array_equal(overall_survival(t).durations, [300.0, 100.0, 250.0])


@pytest.mark.parametrize("interval", [0.0, -1.0, math.nan])
def test_bad_arguments(interval):
    tables = cohort(patient(0, last_fu=10.0))
    with pytest.raises(ValueError, match="scan_interval_days"):
        progression_free_survival(tables, scan_interval_days=interval)
    with pytest.raises(ValueError, match="criterion"):
        progression_free_survival(tables, "recist", scan_interval_days=56)


# -- a per-patient reference on generated cohorts --------------------------------------------------


def _reference_progression(p, criterion):
    """The index line's first progression and last adequate scan before progression or new
    therapy, by the docstring's rules, in plain Python: ``(first_pd, new_therapy, last_ok)``."""
    scans = sorted(
        (s.day, s.recist if criterion == "recist1.1" else (s.mrecist or s.recist))
        for s in p.scans
        if (s.line or p.index_line) == p.index_line
    )
    new_therapy = min(
        (x.start_day for x in p.lines if x.line == p.index_line + 1), default=math.inf
    )
    first_pd = min((d for d, r in scans if r == "PD"), default=math.inf)
    last_ok = max(
        (d for d, r in scans if r in ("CR", "PR", "SD") and d < min(first_pd, new_therapy)),
        default=0.0,
    )
    return first_pd, new_therapy, last_ok


def _reference_pfs(p, criterion):
    """The docstring's rules, one patient at a time, in plain Python."""
    first_pd, new_therapy, last_ok = _reference_progression(p, criterion)
    if first_pd <= new_therapy and first_pd < math.inf:
        return first_pd, True
    death = p.last_follow_up_day
    if p.death and death <= new_therapy and death - last_ok <= 2 * INTERVAL:
        return death, True
    return last_ok, False


@st.composite
def _patients(draw, pid, replicate):
    n_scans = draw(st.integers(0, 5))
    responses = st.sampled_from(["CR", "PR", "SD", "PD", "NE"])
    scans = [
        Scan(
            INTERVAL * (k + 1) + draw(st.integers(-7, 7)),
            draw(responses),
            draw(responses),
        )
        for k in range(n_scans)
    ]
    last_scan = max((s.day for s in scans), default=0.0)
    last_fu = last_scan + draw(st.integers(0, 300))
    death = draw(st.booleans())
    lines = None
    if draw(st.booleans()):  # a second line (new anticancer therapy)
        # Any day up to the last follow-up, often the day of a scan (PD then new therapy on
        # the same day is progression).
        days = st.integers(1, int(last_fu)) if last_fu >= 1 else st.just(0)
        start2 = float(draw(st.one_of(st.sampled_from([s.day for s in scans] or [0.0]), days)))
        scans = [s for s in scans if s.day <= start2]
        end1 = float(draw(st.integers(0, int(start2))))
        lines = [(1, 0.0, end1, "toxicity"), (2, start2, last_fu, "end_of_follow_up")]
        if start2 + INTERVAL <= last_fu:  # line 2's own progression, to be ignored
            scans.append(Scan(start2 + INTERVAL, "PD", line=2))
    return patient(pid, replicate=replicate, last_fu=last_fu, death=death, scans=scans, lines=lines)


@st.composite
def _cohorts(draw):
    n = draw(st.integers(1, 8))
    ids = draw(st.permutations([(r, i) for r in range(2) for i in range(n)]))
    return [draw(_patients(i, r)) for r, i in ids]


@given(_cohorts(), st.sampled_from(["recist1.1", "mrecist"]))
def test_pfs_matches_a_per_patient_reference(patients, criterion):
    tables = cohort(*patients)
    schema.validate(tables)
    got = _pfs(tables, criterion)
    assert got == [_reference_pfs(p, criterion) for p in patients]
    # PFS never exceeds OS, and an event before the end of follow-up is a PD scan.
    os_ = overall_survival(tables)
    for p, (d, e), os_d in zip(patients, got, os_.durations, strict=True):
        assert d <= os_d
        if e and d < os_d:
            pd_days = {
                s.day
                for s in p.scans
                if (s.mrecist or s.recist, s.recist)[criterion == "recist1.1"] == "PD"
            }
            assert d in pd_days
