"""TTP, duration of response, post-progression survival, time on treatment, disease control at
4 weeks, landmark analysis and event-driven data cuts, from hand-built cohort tables.

Expected values are worked out by hand from the rules in the docstring of
``hccsim.analysis.endpoints`` and stated next to each case. As in ``test_analysis_endpoints``,
scans come every 56 days (8 weeks), so "two scan intervals" is 112 days; the cohort builder
puts patient ``i`` on calendar day ``7 i`` (``patients.entry_day``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hccsim.analysis import schema
from hccsim.analysis.endpoints import (
    Endpoint,
    cycles,
    data_cut,
    data_cut_at_events,
    disease_control_4w,
    duration_of_response,
    followed_beyond,
    landmark,
    line_group,
    overall_survival,
    post_progression_survival,
    progression_free_survival,
    time_on_treatment,
    time_to_progression,
)
from hccsim.analysis.response import best_overall_response
from hccsim.analysis.survival import km_median
from tests.cohort_builders import Scan, cohort, patient, to_arrow
from tests.test_analysis_endpoints import _cohorts, _reference_pfs, _reference_progression
from tests.test_analysis_endpoints import _two_lines as _base_two_lines

INTERVAL = 56.0


def _pairs(ep: Endpoint):
    return [(float(d), bool(e)) for d, e in zip(ep.durations, ep.events, strict=True)]


def _valid(*patients):
    tables = cohort(*patients)
    schema.validate(tables)  # every hand-built cohort is a valid one
    return tables


def _ttp(tables, criterion="recist1.1"):
    return _pairs(time_to_progression(tables, criterion, scan_interval_days=INTERVAL))


def _two_lines(pid, last_fu, **kw):
    return _base_two_lines(last_fu, pid=pid, **kw)


# -- TTP --------------------------------------------------------------------------------------------


def test_ttp_rule_by_rule():
    tables = _valid(
        # 0: PD at 112 (SD at 56, SD at 168 ignored): event at 112, as PFS.
        patient(0, last_fu=300.0, scans=[(56, "SD"), (112, "PD"), (168, "SD")]),
        # 1: death at 150, 38 days after the last scan (PFS: event at 150): censored at 112.
        patient(1, last_fu=150.0, death=True, scans=[(56, "SD"), (112, "SD")]),
        # 2: death at 400 after missed scans (PFS censors too): censored at 112.
        patient(2, last_fu=400.0, death=True, scans=[(56, "SD"), (112, "SD")]),
        # 3: death at 40 without a scan (PFS: event at 40): censored at day 0.
        patient(3, last_fu=40.0, death=True),
        # 4: alive without progression, CR at 168: censored at 168.
        patient(4, last_fu=300.0, scans=[(56, "SD"), (112, "PR"), (168, "CR")]),
        # 5: NE at 56 and 112, PD at 168: event at 168 (missed scans do not censor PD).
        patient(5, last_fu=300.0, scans=[(56, "NE"), (112, "NE"), (168, "PD")]),
        # 6: SD at 56 and 112, line 1 stopped at 150, line 2 from 170 with its own PD at 226:
        # censored at 112, the last adequate scan before the new therapy.
        _two_lines(
            6,
            400.0,
            death=True,
            scans=[(56, "SD"), (112, "SD"), Scan(226, "PD", line=2)],
            end1=150.0,
            start2=170.0,
        ),
        # 7: PD at 112 and line 2 starting that day: progression, event at 112.
        _two_lines(
            7,
            300.0,
            scans=[(56, "SD"), (112, "PD")],
            end1=112.0,
            start2=112.0,
            reason1="progression",
        ),
        # 8: alive, only NE scans: censored at day 0.
        patient(8, last_fu=200.0, scans=[(56, "NE"), (112, "NE")]),
    )
    assert _ttp(tables) == [
        (112.0, True),
        (112.0, False),
        (112.0, False),
        (0.0, False),
        (168.0, False),
        (168.0, True),
        (112.0, False),
        (112.0, True),
        (0.0, False),
    ]
    assert time_to_progression(tables, scan_interval_days=INTERVAL).name == "ttp_recist1.1"
    # The PFS of the same cohort differs only for patients 1 and 3 (deaths within two
    # intervals of the last adequate scan, or of day 0).
    pfs = _pairs(progression_free_survival(tables, scan_interval_days=INTERVAL))
    assert pfs[1] == (150.0, True)
    assert pfs[3] == (40.0, True)
    assert [x for i, x in enumerate(pfs) if i not in (1, 3)] == [
        x for i, x in enumerate(_ttp(tables)) if i not in (1, 3)
    ]


def test_ttp_by_mrecist_reads_the_mrecist_column():
    # RECIST SD at 56 and 112; mRECIST PR at 56, PD at 112: TTP censored at 112 vs event at 112.
    tables = _valid(patient(0, last_fu=200.0, scans=[(56, "SD", "PR"), (112, "SD", "PD")]))
    assert _ttp(tables, "recist1.1") == [(112.0, False)]
    assert _ttp(tables, "mrecist") == [(112.0, True)]


def _reference_ttp(p, criterion):
    """TTP by the docstring's rules, one patient at a time, in plain Python."""
    first_pd, new_therapy, last_ok = _reference_progression(p, criterion)
    if first_pd <= new_therapy and first_pd < math.inf:
        return first_pd, True
    return last_ok, False


