"""Liver function over the index line (DESIGN section 8): ALBI at weeks 0, 2, ..., 12 as the
anchor study reported it, its repeated-measures ANOVA on complete cases, a linear mixed model
that keeps incomplete patients, and Child-Pugh class transitions.

**Time.** Days from the start of the index line (day 0), as in the tables; week ``w`` is day
``7 w``.

**Closest visit.** A patient's value at week ``w`` is that of the lab draw closest to day
``7 w`` within ``window_days`` either side (inclusive); of two draws equally close, the earlier;
of draws on the same day, the first in table order. Draws without a value do not count (the next
closest draw does). ALBI is the labs' ``albi`` or, where that is missing, ALBI computed from
``albumin_g_dl`` and ``bilirubin_mg_dl`` when both are there and bilirubin is positive
(:func:`scores.albi`); the
Child-Pugh score likewise is ``child_pugh_score`` or, where missing, the score of the draw's
albumin, bilirubin, INR, ascites and encephalopathy when all five are there. A draw may serve
two weeks when their windows overlap (``window_days`` at least half their distance in days). With
``on_index_line=True`` only draws on or before the end of the index line count (the anchor study
measured ALBI while on ramucirumab); a patient without an index-line row in ``lines`` then has no
such limit.

**One replicate.** Every function analyses one replicate: with ``replicate=None`` the tables
must hold one (a real cohort: 0), else a ``ValueError`` asks for ``replicate=``; patients are
identified by (replicate, patient_id), as in :mod:`hccsim.analysis.safety`.

**ALBI by week** (:func:`albi_by_week`): among the patients measured that week, the median and
the 25th and 75th percentiles (numpy's ``"linear"`` method, Hyndman & Fan type 7, R's default;
SPSS uses type 6, so the quartiles of a small sample can differ from a paper's) and the share of
each mALBI grade (1 <= -2.60 < 2a <= -2.27 < 2b <= -1.39 < 3, :func:`scores.malbi_grade`).

**Repeated-measures ANOVA** (:func:`rm_anova`, :func:`albi_rm_anova`): one within-patient factor
(week), on the complete cases (patients measured at every week), as published. With ``n``
patients, ``k`` weeks, grand mean ``m``, week means ``m_j`` and patient means ``m_i``:
``SS_time = n sum_j (m_j - m)^2``, ``SS_subjects = k sum_i (m_i - m)^2``, ``SS_error = sum_ij
(y_ij - m_i - m_j + m)^2``; ``F = (SS_time / (k - 1)) / (SS_error / ((n - 1)(k - 1)))`` on
``k - 1`` and ``(n - 1)(k - 1)`` degrees of freedom, without a sphericity correction (the
anchor study reported none). Fewer than two complete patients or two weeks, or no residual
variation, give NaN statistics with the ``reason``; never an exception.

**Mixed model** (:func:`mixed_model`, :func:`albi_mixed_model`): ALBI = intercept + week effect
(week categorical, the first week with any measurement as reference) + patient random intercept
+ error, fitted by REML with statsmodels' ``MixedLM`` on every measured (patient, week), so
patients with missing weeks stay in. Week effects come with Wald confidence intervals (normal
quantile, as statsmodels gives them). "No change over weeks" is tested both by a likelihood-ratio
test of the full against the intercept-only model, both fitted by maximum likelihood (REML
likelihoods of models with different fixed effects are not comparable), and by a Wald test of
all week effects from the REML fit; both chi-square on the number of week effects. Weeks nobody
was measured at are left out (NaN effects).

statsmodels and scipy are imported only inside the functions that use them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from hccsim.analysis import scores
from hccsim.analysis.frames import as_float, index_line_rows, locate, need_columns, one_replicate

#: The anchor study's ALBI weeks.
DEFAULT_WEEKS = (0, 2, 4, 6, 8, 10, 12)
#: The default visit window (days either side of day 7 x week).
DEFAULT_WINDOW_DAYS = 3.0
MALBI_GRADES = ("1", "2a", "2b", "3")
CHILD_PUGH_CLASSES = ("A", "B", "C")
#: Columns of :func:`albi_by_week`.
BY_WEEK_COLUMNS = (
    "week",
    "day",
    "n_measured",
    "median",
    "q25",
    "q75",
    *(f"malbi_{g}_share" for g in MALBI_GRADES),
)
#: Columns of :attr:`MixedModel.effects`.
EFFECT_COLUMNS = ("week", "n_obs", "estimate", "se", "ci_low", "ci_high", "p_value")


# -- closest visit ---------------------------------------------------------------------------------


def _check_weeks(weeks) -> tuple:
    try:
        weeks = tuple(weeks)
        days = [7.0 * float(w) for w in weeks]
    except (TypeError, ValueError):
        raise ValueError(f"weeks must be a sequence of numbers, not {weeks!r}") from None
    if not weeks or not all(math.isfinite(d) for d in days) or len(set(days)) != len(days):
        raise ValueError(f"weeks must be distinct finite numbers (at least one), not {weeks!r}")
    return weeks


def _check_window(window_days) -> float:
    try:
        w = float(window_days)
    except (TypeError, ValueError):
        w = math.nan
    if not (math.isfinite(w) and w >= 0):
        raise ValueError(f"window_days must be a finite number >= 0, not {window_days!r}")
    return w


def _albi_values(lab) -> np.ndarray:
    need_columns(lab, "labs", ("day", "albi"))
    v = as_float(lab["albi"])
    if "albumin_g_dl" in lab and "bilirubin_mg_dl" in lab:
        alb, bili = as_float(lab["albumin_g_dl"]), as_float(lab["bilirubin_mg_dl"])
        fill = np.isnan(v) & np.isfinite(alb) & np.isfinite(bili) & (bili > 0)
        v[fill] = scores.albi(alb[fill], bili[fill])
    return v


_CP_PARTS = ("albumin_g_dl", "bilirubin_mg_dl", "inr", "ascites", "encephalopathy")


def _child_pugh_values(lab) -> np.ndarray:
    need_columns(lab, "labs", ("day", "child_pugh_score"))
    v = as_float(lab["child_pugh_score"])
    if all(c in lab for c in _CP_PARTS):
        parts = [as_float(lab[c]) for c in _CP_PARTS]
        fill = np.isnan(v) & np.logical_and.reduce([np.isfinite(p) for p in parts])
        v[fill] = scores.child_pugh_score(*(p[fill] for p in parts))
    return v


def _closest(cols, values, weeks, window, on_index_line) -> np.ndarray:
    """Patients x weeks matrix of the closest-visit values (NaN: not measured)."""
    pt, lab = cols["patients"], cols["labs"]
    out = np.full((len(pt["patient_id"]), len(weeks)), np.nan)
    row, ok = locate(pt, lab)
    day = as_float(lab["day"])
    ok &= np.isfinite(values) & np.isfinite(day)
    if on_index_line:
        need_columns(cols["lines"], "lines", ("line", "end_day"))
        idx = index_line_rows(pt, cols["lines"])
        end = np.where(idx >= 0, as_float(cols["lines"]["end_day"])[np.maximum(idx, 0)], np.inf)
        if len(row):
            ok &= day <= end[row]
    sel = np.flatnonzero(ok)
    r, d, v = row[sel], day[sel], values[sel]
    for j, w in enumerate(weeks):
        dist = np.abs(d - 7.0 * float(w))
        m = np.flatnonzero(dist <= window)
        if not len(m):
            continue
        # by patient, then distance, then day (ties: the earlier), then table order
        order = m[np.lexsort((m, d[m], dist[m], r[m]))]
        first = np.concatenate([[True], r[order][1:] != r[order][:-1]])
        out[r[order][first], j] = v[order][first]
    return out


def _matrix(tables, weeks, window_days, on_index_line, replicate, kind: str):
    weeks = _check_weeks(weeks)
    window = _check_window(window_days)
    names = ("patients", "labs", "lines") if on_index_line else ("patients", "labs")
    cols = one_replicate(tables, names, replicate)
    lab = cols["labs"]
    values = _albi_values(lab) if kind == "albi" else _child_pugh_values(lab)
    return cols, weeks, _closest(cols, values, weeks, window, bool(on_index_line))


def albi_values(
    tables,
    weeks=DEFAULT_WEEKS,
    window_days: float = DEFAULT_WINDOW_DAYS,
    *,
    on_index_line: bool = False,
    replicate=None,
) -> np.ndarray:
    """The patient x week ALBI matrix as a numpy array (patients-table order; NaN where
    unmeasured): :func:`albi_matrix` without pandas, for the per-replicate summary."""
    return _matrix(tables, weeks, window_days, on_index_line, replicate, "albi")[2]


def albi_matrix(
    tables,
    weeks=DEFAULT_WEEKS,
    window_days: float = DEFAULT_WINDOW_DAYS,
    *,
    on_index_line: bool = False,
    replicate=None,
):
    """The wide patient x week ALBI matrix (closest-visit rule; NaN where unmeasured).

    A pandas DataFrame: one row per patient in patients-table order, indexed by (replicate,
    patient_id); one column per week (labelled by the week as given).
    """
    import pandas as pd

    cols, weeks, values = _matrix(tables, weeks, window_days, on_index_line, replicate, "albi")
    pt = cols["patients"]
    index = pd.MultiIndex.from_arrays(
        [np.asarray(pt["replicate"], dtype=np.int64), np.asarray(pt["patient_id"], dtype=np.int64)],
        names=["replicate", "patient_id"],
    )
    return pd.DataFrame(values, index=index, columns=pd.Index(list(weeks), name="week"))


def albi_by_week(
    tables,
    weeks=DEFAULT_WEEKS,
    window_days: float = DEFAULT_WINDOW_DAYS,
    *,
    on_index_line: bool = False,
    replicate=None,
):
    """ALBI by week: one row per week, columns :data:`BY_WEEK_COLUMNS`.

    ``n_measured`` patients measured that week (closest-visit rule), the median and quartiles
    of their ALBI (NaN when nobody was measured) and the share (0-1) of each mALBI grade among
    them. ``df.attrs`` holds ``n_patients``, ``window_days`` and ``quantile_method``.
    """
    import pandas as pd

    _, weeks, values = _matrix(tables, weeks, window_days, on_index_line, replicate, "albi")
    rows = []
    for j, w in enumerate(weeks):
        x = values[:, j][~np.isnan(values[:, j])]
        n = len(x)
        q = np.quantile(x, [0.5, 0.25, 0.75], method="linear") if n else [math.nan] * 3
        grade = scores.malbi_grade(x)
        row = {"week": w, "day": 7.0 * float(w), "n_measured": n}
        row.update(median=float(q[0]), q25=float(q[1]), q75=float(q[2]))
        for g in MALBI_GRADES:
            row[f"malbi_{g}_share"] = float(np.mean(grade == g)) if n else math.nan
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(BY_WEEK_COLUMNS))
    df.attrs.update(
        n_patients=values.shape[0],
        window_days=float(window_days),
        quantile_method="linear",
        replicate=replicate,
    )
    return df


# -- repeated-measures ANOVA -----------------------------------------------------------------------


@dataclass(frozen=True)
class RMAnova:
    """One-way repeated-measures ANOVA over weeks on complete cases (module docstring)."""

    f: float
    df1: float
    df2: float
    p: float
    n_patients: int  # complete cases analysed
    n_excluded: int  # patients missing at least one week
    weeks: tuple
    ss_time: float = math.nan
    ss_subjects: float = math.nan
    ss_error: float = math.nan
    reason: str | None = None  # why the statistics are NaN; None when computed


#: ``SS_error`` at or below this share of ``SS_total`` counts as no residual variation.
_NO_ERROR_REL = 1e-13


def rm_anova(values, weeks=None) -> RMAnova:
    """Repeated-measures ANOVA of a patients x weeks array (rows with a NaN are left out)."""
    y = np.asarray(values, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"values must be a 2-d patients x weeks array, not of shape {y.shape}")
    k_all = y.shape[1]
    weeks = tuple(range(k_all)) if weeks is None else tuple(weeks)
    if len(weeks) != k_all:
        raise ValueError(f"weeks must name the {k_all} columns of values, not {weeks!r}")
    complete = np.isfinite(y).all(axis=1)
    x = y[complete]
    n, k = x.shape
    excluded = int(len(y) - n)

    def undefined(reason: str, **ss) -> RMAnova:
        nan = math.nan
        return RMAnova(nan, nan, nan, nan, n, excluded, weeks, **ss, reason=reason)

    if k < 2:
        return undefined(f"fewer than 2 weeks (k={k})")
    if n < 2:
        return undefined(f"fewer than 2 patients measured at every week (n={n})")
    m = x.mean()
    week_means, patient_means = x.mean(axis=0), x.mean(axis=1)
    ss_time = float(n * np.sum((week_means - m) ** 2))
    ss_subjects = float(k * np.sum((patient_means - m) ** 2))
    ss_error = float(np.sum((x - patient_means[:, None] - week_means[None, :] + m) ** 2))
    ss_total = float(np.sum((x - m) ** 2))
    ss = {"ss_time": ss_time, "ss_subjects": ss_subjects, "ss_error": ss_error}
    if ss_error <= _NO_ERROR_REL * ss_total or ss_total == 0.0:
        return undefined("no residual variation (SS_error = 0): F is undefined", **ss)
    from scipy.stats import f as f_dist

    df1, df2 = k - 1, (n - 1) * (k - 1)
    f = (ss_time / df1) / (ss_error / df2)
    p = float(f_dist.sf(f, df1, df2))
    return RMAnova(f, float(df1), float(df2), p, n, excluded, weeks, **ss)


def albi_rm_anova(
    tables,
    weeks=DEFAULT_WEEKS,
    window_days: float = DEFAULT_WINDOW_DAYS,
    *,
    on_index_line: bool = False,
    replicate=None,
) -> RMAnova:
    """Repeated-measures ANOVA of ALBI over ``weeks`` on the patients measured at every week."""
    _, weeks, values = _matrix(tables, weeks, window_days, on_index_line, replicate, "albi")
    return rm_anova(values, weeks)


# -- linear mixed model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MixedModel:
    """Random-intercept linear mixed model of a measurement over weeks (module docstring).

    ``effects``: one row per week (columns :data:`EFFECT_COLUMNS`): the difference from the
    reference week (0 for the reference itself, with NaN standard error), its standard error,
    Wald confidence interval and p-value; NaN for weeks nobody was measured at.
    """

    effects: object  # pandas DataFrame
    reference_week: object
    intercept: float  # the model mean at the reference week
    group_var: float  # random-intercept variance (REML)
    residual_var: float  # residual variance (REML)
    lr_stat: float
    lr_df: int
    lr_p: float
    wald_stat: float
    wald_p: float
    n_patients: int  # patients with at least one measurement
    n_observations: int
    converged: bool  # every fit (REML, and the two ML fits) converged
    messages: tuple[str, ...] = field(default=())  # warnings raised by the fits
    reason: str | None = None  # why the model was not fitted; None when it was
    ci_level: float = 0.95


def _fit(endog, exog, groups, reml: bool, messages: list[str]):
    from statsmodels.regression.mixed_linear_model import MixedLM

    model = MixedLM(endog, exog, groups, exog_re=np.ones((len(endog), 1)))
    kind = "REML" if reml else "ML"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(reml=reml)
    if not res.converged:
        # The gradient methods stall when the random-intercept variance sits on its boundary
        # (0), as it does for an intercept-only model of strongly trending data; Powell's
        # derivative-free search does not. The first attempt's warnings are then moot.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = model.fit(reml=reml, method=["powell", "lbfgs"])
        messages.append(f"{kind} fit ({exog.shape[1]} fixed effects): refitted by Powell's method")
    messages.extend(f"{kind} fit ({exog.shape[1]} fixed effects): {w.message}" for w in caught)
    return res


def mixed_model(values, weeks=None, *, ci_level: float = 0.95) -> MixedModel:
    """The random-intercept mixed model of a patients x weeks array (NaN: not measured)."""
    import pandas as pd
    from scipy.stats import chi2, norm

    y = np.asarray(values, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"values must be a 2-d patients x weeks array, not of shape {y.shape}")
    weeks = tuple(range(y.shape[1])) if weeks is None else tuple(weeks)
    if len(weeks) != y.shape[1]:
        raise ValueError(f"weeks must name the {y.shape[1]} columns of values, not {weeks!r}")
    if not (isinstance(ci_level, float | int) and 0 < ci_level < 1):
        raise ValueError(f"ci_level must be a number strictly between 0 and 1, not {ci_level!r}")
    measured = np.isfinite(y)
    n_obs_week = measured.sum(axis=0)
    patient, week = np.nonzero(measured)
    endog = y[patient, week]
    n_patients = len(np.unique(patient))
    observed = [j for j in range(len(weeks)) if n_obs_week[j] > 0]
    effects = pd.DataFrame(
        {"week": list(weeks), "n_obs": n_obs_week.astype(np.int64)}
        | {c: np.full(len(weeks), math.nan) for c in EFFECT_COLUMNS[2:]},
        columns=list(EFFECT_COLUMNS),
    )
    nan = math.nan

    def unfitted(reason: str) -> MixedModel:
        return MixedModel(
            effects=effects,
            reference_week=None,
            intercept=nan,
            group_var=nan,
            residual_var=nan,
            lr_stat=nan,
            lr_df=0,
            lr_p=nan,
            wald_stat=nan,
            wald_p=nan,
            n_patients=n_patients,
            n_observations=len(endog),
            converged=False,
            reason=reason,
            ci_level=ci_level,
        )

    if len(observed) < 2:
        return unfitted(f"fewer than 2 weeks with measurements ({len(observed)})")
    if n_patients < 2:
        return unfitted(f"fewer than 2 patients with measurements ({n_patients})")
    if len(endog) <= len(observed) + 1:
        return unfitted(
            f"{len(endog)} observations are too few for {len(observed)} fixed effects and 2 "
            "variance components"
        )
    ref, others = observed[0], observed[1:]
    exog = np.column_stack([np.ones(len(endog))] + [(week == j).astype(float) for j in others])
    messages: list[str] = []
    reml = _fit(endog, exog, patient, True, messages)
    full_ml = _fit(endog, exog, patient, False, messages)
    null_ml = _fit(endog, exog[:, :1], patient, False, messages)
    p = exog.shape[1]
    beta = np.asarray(reml.fe_params, dtype=float)
    cov = np.asarray(reml.cov_params(), dtype=float)[:p, :p]
    se = np.sqrt(np.diag(cov))
    z = float(norm.ppf(0.5 + ci_level / 2.0))
    for i, j in enumerate(others, start=1):
        effects.loc[j, ["estimate", "se", "ci_low", "ci_high", "p_value"]] = [
            beta[i],
            se[i],
            beta[i] - z * se[i],
            beta[i] + z * se[i],
            2.0 * norm.sf(abs(beta[i] / se[i])),
        ]
    effects.loc[ref, "estimate"] = 0.0
    b, v = beta[1:], cov[1:, 1:]
    wald = float(b @ np.linalg.solve(v, b))
    lr = float(max(2.0 * (full_ml.llf - null_ml.llf), 0.0))
    df = len(others)
    return MixedModel(
        effects=effects,
        reference_week=weeks[ref],
        intercept=float(beta[0]),
        group_var=float(np.asarray(reml.cov_re)[0, 0]),
        residual_var=float(reml.scale),
        lr_stat=lr,
        lr_df=df,
        lr_p=float(chi2.sf(lr, df)),
        wald_stat=wald,
        wald_p=float(chi2.sf(wald, df)),
        n_patients=n_patients,
        n_observations=len(endog),
        converged=bool(reml.converged and full_ml.converged and null_ml.converged),
        messages=tuple(messages),
        reason=None,
        ci_level=ci_level,
    )


def albi_mixed_model(
    tables,
    weeks=DEFAULT_WEEKS,
    window_days: float = DEFAULT_WINDOW_DAYS,
    *,
    on_index_line: bool = False,
    replicate=None,
    ci_level: float = 0.95,
) -> MixedModel:
    """The mixed model of ALBI over ``weeks`` (closest-visit rule), incomplete patients kept."""
    _, weeks, values = _matrix(tables, weeks, window_days, on_index_line, replicate, "albi")
    return mixed_model(values, weeks, ci_level=ci_level)


# -- Child-Pugh ------------------------------------------------------------------------------------


def child_pugh_transitions(
    tables,
    from_week=0,
    to_week=12,
    window_days: float = DEFAULT_WINDOW_DAYS,
    *,
    on_index_line: bool = False,
    replicate=None,
):
    """Child-Pugh class at ``from_week`` (rows, index name ``from``) against ``to_week``
    (columns, name ``to``): counts of the patients measured at both (closest-visit rule), classes
    A, B and C always present. ``df.attrs``: ``from_week``, ``to_week``, ``n_both`` (patients
    counted), ``n_missing`` (patients not measured at one or both).
    """
    import pandas as pd

    for name, w in (("from_week", from_week), ("to_week", to_week)):
        try:
            ok = math.isfinite(float(w))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{name} must be a finite number, not {w!r}")
    window = _check_window(window_days)
    names = ("patients", "labs", "lines") if on_index_line else ("patients", "labs")
    cols = one_replicate(tables, names, replicate)
    score = _child_pugh_values(cols["labs"])
    values = _closest(cols, score, (from_week, to_week), window, bool(on_index_line))
    both = np.isfinite(values).all(axis=1)
    a = scores.child_pugh_class(values[both, 0])
    b = scores.child_pugh_class(values[both, 1])
    counts = np.zeros((3, 3), dtype=np.int64)
    for i, ci in enumerate(CHILD_PUGH_CLASSES):
        for j, cj in enumerate(CHILD_PUGH_CLASSES):
            counts[i, j] = np.count_nonzero((a == ci) & (b == cj))
    df = pd.DataFrame(
        counts,
        index=pd.Index(CHILD_PUGH_CLASSES, name="from"),
        columns=pd.Index(CHILD_PUGH_CLASSES, name="to"),
    )
    df.attrs.update(
        from_week=from_week,
        to_week=to_week,
        n_both=int(both.sum()),
        n_missing=int(len(both) - both.sum()),
        replicate=replicate,
    )
    return df
