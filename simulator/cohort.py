"""Baseline covariates at the start of the index line (DESIGN section 3, "Baseline", "Cohorts").

A population preset (``data/presets/*.yaml``) gives the marginal distribution of every drawn
covariate, the latent correlations of a Gaussian copula between them, the preset's own
eligibility, and how patients reached the index line (prior treatment streams). Each patient
draws standard-normal vectors from its own generator: a candidate is one vector, correlated by
the copula's Cholesky factor, turned into covariates by the marginals' inverse CDFs
(vectorised over a batch), and re-drawn while it fails the eligibility criteria (the preset's
and the scenario's), up to a cap.

Derived, never drawn: ALBI and its grades, Child-Pugh score and class
(``hccsim.analysis.scores``), BCLC stage by the preset's stated rule (:func:`bclc_stage`).
Marginals and shares in a preset describe the population *after* its own eligibility.
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

#: Drawn covariates, in the order of each candidate's normal vector. Never reorder: a patient's
#: baseline depends on it. A candidate has one more normal: the prior-stream (index-line) draw.
COVARIATES = (
    "age", "male", "weight_kg",
    "hbv", "hbv_dna_suppressed", "hcv", "hcv_svr", "alcohol", "nash",
    "smoking", "hypertension", "diabetes", "hyperlipidemia", "cirrhosis",
    "ecog", "albumin_g_dl", "bilirubin_mg_dl", "inr", "ascites", "encephalopathy",
    "intrahepatic_lesions", "max_lesion_mm", "occupation_pct", "mvi", "ehm", "afp_ng_ml",
    "prior_resection", "prior_ablation", "prior_tace", "differentiation",
)  # fmt: skip
N_COV = len(COVARIATES)
N_DRAWN = N_COV + 1
#: Candidates drawn per patient at a time while re-drawing for eligibility, and the cap.
CANDIDATE_BLOCK = 4
MAX_TRIES = 1000
BCLC_RULES = ("standard", "mvi_or_ehm")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Normal(_Strict):
    dist: Literal["normal"]
    mean: float
    sd: float = Field(gt=0)
    low: float = -np.inf
    high: float = np.inf
    source: str

    @model_validator(mode="after")
    def _range(self) -> Normal:
        if not self.low < self.high:
            raise ValueError("low must be below high")
        return self


class LogNormal(_Strict):
    dist: Literal["lognormal"]
    median: float = Field(gt=0)
    sd_log: float = Field(gt=0)
    low: float = Field(0.0, ge=0)
    high: float = np.inf
    source: str

    @model_validator(mode="after")
    def _range(self) -> LogNormal:
        if not self.low < self.high:
            raise ValueError("low must be below high")
        return self


class Bernoulli(_Strict):
    """A yes/no covariate; with ``given``, drawn only where that covariate is yes (and the
    probability is conditional on it): for example SVR among HCV patients."""

    dist: Literal["bernoulli"]
    p: float = Field(ge=0, le=1)
    given: str | None = None
    source: str


class Categorical(_Strict):
    dist: Literal["categorical"]
    weights: dict[int | str, float]
    source: str

    @model_validator(mode="after")
    def _positive(self) -> Categorical:
        if not self.weights or any(w < 0 for w in self.weights.values()):
            raise ValueError("weights must be non-negative")
        if sum(self.weights.values()) <= 0:
            raise ValueError("weights must not all be zero")
        if len({type(k) for k in self.weights}) > 1:
            raise ValueError("categories must be all numbers or all texts")
        return self


Marginal = Annotated[Normal | LogNormal | Bernoulli | Categorical, Field(discriminator="dist")]


class Stream(_Strict):
    prior: tuple[str, ...]
    weight: float = Field(gt=0)


class PriorLines(_Strict):
    """How patients reached the index line: prior regimen sequences with their weights."""

    streams: tuple[Stream, ...] = Field(min_length=1)
    source: str


class Correlations(_Strict):
    """Latent (normal-scale) correlations: the shared default set, then this preset's pairs."""

    use: Literal["default", "none"] = "default"
    pairs: tuple[tuple[str, str, float], ...] = ()
    source: str = ""