def _index_scans(p, criterion):
    return sorted(
        (s.day, s.recist if criterion == "recist1.1" else (s.mrecist or s.recist))
        for s in p.scans
        if (s.line or p.index_line) == p.index_line
    )


@given(_cohorts(), st.sampled_from(["recist1.1", "mrecist"]))
def test_ttp_dor_pps_match_per_patient_references(patients, criterion):
    tables = cohort(*patients)
    schema.validate(tables)
    ttp = _ttp(tables, criterion)
    assert ttp == [_reference_ttp(p, criterion) for p in patients]

    # PPS: the patients whose TTP is an event; from that day to death or last follow-up.
    pps, rows = post_progression_survival(tables, criterion)
    expected_rows = [i for i, (_, e) in enumerate(ttp) if e]
    assert rows.tolist() == expected_rows
    assert _pairs(pps) == [
        (patients[i].last_follow_up_day - ttp[i][0], patients[i].death) for i in expected_rows
    ]

    # DoR: responders by the best-overall-response rules; from the first CR/PR scan, the PFS
    # duration and event (0, censored, if the PFS censoring comes before the response).
    dor, rows = duration_of_response(tables, criterion, scan_interval_days=INTERVAL)
    expected = []
    expected_rows = []
    for i, p in enumerate(patients):
        scans = _index_scans(p, criterion)
        bor = best_overall_response([d for d, _ in scans], [r for _, r in scans])
        if bor not in ("CR", "PR"):
            continue
        onset = min(d for d, r in scans if r in ("CR", "PR"))
        d, e = _reference_pfs(p, criterion)
        expected_rows.append(i)
        expected.append((d - onset, e) if d >= onset else (0.0, False))
    assert rows.tolist() == expected_rows
    assert _pairs(dor) == expected


# -- duration of response ---------------------------------------------------------------------------


def test_duration_of_response_rule_by_rule():
    tables = _valid(
        # 0: PR at 56 and 112, PD at 168: from 56 to 168, event: 112.
        patient(0, last_fu=300.0, scans=[(56, "PR"), (112, "PR"), (168, "PD")]),
        # 1: SD at 56 only: not a responder.
        patient(1, last_fu=300.0, scans=[(56, "SD"), (112, "SD")]),
        # 2: SD 56, PR 112, CR 168, alive: from 112 to the last adequate scan 168, censored: 56.
        patient(2, last_fu=300.0, scans=[(56, "SD"), (112, "PR"), (168, "CR")]),
        # 3: CR at 56, death at 100 (44 days later, within two intervals): event at 100: 44.
        patient(3, last_fu=100.0, death=True, scans=[(56, "CR")]),
        # 4: PR at 56, death at 200 (144 days later, missed scans): censored at 56: 0.
        patient(4, last_fu=200.0, death=True, scans=[(56, "PR")]),
        # 5: PR 56, SD 112, line 1 stopped at 140, line 2 from 150, death at 400: censored at
        # the last adequate scan before the new therapy, 112: 56.
        _two_lines(5, 400.0, death=True, scans=[(56, "PR"), (112, "SD")], end1=140.0, start2=150.0),
        # 6: PD at 56: not a responder; 7: no scans: not a responder.
        patient(6, last_fu=120.0, scans=[(56, "PD")]),
        patient(7, last_fu=30.0),
    )
    dor, rows = duration_of_response(tables, scan_interval_days=INTERVAL)
    assert dor.name == "dor_recist1.1"
    assert rows.tolist() == [0, 2, 3, 4, 5]
    assert _pairs(dor) == [(112.0, True), (56.0, False), (44.0, True), (0.0, False), (56.0, False)]


