"""Paper-style figures of the cohort tables (DESIGN section 8), as PNG files.

:func:`make_figures` draws every figure of :data:`FIGURE_NAMES` that the tables allow and
returns their paths in a :class:`FigureSet` (a dict), whose ``notes`` say why a figure was
left out (sparse real data: no labs, no scans, a group without patients; never an exception)
and whose ``captions`` describe each figure drawn. Bad arguments raise ``ValueError``.

**Replicates.** A real cohort is one replicate; a simulated study has many. Every figure shows
one replicate (``replicate=``; by default the lowest id), and, when the tables hold two or more,
the spread across replicates (at most ``max_replicates`` of them, the lowest ids):

- Kaplan-Meier figures (:func:`km_band`): each replicate's curve is evaluated on a common grid
  of times (weekly, ``BAND_GRID_DAYS``; finer than a monthly grid, so that the band follows
  the steep early part of a PFS curve) and the band is the pointwise 2.5% and 97.5% quantiles
  across replicates (numpy's "linear" method). A replicate's curve counts at time t only when t
  is within its follow-up (at most its longest observed time: beyond that the curve is not
  estimated), and only replicates in which the group has patients count; the band is drawn
  where at least half of those replicates (and at least two) count. The band is not built to
  contain the shown replicate's curve: that replicate may well be one of the 5% outside it.
- ALBI: the 95% range (2.5%-97.5% quantiles) of the weekly medians across replicates.
- Forest plot: the 95% range of the hazard ratios across replicates (numpy Cox fits,
  :func:`survival.cox_binary_hr`), beside the shown replicate's hazard ratio and Wald CI.

**Figures.**

- ``swimmer``: treatment streams, one bar per patient (sorted by the duration of the index
  line, longest on top), one segment per line coloured by drug (earlier lines at negative
  times), a thin line for follow-up after the last line, and markers for the first CR or PR of
  the index line (RECIST 1.1, the patients whose best response is CR or PR,
  :func:`response.time_to_response`), the first PD scan of the index line (RECIST 1.1), death,
  and an open arrow for alive at the last follow-up. At most ``max_patients`` patients (the
  lowest ids; the title says so).
- ``albi``: ALBI at weeks 0-12 on the index line (:func:`liver.albi_by_week`,
  ``on_index_line=True``): median and interquartile range per week, the number measured under
  each week, dashed lines at the mALBI cut-offs -2.60, -2.27 and -1.39.
- ``km_os``, ``km_pfs`` (RECIST 1.1 and mRECIST), ``km_line_group`` (OS by index line: 2nd vs
  3rd or later, and 1st when present), ``km_dc4w`` (OS from day 0 by disease control at >= 4
  weeks, as the anchor study did; the figure notes its guarantee-time bias): Kaplan-Meier step
  curves (:func:`survival.kaplan_meier`) with pointwise 95% limits by the log(-log) transform
  (:func:`survival.km_confidence`), censoring ticks, the median with its 95% CI
  (:func:`survival.km_median_ci`) in the legend and as dotted drop lines, and the numbers at
  risk (patients with a time >= t, :func:`numbers_at_risk`) under the plot at the month ticks.
- ``forest``: hazard ratios with their CIs on a log axis, one row per factor and endpoint,
  labelled "group_test vs group_ref", with the HR (CI) as text on the right. Given by the
  caller (``subgroups=``) or computed by :func:`subgroup_hazard_ratios`: univariable Cox models
  of OS (lifelines, Efron ties, Wald CIs; :func:`survival.cox_univariable`) of baseline factors.

Times are drawn in months of ``DAYS_PER_MONTH`` (30.4375) days.

**Style.** The Okabe-Ito colour-blind-safe palette (:data:`OKABE_ITO`), a fixed colour (and
hatching) for each drug of the catalogue (:data:`DRUG_STYLES`; other drugs take greys with
hatching, in the order of their names), matplotlib's default style with the sizes of
:data:`_STYLE` whatever the user's matplotlibrc says. Figures are drawn with ``Figure`` and the
Agg canvas, never pyplot (no global figure state), and saved without the "Software" PNG text
chunk, so that the same tables give byte-identical files. matplotlib is imported inside the
drawing functions only.
"""

from __future__ import annotations

import math
import numbers
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hccsim.analysis import liver, survival
from hccsim.analysis.endpoints import (
    disease_control_4w,
    line_group,
    overall_survival,
    progression_free_survival,
)
from hccsim.analysis.frames import as_float, as_text, index_line_rows, locate
from hccsim.analysis.response import as_response_rule, time_to_response
from hccsim.analysis.safety import child_pugh_classes
from hccsim.analysis.schema import TABLES, as_columns
from hccsim.analysis.summary import DAYS_PER_MONTH

FIGURE_NAMES = ("swimmer", "albi", "km_os", "km_pfs", "km_line_group", "km_dc4w", "forest")

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#000000",  # black
)
#: Colours of the curves of a Kaplan-Meier figure, in order (yellow is left out: too pale on
#: white for a line).
CURVE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")

#: Fill colour and hatch of each drug of the catalogue (no hatch: "").
DRUG_STYLES: dict[str, tuple[str, str]] = {
    "ramucirumab": ("#0072B2", ""),
    "sorafenib": ("#E69F00", ""),
    "lenvatinib": ("#56B4E9", ""),
    "regorafenib": ("#009E73", ""),
    "cabozantinib": ("#F0E442", ""),
    "atezolizumab_bevacizumab": ("#D55E00", ""),
    "durvalumab_tremelimumab": ("#CC79A7", ""),
    "durvalumab": ("#CC79A7", "//"),
    "nivolumab": ("#56B4E9", "//"),
    "pembrolizumab": ("#009E73", "//"),
    "placebo": ("#DDDDDD", ""),
    "best_supportive_care": ("#999999", ""),
}
#: Styles of drugs outside the catalogue, taken in turn in the order of their names.
EXTRA_DRUG_STYLES = (
    ("#BBBBBB", "xx"),
    ("#777777", ".."),
    ("#DDDDDD", "\\\\"),
    ("#555555", "++"),
    ("#AAAAAA", "--"),
    ("#EEEEEE", "oo"),
)
_DRUG_LABELS = {
    "atezolizumab_bevacizumab": "Atezolizumab + bevacizumab",
    "durvalumab_tremelimumab": "Durvalumab + tremelimumab",
    "best_supportive_care": "Best supportive care",
}
#: mALBI cut-offs (grade 1 <= -2.60 < 2a <= -2.27 < 2b <= -1.39 < 3).
MALBI_CUTOFFS = ((-2.60, "1 | 2a"), (-2.27, "2a | 2b"), (-1.39, "2b | 3"))
#: Spacing of the common grid of the across-replicate Kaplan-Meier bands (days).
BAND_GRID_DAYS = 7.0
#: A band point is drawn where at least this share of the replicates (and two) count.
BAND_MIN_SHARE = 0.5
#: Figure size in inches (width, height) of every figure but the swimmer plot.
FIGSIZE = (8.0, 5.0)

_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10.0,
    "axes.titlesize": 12.0,
    "axes.titleweight": "bold",
    "axes.labelsize": 10.5,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9.0,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "hatch.linewidth": 0.6,
    "hatch.color": "#333333",
}
_Z95 = 1.959963984540054


# -- arguments and results -----------------------------------------------------------------------


class NotDrawn(ValueError):
    """The tables hold nothing to draw for a figure (``make_figures`` records it as a note)."""


