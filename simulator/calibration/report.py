"""The calibration report: ``report.md``, ``report.html``, ``calibration.json`` and figures."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hccsim.simulator.calibration.check import Z_LIMIT, Result

BASELINE_ROWS = (
    # label, published key in anchor_study.baseline, how to compute from the pool's baseline
    ("Male", "male", lambda b: b["male"].astype(bool)),
    ("Age >= 73 years", "age_ge_73", lambda b: b["age"] >= 73),
    ("HBsAg positive", "hbsag_positive", lambda b: b["hbv"] == True),  # noqa: E712
    ("HCV antibody positive", "hcv_ab_positive", lambda b: b["hcv"] == True),  # noqa: E712
    ("Weight < 60 kg", "weight_lt_60kg", lambda b: b["weight_kg"] < 60),
    ("ECOG 0", "ecog_0", lambda b: b["ecog"] == 0),
    ("ECOG 0-1", "ecog_le_1", lambda b: b["ecog"] <= 1),
    ("Child-Pugh B", ("child_pugh_class", "B"), lambda b: b["child_pugh_class"] == "B"),
    (
        "Intrahepatic lesions >= 8",
        "intrahepatic_lesions_ge_8",
        lambda b: b["intrahepatic_lesions"] >= 8,
    ),
    (
        "Largest lesion > 50 mm",
        "max_intrahepatic_lesion_gt_50mm",
        lambda b: b["max_lesion_mm"] > 50,
    ),
    ("Macrovascular invasion", "mvi", lambda b: b["mvi"].astype(bool)),
    ("Extrahepatic metastasis", "ehm", lambda b: b["ehm"].astype(bool)),
    ("BCLC C", ("bclc", "C"), lambda b: b["bclc"] == "C"),
)


def _fmt(x, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    if not math.isfinite(x):
        return "not reached" if x > 0 else "n/a"
    return f"{x:.{digits}f}"


def _digits(r: Result) -> int:
    return 3 if r.statistic in ("share", "landmark", "hr", "subgroup_hr") else 2


def _published(r: Result) -> str:
    d = _digits(r)
    text = _fmt(r.published, d)
    if r.ci:
        text += f" ({_fmt(r.ci[0], d)}-{_fmt(r.ci[1], d)})"
    return text


def _verdict_word(r: Result) -> str:
    if not r.counted:
        return "shown"
    if r.inside and r.z is not None and abs(r.z) <= Z_LIMIT:
        return "inside"
    return "**outside**" if not r.inside else "**|z| > 3.3**"


def result_rows(results: Sequence[Result]) -> list[list[str]]:
    rows = []
    for r in results:
        d = _digits(r)
        rows.append(
            [
                r.label,
                _published(r),
                _fmt(r.mean, d),
                f"{_fmt(r.low, d)} - {_fmt(r.high, d)}" if r.low is not None else "n/a",
                _fmt(r.z, 2),
                _verdict_word(r),
                ("fitted" if r.fitted else "check") if r.counted else "not counted",
                r.note,
            ]
        )
    return rows


SURVIVAL_HEAD = [
    "Target",
    "Published median",
    "Simulated median: mean (95% range)",
    "Simulated survival at the published median: mean (95% range)",
    "0.5 in that range",
]

SURVIVAL_LEAD = (
    "A Kaplan-Meier median read at scans sits in a scan window: a curve a few points above or "
    "below the trial's moves it by a whole imaging interval, and its z-score then overstates "
    "the miss. This table shows every median on the survival scale instead: the simulated "
    "survival just after the published median's day, which the trial's curve put at 0.5, "
    "over the same cohorts. Shown, not judged: the verdict uses the medians."
)


def survival_rows(results: Sequence[Result]) -> list[list[str]]:
    """One row per median target with survival-scale draws (see ``SURVIVAL_LEAD``)."""
    rows = []
    for r in results:
        if r.survival_mean is None:
            continue
        d = _digits(r)
        median = (
            f"{_fmt(r.mean, d)} ({_fmt(r.low, d)} - {_fmt(r.high, d)})"
            if r.mean is not None
            else "n/a"
        )
        inside = r.survival_low <= 0.5 <= r.survival_high
        rows.append(
            [
                r.label,
                _fmt(r.published, d),
                median,
                f"{r.survival_mean:.3f} ({r.survival_low:.3f} - {r.survival_high:.3f})",
                "yes" if inside else "no",
            ]
        )
    return rows


HEAD = [
    "Target",
    "Published (95% CI)",
    "Simulated mean",
    "Simulated 95% range",
    "z",
    "Verdict",
    "Role",
    "Note",
]


def md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(out)


def html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(c: str) -> str:
        c = html.escape(str(c))
        if c.startswith("**") and c.endswith("**"):
            c = f"<strong>{c[2:-2]}</strong>"
        return c

    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows]
    return "\n".join([*out, "</table>"])


def anchor_tables(data: Mapping, pool: Mapping, results: Sequence[Result]) -> dict[str, tuple]:
    """The anchor study's baseline, AE, response and ALBI tables, published next to simulated
    (``pool``: the anchor pool's per-patient results)."""
    n = int(data["anchor_study"]["n"])
    base = data["anchor_study"]["baseline"]
    b = pool["baseline"]
    rows = []
    for label, key, fn in BASELINE_ROWS:
        pub = base[key[0]][key[1]] if isinstance(key, tuple) else base[key]
        sim = float(np.mean(fn(b)))
        rows.append([label, f"{pub} ({100 * pub / n:.0f}%)", f"{100 * sim:.0f}%"])
    rows.append(["Age, median", str(base["age"]["median"]), f"{float(np.median(b['age'])):.0f}"])
    rows.append(
        ["AFP, median ng/mL", str(base["afp"]["median"]), f"{float(np.median(pool['afp'])):.0f}"]
    )
    rows.append(["ALBI, median", str(base["albi_median"]), f"{float(np.median(b['albi'])):.2f}"])
    baseline = (["Characteristic", f"Published (n = {n})", "Simulated (pool)"], rows)

    by_id = {r.id: r for r in results}

    def count_cell(r: Result | None) -> str:
        if r is None or r.mean is None:
            return "n/a"
        return f"{n * r.mean:.1f} ({n * r.low:.0f}-{n * r.high:.0f})"

    ae_rows = []
    for term, (anyg, g3) in data["anchor_study"]["safety"]["adverse_events"].items():
        ra, r3 = by_id.get(f"anchor_study.ae_any.{term}"), by_id.get(f"anchor_study.ae_g3.{term}")
        ae_rows.append([term.replace("_", " "), str(anyg), count_cell(ra), str(g3), count_cell(r3)])
    ae = (
        [
            "Adverse event",
            "Any grade, published",
            "Any grade, simulated mean (95% range)",
            "Grade >= 3, published",
            "Grade >= 3, simulated",
        ],
        ae_rows,
    )
    resp_rows = []
    for crit, name in (("recist", "RECIST 1.1"), ("mrecist", "mRECIST")):
        counts = data["anchor_study"]["efficacy"][f"best_response_{crit}"]
        for cat, c in counts.items():
            resp_rows.append(
                [
                    name,
                    cat,
                    str(c),
                    count_cell(by_id.get(f"anchor_study.best_response_{crit}.{cat}")),
                ]
            )
    response = (
        ["Criterion", "Best response", "Published (of 37)", "Simulated mean (95% range)"],
        resp_rows,
    )
    albi_rows = []
    for week, v in data["anchor_study"]["liver_function"]["albi_median_by_week"].items():
        r = by_id.get(f"anchor_study.albi_week_{week}")
        albi_rows.append(
            [
                week,
                f"{v:.2f}",
                _fmt(r.mean) if r else "n/a",
                f"{_fmt(r.low)} - {_fmt(r.high)}" if r else "n/a",
            ]
        )
    albi = (["Week", "Published median ALBI", "Simulated mean", "Simulated 95% range"], albi_rows)
    return {
        "Baseline": baseline,
        "Adverse events": ae,
        "Best response": response,
        "ALBI over 12 weeks": albi,
    }


def figures(results: Sequence[Result], out: Path) -> list[str]:
    """Published vs simulated medians with intervals, one panel per endpoint family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    names = []
    families = (
        (
            "os",
            "Median overall survival (months)",
            lambda r: r.statistic == "median" and r.id.endswith((".os", "os_median")),
        ),
        (
            "pfs",
            "Median PFS / TTP (months)",
            lambda r: r.statistic == "median" and not r.id.endswith((".os", "os_median")),
        ),
        (
            "response",
            "Objective response rate",
            lambda r: r.statistic == "share" and ".orr_" in r.id,
        ),
    )
    for key, title, pick in families:
        rs = [r for r in results if pick(r) and r.mean is not None]
        if not rs:
            continue
        fig, ax = plt.subplots(figsize=(8, 0.32 * len(rs) + 1.2))
        y = np.arange(len(rs))[::-1]
        for yi, r in zip(y, rs, strict=True):
            hi = r.high if math.isfinite(r.high) else r.mean * 2
            ax.plot([r.low, hi], [yi - 0.12] * 2, color="tab:blue", lw=3, alpha=0.6)
            ax.plot(r.mean, yi - 0.12, "o", color="tab:blue", ms=4)
            if r.ci:
                ax.plot(list(r.ci), [yi + 0.12] * 2, color="black", lw=1.2)
            ax.plot(r.published, yi + 0.12, "s", color="black", ms=4)
        ax.set_yticks(y)
        ax.set_yticklabels(
            [r.label.replace(": median", ":").replace("anchor study", "anchor") for r in rs],
            fontsize=7,
        )
        ax.set_title(
            f"{title}\npublished (black, 95% CI) vs simulated (blue, 95% range)", fontsize=9
        )
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        name = f"figures/{key}.png"
        fig.savefig(out.parent / name, dpi=110)
        plt.close(fig)
        names.append(name)
    return names


def _rounded(obj):
    """``obj`` with every finite float to 10 significant digits: sums over thousands of patients
    differ in the last bits between machines (BLAS, summation order), and the committed report
    should not change with the machine that wrote it."""
    if isinstance(obj, float):
        return float(f"{obj:.10g}") if math.isfinite(obj) else obj
    if isinstance(obj, Mapping):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_rounded(v) for v in obj]
    return obj


def write(
    out: Path,
    results: Sequence[Result],
    verdict: Mapping,
    provenance: Mapping,
    anchor: Mapping[str, tuple],
    notes: Sequence[str] = (),
    gaps: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """``gaps``: why a target that does not pass misses (``known_gaps.yaml``), shown beside it
    in the table of targets that do not pass and as ``gap_reason`` in calibration.json."""
    from hccsim.simulator.calibration.check import as_dicts

    gaps = dict(gaps or {})
    out.mkdir(parents=True, exist_ok=True)
    figs = figures(results, out / "figures")
    rows = as_dicts(results)
    for row in rows:
        row["gap_reason"] = gaps.get(row["id"])
    payload = _rounded({"verdict": verdict, "provenance": provenance, "targets": rows})
    (out / "calibration.json").write_text(json.dumps(payload, indent=1) + "\n", "utf-8")

    counted = verdict["counted"]
    status = "PASSED" if verdict["passed"] else "FAILED"
    lead = [
        "# hccsim calibration check",
        "",
        f"**{status}.** {verdict['inside']} of {counted} counted targets "
        f"({100 * verdict['pass_rate']:.1f}%) lie inside their simulated central 95% range "
        f"(required: at least {100 * verdict['rules']['pass_share']:.0f}%); "
        f"{len(verdict['beyond_z_limit'])} beyond |z| = {verdict['rules']['z_limit']} (required: none); "
        "anchor study's medians inside: "
        + ", ".join(
            f"{k.split('.')[1]} {'yes' if v else 'no'}" for k, v in verdict["anchor_inside"].items()
        )
        + ".",
        "",
        f"Parameter set `{provenance['parameters']['version']}` (sha256 {provenance['parameters']['sha256'][:12]}), "
        f"targets sha256 {provenance['targets']['sha256'][:12]}, seed {provenance['seed']}, "
        f"{provenance['resamples']} cohorts of the published size per target, pools of "
        f"{provenance['pool']['factor']:g} x the arm size (at least {provenance['pool']['minimum']}), "
        f"hccsim {provenance['hccsim']}, {provenance['date']}, {provenance['seconds']:.0f} s.",
        "",
        "Method: each study of targets.yaml is emulated by `scenarios/calibration/<study>.yaml`. "
        "For every arm a large pool is simulated (every patient on that arm; accrual scaled so "
        "that enrolment lasts as in the trial; the trial's data cut). Cohorts of the published "
        "arm size are resampled from the pools and each target's statistic is computed as "
        "published (Kaplan-Meier medians, Cox hazard ratios with Efron ties, shares of the arm). "
        "A target is inside when the published figure lies in the simulated central 95% range, "
        "widened by the rounding of the published figure (half a unit of its last digit); "
        "z = (published - simulated mean) / sd, sd combining the spread over cohorts and that "
        "rounding. Hazard ratios are checks, never fitted. Quantities fed straight into a "
        "preset are shown but not counted.",
        "",
    ]
    if notes:
        lead += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    failing = [
        r
        for r in results
        if r.counted and not (r.inside and r.z is not None and abs(r.z) <= Z_LIMIT)
    ]
    fail_head = [*HEAD, "Why (model gap)"]
    fail_rows = [
        [*row, gaps.get(r.id, "not explained")]
        for r, row in zip(failing, result_rows(failing), strict=True)
    ]
    md = list(lead)
    md += ["## Targets that do not pass", ""]
    md += [md_table(fail_head, fail_rows) if failing else "None.", ""]
    surv_rows = survival_rows(results)
    if surv_rows:
        md += ["## Medians on the survival scale", "", SURVIVAL_LEAD, ""]
        md += [md_table(SURVIVAL_HEAD, surv_rows), ""]
    md += ["## Figures", ""] + [f"![{f}]({f})" for f in figs] + [""]
    studies: list[str] = []
    for r in results:
        if r.study not in studies:
            studies.append(r.study)
    for s in studies:
        rs = [r for r in results if r.study == s]
        md += [f"## {s}", "", md_table(HEAD, result_rows(rs)), ""]
    md += ["## The anchor study, published and simulated", ""]
    for title, (head, rows) in anchor.items():
        md += [f"### {title}", "", md_table(head, rows), ""]
    (out / "report.md").write_text("\n".join(md), "utf-8")

    body = [
        "<!doctype html><html><head><meta charset='utf-8'><title>hccsim calibration check</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:12px;margin-bottom:1em}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}th{background:#eee}"
        "img{max-width:100%}</style></head><body>",
    ]
    for line in lead:
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<li>{html.escape(line[2:])}</li>")
        elif line:
            text = html.escape(line)
            if text.startswith("**"):
                end = text.index("**", 2)
                text = f"<strong>{text[2:end]}</strong>{text[end + 2 :]}"
            body.append(f"<p>{text}</p>")
    body += [
        "<h2>Targets that do not pass</h2>",
        html_table(fail_head, fail_rows) if failing else "<p>None.</p>",
    ]
    if surv_rows:
        body += [
            "<h2>Medians on the survival scale</h2>",
            f"<p>{html.escape(SURVIVAL_LEAD)}</p>",
            html_table(SURVIVAL_HEAD, surv_rows),
        ]
    body += ["<h2>Figures</h2>"] + [f"<img src='{f}' alt='{f}'>" for f in figs]
    for s in studies:
        rs = [r for r in results if r.study == s]
        body += [f"<h2>{html.escape(s)}</h2>", html_table(HEAD, result_rows(rs))]
    body.append("<h2>The anchor study, published and simulated</h2>")
    for title, (head, rows) in anchor.items():
        body += [f"<h3>{html.escape(title)}</h3>", html_table(head, rows)]
    body.append("</body></html>")
    (out / "report.html").write_text("\n".join(body), "utf-8")
    return {"md": out / "report.md", "html": out / "report.html", "json": out / "calibration.json"}