def test_duration_of_response_with_confirmation():
    tables = _valid(
        # 0: PR at 56, PD at 84: responder unconfirmed (with confirmation, SD: 56 >= 42 days).
        patient(0, last_fu=200.0, scans=[(56, "PR"), (84, "PD")]),
        # 1: PR at 56 confirmed by PR at 112 (56 >= 28 days later), PD at 168: 112, event.
        patient(1, last_fu=300.0, scans=[(56, "PR"), (112, "PR"), (168, "PD")]),
    )
    dor, rows = duration_of_response(tables, scan_interval_days=INTERVAL)
    assert rows.tolist() == [0, 1]
    assert _pairs(dor) == [(28.0, True), (112.0, True)]
    dor, rows = duration_of_response(tables, scan_interval_days=INTERVAL, confirm=True)
    assert rows.tolist() == [1]
    assert _pairs(dor) == [(112.0, True)]


def test_duration_of_response_mrecist_and_no_responders():
    # RECIST SD throughout; mRECIST PR at 56, PD at 112: a responder by mRECIST only, DoR 56.
    tables = _valid(patient(0, last_fu=200.0, scans=[(56, "SD", "PR"), (112, "SD", "PD")]))
    dor, rows = duration_of_response(tables, "mrecist", scan_interval_days=INTERVAL)
    assert rows.tolist() == [0]
    assert _pairs(dor) == [(56.0, True)]
    dor, rows = duration_of_response(tables, "recist1.1", scan_interval_days=INTERVAL)
    assert rows.tolist() == []
    assert dor.durations.shape == (0,)
    assert dor.events.dtype == bool


# -- post-progression survival -----------------------------------------------------------------------


def test_post_progression_survival_rule_by_rule():
    tables = _valid(
        # 0: PD at 112, death at 300: 188, event.
        patient(0, last_fu=300.0, death=True, scans=[(56, "SD"), (112, "PD")]),
        # 1: PD at 112, alive at 250: 138, censored.
        patient(1, last_fu=250.0, scans=[(56, "SD"), (112, "PD")]),
        # 2: death at 150 without progression: not in PPS.
        patient(2, last_fu=150.0, death=True, scans=[(56, "SD"), (112, "SD")]),
        # 3: line 1 stopped for toxicity at 100, line 2 from 120 progresses at 176 (its own
        # scans): no progression on the index line, not in PPS.
        _two_lines(
            3, 300.0, death=True, scans=[(56, "SD"), Scan(176, "PD", line=2)], end1=100, start2=120
        ),
        # 4: PD at 112 and line 2 that day, death at 500: progression; 388, event.
        _two_lines(
            4,
            500.0,
            death=True,
            scans=[(56, "SD"), (112, "PD")],
            end1=112.0,
            start2=112.0,
            reason1="progression",
        ),
        # 5: PD at 56 and alive on the same day (last follow-up 56): 0, censored.
        patient(5, last_fu=56.0, scans=[(56, "PD")]),
    )
    pps, rows = post_progression_survival(tables)
    assert pps.name == "pps_recist1.1"
    assert rows.tolist() == [0, 1, 4, 5]
    assert _pairs(pps) == [(188.0, True), (138.0, False), (388.0, True), (0.0, False)]
    # OS = PFS + PPS for them (the PFS event is the progression).
    os_ = overall_survival(tables)
    pfs = progression_free_survival(tables, scan_interval_days=INTERVAL)
    np.testing.assert_array_equal(pfs.durations[rows] + pps.durations, os_.durations[rows])
    np.testing.assert_array_equal(pps.events, os_.events[rows])


# -- time on treatment, cycles, line group ----------------------------------------------------------


