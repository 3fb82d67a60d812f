"""Figures of the cohort tables (``hccsim.analysis.figures``).

Two simulated cohorts of the anchor scenario (fixed seeds): a study of 3 replicates x 60
patients and a single replicate of 37 patients given as pandas DataFrames, as a hospital's
tables would be. Every figure is checked to be a real PNG (signature, size, not blank) and to
be byte-identical when drawn again; the data the figures draw are checked against independent
computations: the Kaplan-Meier steps against lifelines and ``survival.kaplan_meier``, the
across-replicate band against lifelines' curve of each replicate and numpy quantiles, the
numbers at risk against direct counts, the swimmer plot's rows against the tables, the forest
plot's hazard ratios against the numpy Cox fit (``cox_binary_hr``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hccsim.analysis import figures, liver, survival
from hccsim.analysis.endpoints import overall_survival, progression_free_survival
from hccsim.analysis.figures import (
    DAYS_PER_MONTH,
    FIGURE_NAMES,
    KMCurve,
    forest_plot,
    km_band,
    km_plot,
    km_steps,
    make_figures,
    numbers_at_risk,
    swimmer_data,
    swimmer_plot,
)
from hccsim.analysis.response import time_to_response
from tests.cohort_builders import cohort, patient

INTERVAL = 42.0  # the anchor scenario's scan interval (days)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _simulate(seed: int, replicates: list[int], size: int) -> dict:
    from hccsim.simulator.records import concat
    from hccsim.simulator.scenario import load
    from hccsim.simulator.studies.run import simulate_replicates

    sc = load("scenarios/anchor_ramucirumab.yaml")
    sc = sc.model_copy(update={"cohort": sc.cohort.model_copy(update={"size": size})})
    assert sc.imaging_interval_days == INTERVAL
    return concat([t for _, t in simulate_replicates(sc, seed, replicates)])


@pytest.fixture(scope="module")
def study() -> dict:
    return _simulate(11, [0, 1, 2], 60)


@pytest.fixture(scope="module")
def single() -> dict:
    tables = _simulate(5, [0], 37)
    return {name: pd.DataFrame(cols) for name, cols in tables.items()}


@pytest.fixture(scope="module")
def drawn(study, single, tmp_path_factory) -> dict:
    return {
        "study": make_figures(
            study, scan_interval_days=INTERVAL, out_dir=tmp_path_factory.mktemp("study")
        ),
        "single": make_figures(
            single, scan_interval_days=INTERVAL, out_dir=tmp_path_factory.mktemp("single")
        ),
    }


def _check_png(path, min_shape=(400, 600)) -> np.ndarray:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = matplotlib.image.imread(path)
    assert img.shape[0] >= min_shape[0] and img.shape[1] >= min_shape[1], img.shape
    rgb = img[..., :3]
    ink = np.any(rgb < 0.9, axis=-1).mean()  # share of pixels that are not (near) white
    assert 0.01 < ink < 0.9, ink
    q = np.round(rgb * 255).astype(np.uint32)
    colours = np.unique(q[..., 0] << 16 | q[..., 1] << 8 | q[..., 2])
    assert len(colours) > 20  # text, lines and fills, not a flat image
    return img


# -- every figure, drawn and deterministic ---------------------------------------------------------


@pytest.mark.parametrize("cohort_name", ["study", "single"])
def test_every_figure_is_a_nonblank_png(drawn, cohort_name):
    result = drawn[cohort_name]
    assert list(result) == list(FIGURE_NAMES)
    for name, path in result.items():
        assert path.name == f"{name}.png"
        _check_png(path)
        assert result.captions[name]
    # The anchor cohort enrols AFP >= 400 ng/mL only: that forest factor has one group.
    notes = figures.figure_notes(result)
    assert set(notes) == {"forest"} and "AFP" in notes["forest"]
    assert result.notes == [f"forest: {notes['forest']}"]


def test_drawing_again_gives_identical_bytes(drawn, single, tmp_path):
    again = make_figures(single, scan_interval_days=INTERVAL, out_dir=tmp_path)
    for name, path in drawn["single"].items():
        assert again[name].read_bytes() == path.read_bytes(), name


def test_the_shown_replicate_can_be_chosen(study, drawn, tmp_path):
    out = make_figures(study, scan_interval_days=INTERVAL, out_dir=tmp_path, replicate=2)
    for name in FIGURE_NAMES:
        assert out[name].read_bytes() != drawn["study"][name].read_bytes(), name
    assert swimmer_data(study).replicate == 0  # the default: the lowest replicate id


# -- Kaplan-Meier data -----------------------------------------------------------------------------


def test_km_steps_are_the_kaplan_meier_estimate(study):
    from lifelines import KaplanMeierFitter

    pfs = progression_free_survival(study, "recist1.1", scan_interval_days=INTERVAL)
    here = np.asarray(study["patients"]["replicate"]) == 0
    ep = type(pfs)(pfs.name, pfs.durations[here], pfs.events[here])
    steps = km_steps(ep.durations, ep.events)
    km = survival.kaplan_meier(ep.durations, ep.events)
    np.testing.assert_array_equal(steps.event_months, km.times / DAYS_PER_MONTH)
    np.testing.assert_array_equal(steps.survival, km.survival)
    lower, upper = survival.km_confidence(km)
    np.testing.assert_array_equal(steps.lower, lower)
    np.testing.assert_array_equal(steps.upper, upper)
    # lifelines: the estimate and its (log(-log)) limits at the event times
    kmf = KaplanMeierFitter().fit(ep.durations, ep.events)
    np.testing.assert_allclose(steps.survival, kmf.survival_function_at_times(km.times), atol=1e-12)
    ci = kmf.confidence_interval_.loc[km.times].to_numpy()
    np.testing.assert_allclose(steps.lower, ci[:, 0], atol=1e-10)
    np.testing.assert_allclose(steps.upper, ci[:, 1], atol=1e-10)
    # the drawn step arrays: from (0, 1) through the event times to the longest time
    x, y, lo, hi = steps.xy()
    assert (x[0], y[0], lo[0], hi[0]) == (0.0, 1.0, 1.0, 1.0)
    assert x[-1] == pytest.approx(ep.durations.max() / DAYS_PER_MONTH)
    np.testing.assert_array_equal(y[1 : len(km.times) + 1], km.survival)
    # censoring ticks: one per censored patient, on the curve
    censored = np.sort(ep.durations[~ep.events])
    np.testing.assert_allclose(steps.censor_months * DAYS_PER_MONTH, censored, rtol=1e-15)
    np.testing.assert_allclose(steps.censor_survival, kmf.survival_function_at_times(censored))
    med = survival.km_median_ci(ep.durations, ep.events)
    assert steps.median * DAYS_PER_MONTH == pytest.approx(kmf.median_survival_time_, rel=1e-12)
    assert (steps.median_lower, steps.median_upper) == (
        med.lower / DAYS_PER_MONTH,
        med.upper / DAYS_PER_MONTH,
    )


def test_km_band_is_the_pointwise_quantile_of_the_replicates_curves(study):
    from lifelines import KaplanMeierFitter

    ep = overall_survival(study)
    rep = np.asarray(study["patients"]["replicate"])
    grid = np.arange(0.0, 60.0, 0.25)
    band = km_band(ep.durations, ep.events, rep, grid)
    # Independently: each replicate's lifelines curve at the grid times within its follow-up.
    curves = np.full((3, len(grid)), np.nan)
    for r in range(3):
        d, e = ep.durations[rep == r], ep.events[rep == r]
        inside = grid * DAYS_PER_MONTH <= d.max()
        kmf = KaplanMeierFitter().fit(d, e)
        curves[r, inside] = kmf.survival_function_at_times(grid[inside] * DAYS_PER_MONTH)
    n_defined = np.sum(~np.isnan(curves), axis=0)
    np.testing.assert_array_equal(band.n_defined, n_defined)
    assert band.n_replicates == 3
    shown = n_defined >= 2  # at least half of 3 replicates, and two
    assert shown.any() and not shown.all()  # the grid runs past the follow-up of some
    for j in range(len(grid)):
        if shown[j]:
            x = curves[:, j][~np.isnan(curves[:, j])]
            assert band.lower[j] == pytest.approx(np.percentile(x, 2.5), abs=1e-12)
            assert band.upper[j] == pytest.approx(np.percentile(x, 97.5), abs=1e-12)
        else:
            assert math.isnan(band.lower[j]) and math.isnan(band.upper[j])


def test_numbers_at_risk_are_direct_counts():
    rng = np.random.default_rng(3)
    months = np.arange(0.0, 13.0, 3.0)
    # durations on the tick days themselves (at risk there: time >= t) and random ones
    durations = np.concatenate([months * DAYS_PER_MONTH, rng.exponential(150.0, 40)])
    events = rng.random(len(durations)) < 0.6
    expected = [sum(1 for d in durations if d >= t * DAYS_PER_MONTH) for t in months]
    np.testing.assert_array_equal(numbers_at_risk(durations, months), expected)
    at = survival.survival_at(durations, events, months * DAYS_PER_MONTH)
    np.testing.assert_array_equal(numbers_at_risk(durations, months), at.at_risk)


def test_month_ticks_are_regular_and_cover_the_range():
    np.testing.assert_array_equal(figures.month_ticks(7.2), np.arange(0, 8))
    np.testing.assert_array_equal(figures.month_ticks(25.0), np.arange(0, 25, 3))
    np.testing.assert_array_equal(figures.month_ticks(0.3), [0.0, 1.0])


# -- swimmer plot ----------------------------------------------------------------------------------


def test_swimmer_rows_follow_the_tables_and_the_cap(study, tmp_path):
    data = swimmer_data(study, replicate=1, max_patients=10)
    pt = pd.DataFrame(study["patients"]).query("replicate == 1")
    ln = pd.DataFrame(study["lines"]).query("replicate == 1")
    assert data.n_patients == 60 and data.replicate == 1
    assert sorted(data.patient_id) == sorted(pt["patient_id"].nsmallest(10))
    index = ln[ln["index"]].set_index("patient_id")
    duration = (index["end_day"] - index["start_day"]).loc[data.patient_id].to_numpy()
    np.testing.assert_array_equal(data.index_duration, duration)
    assert np.all(np.diff(duration) <= 0)  # longest on top
    a = pd.DataFrame(study["assessments"]).query("replicate == 1")
    a = a.merge(pt[["patient_id", "index_line"]], on="patient_id")
    pd_scans = a[(a["line"] == a["index_line"]) & ~a["baseline"] & (a["response_recist"] == "PD")]
    first_pd = pd_scans.groupby("patient_id")["day"].min()
    onset = pd.Series(
        time_to_response({k: pd.DataFrame(v).query("replicate == 1") for k, v in study.items()}),
        index=pt["patient_id"].to_numpy(),
    )
    for i, pid in enumerate(data.patient_id):
        mine = ln[ln["patient_id"] == pid].sort_values("start_day")
        assert [(s, e, d) for s, e, d, _ in data.segments[i]] == list(
            zip(mine["start_day"], mine["end_day"], mine["drug"], strict=True)
        )
        assert sum(is_index for *_, is_index in data.segments[i]) == 1
        assert data.last_line_end[i] == mine["end_day"].max()
        expected_pd = first_pd.get(pid, math.nan)
        assert data.progression_day[i] == expected_pd or (
            math.isnan(expected_pd) and math.isnan(data.progression_day[i])
        )
        r = onset[pid]
        assert data.response_day[i] == r or (math.isnan(r) and math.isnan(data.response_day[i]))
    # The capped plot is shorter than the full one (one row per patient).
    import matplotlib.image

    capped = matplotlib.image.imread(swimmer_plot(study, tmp_path / "c.png", max_patients=10))
    full = matplotlib.image.imread(swimmer_plot(study, tmp_path / "f.png", max_patients=60))
    assert capped.shape[0] < full.shape[0]
    _check_png(tmp_path / "c.png")


def test_every_catalogue_drug_has_its_own_style():
    from hccsim.simulator.catalogue import drug_names

    assert set(figures.DRUG_STYLES) == set(drug_names())
    styles = list(figures.DRUG_STYLES.values())
    assert len(set(styles)) == len(styles)
    palette = set(figures.OKABE_ITO)
    assert all(c in palette or (c.startswith("#") and len(set(c[1:])) <= 2) for c, _ in styles)
    # drugs outside the catalogue: greys with hatching, by the order of their names
    extra = figures.drug_style("zeta", ["zeta", "alpha", "sorafenib"])
    assert extra == figures.EXTRA_DRUG_STYLES[1]
    assert figures.drug_style("alpha", ["zeta", "alpha"]) == figures.EXTRA_DRUG_STYLES[0]
    assert figures.drug_label("atezolizumab_bevacizumab") == "Atezolizumab + bevacizumab"


# -- ALBI and forest -------------------------------------------------------------------------------


def test_albi_medians_by_replicate_are_albi_by_week(study):
    med = figures.albi_medians_by_replicate(study, [0, 1, 2])
    for r in range(3):
        by_week = liver.albi_by_week(study, on_index_line=True, replicate=r)
        np.testing.assert_array_equal(med[r], by_week["median"].to_numpy(float))


def test_subgroup_hazard_ratios(study):
    df = figures.subgroup_hazard_ratios(study, replicate=0)
    assert "AFP" in " ".join(df.attrs["left_out"]) and "AFP" not in set(df["factor"])
    pt = pd.DataFrame(study["patients"])
    os_ = overall_survival(study)
    here = (pt["replicate"] == 0).to_numpy()
    row = df.set_index("factor").loc["Child-Pugh class"]
    cp = pt["child_pugh_class"].to_numpy()
    assert (row["n_ref"], row["n_test"]) == ((cp[here] == "A").sum(), (cp[here] == "B").sum())
    # lifelines (the CI) and the numpy Efron fit agree on the hazard ratio
    keep = here & np.isin(cp, ["A", "B"])
    hr = survival.cox_binary_hr(os_.durations[keep], os_.events[keep], cp[keep] == "B")
    assert row["hr"] == pytest.approx(hr, rel=1e-6)
    assert row["hr_lower"] < row["hr"] < row["hr_upper"]
    per_rep = []
    for r in range(3):
        k = (pt["replicate"] == r).to_numpy() & np.isin(cp, ["A", "B"])
        per_rep.append(survival.cox_binary_hr(os_.durations[k], os_.events[k], cp[k] == "B"))
    lo, hi = np.percentile(per_rep, [2.5, 97.5])
    assert (row["hr_range_lower"], row["hr_range_upper"]) == (pytest.approx(lo), pytest.approx(hi))


def test_forest_plot_of_given_rows(tmp_path, study):
    df = pd.DataFrame(
        {
            "factor": ["Child-Pugh", "ECOG", "Sex"],
            "endpoint": ["OS", "PFS", "OS"],
            "group_ref": ["A", "0", "female"],
            "group_test": ["B", ">= 1", "male"],
            "hr": [2.1, math.nan, 0.7],
            "hr_lower": [1.1, math.nan, 0.2],
            "hr_upper": [4.0, math.nan, math.inf],
        }
    )
    _check_png(forest_plot(df, tmp_path / "forest.png", title="Given rows"), (250, 600))
    out = make_figures(study, scan_interval_days=INTERVAL, out_dir=tmp_path, subgroups=df)
    assert "forest" in out and "forest" not in figures.figure_notes(out)


# -- sparse tables and bad arguments ---------------------------------------------------------------


def test_sparse_tables_skip_figures_with_notes(tmp_path):
    one = cohort(patient(0, last_fu=200.0, death=True, scans=[(42, "SD"), (84, "PD")]))
    del one["labs"]  # no labs at all
    out = make_figures(one, scan_interval_days=INTERVAL, out_dir=tmp_path)
    assert set(out) == {"swimmer", "km_os", "km_pfs"}
    assert set(figures.figure_notes(out)) == {"albi", "km_line_group", "km_dc4w", "forest"}
    for path in out.values():
        _check_png(path, (300, 600))
    # no scans and no lines after baseline, labs with no rows, a patient censored at day 0
    bare = cohort(patient(0, last_fu=0.0), patient(1, last_fu=30.0, death=True))
    bare["labs"] = {c: v[:0] for c, v in bare["labs"].items()}
    bare["assessments"] = {c: v[:0] for c, v in bare["assessments"].items()}
    out = make_figures(bare, scan_interval_days=INTERVAL, out_dir=tmp_path / "bare")
    assert {"swimmer", "km_os", "km_pfs"} <= set(out)
    assert {"albi", "km_dc4w"} <= set(figures.figure_notes(out))


def test_bad_arguments_raise_value_error(study, tmp_path):
    ok = {"scan_interval_days": INTERVAL, "out_dir": tmp_path}
    bad = [
        ({"scan_interval_days": 0}, "scan_interval_days"),
        ({"scan_interval_days": True}, "scan_interval_days"),
        ({"out_dir": None}, "out_dir"),
        ({"replicate": 7}, "replicate=7"),
        ({"replicate": "0"}, "replicate"),
        ({"max_replicates": 0}, "max_replicates"),
        ({"dpi": 12.5}, "dpi"),
        ({"subgroups": pd.DataFrame({"factor": ["x"]})}, "subgroups"),
    ]
    for change, message in bad:
        with pytest.raises(ValueError, match=message):
            make_figures(study, **{**ok, **change})
    with pytest.raises(ValueError, match="patients"):
        make_figures({"lines": study["lines"]}, **ok)
    with pytest.raises(ValueError, match="tables must map"):
        make_figures([study], **ok)
    with pytest.raises(ValueError, match="max_patients"):
        swimmer_plot(study, tmp_path / "s.png", max_patients=0)
    with pytest.raises(ValueError, match="curves"):
        km_plot([], tmp_path / "k.png", title="t")
    with pytest.raises(ValueError, match="no patients"):
        km_plot([KMCurve("a", np.empty(0), np.empty(0, bool))], tmp_path / "k.png", title="t")
    frame = {c: [1.0] for c in figures.FOREST_COLUMNS}
    with pytest.raises(ValueError, match="'hr'"):
        forest_plot({**frame, "hr": [-1.0]}, tmp_path / "f.png", title="t")
    with pytest.raises(ValueError, match="lacks column"):
        forest_plot({"hr": [1.0]}, tmp_path / "f.png", title="t")
    with pytest.raises(ValueError, match="grid_months"):
        km_band([1.0, 2.0], [True, False], [0, 1], [])
    with pytest.raises(ValueError, match="replicates"):
        km_band([1.0, 2.0], [True, False], [0], [0.0, 1.0])
