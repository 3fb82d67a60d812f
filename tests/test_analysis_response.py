"""Per-visit response by RECIST 1.1 and mRECIST on hand cases and as properties.

Rules (module docstring of ``hccsim.analysis.response``): RECIST 1.1, Eisenhauer et al., Eur J
Cancer 2009;45:228, section 4.3.1 (targets: CR all gone; PR a fall of at least 30% from the
baseline sum; PD a rise of at least 20% over the nadir, baseline included, and of at least
5 mm) and Table 1 (overall response from targets, non-targets and new lesions) and Table 2
(non-target disease only); mRECIST, Lencioni & Llovet, Semin Liver Dis 2010;30:52 (viable
diameters, no 5 mm rule).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hccsim.analysis.response import NONTARGET, target_response, visit_response

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
    # 1.0 -> 1.2 mm is +20%: PD by mRECIST; in floats 1.2 - 1.0 = 0.19999999999999996.
    assert target_response(1.2, 1.5, 1.0, "mrecist") == "PD"
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
    candidates = [0, pr, pr + 1, pd - 1, pd, nadir10 + 49, nadir10 + 50]
    now10 = draw(st.one_of(st.sampled_from(candidates), st.integers(0, 20000)))
    return max(now10, 0), baseline10, nadir10


@settings(max_examples=400)  # cheap; enough draws to land on the thresholds
@given(_tenth_mm_sums(), _criterion)
def test_target_response_on_a_tenth_mm_grid_matches_integer_arithmetic(sums, criterion):
    # Sums read to 0.1 mm, as on a scanner; the rule evaluated exactly in tenths of a mm:
    # PD: rise > 0, 5 x rise >= nadir (20%), and (RECIST 1.1) rise >= 50 tenths; CR: 0;
    # PR: 10 x now <= 7 x baseline; otherwise SD.
    now10, baseline10, nadir10 = sums
    rise = now10 - nadir10
    if rise > 0 and 5 * rise >= nadir10 and (criterion == "mrecist" or rise >= 50):
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
