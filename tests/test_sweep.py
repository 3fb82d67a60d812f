"""``hccsim sweep``: the grid, common random numbers across points, exact agreement with
``hccsim run`` at the base point, power mode, outputs and refusals."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from hccsim.simulator.errors import InputError
from hccsim.simulator.scenario import loads, sweep_points
from hccsim.simulator.studies import sweep
from hccsim.simulator.studies.run import run
from tests.helpers import hccsim

BASE = """
name: sweep-check
description: A small anchor-like cohort for the sweep tests.
seed: 4242
replicates: 3
population: {{preset: anchor_ramucirumab}}
cohort: {{size: 40, accrual_per_month: 2.0}}
treatment: {{sequence: [ramucirumab, regorafenib]}}
observation: {{imaging_weeks: 6, imaging_window_days: 7, lab_weeks: 4, max_follow_up_months: 24}}
analysis: {{data_cut_months: 22}}
{sweep}
"""

IMAGING = "sweep: {grid: {observation.imaging_weeks: [6, 12]}}"

POWER = """
name: sweep-power
description: A tiny two-arm design swept over alpha.
seed: 99
population: {preset: anchor_ramucirumab}
cohort: {size: 40, accrual_per_month: 4.0}
treatment:
  arms:
    - {name: placebo, sequence: [placebo, best_supportive_care]}
    - {name: ramucirumab, sequence: [ramucirumab, best_supportive_care], death_hazard_ratio: 0.5}
observation: {imaging_weeks: 6, lab_weeks: 4, max_follow_up_months: 18}
analysis: {data_cut_months: 20}
power: {endpoint: os, test: logrank, sample_sizes: [20, 40], replicates: 10}
sweep: {grid: {power.alpha: [0.05, 0.2]}}
"""

#: Columns of the patients table fixed before any treatment happens.
OUTCOME_COLUMNS = {"death", "death_day", "last_follow_up_day", "cause_of_death"}


def _scenario(sweep_text: str = IMAGING):
    return loads(BASE.format(sweep=sweep_text), "test.yaml")


def test_grid_is_the_cartesian_product_with_the_first_path_slowest():
    sc = _scenario(
        "sweep: {grid: {observation.imaging_weeks: [6, 8, 12], "
        "population.eligibility.afp_min: [null, 400]}}"
    )
    points = sweep_points(sc, "test.yaml")
    assert [p for p, _ in points] == [
        {"observation.imaging_weeks": w, "population.eligibility.afp_min": a}
        for w in (6, 8, 12)
        for a in (None, 400)
    ]
    for point, s in points:
        assert s.observation.imaging_weeks == point["observation.imaging_weeks"]
        assert s.population.eligibility.afp_min == point["population.eligibility.afp_min"]
        assert s.sweep is None and s.seed == 4242 and s.cohort.size == 40
    p = sweep.plan(sc, source="test.yaml", check=False)
    assert p.mode == "summary" and p.metrics == list(sweep.DEFAULT_METRICS)
    assert p.paths == ["observation.imaging_weeks", "population.eligibility.afp_min"]
    assert len(p.points) == 6


def test_every_grid_point_is_validated_when_the_file_is_loaded():
    with pytest.raises(InputError) as err:
        _scenario("sweep: {grid: {observation.imaging_weeks: [6, 0]}}")
    message = str(err.value)
    assert "sweep point observation.imaging_weeks=0" in message
    assert (
        "observation.imaging_weeks" in message.split("sweep point observation.imaging_weeks=0")[1]
    )


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("os_median", "os_median_months"),  # used to suggest cycles_median
        ("pfs_recist_median", "pfs_recist_median_months"),
        ("cycle_median", "cycles_median"),
    ],
)
def test_a_mistyped_metric_suggests_the_metric_meant(name, meant):
    with pytest.raises(InputError) as err:
        _scenario(IMAGING[:-1] + f", metrics: [{name}]}}")
    assert str(err.value) == (
        f"test.yaml: sweep.metrics: {name!r} is not allowed; not a summary metric; expected "
        "names such as os_median_months, pfs_recist_median_months, orr_mrecist (README lists "
        f"them all) (did you mean {meant!r}?)"
    )


def test_an_event_driven_cut_is_refused_in_summary_mode():
    text = BASE.format(sweep=IMAGING).replace("data_cut_months: 22", "data_cut_events: 20")
    with pytest.raises(InputError, match=r"analysis\.data_cut_events: 20 .*data_cut_months"):
        sweep.plan(loads(text, "test.yaml"), source="test.yaml")


def test_points_share_their_patients_common_random_numbers():
    p = sweep.plan(_scenario(), source="test.yaml")
    a, b = (
        sweep.replicate_tables(p.scenarios[0], p.seed, 1),
        sweep.replicate_tables(p.scenarios[1], p.seed, 1),
    )
    pa, pb = next(a)["patients"], next(b)["patients"]
    baseline = [c for c in pa if c not in OUTCOME_COLUMNS]
    assert len(baseline) > 30
    for c in baseline:
        np.testing.assert_array_equal(pa[c], pb[c], err_msg=c)
    # The imaging interval does change what happens to them afterwards.
    assert not np.array_equal(pa["last_follow_up_day"], pb["last_follow_up_day"]) or not (
        np.array_equal(pa["death_day"], pb["death_day"])
    )


def test_the_base_point_gives_exactly_the_metrics_of_hccsim_run(tmp_path):
    """Point imaging_weeks=6 is the base scenario: its summary equals that of ``run`` (same seed,
    same replicates), and the Monte-Carlo SE is SD / sqrt(R) of run's per-replicate values."""
    metrics = ["os_median_months", "pfs_recist_median_months", "orr_mrecist", "ae_any_fatigue"]
    sc = _scenario(
        "sweep: {grid: {observation.imaging_weeks: [6, 12]}, metrics: " + json.dumps(metrics) + "}"
    )
    result = sweep.simulate_sweep(sweep.plan(sc, source="test.yaml"))
    ran = run(sc.model_copy(update={"sweep": None}), tmp_path / "run")
    done = json.loads((tmp_path / "run" / "manifest.json").read_text())["done"]
    for m in metrics:
        got = result.summaries[0][m]
        want = ran.summary["metrics"][m]
        for s in ("mean", "median", "q025", "q975"):
            assert got[s] == want[s], (m, s)
        values = np.array([float(done[str(r)][m]) for r in range(3)])
        assert got["mc_se"] == pytest.approx(values.std(ddof=1) / math.sqrt(3), rel=1e-12)
    # The other point really differs (PFS depends on when scans happen).
    assert (
        result.summaries[1]["pfs_recist_median_months"]
        != result.summaries[0]["pfs_recist_median_months"]
    )


