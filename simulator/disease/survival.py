"""Death and the other hazards of a patient, integrated by the next-reaction method
(DESIGN section 3, "Death"; new lesions and vascular invasion of the tumour issue).

Death hazard per day::

    h(t) = h_bg(age(t), sex) + r0 exp(x(t)' b) (Vv(t) / V_ref)^beta + rL (V(t) / V_L)^kappa

``Vv(t)`` is the viable tumour volume and ``V(t)`` the total (closed forms between state
changes, see ``tumour``; new lesions add to both), ``x(t)' b`` the patient's covariate terms:
ECOG, MVI, EHM and decompensation as they stand (ECOG worsens, MVI and EHM switch on with new
vascular invasion or a new extrahepatic lesion, decompensation with ascites or encephalopathy),
the latent ALBI at ``t`` (albumin and bilirubin of ``labs.py``) and the baseline log10 AFP.
``h_bg`` is Gompertz background mortality by age and sex. The last term is a lethal burden: a
steep hazard for tumour masses incompatible with life, so that growth without bound never leaves
survivors with tumours of absurd size.

The processes that compete with death (:class:`Hazards`, six in all): new lesions seeded at
``rn (Vv / V_n)^gamma E(t)`` per day and new macrovascular invasion at ``rm (Vv / V_n)^gamma``
in patients without it (``progression.py``). A new lesion stands for a micro-lesion that has
grown to just below detection; under a drug that slows or reverses growth fewer reach that
size, so the seeding intensity is multiplied by the share of growth the drug leaves,
``E(t) = max(0, 1 - DI (k / g_p + h) exp(-lam_p (t - t0)))`` (1 off drug; patient-level kill
rate, growth inhibition, resistance and growth rates, ``tumour.Lesions.emergence_factor``);
with an escape share ``e`` (``tumour.new_lesion_escape_share``) the factor is
``e + (1 - e) E(t)``.
``E`` has one kink, where the drug's effect wanes through the growth rate
(``Lesions.emergence_kink``); an interval holding it is integrated in two parts, so the
quadrature below only ever sees smooth intensities; ascites and hepatic encephalopathy
worsening (up to their severe state) at rates rising with the latent ALBI; and an ECOG
worsening by one point (up to 4) at a rate rising with viable burden, ALBI and decompensation.

**Next-reaction method.** Each process has a unit-exponential budget (death's drawn up front,
the others' from the patient's progression stream). At each decision the engine asks for the
first passage over the interval up to the next decision, during which nothing else changes the
state: the cumulative intensities are integrated and compared with what remains of each
budget; the first process to spend its budget fires at the time where it does (bracketed
Newton's method, to 1e-6 days), and the others keep what remains.

**Quadrature.** The interval is cut into ``m`` equal pieces of at most ``step`` days (14 by
default) and each is integrated by 3-point Gauss-Legendre, vectorised over all nodes. Within
an interval the intensities are smooth, and the rule is exact for polynomials of degree 5; for
an intensity growing like ``exp(c t)`` the relative error on one piece of length ``h`` is about
``5e-7 (c h)^6``. A log intensity grows at most at ``c = 3 g_max k``, with ``g_max`` the
patient's fastest lesion growth rate and ``k`` the largest exponent in force, so pieces are
also kept below ``0.5 / c``: the relative error stays below 1e-8 whatever the growth.
``tests/test_survival_model.py`` checks it against closed forms; ``verification/`` maps it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from hccsim.simulator.disease.labs import latent_albi
from hccsim.simulator.disease.tumour import SPHERE_CM3, Lesions
from hccsim.simulator.parameters import DeathParams

DAYS_PER_MONTH = 30.4375
DAYS_PER_YEAR = 365.25
_GL_X = np.array([-math.sqrt(0.6), 0.0, math.sqrt(0.6)])
_GL_W = np.array([5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0])
#: Newton iterations stop when the step is below this (days; 1e-6 days is 0.09 s).
TIME_TOL = 1e-6
_UNIT_NODES: dict[int, np.ndarray] = {}
#: Gauss-Legendre nodes of [0, 1] and the right end, for Newton's method inside one piece.
_SOLVE_NODES = np.append(0.5 * (1.0 + _GL_X), 1.0)
DEATH, NEW_LESION, VASCULAR_INVASION, ASCITES, ENCEPHALOPATHY, ECOG = range(6)
N_PROCESSES = 6
_COMPETING = (DEATH, VASCULAR_INVASION, ASCITES, ENCEPHALOPATHY, ECOG)
_ALB_BIL = slice(0, 2)  # albumin and bilirubin rows of disease/labs.py
#: At most this many new lesions are seeded in one interval (``tumour.MAX_LESIONS`` in all).
MAX_SEEDS = 24


def seeding_scale(t) -> float:
    """Per-day intensity of a process at rate 1 per month at the reference viable burden,
    for a viable burden of 1 mm^3 of cubed diameters: times ``(sum f d^3)^gamma`` and a rate
    per month it gives the new-lesion or vascular-invasion intensity (``t``: TumourParams)."""
    return (SPHERE_CM3 / t.new_lesion_reference_cm3) ** t.new_lesion_exponent / DAYS_PER_MONTH


def _unit_nodes(m: int) -> np.ndarray:
    """Gauss-Legendre nodes of ``m`` unit pieces of [0, m], flattened (cached per ``m``)."""
    nodes = _UNIT_NODES.get(m)
    if nodes is None:
        nodes = (np.arange(m)[:, None] + 0.5 * (1.0 + _GL_X)).ravel()
        _UNIT_NODES[m] = nodes
    return nodes


def first_passage(
    rates: Callable[[np.ndarray], np.ndarray],
    a: float,
    b: float,
    budgets: np.ndarray,
    max_piece: float,
    profile: list | None = None,
) -> tuple[np.ndarray, int, float | None]:
    """Cumulative intensities over ``[a, b]`` against the remaining ``budgets``.

    ``rates(times)`` returns a ``(k, len(times))`` array of intensities per day. Returns
    ``(used, j, t)``: the integral of each intensity from ``a`` to ``t``, the index of the
    process that spent its budget first and when (``-1`` and ``None`` when none did within
    the interval, and then ``used`` covers all of it). An infinite budget never fires. With
    ``profile`` (a list), the piece boundaries and cumulative integrals there are appended to it.
    """
    k = len(budgets)
    if b <= a:
        return np.zeros(k), -1, None
    m = max(1, math.ceil((b - a) / max_piece))
    h = (b - a) / m
    pieces = (rates(a + h * _unit_nodes(m)).reshape(k, m, 3) @ _GL_W) * (0.5 * h)
    cum = np.cumsum(pieces, axis=1)
    if profile is not None:
        profile.extend((a + h * np.arange(m + 1), np.concatenate([np.zeros((k, 1)), cum], axis=1)))
    crossed = np.flatnonzero(cum[:, -1] >= budgets)
    if not len(crossed):
        return cum[:, -1], -1, None
    # Locate each crossing roughly (constant intensity within its piece); solve exactly only
    # the processes whose rough time could be the first (those crossing in the first piece
    # where any crosses), and keep the earliest.
    rough = {}
    for j in crossed.tolist():
        p = min(int(np.searchsorted(cum[j], budgets[j], side="left")), m - 1)
        before = float(cum[j, p - 1]) if p > 0 else 0.0
        rough[j] = (p, before)
    first_piece = min(p for p, _ in rough.values())
    best_j, best_t = -1, math.inf
    for j, (p, before) in rough.items():
        if p != first_piece:
            continue
        t = _solve(rates, j, a + p * h, h, float(budgets[j]) - before, float(pieces[j, p]))
        if t < best_t:
            best_j, best_t = j, t
    # What every process used up to the event: whole pieces, then the part of the last one.
    p = min(int((best_t - a) // h), m - 1)
    lo = a + p * h
    used = cum[:, p - 1].copy() if p > 0 else np.zeros(k)
    u = best_t - lo
    if u > 0:
        used += (rates(lo + u * _SOLVE_NODES[:3]) @ _GL_W) * (0.5 * u)
    used[best_j] = budgets[best_j]
    return used, best_j, best_t


def _solve(rates, j: int, lo: float, width: float, target: float, piece: float) -> float:
    """Time t in [lo, lo + width] with integral_lo^t rate_j = target (Newton, bracketed)."""
    a, b = lo, lo + width
    t = lo + width * min(1.0, target / piece) if piece > 0 else b
    for _ in range(50):
        u = t - lo
        vals = rates(lo + u * _SOLVE_NODES)[j]
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


class DeathHazard:
    """The death hazard of one patient. ``lesions`` is the patient's tumour; the time-varying
    covariates (ECOG, MVI, EHM, decompensation) are set by :meth:`set_state`, and ALBI comes
    with the volumes (the latent ALBI at each time, or the baseline ALBI when standalone)."""

    __slots__ = (
        "_albi0", "_albi_ref", "_base", "_beta", "_bg_a", "_bg_b", "_hr", "_kappa", "_lethal",
        "_lp", "_lp_static", "lesions", "max_piece", "steepest",
    )  # fmt: skip

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
        decompensated: bool = False,
        hazard_ratio: float = 1.0,
        enrolment_year: float | None = None,
    ) -> None:
        # ``hazard_ratio`` multiplies the whole death hazard (disease and background): an arm's
        # assumed direct effect (scenario ``treatment.arms[].death_hazard_ratio``), 1 otherwise.
        # The calendar era of enrolment multiplies the disease terms only (not background
        # mortality): era_hazard_ratio_per_decade ** ((year - era_reference_year) / 10).
        self._hr = p
        era = (
            1.0
            if enrolment_year is None
            else p.era_hazard_ratio_per_decade ** ((enrolment_year - p.era_reference_year) / 10.0)
        )
        self._lp_static = p.log_hr_log10_afp * (math.log10(afp) - p.log10_afp_reference)
        self._albi0 = albi
        self._albi_ref = p.albi_reference
        self._beta = p.burden_exponent
        # r0 exp(x'b) (Vv / V_ref)^beta with Vv = SPHERE_CM3 * sum(d^3 f): one power of the sum.
        self._base = (
            hazard_ratio
            * era
            * p.base_rate_per_month
            / DAYS_PER_MONTH
            * (SPHERE_CM3 / p.reference_burden_cm3) ** self._beta
        )
        self._kappa = p.lethal_burden_exponent
        self._lethal = (
            hazard_ratio
            * era
            * p.lethal_burden_rate_per_month
            / DAYS_PER_MONTH
            * (SPHERE_CM3 / p.lethal_burden_cm3) ** self._kappa
        )
        self.steepest = max(
            self._beta if self._base > 0 else 0.0, self._kappa if self._lethal > 0 else 0.0
        )
        self.max_piece = _max_piece(lesions, self.steepest)
        # Gompertz: log annual hazard = log_rate_at_70 + slope (age - 70) (+ female offset).
        b = p.background_gompertz_slope_per_year
        log_at_start = (
            p.background_gompertz_log_rate_at_70
            + b * (age - 70.0)
            + (0.0 if male else p.background_female_log_hr)
        )
        self._bg_a = hazard_ratio * math.exp(log_at_start) / DAYS_PER_YEAR  # per day at t = 0
        self._bg_b = b / DAYS_PER_YEAR  # per day of follow-up
        self.lesions = lesions
        self.set_state(ecog=ecog, mvi=mvi, ehm=ehm, decompensated=decompensated)

    def set_state(self, *, ecog: float, mvi: bool, ehm: bool, decompensated: bool) -> None:
        """The covariates in force from now on (they change at events)."""
        p = self._hr
        self._lp = (
            self._lp_static
            + p.log_hr_ecog * ecog
            + p.log_hr_mvi * mvi
            + p.log_hr_ehm * ehm
            + p.log_hr_decompensated * decompensated
        )

    def background(self, t: float) -> float:
        """Background (general-population) hazard per day at time ``t``."""
        return self._bg_a * math.exp(self._bg_b * t)

    def from_volumes(self, times, d3, d3v, albi) -> np.ndarray:
        """Hazard per day at ``times`` given the sums of cubed diameters (all and viable) and
        ALBI there."""
        h = self._bg_a * np.exp(self._bg_b * times)
        if self._base > 0.0:
            lp = self._lp + self._hr.log_hr_albi * (np.asarray(albi) - self._albi_ref)
            burden = 1.0 if self._beta == 0.0 else d3v**self._beta
            h += self._base * burden * np.exp(lp)
        if self._lethal > 0.0:
            h += self._lethal * d3**self._kappa
        return h

    def hazard(self, times: np.ndarray) -> np.ndarray:
        """Hazard per day at ``times`` (within the lesions' current segment), baseline ALBI."""
        d3, d3v = self.lesions.volumes_grid(times)
        return self.from_volumes(times, d3, d3v, self._albi0)

    def integrate(
        self, a: float, b: float, budget: float, step: float
    ) -> tuple[float, float | None]:
        """Cumulative hazard over ``[a, b]`` against ``budget``: ``(used, None)``, or
        ``(budget, time of death)`` when death falls in the interval."""
        used, j, t = first_passage(
            lambda x: self.hazard(x)[None, :], a, b, np.array([budget]), min(step, self.max_piece)
        )
        return (float(used[0]), None) if j < 0 else (budget, t)


def _max_piece(lesions: Lesions, steepest: float) -> float:
    fastest = max(float(np.max(lesions.g)), 1e-12) if lesions.n else 1e-12
    return 0.5 / (3.0 * fastest * steepest) if steepest > 0 else math.inf


class Hazards:
    """Every hazard of one patient, for the next-reaction method: death, new lesions, new
    vascular invasion, ascites, hepatic encephalopathy and a one-point worsening of ECOG.
    ``budgets`` holds what remains of each process's exponential budget; ``state`` holds the
    covariates that the events change."""

    __slots__ = (
        "ascites",
        "budgets",
        "death",
        "dec",
        "ecog",
        "ehm",
        "encephalopathy",
        "escape",
        "gamma",
        "labs",
        "lesions",
        "max_piece",
        "mvi",
        "mvi_scale",
        "new_scale",
        "ps",
        "ps_scale",
    )  # fmt: skip

    def __init__(
        self,
        death: DeathHazard,
        p,
        labs,
        b: dict,
        budgets: np.ndarray,
        seeding: float = 1.0,
    ) -> None:
        self.death = death
        self.lesions = death.lesions
        self.labs = labs
        t = p.tumour
        self.gamma = t.new_lesion_exponent
        per = seeding_scale(t)
        self.new_scale = seeding * t.new_lesion_rate_per_month * per  # patient's propensity
        self.mvi_scale = t.vascular_invasion_rate_per_month * per
        self.escape = t.new_lesion_escape_share
        self.dec = p.decompensation
        self.ps = p.status
        self.ps_scale = (
            self.ps.worsening_rate_per_month
            / DAYS_PER_MONTH
            * (SPHERE_CM3 / self.ps.reference_burden_cm3) ** self.ps.burden_exponent
        )
        self.ecog, self.mvi, self.ehm = int(b["ecog"]), bool(b["mvi"]), bool(b["ehm"])
        self.ascites, self.encephalopathy = int(b["ascites"]), int(b["encephalopathy"])
        self.budgets = budgets
        self._update()
        self.refresh()

    @property
    def decompensated(self) -> bool:
        return self.ascites > 0 or self.encephalopathy > 0

    def _update(self) -> None:
        self.death.set_state(
            ecog=self.ecog, mvi=self.mvi, ehm=self.ehm, decompensated=self.decompensated
        )

    def refresh(self) -> None:
        """Piece length for the lesions in force (call after lesions are added)."""
        steep = max(self.gamma, self.ps.burden_exponent, self.death.steepest)
        self.max_piece = _max_piece(self.lesions, steep)

    def event(self, kind: int) -> None:
        """Apply a non-fatal event to the state; its process starts a new budget (or stops)."""
        if kind == VASCULAR_INVASION:
            self.mvi = True
        elif kind == ASCITES:
            self.ascites = min(self.ascites + 1, 2)
        elif kind == ENCEPHALOPATHY:
            self.encephalopathy = min(self.encephalopathy + 1, 2)
        elif kind == ECOG:
            self.ecog = min(self.ecog + 1, 4)
        self._update()

    def extrahepatic_spread(self) -> None:
        self.ehm = True
        self._update()

    def albi(self, times: np.ndarray, d3: np.ndarray) -> np.ndarray:
        """Latent ALBI at ``times`` (albumin and bilirubin move with the tumour volume)."""
        log_v = np.log(np.maximum(SPHERE_CM3 * d3, 1e-9))
        alb, lbil = self.labs.latent(times, log_v, rows=_ALB_BIL)
        return latent_albi(alb, lbil)

    def rates(self, times: np.ndarray) -> np.ndarray:
        d3, d3v = self.lesions.volumes_grid(times)
        albi = self.albi(times, d3)
        out = np.zeros((N_PROCESSES, len(times)))
        out[DEATH] = self.death.from_volumes(times, d3, d3v, albi)
        v = d3v**self.gamma
        out[NEW_LESION] = self.new_scale * v
        emergence = self.lesions.emergence_factor(times)
        if emergence is not None:
            if self.escape > 0.0:
                emergence = self.escape + (1.0 - self.escape) * emergence
            out[NEW_LESION] *= emergence
        if not self.mvi:
            out[VASCULAR_INVASION] = self.mvi_scale * v
        dec = self.dec
        if self.ascites < 2:
            out[ASCITES] = (
                dec.ascites_rate_per_month
                / DAYS_PER_MONTH
                * np.exp(dec.ascites_log_hr_per_albi * (albi - dec.albi_reference))
            )
        if self.encephalopathy < 2:
            out[ENCEPHALOPATHY] = (
                dec.encephalopathy_rate_per_month
                / DAYS_PER_MONTH
                * np.exp(dec.encephalopathy_log_hr_per_albi * (albi - dec.albi_reference))
            )
        if self.ecog < 4:
            ps = self.ps
            out[ECOG] = (
                self.ps_scale
                * d3v**ps.burden_exponent
                * np.exp(
                    ps.log_hr_per_albi * (albi - ps.albi_reference)
                    + ps.log_hr_decompensated * self.decompensated
                )
            )
        return out

    def advance(self, a: float, b: float, step: float, next_budget: Callable[[], float]):
        """First event over ``[a, b]`` (death, vascular invasion, ascites, encephalopathy, an
        ECOG worsening) and the new lesions seeded before it: ``(process, time, seed times)``,
        with ``(-1, None, ...)`` when no event falls in the interval. Budgets are reduced by what
        each process used; the process that fired gets a new budget from ``next_budget()``.

        New lesions are not competing events: a seed is 9 mm (under 1 cm^3), so its effect on
        the intensities before the next decision is negligible; the seeding intensity is
        integrated with the others, seeds are placed where its cumulative reaches each budget
        (piecewise-linear between piece boundaries), and the course adds them at the next
        decision or event.

        The new-lesion intensity has a kink where the drug's effect on micro-lesions wanes
        (``Lesions.emergence_kink``); an interval holding it is integrated in two parts, so that
        every piece of the quadrature sees a smooth intensity.
        """
        kink = self.lesions.emergence_kink() if self.new_scale > 0.0 else None
        if kink is not None and a < kink < b:
            j, t, seeds = self._advance(a, kink, step, next_budget)
            if j >= 0:
                return j, t, seeds
            j, t, more = self._advance(kink, b, step, next_budget)
            return j, t, (seeds + more)[:MAX_SEEDS]
        return self._advance(a, b, step, next_budget)

    def _advance(self, a: float, b: float, step: float, next_budget: Callable[[], float]):
        budgets = self.budgets.copy()
        budgets[NEW_LESION] = math.inf
        profile: list = []
        used, j, t = first_passage(self.rates, a, b, budgets, min(step, self.max_piece), profile)
        seeds = []
        if self.new_scale > 0.0 and profile:
            knots, cum = profile[0], profile[1][NEW_LESION]
            total, position = float(used[NEW_LESION]), float(self.budgets[NEW_LESION])
            while position <= total and len(seeds) < MAX_SEEDS:
                seeds.append(float(np.interp(position, cum, knots)))
                position += next_budget()
            # What remains to the next seed (past the cap, a patient cannot carry more lesions).
            self.budgets[NEW_LESION] = position - total if position > total else next_budget()
        for k in _COMPETING:
            self.budgets[k] -= used[k]
        if j > DEATH:
            self.budgets[j] = next_budget()
        return j, t, seeds
