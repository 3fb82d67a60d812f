"""ALBI, mALBI and Child-Pugh against hand calculations from their published definitions.

ALBI (Johnson et al., J Clin Oncol 2015;33:550): 0.66 x log10(bilirubin, umol/L) - 0.085 x
albumin (g/L); grade 1 <= -2.60 < grade 2 <= -1.39 < grade 3. mALBI (Hiraoka et al., Liver
Cancer 2017;6:325) splits grade 2 at -2.27 (2a <= -2.27 < 2b). Conversions: bilirubin
1 mg/dL = 17.1 umol/L, albumin 1 g/dL = 10 g/L. Child-Pugh (Pugh et al., Br J Surg
1973;60:646): bilirubin < 2 / 2-3 / > 3 mg/dL, albumin > 3.5 / 2.8-3.5 / < 2.8 g/dL, INR < 1.7 /
1.7-2.3 / > 2.3, ascites and encephalopathy none / mild / severe, 1-3 points each; class A 5-6,
B 7-9, C 10-15.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hccsim.analysis.scores import (
    albi,
    albi_grade,
    child_pugh_class,
    child_pugh_score,
    malbi_grade,
)

# -- ALBI ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("albumin_g_dl", "bilirubin_mg_dl", "expected"),
    [
        # 3.5 g/dL = 35 g/L; 1.0 mg/dL = 17.1 umol/L: 0.66 x 1.23300 - 2.975 = -2.16122.
        (3.5, 1.0, 0.66 * math.log10(17.1) - 0.085 * 35),
        # 4.2 g/dL = 42 g/L; 0.6 mg/dL = 10.26 umol/L: 0.66 x 1.01115 - 3.57 = -2.90264.
        (4.2, 0.6, 0.66 * math.log10(10.26) - 0.085 * 42),
        # 2.5 g/dL = 25 g/L; 3.0 mg/dL = 51.3 umol/L: 0.66 x 1.71012 - 2.125 = -0.99633.
        (2.5, 3.0, 0.66 * math.log10(51.3) - 0.085 * 25),
    ],
)
def test_albi_by_hand(albumin_g_dl, bilirubin_mg_dl, expected):
    assert albi(albumin_g_dl, bilirubin_mg_dl) == pytest.approx(expected, abs=1e-12)


def test_albi_hand_values_rounded():
    # The same three by hand to 4 decimals (independent of the formula as typed above).
    np.testing.assert_allclose(
        albi([3.5, 4.2, 2.5], [1.0, 0.6, 3.0]), [-2.1612, -2.9026, -0.9963], atol=1e-4
    )


@pytest.mark.parametrize(
    ("score", "grade", "mgrade"),
    [
        (-3.5, 1, "1"),
        (-2.60, 1, "1"),  # cut point belongs to the lower grade
        (np.nextafter(-2.60, 0), 2, "2a"),
        (-2.27, 2, "2a"),  # mALBI cut point belongs to 2a
        (np.nextafter(-2.27, 0), 2, "2b"),
        (-1.39, 2, "2b"),
        (np.nextafter(-1.39, 0), 3, "3"),
        (0.0, 3, "3"),
    ],
)
def test_albi_and_malbi_grade_cut_points(score, grade, mgrade):
    assert albi_grade(score) == grade
    assert malbi_grade(score) == mgrade


def test_grades_are_vectorised():
    s = np.array([-2.9, -2.4, -2.0, -1.0])
    np.testing.assert_array_equal(albi_grade(s), [1, 2, 2, 3])
    np.testing.assert_array_equal(malbi_grade(s), ["1", "2a", "2b", "3"])


# -- Child-Pugh ------------------------------------------------------------------------------------

# Labs that each score 1 point: albumin 4.0 g/dL, bilirubin 1.0 mg/dL, INR 1.0.
_BEST = {"albumin_g_dl": 4.0, "bilirubin_mg_dl": 1.0, "inr": 1.0, "ascites": 0, "encephalopathy": 0}


@pytest.mark.parametrize(
    ("item", "value", "points"),
    [
        ("bilirubin_mg_dl", 1.99, 1),
        ("bilirubin_mg_dl", 2.0, 2),  # "2-3 mg/dL" includes 2
        ("bilirubin_mg_dl", 3.0, 2),  # ... and 3
        ("bilirubin_mg_dl", 3.01, 3),
        ("albumin_g_dl", 3.51, 1),
        ("albumin_g_dl", 3.5, 2),  # "2.8-3.5 g/dL" includes 3.5
        ("albumin_g_dl", 2.8, 2),  # ... and 2.8
        ("albumin_g_dl", 2.79, 3),
        ("inr", 1.69, 1),
        ("inr", 1.7, 2),  # "1.7-2.3" includes 1.7
        ("inr", 2.3, 2),  # ... and 2.3
        ("inr", 2.31, 3),
        ("ascites", 0, 1),
        ("ascites", 1, 2),
        ("ascites", 2, 3),
        ("encephalopathy", 0, 1),
        ("encephalopathy", 1, 2),
        ("encephalopathy", 2, 3),
    ],
)
def test_child_pugh_points_at_each_boundary(item, value, points):
    # The four other items score 1 point each, so the score is 4 + this item's points.
    assert child_pugh_score(**{**_BEST, item: value}) == 4 + points


def test_child_pugh_worst_case():
    # 3 points on each of the five items.
    assert child_pugh_score(2.0, 5.0, 3.0, 2, 2) == 15


@pytest.mark.parametrize(
    ("score", "cls"),
    [(5, "A"), (6, "A"), (7, "B"), (9, "B"), (10, "C"), (15, "C")],
)
def test_child_pugh_class_cut_points(score, cls):
    assert child_pugh_class(score) == cls


@given(
    albumin=st.floats(0.5, 7.0),
    bilirubin=st.floats(0.05, 50.0),
    inr=st.floats(0.5, 10.0),
    ascites=st.integers(0, 2),
    encephalopathy=st.integers(0, 2),
)
def test_child_pugh_score_is_between_5_and_15(albumin, bilirubin, inr, ascites, encephalopathy):
    score = int(child_pugh_score(albumin, bilirubin, inr, ascites, encephalopathy))
    assert 5 <= score <= 15
    # Points from the published table, item by item.
    expected = (
        (1 if bilirubin < 2 else 2 if bilirubin <= 3 else 3)
        + (1 if albumin > 3.5 else 2 if albumin >= 2.8 else 3)
        + (1 if inr < 1.7 else 2 if inr <= 2.3 else 3)
        + 1
        + ascites
        + 1
        + encephalopathy
    )
    assert score == expected
    assert child_pugh_class(score) == ("A" if score <= 6 else "B" if score <= 9 else "C")
