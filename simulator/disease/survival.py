"""The death hazard and its next-reaction integration (DESIGN section 3, "Death").

Hazard per day::

    h(t) = h_bg(age(t), sex) + r0 exp(x' b) (V(t) / V_ref)^beta + rL (V(t) / V_L)^kappa

``V(t)`` is the total tumour volume (closed form between state changes, see ``tumour``),
``x' b`` the patient's covariate terms (ECOG, MVI, EHM, ALBI, log10 AFP), ``h_bg`` Gompertz
background mortality by age and sex. Interim (foundation issue): the covariates are those of
the baseline; the liver and status issues make ALBI and ECOG time-varying and add new lesions
and the pattern of progression, behind the same interface.

The last term is a lethal burden: a steep hazard (rate ``rL`` at volume ``V_L``, exponent
``kappa``) for tumour masses incompatible with life, so that growth without bound never leaves
survivors with tumours of absurd size.

Death by the next-reaction method: one unit-exponential budget ``E`` is drawn up front; at each
decision the engine asks for the cumulative hazard over the interval up to the next decision
(nothing changes the state within it). If it exceeds what remains of ``E``, death falls inside
and is located by Newton's method; otherwise the remainder carries on.

Quadrature: the interval is cut into ``m`` equal pieces of at most ``step`` days (14 by default)
and each is integrated by 3-point Gauss-Legendre, vectorised over all nodes. Within an interval
the hazard is smooth (a sum of exponentials of smooth exponents), and the rule is exact for
polynomials of degree 5; for a hazard growing like ``exp(c t)`` the relative error on one piece
of length ``h`` is about ``5e-7 (c h)^6``. The log hazard grows at most at ``c = 3 g_max k``,
with ``g_max`` the patient's fastest lesion growth rate and ``k`` the largest exponent in force,
so pieces are also kept below ``0.5 / c``: the relative error stays below 1e-8 whatever the
growth. ``tests/test_survival_model.py`` checks it against the closed form of an exponentially
growing hazard; ``verification/`` maps it over growth rates and piece lengths.
"""

from __future__ import annotations

import math

import numpy as np

from hccsim.simulator.disease.tumour import SPHERE_CM3, Lesions
from hccsim.simulator.parameters import DeathParams

DAYS_PER_MONTH = 30.4375
DAYS_PER_YEAR = 365.25
_GL_X = np.array([-math.sqrt(0.6), 0.0, math.sqrt(0.6)])
_GL_W = np.array([5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0])
#: Newton iterations stop when the step is below this (days; 1e-7 days is 9 ms).
TIME_TOL = 1e-7
_UNIT_NODES: dict[int, np.ndarray] = {}
_add = np.add.reduce  # ndarray.sum without its Python-level wrapper (hot path)
_LOGD_CAP = 35.0
#: Gauss-Legendre nodes of [0, 1] and the right end, for Newton's method inside one piece.
_SOLVE_NODES = np.append(0.5 * (1.0 + _GL_X), 1.0)


def _unit_nodes(m: int) -> np.ndarray:
    """Gauss-Legendre nodes of ``m`` unit pieces of [0, m], flattened (cached per ``m``)."""
    nodes = _UNIT_NODES.get(m)
    if nodes is None:
        nodes = (np.arange(m)[:, None] + 0.5 * (1.0 + _GL_X)).ravel()
        _UNIT_NODES[m] = nodes
    return nodes


