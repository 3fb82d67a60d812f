"""Laboratory values (DESIGN section 3, "Liver function"): albumin, bilirubin, INR, AST, ALT,
platelets, haemoglobin, ammonia and urine protein, as closed forms between state changes.

Each analyte ``j`` has a latent value ``y_j`` (the value itself for albumin and haemoglobin,
its logarithm for the others)::

    y_j(t) = y_j0 + D_j(t) + gamma_j (log V(t) - log V0)

- ``y_j0`` is the patient's baseline (albumin, bilirubin, INR from the population preset; the
  others drawn per patient around typical values for advanced HCC, cirrhosis lowering
  platelets);
- ``D_j`` is the drug effect: each regimen moves analyte ``j`` at ``beta_dj`` per month at full
  dose (catalogue ``lab_effects``), scaled by the patient's susceptibility for that analyte
  (log-normal), through a leaky exposure that washes out at ``omega_j`` per day after the drug
  stops: ``dD/dt = K - omega D`` with ``K = beta s DI`` on drug, 0 off drug, so between state
  changes ``D(t) = D(s) e^(-omega x) + K/omega (1 - e^(-omega x))`` (sorafenib and lenvatinib
  worsen albumin and bilirubin over months, ramucirumab raises urine protein, ...);
- ``gamma_j`` couples the analyte to the tumour burden (albumin falls, bilirubin, AST and ALT
  rise as the tumour grows).

Observed values at a lab visit add visit noise (normal for albumin and haemoglobin, log-normal
for the others) from a noise matrix drawn once per patient on the lab grid (visit ``k`` always
gets row ``k``), so the values that trigger a dose rule during the simulation are the values in
the ``labs`` table. ALBI and Child-Pugh are computed from these by their formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hccsim.analysis import ctcae
from hccsim.analysis.scores import ALBUMIN_G_DL_TO_G_L, BILIRUBIN_MG_DL_TO_UMOL_L

#: Analytes in their fixed order (the labs table's columns, AFP apart).
ANALYTES = (
    "albumin_g_dl", "bilirubin_mg_dl", "inr", "ast_u_l", "alt_u_l", "platelets_10e9_l",
    "haemoglobin_g_dl", "ammonia_umol_l", "urine_protein_g_24h",
)  # fmt: skip
ALB, BIL, INR, AST, ALT, PLT, HB, NH3, UPROT = range(len(ANALYTES))
#: Analytes modelled on their own scale (the rest on the log scale).
LINEAR = np.array([True, False, False, False, False, False, True, False, False])
N = len(ANALYTES)
#: Upper limits of normal used by dose rules given in ULN multiples: those of the CTCAE grading
#: (``hccsim.analysis.ctcae``) where it has one, typical adult values otherwise.
ULN = np.array([
    5.2, ctcae.BILIRUBIN_ULN_MG_DL, 1.2, ctcae.AST_ULN_U_L, ctcae.ALT_ULN_U_L, 400.0, 17.0,
    ctcae.AMMONIA_ULN_UMOL_L, ctcae.URINE_PROTEIN_ULN_G_24H,
])  # fmt: skip
#: Physiological bounds of observed values (clip), per analyte.
LOW = np.array([1.0, 0.1, 0.8, 5.0, 5.0, 5.0, 4.0, 5.0, 0.01])
HIGH = np.array([6.0, 50.0, 10.0, 5000.0, 5000.0, 1000.0, 20.0, 500.0, 20.0])


@dataclass(frozen=True, slots=True)
class LabParams:
    """Per-analyte model constants (arrays in :data:`ANALYTES` order)."""

    washout_per_day: np.ndarray
    burden: np.ndarray  # per unit of log tumour volume
    visit_sd: np.ndarray  # normal SD (linear analytes) or log-scale SD
    susceptibility_sd_log: np.ndarray
    baseline_median: np.ndarray  # analytes drawn per patient (AST ... urine protein)
    baseline_sd_log: np.ndarray


class LabState:
    """One patient's latent labs: baseline, susceptibilities and the current segment."""

    __slots__ = ("c", "gamma", "k", "log_v0", "omega", "s", "sus", "y0")

    def __init__(self, y0: np.ndarray, sus: np.ndarray, p: LabParams, log_v0: float) -> None:
        self.y0 = y0
        self.sus = sus
        self.omega = p.washout_per_day
        self.gamma = p.burden
        self.log_v0 = log_v0
        self.c = np.zeros(N)
        self.k = np.zeros(N)
        self.s = 0.0

    def drug_term(self, times: np.ndarray) -> np.ndarray:
        """``(N, len(times))`` drug effects at ``times`` within the current segment."""
        x = np.asarray(times, dtype=float)[None, :] - self.s
        decay = np.exp(-self.omega[:, None] * x)
        return self.c[:, None] * decay + (self.k / self.omega)[:, None] * (1.0 - decay)

    def latent(self, times: np.ndarray, log_v: np.ndarray, rows=slice(None)) -> np.ndarray:
        """Latent values (see the module docstring) of the analytes ``rows`` at ``times``."""
        x = np.asarray(times, dtype=float)[None, :] - self.s
        omega = self.omega[rows, None]
        decay = np.exp(-omega * x)
        drug = self.c[rows, None] * decay + (self.k[rows, None] / omega) * (1.0 - decay)
        return (
            self.y0[rows, None]
            + drug
            + self.gamma[rows, None] * (np.asarray(log_v)[None, :] - self.log_v0)
        )

    def set_segment(self, t: float, effects: np.ndarray | None, di: float) -> None:
        """A state change at ``t``: carry the drug term on, then apply the regimen in force
        (``effects``: its per-day effects per analyte at full dose, None off drug)."""
        self.c = self.drug_term(np.array([t]))[:, 0]
        self.s = t
        self.k = np.zeros(N) if effects is None or di <= 0.0 else effects * self.sus * di

    def snapshot(self) -> tuple:
        return (self.s, self.c.copy(), self.k.copy())