def test_time_on_treatment_cycles_and_line_group():
    tables = cohort(
        # 0: the default single line, alive: runs to the last follow-up 300, censored.
        patient(0, last_fu=300.0),
        # 1: the default single line, death at 120 (end_reason death): 120, event.
        patient(1, last_fu=120.0, death=True),
        # 2: index line 1 stopped for progression at 112; line 2 from 130: 112, event.
        _two_lines(2, 400.0, scans=[(112, "PD")], end1=112.0, start2=130.0, reason1="progression"),
        # 3: index line 2 (line 1 before day 0): from 0 to 150, toxicity: 150, event; then
        # line 3 from 170.
        patient(
            3,
            last_fu=300.0,
            index_line=2,
            lines=[
                (1, -200.0, -30.0, "progression"),
                (2, 0.0, 150.0, "toxicity"),
                (3, 170.0, 300.0),
            ],
        ),
        # 4: index line 3, clinical deterioration at 60: 60, event.
        patient(
            4,
            last_fu=90.0,
            index_line=3,
            lines=[
                (1, -400.0, -250.0, "progression"),
                (2, -220.0, -20.0, "progression"),
                (3, 0.0, 60.0, "clinical_deterioration"),
            ],
        ),
        # 5: index line 5, running at the last follow-up 45: censored.
        patient(
            5, last_fu=45.0, index_line=5, lines=[(4, -90.0, -10.0, "toxicity"), (5, 0.0, 45.0)]
        ),
    )
    # Distinct cycle counts per lines row: 10 x the row number, so the index line's row shows.
    tables["lines"]["cycles"] = 10 * np.arange(len(tables["lines"]["cycles"]), dtype=np.int64)
    schema.validate(tables)
    tot = time_on_treatment(tables)
    assert tot.name == "time_on_treatment"
    assert _pairs(tot) == [
        (300.0, False),
        (120.0, True),
        (112.0, True),
        (150.0, True),
        (60.0, True),
        (45.0, False),
    ]
    # Lines rows in order: p0 [0], p1 [1], p2 [2, 3], p3 [4, 5, 6], p4 [7, 8, 9], p5 [10, 11];
    # index rows 0, 1, 2, 5, 9, 11.
    np.testing.assert_array_equal(cycles(tables), [0, 10, 20, 50, 90, 110])
    assert cycles(tables).dtype == np.int64
    assert line_group(tables).tolist() == [
        "1st",
        "1st",
        "1st",
        "2nd",
        "3rd_or_later",
        "3rd_or_later",
    ]


def test_time_on_treatment_starts_at_the_line_start():
    # A real cohort whose index line starts on day 3 (the tables put day 0 at the index start,
    # but the subtraction must not assume it): 100 - 3 = 97.
    tables = cohort(patient(0, last_fu=100.0, death=True))
    tables["lines"]["start_day"] = np.array([3.0])
    assert _pairs(time_on_treatment(tables)) == [(97.0, True)]


def test_missing_index_line_is_an_error():
    tables = cohort(patient(0, last_fu=100.0), patient(1, last_fu=50.0))
    tables["lines"] = {c: v[:1] for c, v in tables["lines"].items()}  # patient 1 loses its line
    with pytest.raises(ValueError, match=r"index line of 1 patient\(s\).*patient 1"):
        time_on_treatment(tables)
    with pytest.raises(ValueError, match="patient 1"):
        cycles(tables)


def test_empty_cohort():
    tables = cohort()
    assert time_on_treatment(tables).durations.shape == (0,)
    assert cycles(tables).shape == (0,)
    assert line_group(tables).shape == (0,)
    assert disease_control_4w(tables).shape == (0,)
    assert time_to_progression(tables, scan_interval_days=INTERVAL).durations.shape == (0,)
    assert post_progression_survival(tables)[1].shape == (0,)
    assert duration_of_response(tables, scan_interval_days=INTERVAL)[1].shape == (0,)


# -- disease control at 4 weeks ---------------------------------------------------------------------


