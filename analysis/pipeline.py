"""From cohort tables to a run folder's analysis outputs: ``summary.json`` (when not given),
``tables/*.csv``, ``figures/*.png`` and ``report.html``.

Used by ``hccsim analyze`` (a hospital's own tables, or a run's ``cohort/`` folder read back)
and at the end of ``hccsim run``. A cohort with one replicate is analysed as a real cohort (its
own values with confidence intervals); one with several as a simulated study (each value's mean
and 95% range across replicates, at most ``max_replicates`` of them, the lowest replicate ids).
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from hccsim.analysis import summary as summary_mod
from hccsim.analysis.frames import locate, patient_keys
from hccsim.analysis.response import ResponseRule, as_response_rule
from hccsim.analysis.schema import as_columns

#: The metrics shown first in the report (all of summary.json is in the file itself).
HEADLINE = (
    "n", "os_median_months", "pfs_recist_median_months", "pfs_mrecist_median_months",
    "ttp_recist_median_months", "orr_recist", "dcr_recist", "orr_mrecist", "dcr_mrecist",
    "dc4w", "os_median_months_dc4w_yes", "os_median_months_dc4w_no", "os_landmark_hr_dc4w",
    "grade3plus_ae", "dose_reduction", "discontinued_for_ae", "cycles_median",
    "albi_median_week_0", "albi_median_week_12", "os_hr_late_vs_second_line",
    "os_hr_child_pugh_b_vs_a",
)  # fmt: skip

FIGURE_CAPTIONS = {
    "swimmer": "Treatment streams: one bar per patient, coloured by drug for each line "
    "(prior lines before day 0), with response, progression and death",
    "albi": "ALBI score at weeks 0-12 on the index line: median and interquartile range, "
    "with the number measured",
    "km_os": "Overall survival (Kaplan-Meier, 95% confidence band; numbers at risk below)",
    "km_pfs": "Progression-free survival by RECIST 1.1 and mRECIST",
    "km_line_group": "Overall survival by line: second vs third or later",
    "km_dc4w": "Overall survival by disease control at 4 weeks, from day 0 (as published; "
    "carries guarantee-time bias)",
    "forest": "Hazard ratios by subgroup (Cox, 95% CI)",
}


@dataclass
class Analysis:
    out: Path
    tables: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    report: Path | None = None
    summary: dict | None = None
    notes: list[str] = field(default_factory=list)
    dataframes: dict = field(default_factory=dict)  # the numeric tables behind tables/*.csv


def replicate_ids(tables) -> list[int]:
    """The replicate ids of the patients table, ascending."""
    rep = np.asarray(as_columns(tables["patients"])["replicate"], dtype=np.int64)
    return sorted(set(rep.tolist()))


def select_replicates(tables, keep) -> dict:
    """The tables restricted to the replicates in ``keep`` (dicts of numpy columns)."""
    keep = np.asarray(sorted(keep), dtype=np.int64)
    out = {}
    for name, frame in tables.items():
        cols = as_columns(frame)
        mask = np.isin(np.asarray(cols["replicate"], dtype=np.int64), keep)
        out[name] = {c: np.asarray(v)[mask] for c, v in cols.items()}
    return out


def estimate_scan_interval(tables, default_days: float = 56.0) -> float:
    """The median interval between consecutive scans of the index line (days), for the PFS
    rule on missed scans when the imaging schedule is not known (a real cohort); ``default``
    (8 weeks) when fewer than two scans per patient are recorded."""
    a = as_columns(tables["assessments"])
    pt = as_columns(tables["patients"])
    if len(a["patient_id"]) < 2 or not len(pt["patient_id"]):
        return default_days
    row, found = locate(pt, a)
    on = found & (
        np.asarray(a["line"], dtype=np.int64) == np.asarray(pt["index_line"], dtype=np.int64)[row]
    )
    key = patient_keys(a)[on]
    day = np.asarray(a["day"], dtype=float)[on]
    order = np.lexsort((day, key))
    same = key[order][1:] == key[order][:-1]
    gaps = np.diff(day[order])[same]
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if len(gaps) else default_days


def summarise_tables(
    tables, *, scan_interval_days: float, meta: dict, response_rule: ResponseRule | None = None
) -> dict:
    """summary.json of cohort tables: the headline metrics of each replicate and their spread
    (DESIGN section 9)."""
    reps = replicate_ids(tables)
    per = [
        summary_mod.summarise_replicate(
            select_replicates(tables, [r]),
            scan_interval_days=scan_interval_days,
            response_rule=response_rule,
        )
        for r in reps
    ]
    n = int(per[0]["n"]) if per else 0
    return {**meta, "n": n, "replicates": len(reps), "metrics": summary_mod.summarise(per)}


def analyse(
    tables,
    out,
    *,
    scan_interval_days: float,
    title: str,
    subtitle: str,
    provenance: dict,
    summary: dict | None = None,
    max_replicates: int = 200,
    figures: bool = True,
    notes=(),
    response_rule: ResponseRule | None = None,
    assessor: str | None = None,
) -> Analysis:
    """Write the analysis outputs of ``tables`` into the folder ``out`` (created if needed).

    ``summary``: the run's summary.json content (written when ``out`` has none); when None it
    is computed here and written, replacing any summary.json in ``out``.
    ``response_rule``: how best overall response is read (None: SD from 42 days, unconfirmed).
    ``assessor``: whose reading the responses are ("investigator" or "independent", as a
    scenario's ``observation.assessor``; None: not known, and the Methods do not say).
    Figures need matplotlib (the ``figures`` extra); without it they are skipped with a note.
    """
    from hccsim.analysis import report
    from hccsim.analysis import tables as paper

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = Analysis(out, notes=[str(n) for n in notes])
    reps = replicate_ids(tables)
    if not reps:
        raise ValueError("the patients table is empty: nothing to analyse")
    computed = summary is None
    if computed:
        summary = summarise_tables(
            tables,
            scan_interval_days=scan_interval_days,
            response_rule=response_rule,
            meta={
                "scenario": provenance.get("scenario", provenance.get("source", "")),
                "seed": None,
            },
        )
    if computed or not (out / "summary.json").exists():
        # Same format as a run's summary.json (non-finite values are already None); one
        # computed here (under this call's rules) replaces an older one.
        (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    result.summary = summary
    several = len(reps) > 1
    if several and len(reps) > max_replicates:
        tables = select_replicates(tables, reps[:max_replicates])
        result.notes.append(
            f"Tables and figures use the first {max_replicates} of {len(reps)} replicates; "
            "summary.json uses all of them."
        )
    if several:
        dfs = paper.study_tables(
            tables,
            scan_interval_days=scan_interval_days,
            max_replicates=max_replicates,
            response_rule=response_rule,
        )
    else:
        dfs = paper.cohort_tables(
            tables, scan_interval_days=scan_interval_days, response_rule=response_rule
        )
    for df in dfs.values():
        result.notes += [str(n) for n in df.attrs.get("problems", ())]
    result.dataframes = dfs
    written = paper.write_tables(dfs, out / "tables")
    result.tables = {Path(p).stem: Path(p) for p in written}

    shown: dict[str, tuple[Path, str]] = {}
    if figures:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            result.notes.append(
                "Figures were skipped: matplotlib is not installed (pip install 'hccsim[figures]')."
            )
        else:
            from hccsim.analysis import figures as figs

            made = figs.make_figures(
                tables,
                scan_interval_days=scan_interval_days,
                out_dir=out / "figures",
                subgroups=dfs.get("subgroups") if not several else None,
                max_replicates=max_replicates,
                response_rule=response_rule,
            )
            result.notes += list(getattr(made, "notes", []))
            result.figures = dict(made)
            captions = getattr(made, "captions", {})
            shown = {k: (p, captions.get(k) or FIGURE_CAPTIONS.get(k, k)) for k, p in made.items()}

    formatted = {name: paper.format_table(df) for name, df in dfs.items()}
    prov = {
        **provenance,
        "analysed": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "replicates analysed": str(min(len(reps), max_replicates)),
        "scan interval for the PFS missed-scan rule": f"{scan_interval_days:g} days",
        "best overall response": as_response_rule(response_rule).describe(),
        **({"scans read by": report.READERS.get(assessor, assessor)} if assessor else {}),
        "python": platform.python_version(),
    }
    result.report = report.write_report(
        out / "report.html",
        title=title,
        subtitle=subtitle,
        provenance=prov,
        summary=summary,
        headline=HEADLINE,
        tables=formatted,
        figures=shown,
        notes=result.notes,
        methods=report.methods_for(response_rule, assessor),
    )
    return result
