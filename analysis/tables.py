"""Paper-style tables of a cohort (one replicate) or of a simulated study (many replicates).

Eight tables (:data:`TABLE_NAMES`), each a pandas DataFrame with its label column(s) first, then
its numeric columns (then, in a cohort table, free-text columns such as a failed fit's reason).
``df.attrs`` holds ``title`` (a paper-style caption), ``note`` (definitions, denominators, CI
methods), ``table`` (its name), ``mode`` ("cohort" or "study") and the column roles
(``label_columns``, ``numeric_columns``, ``flag_columns``, ``text_columns``); ``problems`` lists
what a reader must be told (baseline rows left out, failed or capped Cox fits).

**A cohort** (:func:`cohort_tables`): one replicate, a real cohort or one simulated replicate.
Values are numbers with their confidence limits; medians not reached are ``inf``; a statistic
that cannot be formed is NaN. Times are in months (days / 30.4375), percentages 0-100 of *all*
the patients of the replicate unless a note says otherwise.

**A study** (:func:`study_tables`): the cohort tables of each of the first ``max_replicates``
replicates (in replicate order) with one layout, so that they line up cell by cell; each
numeric cell ``c`` becomes ``c`` (the mean across replicates), ``c_q025`` and ``c_q975`` (the
2.5% and 97.5% quantiles, linear interpolation as numpy's default), ``c_n_defined`` (replicates
where the cell is defined, not NaN: the mean and quantiles are over these) and ``c_n_inf``
(replicates where it is infinite, a median or limit not reached). A quantile falling on or
beyond an infinite value is infinite; the mean is infinite when any defined value is. Flag
cells (0/1, for example "the fit failed") become ``<flag>_replicates``, the number of replicates
where the flag is 1. Free text is dropped. The layout is fixed by the replicates analysed
together: the adverse-event terms are those seen in any of them (0 patients where a term did
not occur) and optional baseline rows (Child-Pugh C, index line 1 or >= 6, BCLC 0 or D) appear
when any replicate has such a patient.

**Speed.** A study analyses each replicate with the numpy functions where they exist
(``cox_binary_hr``, ``km_median``, ``logrank``). Subgroup hazard ratios come without
per-replicate confidence limits (the spread across replicates is the uncertainty), and
univariable Cox models of a binary factor use ``cox_binary_hr`` with the Wald standard error
from the Efron information ``I(beta) = sum a b r / (a + b r)^2`` (docs/analysis.md), which is
what lifelines' Efron fit gives (tests: to 1e-6). Multivariable Cox models are fitted by
lifelines in both modes. The ALBI mixed model (statsmodels, about 0.1 s per replicate, three
times the rest of a replicate's analysis) is left out of a study unless asked for
(``albi_mixed_model=True``); the repeated-measures ANOVA is always there. 200 replicates of 37
patients take about 8 s (30 s with the mixed model).

:func:`format_table` renders a table as strings for display; :func:`write_tables` writes the
numeric tables as CSV.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hccsim.analysis import liver, safety, scores
from hccsim.analysis.endpoints import (
    overall_survival,
    progression_free_survival,
    time_to_progression,
)
from hccsim.analysis.frames import as_float, as_text, locate, one_replicate
from hccsim.analysis.response import (
    RESPONSES,
    ResponseRule,
    as_response_rule,
    response_rates,
)
from hccsim.analysis.schema import as_columns
from hccsim.analysis.summary import DAYS_PER_MONTH
from hccsim.analysis.survival import (
    cox_binary_hr,
    cox_binary_wald,
    cox_fit,
    cox_multivariable,
    cox_univariable,
    km_median,
    km_median_ci,
    logrank,
    rmst,
    survival_at,
)

TABLE_NAMES = (
    "baseline", "adverse_events", "discontinuation", "best_response", "survival",
    "subgroups", "cox", "albi",
)  # fmt: skip
#: The tables every analysis reads (``lesions`` is not needed).
NEEDED = ("patients", "lines", "assessments", "labs", "adverse_events")
#: Landmarks of the survival table (months) and the RMST horizon.
LANDMARK_MONTHS = (6, 12)
RMST_MONTHS = 12
#: Univariable p-value below which a factor enters the multivariable Cox model.
SELECT_P = 0.1
EVENTS_PER_COVARIATE = 10
ALPHA = 0.05
_Z = 1.959963984540054  # the 97.5% normal quantile


# -- column roles and frames ---------------------------------------------------------------------


def _frame(name, rows, labels, numeric, *, flags=(), text=(), title, note, **attrs):
    """A table with its columns in role order and its attrs."""
    import pandas as pd

    data = {c: [r.get(c, "") for r in rows] for c in labels}
    data |= {c: np.array([r.get(c, math.nan) for r in rows], dtype=float) for c in numeric}
    data |= {c: np.array([r.get(c, math.nan) for r in rows], dtype=float) for c in flags}
    data |= {c: [r.get(c) or "" for r in rows] for c in text}
    df = pd.DataFrame(data, columns=[*labels, *numeric, *flags, *text])
    for c in (*labels, *text):
        df[c] = df[c].astype(object)
    df.attrs.update(
        table=name,
        title=title,
        note=note,
        mode="cohort",
        label_columns=list(labels),
        numeric_columns=list(numeric),
        flag_columns=list(flags),
        text_columns=list(text),
        **attrs,
    )
    return df


def _months(days: float) -> float:
    return days / DAYS_PER_MONTH


def _pct(count, n) -> float:
    return 100.0 * count / n if n else math.nan


# -- layout: what rows a set of replicates shares --------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    ae_terms: tuple[str, ...]  # the adverse-event rows, in order
    baseline_rows: tuple[str, ...]  # the baseline rows shown
    baseline_skipped: tuple[str, ...]  # "row: reason" for the rows left out


def _layout(cols) -> _Layout:
    """The rows of the tables of ``cols`` (the patients of every replicate analysed together)."""
    pt, ae = cols["patients"], cols["adverse_events"]
    # AE terms: patients (any replicate) with the term on the index line, most frequent first.
    terms: tuple[str, ...] = ()
    if len(ae.get("patient_id", ())) and len(pt["patient_id"]):
        row, found = locate(pt, ae)
        index_line = np.asarray(pt["index_line"], dtype=np.int64)
        keep = found & (np.asarray(ae["line"], dtype=np.int64) == index_line[row])
        term = np.asarray(ae["term"], dtype=object)[keep].astype(str)
        pairs = set(zip(row[keep].tolist(), term.tolist(), strict=True))
        counts: dict[str, int] = {}
        for _, t in pairs:
            counts[t] = counts.get(t, 0) + 1
        terms = tuple(sorted(counts, key=lambda t: (-counts[t], t)))
    shown, skipped = [], []
    for spec in _BASELINE:
        values, reason = spec.values(pt)
        if reason is None and np.all(np.isnan(values)):
            reason = f"{', '.join(spec.columns)}: no values"
        if reason is None and spec.optional and not np.any(values == 1.0):
            continue  # an optional category nobody is in
        if reason is None:
            shown.append(spec.key)
        elif not spec.optional:
            skipped.append(f"{spec.label}: {reason}")
    return _Layout(terms, tuple(shown), tuple(skipped))


# -- 1. baseline -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    key: str
    label: str
    kind: str  # "count" (1/0/NaN per patient) or "continuous"
    columns: tuple[str, ...]  # the patients columns it needs (any of them for "any")
    fn: Callable  # columns -> per-patient values
    optional: bool = False  # shown only when some patient counts
    digits: int = 1  # for display of a continuous row
    any_column: bool = False  # needs any one of ``columns`` rather than all

    def values(self, pt) -> tuple[np.ndarray, str | None]:
        present = [c for c in self.columns if c in pt]
        if not (present if self.any_column else len(present) == len(self.columns)):
            missing = [c for c in self.columns if c not in pt]
            return np.empty(0), f"column {', '.join(missing)} absent"
        return np.asarray(self.fn(pt), dtype=float), None


def _flag(column: str, test=lambda v: v == 1.0):
    def fn(pt):
        v = as_float(pt[column])
        return np.where(np.isnan(v), np.nan, test(v).astype(float))

    return fn


def _category(column: str, members):
    def fn(pt):
        v = as_text(pt[column])
        known = np.array([x is not None for x in v], dtype=bool)
        hit = np.isin(v.astype(str), np.array(members, dtype=str))
        return np.where(known, hit.astype(float), np.nan)

    return fn


def _child_pugh(members):
    def fn(pt):
        cp = safety.child_pugh_classes(pt)
        known = np.array([x is not None for x in cp], dtype=bool)
        return np.where(known, np.isin(cp.astype(str), members).astype(float), np.nan)

    return fn


def _malbi(grade: str):
    def fn(pt):
        g = as_text(pt["malbi_grade"]) if "malbi_grade" in pt else None
        if g is None:
            g = np.full(len(pt["patient_id"]), None, dtype=object)
        if "albi" in pt:
            albi = as_float(pt["albi"])
            fill = np.array([x is None for x in g], dtype=bool) & ~np.isnan(albi)
            g[fill] = scores.malbi_grade(albi[fill])
        known = np.array([x is not None for x in g], dtype=bool)
        return np.where(known, (g.astype(str) == grade).astype(float), np.nan)

    return fn


_PRIOR = ("prior_tace", "prior_resection", "prior_ablation")


def _prior_any(pt):
    v = np.column_stack([as_float(pt[c]) for c in _PRIOR if c in pt])
    anyone = np.any(v == 1.0, axis=1)
    all_known = ~np.isnan(v).any(axis=1)
    return np.where(anyone, 1.0, np.where(all_known, 0.0, np.nan))


def _continuous(column: str):
    return lambda pt: as_float(pt[column])


def _count(key, label, column, test=None, **kw) -> _Row:
    fn = _flag(column) if test is None else _flag(column, test)
    return _Row(key, label, "count", (column,), fn, **kw)


_BASELINE: tuple[_Row, ...] = (
    _count("male", "Male", "male"),
    _Row("age", "Age, years", "continuous", ("age",), _continuous("age"), digits=0),
    _count("age_ge_73", "Age >= 73 years", "age", lambda v: v >= 73),
    _count("hbv", "HBsAg positive", "hbv"),
    _count("hbv_dna_suppressed", "  HBV DNA suppressed on nucleos(t)ide analogues", "hbv_dna_suppressed"),
    _count("hcv", "HCV antibody positive", "hcv"),
    _count("hcv_svr", "  HCV sustained virological response", "hcv_svr"),
    _count("alcohol", "Alcohol abuse", "alcohol"),
    _count("smoking", "Smoking history", "smoking"),
    _count("weight_lt_60", "Body weight < 60 kg", "weight_kg", lambda v: v < 60),
    _count("hypertension", "Hypertension", "hypertension"),
    _count("diabetes", "Diabetes mellitus", "diabetes"),
    _count("hyperlipidemia", "Hyperlipidaemia", "hyperlipidemia"),
    _count("cirrhosis", "Liver cirrhosis", "cirrhosis"),
    _count("ecog_0", "ECOG PS 0", "ecog", lambda v: v == 0),
    _count("ecog_1", "ECOG PS 1", "ecog", lambda v: v == 1),
    _count("ecog_ge_2", "ECOG PS >= 2", "ecog", lambda v: v >= 2),
    _count("child_pugh_score_5", "Child-Pugh score 5", "child_pugh_score", lambda v: v == 5),
    _count("child_pugh_score_6", "Child-Pugh score 6", "child_pugh_score", lambda v: v == 6),
    _count("child_pugh_score_ge_7", "Child-Pugh score >= 7", "child_pugh_score", lambda v: v >= 7),
    _Row("child_pugh_a", "Child-Pugh class A", "count", ("child_pugh_class", "child_pugh_score"), _child_pugh(["A"]), any_column=True),
    _Row("child_pugh_b", "Child-Pugh class B", "count", ("child_pugh_class", "child_pugh_score"), _child_pugh(["B"]), any_column=True),
    _Row("child_pugh_c", "Child-Pugh class C", "count", ("child_pugh_class", "child_pugh_score"), _child_pugh(["C"]), optional=True, any_column=True),
    _count("intrahepatic_lesions_ge_8", "Intrahepatic lesions >= 8", "intrahepatic_lesions", lambda v: v >= 8),
    _count("max_lesion_gt_50", "Largest intrahepatic lesion > 50 mm", "max_lesion_mm", lambda v: v > 50),
    _count("occupation_ge_50", "Tumour occupation >= 50% of the liver", "occupation_pct", lambda v: v >= 50),
    _count("mvi", "Macrovascular invasion", "mvi"),
    _count("ehm", "Extrahepatic metastasis", "ehm"),
    _Row("bclc_0", "BCLC 0", "count", ("bclc",), _category("bclc", ["0"]), optional=True),
    _Row("bclc_a_b", "BCLC A-B", "count", ("bclc",), _category("bclc", ["A", "B"])),
    _Row("bclc_c", "BCLC C", "count", ("bclc",), _category("bclc", ["C"])),
    _Row("bclc_d", "BCLC D", "count", ("bclc",), _category("bclc", ["D"]), optional=True),
    *(
        _Row(f"differentiation_{d}", f"Differentiation: {d}", "count", ("differentiation",), _category("differentiation", [d]))
        for d in ("well", "moderate", "poor", "unknown")
    ),
    _Row("prior_local_therapy", "Prior local therapy (any of the three below)", "count", _PRIOR, _prior_any, any_column=True),
    _count("prior_tace", "  Prior TACE", "prior_tace"),
    _count("prior_resection", "  Prior resection", "prior_resection"),
    _count("prior_ablation", "  Prior ablation", "prior_ablation"),
    _Row("afp", "AFP, ng/mL", "continuous", ("afp_ng_ml",), _continuous("afp_ng_ml")),
    _Row("albi", "ALBI score", "continuous", ("albi",), _continuous("albi"), digits=2),
    *(
        _Row(f"malbi_{g}", f"mALBI grade {g}", "count", ("malbi_grade", "albi"), _malbi(g), any_column=True)
        for g in liver.MALBI_GRADES
    ),
    _count("index_line_1", "Index line 1", "index_line", lambda v: v == 1, optional=True),
    *(_count(f"index_line_{k}", f"Index line {k}", "index_line", lambda v, k=k: v == k) for k in (2, 3, 4, 5)),
    _count("index_line_ge_6", "Index line >= 6", "index_line", lambda v: v >= 6, optional=True),
)  # fmt: skip
_BASELINE_BY_KEY = {r.key: r for r in _BASELINE}
BASELINE_COLUMNS = ("key", "label", "kind", "n", "pct", "median", "min", "max", "n_missing")


def _baseline(cols, layout: _Layout):
    pt = cols["patients"]
    n = len(pt["patient_id"])
    rows = [
        {
            "key": "patients",
            "label": "Patients",
            "kind": "count",
            "n": n,
            "pct": 100.0,
            "n_missing": 0,
        }
    ]
    for key in layout.baseline_rows:
        spec = _BASELINE_BY_KEY[key]
        v, _ = spec.values(pt)
        known = ~np.isnan(v)
        row = {"key": key, "label": spec.label, "kind": spec.kind, "n_missing": int((~known).sum())}
        if spec.kind == "count":
            count = int(np.count_nonzero(v == 1.0))
            row.update(n=count, pct=_pct(count, n))
        else:
            x = v[known]
            row["n"] = len(x)
            if len(x):
                row.update(median=float(np.median(x)), min=float(x.min()), max=float(x.max()))
        rows.append(row)
    skipped = "; ".join(layout.baseline_skipped)
    note = (
        "At the start of the index line. Counts are patients; percentages are of all "
        f"{n} patients (patients with a missing value, counted in n_missing, are in the "
        "denominator). Continuous rows: median, minimum and maximum of the known values (n: "
        "patients with a value). Child-Pugh class from child_pugh_class, or from the score "
        "where the class is missing; mALBI grade likewise from the ALBI score. BCLC A-B counts "
        "stages A and B." + (f" Rows left out: {skipped}." if skipped else "")
    )
    return _frame(
        "baseline", rows, ("key", "label", "kind"), BASELINE_COLUMNS[3:],
        title="Table 1. Baseline characteristics", note=note, n_patients=n,
        skipped_rows=list(layout.baseline_skipped),
        problems=[f"Table 1: row left out ({r})" for r in layout.baseline_skipped],
    )  # fmt: skip


# -- 2. adverse events ---------------------------------------------------------------------------


def _term_label(term: str) -> str:
    words = term.split("_")
    upper = {"alt": "ALT", "ast": "AST", "afp": "AFP"}
    text = " ".join(upper.get(w, w) for w in words)
    return text[:1].upper() + text[1:]


def _adverse_events(cols, layout: _Layout):
    ae = safety.ae_table(cols)
    n = ae.attrs["denominator"]
    by_term = ae.set_index("term")
    g3 = safety.grade3plus_patients(cols).flags
    _, worst = safety.worst_grades(cols)
    any_ae = int(np.count_nonzero(worst.max(axis=1, initial=0) >= 1))
    rows = [
        {"section": "any", "term": "any_ae", "label": "Any adverse event",
         "any_grade_n": any_ae, "any_grade_pct": _pct(any_ae, n),
         "grade3plus_n": int(g3.sum()), "grade3plus_pct": _pct(int(g3.sum()), n)},
    ]  # fmt: skip
    for term in layout.ae_terms:
        a = int(by_term.at[term, "any_grade_n"]) if term in by_term.index else 0
        g = int(by_term.at[term, "grade3plus_n"]) if term in by_term.index else 0
        rows.append(
            {"section": "term", "term": term, "label": _term_label(term), "any_grade_n": a,
             "any_grade_pct": _pct(a, n), "grade3plus_n": g, "grade3plus_pct": _pct(g, n)}
        )  # fmt: skip
    for key, label, flags in (
        ("dose_reduction", "Dose reduction", safety.dose_reduction_patients(cols).flags),
        ("discontinued_for_ae", "Discontinued for adverse events", safety.discontinued_for_ae(cols).flags),
    ):  # fmt: skip
        c = int(flags.sum())
        rows.append(
            {
                "section": "action",
                "term": key,
                "label": label,
                "any_grade_n": c,
                "any_grade_pct": _pct(c, n),
            }
        )
    note = (
        f"Adverse events beginning on the index line, CTCAE v5.0; patients (a patient counts once "
        f"per term, at the worst grade), percentages of all {n} patients. 'Any adverse event': "
        "patients with any event (any grade) and with any event of grade >= 3. Dose reduction: "
        "the index line has a dose reduction; discontinued: the index line ended for toxicity "
        "(counts in the any-grade columns)."
    )
    return _frame(
        "adverse_events", rows, ("section", "term", "label"),
        ("any_grade_n", "any_grade_pct", "grade3plus_n", "grade3plus_pct"),
        title="Table 2. Adverse events on the index line", note=note, n_patients=n,
    )  # fmt: skip


# -- 3. discontinuation ---------------------------------------------------------------------------


def _discontinuation(cols):
    d = safety.discontinuation_by_subgroup(cols)
    rows = d.to_dict("records")
    note = (
        "Discontinuation of the index line for adverse events (end_reason toxicity) by baseline "
        "subgroup: n patients in the group, discontinued n and % of the group, two-sided Fisher "
        "exact p of the factor's 2 x 2 table (on both rows; NA when a group is empty). Age split at the cohort median "
        f"({d.attrs['age_median']:g} years here); n_excluded: patients outside the two groups "
        "(missing, Child-Pugh C, BCLC 0 or D)."
    )
    return _frame(
        "discontinuation", rows, ("factor", "group"),
        ("n", "discontinued_n", "discontinued_pct", "p_value", "n_excluded"), text=("definition",),
        title="Table 3. Discontinuation for adverse events by subgroup", note=note,
        age_median=d.attrs["age_median"],
    )  # fmt: skip


# -- 4. best response -----------------------------------------------------------------------------

_CRITERIA = (("recist1.1", "RECIST 1.1"), ("mrecist", "mRECIST"))


def _best_response(cols, rule: ResponseRule):
    rows = []
    n = len(cols["patients"]["patient_id"])
    for crit, name in _CRITERIA:
        bor = rule.best(cols, crit)
        for r in RESPONSES:
            c = int(np.count_nonzero(bor == r))
            rows.append({"criterion": name, "response": r, "n": c, "pct": _pct(c, n)})
        rates = response_rates(bor, alpha=ALPHA)
        for key in ("orr", "dcr"):
            rate = rates[key]
            rows.append(
                {"criterion": name, "response": key.upper(), "n": rate.count,
                 "pct": 100.0 * rate.proportion, "ci_lower": 100.0 * rate.ci_low,
                 "ci_upper": 100.0 * rate.ci_high}
            )  # fmt: skip
    note = (
        f"Best overall response on the index line ({rule.describe()}), percentages of all "
        f"{n} patients (NE included). ORR: CR + PR; DCR: CR + "
        "PR + SD; with exact Clopper-Pearson 95% CIs (percent)."
    )
    return _frame(
        "best_response", rows, ("criterion", "response"), ("n", "pct", "ci_lower", "ci_upper"),
        title="Table 4. Best overall response", note=note,
    )  # fmt: skip


# -- 5. survival ----------------------------------------------------------------------------------


def _endpoints(cols, interval):
    return (
        ("os", "Overall survival", overall_survival(cols)),
        ("pfs_recist", "PFS (RECIST 1.1)", progression_free_survival(cols, "recist1.1", scan_interval_days=interval)),
        ("pfs_mrecist", "PFS (mRECIST)", progression_free_survival(cols, "mrecist", scan_interval_days=interval)),
        ("ttp_recist", "TTP (RECIST 1.1)", time_to_progression(cols, "recist1.1", scan_interval_days=interval)),
    )  # fmt: skip


SURVIVAL_COLUMNS = (
    "n", "events", "median_months", "median_lower", "median_upper",
    *(f"surv_{m}m_{s}" for m in LANDMARK_MONTHS for s in ("pct", "lower", "upper")),
    "rmst_12m_months", "rmst_12m_lower", "rmst_12m_upper",
)  # fmt: skip


def _survival(cols, endpoints):
    rows = []
    for key, label, ep in endpoints:
        d, e = ep.durations, ep.events
        row = {"endpoint": key, "label": label, "n": len(d), "events": int(e.sum())}
        if len(d):
            m = km_median_ci(d, e, ALPHA)
            row.update(median_months=_months(m.median), median_lower=_months(m.lower),
                       median_upper=_months(m.upper))  # fmt: skip
            at = survival_at(d, e, [mo * DAYS_PER_MONTH for mo in LANDMARK_MONTHS], ALPHA)
            for j, mo in enumerate(LANDMARK_MONTHS):
                if at.times[j] > d.max() and at.survival[j] > 0:
                    # follow-up ends before the landmark with the curve above 0: not estimable
                    # (the curve would only carry its last value on, as lifelines does)
                    continue
                row[f"surv_{mo}m_pct"] = 100.0 * at.survival[j]
                row[f"surv_{mo}m_lower"] = 100.0 * at.lower[j]
                row[f"surv_{mo}m_upper"] = 100.0 * at.upper[j]
            tau = RMST_MONTHS * DAYS_PER_MONTH
            if d.max() >= tau:
                area, var = rmst(d, e, tau)
                half = _Z * math.sqrt(var)
                row.update(rmst_12m_months=_months(area), rmst_12m_lower=_months(area - half),
                           rmst_12m_upper=_months(area + half))  # fmt: skip
        rows.append(row)
    note = (
        "Months from the start of the index line (days / 30.4375). OS: to death, censored at the "
        "last follow-up; PFS: to progression (first PD scan of the index line) or death, TTP: to "
        "progression, with the censoring rules of docs/analysis.md. Kaplan-Meier medians with "
        "95% CIs by the log(-log) transform (Brookmeyer-Crowley); inf: not reached. 6- and "
        "12-month survival (%) with pointwise log(-log) 95% CIs, NaN when follow-up ends before "
        "the landmark with the curve above 0. RMST: restricted mean to 12 "
        "months with a normal 95% CI (Greenwood-type variance); NaN when follow-up ends before "
        "12 months."
    )
    return _frame(
        "survival", rows, ("endpoint", "label"), SURVIVAL_COLUMNS,
        title="Table 5. Survival and progression", note=note,
    )  # fmt: skip


# -- 6. subgroups ---------------------------------------------------------------------------------


def _get(pt, column: str) -> np.ndarray:
    n = len(pt["patient_id"])
    return as_float(pt[column]) if column in pt else np.full(n, np.nan)


def _subgroup_factors(pt):
    """(factor, label, ref name, test name, membership 0/1/NaN, cutoff) per factor."""
    lesions = _get(pt, "intrahepatic_lesions")
    afp = _get(pt, "afp_ng_ml")
    afp_median = float(np.median(afp[~np.isnan(afp)])) if np.any(~np.isnan(afp)) else math.nan
    line = _get(pt, "index_line")
    out = [
        ("lesions_gt_7", "Intrahepatic lesions", "<= 7", "> 7", _split(lesions, lesions > 7), 7.0),
        ("afp_gt_median", "AFP (cohort median)", "<= median", "> median", _split(afp, afp > afp_median), afp_median),
        ("bclc_c", "BCLC stage", "A-B", "C", _category_split(pt, "bclc", ["A", "B"], ["C"]), math.nan),
        ("mvi", "Macrovascular invasion", "no", "yes", _split(_get(pt, "mvi"), _get(pt, "mvi") == 1), math.nan),
        ("ehm", "Extrahepatic metastasis", "no", "yes", _split(_get(pt, "ehm"), _get(pt, "ehm") == 1), math.nan),
        ("child_pugh_b", "Child-Pugh class", "A", "B", _cp_split(pt), math.nan),
        ("line_3_or_later", "Index line", "2nd", "3rd or later", np.where(line >= 3, 1.0, np.where(line == 2, 0.0, np.nan)), math.nan),
    ]  # fmt: skip
    return out


def _split(values, test) -> np.ndarray:
    return np.where(np.isnan(values), np.nan, np.asarray(test, dtype=float))


def _category_split(pt, column, ref, test) -> np.ndarray:
    if column not in pt:
        return np.full(len(pt["patient_id"]), np.nan)
    v = as_text(pt[column]).astype(str)
    return np.where(np.isin(v, test), 1.0, np.where(np.isin(v, ref), 0.0, np.nan))


def _cp_split(pt) -> np.ndarray:
    if "child_pugh_class" not in pt and "child_pugh_score" not in pt:
        return np.full(len(pt["patient_id"]), np.nan)
    cp = safety.child_pugh_classes(pt).astype(str)
    return np.where(cp == "B", 1.0, np.where(cp == "A", 0.0, np.nan))


SUBGROUP_COLUMNS = (
    "cutoff", "n_ref", "n_test", "events_ref", "events_test", "median_ref_months",
    "median_test_months", "hr", "hr_lower", "hr_upper", "p_value", "n_excluded",
)  # fmt: skip


def _subgroups(cols, endpoints, study: bool):
    pt = cols["patients"]
    factors = _subgroup_factors(pt)
    rows = []
    chosen = [x for x in endpoints if x[0] in ("os", "pfs_recist")]
    for key, _, ep in chosen:
        for factor, label, ref, test, member, cutoff in factors:
            keep = ~np.isnan(member)
            d, e, x = ep.durations[keep], ep.events[keep], member[keep] == 1.0
            row = {"endpoint": key, "factor": factor, "label": label, "group_ref": ref,
                   "group_test": test, "cutoff": cutoff, "n_ref": int((~x).sum()),
                   "n_test": int(x.sum()), "events_ref": int(e[~x].sum()),
                   "events_test": int(e[x].sum()), "n_excluded": int((~keep).sum())}  # fmt: skip
            for g, name in ((~x, "ref"), (x, "test")):
                if g.any():
                    row[f"median_{name}_months"] = _months(km_median(d[g], e[g]))
            if x.any() and (~x).any():
                row["p_value"] = logrank(d, e, x.astype(int)).p_value
                if study:
                    row["hr"] = cox_binary_hr(d, e, x)
                else:
                    fit = cox_fit(
                        {"t": d, "e": e.astype(float), "x": x.astype(float)}, "t", "e", ["x"]
                    )
                    if fit.converged:
                        t = fit.term("x")
                        row.update(hr=t.hazard_ratio, hr_lower=t.lower, hr_upper=t.upper)
                    else:
                        row["note"] = f"Cox fit failed: {fit.error}"
            else:
                row["note"] = "a group is empty"
            rows.append(row)
    numeric = SUBGROUP_COLUMNS
    if study:
        numeric = tuple(c for c in numeric if c not in ("hr_lower", "hr_upper"))
    note = (
        "OS and PFS (RECIST 1.1) by baseline factor, months. Each factor compares the test "
        "group with the reference group (first); patients outside both (missing; BCLC 0 or D; "
        "Child-Pugh C; index line 1) are excluded and counted. AFP is split at the cohort median "
        "(cutoff, ng/mL). Medians: Kaplan-Meier (inf: not reached). HR: Cox model with Efron "
        "ties, test vs reference"
        + (
            " (cox_binary_hr, without per-replicate confidence limits: the range across "
            "replicates is the uncertainty)"
            if study
            else ", Wald 95% CI (lifelines)"
        )
        + "; p: two-sided log-rank test."
    )
    return _frame(
        "subgroups", rows, ("endpoint", "factor", "label", "group_ref", "group_test"), numeric,
        text=() if study else ("note",), title="Table 6. Survival by subgroup", note=note,
    )  # fmt: skip


# -- 7. Cox models --------------------------------------------------------------------------------

COX_COLUMNS = ("n", "events", "hr", "hr_lower", "hr_upper", "p_value")
COX_FLAGS = ("failed", "selected", "in_model", "dropped")


def _cox_factors(pt):
    line = _get(pt, "index_line")
    return (
        ("age_ge_73", "Age >= 73 years", _split(_get(pt, "age"), _get(pt, "age") >= 73)),
        ("male", "Male", _split(_get(pt, "male"), _get(pt, "male") == 1)),
        ("ecog_ge_1", "ECOG PS >= 1", _split(_get(pt, "ecog"), _get(pt, "ecog") >= 1)),
        ("child_pugh_b", "Child-Pugh B (vs A)", _cp_split(pt)),
        ("bclc_c", "BCLC C (vs 0-B)", _category_split(pt, "bclc", ["0", "A", "B"], ["C"])),
        ("mvi", "Macrovascular invasion", _split(_get(pt, "mvi"), _get(pt, "mvi") == 1)),
        ("ehm", "Extrahepatic metastasis", _split(_get(pt, "ehm"), _get(pt, "ehm") == 1)),
        ("afp_ge_400", "AFP >= 400 ng/mL", _split(_get(pt, "afp_ng_ml"), _get(pt, "afp_ng_ml") >= 400)),
        ("lesions_gt_7", "Intrahepatic lesions > 7", _split(_get(pt, "intrahepatic_lesions"), _get(pt, "intrahepatic_lesions") > 7)),
        ("line_ge_3", "Index line >= 3 (vs 1-2)", _split(line, line >= 3)),
    )  # fmt: skip


def _cox(cols, os_, study: bool):
    pt = cols["patients"]
    factors = _cox_factors(pt)
    d, e = os_.durations, os_.events
    uni = {}
    if study:
        for key, _, x in factors:
            keep = ~np.isnan(x)
            n, ev = int(keep.sum()), int(e[keep].sum())
            hr, lo, hi, p = cox_binary_wald(d[keep], e[keep], x[keep] == 1.0)
            reason = None
            if not math.isfinite(hr):
                reason = "no finite estimate (an empty group, a group without deaths or monotone likelihood)"
            uni[key] = dict(
                n=n, events=ev, hr=hr, hr_lower=lo, hr_upper=hi, p_value=p, reason=reason
            )
    else:
        data = {"t": d, "e": e.astype(float)} | {k: x for k, _, x in factors}
        for (key, _, _), r in zip(
            factors, cox_univariable(data, "t", "e", [k for k, _, _ in factors]), strict=True
        ):
            t = r.terms[0]
            uni[key] = dict(n=r.n, events=r.events, hr=t.hazard_ratio, hr_lower=t.lower,
                            hr_upper=t.upper, p_value=t.p_value,
                            reason=None if r.converged else r.error)  # fmt: skip
            if not r.converged:
                uni[key].update(hr=math.nan, hr_lower=math.nan, hr_upper=math.nan, p_value=math.nan)
    ok = {k: u for k, u in uni.items() if u["reason"] is None and math.isfinite(u["p_value"])}
    selected = sorted(
        (k for k, u in ok.items() if u["p_value"] < SELECT_P), key=lambda k: ok[k]["p_value"]
    )
    multi = None
    if selected:
        data = {"t": d, "e": e.astype(float)} | {k: x for k, _, x in factors if k in selected}
        multi = cox_multivariable(data, "t", "e", selected, EVENTS_PER_COVARIATE, alpha=ALPHA)
    rows = []
    for key, label, _ in factors:
        u = uni[key]
        rows.append(
            {"model": "univariable", "factor": key, "label": label,
             **{c: u[c] for c in COX_COLUMNS}, "failed": float(u["reason"] is not None),
             "selected": float(key in selected), "note": u["reason"] and f"failed: {u['reason']}"}
        )  # fmt: skip
    for key, label, _ in factors:
        row = {
            "model": "multivariable",
            "factor": key,
            "label": label,
            "selected": float(key in selected),
        }
        if multi is not None and key in selected:
            inside = key in multi.covariates
            row.update(in_model=float(inside), dropped=float(not inside))
            if inside:
                row.update(n=multi.n, events=multi.events, failed=float(not multi.converged))
                if multi.converged:
                    t = multi.term(key)
                    row.update(
                        hr=t.hazard_ratio, hr_lower=t.lower, hr_upper=t.upper, p_value=t.p_value
                    )
                else:
                    row["note"] = f"failed: {multi.error}"
            else:
                row["note"] = f"dropped: {multi.drop_reason}"
        else:
            why = (
                "univariable fit failed" if uni[key]["reason"] else f"univariable p >= {SELECT_P:g}"
            )
            row.update(in_model=0.0, dropped=0.0, note=f"not selected ({why})")
        rows.append(row)
    n_failed_uni = sum(u["reason"] is not None for u in uni.values())
    n_failed_multi = int(multi is not None and not multi.converged)
    note = (
        "Cox proportional hazards models of overall survival (Efron ties), hazard ratios with "
        "Wald 95% CIs and p-values; each univariable model on its own complete cases"
        + (
            " (study: cox_binary_hr with the SE from the Efron information, equal to lifelines' "
            "fit)"
            if study
            else " (lifelines)"
        )
        + f". Multivariable (lifelines): the factors with univariable p < {SELECT_P:g}, in order "
        f"of p, capped at one covariate per {EVENTS_PER_COVARIATE} deaths (cox_multivariable: "
        "the longest prefix allowed is kept, the rest are dropped); complete cases. Flags: "
        "failed (the fit failed; the reason is in the note), selected (univariable p < "
        f"{SELECT_P:g}), in_model, dropped (selected but over the cap). Failed fits: "
        f"{n_failed_uni} univariable, {n_failed_multi} multivariable."
    )
    return _frame(
        "cox", rows, ("model", "factor", "label"), COX_COLUMNS, flags=COX_FLAGS,
        text=() if study else ("note",), title="Table 7. Cox regression of overall survival",
        note=note, counts={"failed_univariable": n_failed_uni, "failed_multivariable": n_failed_multi},
        multivariable_covariates=list(multi.covariates) if multi is not None else [],
        problems=[f"Table 7: {r['model']} Cox model, {r['label']}: {r['note']}" for r in rows
                  if r.get("failed") == 1 or r.get("dropped") == 1],
        dropped=list(multi.dropped) if multi is not None else [],
    )  # fmt: skip


# -- 8. ALBI --------------------------------------------------------------------------------------

ALBI_COLUMNS = (
    "week", "day", "n_measured", "median", "q25", "q75",
    *(f"malbi_{g}_pct" for g in liver.MALBI_GRADES), "statistic", "df1", "df2", "p_value",
)  # fmt: skip


def _albi(cols, mixed_model: bool = True):
    by_week = liver.albi_by_week(cols, on_index_line=True)
    rows = []
    for r in by_week.to_dict("records"):
        row = {"item": f"week_{r['week']}", "label": f"Week {r['week']}"}
        row |= {c: r[c] for c in ("week", "day", "n_measured", "median", "q25", "q75")}
        row |= {f"malbi_{g}_pct": 100.0 * r[f"malbi_{g}_share"] for g in liver.MALBI_GRADES}
        rows.append(row)
    anova = liver.albi_rm_anova(cols, on_index_line=True)
    rows.append(
        {"item": "rm_anova", "label": "Repeated-measures ANOVA (complete cases)",
         "n_measured": anova.n_patients, "statistic": anova.f, "df1": anova.df1, "df2": anova.df2,
         "p_value": anova.p, "significant": _below(anova.p), "note": anova.reason}
    )  # fmt: skip
    wald_p = math.nan
    if mixed_model:
        mixed = liver.albi_mixed_model(cols, on_index_line=True)
        wald_p = mixed.wald_p
        rows.append(
            {"item": "mixed_model", "label": "Mixed model, likelihood-ratio test",
             "n_measured": mixed.n_patients, "statistic": mixed.lr_stat,
             "df1": mixed.lr_df if mixed.reason is None else math.nan, "p_value": mixed.lr_p,
             "significant": _below(mixed.lr_p),
             "note": mixed.reason or ("; ".join(mixed.messages) if not mixed.converged else None)}
        )  # fmt: skip
    weeks = ", ".join(str(w) for w in liver.DEFAULT_WEEKS)
    note = (
        f"ALBI at weeks {weeks} while on the index line: the lab draw closest to day 7 x week "
        f"within {liver.DEFAULT_WINDOW_DAYS:g} days; median and quartiles (numpy linear) among "
        "the patients measured that week, mALBI grades as % of them. Change over the weeks: "
        "repeated-measures ANOVA on the patients measured every week (F, df1, df2; n_measured: "
        "patients analysed), as published, and a random-intercept linear mixed model that keeps "
        "incomplete patients (likelihood-ratio chi-square of the week effects, df1; REML/ML by "
        "statsmodels"
        + ("" if mixed_model else "; left out of this table for speed, about 0.1 s per replicate")
        + "). significant: p < 0.05."
    )
    return _frame(
        "albi", rows, ("item", "label"), ALBI_COLUMNS, flags=("significant",),
        text=("note",), title="Table 8. ALBI score during the index line", note=note,
        mixed_model_wald_p=wald_p,
    )  # fmt: skip


def _below(p) -> float:
    return float(p < 0.05) if math.isfinite(p) else math.nan


# -- the tables of one replicate ------------------------------------------------------------------


def _check_interval(value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not value > 0
        or not math.isfinite(value)
    ):
        raise ValueError(
            f"scan_interval_days must be a positive number of days (the scheduled interval "
            f"between scans, for example 42); got {value!r}"
        )
    return float(value)


def _tables(
    cols,
    layout: _Layout,
    interval: float,
    study: bool,
    mixed_model: bool = True,
    rule: ResponseRule | None = None,
) -> dict:
    rule = as_response_rule(rule)
    if not len(cols["patients"]["patient_id"]):
        raise ValueError("tables: the patients table has no rows for this replicate")
    endpoints = _endpoints(cols, interval)
    out = {
        "baseline": _baseline(cols, layout),
        "adverse_events": _adverse_events(cols, layout),
        "discontinuation": _discontinuation(cols),
        "best_response": _best_response(cols, rule),
        "survival": _survival(cols, endpoints),
        "subgroups": _subgroups(cols, endpoints, study),
        "cox": _cox(cols, endpoints[0][2], study),
        "albi": _albi(cols, mixed_model),
    }
    if study:
        for df in out.values():
            for c in df.attrs["text_columns"]:
                del df[c]
            df.attrs["text_columns"] = []
    return out


def cohort_tables(
    tables, *, scan_interval_days: float, replicate=None, response_rule: ResponseRule | None = None
) -> dict:
    """The eight tables (:data:`TABLE_NAMES`) of one replicate (module docstring).

    ``tables``: the cohort tables (``patients``, ``lines``, ``assessments``, ``labs``,
    ``adverse_events``) as DataFrames, pyarrow Tables or mappings of arrays. With
    ``replicate=None`` they must hold one replicate (a real cohort); otherwise replicate
    ``replicate`` is analysed. ``scan_interval_days``: the scheduled interval between scans
    (PFS censoring rules). ``response_rule``: how best overall response is read
    (:class:`~hccsim.analysis.response.ResponseRule`; None: SD from 42 days, unconfirmed).
    Returns ``{name: DataFrame}`` in :data:`TABLE_NAMES` order.
    """
    interval = _check_interval(scan_interval_days)
    rule = as_response_rule(response_rule)
    cols = one_replicate(tables, NEEDED, replicate)
    out = _tables(cols, _layout(cols), interval, study=False, rule=rule)
    rep = replicate
    if rep is None and len(cols["patients"]["replicate"]):
        rep = int(cols["patients"]["replicate"][0])
    for df in out.values():
        df.attrs["replicate"] = rep
    return out


# -- a study: many replicates ----------------------------------------------------------------------


def _by_replicate(tables, replicates) -> list[dict]:
    """One dict of tables per replicate of ``replicates`` (split once by sorting)."""
    per = [{} for _ in replicates]
    wanted = np.asarray(replicates, dtype=np.int64)
    for name in NEEDED:
        cols = as_columns(tables[name])
        if "replicate" not in cols:
            raise ValueError(f"tables: table {name!r} has no column 'replicate'")
        rep = np.asarray(cols["replicate"], dtype=np.int64)
        order = np.argsort(rep, kind="stable")
        sorted_rep = rep[order]
        start = np.searchsorted(sorted_rep, wanted, side="left")
        stop = np.searchsorted(sorted_rep, wanted, side="right")
        arrays = {c: np.asarray(v)[order] for c, v in cols.items()}
        for i, (a, b) in enumerate(zip(start, stop, strict=True)):
            per[i][name] = {c: v[a:b] for c, v in arrays.items()}
    return per


def _quantile(x: np.ndarray, k: np.ndarray, p: float) -> np.ndarray:
    """Quantile ``p`` along axis 0 of ``x`` (sorted, NaN last) over its first ``k`` values
    (numpy's linear method; exact where infinite values sit, as ``summary._quantile``)."""
    h = (np.maximum(k, 1) - 1) * p
    lo = np.floor(h).astype(int)
    hi = np.minimum(lo + 1, np.maximum(k, 1) - 1)
    frac = h - lo
    a = np.take_along_axis(x, lo[None], axis=0)[0]
    b = np.take_along_axis(x, hi[None], axis=0)[0]
    with np.errstate(invalid="ignore"):
        lin = np.where(frac < 0.5, a + (b - a) * frac, b - (b - a) * (1.0 - frac))
        out = np.where((frac == 0) | (a == b), a, lin)
        out = np.where(np.isinf(b) & (a != b) & (frac > 0), b, out)
        out = np.where(np.isinf(a) & (a != b) & (frac > 0), a, out)
    return np.where(k > 0, out, np.nan)


def _aggregate(frames: list, name: str):
    import pandas as pd

    first = frames[0]
    labels, numeric = first.attrs["label_columns"], first.attrs["numeric_columns"]
    flags = first.attrs["flag_columns"]
    for i, f in enumerate(frames[1:], 1):
        if not f[labels].equals(first[labels]):  # pragma: no cover - the layout fixes the rows
            raise RuntimeError(f"table {name}: replicate {i} has other rows than replicate 0")
    values = np.stack([f[numeric].to_numpy(dtype=float) for f in frames])
    defined = ~np.isnan(values)
    k = defined.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(k > 0, np.nansum(values, axis=0) / np.maximum(k, 1), np.nan)
    x = np.sort(values, axis=0)  # NaN last
    q025, q975 = _quantile(x, k, 0.025), _quantile(x, k, 0.975)
    n_inf = np.isinf(values).sum(axis=0)
    data = {c: first[c].to_numpy(dtype=object) for c in labels}
    for j, c in enumerate(numeric):
        data[c] = mean[:, j]
        data[f"{c}_q025"] = q025[:, j]
        data[f"{c}_q975"] = q975[:, j]
        data[f"{c}_n_defined"] = k[:, j].astype(float)
        data[f"{c}_n_inf"] = n_inf[:, j].astype(float)
    if flags:
        fl = np.stack([f[flags].to_numpy(dtype=float) for f in frames])
        for j, c in enumerate(flags):
            data[f"{c}_replicates"] = np.nansum(fl[:, :, j] == 1.0, axis=0).astype(float)
    df = pd.DataFrame(data)
    counts: dict[str, int] = {}
    for f in frames:
        for key, v in f.attrs.get("counts", {}).items():
            counts[key] = counts.get(key, 0) + v
    df.attrs.update({k: v for k, v in first.attrs.items() if k not in ("replicate",)})
    df.attrs.update(mode="study", counts=counts, flag_columns=list(flags), text_columns=[])
    problems = list(first.attrs.get("problems", [])) if name == "baseline" else []
    if "failed" in flags:  # the Cox table: failed fits by row, never hidden
        for _, r in df[df["failed_replicates"] > 0].iterrows():
            problems.append(
                f"Table 7: {r['model']} Cox model, {r['label']}: the fit failed in "
                f"{r['failed_replicates']:.0f} of {len(frames)} replicates"
            )
    df.attrs["problems"] = problems
    return df


def study_tables(
    tables,
    *,
    scan_interval_days: float,
    max_replicates: int = 200,
    albi_mixed_model: bool = False,
    response_rule: ResponseRule | None = None,
) -> dict:
    """The eight tables of a simulated study: each cell's mean and 95% range across replicates.

    The cohort tables of the first ``max_replicates`` replicates (in replicate order), all with
    one layout, aggregated cell by cell (module docstring). ``df.attrs`` says how many
    replicates were analysed (``n_replicates``) out of how many (``n_replicates_available``),
    and sums per-replicate counts (``counts``, e.g. failed Cox fits). The ALBI mixed model
    (statsmodels, about 0.1 s per replicate: three times the rest of the analysis) is fitted
    only with ``albi_mixed_model=True``; the repeated-measures ANOVA always is.
    ``response_rule`` as for :func:`cohort_tables`.
    """
    interval = _check_interval(scan_interval_days)
    rule = as_response_rule(response_rule)
    if (
        isinstance(max_replicates, bool)
        or not isinstance(max_replicates, numbers.Integral)
        or max_replicates < 1
    ):
        raise ValueError(
            f"max_replicates must be a whole number >= 1 (for example 200); got {max_replicates!r}"
        )
    if not isinstance(tables, Mapping) or any(n not in tables for n in NEEDED):
        missing = [n for n in NEEDED if not isinstance(tables, Mapping) or n not in tables]
        raise ValueError(f"tables must map table names to tables; missing {', '.join(missing)}")
    reps = np.unique(np.asarray(as_columns(tables["patients"])["replicate"], dtype=np.int64))
    if not len(reps):
        raise ValueError("tables: the patients table has no rows")
    chosen = reps[: int(max_replicates)].tolist()
    parts = _by_replicate(tables, chosen)
    merged = {n: {c: np.concatenate([p[n][c] for p in parts]) for c in parts[0][n]} for n in NEEDED}
    layout = _layout(merged)
    if not isinstance(albi_mixed_model, bool):
        raise ValueError(f"albi_mixed_model must be True or False; got {albi_mixed_model!r}")
    per = [_tables(p, layout, interval, True, albi_mixed_model, rule) for p in parts]
    out = {}
    for name in TABLE_NAMES:
        df = _aggregate([t[name] for t in per], name)
        used = (
            f"all {len(chosen)} replicates"
            if len(chosen) == len(reps)
            else f"the first {len(chosen)} of {len(reps)} replicates (in replicate order)"
        )
        df.attrs["note"] = (
            f"Simulated study, {used}: each value is the mean across replicates with its 95% "
            "range (2.5%-97.5% quantiles) over the replicates where it is defined "
            "(<col>_n_defined; <col>_n_inf: not reached); flags: the number of replicates "
            "(<flag>_replicates). " + df.attrs["note"]
        )
        df.attrs.update(
            n_replicates=len(chosen), n_replicates_available=len(reps), replicates=chosen
        )
        out[name] = df
    return out


# -- display --------------------------------------------------------------------------------------


def _num(x, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NA"
    x = float(x)
    if math.isinf(x):
        return "NR" if x > 0 else "-inf"
    return f"{x:.{digits}f}"


def format_p(p) -> str:
    """A p-value for display: "0.042", "<0.001"; "NA" when undefined."""
    if p is None or not math.isfinite(float(p)):
        return "NA"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _interval(lo: str, hi: str) -> str:
    """ "a-b", or "a to b" when a bound is negative (no "-2.6--2.1")."""
    return f"{lo} to {hi}" if lo.startswith("-") or hi.startswith("-") else f"{lo}-{hi}"


def _cells(df, study: bool):
    """Display helpers reading one row: count, estimate with CI, plain value, p-value, flag."""

    def stat(r, c, fmt):
        if not study:
            return fmt(r[c])
        if not r[f"{c}_n_defined"]:
            return "NA"
        return f"{fmt(r[c])} ({_interval(fmt(r[f'{c}_q025']), fmt(r[f'{c}_q975']))})"

    def count(r, n, pct):
        if study:
            text = stat(r, pct, lambda v: _num(v, 1))
            return text if text == "NA" else text.replace(" (", "% (", 1)
        if math.isnan(r[n]):
            return "NA"
        return f"{r[n]:.0f} ({_num(r[pct], 1)}%)" if math.isfinite(r[pct]) else f"{r[n]:.0f}"

    def ci(r, est, lo, hi, digits=1):
        if study:
            return stat(r, est, lambda v: _num(v, digits))
        if math.isnan(r[est]):
            return "NA"
        if lo in r.index and not (math.isnan(r[lo]) and math.isnan(r[hi])):
            return f"{_num(r[est], digits)} ({_interval(_num(r[lo], digits), _num(r[hi], digits))})"
        return _num(r[est], digits)

    def value(r, c, digits=1):
        return stat(r, c, lambda v: _num(v, digits))

    def p(r, c):
        return stat(r, c, format_p)

    def flag(r, c, n_rep):
        if study:
            return f"{r[f'{c}_replicates']:.0f}/{n_rep}"
        return "" if math.isnan(r[c]) else ("yes" if r[c] == 1 else "no")

    return stat, count, ci, value, p, flag


def format_table(df):
    """The table ``df`` (from :func:`cohort_tables` or :func:`study_tables`) as strings.

    Counts "12 (32.4%)", estimates with CIs "10.3 (5.2-14.6)", "NR" for a median or limit not
    reached, "NA" for a value that cannot be formed, p-values "0.042" or "<0.001". A study table
    shows "mean (2.5%-97.5% quantiles)" across replicates ("10.3 (8.1-12.9)"), counts as the
    mean percentage with its range, flags as "k/N" replicates. ``attrs`` (title, note) are kept.
    """
    import pandas as pd

    name = df.attrs.get("table")
    if name not in TABLE_NAMES:
        raise ValueError(
            f"df must be a table from cohort_tables or study_tables (attrs['table'] one of {TABLE_NAMES}); got attrs['table'] = {name!r}"
        )
    study = df.attrs.get("mode") == "study"
    n_rep = df.attrs.get("n_replicates", 0)
    _, count, ci, value, p, flag = _cells(df, study)
    rows = []
    for _, r in df.iterrows():
        if name == "baseline":
            if r["kind"] == "count":
                cell = count(r, "n", "pct")
            elif study:
                cell = value(r, "median", _BASELINE_BY_KEY[r["key"]].digits)
            else:
                digits = _BASELINE_BY_KEY[r["key"]].digits
                cell = f"{_num(r['median'], digits)} ({_interval(_num(r['min'], digits), _num(r['max'], digits))})"
            row = {"Characteristic": r["label"], "n (%) or median (range)": cell}
            if not study:
                row["Missing"] = f"{r['n_missing']:.0f}" if r["n_missing"] else ""
        elif name == "adverse_events":
            action = r["section"] == "action"
            row = {"Adverse event": r["label"], "Any grade, n (%)": count(r, "any_grade_n", "any_grade_pct"),
                   "Grade >= 3, n (%)": "" if action else count(r, "grade3plus_n", "grade3plus_pct")}  # fmt: skip
        elif name == "discontinuation":
            row = {"Factor": r["factor"], "Group": r["group"], "n": value(r, "n", 0 if not study else 1),
                   "Discontinued, n (%)": count(r, "discontinued_n", "discontinued_pct"),
                   "p (Fisher)": p(r, "p_value")}  # fmt: skip
        elif name == "best_response":
            row = {"Criterion": r["criterion"], "Response": r["response"],
                   "n (%)": count(r, "n", "pct"),
                   "95% CI, %": "" if study or math.isnan(r["ci_lower"]) else _interval(_num(r["ci_lower"]), _num(r["ci_upper"]))}  # fmt: skip
        elif name == "survival":
            row = {"Endpoint": r["label"], "n": value(r, "n", 0 if not study else 1),
                   "Events": value(r, "events", 0 if not study else 1),
                   "Median, months (95% CI)": ci(r, "median_months", "median_lower", "median_upper")}  # fmt: skip
            for mo in LANDMARK_MONTHS:
                row[f"{mo}-month, % (95% CI)"] = ci(
                    r, f"surv_{mo}m_pct", f"surv_{mo}m_lower", f"surv_{mo}m_upper"
                )
            row["RMST 12 months, months (95% CI)"] = ci(
                r, "rmst_12m_months", "rmst_12m_lower", "rmst_12m_upper"
            )
        elif name == "subgroups":
            digits = 0 if not study else 1
            row = {"Endpoint": "OS" if r["endpoint"] == "os" else "PFS (RECIST 1.1)",
                   "Factor": r["label"],
                   "Reference": f"{r['group_ref']}: n {value(r, 'n_ref', digits)}, median {value(r, 'median_ref_months')}",
                   "Test": f"{r['group_test']}: n {value(r, 'n_test', digits)}, median {value(r, 'median_test_months')}",
                   "HR (95% CI)": ci(r, "hr", "hr_lower", "hr_upper", 2),
                   "p (log-rank)": p(r, "p_value")}  # fmt: skip
        elif name == "cox":
            row = {"Model": r["model"], "Factor": r["label"],
                   "n": value(r, "n", 0 if not study else 1),
                   "HR (95% CI)": ci(r, "hr", "hr_lower", "hr_upper", 2), "p": p(r, "p_value")}  # fmt: skip
            if study:
                row["Failed"] = flag(r, "failed", n_rep)
                row["In model"] = (
                    flag(r, "in_model", n_rep) if r["model"] == "multivariable" else ""
                )
            else:
                row["Note"] = r["note"]
        else:  # albi
            test = r["item"] in ("rm_anova", "mixed_model")
            row = {"Week / test": r["label"], "n": value(r, "n_measured", 0 if not study else 1)}
            if test:
                row["Median (IQR)"] = ""
                row["mALBI 1 / 2a / 2b / 3, %"] = ""
                row["Statistic"] = value(r, "statistic", 2)
                row["p"] = p(r, "p_value")
                if study:
                    row["p < 0.05"] = flag(r, "significant", n_rep)
            else:
                row["Median (IQR)"] = (
                    value(r, "median", 2) if study or math.isnan(r["median"])
                    else f"{_num(r['median'], 2)} ({_num(r['q25'], 2)} to {_num(r['q75'], 2)})"
                )  # fmt: skip
                row["mALBI 1 / 2a / 2b / 3, %"] = " / ".join(
                    (value if study else lambda r, c, d: _num(r[c], d))(r, f"malbi_{g}_pct", 0)
                    for g in liver.MALBI_GRADES
                )
                row["Statistic"] = ""
                row["p"] = ""
                if study:
                    row["p < 0.05"] = ""
        rows.append(row)
    out = pd.DataFrame(rows).astype(object)
    out.attrs.update(df.attrs)
    return out


def write_tables(dfs: Mapping, folder) -> list[Path]:
    """Write each table of ``dfs`` ({name: DataFrame}) as ``<folder>/<name>.csv`` (numeric,
    unformatted; infinite values as ``inf``), creating the folder; returns the paths."""
    if not isinstance(dfs, Mapping):
        raise ValueError(f"dfs must map table names to DataFrames; got {type(dfs).__name__}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in dfs.items():
        if not isinstance(name, str) or not name or "/" in name or not hasattr(df, "to_csv"):
            raise ValueError(
                f"dfs must map file-safe names to DataFrames; got {name!r}: {type(df).__name__}"
            )
        path = folder / f"{name}.csv"
        df.to_csv(path, index=False)
        paths.append(path)
    return paths