def test_disease_control_4w_rule_by_rule():
    tables = _valid(
        patient(0, last_fu=200.0, scans=[(56, "SD")]),  # SD on day 56: True
        patient(1, last_fu=200.0, scans=[(28, "PR")]),  # PR on day 28 exactly: True
        patient(2, last_fu=200.0, scans=[(27, "SD")]),  # SD on day 27 only: False
        patient(3, last_fu=200.0, scans=[(56, "PD")]),  # PD: False
        patient(4, last_fu=200.0, scans=[(21, "SD"), (42, "PD"), (84, "SD")]),  # PD first: False
        patient(5, last_fu=200.0, scans=[(56, "NE"), (112, "SD")]),  # SD at 112: True
        patient(6, last_fu=200.0),  # no scan: False
        patient(7, last_fu=20.0, death=True),  # died on day 20: False
        patient(8, last_fu=200.0, scans=[(56, "CR", "PD")]),  # CR by RECIST, PD by mRECIST
        patient(9, last_fu=200.0, scans=[(56, "SD"), (112, "PD")]),  # SD before PD: True
        # 10: index line 1 stopped at 30 (no scan), line 2 from 40 with SD at 96: False.
        _two_lines(10, 200.0, scans=[Scan(96, "SD", line=2)], end1=30.0, start2=40.0),
    )
    got = disease_control_4w(tables)
    assert got.dtype == bool
    assert got.tolist() == [True, True, False, False, False, True, False, False, True, True, False]
    assert disease_control_4w(tables, "mrecist")[8].item() is False
    # min_days 56: patient 1 (day 28) drops out, patient 0 (day 56) stays.
    assert disease_control_4w(tables, min_days=56)[[0, 1]].tolist() == [True, False]
    # by_day 56: patient 5 (SD only on day 112) is not yet known to have disease control.
    by56 = disease_control_4w(tables, by_day=56)
    assert by56.tolist() == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
        True,
        False,
    ]


def _guarantee_time_cohort():
    """Six patients whose OS from the landmark (day 56, the first scan) does not depend on
    disease control at all, but whose OS from day 0 does, through the early deaths."""
    return _valid(
        patient(0, last_fu=200.0, death=True, scans=[(56, "SD")]),  # DC; OS 200
        patient(1, last_fu=300.0, death=True, scans=[(56, "SD")]),  # DC; OS 300
        patient(2, last_fu=20.0, death=True),  # no DC (died before any scan); OS 20
        patient(3, last_fu=40.0, death=True),  # no DC (died before any scan); OS 40
        patient(4, last_fu=200.0, death=True, scans=[(56, "PD")]),  # no DC; OS 200
        patient(5, last_fu=300.0, death=True, scans=[(56, "PD")]),  # no DC; OS 300
    )


def test_guarantee_time_bias_and_the_landmark_analysis():
    from lifelines.statistics import logrank_test

    tables = _guarantee_time_cohort()
    os_ = overall_survival(tables)
    dc = disease_control_4w(tables)
    assert dc.tolist() == [True, True, False, False, False, False]

    # As the anchor study compared them (OS from day 0): DC medians 200 (S = 1/2 at 200) vs 40
    # (S = 3/4 at 20, 1/2 at 40), and a log-rank test that sees a difference.
    assert km_median(os_.durations[dc], os_.events[dc]) == 200.0
    assert km_median(os_.durations[~dc], os_.events[~dc]) == 40.0
    naive = logrank_test(os_.durations[dc], os_.durations[~dc], os_.events[dc], os_.events[~dc])

    # Landmark at day 56: patients 0, 1, 4 and 5 are alive; OS from day 56 is 144 and 244 in
    # both groups: medians 144 and 144, and the log-rank statistic is exactly 0 (p = 1).
    lm, rows = landmark(os_, 56.0)
    assert rows.tolist() == [0, 1, 4, 5]
    assert lm.name == "os_landmark_56"
    assert _pairs(lm) == [(144.0, True), (244.0, True), (144.0, True), (244.0, True)]
    g = disease_control_4w(tables, by_day=56.0)[rows]
    assert g.tolist() == [True, True, False, False]
    assert km_median(lm.durations[g], lm.events[g]) == km_median(lm.durations[~g], lm.events[~g])
    proper = logrank_test(lm.durations[g], lm.durations[~g], lm.events[g], lm.events[~g])
    assert proper.test_statistic == pytest.approx(0.0, abs=1e-12)
    assert proper.p_value == pytest.approx(1.0, abs=1e-12)
    assert naive.p_value < proper.p_value