class FigureSet(dict):
    """Figure name -> PNG path of the figures drawn, in :data:`FIGURE_NAMES` order.

    ``notes``: a list of texts, "<figure>: <text>", on the figures not drawn (and why) or what
    to know about one (for example the forest factors left out); :func:`figure_notes` gives
    them by figure name. ``captions``: figure name -> a caption for each figure drawn.
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_figure: dict[str, str] = {}
        self.captions: dict[str, str] = {}

    @property
    def notes(self) -> list[str]:
        return [f"{name}: {text}" for name, text in self.by_figure.items()]


def figure_notes(figures: FigureSet) -> dict[str, str]:
    """The notes of a :func:`make_figures` result by figure name (name -> text)."""
    if not isinstance(figures, FigureSet):
        raise ValueError(
            f"figures must be the FigureSet make_figures returns, not {type(figures).__name__}"
        )
    return dict(figures.by_figure)


def _whole(value, name: str, low: int, high: int | None = None) -> int:
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        allowed = f"a whole number >= {low}" + (f" and <= {high}" if high is not None else "")
        raise ValueError(f"{name} must be {allowed}, not {value!r}")
    return int(value)


def _check_path(value, name: str) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise ValueError(f"{name} must be a file-system path (str or Path), not {value!r}")
    return Path(value)


def _check_interval(value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (math.isfinite(value) and value > 0)
    ):
        raise ValueError(f"scan_interval_days must be a positive number of days, not {value!r}")
    return float(value)


def _empty_table(name: str) -> dict[str, np.ndarray]:
    kinds = {"int64": np.int64, "float64": np.float64, "bool": np.bool_, "string": object}
    return {c.name: np.empty(0, dtype=kinds[c.dtype]) for c in TABLES[name]}


def _columns(tables) -> dict[str, dict[str, np.ndarray]]:
    """Every cohort table as numpy columns; a table that is absent is empty."""
    if not isinstance(tables, Mapping):
        raise ValueError(
            f"tables must map table names to tables (patients, lines, ...), not "
            f"{type(tables).__name__}"
        )
    if "patients" not in tables:
        raise ValueError(
            f"tables must hold a 'patients' table; got tables {sorted(map(str, tables))}"
        )
    out = {}
    for name in TABLES:
        out[name] = as_columns(tables[name]) if tables.get(name) is not None else _empty_table(name)
        for c in ("replicate", "patient_id"):
            if c not in out[name]:
                raise ValueError(f"tables: table {name!r} has no column {c!r}")
    if not len(out["patients"]["patient_id"]):
        raise ValueError("tables: table 'patients' has no rows; there is nothing to draw")
    return out


def _replicate_ids(cols) -> np.ndarray:
    return np.unique(np.asarray(cols["patients"]["replicate"], dtype=np.int64))


def _pick_replicate(cols, replicate) -> int:
    ids = _replicate_ids(cols)
    if replicate is None:
        return int(ids[0])
    if isinstance(replicate, bool) or not isinstance(replicate, int | np.integer):
        raise ValueError(f"replicate must be None or an integer, not {replicate!r}")
    if int(replicate) not in set(ids.tolist()):
        listed = ", ".join(map(str, ids[:10].tolist())) + (" ..." if len(ids) > 10 else "")
        raise ValueError(
            f"replicate={replicate!r} is not in table 'patients' (replicates: {listed})"
        )
    return int(replicate)


def _subset(cols, keep_replicates) -> dict[str, dict[str, np.ndarray]]:
    """The tables restricted to the replicates in ``keep_replicates``."""
    keep = np.asarray(sorted(keep_replicates), dtype=np.int64)
    out = {}
    for name, frame in cols.items():
        rows = np.isin(np.asarray(frame["replicate"], dtype=np.int64), keep)
        out[name] = {c: np.asarray(v)[rows] for c, v in frame.items()}
    return out


# -- drawing helpers -----------------------------------------------------------------------------


def _new_figure(figsize=FIGSIZE):
    """A figure on the Agg canvas (no pyplot), with constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style():
    import matplotlib.style

    return matplotlib.style.context(["default", _STYLE])


def _save(fig, out_path: Path, dpi: int) -> Path:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, format="png", dpi=dpi, metadata={"Software": None})
    return out_path


def _months(days) -> np.ndarray:
    return np.asarray(days, dtype=float) / DAYS_PER_MONTH


def drug_style(drug: str, extras: Sequence[str] = ()) -> tuple[str, str]:
    """(fill colour, hatch) of ``drug``: :data:`DRUG_STYLES`, or for another drug the
    :data:`EXTRA_DRUG_STYLES` entry of its rank among the sorted ``extras``."""
    if drug in DRUG_STYLES:
        return DRUG_STYLES[drug]
    others = sorted({d for d in extras if d not in DRUG_STYLES} | {drug})
    return EXTRA_DRUG_STYLES[others.index(drug) % len(EXTRA_DRUG_STYLES)]


def drug_label(drug: str) -> str:
    """A drug name for a legend: "atezolizumab_bevacizumab" -> "Atezolizumab + bevacizumab"."""
    if drug in _DRUG_LABELS:
        return _DRUG_LABELS[drug]
    text = str(drug).replace("_", " ")
    return text[:1].upper() + text[1:]


def month_ticks(max_months: float) -> np.ndarray:
    """Regular month ticks from 0 covering ``max_months``: every 1, 2, 3, 6, 12 or 24 months,
    the smallest step giving at most 10 intervals."""
    top = max(float(max_months), 1.0)
    step = next((s for s in (1, 2, 3, 6, 12, 24) if top / s <= 10), 12 * math.ceil(top / 120))
    return np.arange(0.0, top + 1e-9, step)


def _fmt_months(x: float) -> str:
    return "NR" if not math.isfinite(x) else f"{x:.1f}"


