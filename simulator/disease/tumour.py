"""Lesions, their growth and viability under treatment (DESIGN section 3, "Tumour").

**Growth.** Between state changes each lesion's diameter follows the growth-inhibition law with
resistance that accrues from the start of the line ``t0``::

    log d(t) = log d(s) + g (t - s) - F (c / lam) (exp(-lam (s - t0)) - exp(-lam (t - t0)))

with the drug's effect ``c = k + h g``: a cytotoxic part ``k`` and a cytostatic part that
suppresses a share ``h`` (the drug's growth inhibition, ``0 <= h <= 2``) of the lesion's own
growth rate, so that a drug that only slows growth (``k = 0, h < 1``) delays progression without
shrinking anything, and both parts wane at the resistance rate. It is written as
``log d(s) + g (t - s) - a * phi(lam, t - s)`` with ``a = F c exp(-lam (s - t0))``
fixed for the segment and ``phi(lam, x) = -expm1(-lam x) / lam``, which is exact as
``lam -> 0`` (``phi -> x``; rates are floored at ``LAM_FLOOR`` where phi equals x to rounding).
``s`` is the last state change: a line start or end, a hold, a resumption, a dose reduction,
new lesions. ``g`` is the patient's growth rate times a lesion factor; ``k`` the drug's kill
rate times the patient's sensitivity times a lesion factor; ``lam`` its resistance rate times a
lesion factor (all log-normal). Immunotherapy responders get the regimen's responder rates.
``F`` is the share of the full-dose effect at the dose intensity ``DI`` in force,
:func:`dose_effect` (an Emax exposure-response; the caller applies it; 0 off drug or during a
hold).

**Viability.** Each lesion has a baseline viable (arterially enhancing) fraction ``f0`` of its
longest diameter, taken as the viable share of its volume too (viable burden, which drives AFP,
new lesions and vascular invasion); lesions treated by TACE may not enhance at all (``f0 = 0``:
not evaluable by mRECIST). Between state changes the fraction relaxes exponentially toward an
equilibrium::

    f(t) = f_eq + (f(s) - f_eq) exp(-r (t - s))

on drug ``f_eq = f0 * floor`` and ``r = necrosis rate * F`` (the drug's necrosis), off drug
``f_eq = f0`` and ``r`` the revascularisation rate. mRECIST reads ``d * f`` for intrahepatic
lesions, so it sees responses that RECIST 1.1 (whole diameters) does not.

**Lesions at baseline.** Up to :data:`MAX_LIVER_TRACKED` intrahepatic lesions are tracked (the
largest has the baseline's maximum diameter); intrahepatic lesions beyond that are carried as
one latent sphere whose volume is the rest of the intrahepatic tumour volume implied by the
tumour occupation (``occ / (100 - occ)`` liver volumes), at least the volume of the untracked
lesions at 10 mm each. With EHM, one to three extrahepatic lesions (lung, lymph node, adrenal,
bone, peritoneum). New lesions are added later (``disease/progression.py``); all lesions share
these arrays, up to :data:`MAX_LESIONS`.

**Targets** (at each line's baseline, among visible lesions): RECIST 1.1 measurable lesions
(>= 10 mm; lymph nodes >= 15 mm short axis; bone not measurable), largest first, at most five
and two per organ; mRECIST chooses intrahepatic targets among enhancing lesions by their viable
diameter, extrahepatic ones as RECIST 1.1.
"""

from __future__ import annotations

import math

import numpy as np

from hccsim.simulator.parameters import DrugParams, TumourParams