def test_landmark_rules():
    ep = Endpoint(
        "pfs", np.array([10.0, 56.0, 56.0, 57.0, 100.0]), np.array([1, 1, 0, 0, 1], dtype=bool)
    )
    # An event or a censoring on the landmark day itself is not at risk after it.
    lm, rows = landmark(ep, 56.0)
    assert rows.tolist() == [3, 4]
    assert _pairs(lm) == [(1.0, False), (44.0, True)]
    # alive_mask narrows further (patient 3 known dead by then from another source, say).
    lm, rows = landmark(ep, 56.0, alive_mask=np.array([True, True, True, False, True]))
    assert rows.tolist() == [4]
    assert _pairs(lm) == [(44.0, True)]
    # Landmark at day 0: everyone with a positive duration, durations unchanged.
    lm, rows = landmark(ep, 0.0)
    assert rows.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(lm.durations, ep.durations)


def test_landmark_with_an_alive_mask_from_os():
    # PFS landmark at day 56 among patients alive at day 56 by OS.
    tables = _valid(
        patient(0, last_fu=300.0, death=True, scans=[(56, "SD"), (112, "PD")]),  # PFS 112 event
        patient(1, last_fu=300.0, scans=[(56, "SD"), (112, "SD")]),  # PFS censored 112
        patient(2, last_fu=50.0, death=True),  # PFS event 50, OS 50: gone at 56
    )
    os_ = overall_survival(tables)
    pfs = progression_free_survival(tables, scan_interval_days=INTERVAL)
    lm, rows = landmark(pfs, 56.0, alive_mask=os_.durations > 56.0)
    assert rows.tolist() == [0, 1]
    assert _pairs(lm) == [(56.0, True), (56.0, False)]


# -- data cuts at the n-th event --------------------------------------------------------------------


def _deaths_cohort():
    # Entry days 0, 7, 14, 21, 28. Deaths on calendar days 0 + 100 = 100, 7 + 50 = 57,
    # 21 + 30 = 51, 28 + 200 = 228; patient 2 (entry 14) is alive at 400. In calendar order:
    # 51 (patient 3), 57 (patient 1), 100 (patient 0), 228 (patient 4).
    return _valid(
        patient(0, last_fu=100.0, death=True),
        patient(1, last_fu=50.0, death=True),
        patient(2, last_fu=400.0),
        patient(3, last_fu=30.0, death=True),
        patient(4, last_fu=200.0, death=True),
    )


def test_data_cut_at_the_second_death():
    tables = _deaths_cohort()
    cut = data_cut_at_events(tables, 2)
    assert cut.reached
    assert cut.calendar_day == 57.0
    assert cut.n_events == 2
    # Follow-up limits 57 - entry: 57, 50, 43, 36, 29. Patient 0 (dies at 100) is censored at
    # 57; patient 1 dies on 50 = its limit (kept); patient 2 is censored at 43; patient 3 died
    # at 30; patient 4 is censored at 29.
    os_ = overall_survival(cut.tables)
    assert _pairs(os_) == [(57.0, False), (50.0, True), (43.0, False), (30.0, True), (29.0, False)]
    # The same tables as data_cut on that day.
    direct = data_cut(tables, 57.0)
    for name, cols in direct.items():
        for c, v in cols.items():
            np.testing.assert_array_equal(cut.tables[name][c], v)


def test_data_cut_at_the_last_death_and_beyond():
    tables = _deaths_cohort()
    cut = data_cut_at_events(tables, 4)
    assert (cut.reached, cut.calendar_day, cut.n_events) == (True, 228.0, 4)
    # Patient 2 (entry 14) is censored at 228 - 14 = 214; every death is in.
    assert _pairs(overall_survival(cut.tables)) == [
        (100.0, True),
        (50.0, True),
        (214.0, False),
        (30.0, True),
        (200.0, True),
    ]
    # A fifth death never comes: the tables come back uncut, with the number of events.
    cut = data_cut_at_events(tables, 5)
    assert not cut.reached
    assert math.isnan(cut.calendar_day)
    assert cut.n_events == 4
    assert cut.tables is tables