class DeathHazard:
    """Hazard of one patient. ``lesions`` is the patient's tumour, advanced by the engine."""

    __slots__ = (
        "_beta",
        "_bg_a",
        "_bg_b",
        "_disease",
        "_kappa",
        "_lethal",
        "_max_piece",
        "_scale",
        "lesions",
    )

    def __init__(
        self,
        p: DeathParams,
        lesions: Lesions,
        *,
        age: float,
        male: bool,
        ecog: float,
        mvi: bool,
        ehm: bool,
        albi: float,
        afp: float,
    ) -> None:
        lp = (
            p.log_hr_ecog * ecog
            + p.log_hr_mvi * mvi
            + p.log_hr_ehm * ehm
            + p.log_hr_albi * (albi - p.albi_reference)
            + p.log_hr_log10_afp * (math.log10(afp) - p.log10_afp_reference)
        )
        self._disease = p.base_rate_per_month / DAYS_PER_MONTH * math.exp(lp)
        self._beta = p.burden_exponent
        # r0 exp(x'b) (V / V_ref)^beta with V = SPHERE_CM3 * sum(d^3): one power of sum(d^3).
        self._scale = self._disease * (SPHERE_CM3 / p.reference_burden_cm3) ** self._beta
        self._kappa = p.lethal_burden_exponent
        self._lethal = (
            p.lethal_burden_rate_per_month
            / DAYS_PER_MONTH
            * (SPHERE_CM3 / p.lethal_burden_cm3) ** self._kappa
        )
        fastest = max(float(np.max(lesions.g)), 1e-12) if lesions.n else 1e-12
        steepest = max(
            self._beta if self._disease > 0 else 0.0, self._kappa if self._lethal > 0 else 0.0
        )
        self._max_piece = 0.5 / (3.0 * fastest * steepest) if steepest > 0 else math.inf
        # Gompertz: log annual hazard = log_rate_at_70 + slope (age - 70) (+ female offset).
        b = p.background_gompertz_slope_per_year
        log_at_start = (
            p.background_gompertz_log_rate_at_70
            + b * (age - 70.0)
            + (0.0 if male else p.background_female_log_hr)
        )
        self._bg_a = math.exp(log_at_start) / DAYS_PER_YEAR  # per day at t = 0
        self._bg_b = b / DAYS_PER_YEAR  # per day of follow-up
        self.lesions = lesions

    def background(self, t: float) -> float:
        """Background (general-population) hazard per day at time ``t``."""
        return self._bg_a * math.exp(self._bg_b * t)

    def hazard(self, times: np.ndarray) -> np.ndarray:
        """Hazard per day at ``times`` (all within the lesions' current segment)."""
        h = self._bg_a * np.exp(self._bg_b * times)
        if self._disease > 0.0 and self._beta == 0.0:
            h += self._disease
        burden = self._disease > 0.0 and self._beta != 0.0
        if burden or self._lethal > 0.0:
            # Log diameters are capped at 35 (1.6e15 mm), far past the lethal burden, so that
            # nodes far ahead of an exploding tumour give large, finite hazards (no overflow).
            logd = np.minimum(self.lesions.log_diameters_grid(times), _LOGD_CAP)
            d3 = _add(np.exp(3.0 * logd), axis=0)
            if burden:
                h += self._scale * d3**self._beta
            if self._lethal > 0.0:
                h += self._lethal * d3**self._kappa
        return h

    def integrate(
        self, a: float, b: float, budget: float, step: float
    ) -> tuple[float, float | None]:
        """Cumulative hazard over ``[a, b]`` against ``budget``.

        Returns ``(used, None)`` when death does not fall in the interval, else
        ``(budget, time_of_death)``.
        """
        if b <= a:
            return 0.0, None
        m = max(1, math.ceil((b - a) / min(step, self._max_piece)))
        h = (b - a) / m
        pieces = (self.hazard(a + h * _unit_nodes(m)).reshape(m, 3) @ _GL_W) * (0.5 * h)
        total = float(_add(pieces))
        if total < budget:
            return total, None
        cum = np.cumsum(pieces)
        j = int(np.searchsorted(cum, budget, side="left"))
        j = min(j, m - 1)
        before = float(cum[j - 1]) if j > 0 else 0.0
        return budget, self._solve(a + j * h, h, budget - before, float(pieces[j]))

    def _solve(self, lo: float, width: float, target: float, piece: float) -> float:
        """Time t in [lo, lo + width] with integral_lo^t h = target (Newton, bracketed)."""
        hi = lo + width
        a, b = lo, hi
        t = lo + width * min(1.0, target / piece) if piece > 0 else hi
        for _ in range(50):
            u = t - lo
            vals = self.hazard(lo + u * _SOLVE_NODES)
            f = float(vals[:3] @ _GL_W) * 0.5 * u - target
            if f > 0:
                b = t
            else:
                a = t
            step = f / vals[3] if vals[3] > 0 else math.inf
            new = t - step
            if not a < new < b:  # keep the bracket: bisect when Newton jumps out
                new = 0.5 * (a + b)
            if abs(new - t) < TIME_TOL:
                return new
            t = new
        return t