class Criteria(_Strict):
    """Eligibility criteria (the same fields for a preset and for a scenario)."""

    afp_min: float | None = Field(None, ge=0)
    afp_max: float | None = Field(None, gt=0)
    child_pugh_classes: tuple[Literal["A", "B", "C"], ...] | None = None
    child_pugh_max_score: int | None = Field(None, ge=5, le=15)
    ecog_max: int | None = Field(None, ge=0, le=4)
    bclc: tuple[Literal["0", "A", "B", "C", "D"], ...] | None = None
    index_lines: tuple[int, ...] | None = None
    prior_drugs_any: tuple[str, ...] | None = None
    prior_drugs_none: tuple[str, ...] | None = None
    occupation_max_pct: float | None = Field(None, gt=0, le=100)
    measurable_disease: bool = False

    def merged(self, other: Criteria | None) -> Criteria:
        """Both sets of criteria at once (every criterion of either must hold)."""
        if other is None:
            return self
        mine, theirs = self.model_dump(), other.model_dump()
        out = {}
        for key, a in mine.items():
            b = theirs[key]
            if a is None or a is False:
                out[key] = b
            elif b is None or b is False:
                out[key] = a
            elif key in ("afp_min",):
                out[key] = max(a, b)
            elif key in ("afp_max", "child_pugh_max_score", "ecog_max", "occupation_max_pct"):
                out[key] = min(a, b)
            elif key == "measurable_disease":
                out[key] = True
            elif key == "prior_drugs_none":
                out[key] = tuple(sorted(set(a) | set(b)))
            else:  # allowed sets: both must allow
                out[key] = tuple(x for x in a if x in b)
        return Criteria.model_validate(out)


class Preset(_Strict):
    name: str
    description: str
    source: str
    bclc_rule: Literal["standard", "mvi_or_ehm"]
    index_line: dict[int, float] | None = None
    prior_lines: PriorLines | None = None
    marginals: dict[str, Marginal]
    correlations: Correlations
    eligibility: Criteria = Criteria()
    notes: str = ""

    @model_validator(mode="after")
    def _complete(self) -> Preset:
        if sorted(self.marginals) != sorted(COVARIATES):
            missing = sorted(set(COVARIATES) - set(self.marginals))
            extra = sorted(set(self.marginals) - set(COVARIATES))
            raise ValueError(
                f"marginals must be exactly the drawn covariates; missing {missing}, extra {extra}"
            )
        if (self.index_line is None) == (self.prior_lines is None):
            raise ValueError("give exactly one of index_line (weights) and prior_lines (streams)")
        for cov, m in self.marginals.items():
            if isinstance(m, Bernoulli) and m.given is not None:
                parent = self.marginals.get(m.given)
                if not isinstance(parent, Bernoulli) or parent.given is not None:
                    raise ValueError(f"{cov}: given must name an unconditional yes/no covariate")
        correlation_matrix(self)  # must be a valid correlation matrix
        return self

    def index_lines(self) -> list[int]:
        if self.prior_lines is not None:
            return sorted({len(s.prior) + 1 for s in self.prior_lines.streams})
        return sorted(self.index_line)


# -- loading -----------------------------------------------------------------------------------
def _data(name: str) -> str:
    return resources.files("hccsim.simulator.data").joinpath(name).read_text("utf-8")


@cache
def default_correlations() -> tuple[tuple[str, str, float], ...]:
    data = parse_yaml_text(_data("correlations.yaml"), "data/correlations.yaml")
    return tuple((a, b, float(r)) for a, b, r, *_ in data["pairs"])


@cache
def presets() -> dict[str, Preset]:
    out = {}
    folder = resources.files("hccsim.simulator.data").joinpath("presets")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            source = f"data/presets/{entry.name}"
            preset = Preset.model_validate(parse_yaml_text(entry.read_text("utf-8"), source))
            if preset.name != entry.name.removesuffix(".yaml"):
                raise ValueError(f"{source}: name {preset.name!r} does not match the file name")
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