def test_followed_beyond_a_calendar_cut():
    """Follow-up ends on calendar days 100, 57, 414 (patient 2, alive), 51 and 228: a cut after
    day 414 is not reached (nobody is followed up to it, patient 2 is alive at the end of
    follow-up); a cut on day 414 itself loses nothing (reached); once everyone has died, a
    late cut loses nothing."""
    tables = _deaths_cohort()
    assert followed_beyond(tables, 413.0) == (True, True)
    assert followed_beyond(tables, 414.0) == (True, True)
    assert followed_beyond(tables, 414.5) == (False, True)
    assert followed_beyond(tables, 10_000.0) == (False, True)
    dead = _valid(
        patient(0, last_fu=100.0, death=True),
        patient(1, last_fu=50.0, death=True),
    )  # calendar ends 100 and 57
    assert followed_beyond(dead, 99.0) == (True, False)
    assert followed_beyond(dead, 100.5) == (False, False)


def test_data_cut_at_events_with_tied_calendar_days():
    # Deaths on calendar days 0 + 60 = 60, 7 + 53 = 60 and 14 + 100 = 114: the second death's
    # day (60) also holds the first; the third is later. n = 1 and n = 2 both cut on day 60,
    # where two deaths are known.
    tables = _valid(
        patient(0, last_fu=60.0, death=True),
        patient(1, last_fu=53.0, death=True),
        patient(2, last_fu=100.0, death=True),
    )
    for n in (1, 2):
        cut = data_cut_at_events(tables, n)
        assert (cut.calendar_day, cut.n_events) == (60.0, 2)


def test_data_cut_at_events_keeps_a_death_that_rounding_would_lose():
    # Entry on day 0.4, death on day 0.1: the calendar day 0.4 + 0.1 = 0.5 in floating point,
    # but 0.5 - 0.4 = 0.09999999999999998 < 0.1, so data_cut(tables, 0.5) would miss the death.
    tables = _valid(patient(0, last_fu=0.1, death=True), patient(1, last_fu=10.0))
    tables["patients"]["entry_day"] = np.array([0.4, 0.0])
    assert 0.5 - 0.4 < 0.1
    assert not overall_survival(data_cut(tables, 0.5)).events[0]
    cut = data_cut_at_events(tables, 1)
    assert cut.n_events == 1
    assert overall_survival(cut.tables).events.tolist() == [True, False]
    assert 0.5 <= cut.calendar_day <= 0.5 + 4 * np.spacing(0.5)


def test_data_cut_at_pfs_events():
    # Entry 0, 7, 14. PFS events: patient 0 PD at 56 (calendar 56); patient 1 PD at 112
    # (calendar 119); patient 2 death at 80 without a scan (within two intervals: an event,
    # calendar 94). In calendar order 56, 94, 119: the second is on day 94.
    tables = _valid(
        patient(0, last_fu=300.0, scans=[(56, "PD")]),
        patient(1, last_fu=300.0, scans=[(56, "SD"), (112, "PD")]),
        patient(2, last_fu=80.0, death=True),
    )
    cut = data_cut_at_events(tables, 2, "pfs", scan_interval_days=INTERVAL)
    assert (cut.reached, cut.calendar_day, cut.n_events) == (True, 94.0, 2)
    # Patient 1 is followed to 94 - 7 = 87: the SD on day 56 is its last adequate scan.
    pfs = progression_free_survival(cut.tables, scan_interval_days=INTERVAL)
    assert _pairs(pfs) == [(56.0, True), (56.0, False), (80.0, True)]
    # By OS there is a single death (calendar 94): the second never comes.
    cut = data_cut_at_events(tables, 2)
    assert (cut.reached, cut.n_events) == (False, 1)


def test_data_cut_at_events_bad_arguments():
    tables = _deaths_cohort()
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="n_events"):
            data_cut_at_events(tables, bad)
    with pytest.raises(ValueError, match="endpoint must be 'os' or 'pfs', not 'ttp'"):
        data_cut_at_events(tables, 1, "ttp")
    with pytest.raises(ValueError, match="scan_interval_days"):
        data_cut_at_events(tables, 1, "pfs")
    two = _valid(patient(0, last_fu=10.0, death=True), patient(0, last_fu=5.0, replicate=1))
    with pytest.raises(ValueError, match=r"one replicate.*\[0, 1\]"):
        data_cut_at_events(two, 1)


# -- inputs -----------------------------------------------------------------------------------------


