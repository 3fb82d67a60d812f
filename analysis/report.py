"""The analysis report: one self-contained HTML file (``report.html``).

Everything the page needs is inside it: styles inline, figures embedded as base64 PNG data
URIs, no scripts, no fonts or files fetched, so it opens from a disk, an e-mail attachment or an
archive without a server. Sections: what was run or analysed and its provenance, the headline
metrics (simulated studies: across replicates), every table (paper style, with its caption and
note), every figure, the methods in one paragraph each, and any notes (what could not be
computed and why).

:func:`write_report` renders given tables and figures; :mod:`hccsim.analysis.pipeline` computes
them from cohort tables and calls it.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from hccsim.analysis.response import CONFIRM_MIN_DAYS, as_response_rule

#: How each scan is read (the Response paragraph before the best-response rule).
_SCAN_READING = (
    "Each scan is read by RECIST 1.1 (Eisenhauer 2009) and by mRECIST (Lencioni & Llovet "
    "2010, viable enhancing tumour): partial response at a fall of at least 30% of the "
    "target sum from baseline, progression at a rise of at least 20% over the nadir (RECIST "
    "1.1 also at least 5 mm), new lesions or unequivocal non-target progression. "
)


def _best_response_text(rule) -> str:
    """The Methods sentences on best overall response under ``rule`` (None: the default)."""
    rule = as_response_rule(rule)
    sd = (
        "stable disease counts from any scan after day 0"
        if rule.sd_min_days == 0
        else f"stable disease counts only from a scan at least {rule.sd_min_days:g} days after "
        "day 0"
    )
    confirm = (
        f"a CR or PR counts only when a scan at least {CONFIRM_MIN_DAYS:g} days later reads the "
        "same or better (an unconfirmed one counts as stable disease)"
        if rule.confirm
        else "no confirmation of CR or PR is required"
    )
    return (
        f"Best overall response: {sd}; {confirm}. ORR (CR+PR) and DCR (CR+PR+SD) are shares "
        "of all patients with exact Clopper-Pearson 95% intervals."
    )


#: The methods section: (heading, paragraph). Kept short; docs/analysis.md has the details.
METHODS: tuple[tuple[str, str], ...] = (
    (
        "Time origin and endpoints",
        "Day 0 is the start of the index line (for the anchor study, the first ramucirumab "
        "infusion). Overall survival (OS) runs to death from any cause; patients alive are "
        "censored at their last follow-up. Months are days / 30.4375.",
    ),
    (
        "Progression-free survival",
        "PFS runs from day 0 to the first scan of the index line read as progression (PD) or "
        "death, whichever comes first, separately by RECIST 1.1 and by mRECIST. Censoring: no "
        "adequate scan after baseline, censored at day 0 (unless death comes within two scan "
        "intervals); death after two or more missed scans, censored at the last adequate scan; "
        "a new anticancer therapy (the next line) before progression, censored at the last "
        "adequate scan before it (FDA guidance, 2018); otherwise censored at the last adequate "
        "scan. Time to progression (TTP) censors deaths without progression.",
    ),
    (
        "Kaplan-Meier estimates",
        "Survival curves are product-limit estimates with Greenwood's variance. 95% confidence "
        "limits of survival and of the median use the log(-log) transform (as lifelines; in R, "
        "survfit with conf.type = 'log-log'); the median is the first time the curve is at or "
        "below one half, and a limit the curve never reaches is reported as not reached (NR). "
        "Restricted mean survival time (RMST) is the area under the curve up to its horizon.",
    ),
    ("Response", _SCAN_READING + _best_response_text(None)),
    (
        "Disease control at 4 weeks",
        "Disease control at 4 weeks means a RECIST 1.1 scan on day 28 or later reading CR, PR "
        "or SD with no progression before it. OS by this grouping from day 0 reproduces the "
        "anchor study's comparison but carries guarantee-time bias (a patient must live to the "
        "scan to be counted as controlled); the landmark analysis classifies patients by what "
        "is known at 8 weeks and measures OS from there among those alive then.",
    ),
    (
        "Adverse events",
        "Adverse events are graded by CTCAE v5.0. Laboratory terms (hypoalbuminemia, "
        "bilirubin, AST and ALT increased, platelet count decreased, anemia, proteinuria, "
        "ammonia) are treatment-emergent worsening from each line's baseline. Tables count "
        "patients, once per term at their worst grade, as shares of all patients of the "
        "cohort; discontinuation by subgroup is compared by Fisher's exact test (two-sided).",
    ),
    (
        "Liver function",
        "ALBI = 0.66 x log10(bilirubin, umol/L) - 0.085 x albumin (g/L), taken at weeks 0-12 "
        "from the lab draw closest to each week (within 3 days) while on the index line; "
        "mALBI grades 1, 2a, 2b, 3 at -2.60, -2.27, -1.39. Change over weeks is tested by a "
        "repeated-measures ANOVA on patients measured at every week (as published) and by a "
        "linear mixed model with a random intercept per patient, which keeps incomplete "
        "patients.",
    ),
    (
        "Hazard ratios",
        "Cox proportional-hazards models use Efron's method for ties; 95% confidence intervals "
        "and p-values are Wald's. Multivariable models keep at most about one covariate per "
        "ten events; fits that fail or do not converge are reported as such, never dropped. "
        "Log-rank tests are two-sided.",
    ),
    (
        "Simulated studies",
        "For a simulated study every table cell and metric is computed in each replicate "
        "cohort and shown as the mean and the central 95% range (2.5% and 97.5% quantiles) "
        "across replicates; this range is the spread a study of this size would see, not a "
        "confidence interval of the mean. Figures show one replicate with its own 95% "
        "confidence band and, shaded, the 95% range across replicates.",
    ),
)


#: Who read the scans, by the scenario's ``observation.assessor`` (None: not known, not said).
ASSESSOR_TEXT = {
    "investigator": "Responses and progression are the investigator's reading. ",
    "independent": (
        "Responses and progression are a blinded independent central review's reading, which "
        "counts an equivocal small new lesion only when the next scan shows it again and then "
        "dates the progression back to the scan that first showed it (RECIST 1.1 section "
        "4.3.2); lines of treatment end on the investigator's reading, so a progression the "
        "review has not confirmed when imaging stops is censored at its last adequate scan. "
    ),
}


#: Who read the scans, in a few words (the provenance line "scans read by").
READERS = {
    "investigator": "the investigator",
    "independent": "blinded independent central review",
}


def methods_for(rule, assessor: str | None = None) -> tuple[tuple[str, str], ...]:
    """:data:`METHODS` with the best-response sentences of ``rule`` and, when known, who read
    the scans (``assessor``: "investigator" or "independent")."""
    response = _SCAN_READING + ASSESSOR_TEXT.get(assessor or "", "") + _best_response_text(rule)
    return tuple((h, response if h == "Response" else p) for h, p in METHODS)


#: Short names of the figures for the contents list (the captions under them are longer).
FIGURE_TITLES = {
    "swimmer": "Figure 1. Treatment streams",
    "albi": "Figure 2. ALBI score by week",
    "km_os": "Figure 3. Overall survival",
    "km_pfs": "Figure 4. Progression-free survival",
    "km_line_group": "Figure 5. Overall survival by line",
    "km_dc4w": "Figure 6. Overall survival by disease control at 4 weeks",
    "forest": "Figure 7. Hazard ratios by subgroup",
}

_CSS = """
html { overflow-x: hidden; }
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; color: #1a1a1a;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; border-bottom: 2px solid #0072B2; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
.subtitle { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em; font-size: 0.88em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left;
         vertical-align: top; }
