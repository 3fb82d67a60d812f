"""Alpha-fetoprotein (DESIGN section 3, "AFP").

log AFP follows the viable tumour burden with a patient-level slope::

    log AFP(t) = log AFP(0) + slope_i * (log Vv(t) - log Vv(0))

where ``Vv`` is the total viable (enhancing) tumour volume, ``slope_i`` the population slope
times a log-normal patient factor, plus log-normal visit noise when observed. Serum AFP does
not rise without bound: the level is capped softly at ``max_ng_ml`` (``1 / (1/AFP + 1/max)``),
as the highest levels reported in HCC are about 10^7 ng/mL. Necrosis under
antiangiogenic drugs therefore lowers AFP even when diameters do not shrink, and AFP response
(a fall of at least 20% by weeks 6-8, ``hccsim.analysis.response.afp_response``) follows.
"""

from __future__ import annotations

import numpy as np

from hccsim.simulator.parameters import AfpParams


def true_log_afp(log_afp0: float, slope: float, dlog_viable):
    """Latent log AFP (before the soft cap) given the change of log viable volume since day 0."""
    return log_afp0 + slope * np.asarray(dlog_viable)


def capped(p: AfpParams, afp):
    """The soft ceiling of serum AFP: about ``afp`` when far below ``max_ng_ml``."""
    return 1.0 / (1.0 / np.asarray(afp) + 1.0 / p.max_ng_ml)


def observed_afp(p: AfpParams, log_afp: np.ndarray, z: np.ndarray) -> np.ndarray:
    return capped(p, np.exp(np.minimum(log_afp + p.visit_sd_log * z, 700.0)))
