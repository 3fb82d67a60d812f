"""Whether a patient gets another line after one ends, which regimen, and after what gap.

The scenario gives the treatment sequence from the index line on. When a line ends for any
reason but death, a patient past the clinical-deterioration limits of the policy (ECOG PS, or
ascites or encephalopathy of the stopping grade; checked in ``patient.py``) gets no further
line; any other patient receives the next regimen of the sequence with probability

    logit p = intercept + per_line (line - 1) + per_ecog ECOG + per_albi (ALBI - ref)
              + decompensated (ascites or encephalopathy)

(ECOG, ALBI and decompensation as they are at that time)

after a log-normal gap; otherwise, or when the sequence is exhausted or reaches best supportive
care, the patient goes on without systemic therapy. A regimen whose label restrictions the
patient does not meet (AFP below ramucirumab's 400 ng/mL, no prior sorafenib for regorafenib or
cabozantinib) is skipped in favour of the next one in the sequence. Prior-drug restrictions
can only be checked when the whole history is simulated (a first-line cohort); for an index-line
cohort the lines before the index line are not simulated yet (the populations issue draws them),
so those restrictions are taken as met.

Immunotherapy may continue beyond a first radiological progression (the regimen's
``beyond_progression`` probability; the next progression ends the line): see ``patient.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hccsim.simulator.parameters import DrugParams, PolicyParams


@dataclass(frozen=True, slots=True)
class NextLine:
    position: int  # index in the sequence
    drug: DrugParams
    gap_days: float


class LinePolicy:
    def __init__(
        self, p: PolicyParams, sequence: Sequence[DrugParams], label_restrictions: bool = True
    ) -> None:
        self.p = p
        self.sequence = tuple(sequence)
        self.label_restrictions = label_restrictions

    def allowed(self, drug: DrugParams, afp: float, received: Sequence[str] | None) -> bool:
        """Whether the label restrictions of ``drug`` are met (``received`` None: unknown;
        always, when the scenario allows off-label use)."""
        if not self.label_restrictions:
            return True
        if drug.afp_min is not None and afp < drug.afp_min:
            return False
        return received is None or all(prior in received for prior in drug.requires_prior)

    def first_active(self, start: int, afp: float, received: Sequence[str] | None) -> int | None:
        """Position of the first regimen from ``start`` on that the patient may receive."""
        for pos in range(start, len(self.sequence)):
            drug = self.sequence[pos]
            if not drug.active:
                return None
            if self.allowed(drug, afp, received):
                return pos
        return None

    def after_line(
        self,
        position: int,
        line: int,
        ecog: float,
        albi: float,
        decompensated: bool,
        afp: float,
        received: Sequence[str] | None,
        rng: np.random.Generator,
    ) -> NextLine | None:
        """The next line after the line at sequence ``position`` (number ``line``) ended, given
        the patient's ECOG, latent ALBI, decompensation and AFP at that time."""
        u_fit, z_gap = rng.random(), rng.standard_normal()
        nxt = self.first_active(position + 1, afp, received)
        if nxt is None:
            return None
        p = self.p
        logit = (
            p.next_line_logit_intercept
            + p.next_line_logit_per_line * (line - 1)
            + p.next_line_logit_per_ecog * ecog
            + p.next_line_logit_per_albi * (albi - p.albi_reference)
            + p.next_line_logit_decompensated * decompensated
        )
        if u_fit >= 1.0 / (1.0 + math.exp(-logit)):
            return None
        gap = p.gap_median_days * math.exp(p.gap_sd_log * z_gap)
        return NextLine(nxt, self.sequence[nxt], gap)