# -- Kaplan-Meier data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KMSteps:
    """What a Kaplan-Meier figure draws for one curve, in months.

    ``event_months``, ``survival``, ``lower`` and ``upper``: :func:`survival.kaplan_meier` and
    its 95% log(-log) limits (:func:`survival.km_confidence`) at the distinct event times;
    ``end_months`` the longest observed time; ``censor_months`` the censoring times (one per
    censored patient) and ``censor_survival`` the estimate there; the median and its 95% CI
    (:func:`survival.km_median_ci`; ``inf``: not reached).
    """

    event_months: np.ndarray
    survival: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    end_months: float
    censor_months: np.ndarray
    censor_survival: np.ndarray
    median: float
    median_lower: float
    median_upper: float

    def xy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step-"post" arrays (x, survival, lower, upper): from (0, 1) through every event time
        to the longest observed time."""
        x = np.concatenate(([0.0], self.event_months))
        s = np.concatenate(([1.0], self.survival))
        lo = np.concatenate(([1.0], self.lower))
        hi = np.concatenate(([1.0], self.upper))
        if self.end_months > x[-1]:
            x = np.append(x, self.end_months)
            s, lo, hi = np.append(s, s[-1]), np.append(lo, lo[-1]), np.append(hi, hi[-1])
        return x, s, lo, hi


def km_steps(durations, events) -> KMSteps:
    """The step data of a Kaplan-Meier figure; ``durations`` in days (see :class:`KMSteps`)."""
    d = np.asarray(durations, dtype=float)
    km = survival.kaplan_meier(d, events)  # checks the arguments
    e = np.asarray(events).astype(bool)
    if not len(d):
        raise ValueError("durations must not be empty for a Kaplan-Meier curve")
    lower, upper = survival.km_confidence(km)
    med = survival.km_median_ci(d, e)
    censored = np.sort(d[~e])
    return KMSteps(
        _months(km.times),
        km.survival.copy(),
        lower,
        upper,
        float(d.max()) / DAYS_PER_MONTH,
        _months(censored),
        km.at(censored),
        med.median / DAYS_PER_MONTH,
        med.lower / DAYS_PER_MONTH,
        med.upper / DAYS_PER_MONTH,
    )


def numbers_at_risk(durations, months) -> np.ndarray:
    """Patients with a time (days) >= each of ``months`` x :data:`DAYS_PER_MONTH` days."""
    d = np.sort(np.asarray(durations, dtype=float))
    t = np.asarray(months, dtype=float) * DAYS_PER_MONTH
    return (len(d) - np.searchsorted(d, t, side="left")).astype(int)


@dataclass(frozen=True)
class KMBand:
    """A pointwise band across replicates of a Kaplan-Meier curve (module docstring).

    ``lower`` and ``upper`` (NaN where too few replicates count) at ``grid_months``;
    ``n_defined`` replicates counting at each grid time, of ``n_replicates`` with patients.
    """

    grid_months: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_defined: np.ndarray
    n_replicates: int


def km_band(
    durations,
    events,
    replicates,
    grid_months,
    *,
    quantiles: tuple[float, float] = (0.025, 0.975),
    min_share: float = BAND_MIN_SHARE,
) -> KMBand:
    """Pointwise quantiles across replicates of their Kaplan-Meier curves at ``grid_months``.

    ``durations`` (days), ``events`` and ``replicates`` (the replicate of each patient) are
    per patient. Each replicate's curve is :func:`survival.kaplan_meier` of its patients,
    evaluated (right-continuous) at the grid times within its follow-up (<= its longest time);
    the band is drawn (not NaN) where at least ``min_share`` of the replicates, and two, count.
    """
    survival.kaplan_meier(durations, events)  # checks durations and events
    d, e = np.asarray(durations, dtype=float), np.asarray(events).astype(bool)
    rep = np.asarray(replicates)
    if rep.shape != d.shape:
        raise ValueError(
            f"replicates must have one value per patient ({d.shape}); got shape {rep.shape}"
        )
    grid = np.asarray(grid_months, dtype=float)
    if grid.ndim != 1 or not len(grid) or not np.all(np.isfinite(grid)) or np.any(grid < 0):
        raise ValueError(f"grid_months must be a non-empty 1-d array of months >= 0; got {grid!r}")
    q = tuple(quantiles)
    if len(q) != 2 or not all(0 <= x <= 1 for x in q) or q[0] >= q[1]:
        raise ValueError(f"quantiles must be two increasing numbers in [0, 1]; got {quantiles!r}")
    if not (isinstance(min_share, int | float) and 0 < min_share <= 1):
        raise ValueError(f"min_share must be a number in (0, 1]; got {min_share!r}")
    ids = np.unique(rep)
    values = np.full((len(ids), len(grid)), np.nan)
    t = grid * DAYS_PER_MONTH
    for i, r in enumerate(ids):
        mine = rep == r
        km = survival.kaplan_meier(d[mine], e[mine])
        inside = t <= d[mine].max()
        values[i, inside] = km.at(t[inside])
    n_defined = np.sum(~np.isnan(values), axis=0)
    lower, upper = np.full(len(grid), np.nan), np.full(len(grid), np.nan)
    enough = (n_defined >= max(2, math.ceil(min_share * len(ids)))) & (n_defined > 0)
    for j in np.flatnonzero(enough):
        col = values[:, j][~np.isnan(values[:, j])]
        lower[j], upper[j] = np.quantile(col, q, method="linear")
    return KMBand(grid, lower, upper, n_defined, len(ids))


@dataclass(frozen=True)
class KMCurve:
    """One curve of :func:`km_plot`: a label, per-patient ``durations`` (days) and ``events``,
    and optionally the across-replicate band (:func:`km_band`), a colour and a short label
    for the numbers-at-risk table."""

    label: str
    durations: np.ndarray
    events: np.ndarray
    band: KMBand | None = None
    colour: str | None = None
    short_label: str | None = None  # for the numbers at risk (default: ``label``)


def km_plot(
    curves: Sequence[KMCurve],
    out_path,
    *,
    title: str,
    xlabel: str = "Months",
    ylabel: str = "Survival probability",
    note: str | None = None,
    band_label: str = "95% range across replicates",
    dpi: int = 120,
) -> Path:
    """Kaplan-Meier curves with 95% CIs, censoring ticks, medians and numbers at risk.

    ``curves``: one or more :class:`KMCurve` (each with at least one patient); ``note``: text
    printed under the numbers at risk. Returns the path of the PNG written.
    """
    if isinstance(curves, KMCurve):
        curves = [curves]
    curves = list(curves) if isinstance(curves, Sequence) else curves
    if (
        not isinstance(curves, list)
        or not curves
        or not all(isinstance(c, KMCurve) for c in curves)
    ):
        raise ValueError(f"curves must be a non-empty list of KMCurve; got {curves!r:.80}")
    for c in curves:
        if not len(np.asarray(c.durations)):
            raise ValueError(f"curves: curve {c.label!r} has no patients")
    if not isinstance(title, str):
        raise ValueError(f"title must be a string, not {title!r}")
    out_path = _check_path(out_path, "out_path")
    dpi = _whole(dpi, "dpi", 30, 1200)
    steps = [km_steps(c.durations, c.events) for c in curves]
    colours = [c.colour or CURVE_COLOURS[i % len(CURVE_COLOURS)] for i, c in enumerate(curves)]
    top = max(s.end_months for s in steps)
    for c in curves:
        if c.band is not None and np.any(np.isfinite(c.band.lower)):
            top = max(top, float(c.band.grid_months[np.isfinite(c.band.lower)].max()))
    ticks = month_ticks(top)
    k = len(curves)
    with _style():
        height = FIGSIZE[1] + 0.25 * k + (0.5 if note else 0.0)
        fig = _new_figure((FIGSIZE[0], height))
        ratios = [5.0, 0.3 + 0.3 * k] + ([0.25 + 0.17 * len(_wrap(note))] if note else [])
        gs = fig.add_gridspec(len(ratios), 1, height_ratios=ratios)
        ax = fig.add_subplot(gs[0])
        tab = fig.add_subplot(gs[1], sharex=ax)
        handles = []
        for c, s, col in zip(curves, steps, colours, strict=True):
            x, y, lo, hi = s.xy()
            ax.fill_between(x, lo, hi, step="post", color=col, alpha=0.15, linewidth=0)
            (line,) = ax.step(x, y, where="post", color=col, linewidth=1.8)
            ax.plot(
                s.censor_months, s.censor_survival, linestyle="none", marker="|",
                markersize=7, markeredgewidth=1.1, color=col,
            )  # fmt: skip
            if math.isfinite(s.median):
                ax.plot([0, s.median, s.median], [0.5, 0.5, 0.0], ":", color=col, linewidth=0.9)
            median = (
                f"median {_fmt_months(s.median)} mo (95% CI {_fmt_months(s.median_lower)}"
                f"\u2013{_fmt_months(s.median_upper)})"
            )
            line.set_label(f"{c.label}: {median}")
            handles.append(line)
            if c.band is not None:
                ax.step(c.band.grid_months, c.band.lower, where="post", color=col,
                        linestyle="--", linewidth=0.9)  # fmt: skip
                ax.step(c.band.grid_months, c.band.upper, where="post", color=col,
                        linestyle="--", linewidth=0.9)  # fmt: skip
        key = "Shaded: pointwise 95% CI.  |: censored."
        if any(c.band is not None for c in curves):
            n = max(c.band.n_replicates for c in curves if c.band is not None)
            key += f"  Dashed: {band_label} (n = {n})."
        ax.legend(handles=handles, loc="best", fontsize=8.5, frameon=True, facecolor="white",
                  edgecolor="none", framealpha=0.85)  # fmt: skip
        ax.set_xlim(0, ticks[-1] if ticks[-1] >= top else top)
        ax.set_ylim(0, 1.03)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_xticks(ticks)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", color="#DDDDDD", linewidth=0.6)
        # numbers at risk
        for i, (c, col) in enumerate(zip(curves, colours, strict=True)):
            for t, n in zip(ticks, numbers_at_risk(c.durations, ticks), strict=True):
                tab.text(t, i, str(n), ha="center", va="center", fontsize=9, color=col)
        tab.set_ylim(k - 0.5, -0.5)
        tab.set_yticks(range(k))
        tab.set_yticklabels([c.short_label or c.label for c in curves], fontsize=8.5)
        for lab, col in zip(tab.get_yticklabels(), colours, strict=True):
            lab.set_color(col)
        tab.tick_params(left=False, bottom=False, labelbottom=False, pad=14)
        for side in ("left", "bottom", "top", "right"):
            tab.spines[side].set_visible(False)
        tab.set_title("Number at risk", loc="left", fontsize=9, fontweight="normal")
        tab.set_title(key, loc="right", fontsize=8, fontweight="normal", color="#333333")
        if note:
            cap = fig.add_subplot(gs[2])
            cap.axis("off")
            cap.text(0.0, 1.0, "\n".join(_wrap(note)), ha="left", va="top", fontsize=8.5,
                     transform=cap.transAxes, in_layout=False)  # fmt: skip
        path = _save(fig, out_path, dpi)
    return path


def _wrap(text: str, width: int = 105) -> list[str]:
    return textwrap.wrap(text, width) or [""]


# -- swimmer plot --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SwimmerData:
    """What :func:`swimmer_plot` draws (days from the index start), in drawing order (top row
    first): the patients shown, their lines, follow-up and event days (NaN: none)."""

    patient_id: np.ndarray
    index_duration: np.ndarray  # days on the index line (0 without an index-line row)
    segments: list  # per patient: list of (start_day, end_day, drug, is_index)
    last_line_end: np.ndarray
    last_follow_up: np.ndarray
    death: np.ndarray
    response_day: np.ndarray  # first CR/PR of the index line (RECIST 1.1); NaN: none
    progression_day: np.ndarray  # first PD scan of the index line (RECIST 1.1); NaN: none
    n_patients: int  # patients of the replicate (before the cap)
    replicate: int


def swimmer_data(
    tables, *, replicate=None, max_patients: int = 60, confirm: bool = False
) -> SwimmerData:
    """The data of the swimmer plot of one replicate (module docstring); ``confirm``: a CR or
    PR is marked only when confirmed (the response rule of the analysis)."""
    max_patients = _whole(max_patients, "max_patients", 1)
    cols = _columns(tables)
    shown = _pick_replicate(cols, replicate)
    cols = _subset(cols, [shown])
    pt, ln, a = cols["patients"], cols["lines"], cols["assessments"]
    n_all = len(pt["patient_id"])
    pid = np.asarray(pt["patient_id"], dtype=np.int64)
    chosen = np.sort(np.argsort(pid, kind="stable")[:max_patients])  # lowest ids, table order
    response = time_to_response(cols, "recist1.1", confirm=confirm)
    # first PD scan of the index line
    pd_day = np.full(n_all, np.inf)
    if len(a["patient_id"]):
        row, found = locate(pt, a)
        resp = as_text(a["response_recist"])
        on_index = (
            found
            & (np.asarray(a["line"], dtype=np.int64) == np.asarray(pt["index_line"])[row])
            & ~np.asarray(a["baseline"], dtype=bool)
            & (resp == "PD")
        )
        np.minimum.at(pd_day, row[on_index], as_float(a["day"])[on_index])
    idx = index_line_rows(pt, ln)
    start, end = as_float(ln["start_day"]), as_float(ln["end_day"])
    index_duration = np.where(idx >= 0, (end - start)[np.maximum(idx, 0)] if len(end) else 0.0, 0.0)
    lrow, lfound = locate(pt, ln)
    drugs = as_text(ln["drug"])
    last_fu = as_float(pt["last_follow_up_day"])
    death = np.asarray(pt["death"]).astype(bool)
    order = sorted(chosen.tolist(), key=lambda i: (-index_duration[i], pid[i]))
    segments, last_end = [], []
    for i in order:
        mine = np.flatnonzero(lfound & (lrow == i))
        mine = mine[np.argsort(start[mine], kind="stable")]
        segments.append(
            [(float(start[j]), float(end[j]), drugs[j] or "unknown", j == idx[i]) for j in mine]
        )
        last_end.append(float(end[mine].max()) if len(mine) else 0.0)
    o = np.asarray(order, dtype=np.intp)
    return SwimmerData(
        pid[o],
        index_duration[o],
        segments,
        np.asarray(last_end),
        last_fu[o],
        death[o],
        np.where(np.isfinite(response[o]), response[o], np.nan),
        np.where(np.isfinite(pd_day[o]), pd_day[o], np.nan),
        n_all,
        shown,
    )


def swimmer_plot(
    tables,
    out_path,
    *,
    replicate=None,
    max_patients: int = 60,
    dpi: int = 120,
    confirm: bool = False,
) -> Path:
    """Treatment streams (module docstring) of one replicate; returns the PNG's path."""
    out_path = _check_path(out_path, "out_path")
    dpi = _whole(dpi, "dpi", 30, 1200)
    data = swimmer_data(tables, replicate=replicate, max_patients=max_patients, confirm=confirm)
    shown = data.replicate
    n = len(data.patient_id)
    all_drugs = sorted({s[2] for segs in data.segments for s in segs})
    catalogue_order = [d for d in DRUG_STYLES if d in all_drugs]
    drugs = catalogue_order + [d for d in all_drugs if d not in DRUG_STYLES]
    with _style():
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        fig = _new_figure((FIGSIZE[0] + 1.0, max(5.0, 2.6 + 0.16 * n)))
        ax = fig.add_subplot()
        y = np.arange(n)
        for drug in drugs:
            colour, hatch = drug_style(drug, all_drugs)
            rows = [(i, s) for i, segs in enumerate(data.segments) for s in segs if s[2] == drug]
            left = _months([s[0] for _, s in rows])
            width = _months([s[1] - s[0] for _, s in rows])
            ax.barh(
                [y[i] for i, _ in rows], width, left=left, height=0.72, color=colour,
                hatch=hatch or None, edgecolor="#333333", linewidth=0.4,
            )  # fmt: skip
        follow = data.last_follow_up > data.last_line_end
        ax.hlines(y[follow], _months(data.last_line_end[follow]),
                  _months(data.last_follow_up[follow]), color="#000000", linewidth=0.9)  # fmt: skip
        marks = [
            (data.response_day, "^", "white", 7, "First CR/PR, index line (RECIST 1.1)"),
            (data.progression_day, "v", "#000000", 7, "First PD, index line (RECIST 1.1)"),
        ]
        for days, marker, face, size, _ in marks:
            has = np.isfinite(days)
            ax.plot(_months(days[has]), y[has], linestyle="none", marker=marker, markersize=size,
                    markerfacecolor=face, markeredgecolor="#000000", markeredgewidth=0.9)  # fmt: skip
        ax.plot(_months(data.last_follow_up[data.death]), y[data.death], linestyle="none",
                marker="X", markersize=7, color="#000000")  # fmt: skip
        alive = ~data.death
        ax.plot(_months(data.last_follow_up[alive]), y[alive], linestyle="none", marker=">",
                markersize=6, markerfacecolor="white", markeredgecolor="#000000")  # fmt: skip
        ax.axvline(0.0, color="#555555", linewidth=0.8, linestyle="--")
        ax.set_ylim(max(n, 8) - 0.5, -0.5)  # a few patients: bars of the usual height
        ax.set_yticks(y)
        ax.set_yticklabels([str(p) for p in data.patient_id], fontsize=7 if n > 40 else 8.5)
        lo = min([0.0] + [s[0] for segs in data.segments for s in segs]) / DAYS_PER_MONTH
        hi = max(
            [1.0] + data.last_follow_up.tolist() + [s[1] for segs in data.segments for s in segs]
        ) / DAYS_PER_MONTH  # fmt: skip
        ax.set_xlim(math.floor(lo) - 0.5, math.ceil(hi) + 0.5)
        ax.set_xlabel("Months from the start of the index line (earlier lines before 0)")
        ax.set_ylabel("Patient (id)")
        capped = (
            f"; the first {n} of {data.n_patients} patients by id" if n < data.n_patients else ""
        )
        ax.set_title(f"Treatment streams (replicate {shown}, n = {n}{capped})")
        ax.grid(axis="x", color="#E5E5E5", linewidth=0.6)
        handles = [
            Patch(facecolor=drug_style(d, all_drugs)[0], hatch=drug_style(d, all_drugs)[1] or None,
                  edgecolor="#333333", linewidth=0.4, label=drug_label(d))
            for d in drugs
        ]  # fmt: skip
        handles += [
            Line2D([], [], color="#000000", linewidth=0.9, label="Follow-up after the last line"),
            *(
                Line2D([], [], linestyle="none", marker=m, markersize=s, markerfacecolor=f,
                       markeredgecolor="#000000", label=label)
                for _, m, f, s, label in marks
            ),
            Line2D([], [], linestyle="none", marker="X", markersize=7, color="#000000",
                   label="Death"),
            Line2D([], [], linestyle="none", marker=">", markersize=6, markerfacecolor="white",
                   markeredgecolor="#000000", label="Alive at last follow-up"),
        ]  # fmt: skip
        fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8.5)
        path = _save(fig, out_path, dpi)
    return path


