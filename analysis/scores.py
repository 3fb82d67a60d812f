"""Clinical scores computed from their definitions: ALBI and mALBI grade, Child-Pugh.

Units as in the clinic (DESIGN section 3): bilirubin in mg/dL and albumin in g/dL. ALBI uses
bilirubin in µmol/L (mg/dL x 17.1) and albumin in g/L (g/dL x 10):

    ALBI = 0.66 * log10(bilirubin µmol/L) - 0.085 * albumin g/L

Grades (Johnson et al., J Clin Oncol 2015): 1 if ALBI <= -2.60, 2 if <= -1.39, else 3. The
modified grade splits grade 2 at -2.27 into 2a and 2b (Hiraoka et al., Liver Cancer 2017).

Child-Pugh (Pugh et al., Br J Surg 1973): 1-3 points each for bilirubin (< 2, 2-3, > 3 mg/dL),
albumin (> 3.5, 2.8-3.5, < 2.8 g/dL), INR (< 1.7, 1.7-2.3, > 2.3), ascites (none, mild,
moderate-severe: 0/1/2) and encephalopathy (none, grade 1-2, grade 3-4: 0/1/2); class A 5-6,
B 7-9, C 10-15.

All functions take scalars or numpy arrays.
"""

from __future__ import annotations

import numpy as np

BILIRUBIN_MG_DL_TO_UMOL_L = 17.1
ALBUMIN_G_DL_TO_G_L = 10.0
ALBI_GRADE_1_MAX = -2.60
ALBI_GRADE_2_MAX = -1.39
MALBI_2A_MAX = -2.27


def albi(albumin_g_dl, bilirubin_mg_dl):
    """ALBI score from albumin (g/dL) and bilirubin (mg/dL)."""
    bili_umol = np.asarray(bilirubin_mg_dl, dtype=float) * BILIRUBIN_MG_DL_TO_UMOL_L
    alb_g_l = np.asarray(albumin_g_dl, dtype=float) * ALBUMIN_G_DL_TO_G_L
    return 0.66 * np.log10(bili_umol) - 0.085 * alb_g_l


def albi_grade(score):
    """ALBI grade 1, 2 or 3."""
    s = np.asarray(score, dtype=float)
    return np.where(s <= ALBI_GRADE_1_MAX, 1, np.where(s <= ALBI_GRADE_2_MAX, 2, 3))


def malbi_grade(score):
    """Modified ALBI grade: '1', '2a', '2b' or '3'."""
    s = np.asarray(score, dtype=float)
    return np.where(
        s <= ALBI_GRADE_1_MAX,
        "1",
        np.where(s <= MALBI_2A_MAX, "2a", np.where(s <= ALBI_GRADE_2_MAX, "2b", "3")),
    )


def child_pugh_score(albumin_g_dl, bilirubin_mg_dl, inr, ascites, encephalopathy):
    """Child-Pugh score 5-15. ``ascites`` and ``encephalopathy`` are 0 (none), 1, 2."""
    bili = np.asarray(bilirubin_mg_dl, dtype=float)
    alb = np.asarray(albumin_g_dl, dtype=float)
    inr = np.asarray(inr, dtype=float)
    points = (
        np.where(bili < 2.0, 1, np.where(bili <= 3.0, 2, 3))
        + np.where(alb > 3.5, 1, np.where(alb >= 2.8, 2, 3))
        + np.where(inr < 1.7, 1, np.where(inr <= 2.3, 2, 3))
        + 1
        + np.asarray(ascites, dtype=int)
        + 1
        + np.asarray(encephalopathy, dtype=int)
    )
    return points


def child_pugh_class(score):
    """Child-Pugh class 'A' (5-6), 'B' (7-9) or 'C' (10-15)."""
    s = np.asarray(score)
    return np.where(s <= 6, "A", np.where(s <= 9, "B", "C"))