# -- the copula --------------------------------------------------------------------------------
@cache
def _matrix(pairs: tuple[tuple[str, str, float], ...]) -> np.ndarray:
    index = {c: i for i, c in enumerate(COVARIATES)}
    r = np.eye(N_COV)
    for a, b, rho in pairs:
        if a not in index or b not in index or a == b:
            raise ValueError(f"correlation pair ({a}, {b}): expected two different covariates")
        if not -1 < rho < 1:
            raise ValueError(f"correlation pair ({a}, {b}): {rho} is not in (-1, 1)")
        r[index[a], index[b]] = r[index[b], index[a]] = rho
    eigen = np.linalg.eigvalsh(r)
    if eigen.min() <= 1e-6:
        raise ValueError(
            f"the correlations do not form a valid correlation matrix (smallest eigenvalue "
            f"{eigen.min():.3g}); weaken some pairs"
        )
    return r


def _pairs(preset: Preset) -> tuple[tuple[str, str, float], ...]:
    merged: dict[frozenset, tuple[str, str, float]] = {}
    if preset.correlations.use == "default":
        for a, b, r in default_correlations():
            merged[frozenset((a, b))] = (a, b, r)
    for a, b, r in preset.correlations.pairs:
        merged[frozenset((a, b))] = (a, b, r)
    return tuple(sorted(merged.values()))


def correlation_matrix(preset: Preset) -> np.ndarray:
    """The latent correlation matrix: the default pairs (if used), then the preset's own."""
    return _matrix(_pairs(preset))


@cache
def _cholesky(pairs: tuple[tuple[str, str, float], ...]) -> np.ndarray:
    return np.linalg.cholesky(_matrix(pairs))


def cholesky(preset: Preset) -> np.ndarray:
    return _cholesky(_pairs(preset))


# -- marginals ---------------------------------------------------------------------------------
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
        return u > 1.0 - m.p  # a high latent value means yes, so correlations keep their sign
    return categorical(m.weights, u)


def categorical(weights: Mapping, u: np.ndarray) -> np.ndarray:
    keys = list(weights)
    numeric = isinstance(keys[0], int)
    values = np.array(sorted(keys) if numeric else keys, dtype=np.int64 if numeric else object)
    w = np.array([weights[v] for v in values], dtype=float)
    cdf = np.cumsum(w) / w.sum()
    return values[np.minimum(np.searchsorted(cdf, u, side="right"), len(values) - 1)]


def draw_candidates(preset: Preset, normals: np.ndarray, first_line: bool) -> dict[str, np.ndarray]:
    """Covariates of candidates from their ``(m, N_DRAWN)`` independent standard normals."""
    z = normals[:, :N_COV] @ cholesky(preset).T
    u = ndtr(z)
    out: dict[str, np.ndarray] = {}
    for j, cov in enumerate(COVARIATES):
        m = preset.marginals[cov]
        if not (isinstance(m, Bernoulli) and m.given):
            out[cov] = _inverse_cdf(m, u[:, j])
    for j, cov in enumerate(COVARIATES):
        m = preset.marginals[cov]
        if isinstance(m, Bernoulli) and m.given:
            out[cov] = out[m.given] & (u[:, j] > 1.0 - m.p)
    out["intrahepatic_lesions"] = out["intrahepatic_lesions"].astype(np.int64)
    for cov in ("ecog", "ascites", "encephalopathy"):
        out[cov] = out[cov].astype(np.int64)
    u_stream = ndtr(normals[:, N_COV])
    if first_line:
        out["stream"] = np.full(len(u), -1, dtype=np.int64)
        out["index_line"] = np.ones(len(u), dtype=np.int64)
    elif preset.prior_lines is not None:
        weights = {i: s.weight for i, s in enumerate(preset.prior_lines.streams)}
        out["stream"] = categorical(weights, u_stream)
        lengths = np.array([len(s.prior) for s in preset.prior_lines.streams])
        out["index_line"] = lengths[out["stream"]] + 1
    else:
        out["stream"] = np.full(len(u), -1, dtype=np.int64)
        out["index_line"] = categorical(preset.index_line, u_stream)
    out.update(derived_scores(out, preset.bclc_rule))
    return out