# -- ALBI over time ------------------------------------------------------------------------------


def albi_medians_by_replicate(
    tables, replicates, weeks=liver.DEFAULT_WEEKS, window_days: float = liver.DEFAULT_WINDOW_DAYS
) -> np.ndarray:
    """Replicates x weeks array of the weekly median ALBI on the index line (NaN: nobody
    measured), as :func:`liver.albi_by_week` computes it for each replicate."""
    out = np.full((len(replicates), len(weeks)), np.nan)
    for i, r in enumerate(replicates):
        values = liver.albi_values(tables, weeks, window_days, on_index_line=True, replicate=int(r))
        for j in range(len(weeks)):
            x = values[:, j][~np.isnan(values[:, j])]
            if len(x):
                out[i, j] = float(np.median(x))
    return out


def albi_plot(
    tables,
    out_path,
    *,
    replicate=None,
    max_replicates: int = 200,
    weeks=liver.DEFAULT_WEEKS,
    window_days: float = liver.DEFAULT_WINDOW_DAYS,
    dpi: int = 120,
) -> Path:
    """ALBI by week on the index line (module docstring); raises :class:`NotDrawn` when no
    patient of the replicate was measured in any week."""
    out_path = _check_path(out_path, "out_path")
    dpi = _whole(dpi, "dpi", 30, 1200)
    max_replicates = _whole(max_replicates, "max_replicates", 1)
    cols = _columns(tables)
    shown = _pick_replicate(cols, replicate)
    by_week = liver.albi_by_week(cols, weeks, window_days, on_index_line=True, replicate=shown)
    if int(by_week["n_measured"].sum()) == 0:
        raise NotDrawn(
            f"no ALBI value (labs albi, or albumin with bilirubin) within {window_days:g} days "
            f"of weeks {list(weeks)} on the index line in replicate {shown}"
        )
    ids = _replicate_ids(cols)[:max_replicates]
    band = None
    if len(ids) >= 2:
        med = albi_medians_by_replicate(_subset(cols, ids), ids, weeks, window_days)
        lo, hi = np.full(len(weeks), np.nan), np.full(len(weeks), np.nan)
        for j in range(len(weeks)):
            x = med[:, j][~np.isnan(med[:, j])]
            if len(x) >= 2:
                lo[j], hi[j] = np.quantile(x, [0.025, 0.975], method="linear")
        band = (lo, hi, len(ids))
    w = np.asarray(by_week["week"], dtype=float)
    n = by_week["n_measured"].to_numpy()
    m, q25, q75 = (by_week[c].to_numpy(float) for c in ("median", "q25", "q75"))
    with _style():
        fig = _new_figure()
        ax = fig.add_subplot()
        if band is not None:
            ax.fill_between(w, band[0], band[1], color="#56B4E9", alpha=0.3, linewidth=0,
                            label=f"95% range of the weekly median across {band[2]} replicates")  # fmt: skip
        ok = n > 0
        ax.errorbar(w[ok], m[ok], yerr=[m[ok] - q25[ok], q75[ok] - m[ok]], color="#0072B2",
                    marker="o", markersize=5, linewidth=1.8, capsize=3,
                    label=f"Median and IQR (replicate {shown})")  # fmt: skip
        finite = np.concatenate([q25[ok], q75[ok]] + ([band[0], band[1]] if band else []))
        finite = finite[np.isfinite(finite)]
        ylo = min(float(finite.min()), -2.8) - 0.15
        yhi = max(float(finite.max()), -1.2) + 0.15
        for cut, label in MALBI_CUTOFFS:
            ax.axhline(cut, color="#555555", linestyle="--", linewidth=0.9)
            ax.text(w.max() + 0.3, cut + 0.01, f"mALBI {label} ({cut:.2f})", va="bottom",
                    ha="left", fontsize=8, color="#333333")  # fmt: skip
        ax.set_ylim(ylo, yhi)
        ax.set_xlim(w.min() - 0.5, w.max() + 3.2)
        ax.set_xticks(w)
        ax.set_xticklabels([f"{x:g}\nn={k}" for x, k in zip(w, n, strict=True)])
        ax.set_xlabel("Weeks from the start of the index line (n: patients measured)")
        ax.set_ylabel("ALBI score (lower: better liver function)")
        ax.set_title(
            f"ALBI on the index line (replicate {shown}, {by_week.attrs['n_patients']} patients)"
        )
        ax.legend(loc="upper left", fontsize=8.5)
        ax.grid(axis="y", color="#E5E5E5", linewidth=0.6)
        path = _save(fig, out_path, dpi)
    return path