th { background: #eef4f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.note { color: #555; font-size: 0.85em; margin: 0.2em 0 1.2em; max-width: 60em; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { color: #444; font-size: 0.9em; margin-top: 0.3em; }
.toc { columns: 2; font-size: 0.92em; }
.warn { background: #fff6e0; border-left: 4px solid #E69F00; padding: 0.4em 0.8em; }
dl.prov { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1em;
          font-size: 0.9em; }
dl.prov dt { font-weight: bold; }
dl.prov dd { margin: 0; word-break: break-all; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _is_number_like(text: str) -> bool:
    t = text.strip()
    return bool(t) and (t[0].isdigit() or t[:1] in "-<>" or t.startswith("NR"))


def table_html(df, anchor: str) -> str:
    """One table as HTML: caption (``df.attrs['title']``), header, rows, note
    (``df.attrs['note']``)."""
    title = df.attrs.get("title", anchor.replace("_", " ").capitalize())
    out = [f'<h3 id="table-{_e(anchor)}">{_e(title)}</h3>', "<table>", "<thead><tr>"]
    out += [f"<th>{_e(c)}</th>" for c in df.columns]
    out.append("</tr></thead><tbody>")
    for row in df.itertuples(index=False):
        cells = []
        for value in row:
            text = _cell(value)
            cls = ' class="num"' if _is_number_like(text) else ""
            cells.append(f"<td{cls}>{_e(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if df.attrs.get("note"):
        out.append(f'<p class="note">{_e(df.attrs["note"])}</p>')
    return "\n".join(out)


def figure_html(path: Path, anchor: str, caption: str) -> str:
    """One figure embedded as a base64 PNG data URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (
        f'<figure id="figure-{_e(anchor)}"><h3>{_e(FIGURE_TITLES.get(anchor, anchor))}</h3>'
        f'<img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _metrics_html(summary: Mapping, names: Sequence[str]) -> str:
    metrics = summary.get("metrics", {})
    several = int(summary.get("replicates", 1)) > 1
    head = (
        "<tr><th>metric</th><th>median</th><th>95% range</th><th>mean</th></tr>"
        if several
        else "<tr><th>metric</th><th>value</th></tr>"
    )
    rows = []
    for name in names:
        stat = metrics.get(name)
        if stat is None:
            continue

        def f(x):
            return "NR / n.a." if x is None else f"{x:.3g}"

        if several:
            rows.append(
                f"<tr><td>{_e(name)}</td><td class='num'>{f(stat['median'])}</td>"
                f"<td class='num'>{f(stat['q025'])} - {f(stat['q975'])}</td>"
                f"<td class='num'>{f(stat['mean'])}</td></tr>"
            )
        else:
            rows.append(f"<tr><td>{_e(name)}</td><td class='num'>{f(stat['median'])}</td></tr>")
    return "<table>" + head + "".join(rows) + "</table>"


def write_report(
    path,
    *,
    title: str,
    subtitle: str,
    provenance: Mapping,
    summary: Mapping | None,
    headline: Sequence[str],
    tables: Mapping,
    figures: Mapping[str, tuple[Path, str]],
    notes: Sequence[str] = (),
    methods: Sequence[tuple[str, str]] | None = None,
) -> Path:
    """Write the report to ``path``.

    ``tables``: name -> formatted DataFrame (``attrs`` title and note); ``figures``: name ->
    (PNG path, caption); ``headline``: the summary metrics to show first; ``notes``: what could
    not be computed, shown in a box near the top; ``methods``: (heading, paragraph) pairs
    (default: the cohort analysis's :data:`METHODS`).
    """
    path = Path(path)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="subtitle">{_e(subtitle)}</p>',
    ]
    toc = [
        '<h2 id="contents">Contents</h2><ul class="toc">',
        '<li><a href="#provenance">Provenance</a></li>',
    ]
    if summary:
        toc.append('<li><a href="#headline">Headline results</a></li>')
    toc += [
        f'<li><a href="#table-{_e(k)}">{_e(v.attrs.get("title", k))}</a></li>'
        for k, v in tables.items()
    ]
    toc += [
        f'<li><a href="#figure-{_e(k)}">{_e(FIGURE_TITLES.get(k, c))}</a></li>'
        for k, (_, c) in figures.items()
    ]
    toc.append('<li><a href="#methods">Methods</a></li></ul>')
    parts += toc
    if notes:
        parts.append(
            '<div class="warn"><strong>Notes</strong><ul>'
            + "".join(f"<li>{_e(n)}</li>" for n in notes)
            + "</ul></div>"
        )
    parts.append('<h2 id="provenance">Provenance</h2><dl class="prov">')
    for key, value in provenance.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        parts.append(f"<dt>{_e(key)}</dt><dd>{_e(text)}</dd>")
    parts.append("</dl>")
    if summary:
        parts.append('<h2 id="headline">Headline results</h2>')
        parts.append(_metrics_html(summary, headline))
        parts.append(
            '<p class="note">Every metric of summary.json, with its definition, is listed in '
            "the README; months for times, fractions for shares.</p>"
        )
    parts.append('<h2 id="tables">Tables</h2>')
    parts += [table_html(df, name) for name, df in tables.items()]
    parts.append('<h2 id="figures">Figures</h2>')
    parts += [figure_html(p, name, caption) for name, (p, caption) in figures.items()]
    parts.append('<h2 id="methods">Methods</h2>')
    for heading, paragraph in METHODS if methods is None else methods:
        parts.append(f"<h3>{_e(heading)}</h3><p>{_e(paragraph)}</p>")
    parts.append("</body></html>")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path
