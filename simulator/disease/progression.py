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
from hccsim.simulator.parameters import TumourParams

#: Draws per new lesion: organ, growth, kill and resistance factors, viable fraction, site.
_BLOCK = 6


def new_lesion(p: TumourParams, patient_growth: float, rng: np.random.Generator) -> dict:
    """Attributes of one new lesion (``tumour.Lesions.add`` takes them)."""
    u = rng.random(_BLOCK)
    z = _normal(u[1:4])
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
        "seed_mm": p.new_lesion_seed_mm,
        "g": patient_growth * float(np.exp(p.growth_lesion_sd_log * z[0])),
        "kill_z": float(np.exp(p.kill_lesion_sd_log * z[1])),
        "lam_z": float(np.exp(p.resistance_lesion_sd_log * z[2])),
        "f0": low + (1.0 - low) * float(u[4]),
    }


def _normal(u: np.ndarray) -> np.ndarray:
    return ndtri(np.clip(u, 1e-12, 1 - 1e-12))