# -- forest plot ---------------------------------------------------------------------------------

_HR_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500)
_ENDPOINT_NAMES = {
    "os": "OS",
    "pfs_recist": "PFS (RECIST 1.1)",
    "pfs_mrecist": "PFS (mRECIST)",
    "pfs_recist1.1": "PFS (RECIST 1.1)",
    "ttp_recist": "TTP (RECIST 1.1)",
}
#: Columns :func:`forest_plot` needs.
FOREST_COLUMNS = ("factor", "endpoint", "group_ref", "group_test", "hr", "hr_lower", "hr_upper")


def _fmt_hr(x: float) -> str:
    if not math.isfinite(x):
        return "inf" if x == math.inf else "NA"
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def forest_plot(df, out_path, *, title: str, dpi: int = 120) -> Path:
    """Hazard ratios with CIs on a log axis, one row per row of ``df`` (module docstring).

    ``df``: a DataFrame (or mapping of columns) with :data:`FOREST_COLUMNS`; rows are labelled
    "<factor>: <group_test> vs <group_ref>" (a ``label`` column, when there, names the factor),
    prefixed by the endpoint when there are several; optional columns
    ``hr_range_lower`` and ``hr_range_upper`` (the 95% range across replicates) are drawn as a
    grey bar behind each row. A row with a missing HR reads "not estimable".
    """
    cols = as_columns(df) if df is not None else None
    if cols is None or not isinstance(cols, dict):
        raise ValueError(f"df must be a DataFrame or mapping of columns, not {type(df).__name__}")
    missing = [c for c in FOREST_COLUMNS if c not in cols]
    if missing:
        raise ValueError(
            f"df lacks column(s) {', '.join(missing)}; a forest plot needs {', '.join(FOREST_COLUMNS)}"
        )
    n = len(cols["hr"])
    if n == 0:
        raise ValueError("df must have at least one row (one hazard ratio) for a forest plot")
    if not isinstance(title, str):
        raise ValueError(f"title must be a string, not {title!r}")
    out_path = _check_path(out_path, "out_path")
    dpi = _whole(dpi, "dpi", 30, 1200)
    hr, lo, hi = (as_float(cols[c]) for c in ("hr", "hr_lower", "hr_upper"))
    for name, v in (("hr", hr), ("hr_lower", lo), ("hr_upper", hi)):
        if np.any(v <= 0):
            raise ValueError(
                f"df column {name!r} must hold hazard ratios > 0 (or missing); got {float(v[v <= 0][0])!r}"
            )
    has_range = "hr_range_lower" in cols and "hr_range_upper" in cols
    rlo = as_float(cols["hr_range_lower"]) if has_range else np.full(n, np.nan)
    rhi = as_float(cols["hr_range_upper"]) if has_range else np.full(n, np.nan)
    factor, endpoint = as_text(cols["factor"]), as_text(cols["endpoint"])
    if "label" in cols:  # a display name of the factor (analysis.tables' subgroup table)
        factor = np.array(
            [lab or f for lab, f in zip(as_text(cols["label"]), factor, strict=True)], dtype=object
        )
    endpoint = np.array([_ENDPOINT_NAMES.get(e, e) for e in endpoint], dtype=object)
    ref, test = as_text(cols["group_ref"]), as_text(cols["group_test"])
    several = len({e for e in endpoint}) > 1
    labels = [
        (f"{e}: " if several else "") + f"{f}: {t} vs {r}"
        for f, e, t, r in zip(factor, endpoint, test, ref, strict=True)
    ]
    finite = np.concatenate([v[np.isfinite(v)] for v in (hr, lo, hi, rlo, rhi)] + [[1.0]])
    xmin = max(min(float(finite.min()) / 1.3, 0.8), 1e-3)
    xmax = min(max(float(finite.max()) * 1.3, 1.25), 1e3)
    with _style():
        fig = _new_figure((FIGSIZE[0] + 1.5, max(3.0, 1.6 + 0.38 * n)))
        gs = fig.add_gridspec(1, 2, width_ratios=[3.2, 1.0])
        ax = fig.add_subplot(gs[0])
        txt = fig.add_subplot(gs[1], sharey=ax)
        y = np.arange(n)
        ax.set_xscale("log")
        for i in range(n):
            if has_range and np.isfinite(rlo[i]) and np.isfinite(rhi[i]):
                ax.plot([max(rlo[i], xmin), min(rhi[i], xmax)], [i, i], color="#BBBBBB",
                        linewidth=7, solid_capstyle="butt", zorder=1)  # fmt: skip
            if np.isfinite(lo[i]) or np.isfinite(hi[i]):
                a = max(lo[i], xmin) if np.isfinite(lo[i]) else hr[i]
                b = min(hi[i], xmax) if np.isfinite(hi[i]) else hr[i]
                ax.plot([a, b], [i, i], color="#0072B2", linewidth=1.6, zorder=2)
            if np.isfinite(hr[i]):
                ax.plot(min(max(hr[i], xmin), xmax), i, marker="s", markersize=7,
                        color="#0072B2", zorder=3)  # fmt: skip
        ax.axvline(1.0, color="#333333", linewidth=0.9)
        ax.set_xlim(xmin, xmax)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=9)
        ticks = [t for t in _HR_TICKS if xmin <= t <= xmax]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xticks([], minor=True)
        ax.set_xlabel("Hazard ratio (log scale; < 1: lower hazard in the test group)")
        fig.suptitle(title, fontsize=12, fontweight="bold")
        ax.grid(axis="x", color="#E5E5E5", linewidth=0.6, which="both")
        for i in range(n):
            text = (
                f"{_fmt_hr(hr[i])} ({_fmt_hr(lo[i])}\u2013{_fmt_hr(hi[i])})"
                if np.isfinite(hr[i])
                else "not estimable"
            )
            txt.text(0.0, i, text, ha="left", va="center", fontsize=9)
        txt.set_xlim(0, 1)
        txt.axis("off")
        txt.set_title("HR (95% CI)", loc="left", fontsize=10)
        if has_range:
            from matplotlib.lines import Line2D

            fig.legend(
                handles=[
                    Line2D([], [], color="#0072B2", marker="s", label="HR (95% CI), shown replicate"),
                    Line2D([], [], color="#BBBBBB", linewidth=7,
                           label="95% range of the HR across replicates"),
                ],
                loc="outside lower center", ncol=2, fontsize=8.5,
            )  # fmt: skip
        path = _save(fig, out_path, dpi)
    return path


