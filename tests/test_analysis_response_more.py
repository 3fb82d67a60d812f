"""Response rates with exact (Clopper-Pearson) intervals, and time to response.

Clopper-Pearson (Clopper & Pearson, Biometrika 1934;26:404): for x of n at level 1 - alpha, the
limits are the alpha/2 quantile of Beta(x, n - x + 1) and the 1 - alpha/2 quantile of
Beta(x + 1, n - x), with 0 and 1 at x = 0 and x = n. They are checked against statsmodels
(``proportion_confint(method="beta")``, the same quantiles) and scipy
(``binomtest(...).proportion_ci(method="exact")``, which finds the limits by root-finding on the
binomial tails instead) to 1e-12, and at the edges against the closed forms
1 - (alpha/2)^(1/n) (upper limit at x = 0) and (alpha/2)^(1/n) (lower limit at x = n).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hccsim.analysis import schema
from hccsim.analysis.response import (
    Rate,
    best_responses,
    clopper_pearson,
    response_rates,
    time_to_response,
)
from tests.cohort_builders import Scan, cohort, patient, to_arrow

# -- Clopper-Pearson -------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.05, 0.10, 0.01, 0.2])
def test_clopper_pearson_matches_statsmodels_and_scipy(alpha):
    from scipy.stats import binomtest
    from statsmodels.stats.proportion import proportion_confint

    for n in (1, 2, 3, 5, 10, 17, 40, 100, 250):
        for x in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            low, high = clopper_pearson(x, n, alpha=alpha)
            sm_low, sm_high = proportion_confint(x, n, alpha=alpha, method="beta")
            assert low == pytest.approx(sm_low, abs=1e-12)
            assert high == pytest.approx(sm_high, abs=1e-12)
            ci = binomtest(x, n).proportion_ci(confidence_level=1 - alpha, method="exact")
            assert low == pytest.approx(ci.low, abs=1e-12)
            assert high == pytest.approx(ci.high, abs=1e-12)


@pytest.mark.parametrize("n", [1, 2, 10, 30, 1000])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_clopper_pearson_edges_have_closed_forms(n, alpha):
    # 0 of n: [0, 1 - (alpha/2)^(1/n)]; n of n: [(alpha/2)^(1/n), 1].
    low, high = clopper_pearson(0, n, alpha=alpha)
    assert low == 0.0
    assert high == pytest.approx(1.0 - (alpha / 2) ** (1.0 / n), rel=1e-12)
    low, high = clopper_pearson(n, n, alpha=alpha)
    assert low == pytest.approx((alpha / 2) ** (1.0 / n), rel=1e-12)
    assert high == 1.0


def test_clopper_pearson_textbook_value():
    # 0 of 10 at 95%: upper limit 1 - 0.025^(1/10) = 0.30849710781876...; 1 of 1: [0.025, 1].
    assert clopper_pearson(0, 10)[1] == pytest.approx(0.3084971078187608, abs=1e-15)
    assert clopper_pearson(1, 1) == (pytest.approx(0.025, abs=1e-15), 1.0)


def test_clopper_pearson_bad_arguments():
    assert all(math.isnan(v) for v in clopper_pearson(0, 0))
    for count, n in ((-1, 5), (6, 5), (1.5, 5), (True, 5), ("1", 5)):
        with pytest.raises(ValueError, match="count"):
            clopper_pearson(count, n)
    for n in (-1, 2.5, None):
        with pytest.raises(ValueError, match="n must be"):
            clopper_pearson(0, n)
    for alpha in (0.0, 1.0, -0.1, math.nan, "x"):
        with pytest.raises(ValueError, match="alpha"):
            clopper_pearson(1, 5, alpha=alpha)


# -- ORR and DCR ------------------------------------------------------------------------------------


def test_response_rates_counts_proportions_and_intervals():
    from statsmodels.stats.proportion import proportion_confint

    # ORR: CR + PR = 2 of 6; DCR: CR + PR + SD = 4 of 6 (NE stays in the denominator).
    bor = np.array(["CR", "PR", "SD", "SD", "PD", "NE"], dtype=object)
    rates = response_rates(bor)
    assert set(rates) == {"orr", "dcr"}
    orr, dcr = rates["orr"], rates["dcr"]
    assert isinstance(orr, Rate)
    assert (orr.count, orr.n, dcr.count, dcr.n) == (2, 6, 4, 6)
    assert orr.proportion == pytest.approx(1 / 3, abs=1e-15)
    assert dcr.proportion == pytest.approx(2 / 3, abs=1e-15)
    for r in (orr, dcr):
        low, high = proportion_confint(r.count, r.n, alpha=0.05, method="beta")
        assert (r.ci_low, r.ci_high) == (
            pytest.approx(low, abs=1e-12),
            pytest.approx(high, abs=1e-12),
        )
        assert r.alpha == 0.05
    # A 90% interval is narrower and inside the 95% one.
    r90 = response_rates(bor, alpha=0.10)["orr"]
    assert orr.ci_low < r90.ci_low < r90.ci_high < orr.ci_high


def test_response_rates_edges():
    # Nobody responds (0 of 8): ORR 0 with [0, 1 - 0.025^(1/8)]; everyone has control (8 of 8).
    rates = response_rates(["SD"] * 5 + ["PD"] * 3)
    assert (rates["orr"].count, rates["orr"].proportion, rates["orr"].ci_low) == (0, 0.0, 0.0)
    assert rates["orr"].ci_high == pytest.approx(1 - 0.025 ** (1 / 8), rel=1e-12)
    rates = response_rates(["CR", "PR", "SD", "SD", "CR", "PR", "SD", "SD"])
    assert (rates["dcr"].count, rates["dcr"].proportion, rates["dcr"].ci_high) == (8, 1.0, 1.0)
    assert rates["dcr"].ci_low == pytest.approx(0.025 ** (1 / 8), rel=1e-12)
    # No patients: NaN proportion and limits.
    empty = response_rates([])
    assert empty["orr"].n == 0
    assert all(math.isnan(v) for v in (empty["orr"].proportion, empty["dcr"].ci_low))


def test_response_rates_from_best_responses():
    tables = cohort(
        patient(0, last_fu=200.0, scans=[(56, "PR"), (112, "PR")]),  # PR
        patient(1, last_fu=200.0, scans=[(56, "SD")]),  # SD
        patient(2, last_fu=200.0, scans=[(56, "PD")]),  # PD
        patient(3, last_fu=20.0),  # NE
    )
    rates = response_rates(best_responses(tables))
    assert (rates["orr"].count, rates["dcr"].count, rates["orr"].n) == (1, 2, 4)


def test_response_rates_bad_arguments():
    with pytest.raises(ValueError, match="bor holds 'XX'"):
        response_rates(["CR", "XX"])
    with pytest.raises(ValueError, match="bor holds None"):
        response_rates(["CR", None])
    with pytest.raises(ValueError, match="bor must be a 1-d"):
        response_rates([["CR"], ["PR"]])
    with pytest.raises(ValueError, match="alpha"):
        response_rates(["CR"], alpha=1.5)


# -- time to response -------------------------------------------------------------------------------


def test_time_to_response():
    tables = cohort(
        patient(0, last_fu=300.0, scans=[(56, "SD"), (112, "PR"), (168, "CR")]),  # 112
        patient(1, last_fu=300.0, scans=[(56, "PR"), (112, "SD")]),  # 56
        patient(2, last_fu=300.0, scans=[(56, "SD"), (112, "SD")]),  # not a responder
        patient(3, last_fu=30.0),  # no scans
        patient(4, last_fu=300.0, scans=[(56, "SD", "PR"), (112, "SD", "PR")]),  # mRECIST only
        # 5: line 1 stopped at 100 (SD at 56), line 2 from 120 with its own PR at 176: no
        # response on the index line.
        patient(
            5,
            last_fu=300.0,
            scans=[(56, "SD"), Scan(176, "PR", line=2)],
            lines=[(1, 0.0, 100.0, "toxicity"), (2, 120.0, 300.0)],
        ),
        # 6: index line 2; a PR on line 1 (before day 0) does not count; PR on day 56 does.
        patient(
            6,
            last_fu=300.0,
            index_line=2,
            scans=[Scan(-150.0, "PR", line=1), (56, "PR")],
            lines=[(1, -200.0, -30.0, "progression"), (2, 0.0, 300.0)],
        ),
        patient(7, last_fu=300.0, scans=[(56, "PD"), (112, "PR")]),  # PR after PD: not counted
    )
    schema.validate(tables)
    got = time_to_response(tables)
    np.testing.assert_array_equal(got, [112.0, 56.0, np.nan, np.nan, np.nan, np.nan, 56.0, np.nan])
    np.testing.assert_array_equal(
        time_to_response(tables, "mrecist"),
        [112.0, 56.0, np.nan, np.nan, 56.0, np.nan, 56.0, np.nan],
    )
    # With confirmation, patient 1's PR (followed by SD only) is not confirmed; patient 0's
    # PR at 112 is confirmed by the CR at 168 and dated from 112.
    np.testing.assert_array_equal(
        time_to_response(tables, confirm=True),
        [112.0, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
    )
    # The same through pandas and arrow tables.
    import pandas as pd

    for t in ({k: pd.DataFrame(v) for k, v in tables.items()}, to_arrow(tables)):
        np.testing.assert_array_equal(time_to_response(t), got)
    with pytest.raises(ValueError, match=r"criterion must be 'recist1\.1' or 'mrecist', not 'who'"):
        time_to_response(tables, "who")


def test_time_to_response_empty_cohort():
    assert time_to_response(cohort()).shape == (0,)