def derived_scores(b: Mapping[str, np.ndarray], bclc_rule: str) -> dict[str, np.ndarray]:
    albi = scores.albi(b["albumin_g_dl"], b["bilirubin_mg_dl"])
    cp = scores.child_pugh_score(
        b["albumin_g_dl"], b["bilirubin_mg_dl"], b["inr"], b["ascites"], b["encephalopathy"]
    )
    return {
        "albi": albi,
        "albi_grade": scores.albi_grade(albi),
        "malbi_grade": scores.malbi_grade(albi),
        "child_pugh_score": cp,
        "child_pugh_class": scores.child_pugh_class(cp),
        "bclc": bclc_stage(
            b["intrahepatic_lesions"],
            b["max_lesion_mm"],
            b["mvi"],
            b["ehm"],
            b["ecog"],
            cp,
            rule=bclc_rule,
        ),
    }


def bclc_stage(n_lesions, max_mm, mvi, ehm, ecog, child_pugh, *, rule: str = "standard"):
    """BCLC stage from its rules (Reig et al., J Hepatol 2022), in the advanced setting.

    D: Child-Pugh C (score >= 10) or ECOG >= 3. C: macrovascular invasion or extrahepatic
    metastasis, and under the ``standard`` rule also ECOG 1-2. A: a single lesion, or up to
    three lesions none above 30 mm. B: otherwise (multinodular, liver-confined).

    The ``mvi_or_ehm`` rule leaves ECOG out of stage C; the anchor study's 21/37 stage C fits it
    (ECOG >= 1 in 13 patients would have made stage C more common), so its preset uses it.
    Trial presets use the standard rule, with which their published stage-C shares agree.
    """
    n = np.asarray(n_lesions)
    big = np.asarray(max_mm, dtype=float)
    ps = np.asarray(ecog)
    spread = (np.asarray(mvi) > 0) | (np.asarray(ehm) > 0)
    if rule == "standard":
        stage_c = spread | (ps >= 1)
    elif rule == "mvi_or_ehm":
        stage_c = spread
    else:
        raise ValueError(f"unknown BCLC rule {rule!r}; expected one of {BCLC_RULES}")
    single_or_small = (n <= 1) | ((n <= 3) & (big <= 30.0))
    return np.where(
        (np.asarray(child_pugh) >= 10) | (ps >= 3),
        "D",
        np.where(stage_c, "C", np.where(single_or_small, "A", "B")),
    )


# -- eligibility -------------------------------------------------------------------------------
def criteria_masks(
    c: Criteria, cand: Mapping[str, np.ndarray], preset: Preset
) -> dict[str, np.ndarray]:
    """One pass/fail array per criterion in force, for a set of candidates."""
    masks: dict[str, np.ndarray] = {}
    if c.afp_min is not None:
        masks["afp_min"] = cand["afp_ng_ml"] >= c.afp_min
    if c.afp_max is not None:
        masks["afp_max"] = cand["afp_ng_ml"] <= c.afp_max
    if c.child_pugh_classes is not None:
        masks["child_pugh_classes"] = np.isin(cand["child_pugh_class"], c.child_pugh_classes)
    if c.child_pugh_max_score is not None:
        masks["child_pugh_max_score"] = cand["child_pugh_score"] <= c.child_pugh_max_score
    if c.ecog_max is not None:
        masks["ecog_max"] = cand["ecog"] <= c.ecog_max
    if c.bclc is not None:
        masks["bclc"] = np.isin(cand["bclc"], c.bclc)
    if c.index_lines is not None:
        masks["index_lines"] = np.isin(cand["index_line"], c.index_lines)
    if c.occupation_max_pct is not None:
        masks["occupation_max_pct"] = cand["occupation_pct"] <= c.occupation_max_pct
    if c.measurable_disease:
        masks["measurable_disease"] = (cand["intrahepatic_lesions"] >= 1) & (
            cand["max_lesion_mm"] >= 10.0
        )
    if c.prior_drugs_any is not None or c.prior_drugs_none is not None:
        streams = preset.prior_lines.streams if preset.prior_lines is not None else ()
        priors = [set(s.prior) for s in streams]
        stream = cand["stream"]
        if c.prior_drugs_any is not None:
            ok = np.array([bool(p & set(c.prior_drugs_any)) for p in priors] + [False])
            masks["prior_drugs_any"] = ok[stream]
        if c.prior_drugs_none is not None:
            ok = np.array([not (p & set(c.prior_drugs_none)) for p in priors] + [True])
            masks["prior_drugs_none"] = ok[stream]
    return masks