def _factors(pt) -> list[tuple[str, str, str, np.ndarray]]:
    """(factor, group_ref, group_test, membership: 0 ref, 1 test, -1 left out) per factor."""
    out = []

    def add(factor, ref, test, member):
        out.append((factor, ref, test, np.asarray(member, dtype=np.int64)))

    if "index_line" in pt:
        line = as_float(pt["index_line"])
        add("Index line", "2nd", "3rd or later", np.where(line == 2, 0, np.where(line >= 3, 1, -1)))
    if "child_pugh_class" in pt or "child_pugh_score" in pt:
        cp = child_pugh_classes(pt)
        add("Child-Pugh class", "A", "B", np.where(cp == "A", 0, np.where(cp == "B", 1, -1)))
    if "albi_grade" in pt:
        g = as_float(pt["albi_grade"])
        add("ALBI grade", "1", "2 or 3", np.where(g == 1, 0, np.where(g >= 2, 1, -1)))
    if "ecog" in pt:
        e = as_float(pt["ecog"])
        add("ECOG", "0", "1 or more", np.where(e == 0, 0, np.where(e >= 1, 1, -1)))
    for col, factor in (("mvi", "Macrovascular invasion"), ("ehm", "Extrahepatic metastasis")):
        if col in pt:
            v = as_float(pt[col])
            add(factor, "no", "yes", np.where(v == 0, 0, np.where(v == 1, 1, -1)))
    if "afp_ng_ml" in pt:
        v = as_float(pt["afp_ng_ml"])
        add("AFP", "< 400 ng/mL", ">= 400 ng/mL",
            np.where(v < 400, 0, np.where(v >= 400, 1, -1)))  # fmt: skip
    if "age" in pt:
        v = as_float(pt["age"])
        add("Age", "< 65 years", ">= 65 years", np.where(v < 65, 0, np.where(v >= 65, 1, -1)))
    if "male" in pt:
        v = as_float(pt["male"])
        add("Sex", "female", "male", np.where(v == 0, 0, np.where(v == 1, 1, -1)))
    return out


