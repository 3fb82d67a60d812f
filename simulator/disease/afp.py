"""Alpha-fetoprotein (DESIGN section 3, "AFP").

log AFP follows the tumour burden: ``log AFP(t) = log AFP(0) + slope * (log V(t) - log V(0))``
with a patient's baseline AFP and the burden slope, plus log-normal visit noise when observed.

Interim (foundation issue): total volume stands in for the viable burden and the slope is the
same for every patient; the tumour issue adds the viable burden and a patient-level slope, from
which AFP response (a fall of at least 20% by weeks 6-8) emerges.
"""

from __future__ import annotations

import numpy as np

from hccsim.simulator.parameters import AfpParams


def true_log_afp(p: AfpParams, log_afp0: float, log_v0: float, log_v: np.ndarray | float):
    return log_afp0 + p.burden_slope * (np.asarray(log_v) - log_v0)


def observed_afp(p: AfpParams, log_afp: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.exp(log_afp + p.visit_sd_log * z)
