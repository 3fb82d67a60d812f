"""Baseline covariates at the start of the index line (DESIGN section 3, "Baseline").

A population preset (``data/presets/*.yaml``) gives the marginal distribution of each drawn
covariate and the distribution of the index line. Each patient draws one standard-normal vector
from its own generator (the first draw of its biology); the batch's vectors are turned into
covariates by inverse-CDF transforms of the marginals, vectorised over the batch.

Interim (foundation issue): the normal vector is independent across covariates. The
populations issue replaces the identity correlation by the preset's Gaussian copula, adds
eligibility by re-drawing and prior-line histories; the interface stays.

Derived, never drawn: ALBI, Child-Pugh score and class (``hccsim.analysis.scores``), BCLC stage
by the rule stated in :func:`bclc_stage`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.special import ndtr, ndtri

from hccsim.analysis import scores
from hccsim.simulator.yamlio import parse_yaml_text

#: Drawn covariates, in the order of each patient's normal vector. Never reorder.
COVARIATES = (
    "age",
    "male",
    "weight_kg",
    "ecog",
    "albumin_g_dl",
    "bilirubin_mg_dl",
    "inr",
    "ascites",
    "encephalopathy",
    "intrahepatic_lesions",
    "max_lesion_mm",
    "mvi",
    "ehm",
    "afp_ng_ml",
    "prior_tace",
)
N_DRAWN = len(COVARIATES) + 1  # plus the index line


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Normal(_Strict):
    dist: Literal["normal"]
    mean: float
    sd: float = Field(gt=0)
    low: float = -np.inf
    high: float = np.inf
    source: str


class LogNormal(_Strict):
    dist: Literal["lognormal"]
    median: float = Field(gt=0)
    sd_log: float = Field(gt=0)
    low: float = 0.0
    high: float = np.inf
    source: str


class Bernoulli(_Strict):
    dist: Literal["bernoulli"]
    p: float = Field(ge=0, le=1)
    source: str


class Categorical(_Strict):
    dist: Literal["categorical"]
    weights: dict[int, float]
    source: str

    @model_validator(mode="after")
    def _positive(self) -> Categorical:
        if not self.weights or any(w < 0 for w in self.weights.values()):
            raise ValueError("weights must be non-negative")
        if sum(self.weights.values()) <= 0:
            raise ValueError("weights must not all be zero")
        return self


Marginal = Annotated[Normal | LogNormal | Bernoulli | Categorical, Field(discriminator="dist")]


class IndexLine(_Strict):
    weights: dict[int, float]
    source: str


class Preset(_Strict):
    name: str
    description: str
    source: str
    status: str
    index_line: IndexLine
    marginals: dict[str, Marginal]

    @model_validator(mode="after")
    def _complete(self) -> Preset:
        if sorted(self.marginals) != sorted(COVARIATES):
            missing = sorted(set(COVARIATES) - set(self.marginals))
            extra = sorted(set(self.marginals) - set(COVARIATES))
            raise ValueError(
                f"marginals must be exactly the drawn covariates; missing {missing}, extra {extra}"
            )
        return self


@cache
def presets() -> dict[str, Preset]:
    out = {}
    folder = resources.files("hccsim.simulator.data").joinpath("presets")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            preset = Preset.model_validate(
                parse_yaml_text(entry.read_text("utf-8"), f"data/presets/{entry.name}")
            )
            out[preset.name] = preset
    return out


def preset_names() -> list[str]:
    return sorted(presets())


def override_paths(preset: Preset) -> dict[str, float]:
    """Overridable marginal parameters of a preset as ``{covariate.param: value}``."""
    out = {}
    for cov, m in preset.marginals.items():
        for key, value in m.model_dump().items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[f"{cov}.{key}"] = float(value)
    return out


def apply_overrides(preset: Preset, overrides: Mapping[str, Mapping[str, float]]) -> Preset:
    """A preset with some marginal parameters replaced, re-validated."""
    if not overrides:
        return preset
    data = preset.model_dump()
    for cov, params in overrides.items():
        data["marginals"][cov].update(params)
    return Preset.model_validate(data)


def _inverse_cdf(m: Marginal, u: np.ndarray) -> np.ndarray:
    """Marginal quantiles at ``u`` in (0, 1); truncated continuous marginals by CDF rescaling."""
    if isinstance(m, Normal):
        lo, hi = ndtr((m.low - m.mean) / m.sd), ndtr((m.high - m.mean) / m.sd)
        return m.mean + m.sd * ndtri(lo + u * (hi - lo))
    if isinstance(m, LogNormal):
        mu = np.log(m.median)
        lo = ndtr((np.log(m.low) - mu) / m.sd_log) if m.low > 0 else 0.0
        hi = ndtr((np.log(m.high) - mu) / m.sd_log)
        return np.exp(mu + m.sd_log * ndtri(lo + u * (hi - lo)))
    if isinstance(m, Bernoulli):
        return (u < m.p).astype(np.int64)
    return _categorical(m.weights, u)


def _categorical(weights: Mapping[int, float], u: np.ndarray) -> np.ndarray:
    values = np.array(sorted(weights), dtype=np.int64)
    w = np.array([weights[v] for v in values], dtype=float)
    cdf = np.cumsum(w) / w.sum()
    return values[np.minimum(np.searchsorted(cdf, u, side="right"), len(values) - 1)]


def draw_baseline(preset: Preset, normals: np.ndarray, first_line: bool) -> dict[str, np.ndarray]:
    """Covariates of a batch from its ``(n, N_DRAWN)`` standard-normal matrix."""
    u = ndtr(normals)
    out: dict[str, np.ndarray] = {}
    for j, cov in enumerate(COVARIATES):
        out[cov] = _inverse_cdf(preset.marginals[cov], u[:, j])
    if first_line:
        out["index_line"] = np.ones(len(u), dtype=np.int64)
    else:
        out["index_line"] = _categorical(preset.index_line.weights, u[:, len(COVARIATES)])
    out.update(derived_scores(out))
    return out


def derived_scores(b: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    albi = scores.albi(b["albumin_g_dl"], b["bilirubin_mg_dl"])
    cp = scores.child_pugh_score(
        b["albumin_g_dl"], b["bilirubin_mg_dl"], b["inr"], b["ascites"], b["encephalopathy"]
    )
    return {
        "albi": albi,
        "albi_grade": scores.albi_grade(albi),
        "child_pugh_score": cp,
        "child_pugh_class": scores.child_pugh_class(cp),
        "bclc": bclc_stage(
            b["intrahepatic_lesions"], b["max_lesion_mm"], b["mvi"], b["ehm"], b["ecog"], cp
        ),
    }


def bclc_stage(n_lesions, max_mm, mvi, ehm, ecog, child_pugh):
    """BCLC stage by the rule used throughout hccsim.

    D: Child-Pugh C (score >= 10) or ECOG >= 3. C: macrovascular invasion or extrahepatic
    metastasis (the anchor study's 21/37 stage C fits this rule with correlated MVI and EHM;
    ECOG 1-2 alone does not make stage C here, as in that study). A: a single lesion, or up to
    three lesions none above 30 mm. B: otherwise (multinodular, liver-confined).
    """
    n = np.asarray(n_lesions)
    big = np.asarray(max_mm, dtype=float)
    single_or_small = (n <= 1) | ((n <= 3) & (big <= 30.0))
    return np.where(
        (np.asarray(child_pugh) >= 10) | (np.asarray(ecog) >= 3),
        "D",
        np.where(
            (np.asarray(mvi) > 0) | (np.asarray(ehm) > 0),
            "C",
            np.where(single_or_small, "A", "B"),
        ),
    )