def subgroup_hazard_ratios(tables, *, replicate=None, max_replicates: int = 200):
    """OS hazard ratios of baseline factors, for the forest plot; a pandas DataFrame.

    One row per factor with both groups populated in the shown replicate (``replicate``; by
    default the lowest id): index line 3rd or later vs 2nd, Child-Pugh B vs A
    (:func:`safety.child_pugh_classes`), ALBI grade 2-3 vs 1, ECOG >= 1 vs 0, macrovascular
    invasion, extrahepatic metastasis, AFP >= 400 vs < 400 ng/mL, age >= 65 vs < 65, male vs
    female. Columns :data:`FOREST_COLUMNS` (HR and Wald 95% CI of a univariable Cox model of
    OS, lifelines with Efron ties; NaN when the fit fails or a group has no deaths) plus
    ``n_ref``, ``n_test``, ``deaths``, ``converged``, and, with two or more replicates,
    ``hr_range_lower``/``hr_range_upper`` (2.5%/97.5% quantiles of the finite HRs of
    :func:`survival.cox_binary_hr` across the first ``max_replicates`` replicates) and
    ``n_replicates_hr`` (how many were finite). ``df.attrs["left_out"]`` lists the factors
    without two populated groups.
    """
    import pandas as pd

    max_replicates = _whole(max_replicates, "max_replicates", 1)
    cols = _columns(tables)
    shown = _pick_replicate(cols, replicate)
    ids = _replicate_ids(cols)[:max_replicates]
    keep = sorted(set(ids.tolist()) | {shown})
    cols = _subset(cols, keep)
    pt = cols["patients"]
    rep = np.asarray(pt["replicate"], dtype=np.int64)
    os_ = overall_survival(cols)
    here = rep == shown
    rows, left_out = [], []
    for factor, ref, test, member in _factors(pt):
        m = member[here]
        n_ref, n_test = int(np.sum(m == 0)), int(np.sum(m == 1))
        if not n_ref or not n_test:
            left_out.append(f"{factor} ({test} vs {ref}: {n_test} vs {n_ref} patients)")
            continue
        use = m >= 0
        d, e = os_.durations[here][use], os_.events[here][use]
        frame = {"time": d, "death": e.astype(float), "x": (m[use] == 1).astype(float)}
        (fit,) = survival.cox_univariable(frame, "time", "death", ["x"])
        term = fit.terms[0]
        ok = fit.converged and math.isfinite(term.hazard_ratio)
        row = {
            "factor": factor,
            "endpoint": "OS",
            "group_ref": ref,
            "group_test": test,
            "hr": term.hazard_ratio if ok else math.nan,
            "hr_lower": term.lower if ok else math.nan,
            "hr_upper": term.upper if ok else math.nan,
            "n_ref": n_ref,
            "n_test": n_test,
            "deaths": int(e.sum()),
            "converged": bool(fit.converged),
        }
        if len(ids) >= 2:
            hrs = []
            for r in ids:
                sel = (rep == r) & (member >= 0)
                if np.any(member[sel] == 0) and np.any(member[sel] == 1):
                    hrs.append(
                        survival.cox_binary_hr(
                            os_.durations[sel], os_.events[sel], member[sel] == 1
                        )
                    )
            hrs = np.asarray(hrs, dtype=float)
            hrs = hrs[np.isfinite(hrs)]
            lo, hi = (
                np.quantile(hrs, [0.025, 0.975], method="linear")
                if len(hrs) >= 2
                else (np.nan,) * 2
            )
            row.update(hr_range_lower=float(lo), hr_range_upper=float(hi), n_replicates_hr=len(hrs))
        rows.append(row)
    columns = [*FOREST_COLUMNS, "n_ref", "n_test", "deaths", "converged"]
    if len(ids) >= 2:
        columns += ["hr_range_lower", "hr_range_upper", "n_replicates_hr"]
    df = pd.DataFrame(rows, columns=columns)
    df.attrs.update(replicate=shown, left_out=left_out)
    return df


# -- all figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Study:
    """Per-patient endpoints of the chosen replicates (patients-table order)."""

    cols: dict
    shown: int
    ids: np.ndarray  # replicates of the bands (at most max_replicates)
    rep: np.ndarray  # replicate of each patient
    scan_interval_days: float

    @property
    def several(self) -> bool:
        return len(self.ids) >= 2


def _band_grid(durations) -> np.ndarray:
    top = float(np.max(durations)) if len(durations) else 0.0
    step = BAND_GRID_DAYS / DAYS_PER_MONTH
    return np.arange(0.0, top / DAYS_PER_MONTH + step, step)


def _curve(
    study: _Study, label: str, durations, events, mask=None, short: str | None = None
) -> KMCurve | None:
    """The shown replicate's curve of the patients in ``mask`` (None: no patients), with the
    across-replicate band when the study has several replicates."""
    mask = np.ones(len(durations), bool) if mask is None else mask
    here = mask & (study.rep == study.shown)
    if not here.any():
        return None
    band = None
    if study.several:
        sel = mask & np.isin(study.rep, study.ids)
        if sel.any():
            band = km_band(durations[sel], events[sel], study.rep[sel], _band_grid(durations[sel]))
    return KMCurve(label, durations[here], events[here], band, short_label=short)


def _title(study: _Study, text: str) -> str:
    return f"{text} (replicate {study.shown})" if study.several else text


def _km_os(study: _Study, out: Path, dpi: int) -> tuple[Path, str]:
    os_ = overall_survival(study.cols)
    curve = _curve(study, "Overall survival", os_.durations, os_.events, short="OS")
    path = km_plot([curve], out, title=_title(study, "Overall survival"),
                   ylabel="Overall survival (probability)", dpi=dpi,
                   xlabel="Months from the start of the index line")  # fmt: skip
    return path, "Kaplan-Meier estimate of overall survival from the start of the index line."


