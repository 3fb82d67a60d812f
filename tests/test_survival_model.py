"""The death hazard's quadrature and next-reaction inversion against closed forms, and the
simulated survival curve against theory (DKW band).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hccsim.analysis.survival import kaplan_meier
from hccsim.simulator import parameters
from hccsim.simulator.disease import tumour
from hccsim.simulator.disease.survival import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    ECOG,
    N_PROCESSES,
    NEW_LESION,
    VASCULAR_INVASION,
    DeathHazard,
    Hazards,
)
from hccsim.simulator.scenario import loads
from hccsim.simulator.studies.run import simulate_replicates


def _one_lesion(d0_mm: float, g: float) -> tumour.Lesions:
    return tumour.Lesions.simple([d0_mm], g)


def _hazard(lz, **over) -> tuple[DeathHazard, parameters.DeathParams]:
    p = parameters.resolve({"death": over}).death
    h = DeathHazard(p, lz, age=70.0, male=True, ecog=0, mvi=False, ehm=False, albi=-2.3, afp=100.0)
    return h, p


def _closed_form(p, d0, g, a, b):
    """Integral of background + r0 exp(x'b) (V/Vref)^beta + rL (V/VL)^kappa for one growing
    sphere.

    V(t) = (pi/6000) d0^3 exp(3 g t), so each burden term is c exp(3 g k t) for its exponent k,
    and the Gompertz background is h70 exp(slope (t / 365.25)) per day at age 70.
    """
    v0 = math.pi / 6000.0 * d0**3

    def term(rate_per_month, v_ref, k):
        c = rate_per_month / DAYS_PER_MONTH * (v0 / v_ref) ** k
        r = 3.0 * g * k
        return c * (b - a) if r == 0 else c / r * (math.exp(r * b) - math.exp(r * a))

    disease = term(p.base_rate_per_month, p.reference_burden_cm3, p.burden_exponent) + term(
        p.lethal_burden_rate_per_month, p.lethal_burden_cm3, p.lethal_burden_exponent
    )
    h70 = math.exp(p.background_gompertz_log_rate_at_70) / DAYS_PER_YEAR
    s = p.background_gompertz_slope_per_year / DAYS_PER_YEAR
    return disease + h70 / s * (math.exp(s * b) - math.exp(s * a))


@pytest.mark.parametrize("g", [0.0, 0.002, 0.008, 0.02])
@pytest.mark.parametrize("interval", [(0.0, 42.0), (13.0, 400.0), (100.0, 100.5)])
def test_quadrature_error_against_closed_form(g, interval):
    """Stated error: relative error about 5e-7 (c h)^6 per piece, with pieces kept below
    0.5 / c (c = 3 g kappa, the steepest term): below 1e-8; we require 1e-8. A 300-mm lesion
    makes the lethal-burden term matter."""
    a, b = interval
    for d0 in (40.0, 300.0):
        h, p = _hazard(_one_lesion(d0, g), burden_exponent=0.5)
        used, death = h.integrate(a, b, budget=math.inf, step=14.0)
        assert death is None
        assert used == pytest.approx(_closed_form(p, d0, g, a, b), rel=1e-8)


@pytest.mark.parametrize("budget", [1e-4, 0.05, 0.7, 2.5])
def test_inversion_finds_the_time_where_the_budget_is_spent(budget):
    g = 0.006
    h, p = _hazard(_one_lesion(60.0, g), burden_exponent=0.6, base_rate_per_month=0.3)
    used, death = h.integrate(0.0, 5000.0, budget=budget, step=14.0)
    assert death is not None and used == budget
    # The closed-form cumulative hazard at the returned time equals the budget.
    assert _closed_form(p, 60.0, g, 0.0, death) == pytest.approx(budget, rel=1e-7)


def test_budget_carries_over_between_intervals():
    """Next-reaction method: cutting [0, T] at decisions leaves the death time unchanged."""
    g = 0.005
    h, _ = _hazard(_one_lesion(50.0, g), base_rate_per_month=0.2)
    _, once = h.integrate(0.0, 3000.0, budget=1.3, step=14.0)
    budget, death = 1.3, None
    for a, b in zip(np.arange(0, 3000, 37.0), np.arange(37.0, 3037, 37.0), strict=True):
        used, death = h.integrate(float(a), float(b), budget=budget, step=14.0)
        if death is not None:
            break
        budget -= used
    assert death == pytest.approx(once, abs=1e-6)


CONSTANT_HAZARD = """
name: constant-hazard
description: Constant death hazard, no treatment; survival must be exponential.
seed: 20240601
population: {preset: anchor_ramucirumab}
cohort: {size: 20000, batch_size: 2500}
treatment: {sequence: [best_supportive_care]}
observation: {max_follow_up_months: 36}
parameters:
  death:
    base_rate_per_month: 0.05
    burden_exponent: 0.0
    log_hr_ecog: 0.0
    log_hr_mvi: 0.0
    log_hr_ehm: 0.0
    log_hr_albi: 0.0
    log_hr_log10_afp: 0.0
    log_hr_decompensated: 0.0
    background_gompertz_log_rate_at_70: -40.0
    lethal_burden_rate_per_month: 0.0
"""


@pytest.mark.slow
def test_constant_hazard_km_inside_dkw_band():
    """20,000 untreated patients with a constant hazard of 0.05 per month (background
    mortality switched off: e^-40 a year). Censoring only at the 36-month horizon, so the KM
    estimate on [0, 36) is the empirical survival function and the Dvoretzky-Kiefer-Wolfowitz
    inequality applies: P(sup |S_n - S| > eps) <= 2 exp(-2 n eps^2). With alpha = 1e-4,
    eps = sqrt(ln(2 / alpha) / (2 n)) = 0.0157. Fixed seed: the test cannot flake."""
    sc = loads(CONSTANT_HAZARD)
    ((_, tables),) = list(simulate_replicates(sc, sc.seed, [0]))
    t = tables["patients"]["last_follow_up_day"] / DAYS_PER_MONTH
    e = tables["patients"]["death"]
    km = kaplan_meier(t, e)
    n = len(t)
    eps = math.sqrt(math.log(2 / 1e-4) / (2 * n))
    theory = np.exp(-0.05 * km.times)
    # sup over a step function: compare at each jump and just before it.
    before = np.concatenate([[1.0], km.survival[:-1]])
    gap = max(np.max(np.abs(km.survival - theory)), np.max(np.abs(before - theory)))
    assert gap < eps, f"sup distance {gap:.4f} exceeds the DKW band {eps:.4f}"
    # The horizon censors everyone alive at 36 months.
    alive = ~e
    assert np.allclose(t[alive], 36.0)


@pytest.mark.parametrize("year", [2005.7, 2020.0, 2031.5])
def test_era_scales_the_disease_terms_only(year):
    """The calendar era multiplies both tumour terms by hr ** ((year - reference) / 10) and
    leaves background mortality alone: the integral equals the closed form with the disease
    part scaled (relative error 1e-8, as the quadrature test)."""
    d0, g, a, b = 80.0, 0.004, 0.0, 300.0
    p = parameters.resolve({"death": {"era_hazard_ratio_per_decade": 0.7}}).death
    h = DeathHazard(
        p, _one_lesion(d0, g), age=70.0, male=True, ecog=0, mvi=False, ehm=False,
        albi=-2.3, afp=100.0, enrolment_year=year,
    )  # fmt: skip
    used, _ = h.integrate(a, b, budget=math.inf, step=14.0)
    factor = 0.7 ** ((year - p.era_reference_year) / 10.0)
    background = _closed_form(
        dataclasses.replace(p, base_rate_per_month=0.0, lethal_burden_rate_per_month=0.0),
        d0, g, a, b,
    )  # fmt: skip
    disease = _closed_form(p, d0, g, a, b) - background
    assert used == pytest.approx(factor * disease + background, rel=1e-8)
    if year != p.era_reference_year:
        assert abs(factor - 1.0) > 0.05  # the check is not vacuous


class _FlatLabs:
    """Stand-in for ``labs.LabState`` with constant latent albumin and log bilirubin (the
    new-lesion intensity does not depend on them; the death and decompensation terms do)."""

    def latent(self, times, log_v, rows=slice(None)):
        n = len(times)
        return np.vstack([np.full(n, 3.8), np.full(n, 0.0)])


def _hazards(tumour_over: dict, seeding: float = 1.0, status_over: dict | None = None) -> Hazards:
    p = parameters.resolve({"tumour": tumour_over, "status": status_over or {}})
    lz = tumour.Lesions.simple([35.0, 20.0], 0.003)
    lz.set_segment(0.0, 0.0, 0.0, 1.0, 0.0)
    death = DeathHazard(
        p.death, lz, age=65.0, male=True, ecog=0, mvi=False, ehm=False, albi=-2.4, afp=50.0
    )
    b = {"ecog": 0, "mvi": False, "ehm": False, "ascites": 0, "encephalopathy": 0}
    return Hazards(death, p, _FlatLabs(), b, np.ones(N_PROCESSES), seeding)


@pytest.mark.parametrize("e", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("share_left", [0.0, 0.4, 1.0])
def test_the_escape_share_mixes_the_emergence_factor_linearly(monkeypatch, e, share_left):
    """Under a drug that leaves the share ``E`` of growth, the new-lesion intensity is the
    untreated one times ``e + (1 - e) E`` (``tumour.new_lesion_escape_share`` = ``e``): checked
    at intermediate ``E`` too, where other mixing rules would differ. Deterministic (no draws);
    relative tolerance 1e-12. The vascular-invasion intensity is not touched."""
    times = np.array([0.0, 10.0, 60.0])
    h = _hazards({"new_lesion_escape_share": e})
    off = h.rates(times)  # no regimen in force: emergence_factor is None
    monkeypatch.setattr(
        tumour.Lesions, "emergence_factor", lambda self, t: np.full(len(t), share_left)
    )
    on = h.rates(times)
    np.testing.assert_allclose(
        on[NEW_LESION], off[NEW_LESION] * (e + (1.0 - e) * share_left), rtol=1e-12
    )
    np.testing.assert_allclose(on[VASCULAR_INVASION], off[VASCULAR_INVASION], rtol=1e-12)
    assert np.all(off[NEW_LESION] > 0.0)


def test_the_new_lesion_propensity_scales_only_the_seeding_intensity():
    """A patient's propensity (``tumour.new_lesion_patient_sd_log`` draws it) multiplies the
    new-lesion intensity and nothing else. Deterministic; relative tolerance 1e-12."""
    times = np.array([0.0, 30.0, 200.0])
    one, more = _hazards({}).rates(times), _hazards({}, seeding=2.5).rates(times)
    np.testing.assert_allclose(more[NEW_LESION], 2.5 * one[NEW_LESION], rtol=1e-12)
    others = [k for k in range(N_PROCESSES) if k != NEW_LESION]
    np.testing.assert_allclose(more[others], one[others], rtol=1e-12)


@pytest.mark.parametrize("rate", [0.03, 0.15, 0.6])
def test_ecog_worsening_intensity_against_its_closed_form(rate):
    """One ECOG point is lost at ``rs (Vv / Vs)^bs exp(ks (ALBI - ALBI_ref))`` per month
    (docs/model.md), ``rs`` = ``status.worsening_rate_per_month``, the pace of clinical decline
    that the calibration fits. Two untreated spheres of 35 and 20 mm growing at 0.003/day, fully
    viable, with latent albumin 3.8 g/dL and bilirubin 1 mg/dL (ALBI = 0.66 log10(17.1) - 0.085
    x 38). Deterministic; relative tolerance 1e-9. Only the ECOG intensity moves with ``rs``."""
    times = np.array([0.0, 45.0, 180.0])
    h = _hazards({}, status_over={"worsening_rate_per_month": rate})
    ps = h.ps
    assert ps.worsening_rate_per_month == rate
    d = np.array([35.0, 20.0])[:, None] * np.exp(0.003 * times)[None, :]
    v_cm3 = math.pi / 6000.0 * (d**3).sum(axis=0)
    albi = 0.66 * math.log10(17.1) - 0.085 * 38.0
    expected = (
        rate
        / DAYS_PER_MONTH
        * (v_cm3 / ps.reference_burden_cm3) ** ps.burden_exponent
        * math.exp(ps.log_hr_per_albi * (albi - ps.albi_reference))
    )
    got = h.rates(times)
    np.testing.assert_allclose(got[ECOG], expected, rtol=1e-9)
    base = _hazards({}).rates(times)
    others = [k for k in range(N_PROCESSES) if k != ECOG]
    np.testing.assert_allclose(got[others], base[others], rtol=1e-12)


@pytest.mark.parametrize("escape", [0.0, 0.4])
@pytest.mark.parametrize("interval", [(0.0, 120.0), (30.0, 100.0), (60.0, 400.0)])
def test_new_lesion_seeding_is_integrated_exactly_across_the_emergence_kink(escape, interval):
    """Under a drug whose effect on micro-lesions wanes, the seeding intensity
    ``rn (Vv / Vn)^gamma (e + (1 - e) max(0, 1 - s0 exp(-lam t)))`` has a kink at
    ``ln(s0) / lam`` (here ``s0`` = 0.01 / 0.003 + 0.5 and ``lam`` = 0.02 a day: day 67.1).
    ``Hazards.advance`` integrates the two sides apart; what it spends of the new-lesion budget
    must match adaptive quadrature split at the kink (relative tolerance 1e-7, the Gauss-Legendre
    rule's error on smooth pieces being below 1e-8). Integrating across the kink in one go, as
    the engine did before, is checked to be off by more than that, so the test is not vacuous."""
    from scipy.integrate import quad

    def build():
        h = _hazards({"new_lesion_escape_share": escape})
        h.lesions.set_drug(0.01, 0.02, 0.5)
        h.lesions.set_segment(0.0, 1.0, 0.0, 1.0, 0.0)
        h.refresh()
        h.budgets = np.full(N_PROCESSES, math.inf)
        h.budgets[NEW_LESION] = 1e3  # no seed is placed: the budget only records what was used
        return h

    a, b = interval
    h = build()
    kink = h.lesions.emergence_kink()
    assert kink == pytest.approx(math.log(0.01 / 0.003 + 0.5) / 0.02, rel=1e-12)
    assert a < kink < b

    def rate(t):
        return float(h.rates(np.array([t]))[NEW_LESION, 0])

    reference = quad(rate, a, kink, epsabs=0, epsrel=1e-12)[0]
    reference += quad(rate, kink, b, epsabs=0, epsrel=1e-12)[0]
    j, t, seeds = h.advance(a, b, 14.0, lambda: 1e3)
    assert (j, t, seeds) == (-1, None, [])
    assert 1e3 - h.budgets[NEW_LESION] == pytest.approx(reference, rel=1e-7)
    unsplit = build()
    unsplit._advance(a, b, 14.0, lambda: 1e3)
    assert abs((1e3 - unsplit.budgets[NEW_LESION]) / reference - 1.0) > 1e-6