def test_power_mode_is_monotone_in_alpha_on_the_same_trials(tmp_path):
    sc = loads(POWER, "power.yaml")
    p = sweep.plan(sc, source="power.yaml")
    assert p.mode == "power" and [s.power.alpha for s in p.scenarios] == [0.05, 0.2]
    result = sweep.simulate_sweep(p)
    low, high = result.power_rows
    assert [r.n for r in low] == [r.n for r in high] == [20, 40]
    for a, b in zip(low, high, strict=True):
        assert b.power >= a.power
        # Same simulated trials at both points: only the threshold differs.
        assert (a.mean_events, a.estimate) == (b.mean_events, b.estimate)
        assert a.replicates == b.replicates == 10
    assert sum(r.power for r in high) > sum(r.power for r in low)  # HR 0.5 shows at alpha 0.2
    sweep.write_outputs(tmp_path, result, {"scenario": sc.name}, source="power.yaml")
    frame = pd.read_csv(tmp_path / "sweep.csv")
    assert list(frame["power.alpha"]) == [0.05, 0.05, 0.2, 0.2]
    assert list(frame["n"]) == [20, 40, 20, 40]
    assert frame["power"].dtype == float
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert data["mode"] == "power" and data["seed"] == 99 and data["replicates"] == 10
    assert data["endpoint"] == sc.power.endpoint  # not swept here: the scenario's own
    assert [pt["point"] for pt in data["points"]] == [{"power.alpha": 0.05}, {"power.alpha": 0.2}]
    assert (tmp_path / "figures" / "sweep.png").stat().st_size > 5000


def test_replicates_option_overrides_power_replicates_at_every_point():
    text = POWER.replace("power.alpha: [0.05, 0.2]", "power.replicates: [10, 20]")
    p = sweep.plan(loads(text, "power.yaml"), source="power.yaml", replicates=12, check=False)
    assert [s.power.replicates for s in p.scenarios] == [12, 12]
    with pytest.raises(InputError, match=r"power\.replicates"):
        sweep.plan(loads(POWER, "power.yaml"), source="power.yaml", replicates=3, check=False)