def test_bad_arguments():
    tables = _valid(patient(0, last_fu=100.0, scans=[(56, "SD")]))
    for f in (time_to_progression, duration_of_response):
        with pytest.raises(ValueError, match=r"criterion must be 'recist1\.1' or 'mrecist'"):
            f(tables, "recist", scan_interval_days=INTERVAL)
        for interval in (0.0, -1.0, math.nan, "x", "56", None):
            with pytest.raises(ValueError, match="scan_interval_days"):
                f(tables, scan_interval_days=interval)
    with pytest.raises(ValueError, match="criterion"):
        post_progression_survival(tables, "who")
    with pytest.raises(ValueError, match="criterion"):
        disease_control_4w(tables, "who")
    for bad in (-1.0, math.nan, math.inf, None, "28"):
        with pytest.raises(ValueError, match="min_days"):
            disease_control_4w(tables, min_days=bad)
        with pytest.raises(ValueError, match="landmark_day"):
            landmark(overall_survival(tables), bad)
    with pytest.raises(ValueError, match="by_day"):
        disease_control_4w(tables, by_day=20.0)
    with pytest.raises(ValueError, match="alive_mask"):
        landmark(overall_survival(tables), 10.0, alive_mask=np.array([True, False]))
    with pytest.raises(ValueError, match="alive_mask"):
        landmark(overall_survival(tables), 10.0, alive_mask=np.array([1]))
    bad_line = cohort(patient(0, last_fu=10.0))
    bad_line["patients"]["index_line"] = np.array([0])
    with pytest.raises(ValueError, match="index_line must be 1 or more, not 0"):
        line_group(bad_line)


def test_pandas_and_arrow_tables_give_the_same_results():
    import pandas as pd

    tables = _valid(
        patient(0, last_fu=300.0, death=True, scans=[(56, "PR"), (112, "PD")]),
        patient(1, last_fu=100.0, death=True),
        patient(2, last_fu=250.0, scans=[(56, "SD"), (112, "NE")]),
    )
    frames = {k: pd.DataFrame(v) for k, v in tables.items()}
    for t in (tables, frames, to_arrow(tables)):
        assert _ttp(t) == [(112.0, True), (0.0, False), (56.0, False)]
        dor, rows = duration_of_response(t, scan_interval_days=INTERVAL)
        assert (rows.tolist(), _pairs(dor)) == ([0], [(56.0, True)])
        pps, rows = post_progression_survival(t)
        assert (rows.tolist(), _pairs(pps)) == ([0], [(188.0, True)])
        assert _pairs(time_on_treatment(t)) == [(300.0, True), (100.0, True), (250.0, False)]
        assert disease_control_4w(t).tolist() == [True, False, True]
        assert line_group(t).tolist() == ["1st"] * 3
        cut = data_cut_at_events(t, 2)  # deaths on calendar 0 + 300 and 7 + 100 = 107
        assert (cut.calendar_day, cut.n_events) == (300.0, 2)


def test_data_cut_drops_every_row_of_a_patient_who_entered_after_it():
    # Entry days 0 and 70 (7 x patient_id); both on their second line, the first having run
    # from day -200 to -10 of the index start. A cut on day 50 is before patient 10 entered:
    # none of their rows stay, not even the prior line that started before the cut.
    prior = [(1, -200.0, -10.0, "progression"), (2, 0.0, 300.0, "end_of_follow_up")]
    tables = _valid(
        patient(0, last_fu=300.0, lines=prior, index_line=2, scans=[(42, "SD", "SD", 2)]),
        patient(10, last_fu=300.0, lines=prior, index_line=2, scans=[(42, "SD", "SD", 2)]),
    )
    cut = data_cut(tables, 50.0)
    assert cut["patients"]["patient_id"].tolist() == [0]
    for name, cols in cut.items():
        assert set(cols["patient_id"].tolist()) <= {0}, name
    assert cut["lines"]["line"].tolist() == [1, 2]
    assert cut["lines"]["end_reason"].tolist() == ["progression", "end_of_follow_up"]
    schema.validate(cut)


@pytest.mark.parametrize("day", [math.nan, math.inf, -1.0, "57"])
def test_data_cut_refuses_a_day_that_is_not_a_day(day):
    """A NaN cut used to drop every patient silently (every follow-up limit NaN), leaving an
    empty cohort to analyse."""
    with pytest.raises(ValueError, match="calendar_day must be a finite number of days >= 0"):
        data_cut(_deaths_cohort(), day)
