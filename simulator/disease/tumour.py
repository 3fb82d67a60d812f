"""Lesions and their growth under treatment (DESIGN section 3, "Tumour").

Between state changes each lesion's diameter follows the growth-inhibition law with resistance
that accrues from the start of the line ``t0``::

    log d(t) = log d(s) + g (t - s) - DI (k / lam) (exp(-lam (s - t0)) - exp(-lam (t - t0)))

written as ``log d(s) + g (t - s) - a * phi(lam, t - s)`` with ``a = DI k exp(-lam (s - t0))``
fixed for the segment and ``phi(lam, x) = -expm1(-lam x) / lam``, which is exact as
``lam -> 0`` (``phi -> x``; rates are floored at ``LAM_FLOOR`` where phi equals x to rounding). ``s`` is the last state change: a line start or end, a hold,
a resumption, a dose reduction.

Each patient has up to :data:`MAX_TRACKED` individually tracked lesions (intrahepatic lesions
first, then extrahepatic ones) plus one latent non-target burden that stands for the remaining
intrahepatic lesions: their summed volume, carried as one sphere of the same volume, which is
exact for lesions that share growth and kill rates. Target lesions (at most 5, at most 2 per
organ) are chosen by RECIST 1.1 rules from the measurable lesions.

Interim (foundation issue): the viable fraction of a lesion is fixed at baseline and new lesions
are not seeded; the tumour issue adds drug-driven necrosis, new lesions, vascular invasion and
the pattern of progression behind the same interface.
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
MAX_TRACKED = MAX_LIVER_TRACKED + MAX_EHM
#: Array slots per patient: the tracked lesions plus the latent burden (always the last slot).
SLOTS = MAX_TRACKED + 1
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


def phi(lam, x):
    """``-expm1(-lam x) / lam`` for ``lam >= LAM_FLOOR`` (its limit ``x`` as ``lam -> 0``)."""
    return -np.expm1(-lam * x) / lam


class Lesions:
    """One patient's lesions: static attributes and the current segment of the growth law.

    Arrays hold the patient's lesions only: tracked lesions first (intrahepatic, then
    extrahepatic), then the latent burden when there is one (``latent`` marks it).
    """

    __slots__ = (
        "a",
        "enhancing",
        "g",
        "kill_z",
        "killing",
        "lam",
        "lam_z",
        "latent",
        "logd",
        "mrecist_target",
        "n",
        "organ",
        "recist_target",
        "s",
        "t0",
        "viable",
    )

    # -- the closed form -------------------------------------------------------------------
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

    def set_segment(self, t: float, kill, lam, di: float, t0: float) -> None:
        """Start a new segment at ``t``: carry the diameters to ``t``, then apply the new state.

        ``kill`` and ``lam`` are per-lesion rates of the drug in force (0 off drug), ``di`` the
        dose intensity (0 during a hold), ``t0`` the start of the line (resistance accrues from
        it, whatever happened since).
        """
        self.logd = self.log_diameters(t)
        self.s = t
        self.t0 = t0
        self.lam = np.maximum(lam, LAM_FLOOR) * np.ones(self.n)
        self.a = (di * np.asarray(kill, dtype=float)) * np.exp(-self.lam * (t - t0))
        self.killing = bool(di > 0.0) and bool(np.any(self.a))


def volume_cm3(logd: np.ndarray) -> np.ndarray:
    """Total tumour volume (cm^3, spheres) from log diameters of shape (n, ...)."""
    return SPHERE_CM3 * np.add.reduce(np.exp(3.0 * logd), axis=0)


def build_lesions(
    p: TumourParams,
    n_liver: int,
    max_liver_mm: float,
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
        # The remaining lesions, about a third the size of the largest, as one sphere of their
        # summed volume (exact for lesions that share growth and kill rates).
        n_rest = n_liver - MAX_LIVER_TRACKED
        rest_d = max_liver_mm * 0.35 * math.exp(0.3 * float(z_size[-1]))
        logd[-1] = math.log(rest_d) + math.log(n_rest) / 3.0
        latent[-1] = True
        keep.append(SLOTS - 1)

    idx = np.array(keep, dtype=np.intp)
    lz = Lesions()
    lz.n = len(idx)
    lz.organ = organ[idx]
    lz.latent = latent[idx]
    lz.logd = logd[idx]
    lz.s = 0.0
    lz.t0 = 0.0
    lz.g = p.growth_median_per_day * growth_factor * np.exp(p.growth_lesion_sd_log * z_g[idx])
    lz.kill_z = np.exp(p.kill_lesion_sd_log * z_kill[idx])
    lz.lam_z = np.exp(p.resistance_lesion_sd_log * z_lam[idx])
    lz.lam = np.full(lz.n, LAM_FLOOR)
    lz.a = np.zeros(lz.n)
    lz.killing = False

    # Viable (arterially enhancing) fraction; prior TACE leaves some liver lesions without
    # enhancement, which makes them non-evaluable by mRECIST.
    nonenh = (lz.organ == LIVER) & prior_tace & (u_enh[idx] < p.nonenhancing_after_tace)
    lz.enhancing = ~nonenh
    low = p.viable_fraction_low
    lz.viable = np.where(lz.enhancing, low + (1.0 - low) * u_via[idx], 0.0)
    lz.recist_target, lz.mrecist_target = select_targets(
        lz.organ, lz.logd, ~lz.latent, lz.enhancing, lz.viable
    )
    return lz


def select_targets(organ, logd, tracked, enhancing, viable) -> tuple[np.ndarray, np.ndarray]:
    """RECIST 1.1 and mRECIST target lesions: largest measurable first, <= 5, <= 2 per organ.

    Measurable: longest diameter >= 10 mm, lymph nodes >= 15 mm; bone lesions are treated as
    non-measurable. mRECIST chooses intrahepatic targets among enhancing lesions by their viable
    diameter (>= 10 mm); extrahepatic targets as RECIST 1.1 does.
    """
    d = np.exp(logd)
    threshold = np.where(organ == LYMPH_NODE, MEASURABLE_NODE_MM, MEASURABLE_MM)
    measurable = tracked & (organ != BONE) & (d >= threshold)
    viable_d = np.where(organ == LIVER, d * viable, d)
    mrecist_ok = np.where(
        organ == LIVER, tracked & enhancing & (viable_d >= MEASURABLE_MM), measurable
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


def drug_rates(
    drug: DrugParams, lesions: Lesions, sensitivity: float, responder: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot kill and resistance rates of ``drug`` for this patient.

    Immunotherapy with a responder mixture: responders get the responder rates, others the
    base rates (for combinations with bevacizumab, its antiangiogenic effect).
    """
    if drug.responder_fraction is not None and responder:
        k, lam = drug.responder_kill_rate_per_day, drug.responder_resistance_rate_per_day
    else:
        k, lam = drug.kill_rate_per_day, drug.resistance_rate_per_day
    return k * sensitivity * lesions.kill_z, lam * lesions.lam_z