def test_cli_writes_every_output_and_is_the_same_for_one_and_two_jobs(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        BASE.format(
            sweep="sweep: {grid: {observation.imaging_weeks: [6, 12], "
            "population.eligibility.afp_min: [null, 1000]}}"
        )
    )
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = hccsim("sweep", str(path), "--jobs", "1", "--out", str(one))
    assert r1.returncode == 0, r1.stderr
    for name in sweep.OUTPUTS:
        assert (one / name).is_file(), name
    assert "imaging_weeks" in r1.stdout and "written:" in r1.stdout
    frame = pd.read_csv(one / "sweep.csv")
    assert len(frame) == 4
    assert list(frame.columns[:2]) == [
        "observation.imaging_weeks",
        "population.eligibility.afp_min",
    ]
    for m in sweep.DEFAULT_METRICS:
        for s in sweep.STATISTICS:
            assert frame[f"{m}_{s}"].dtype == float, (m, s)
    data = json.loads((one / "sweep.json").read_text())
    assert data["mode"] == "summary" and data["seed"] == 4242 and data["replicates"] == 3
    assert "seed: 4242" in (one / "scenario.resolved.yaml").read_text()
    html = (one / "report.html").read_text()
    assert "data:image/png;base64," in html and "sweep-check" in html
    assert "scans read by" in html and "Reading of scans" in html

    r2 = hccsim("sweep", str(path), "--jobs", "2", "--out", str(two), "--quiet")
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == ""
    assert (one / "sweep.csv").read_bytes() == (two / "sweep.csv").read_bytes()
    assert (one / "sweep.json").read_bytes() == (two / "sweep.json").read_bytes()
    png = "figures/sweep.png"
    assert (one / png).read_bytes() == (two / png).read_bytes()

    again = hccsim("sweep", str(path), "--out", str(one), "--replicates", "2")
    assert again.returncode == 2
    assert "--overwrite" in again.stderr and "Traceback" not in again.stderr
    forced = hccsim("sweep", str(path), "--out", str(one), "--replicates", "2", "--overwrite")
    assert forced.returncode == 0, forced.stderr
    assert json.loads((one / "sweep.json").read_text())["replicates"] == 2


def test_cli_refuses_a_scenario_without_a_sweep_section(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(BASE.format(sweep=""))
    r = hccsim("sweep", str(path), "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert "sweep: missing" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_a_point_whose_data_cut_is_not_reached_gets_a_note():
    """A calendar cut beyond every patient's follow-up (60 months; entry over 20 months and
    12 months of follow-up) is not reached: that point's replicates are analysed with all
    their follow-up (as hccsim run does), and the notes say at which point. At 22 months the
    late entrants are followed past the cut: reached, no note."""
    text = BASE.format(sweep="sweep: {grid: {analysis.data_cut_months: [60, 22]}}")
    sc = loads(text.replace("max_follow_up_months: 24", "max_follow_up_months: 12"), "t.yaml")
    result = sweep.simulate_sweep(sweep.plan(sc, source="t.yaml"))
    assert result.cut_not_reached == [[3], [0]]
    notes = [n for n in result.notes if "data_cut_months" in n]
    assert notes == [
        "At analysis.data_cut_months=60: analysis.data_cut_months: 60 was not reached in 3 of "
        "3 replicates (the simulated follow-up, observation.max_follow_up_months 12, ended "
        "before it with patients alive); those are analysed with all their follow-up."
    ]
    assert [pt["data_cut_not_reached"] for pt in sweep.sweep_json(result)["points"]] == [3, 0]


def test_power_mode_counts_an_unreached_cut_per_sample_size():
    """As hccsim power does: the trials of 20 patients (entry over 5 months) are all followed
    for 18 months and never reach a cut at 24 months; those of 40 (entry over 10) do."""
    text = POWER.replace("power.alpha: [0.05, 0.2]", "power.alpha: [0.05]")
    sc = loads(text.replace("data_cut_months: 20", "data_cut_months: 24"), "power.yaml")
    result = sweep.simulate_sweep(sweep.plan(sc, source="power.yaml"))
    (missed,) = result.cut_not_reached
    assert len(missed) == 2 and missed[0] > 0 and missed[1] == 0
    assert [n for n in result.notes if "data_cut_months" in n] == [
        f"At power.alpha=0.05: analysis.data_cut_months: 24 was not reached in {missed[0]} of 10 "
        "simulated trials at n=20 (the simulated follow-up, observation.max_follow_up_months "
        "18, ended before it with patients alive); those are analysed with all their follow-up."
    ]
    assert sweep.sweep_json(result)["points"][0]["data_cut_not_reached"] == missed