def _km_pfs(study: _Study, out: Path, dpi: int) -> tuple[Path, str]:
    curves = []
    for crit, label in (("recist1.1", "RECIST 1.1"), ("mrecist", "mRECIST")):
        ep = progression_free_survival(
            study.cols, crit, scan_interval_days=study.scan_interval_days
        )
        curves.append(_curve(study, label, ep.durations, ep.events))
    path = km_plot(curves, out, title=_title(study, "Progression-free survival"),
                   ylabel="Progression-free survival (probability)", dpi=dpi,
                   xlabel="Months from the start of the index line")  # fmt: skip
    return path, (
        "Kaplan-Meier estimates of progression-free survival on the index line by RECIST 1.1 "
        "and by mRECIST (censoring rules of the analysis documentation)."
    )


_LINE_GROUPS = (
    ("1st", "Index line 1st"),
    ("2nd", "Index line 2nd"),
    ("3rd_or_later", "Index line 3rd or later"),
)


def _km_line_group(study: _Study, out: Path, dpi: int) -> tuple[Path, str]:
    os_ = overall_survival(study.cols)
    group = line_group(study.cols)
    curves = [
        _curve(study, label, os_.durations, os_.events, group == g, label[len("Index line ") :])
        for g, label in _LINE_GROUPS
    ]
    curves = [c for c in curves if c is not None]
    if len(curves) < 2:
        raise NotDrawn(
            f"the index lines of replicate {study.shown} fall in fewer than two groups "
            f"(1st, 2nd, 3rd or later)"
        )
    path = km_plot(curves, out, title=_title(study, "Overall survival by index line"),
                   ylabel="Overall survival (probability)", dpi=dpi,
                   xlabel="Months from the start of the index line")  # fmt: skip
    return path, "Kaplan-Meier estimates of overall survival by the line number of the index line."


_DC4W_NOTE = (
    "Groups as the anchor study defined them: disease control at >= 4 weeks means a RECIST 1.1 "
    "scan of the index line on day 28 or later reading CR, PR or SD with no PD before it. OS "
    "is measured from day 0, so the comparison carries guarantee-time bias: a patient must "
    "live to a scan on day 28 or later to be counted as controlled, and early deaths all fall "
    "in the other group. A landmark analysis (OS from a landmark among patients alive then) "
    "removes it."
)


def _km_dc4w(study: _Study, out: Path, dpi: int) -> tuple[Path, str]:
    os_ = overall_survival(study.cols)
    dc = disease_control_4w(study.cols, "recist1.1")
    curves = [
        _curve(
            study, "Disease control at \u2265 4 weeks", os_.durations, os_.events, dc, "Controlled"
        ),
        _curve(
            study,
            "No disease control at \u2265 4 weeks",
            os_.durations,
            os_.events,
            ~dc,
            "Not controlled",
        ),
    ]
    missing = [c is None for c in curves]
    if any(missing):
        which = "with" if missing[0] else "without"
        raise NotDrawn(
            f"no patient of replicate {study.shown} {which} disease control at >= 4 weeks"
        )
    title = _title(study, "OS from day 0 by disease control at \u2265 4 weeks")
    path = km_plot(curves, out, title=title, ylabel="Overall survival (probability)", dpi=dpi,
                   xlabel="Months from the start of the index line", note=_DC4W_NOTE)  # fmt: skip
    return path, "Overall survival from day 0 by disease control at >= 4 weeks. " + _DC4W_NOTE


def make_figures(
    tables,
    *,
    scan_interval_days: float,
    out_dir,
    replicate=None,
    subgroups=None,
    max_replicates: int = 200,
    dpi: int = 120,
    response_rule=None,
) -> FigureSet:
    """Draw every figure of :data:`FIGURE_NAMES` the tables allow as ``out_dir/<name>.png``.

    ``tables``: the cohort tables (one replicate for a real cohort; several for a simulated
    study; an absent table counts as empty). ``replicate``: the replicate shown (default: the
    lowest id); the across-replicate bands use the first ``max_replicates`` replicates.
    ``subgroups``: the rows of the forest plot (:func:`forest_plot`'s ``df``); None: computed
    by :func:`subgroup_hazard_ratios`. Returns a :class:`FigureSet`: name -> path of each
    figure drawn, with ``notes`` on the figures left out and ``captions``. ``response_rule``:
    how responses are read (:class:`~hccsim.analysis.response.ResponseRule`; the swimmer plot
    marks only confirmed responses when it confirms).
    """
    interval = _check_interval(scan_interval_days)
    rule = as_response_rule(response_rule)
    out_dir = _check_path(out_dir, "out_dir")
    max_replicates = _whole(max_replicates, "max_replicates", 1)
    dpi = _whole(dpi, "dpi", 30, 1200)
    if subgroups is not None:
        sub_cols = as_columns(subgroups) if not isinstance(subgroups, str) else None
        missing = [c for c in FOREST_COLUMNS if sub_cols is None or c not in sub_cols]
        if missing:
            raise ValueError(
                f"subgroups must be None or a DataFrame with columns {', '.join(FOREST_COLUMNS)}; "
                f"it lacks {', '.join(missing)}"
            )
    cols = _columns(tables)
    shown = _pick_replicate(cols, replicate)
    ids = _replicate_ids(cols)[:max_replicates]
    cols = _subset(cols, set(ids.tolist()) | {shown})
    study = _Study(
        cols, shown, ids, np.asarray(cols["patients"]["replicate"], dtype=np.int64), interval
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    result = FigureSet()

    def swimmer(path):
        return swimmer_plot(cols, path, replicate=shown, dpi=dpi, confirm=rule.confirm), (
            "Treatment streams: one bar per patient, one segment per line of treatment coloured "
            "by drug (earlier lines before 0), follow-up after the last line as a thin line."
        )

    def albi(path):
        return albi_plot(cols, path, replicate=shown, max_replicates=max_replicates, dpi=dpi), (
            "ALBI score at weeks 0-12 on the index line (closest draw within 3 days): median "
            "and interquartile range, with the mALBI cut-offs."
        )

    def forest(path):
        if subgroups is None:
            df = subgroup_hazard_ratios(cols, replicate=shown, max_replicates=max_replicates)
            left = df.attrs.get("left_out") or []
            if left:
                result.by_figure["forest"] = "factors without two populated groups left out: " + (
                    "; ".join(left)
                )
        else:
            df = subgroups
        if not len(as_columns(df)["hr"]):
            if subgroups is not None:
                raise NotDrawn("subgroups has no rows")
            raise NotDrawn(
                f"no baseline factor has patients in both of its groups in replicate {shown}"
            )
        title = _title(study, "Overall survival by baseline factor (univariable Cox)")
        if subgroups is not None:
            title = _title(study, "Hazard ratios by subgroup")
        return forest_plot(df, path, title=title, dpi=dpi), (
            "Hazard ratios (log scale) of the test group against the reference group, with "
            "95% confidence intervals."
        )

    builders = {
        "swimmer": swimmer,
        "albi": albi,
        "km_os": lambda p: _km_os(study, p, dpi),
        "km_pfs": lambda p: _km_pfs(study, p, dpi),
        "km_line_group": lambda p: _km_line_group(study, p, dpi),
        "km_dc4w": lambda p: _km_dc4w(study, p, dpi),
        "forest": forest,
    }
    for name in FIGURE_NAMES:
        try:
            path, caption = builders[name](out_dir / f"{name}.png")
        except ValueError as exc:  # NotDrawn, or tables the analysis cannot read
            result.by_figure[name] = f"not drawn: {exc}"
            continue
        result[name] = path
        if study.several:
            caption += (
                f" Replicate {shown} is shown; the across-replicate range uses "
                f"{len(ids)} replicates."
            )
        result.captions[name] = caption
    return result