ORGANS = ("liver", "lung", "lymph_node", "adrenal", "bone", "peritoneum")
LIVER, LUNG, LYMPH_NODE, ADRENAL, BONE, PERITONEUM = range(len(ORGANS))
#: Extrahepatic sites and their shares among extrahepatic lesions of HCC (lung most common).
EHM_ORGANS = np.array([LUNG, LYMPH_NODE, ADRENAL, BONE, PERITONEUM])
EHM_ORGAN_CDF = np.cumsum([0.45, 0.25, 0.10, 0.15, 0.05])
MAX_LIVER_TRACKED = 5
MAX_EHM = 3
#: Baseline array slots: tracked liver lesions, extrahepatic lesions, the latent burden.
SLOTS = MAX_LIVER_TRACKED + MAX_EHM + 1
#: All lesions a patient can carry, new ones included (more new lesions are not tracked: by
#: then the patient has progressed, as any detected new lesion is progression).
MAX_LESIONS = 24
MAX_TARGETS = 5
MAX_TARGETS_PER_ORGAN = 2
MEASURABLE_MM = 10.0
MEASURABLE_NODE_MM = 15.0
#: Number of biology normals and uniforms that :func:`build_lesions` consumes, fixed.
N_NORMALS = 4 * SLOTS
N_UNIFORMS = 1 + MAX_EHM + 2 * SLOTS

SPHERE_CM3 = math.pi / 6.0 / 1000.0  # volume (cm^3) of a sphere of diameter 1 mm, times d^3
#: Resistance rates are floored here so that :func:`phi` needs no branch: for ``lam`` at the
#: floor, ``-expm1(-lam x) / lam`` equals its limit ``x`` to rounding for any ``x > 1e-100``.
LAM_FLOOR = 1e-200
#: Largest growth inhibition a patient gets (a drug's share of growth suppressed, times the
#: patient's sensitivity): twice the growth rate turned into shrinkage at the same speed.
MAX_INHIBITION = 2.0


def dose_effect(di: float, half_dose_effect: float) -> float:
    """Share of the full-dose antitumour effect at dose intensity ``di`` (exposure-response).

    An Emax curve through 0 and 1, ``F(di) = di (1 + c50) / (di + c50)``, whose half-maximal
    dose ``c50`` is set by the share of the effect kept at half dose, ``e_half = F(0.5)``:
    ``c50 = (1 - e_half) / (2 e_half - 1)``. ``e_half = 0.5`` is the linear law ``F = di``
    (``c50`` infinite), ``e_half = 1`` the full effect at any dose above 0. ``F(0) = 0`` (off
    drug, a hold) and ``F(1) = 1`` (full dose) whatever ``e_half``. ``e_half`` below 0.5 (a
    convex curve) is refused: the parameter's bounds are 0.5 to 1.
    """
    if not 0.5 <= half_dose_effect <= 1.0:
        raise ValueError(f"half_dose_effect must be from 0.5 to 1, got {half_dose_effect!r}")
    if di <= 0.0:
        return 0.0
    if half_dose_effect == 0.5:
        return di
    c = (1.0 - half_dose_effect) / (2.0 * half_dose_effect - 1.0)
    return di * (1.0 + c) / (di + c)


def phi(lam, x):
    """``-expm1(-lam x) / lam`` for ``lam >= LAM_FLOOR`` (its limit ``x`` as ``lam -> 0``)."""
    return -np.expm1(-lam * x) / lam


