"""The growth-inhibition law against its closed form and an ODE solver (DESIGN section 3).

The law solves d log d / dt = g - DI(t) k exp(-lam (t - t0)), with DI piecewise constant (full
dose, a hold at DI = 0, a reduced dose). Integrating piece by piece gives the reference
closed form used here, written independently of ``tumour.py``:

    log d(T) = log d(0) + g T - k sum_j DI_j (exp(-lam (a_j - t0)) - exp(-lam (b_j - t0))) / lam
"""

from __future__ import annotations

import decimal
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from hccsim.simulator.disease import tumour


def _lesions(logd0, g, kill_z=None) -> tumour.Lesions:
    lz = tumour.Lesions.simple(np.exp(logd0), g)
    if kill_z is not None:
        lz.kill_z = np.asarray(kill_z, dtype=float)
    return lz


# A line from day 10: full dose to day 40, held to day 55, then 75% dose.
T0 = 10.0
SCHEDULE = [(0.0, T0, 0.0), (T0, 40.0, 1.0), (40.0, 55.0, 0.0), (55.0, 400.0, 0.75)]


def _reference(logd0, g, k, lam, t):
    """Closed form of the module docstring, summed over the schedule up to time t, in 50-digit
    decimal arithmetic (the textbook form cancels catastrophically for small lam in floats)."""
    D = decimal.Decimal
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        out = D(logd0) + D(g) * D(t)
        for a, b, di in SCHEDULE:
            if di == 0.0 or t <= a:
                continue
            b = min(b, t)
            if lam == 0.0:
                out -= D(k) * D(di) * (D(b) - D(a))
            else:
                lo, hi = (-D(lam) * (D(a) - D(T0))).exp(), (-D(lam) * (D(b) - D(T0))).exp()
                out -= D(k) * D(di) * (lo - hi) / D(lam)
        return float(out)


def _simulate(lz, lam, times):
    """Walk the schedule with set_segment, reading log diameters at ``times``. The lesions'
    kill factors carry the per-lesion kill rates (the patient-level rate is 1)."""
    out = {}
    pending = sorted(times)
    lz.set_drug(1.0, lam)
    for a, b, di in SCHEDULE:
        lz.set_segment(a, di, T0 if a >= T0 else a, 1.0, 0.0)
        while pending and pending[0] <= b:
            t = pending.pop(0)
            out[t] = lz.log_diameters(t).copy()
    return out


@pytest.mark.parametrize("lam", [0.02, 1e-3, 1e-9, 0.0])
def test_growth_law_matches_closed_form_across_hold_and_reduction(lam):
    logd0 = np.log([30.0, 12.0, 55.0])
    g = np.array([0.004, 0.002, 0.006])
    k = np.array([0.015, 0.01, 0.02])
    lz = _lesions(logd0, g, kill_z=k)
    times = [0.0, 5.0, 10.0, 25.0, 40.0, 47.0, 55.0, 80.0, 200.0, 399.0]
    got = _simulate(lz, lam, times)
    for t in times:
        want = [_reference(logd0[i], g[i], k[i], lam, t) for i in range(3)]
        # Closed form against closed form: only rounding differs.
        np.testing.assert_allclose(got[t], want, rtol=1e-12, atol=1e-12)


def test_growth_law_matches_ode_solver():
    """Independent check: integrate the ODE numerically (RK45, tight tolerances)."""
    logd0, g, k, lam = math.log(40.0), 0.005, 0.02, 0.015

    def rhs(t, y):
        di = next(d for a, b, d in SCHEDULE if a <= t < b)
        return [g - (di * k * math.exp(-lam * (t - T0)) if di > 0 else 0.0)]

    lz = _lesions([logd0], [g], kill_z=[k])
    times = [30.0, 50.0, 120.0, 300.0]
    got = _simulate(lz, lam, times)
    for t in times:
        sol = solve_ivp(rhs, (0.0, t), [logd0], rtol=1e-11, atol=1e-12, max_step=1.0, method="RK45")
        assert got[t][0] == pytest.approx(sol.y[0, -1], abs=1e-8)


def test_growth_inhibition_matches_ode_solver():
    """The cytostatic part: the drug removes h g exp(-lam (t - t0)) of the growth rate on top of
    the kill rate (RK45 on d log d / dt across the hold and the reduction)."""
    logd0, g, k, lam, h = math.log(40.0), 0.006, 0.004, 0.01, 0.7

    def rhs(t, y):
        di = next(d for a, b, d in SCHEDULE if a <= t < b)
        return [g - di * (k + h * g) * math.exp(-lam * (t - T0))]

    lz = _lesions([logd0], [g], kill_z=[1.0])
    times = [30.0, 50.0, 120.0, 300.0]
    out, pending = {}, list(times)
    lz.set_drug(k, lam, h)
    for a, b, di in SCHEDULE:
        lz.set_segment(a, di, T0 if a >= T0 else a, 1.0, 0.0)
        while pending and pending[0] <= b:
            t = pending.pop(0)
            out[t] = lz.log_diameters(t)[0]
    for t in times:
        sol = solve_ivp(rhs, (0.0, t), [logd0], rtol=1e-11, atol=1e-12, max_step=1.0, method="RK45")
        assert out[t] == pytest.approx(sol.y[0, -1], abs=1e-8)