class EligibilityError(ValueError):
    """No eligible candidate within the cap for some patient."""

    def __init__(self, criterion: str, value, rate: float, tries: int) -> None:
        self.criterion, self.value, self.rate, self.tries = criterion, value, rate, tries
        super().__init__(
            f"population.eligibility.{criterion}: {value!r} cannot be met: only {100 * rate:.2g}% "
            f"of drawn patients meet it ({tries:,} candidates drawn, and some patient found none "
            f"in {MAX_TRIES}); loosen the criterion or choose a preset whose patients meet it"
        )


def draw_eligible(
    preset: Preset, criteria: Criteria, generators: list, first_line: bool
) -> dict[str, np.ndarray]:
    """Each patient's first eligible candidate, from its own generator (in blocks of
    :data:`CANDIDATE_BLOCK`, so the candidates a patient sees never depend on the batch)."""
    n = len(generators)
    chosen: dict[str, np.ndarray] | None = None
    todo = np.arange(n)
    drawn = 0
    passed: dict[str, int] = {}
    for _ in range(MAX_TRIES // CANDIDATE_BLOCK):
        if not len(todo):
            break
        normals = np.concatenate(
            [generators[i].standard_normal((CANDIDATE_BLOCK, N_DRAWN)) for i in todo]
        )
        cand = draw_candidates(preset, normals, first_line)
        masks = criteria_masks(criteria, cand, preset)
        ok = np.ones(len(normals), dtype=bool)
        for name, mask in masks.items():
            ok &= mask
            passed[name] = passed.get(name, 0) + int(mask.sum())
        drawn += len(normals)
        ok = ok.reshape(len(todo), CANDIDATE_BLOCK)
        found = ok.any(axis=1)
        first = np.argmax(ok, axis=1)
        rows = np.flatnonzero(found) * CANDIDATE_BLOCK + first[found]
        if chosen is None:
            chosen = {k: np.empty(n, dtype=v.dtype) for k, v in cand.items()}
        for k, v in cand.items():
            chosen[k][todo[found]] = v[rows]
        todo = todo[~found]
    if len(todo):
        worst = min(passed, key=passed.get) if passed else "afp_min"
        raise EligibilityError(
            worst, getattr(criteria, worst), passed.get(worst, 0) / max(drawn, 1), drawn
        )
    if chosen is None:  # an empty batch
        chosen = draw_candidates(preset, np.empty((0, N_DRAWN)), first_line)
    return chosen


def acceptance(
    preset: Preset, criteria: Criteria, rng: np.random.Generator, first_line: bool, n: int = 4000
):
    """Share of candidates meeting all criteria, and each criterion, from ``n`` draws."""
    cand = draw_candidates(preset, rng.standard_normal((n, N_DRAWN)), first_line)
    masks = criteria_masks(criteria, cand, preset)
    joint = np.ones(n, dtype=bool)
    for mask in masks.values():
        joint &= mask
    return float(joint.mean()), {k: float(v.mean()) for k, v in masks.items()}
