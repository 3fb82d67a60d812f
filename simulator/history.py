"""Prior-line histories of index-line cohorts (DESIGN section 3, "Cohorts").

A patient of an index-line cohort arrives at the index line after the regimens of one of the
preset's treatment streams (chosen with the baseline, so eligibility on prior drugs can use it).
The prior lines are placed before day 0, backwards from the index start: each lasted a
log-normal time around the regimen's typical duration in its pivotal setting (catalogue
``typical_duration``; spread ``DURATION_SD_LOG``) and was followed by the policy's gap before
the next line. Lines are numbered from 1 (first line); their days are negative.

Prior lines record their regimen, start and end and the cycles that fit in them; they ended by
progression (the presets give no reasons) and their dose changes are not simulated (0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from hccsim.simulator.parameters import DrugParams, PolicyParams

#: Longest prior sequence a preset may give (fixed: it sets the number of draws).
MAX_PRIOR = 8
#: Log-normal spread of prior-line durations around the typical duration.
DURATION_SD_LOG = 0.6


def prior_lines(
    prior: Sequence[str], drugs: Mapping[str, DrugParams], policy: PolicyParams, normals: np.ndarray
) -> list[tuple[int, str, float, float, int]]:
    """``(line, drug, start_day, end_day, cycles)`` of the prior lines, first line first.

    ``normals`` holds ``2 * MAX_PRIOR`` standard normals from the patient's biology stream.
    """
    if len(prior) > MAX_PRIOR:
        raise ValueError(f"at most {MAX_PRIOR} prior lines are supported")
    out = []
    end = 0.0
    for k in range(len(prior) - 1, -1, -1):  # backwards from the index start
        drug = drugs[prior[k]]
        gap = policy.gap_median_days * math.exp(policy.gap_sd_log * float(normals[2 * k]))
        duration = max(1.0, drug.typical_duration_days) * math.exp(
            DURATION_SD_LOG * float(normals[2 * k + 1])
        )
        end -= gap
        start = end - duration
        cycles = max(1, math.ceil(duration / drug.cycle_days))
        out.append((k + 1, drug.name, start, end, cycles))
        end = start
    return out[::-1]