class Lesions:
    """One patient's lesions: per-lesion attributes, the drug in force and the current segment.

    Per-lesion arrays (same length ``n``): ``organ``, ``latent`` (the latent intrahepatic
    burden), ``g``, ``kill_z``, ``lam_z``, ``f0`` (baseline viable fraction), ``lesion_id``,
    ``new`` (appeared after the index start), ``visible`` (seen on a scan: baseline lesions, and
    new lesions once detected), ``line_seen`` (the line at whose baseline it was known, else
    0), and the segment state ``logd``, ``fv`` (at ``s``), ``a``, ``lam``, ``f_eq``, ``r``.
    """

    __slots__ = (
        "a", "di", "f0", "f_eq", "floor_now", "fv", "g", "g_patient", "inhibit", "kill",
        "kill_z", "killing", "lam",
        "lam_z", "latent", "lesion_id", "line_seen", "logd", "n", "new", "organ", "r",
        "rate_now", "recovery", "resist", "s", "t0", "visible",
    )  # fmt: skip

    @classmethod
    def simple(cls, diameters_mm, growth, recovery: float = 0.0) -> Lesions:
        """Visible, enhancing liver lesions with these diameters and growth rates, off drug at
        time 0 (for tests, verification and examples)."""
        lz = cls()
        lz.logd = np.log(np.asarray(diameters_mm, dtype=float))
        lz.n = len(lz.logd)
        lz.g = np.broadcast_to(np.asarray(growth, dtype=float), (lz.n,)).copy()
        lz.organ = np.zeros(lz.n, dtype=np.int8)
        lz.latent = np.zeros(lz.n, dtype=bool)
        lz.kill_z = np.ones(lz.n)
        lz.lam_z = np.ones(lz.n)
        lz.f0 = np.ones(lz.n)
        lz.lesion_id = np.arange(lz.n, dtype=np.int64)
        lz.new = np.zeros(lz.n, dtype=bool)
        lz.visible = np.ones(lz.n, dtype=bool)
        lz.line_seen = np.zeros(lz.n, dtype=np.int64)
        lz.s = lz.t0 = 0.0
        lz.kill = lz.resist = lz.di = lz.inhibit = 0.0
        lz.g_patient = float(np.median(lz.g)) if lz.n else 0.0
        lz.recovery = recovery
        lz.lam = np.full(lz.n, LAM_FLOOR)
        lz.a = np.zeros(lz.n)
        lz.killing = False
        lz.floor_now, lz.rate_now = 1.0, recovery
        lz.fv, lz.f_eq, lz.r = lz.f0.copy(), lz.f0.copy(), np.full(lz.n, recovery)
        return lz

    # -- the closed forms ------------------------------------------------------------------
    def log_diameters(self, t: float) -> np.ndarray:
        """True log diameters (mm) of all lesions at time ``t`` within the current segment."""
        x = t - self.s
        if self.killing:
            return self.logd + self.g * x + self.a * (np.expm1(-self.lam * x) / self.lam)
        return self.logd + self.g * x

    def log_diameters_grid(self, times: np.ndarray) -> np.ndarray:
        """``(n, len(times))`` log diameters at several times within the current segment."""
        x = times - self.s
        out = self.logd[:, None] + self.g[:, None] * x
        if self.killing:
            lam = self.lam[:, None]
            out += self.a[:, None] * (np.expm1(-lam * x) / lam)
        return out

    def _emergence_scale(self) -> float | None:
        """``s0 = F (k / g_p + h)``, the drug's initial hold on micro-lesions relative to the
        patient's growth rate (``None`` off drug): shared by the factor and its kink."""
        if not self.killing or self.g_patient <= 0.0:
            return None
        return self.di * (self.kill / self.g_patient + self.inhibit)

    def emergence_factor(self, times: np.ndarray) -> np.ndarray | None:
        """Share of the patient's untreated growth left to micro-lesions at ``times`` under the
        regimen in force: ``max(0, 1 - s0 exp(-lam_p (t - t0)))`` with ``s0 = F (k / g_p + h)``,
        the patient-level kill rate ``k``, growth inhibition ``h``, resistance rate ``lam_p`` and
        growth rate ``g_p`` (no lesion factors: the micro-lesions are not yet seen). ``None``
        off drug (the factor is 1)."""
        s0 = self._emergence_scale()
        if s0 is None:
            return None
        return np.maximum(1.0 - s0 * np.exp(-self.resist * (times - self.t0)), 0.0)

    def emergence_kink(self) -> float | None:
        """Time where :meth:`emergence_factor` leaves 0, the drug's hold on micro-lesions having
        waned below the growth rate: ``t0 + ln(s0) / lam_p``. ``None`` where the factor has no
        kink (off drug, no resistance, or ``s0 <= 1``)."""
        s0 = self._emergence_scale()
        if s0 is None or s0 <= 1.0 or self.resist <= 0.0:
            return None
        return self.t0 + math.log(s0) / self.resist

    def viable_fractions(self, t: float) -> np.ndarray:
        return self.f_eq + (self.fv - self.f_eq) * np.exp(-self.r * (t - self.s))

    def viable_grid(self, times: np.ndarray) -> np.ndarray:
        return self.f_eq[:, None] + (self.fv - self.f_eq)[:, None] * np.exp(
            -self.r[:, None] * (times - self.s)
        )

    # -- state changes ---------------------------------------------------------------------------
    def set_drug(self, kill: float, resistance: float, inhibition: float = 0.0) -> None:
        """The patient-level kill and resistance rates and the growth inhibition of the regimen
        in force (all 0 off drug)."""
        self.kill = kill
        self.resist = resistance
        self.inhibit = inhibition

    def set_segment(self, t: float, di: float, t0: float, floor: float, necrosis: float) -> None:
        """Start a new segment at ``t``: carry every lesion to ``t``, then apply the new state.

        ``di`` is the share of the full-dose effect at the dose intensity in force
        (:func:`dose_effect`; 0 off drug or during a hold), ``t0`` the start of the line
        (resistance accrues from it, whatever happened since), ``floor`` and ``necrosis`` the
        drug's viable floor and necrosis rate.
        """
        self.logd = self.log_diameters(t)
        self.fv = self.viable_fractions(t)
        self.s = t
        self.t0 = t0
        self.lam = np.maximum(self.resist * self.lam_z, LAM_FLOOR)
        self.a = (di * (self.kill * self.kill_z + self.inhibit * self.g)) * np.exp(
            -self.lam * (t - t0)
        )
        self.killing = bool(di > 0.0 and (self.kill > 0.0 or self.inhibit > 0.0))
        self.di = di
        if di > 0.0 and necrosis > 0.0:
            self.floor_now, self.rate_now = floor, necrosis * di
        else:
            self.floor_now, self.rate_now = 1.0, self.recovery
        self.f_eq = self.f0 * self.floor_now
        self.r = np.full(self.n, self.rate_now)

    def add(self, seeds: list[tuple[float, dict]]) -> None:
        """Append lesions seeded at given times, each ``(t_seed, attributes)`` with the
        attributes ``organ``, ``seed_mm``, ``g``, ``kill_z``, ``lam_z``, ``f0``, under the
        segment in force (the caller starts a new segment when it adds lesions). Segment values
        are back-extrapolated to ``s``, so that the closed forms give each lesion its seed size
        at ``t_seed`` and its true size from then on. One concatenation per array for all."""
        if not seeds:
            return
        cols: dict[str, list] = {k: [] for k in _PER_LESION}
        next_id = int(self.lesion_id.max()) + 1 if self.n else 0
        for k, (t_seed, at) in enumerate(seeds):
            x = t_seed - self.s
            lam = max(self.resist * at["lam_z"], LAM_FLOOR)
            a = (
                self.di
                * (self.kill * at["kill_z"] + self.inhibit * at["g"])
                * math.exp(-lam * (self.s - self.t0))
                if self.killing
                else 0.0
            )
            f_eq = at["f0"] * self.floor_now
            values = {
                "organ": at["organ"], "latent": False, "g": at["g"], "kill_z": at["kill_z"],
                "lam_z": at["lam_z"], "f0": at["f0"], "lesion_id": next_id + k, "new": True,
                "visible": False, "line_seen": 0,
                "logd": math.log(at["seed_mm"]) - at["g"] * x + a * float(phi(lam, x)),
                "fv": f_eq + (at["f0"] - f_eq) * math.exp(self.rate_now * x),
                "a": a, "lam": lam, "f_eq": f_eq, "r": self.rate_now,
            }  # fmt: skip
            for name, v in values.items():
                cols[name].append(v)
        for name, v in cols.items():
            arr = getattr(self, name)
            setattr(self, name, np.concatenate([arr, np.asarray(v, dtype=arr.dtype)]))
        self.n += len(seeds)

    def volumes_grid(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sums of cubed diameters (mm^3; volume = SPHERE_CM3 x) at ``times``: all tumour, and
        its viable part (each lesion's volume times its viable fraction: the viable share of a
        lesion's volume is taken equal to that of its longest diameter)."""
        logd = np.minimum(self.log_diameters_grid(times), 35.0)  # no overflow far ahead
        d3 = np.exp(3.0 * logd)
        return np.add.reduce(d3, axis=0), np.add.reduce(d3 * self.viable_grid(times), axis=0)


#: Per-lesion arrays of :class:`Lesions` (the rest of its attributes are per patient).
_PER_LESION = (
    "organ", "latent", "g", "kill_z", "lam_z", "f0", "lesion_id", "new", "visible", "line_seen",
    "logd", "fv", "a", "lam", "f_eq", "r",
)  # fmt: skip


def volume_cm3(logd: np.ndarray) -> np.ndarray:
    """Total tumour volume (cm^3, spheres) from log diameters of shape (n, ...)."""
    return SPHERE_CM3 * np.add.reduce(np.exp(3.0 * logd), axis=0)


def build_lesions(
    p: TumourParams,
    n_liver: int,
    max_liver_mm: float,
    occupation_pct: float,
    ehm: bool,
    prior_tace: bool,
    growth_factor: float,
    normals: np.ndarray,
    uniforms: np.ndarray,
) -> Lesions:
    """A patient's lesions at the index-line start from baseline covariates.

    ``normals`` (:data:`N_NORMALS`) and ``uniforms`` (:data:`N_UNIFORMS`) come from the patient's
    biology generator in a fixed order, so the number of draws never depends on the patient.
    ``growth_factor`` is the patient-level multiplier of the growth rate.
    """
    z_size, z_g, z_kill, z_lam = normals.reshape(4, SLOTS)
    u_n_ehm = uniforms[0]
    u_sites = uniforms[1 : 1 + MAX_EHM]
    u_enh, u_via = uniforms[1 + MAX_EHM :].reshape(2, SLOTS)

    organ = np.zeros(SLOTS, dtype=np.int8)
    logd = np.full(SLOTS, -np.inf)
    latent = np.zeros(SLOTS, dtype=bool)

    # Intrahepatic lesions: the largest is the baseline's; the others are smaller.
    n_track = min(n_liver, MAX_LIVER_TRACKED)
    sizes = max_liver_mm * np.exp(-np.abs(0.6 * z_size[:MAX_LIVER_TRACKED]) - 0.15)
    sizes[0] = max_liver_mm
    logd[:n_track] = np.log(sizes[:n_track])
    keep = list(range(n_track))

    # Extrahepatic lesions: 1-3 of them in organs drawn from the HCC distribution.
    if ehm:
        n_ehm = 1 + int(u_n_ehm * MAX_EHM)
        lo = MAX_LIVER_TRACKED
        sites = EHM_ORGANS[np.searchsorted(EHM_ORGAN_CDF, u_sites[:n_ehm] * EHM_ORGAN_CDF[-1])]
        organ[lo : lo + n_ehm] = sites
        logd[lo : lo + n_ehm] = math.log(18.0) + 0.45 * z_size[lo : lo + n_ehm]
        keep.extend(range(lo, lo + n_ehm))

    if n_liver > MAX_LIVER_TRACKED:
        # The remaining intrahepatic tumour as one sphere: the volume that the occupation
        # implies beyond the tracked lesions, at least the untracked lesions at 10 mm each.
        occ = min(max(occupation_pct, 0.1), 95.0) / 100.0
        tracked = SPHERE_CM3 * float(np.exp(3.0 * logd[:n_track]).sum())
        floor = SPHERE_CM3 * 1000.0 * (n_liver - MAX_LIVER_TRACKED)
        rest = max(occ / (1.0 - occ) * p.liver_volume_cm3 - tracked, floor)
        logd[-1] = math.log(rest / SPHERE_CM3) / 3.0
        latent[-1] = True
        keep.append(SLOTS - 1)

    idx = np.array(keep, dtype=np.intp)
    lz = Lesions()
    lz.n = len(idx)
    lz.organ = organ[idx]
    lz.latent = latent[idx]
    lz.logd = logd[idx]
    lz.s = lz.t0 = 0.0
    lz.g = p.growth_median_per_day * growth_factor * np.exp(p.growth_lesion_sd_log * z_g[idx])
    lz.kill_z = np.exp(p.kill_lesion_sd_log * z_kill[idx])
    lz.lam_z = np.exp(p.resistance_lesion_sd_log * z_lam[idx])
    lz.lam = np.full(lz.n, LAM_FLOOR)
    lz.a = np.zeros(lz.n)
    lz.killing = False
    lz.kill = lz.resist = lz.di = lz.inhibit = 0.0
    lz.g_patient = p.growth_median_per_day * growth_factor
    lz.recovery = p.viable_recovery_rate_per_day
    lz.floor_now, lz.rate_now = 1.0, lz.recovery
    # Viable (arterially enhancing) fraction; prior TACE leaves some liver lesions without
    # enhancement, which makes them non-evaluable by mRECIST.
    nonenh = (lz.organ == LIVER) & prior_tace & (u_enh[idx] < p.nonenhancing_after_tace)
    low = p.viable_fraction_low
    lz.f0 = np.where(nonenh, 0.0, low + (1.0 - low) * u_via[idx])
    lz.fv = lz.f0.copy()
    lz.f_eq = lz.f0.copy()
    lz.r = np.full(lz.n, lz.recovery)
    lz.lesion_id = np.arange(lz.n, dtype=np.int64)
    lz.new = np.zeros(lz.n, dtype=bool)
    lz.visible = ~lz.latent
    lz.line_seen = np.zeros(lz.n, dtype=np.int64)
    return lz


def select_targets(lz: Lesions, logd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RECIST 1.1 and mRECIST target lesions among visible lesions at a line's baseline.

    Measurable: longest diameter >= 10 mm, lymph nodes >= 15 mm short axis; bone lesions are
    treated as non-measurable. mRECIST chooses intrahepatic targets among enhancing lesions by
    their viable diameter (>= 10 mm); extrahepatic targets as RECIST 1.1 does.
    """
    organ = lz.organ
    d = np.exp(logd)
    f = lz.viable_fractions(lz.s)
    eligible = lz.visible & ~lz.latent
    threshold = np.where(organ == LYMPH_NODE, MEASURABLE_NODE_MM, MEASURABLE_MM)
    measurable = eligible & (organ != BONE) & (d >= threshold)
    viable_d = np.where(organ == LIVER, d * f, d)
    mrecist_ok = np.where(
        organ == LIVER, eligible & (lz.f0 > 0) & (viable_d >= MEASURABLE_MM), measurable
    )
    return _pick(organ, d, measurable), _pick(organ, viable_d, mrecist_ok)


def _pick(organ: np.ndarray, size: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    chosen = np.zeros(len(organ), dtype=bool)
    per_organ = [0] * len(ORGANS)
    n_chosen = 0
    ok = eligible.tolist()
    organs = organ.tolist()
    for i in np.argsort(-np.where(eligible, size, -1.0), kind="stable").tolist():
        if not ok[i] or n_chosen >= MAX_TARGETS:
            break
        if per_organ[organs[i]] < MAX_TARGETS_PER_ORGAN:
            chosen[i] = True
            per_organ[organs[i]] += 1
            n_chosen += 1
    return chosen


def spontaneous(rates: tuple[float, float, float], p: TumourParams) -> tuple[float, float, float]:
    """The rates of a line on which the tumour also regresses on its own (spontaneous
    regression, or a response read into reader variability): the spontaneous kill and its
    waning replace the regimen's when they are stronger; the growth inhibition stays, and then
    wanes at the spontaneous rate (a line has one waning rate)."""
    k, lam, inhibition = rates
    if p.spontaneous_kill_rate_per_day > k:
        k, lam = p.spontaneous_kill_rate_per_day, p.spontaneous_resistance_rate_per_day
    return k, lam, inhibition


def drug_rates(
    drug: DrugParams, sensitivity: float, responder: bool, pace: float = 1.0
) -> tuple[float, float, float]:
    """Patient-level kill rate, resistance rate and growth inhibition of ``drug`` (lesion
    factors apply on top).

    Immunotherapy with a responder mixture: responders get the responder rates, others the
    base rates (for combinations with bevacizumab, its antiangiogenic effect). The growth
    inhibition is the drug's for every patient, scaled by the patient's sensitivity like the
    kill rate (a patient whose tumour the drug barely touches is barely slowed either).
    ``pace`` multiplies the resistance rate: the patient's own pace of escaping the regimen.
    """
    if drug.responder_fraction is not None and responder:
        k, lam = drug.responder_kill_rate_per_day, drug.responder_resistance_rate_per_day
    else:
        k, lam = drug.kill_rate_per_day, drug.resistance_rate_per_day
    return k * sensitivity, lam * pace, min(drug.growth_inhibition * sensitivity, MAX_INHIBITION)
