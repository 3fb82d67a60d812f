"""New lesions and new macrovascular invasion (DESIGN section 3, "Tumour").

Both are Poisson processes whose intensity grows with the viable tumour volume (their rates are
integrated with the death hazard in ``survival.Hazards``). A new lesion is seeded below
detection (``new_lesion_seed_mm``) in the liver (share ``new_lesion_liver_share``) or an
extrahepatic organ (lung first), with the patient's growth rate times a lesion factor and its
own kill and resistance factors, enhancing like a typical HCC nodule; it grows under the
treatment in force and is detected at the first scan that measures it at 10 mm or more. New
vascular invasion switches on the patient's MVI hazard ratio and is read as a new lesion at the
next scan.

All draws come from the patient's progression stream in a fixed order (budgets, then one block
per new lesion), so two arms that treat a patient alike see the same new lesions.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from hccsim.simulator.disease import tumour
from hccsim.simulator.imaging import DETECT_MM
from hccsim.simulator.parameters import TumourParams

#: Draws per new lesion: organ, growth, kill and resistance factors, viable fraction, site.
_BLOCK = 6


def new_lesion(
    p: TumourParams,
    patient_growth: float,
    rng: np.random.Generator,
    growth_shift: float = 0.0,
    seed_mm: float | None = None,
) -> dict:
    """Attributes of one new lesion (``tumour.Lesions.add`` takes them). ``growth_shift`` moves
    the lesion's standard normal growth draw (the occult pool's size bias, below) and
    ``seed_mm`` replaces ``new_lesion_seed_mm`` as its size when it joins."""
    u = rng.random(_BLOCK)
    z = _normal(u[1:4])
    z[0] += growth_shift
    if u[0] < p.new_lesion_liver_share:
        organ = tumour.LIVER
    else:
        organ = int(
            tumour.EHM_ORGANS[
                np.searchsorted(tumour.EHM_ORGAN_CDF, u[5] * tumour.EHM_ORGAN_CDF[-1])
            ]
        )
    low = p.viable_fraction_low
    return {
        "organ": organ,
        "seed_mm": p.new_lesion_seed_mm if seed_mm is None else seed_mm,
        "g": patient_growth * float(np.exp(p.growth_lesion_sd_log * z[0])),
        "kill_z": float(np.exp(p.kill_lesion_sd_log * z[1])),
        "lam_z": float(np.exp(p.resistance_lesion_sd_log * z[2])),
        "f0": low + (1.0 - low) * float(u[4]),
    }


def occult_pool(
    p: TumourParams,
    patient_growth: float,
    seeding_per_day: float,
    room: int,
    rng: np.random.Generator,
) -> list[dict]:
    """The occult lesions a patient carries at the start: seeds the seeding process left in
    the past that are still below detection (``new_lesion_baseline_pool`` of them; at most
    ``room``).

    Run back in time at the baseline intensity ``seeding_per_day`` (the patient's burden as at
    the start, untreated), seeding is a Poisson process with marks: a seed made ``tau`` days
    ago with lesion growth rate ``g`` measures ``s exp(g tau)`` now (``s`` the seed size), so it
    is still occult when ``tau < T(g) = ln(D / s) / g`` (``D`` = 10 mm, detection). The occult
    seeds are then a Poisson process of mean ``seeding_per_day E[T(g)]``, with ``g`` drawn
    with density proportional to ``f(g) / g``. For ``g = g_p exp(sigma z)``, ``z`` standard
    normal, that makes the mean ``seeding_per_day ln(D / s) exp(sigma^2 / 2) / g_p`` and
    shifts ``z`` by ``-sigma``; given ``g``, ``tau`` is uniform on ``(0, T(g))``, so the log
    size now is uniform between ``ln s`` and ``ln D`` whatever ``g``. The past burden and any
    past treatment are not replayed: the pool share stands for both.
    """
    share = p.new_lesion_baseline_pool
    s = p.new_lesion_seed_mm
    if share <= 0.0 or seeding_per_day <= 0.0 or s >= DETECT_MM or room <= 0:
        return []
    sigma = p.growth_lesion_sd_log
    mean = share * seeding_per_day * np.log(DETECT_MM / s) * np.exp(0.5 * sigma**2)
    mean /= patient_growth
    n = min(int(rng.poisson(mean)), room)
    sizes = s * (DETECT_MM / s) ** rng.random(n)
    return [new_lesion(p, patient_growth, rng, -sigma, float(size)) for size in sizes]


def _normal(u: np.ndarray) -> np.ndarray:
    return ndtri(np.clip(u, 1e-12, 1 - 1e-12))