def test_growth_inhibition_alone_slows_but_never_shrinks_below_one():
    """With no kill rate and h < 1 a lesion keeps growing, at (1 - h) of its rate at first;
    with h > 1 it shrinks at (h - 1) g."""
    for h, sign in ((0.6, 1.0), (1.5, -1.0)):
        lz = _lesions([math.log(30.0)], [0.005])
        lz.set_drug(0.0, 1e-9, h)
        lz.set_segment(0.0, 1.0, 0.0, 1.0, 0.0)
        eps = 1e-4
        slope = (lz.log_diameters(eps)[0] - lz.log_diameters(0.0)[0]) / eps
        assert slope == pytest.approx((1.0 - h) * 0.005, rel=1e-4)
        assert math.copysign(1.0, slope) == sign


def test_new_lesions_get_the_growth_inhibition_of_their_own_rate():
    """A lesion added mid-segment follows the same law with its own g (closed form)."""
    lz = _lesions([math.log(30.0)], [0.004])
    k, lam, h = 0.003, 0.02, 0.8
    lz.set_drug(k, lam, h)
    lz.set_segment(0.0, 1.0, 0.0, 1.0, 0.0)
    lz.set_segment(50.0, 1.0, 0.0, 1.0, 0.0)
    g_new = 0.007
    lz.add(
        [(70.0, {"organ": 0, "seed_mm": 3.0, "g": g_new, "kill_z": 1.0, "lam_z": 1.0, "f0": 1.0})]
    )
    t = 150.0
    c = k + h * g_new
    want = (
        math.log(3.0) + g_new * (t - 70.0) - c / lam * (math.exp(-lam * 70.0) - math.exp(-lam * t))
    )
    assert lz.log_diameters(t)[1] == pytest.approx(want, abs=1e-10)


def test_resistance_accrues_from_line_start_not_from_last_state_change():
    """After a hold, the kill rate is k exp(-lam (t - t0)), not restarted at k."""
    lz = _lesions([math.log(50.0)], [0.0])
    k, lam = 0.02, 0.05
    lz.set_drug(k, lam)
    lz.set_segment(0.0, 1.0, 0.0, 1.0, 0.0)
    lz.set_segment(20.0, 0.0, 0.0, 1.0, 0.0)  # hold
    lz.set_segment(30.0, 1.0, 0.0, 1.0, 0.0)  # resume, same line (t0 = 0)
    eps = 1e-6
    slope = (lz.log_diameters(30.0 + eps)[0] - lz.log_diameters(30.0)[0]) / eps
    assert slope == pytest.approx(-k * math.exp(-lam * 30.0), rel=1e-5)


def test_phi_limit_is_exact():
    x = np.array([0.0, 1e-3, 1.0, 100.0, 1e4])
    np.testing.assert_allclose(tumour.phi(tumour.LAM_FLOOR, x), x, rtol=1e-15)
    # Small but representable rates: phi = x (1 - lam x / 2 + ...), no cancellation error.
    lam = 1e-12
    np.testing.assert_allclose(tumour.phi(lam, x), x * (1 - lam * x / 2), rtol=1e-15)


def test_targets_follow_recist_rules():
    """At most 5 targets, at most 2 per organ, measurable only, largest first."""
    d = np.array([80, 60, 40, 30, 25, 20, 14, 50.0])  # node 14 mm < 15; bone not measurable
    lz = tumour.Lesions.simple(d, 0.0)
    lz.organ = np.array([0, 0, 0, 1, 1, 1, 2, 4], dtype=np.int8)
    rec, mrec = tumour.select_targets(lz, lz.logd)
    assert rec.tolist() == [True, True, False, True, True, False, False, False]
    assert rec.sum() <= tumour.MAX_TARGETS
    # mRECIST with the second liver lesion not enhancing: the third liver lesion replaces it.
    lz.f0[1] = lz.fv[1] = lz.f_eq[1] = 0.0
    _, mrec = tumour.select_targets(lz, lz.logd)
    assert mrec.tolist() == [True, False, True, True, True, False, False, False]
    # Hidden (undetected) and latent lesions are never targets.
    lz.visible[0] = False
    rec, _ = tumour.select_targets(lz, lz.logd)
    assert not rec[0] and rec[2]


def test_emergence_factor_is_the_share_of_growth_the_drug_leaves():
    """E(t) = max(0, 1 - DI (k / g_p + h) exp(-lam (t - t0))): 1 off drug (None), 0 while a drug
    halts or reverses growth, back towards 1 as resistance wanes the effect."""
    lz = _lesions([math.log(30.0)], [0.004])
    lz.g_patient = 0.004
    assert lz.emergence_factor(np.array([0.0, 10.0])) is None  # off drug
    k, h, lam = 0.002, 0.25, 0.01
    lz.set_drug(k, lam, h)
    lz.set_segment(20.0, 0.8, 20.0, 1.0, 0.0)
    t = np.array([20.0, 50.0, 200.0])
    want = np.maximum(0.0, 1.0 - 0.8 * (k / 0.004 + h) * np.exp(-lam * (t - 20.0)))
    np.testing.assert_allclose(lz.emergence_factor(t), want, rtol=1e-12)
    lz.set_drug(0.0, 1e-9, 1.2)  # growth reversed: nothing emerges
    lz.set_segment(20.0, 1.0, 20.0, 1.0, 0.0)
    assert np.all(lz.emergence_factor(t) == 0.0)