def latent_at(
    state: LabState, segments: list[tuple], days: np.ndarray, log_v: np.ndarray
) -> np.ndarray:
    """``(N, len(days))`` latent values at past ``days`` from recorded segment snapshots."""
    starts = np.array([seg[0] for seg in segments])
    which = np.searchsorted(starts, days, side="right") - 1
    out = np.empty((N, len(days)))
    for k in np.unique(which).tolist():
        s, c, kk = segments[k]
        sel = which == k
        x = days[sel][None, :] - s
        decay = np.exp(-state.omega[:, None] * x)
        drug = c[:, None] * decay + (kk / state.omega)[:, None] * (1.0 - decay)
        out[:, sel] = (
            state.y0[:, None] + drug + state.gamma[:, None] * (log_v[sel][None, :] - state.log_v0)
        )
    return out


def observe(latent: np.ndarray, noise: np.ndarray, p: LabParams) -> np.ndarray:
    """Observed values ``(len, N)`` from latent ``(N, len)`` and standard normals ``(len, N)``."""
    y = latent.T + p.visit_sd * noise
    values = np.where(LINEAR, y, np.exp(np.minimum(y, 50.0)))
    return np.clip(values, LOW, HIGH)


def true_values(latent: np.ndarray) -> np.ndarray:
    """Latent values on the analytes' own scales, ``(N, len)``."""
    return np.where(LINEAR[:, None], latent, np.exp(np.minimum(latent, 50.0)))


def latent_albi(albumin, log_bilirubin):
    """ALBI from latent albumin (g/dL) and log bilirubin (mg/dL): the formula of
    :func:`hccsim.analysis.scores.albi` written on the log scale (no exp and log10 round trip)."""
    return _ALBI_LOG_SLOPE * (log_bilirubin + _LOG_BILI_UNIT) - _ALBI_ALB_SLOPE * albumin


_ALBI_LOG_SLOPE = 0.66 / math.log(10.0)
_LOG_BILI_UNIT = math.log(BILIRUBIN_MG_DL_TO_UMOL_L)
_ALBI_ALB_SLOPE = 0.085 * ALBUMIN_G_DL_TO_G_L


def baseline(b: dict, p: LabParams, z: np.ndarray) -> np.ndarray:
    """A patient's baseline latent values from the preset's liver values and ``z`` (normals,
    one per analyte drawn here: AST, ALT, platelets, haemoglobin, ammonia, urine protein).
    Cirrhosis lowers platelets (portal hypertension, hypersplenism) by a third."""
    y0 = np.log(p.baseline_median) + p.baseline_sd_log * z
    y0[ALB] = b["albumin_g_dl"]
    y0[BIL] = math.log(b["bilirubin_mg_dl"])
    y0[INR] = math.log(b["inr"])
    if b.get("cirrhosis"):
        y0[PLT] += math.log(2.0 / 3.0)
    y0[HB] = p.baseline_median[HB] * math.exp(p.baseline_sd_log[HB] * z[HB])
    return y0
