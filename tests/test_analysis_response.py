"""Per-visit response by RECIST 1.1 and mRECIST on hand cases and as properties.

Rules (module docstring of ``hccsim.analysis.response``): RECIST 1.1, Eisenhauer et al., Eur J
Cancer 2009;45:228, section 4.3.1 (targets: CR all gone; PR a fall of at least 30% from the
baseline sum; PD a rise of at least 20% over the nadir, baseline included, and of at least
5 mm) and Table 1 (overall response from targets, non-targets and new lesions) and Table 2
(non-target disease only); mRECIST, Lencioni & Llovet, Semin Liver Dis 2010;30:52 (viable
diameters, no 5 mm rule; hccsim measures the 20% rise against ``max(nadir, 10 mm)``, its stated
floor). Best overall response: RECIST 1.1 section 4.4 and Table 3 (confirmation).

The table-driven sections below take their cases row by row from the published tables and cite
the row; "Table 1, row N" counts the rows of RECIST 1.1 Table 1 from the top.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hccsim.analysis.response import (
    NONTARGET,
    RESPONSES,
    best_overall_response,
    target_response,
    visit_response,
)

NAN = math.nan


# -- target lesions: thresholds ----------------------------------------------------------------


@pytest.mark.parametrize("criterion", ["recist1.1", "mrecist"])
def test_exactly_30_percent_fall_is_pr_and_29_9_is_sd(criterion):
    # Baseline 100 mm: 70 mm is -30.0% (PR), 70.1 mm is -29.9% (SD).
    assert target_response(70.0, 100.0, 100.0, criterion) == "PR"
    assert target_response(70.1, 100.0, 100.0, criterion) == "SD"


@pytest.mark.parametrize("baseline_mm", range(10, 1001, 10))
def test_exactly_30_percent_fall_is_pr_for_every_whole_mm_baseline(baseline_mm):
    # 0.7 x baseline is a whole number of mm for these baselines; "at least a 30% decrease" is PR.
    # Without a tolerance 0.7 * 90 = 62.99999999999999 < 63 and 63 mm from 90 mm read SD.
    now = baseline_mm * 7 // 10
    assert target_response(float(now), float(baseline_mm), float(baseline_mm)) == "PR"
    assert target_response(now + 0.1, float(baseline_mm), float(baseline_mm)) == "SD"


def test_pd_needs_20_percent_and_5_mm_under_recist_only():
    # Nadir 50 -> 60: +20%, +10 mm: PD by both.
    assert target_response(60.0, 50.0, 50.0, "recist1.1") == "PD"
    assert target_response(60.0, 50.0, 50.0, "mrecist") == "PD"
    # Nadir 20 -> 24: +20% but only +4 mm: not PD by RECIST 1.1 (SD: 24 > 0.7 x 30), PD by
    # mRECIST (no absolute rule).
    assert target_response(24.0, 30.0, 20.0, "recist1.1") == "SD"
    assert target_response(24.0, 30.0, 20.0, "mrecist") == "PD"
    # Nadir 25 -> 30: +20% and exactly +5 mm: PD; 29.9 mm: +19.6%, +4.9 mm: SD.
    assert target_response(30.0, 30.0, 25.0, "recist1.1") == "PD"
    assert target_response(29.9, 30.0, 25.0, "recist1.1") == "SD"
    # Nadir 100 -> 119.9: +19.9% (and +19.9 mm): SD by both.
    assert target_response(119.9, 100.0, 100.0, "recist1.1") == "SD"
    assert target_response(119.9, 100.0, 100.0, "mrecist") == "SD"


def test_thresholds_exactly_met_on_a_tenth_of_a_mm_are_met():
    # 3.7 -> 8.7 mm is +5.0 mm (and +135%): PD; in floats 8.7 - 3.7 = 4.999999999999999.
    assert target_response(8.7, 10.0, 3.7, "recist1.1") == "PD"
    # mRECIST measures the rise against max(nadir, 10 mm): 0.3 -> 2.3 mm is +2.0 mm, 20% of the
    # 10 mm floor: PD; in floats 2.3 - 0.3 = 1.9999999999999998.
    assert target_response(2.3, 5.0, 0.3, "mrecist") == "PD"
    # 1.0 -> 1.2 mm is +20% of the nadir but only 2% of the floor: not PD (SD: 1.2 > 0.7 x 1.5).
    assert target_response(1.2, 1.5, 1.0, "mrecist") == "SD"
    # 12.0 -> 8.4 mm is -30%: PR; in floats 0.7 * 12.0 = 8.399999999999999.
    assert target_response(8.4, 12.0, 12.0, "recist1.1") == "PR"


def test_pd_is_measured_from_the_nadir_not_the_baseline():
    # Baseline 100, nadir 40, now 50: -50% from baseline yet +25% and +10 mm over the nadir: PD.
    assert target_response(50.0, 100.0, 40.0) == "PD"
    # Now 47: +17.5% over the nadir: not PD; -53% from baseline: PR.
    assert target_response(47.0, 100.0, 40.0) == "PR"


def _read_series(sums, criterion="recist1.1"):
    """Read scans in order as an analyst does: nadir = smallest sum so far, baseline included."""
    baseline, nadir, out = sums[0], sums[0], []
    for s in sums[1:]:
        out.append(visit_response(s, baseline, nadir, criterion=criterion))
        nadir = min(nadir, s)
    return out


def test_nadir_includes_the_baseline():
    # Sums 50 (baseline), 58, 60: the nadir stays the baseline 50 (58 and 60 are larger), so
    # 60 mm is +20% and +10 mm over it: PD. 58 is +16%: SD.
    assert _read_series([50.0, 58.0, 60.0]) == ["SD", "PD"]
    # Sums 50, 40, 48: the nadir is 40 after the first visit; 48 is +20%, +8 mm over it: PD,
    # although it is still 4% below the baseline.
    assert _read_series([50.0, 40.0, 48.0]) == ["SD", "PD"]
    # Sums 100, 60, 30, 36: PR, PR, then 36 = +20% and +6 mm over the nadir 30: PD.
    assert _read_series([100.0, 60.0, 30.0, 36.0]) == ["PR", "PR", "PD"]
    # Sums 30, 22, 26.4: 22 is -26.7% (SD); 26.4 is +20% over the nadir 22 but only +4.4 mm:
    # SD by RECIST 1.1 (-12% from the baseline), PD by mRECIST.
    assert _read_series([30.0, 22.0, 26.4]) == ["SD", "SD"]
    assert _read_series([30.0, 22.0, 26.4], "mrecist") == ["SD", "PD"]


# -- overall response (RECIST 1.1 Tables 1 and 2) ----------------------------------------------


@pytest.mark.parametrize("criterion", ["recist1.1", "mrecist"])
@pytest.mark.parametrize(
    ("nontarget", "expected"),
    [("absent", "CR"), ("CR", "CR"), ("non-CR/non-PD", "PR"), ("NE", "PR"), ("PD", "PD")],
)
def test_target_cr_with_each_nontarget_status(criterion, nontarget, expected):
    assert visit_response(0.0, 40.0, 40.0, nontarget=nontarget, criterion=criterion) == expected


@pytest.mark.parametrize("nontarget", NONTARGET)
@pytest.mark.parametrize("sums", [(0.0, 40.0, 40.0), (20.0, 40.0, 40.0), (40.0, 40.0, 40.0)])
def test_new_lesions_are_pd_whatever_the_sums(nontarget, sums):
    assert visit_response(*sums, nontarget=nontarget, new_lesions=True) == "PD"
    assert visit_response(NAN, 40.0, 40.0, nontarget=nontarget, new_lesions=True) == "PD"


@pytest.mark.parametrize("sums", [(0.0, 40.0, 40.0), (20.0, 40.0, 40.0), (NAN, 40.0, 40.0)])
def test_unequivocal_nontarget_progression_is_pd(sums):
    assert visit_response(*sums, nontarget="PD") == "PD"


@pytest.mark.parametrize(
    ("sums", "nontarget", "expected"),
    [
        ((20.0, 40.0, 40.0), "NE", "PR"),  # PR stays PR with non-targets not evaluated
        ((35.0, 40.0, 40.0), "NE", "SD"),  # SD stays SD
        ((35.0, 40.0, 40.0), "non-CR/non-PD", "SD"),
        ((20.0, 40.0, 40.0), "CR", "PR"),
    ],
)
def test_table_1_other_rows(sums, nontarget, expected):
    assert visit_response(*sums, nontarget=nontarget) == expected


@pytest.mark.parametrize("nontarget", ["absent", "CR", "non-CR/non-PD", "NE"])
def test_unassessed_target_is_ne(nontarget):
    # A target lesion not assessed (sum NaN), no new lesions, non-targets not PD: NE.
    assert target_response(NAN, 40.0, 40.0) == "NE"
    assert visit_response(NAN, 40.0, 40.0, nontarget=nontarget) == "NE"


@pytest.mark.parametrize(
    ("nontarget", "new_lesions", "expected"),
    [
        ("CR", False, "CR"),
        ("non-CR/non-PD", False, "SD"),  # reported as SD
        ("NE", False, "NE"),
        ("PD", False, "PD"),
        ("absent", False, "NE"),  # no disease to follow at all
        ("CR", True, "PD"),
        ("non-CR/non-PD", True, "PD"),
    ],
)
@pytest.mark.parametrize("criterion", ["recist1.1", "mrecist"])
def test_no_target_lesions_read_from_nontargets(nontarget, new_lesions, expected, criterion):
    # sum_baseline 0 = no target lesions (Table 2); the current sum is irrelevant.
    for now in (0.0, NAN):
        got = visit_response(
            now, 0.0, 0.0, nontarget=nontarget, new_lesions=new_lesions, criterion=criterion
        )
        assert got == expected


# -- properties ---------------------------------------------------------------------------------

_mm = st.floats(0.0, 2000.0, allow_nan=False)
_criterion = st.sampled_from(["recist1.1", "mrecist"])
_TOL = 1e-9  # mm; the module's allowance for rounding at a threshold


@given(
    now=_mm,
    baseline=st.floats(0.1, 2000.0),
    nadir_fraction=st.floats(0.0, 1.0),
    nontarget=st.sampled_from(NONTARGET),
    new_lesions=st.booleans(),
    criterion=_criterion,
)
def test_pr_and_pd_imply_their_thresholds(
    now, baseline, nadir_fraction, nontarget, new_lesions, criterion
):
    nadir = baseline * nadir_fraction  # the nadir never exceeds the baseline
    overall = visit_response(
        now, baseline, nadir, nontarget=nontarget, new_lesions=new_lesions, criterion=criterion
    )
    target = target_response(now, baseline, nadir, criterion)
    if overall == "PR":
        assert now <= 0.7 * baseline + _TOL
    if target == "PD":
        assert now - nadir > 0
        assert now - nadir >= 0.2 * nadir - _TOL
        if criterion == "recist1.1":
            assert now - nadir >= 5.0 - _TOL
        else:
            assert now - nadir >= 0.2 * max(nadir, 10.0) - _TOL
    if overall == "PD" and not new_lesions and nontarget != "PD":
        assert target == "PD"
    if overall == "CR":
        assert now == 0.0 and nontarget in ("absent", "CR") and not new_lesions


@st.composite
def _tenth_mm_sums(draw):
    """(now, baseline, nadir) in tenths of a mm, now often on or next to a threshold."""
    baseline10 = draw(st.integers(1, 20000))
    nadir10 = draw(st.integers(0, baseline10))
    pr = 7 * baseline10 // 10  # the largest sum that is a 30% fall
    pd = nadir10 + max(-(-nadir10 // 5), 1)  # the smallest sum that is a 20% rise
    floor = nadir10 + max(-(-nadir10 // 5), 20)  # mRECIST: 20% of max(nadir, 10 mm)
    candidates = [0, pr, pr + 1, pd - 1, pd, floor - 1, floor, nadir10 + 49, nadir10 + 50]
    now10 = draw(st.one_of(st.sampled_from(candidates), st.integers(0, 20000)))
    return max(now10, 0), baseline10, nadir10


@settings(max_examples=400)  # cheap; enough draws to land on the thresholds
@given(_tenth_mm_sums(), _criterion)
def test_target_response_on_a_tenth_mm_grid_matches_integer_arithmetic(sums, criterion):
    # Sums read to 0.1 mm, as on a scanner; the rule evaluated exactly in tenths of a mm:
    # PD: rise > 0, 5 x rise >= nadir (20%), and (RECIST 1.1) rise >= 50 tenths or (mRECIST)
    # 5 x rise >= 100 tenths (20% of the 10 mm floor); CR: 0; PR: 10 x now <= 7 x baseline;
    # otherwise SD.
    now10, baseline10, nadir10 = sums
    rise = now10 - nadir10
    absolute_ok = 5 * rise >= 100 if criterion == "mrecist" else rise >= 50
    if rise > 0 and 5 * rise >= nadir10 and absolute_ok:
        expected = "PD"
    elif now10 == 0:
        expected = "CR"
    elif 10 * now10 <= 7 * baseline10:
        expected = "PR"
    else:
        expected = "SD"
    got = target_response(now10 / 10, baseline10 / 10, nadir10 / 10, criterion)
    assert got == expected


@pytest.mark.parametrize("baseline10", range(100, 3001, 10))
def test_exact_thresholds_on_a_tenth_mm_grid(baseline10):
    # Deterministic sweep of the cases the property above rarely draws: exactly -30% from a
    # baseline, exactly +20% over a nadir equal to it, and exactly +5 mm over a small nadir.
    b = baseline10 / 10
    assert target_response(baseline10 * 7 / 100, b, b) == "PR"
    if baseline10 % 5 == 0:
        assert target_response(baseline10 * 12 / 100, 2 * b, b, "mrecist") == "PD"
        if baseline10 >= 250:
            assert target_response(baseline10 * 12 / 100, 2 * b, b, "recist1.1") == "PD"
    small = baseline10 / 100  # nadir 1.0-30.0 mm in 0.1 mm steps
    if small <= 25.0:  # +5 mm is then at least +20%
        assert target_response((baseline10 + 500) / 100, 40.0, small, "recist1.1") == "PD"


# == RECIST 1.1 Table 1: targets x non-targets x new lesions -> overall response ===============
#
# Each target response is produced from sums (baseline and nadir 40 mm) that give it under both
# criteria; mRECIST combines them the same way (Lencioni & Llovet 2010).

_TARGET_SUMS = {
    "CR": (0.0, 40.0, 40.0),  # all gone
    "PR": (20.0, 40.0, 40.0),  # -50%
    "SD": (35.0, 40.0, 40.0),  # -12.5%
    "PD": (60.0, 40.0, 40.0),  # +50%, +20 mm over the nadir
    "NE": (NAN, 40.0, 40.0),  # a target lesion not assessed
}
_TARGETS = tuple(_TARGET_SUMS)
_NT_PRESENT = ("CR", "non-CR/non-PD", "PD", "NE")  # non-target statuses of Table 1
_NON_PD = ("CR", "non-CR/non-PD")


def _t1(row, target, nontarget, new, expected):
    return pytest.param(
        target,
        nontarget,
        new,
        expected,
        id=f"row{row}-{target}-{nontarget}-{'new' if new else 'no'}",
    )


TABLE_1 = [
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 1, row 1: CR / CR / no -> CR
    _t1(1, "CR", "CR", False, "CR"),
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 1, row 2: CR / non-CR/non-PD / no -> PR
    _t1(2, "CR", "non-CR/non-PD", False, "PR"),
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 1, row 3: CR / not evaluated / no -> PR
    _t1(3, "CR", "NE", False, "PR"),
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 1, row 4: PR / non-PD or not all
    # evaluated / no -> PR
    *(_t1(4, "PR", nt, False, "PR") for nt in (*_NON_PD, "NE")),
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 1, row 5: SD / non-PD or not all
    # evaluated / no -> SD
    *(_t1(5, "SD", nt, False, "SD") for nt in (*_NON_PD, "NE")),
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 1, row 6: not all evaluated / non-PD /
    # no -> NE (non-targets not evaluated either: also NE)
    *(_t1(6, "NE", nt, False, "NE") for nt in (*_NON_PD, "NE")),
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 1, row 7: PD / any / yes or no -> PD
    *(_t1(7, "PD", nt, new, "PD") for nt in _NT_PRESENT for new in (False, True)),
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 1, row 8: any / PD / yes or no -> PD
    *(_t1(8, t, "PD", new, "PD") for t in _TARGETS for new in (False, True)),
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 1, row 9: any / any / yes -> PD
    *(_t1(9, t, nt, True, "PD") for t in _TARGETS for nt in _NT_PRESENT),
]


@pytest.mark.parametrize("criterion", ["recist1.1", "mrecist"])
@pytest.mark.parametrize(("target", "nontarget", "new_lesions", "expected"), TABLE_1)
def test_recist_table_1(target, nontarget, new_lesions, expected, criterion):
    sums = _TARGET_SUMS[target]
    assert target_response(*sums, criterion) == target  # the row's target response
    got = visit_response(*sums, nontarget=nontarget, new_lesions=new_lesions, criterion=criterion)
    assert got == expected


@pytest.mark.parametrize("criterion", ["recist1.1", "mrecist"])
@pytest.mark.parametrize(
    ("target", "expected"),
    [("CR", "CR"), ("PR", "PR"), ("SD", "SD"), ("PD", "PD"), ("NE", "NE")],
)
def test_no_nontarget_lesions_reads_like_nontarget_cr(target, expected, criterion):
    # Not a row of Table 1: targets only, no non-target disease at all ("absent"). Nothing is
    # left besides the targets, so a target CR is an overall CR, as in row 1.
    sums = _TARGET_SUMS[target]
    assert visit_response(*sums, nontarget="absent", criterion=criterion) == expected
    assert visit_response(*sums, nontarget="absent", new_lesions=True, criterion=criterion) == "PD"


# == RECIST 1.1 Table 2: non-target disease only ================================================


def _t2(row, nontarget, new, expected):
    return pytest.param(
        nontarget, new, expected, id=f"row{row}-{nontarget}-{'new' if new else 'no'}"
    )


TABLE_2 = [
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 2, row 1: CR / no -> CR
    _t2(1, "CR", False, "CR"),
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 2, row 2: non-CR/non-PD / no ->
    # non-CR/non-PD. The paper prefers "non-CR/non-PD" to SD here (its footnote); this
    # implementation reports it as SD.
    _t2(2, "non-CR/non-PD", False, "SD"),
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 2, row 3: not all evaluated / no -> NE
    _t2(3, "NE", False, "NE"),
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 2, row 4: unequivocal PD / yes or no
    # -> PD
    _t2(4, "PD", False, "PD"),
    _t2(4, "PD", True, "PD"),
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 2, row 5: any / yes -> PD
    *(_t2(5, nt, True, "PD") for nt in NONTARGET),
]


@pytest.mark.parametrize("criterion", ["recist1.1", "mrecist"])
@pytest.mark.parametrize(("nontarget", "new_lesions", "expected"), TABLE_2)
def test_recist_table_2(nontarget, new_lesions, expected, criterion):
    # No target lesions: sum_baseline 0; the current sum (0, NaN or stale) plays no part.
    for now in (0.0, NAN, 25.0):
        got = visit_response(
            now, 0.0, 0.0, nontarget=nontarget, new_lesions=new_lesions, criterion=criterion
        )
        assert got == expected


@pytest.mark.parametrize("nontarget", ["non-CR", "pd", "", "SD", None])
def test_unknown_nontarget_status_is_an_error(nontarget):
    with pytest.raises(ValueError, match="nontarget"):
        visit_response(20.0, 40.0, 40.0, nontarget=nontarget)


# == Target thresholds (RECIST 1.1 section 4.3.1; mRECIST) ======================================

# (now, baseline, nadir, criterion, expected); "both" = the same under RECIST 1.1 and mRECIST.
THRESHOLDS = [
    # PR: "at least a 30% decrease ... taking as reference the baseline sum".
    pytest.param(70.0, 100.0, 100.0, "both", "PR", id="exactly-30pct-PR"),
    pytest.param(70.01, 100.0, 100.0, "both", "SD", id="29.99pct-SD"),
    # PD: "at least a 20% increase ... taking as reference the smallest sum on study" and (RECIST
    # 1.1 only) "an absolute increase of at least 5 mm".
    pytest.param(30.0, 30.0, 25.0, "both", "PD", id="20pct-and-5mm-PD"),
    pytest.param(48.0, 60.0, 40.0, "both", "PD", id="20pct-and-8mm-PD"),
    pytest.param(29.4, 30.0, 24.5, "recist1.1", "SD", id="20pct-but-4.9mm-SD-recist"),
    # mRECIST: no 5 mm rule; 4.9 mm is 20% of max(24.5, 10) = 24.5 mm: PD.
    pytest.param(29.4, 30.0, 24.5, "mrecist", "PD", id="20pct-4.9mm-PD-mrecist"),
    # +20% of an 8 mm nadir is 1.6 mm: not PD by RECIST 1.1 (< 5 mm) nor by mRECIST (< 20% of
    # the 10 mm floor = 2 mm); 9.6 mm is 68% below the 30 mm baseline: PR.
    pytest.param(9.6, 30.0, 8.0, "both", "PR", id="20pct-1.6mm-not-PD"),
    # +2 mm over an 8 mm nadir (+25%): 20% of the floor, PD by mRECIST; < 5 mm, PR by RECIST 1.1.
    pytest.param(10.0, 30.0, 8.0, "mrecist", "PD", id="2mm-over-8mm-PD-mrecist"),
    pytest.param(10.0, 30.0, 8.0, "recist1.1", "PR", id="2mm-over-8mm-PR-recist"),
    # PD against the nadir, PR against the baseline: baseline 100, nadir 50.
    pytest.param(62.0, 100.0, 50.0, "both", "PD", id="nadir50-now62-PD"),  # +12 mm, +24%
    pytest.param(60.0, 100.0, 50.0, "both", "PD", id="nadir50-now60-PD"),  # +10 mm, exactly +20%
    pytest.param(59.0, 100.0, 50.0, "both", "PR", id="nadir50-now59-PR"),  # +9 mm, +18%; <= 70
    # Baseline 100, nadir 65: 69 is PR (<= 70; +6%); 75 is SD (-25% from the baseline, +15%
    # over the nadir): PR is not judged against the nadir.
    pytest.param(69.0, 100.0, 65.0, "both", "PR", id="nadir65-now69-PR"),
    pytest.param(75.0, 100.0, 65.0, "both", "SD", id="nadir65-now75-SD"),
    # The nadir includes the baseline: never below 50 mm, now 60 mm is +20%, +10 mm: PD.
    pytest.param(60.0, 50.0, 50.0, "both", "PD", id="nadir-is-baseline-PD"),
    pytest.param(59.9, 50.0, 50.0, "both", "SD", id="nadir-is-baseline-SD"),
    # No change at all.
    pytest.param(40.0, 40.0, 40.0, "both", "SD", id="unchanged-SD"),
]


@pytest.mark.parametrize(("now", "baseline", "nadir", "criterion", "expected"), THRESHOLDS)
def test_target_thresholds(now, baseline, nadir, criterion, expected):
    for c in ("recist1.1", "mrecist") if criterion == "both" else (criterion,):
        assert target_response(now, baseline, nadir, c) == expected, c
        # Overall response equals the target response without non-targets or new lesions.
        assert visit_response(now, baseline, nadir, criterion=c) == expected, c


# == Lymph nodes (RECIST 1.1 sections 3.1.1 and 4.3.1): CR through ``resolved`` ================
#
# Nodal targets are measured by the short axis and stay in the sum when they shrink below
# 10 mm; "the sum may not be zero even if complete response criteria are met". Baseline: a 30 mm
# liver lesion and nodes of 20 and 16 mm short axis (sum 66 mm).


@pytest.mark.parametrize("criterion", ["recist1.1", "mrecist"])
def test_nodes_below_10_mm_make_a_cr_although_the_sum_is_not_zero(criterion):
    # The liver lesion is gone and both nodes are 8 mm: sum 16 mm, every target resolved: CR.
    assert target_response(16.0, 66.0, 66.0, criterion, resolved=True) == "CR"
    assert visit_response(16.0, 66.0, 66.0, criterion=criterion, resolved=True) == "CR"
    assert (
        visit_response(16.0, 66.0, 66.0, nontarget="CR", criterion=criterion, resolved=True) == "CR"
    )
    # Table 1 rows 2 and 3 with such a CR: non-target disease present or not evaluated -> PR.
    for nontarget in ("non-CR/non-PD", "NE"):
        got = visit_response(
            16.0, 66.0, 66.0, nontarget=nontarget, criterion=criterion, resolved=True
        )
        assert got == "PR"


@pytest.mark.parametrize("criterion", ["recist1.1", "mrecist"])
@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (16.0, "PR"),  # 11 mm + 5 mm nodes: one node still pathological (>= 10 mm)
        (3.0, "PR"),  # a 3 mm remnant of the liver lesion: not gone
        (0.0, "PR"),  # resolved=False overrides even a zero sum
        (50.0, "SD"),  # -24%
    ],
)
def test_not_resolved_is_never_cr(now, expected, criterion):
    assert target_response(now, 66.0, 66.0, criterion, resolved=False) == expected
    assert visit_response(now, 66.0, 66.0, nontarget="CR", criterion=criterion, resolved=False) == (
        expected
    )


@pytest.mark.parametrize("criterion", ["recist1.1", "mrecist"])
def test_resolved_defaults_to_a_zero_sum(criterion):
    # Without ``resolved`` the CR needs a sum of 0 (no nodal targets).
    assert target_response(0.0, 66.0, 66.0, criterion) == "CR"
    assert target_response(16.0, 66.0, 66.0, criterion) == "PR"
    assert target_response(0.0, 66.0, 66.0, criterion, resolved=None) == "CR"


@pytest.mark.parametrize("criterion", ["recist1.1", "mrecist"])
def test_resolved_does_not_hide_an_unassessed_target(criterion):
    # A target not assessed is NE whatever the flag says.
    assert target_response(NAN, 66.0, 66.0, criterion, resolved=True) == "NE"
    assert visit_response(NAN, 66.0, 66.0, nontarget="CR", criterion=criterion, resolved=True) == (
        "NE"
    )


# == mRECIST: the 20% rise measured against max(nadir, 10 mm) ===================================

# (now, baseline, nadir, expected) under mRECIST.
MRECIST_FLOOR = [
    # Nadir 2 mm (mostly necrotic): 3 mm is +1 mm, +50% of the nadir but 10% of the floor: not
    # PD (3 mm is 92.5% below the 40 mm baseline: PR).
    pytest.param(3.0, 40.0, 2.0, "PR", id="nadir2-now3-not-PD"),
    pytest.param(3.9, 40.0, 2.0, "PR", id="nadir2-now3.9-not-PD"),
    pytest.param(4.0, 40.0, 2.0, "PD", id="nadir2-now4-PD"),  # +2 mm: 20% of the floor
    pytest.param(4.5, 40.0, 2.0, "PD", id="nadir2-now4.5-PD"),
    # Nadir 0 (no viable tumour): a viable rim of 1.9 mm is not PD, 2 mm is.
    pytest.param(1.9, 40.0, 0.0, "PR", id="nadir0-now1.9-not-PD"),
    pytest.param(2.0, 40.0, 0.0, "PD", id="nadir0-now2-PD"),
    # At and above the floor the nadir itself is the reference: 20%, with no 5 mm rule.
    pytest.param(12.0, 40.0, 10.0, "PD", id="nadir10-now12-PD"),
    pytest.param(11.9, 40.0, 10.0, "PR", id="nadir10-now11.9-not-PD"),
    pytest.param(36.0, 40.0, 30.0, "PD", id="nadir30-now36-PD"),  # +6 mm = 20%
    pytest.param(35.9, 40.0, 30.0, "SD", id="nadir30-now35.9-SD"),  # +19.7%; > 28 mm
    pytest.param(14.4, 40.0, 12.0, "PD", id="nadir12-now14.4-PD"),  # +2.4 mm = 20%, < 5 mm
]


@pytest.mark.parametrize(("now", "baseline", "nadir", "expected"), MRECIST_FLOOR)
def test_mrecist_nadir_floor(now, baseline, nadir, expected):
    assert target_response(now, baseline, nadir, "mrecist") == expected
    assert visit_response(now, baseline, nadir, criterion="mrecist") == expected


def test_the_mrecist_floor_does_not_touch_recist():
    # RECIST 1.1 keeps its own rule: 20% of the nadir and 5 mm.
    assert target_response(4.5, 40.0, 2.0, "recist1.1") == "PR"  # +2.5 mm
    assert target_response(7.0, 40.0, 2.0, "recist1.1") == "PD"  # +5 mm, +250%
    assert target_response(36.0, 40.0, 30.0, "recist1.1") == "PD"  # +6 mm, +20%
    assert target_response(35.9, 40.0, 30.0, "recist1.1") == "SD"


# == Best overall response (RECIST 1.1 section 4.4, Table 3) ====================================

# (days, responses, keyword arguments, expected)
BEST_OVERALL = [
    # Section 4.4.1: "a patient who has SD at first assessment, PD at second and does not meet
    # minimum duration for SD, will have a best response of PD".
    pytest.param([35, 70], ["SD", "PD"], {}, "PD", id="early-SD-then-PD"),
    pytest.param([41.9, 84], ["SD", "PD"], {}, "PD", id="SD-at-41.9d-then-PD"),
    pytest.param([42, 84], ["SD", "PD"], {}, "SD", id="SD-at-42d-then-PD"),
    pytest.param([56, 84], ["SD", "PD"], {}, "SD", id="SD-at-56d-then-PD"),
    pytest.param([20, 50, 84], ["SD", "SD", "PD"], {}, "SD", id="SD-again-after-42d"),
    # Section 4.4.1: "The same patient lost to follow-up after the first SD assessment would be
    # considered inevaluable."
    pytest.param([35], ["SD"], {}, "NE", id="early-SD-then-nothing"),
    pytest.param([35, 70], ["SD", "NE"], {}, "NE", id="early-SD-then-NE"),
    pytest.param([35, 70, 105], ["SD", "NE", "PD"], {}, "PD", id="early-SD-NE-then-PD"),
    pytest.param([], [], {}, "NE", id="no-visits"),
    pytest.param([56, 112], ["NE", "NE"], {}, "NE", id="only-NE"),
    # Without confirmation (randomised trials, section 4.4.2) the best visit response counts.
    pytest.param([28, 56], ["PR", "PD"], {}, "PR", id="unconfirmed-PR-then-PD"),
    pytest.param([28], ["PR"], {}, "PR", id="single-early-PR"),
    pytest.param([28], ["CR"], {}, "CR", id="single-early-CR"),
    pytest.param([56], ["PD"], {}, "PD", id="PD-at-first-visit"),
    pytest.param([28, 56, 84], ["SD", "PR", "CR"], {}, "CR", id="improving"),
    pytest.param([56, 112, 168], ["PR", "SD", "PD"], {}, "PR", id="PR-SD-PD"),
    # "from the start of the treatment until disease progression": visits after PD ignored.
    pytest.param([56, 84, 112], ["SD", "PD", "CR"], {}, "SD", id="CR-after-PD-ignored"),
    pytest.param([28, 56, 84], ["SD", "PD", "CR"], {}, "PD", id="early-SD-PD-CR-is-PD"),
    pytest.param([28, 56], ["PD", "PR"], {}, "PD", id="PR-after-PD-ignored"),
    # None is a visit not evaluated (NE).
    pytest.param([56, 84], [None, "SD"], {}, "SD", id="None-then-SD"),
    pytest.param([28, 56], ["SD", None], {}, "NE", id="early-SD-then-None"),
    pytest.param([56], [None], {}, "NE", id="only-None"),
    # The minimum durations are parameters.
    pytest.param([35, 70], ["SD", "PD"], {"sd_min_days": 35}, "SD", id="sd_min_days-35"),
    pytest.param([42, 84], ["SD", "PD"], {"sd_min_days": 56}, "PD", id="sd_min_days-56"),
    # -- confirm=True: Table 3 ("Best overall response when confirmation of CR and PR required"),
    # first time point / subsequent time point -> best overall response.
    # Table 3, row 1: CR / CR -> CR.
    pytest.param([56, 84], ["CR", "CR"], {"confirm": True}, "CR", id="T3-CR-CR"),
    # Table 3, row 2: CR / PR -> "SD, PD or PR"; footnote (a): when the first CR was doubtful
    # the CR becomes a PR and the best response is PR (this implementation's reading).
    pytest.param([56, 84], ["CR", "PR"], {"confirm": True}, "PR", id="T3-CR-PR"),
    # ... but a PR read sooner than the confirmation interval after the CR cannot confirm it:
    # the disease seen again after the CR makes it PD when the SD minimum is not met (footnote
    # a), as CR then SD does (both used to differ: CR-PR gave NE).
    pytest.param([28, 35], ["CR", "PR"], {"confirm": True}, "PD", id="T3-CR-early-PR"),
    pytest.param([28, 35], ["CR", "SD"], {"confirm": True}, "PD", id="T3-CR-early-SD"),
    # Table 3, row 3: CR / SD -> SD provided the minimum for SD is met.
    pytest.param([56, 84], ["CR", "SD"], {"confirm": True}, "SD", id="T3-CR-SD"),
    # Table 3, row 4: CR / PD -> SD provided the minimum for SD is met, otherwise PD.
    pytest.param([56, 84], ["CR", "PD"], {"confirm": True}, "SD", id="T3-CR-PD-late"),
    pytest.param([28, 56], ["CR", "PD"], {"confirm": True}, "PD", id="T3-CR-PD-early"),
    # Table 3, row 5: CR / NE -> SD provided the minimum for SD is met, otherwise NE.
    pytest.param([56, 84], ["CR", "NE"], {"confirm": True}, "SD", id="T3-CR-NE-late"),
    pytest.param([28, 56], ["CR", "NE"], {"confirm": True}, "NE", id="T3-CR-NE-early"),
    # Table 3, row 6: PR / CR -> PR.
    pytest.param([56, 84], ["PR", "CR"], {"confirm": True}, "PR", id="T3-PR-CR"),
    # Table 3, row 7: PR / PR -> PR (the confirming scan at least 4 weeks later).
    pytest.param([56, 84], ["PR", "PR"], {"confirm": True}, "PR", id="T3-PR-PR-28d"),
    pytest.param([56, 83], ["PR", "PR"], {"confirm": True}, "SD", id="T3-PR-PR-27d"),
    # Table 3, row 8: PR / SD -> SD. The SD minimum of section 4.4.1 is applied too: a PR at
    # 28 days and SD at 35 days leave nothing at or after 42 days -> NE.
    pytest.param([56, 84], ["PR", "SD"], {"confirm": True}, "SD", id="T3-PR-SD"),
    pytest.param([28, 35], ["PR", "SD"], {"confirm": True}, "NE", id="T3-PR-SD-too-early"),
    # Table 3, row 9: PR / PD -> SD provided the minimum for SD is met, otherwise PD.
    pytest.param([42, 84], ["PR", "PD"], {"confirm": True}, "SD", id="T3-PR-PD-late"),
    pytest.param([35, 84], ["PR", "PD"], {"confirm": True}, "PD", id="T3-PR-PD-early"),
    # Table 3, row 10: PR / NE -> SD provided the minimum for SD is met, otherwise NE.
    pytest.param([56, 84], ["PR", "NE"], {"confirm": True}, "SD", id="T3-PR-NE-late"),
    pytest.param([28, 56], ["PR", "NE"], {"confirm": True}, "NE", id="T3-PR-NE-early"),
    # Table 3, row 11: NE / NE -> NE.
    pytest.param([56, 84], ["NE", "NE"], {"confirm": True}, "NE", id="T3-NE-NE"),
    # Confirmation details: a CR is confirmed only by a CR (CR, CR 14 days later: SD, since the
    # CR at 56 days meets the SD minimum); a PR can be confirmed across a visit not evaluated;
    # a PD never confirms, and a PR after the PD is ignored.
    pytest.param([56, 70], ["CR", "CR"], {"confirm": True}, "SD", id="CR-CR-14d"),
    pytest.param([56, 70, 112], ["PR", "NE", "PR"], {"confirm": True}, "PR", id="PR-NE-PR"),
    pytest.param([56, 84, 112], ["PR", "PD", "PR"], {"confirm": True}, "SD", id="PR-PD-PR"),
    pytest.param([56, 84, 112], ["CR", "PR", "CR"], {"confirm": True}, "CR", id="CR-PR-CR"),
    pytest.param(
        [56, 84], ["PR", "PR"], {"confirm": True, "confirm_min_days": 56}, "SD", id="confirm-56d"
    ),
    # Without confirm the same sequences keep their unconfirmed response.
    pytest.param([56, 70], ["CR", "CR"], {}, "CR", id="CR-CR-14d-unconfirmed"),
    pytest.param([35, 84], ["PR", "PD"], {}, "PR", id="PR-PD-unconfirmed"),
]


@pytest.mark.parametrize(("days", "responses", "kwargs", "expected"), BEST_OVERALL)
def test_best_overall_response(days, responses, kwargs, expected):
    assert best_overall_response(days, responses, **kwargs) == expected
    # Sequences of any kind (tuples, numpy-like floats) are read the same.
    assert best_overall_response(tuple(map(float, days)), tuple(responses), **kwargs) == expected


@pytest.mark.parametrize(
    ("days", "responses"),
    [
        ([28, 56], ["SD"]),  # length mismatch
        ([28], ["SD", "PD"]),
        ([], ["SD"]),
        ([28], ["non-CR/non-PD"]),  # a non-target status, not a visit response
        ([28], ["pr"]),
        ([28], [""]),
        ([28, 56], ["SD", "iCPD"]),
    ],
)
def test_best_overall_response_rejects_bad_input(days, responses):
    with pytest.raises(ValueError):
        best_overall_response(days, responses)


def test_values_after_the_first_pd_are_not_read():
    # Visits after the first PD are ignored, their values included (not validated).
    assert best_overall_response([28, 56], ["PD", "bogus"]) == "PD"


def test_table_3_cr_then_early_sd_is_pd():
    # Eisenhauer et al., Eur J Cancer 2009;45:228, Table 3, row 3: CR / SD -> "SD provided
    # minimum criteria for SD duration met, otherwise, PD" (footnote (a): disease seen after a
    # true CR has reappeared, i.e. progressed).
    assert best_overall_response([28, 35], ["CR", "SD"], confirm=True) == "PD"


# -- best overall response: properties ----------------------------------------------------------

_VISIT = st.sampled_from(["CR", "PR", "SD", "PD", "NE", None])
_RANK = {"CR": 0, "PR": 1, "SD": 2, "PD": 3, "NE": 4}  # best first; NE is no response at all


@st.composite
def _visits(draw, max_visits=8):
    """Visits in time order: days strictly increasing from a first scan at 7-120 days."""
    n = draw(st.integers(0, max_visits))
    gaps = draw(st.lists(st.integers(1, 70), min_size=n, max_size=n))
    days, day = [], draw(st.integers(6, 119))
    for g in gaps:
        day += g
        days.append(float(day))
    return days, draw(st.lists(_VISIT, min_size=n, max_size=n))


def _until_pd(responses):
    out = []
    for r in responses:
        out.append("NE" if r is None else r)
        if r == "PD":
            break
    return out


_BOR_OPTIONS = st.fixed_dictionaries(
    {
        "confirm": st.booleans(),
        "sd_min_days": st.sampled_from([0.0, 42.0, 56.0]),
        "confirm_min_days": st.sampled_from([28.0, 35.0]),
    }
)


@settings(max_examples=300)  # cheap
@given(_visits(), _BOR_OPTIONS)
def test_best_overall_response_is_never_better_than_the_best_visit(visits, options):
    days, responses = visits
    best = best_overall_response(days, responses, **options)
    assert best in RESPONSES
    seen = _until_pd(responses)  # visits that count: up to and including the first PD
    best_visit = min(seen, key=_RANK.__getitem__, default="NE")
    assert _RANK[best] >= _RANK[best_visit]
    if best == "PD":
        assert "PD" in seen
    if not options["confirm"] and best_visit in ("CR", "PR"):
        # Without confirmation a CR or PR seen before progression is the answer.
        assert best == best_visit


@settings(max_examples=300)
@given(_visits(), _visits(), _BOR_OPTIONS)
def test_visits_after_a_pd_never_change_the_best_overall_response(before, after, options):
    days, responses = before
    last = days[-1] if days else 0.0
    pd_day = last + 14.0
    days, responses = [*days, pd_day], [*responses, "PD"]
    base = best_overall_response(days, responses, **options)
    later_days = [pd_day + d for d in after[0]]
    assert best_overall_response(days + later_days, responses + after[1], **options) == base
    # And visits already after an earlier PD are ignored the same way.
    if "PD" in _until_pd(before[1]):
        assert base == best_overall_response(*before, **options)
