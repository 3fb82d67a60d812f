"""``hccsim compare``: arms on the same virtual patients with common random numbers.

The variance check runs two arms that differ from the first line on (ramucirumab then
cabozantinib, against cabozantinib then ramucirumab) in 40 replicates of 60 patients, and
compares the variance across replicates of the within-replicate difference (common random
numbers) with that of differences between independent replicates (arm B of replicate r+1 against
arm A of replicate r: independent cohorts of the same size). The ratio must lie below
1 / F(0.975; n - 1, n - 1) for the n replicates used (about 0.53 at n = 40): the ratio of two
independent sample variances of equal true variance falls below that bound only with
probability 2.5%, so passing shows that common random numbers do shrink the variance. A
replicate where the metric is undefined in either arm or in the independent partner is left
out; at least 75% must remain. Measured at this seed (regression values, calibrated
parameters): 0.07 for the RMST of OS and 0.21 for median OS. The arms differ from the first
line, so scan timing, measurement error and spontaneous regressions (streams keyed by drug) are
not shared, and progression gains little: the RMST of PFS measured 0.54 at 40 replicates and
0.68 at 80 with the current parameters (0.40 with the previous set), not significantly below 1
at these sizes, and the median of PFS, a step function of scan days, nothing (ratio 1.0); neither
is checked.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats

from hccsim.analysis.summary import metrics_from_endpoints, patient_endpoints
from hccsim.simulator.scenario import loads
from hccsim.simulator.studies import compare as compare_mod
from hccsim.simulator.studies.run import simulate_replicates
from tests.helpers import hccsim

BASE = """
name: compare-check
description: Two second-line sequences after lenvatinib on the same patients.
seed: 11
replicates: {replicates}
population:
  preset: second_line_post_sorafenib
  eligibility: {{afp_min: 400}}
  prior_lines: [{{prior: [lenvatinib]}}]
cohort: {{size: {size}, accrual_per_month: 8}}
treatment:
  label_restrictions: false
  arms:
{arms}
observation: {{max_follow_up_months: 24, lab_weeks: 4}}
analysis: {{data_cut_months: 20}}
"""
#: Replicates of the variance check (see the module docstring).
REPLICATES = 40

TWO = """    - {name: ram, sequence: [ramucirumab, cabozantinib]}
    - {name: cabo, sequence: [cabozantinib, ramucirumab]}"""
SAME = """    - {name: ram, sequence: [ramucirumab, cabozantinib]}
    - {name: ram_again, sequence: [ramucirumab, cabozantinib]}
    - {name: cabo, sequence: [cabozantinib, ramucirumab]}"""


def _scenario(arms: str, size: int = 40, replicates: int = 3):
    return loads(BASE.format(arms=arms, size=size, replicates=replicates))


@pytest.fixture(scope="module")
def three_arms():
    sc = _scenario(SAME)
    return compare_mod.simulate_compare(sc, 11, 3)


def test_identical_arms_differ_by_exactly_zero(three_arms):
    res = three_arms
    summary = compare_mod.summarise_compare(res)
    np.testing.assert_array_equal(res.values["ram"], res.values["ram_again"])
    for metric, d in summary["differences"]["ram_again"].items():
        if d["replicates_used"]:
            assert d["mean"] == 0.0 and d["q025"] == 0.0 and d["q975"] == 0.0, metric
    # and the comparison is not vacuous: the other arm differs
    assert not np.array_equal(res.values["ram"], res.values["cabo"])


def test_each_arm_is_the_single_sequence_cohort():
    """An arm of a comparison is exactly the cohort that a one-sequence scenario with the same
    seed simulates: the same patients, the same histories, the same metrics."""
    sc = _scenario(TWO, size=30, replicates=2)
    res = compare_mod.simulate_compare(sc, 11, 2)
    single = BASE.replace("  arms:\n{arms}\n", "  sequence: [cabozantinib, ramucirumab]\n")
    one = loads(single.format(size=30, replicates=2))
    from hccsim.analysis.endpoints import data_cut

    for r, tables in simulate_replicates(one, 11, [0, 1]):
        cut = data_cut(tables, 20 * 30.4375)
        ep = patient_endpoints(cut, scan_interval_days=one.imaging_interval_days)
        expected = metrics_from_endpoints(ep)
        for m in compare_mod.BASE_METRICS:
            got = res.column("cabo", m)[r]
            assert got == pytest.approx(expected[m], nan_ok=True, rel=0, abs=0), m


def test_same_patients_in_every_arm():
    sc = _scenario(TWO, size=25, replicates=1)
    spec_tables = {}
    import dataclasses

    from hccsim.simulator.records import concat
    from hccsim.simulator.studies.run import build_spec, simulate_task

    spec = build_spec(sc, 11)
    for ctx in spec.arms:
        arm_spec = dataclasses.replace(spec, ctx=ctx, arms=(), weights=())
        spec_tables[ctx.arm] = concat([simulate_task(arm_spec, 0, 0, 25)])["patients"]
    a, b = spec_tables["ram"], spec_tables["cabo"]
    for col in ("patient_id", "entry_day", "age", "afp_ng_ml", "ecog", "index_line"):
        np.testing.assert_array_equal(np.asarray(a[col]), np.asarray(b[col]), err_msg=col)
    assert not np.array_equal(
        np.asarray(a["last_follow_up_day"]), np.asarray(b["last_follow_up_day"])
    )


def test_common_random_numbers_shrink_the_variance_of_a_difference():
    sc = _scenario(TWO, size=60, replicates=REPLICATES)
    res = compare_mod.simulate_compare(sc, 11, REPLICATES, jobs=2)
    for metric in ("os_rmst_months", "os_median_months"):
        a, b = res.column("ram", metric), res.column("cabo", metric)
        partner = np.roll(b, -1)
        ok = np.isfinite(a) & np.isfinite(b) & np.isfinite(partner)
        n = int(ok.sum())
        assert n >= 0.75 * REPLICATES, f"{metric}: defined in only {n} of {REPLICATES} replicates"
        crn = np.var((b - a)[ok], ddof=1)
        independent = np.var((partner - a)[ok], ddof=1)
        ratio = crn / independent
        bound = 1.0 / scipy.stats.f.ppf(0.975, n - 1, n - 1)
        assert ratio < bound, f"{metric}: variance ratio CRN / independent = {ratio:.3f}"


def test_workers_do_not_change_results():
    sc = _scenario(TWO, size=20, replicates=3)
    one = compare_mod.summarise_compare(compare_mod.simulate_compare(sc, 11, 3, jobs=1))
    two = compare_mod.summarise_compare(compare_mod.simulate_compare(sc, 11, 3, jobs=2))
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)


def test_difference_stats_known_values():
    d = np.array([1.0, 2.0, 3.0, np.inf, 4.0])
    s = compare_mod.difference_stats(d)
    assert s["replicates_used"] == 4
    assert s["mean"] == 2.5
    se = np.std([1, 2, 3, 4], ddof=1) / 2
    assert s["mc_se"] == pytest.approx(se)
    assert s["ci_low"] == pytest.approx(2.5 - 1.96 * se)
    assert s["q025"] == pytest.approx(np.quantile([1, 2, 3, 4], 0.025))
    assert compare_mod.difference_stats(np.array([np.nan]))["mean"] is None


def test_rmst_is_defined_when_the_curve_reaches_zero_early():
    d = np.array([30.0, 60.0, 90.0])
    e = np.array([True, True, True])
    # area under S: 1 to 30, 2/3 to 60, 1/3 to 90, 0 after -> (30 + 20 + 10) days
    assert compare_mod._rmst_months(d, e, 365.0) == pytest.approx(60.0 / 30.4375)
    e[-1] = False  # the last patient censored at 90 days: unknown up to a year
    assert np.isnan(compare_mod._rmst_months(d, e, 365.0))


def test_cli_writes_every_output(tmp_path, three_arms):
    path = tmp_path / "c.yaml"
    path.write_text(BASE.format(arms=SAME, size=30, replicates=2))
    out = tmp_path / "out"
    r = hccsim("compare", str(path), "--out", str(out), "--jobs", "2")
    assert r.returncode == 0, r.stderr
    assert "Median OS (months)" in r.stdout and "ram_again" in r.stdout
    for name in (
        "compare.json",
        "compare.csv",
        "report.html",
        "provenance.json",
        "scenario.resolved.yaml",
        "figures/km_os.png",
        "figures/km_pfs_recist.png",
        "figures/km_pfs_mrecist.png",
        "figures/later_lines.png",
        "figures/time_on_drug.png",
    ):
        assert (out / name).is_file(), name
    data = json.loads((out / "compare.json").read_text())
    assert data["arms"] == ["ram", "ram_again", "cabo"] and data["replicates"] == 2
    assert data["differences"]["ram_again"]["os_median_months"]["mean"] == 0.0
    assert data["data_cut_not_reached_replicates"] == 0 and "note:" not in r.stderr
    html = (out / "report.html").read_text()
    assert "Differences from ram" in html and "data:image/png;base64," in html
    again = hccsim("compare", str(path), "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t: t.replace("  arms:\n" + TWO + "\n", "  sequence: [ramucirumab]\n"),
            "treatment.arms: missing; hccsim compare needs two or more arms",
        ),
        (
            lambda t: t.replace("data_cut_months: 20", "data_cut_events: 20"),
            "analysis.data_cut_events: 20 is not used by hccsim compare",
        ),
        (
            lambda t: t + "compare: {reference: nobody}\n",
            "compare.reference: 'nobody' is not allowed; expected one of the arm names: ram, cabo",
        ),
    ],
)
def test_cli_bad_input_exits_2(tmp_path, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(change(BASE.format(arms=TWO, size=10, replicates=2)))
    r = hccsim("compare", str(path), "--out", str(tmp_path / "o"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_cli_needs_two_replicates(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(BASE.format(arms=TWO, size=10, replicates=2))
    r = hccsim("compare", str(path), "--replicates", "1", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "at least 2 replicates" in r.stderr


@pytest.mark.parametrize("restricted", [True, False])
def test_prior_lines_and_label_restrictions(restricted):
    """population.prior_lines replaces the preset's streams; with label restrictions,
    cabozantinib (label: after sorafenib) is skipped after atezolizumab + bevacizumab."""
    sc = loads(
        f"""
name: labels
description: Ramucirumab then cabozantinib after atezolizumab + bevacizumab.
population:
  preset: second_line_post_sorafenib
  eligibility: {{afp_min: 400}}
  prior_lines: [{{prior: [atezolizumab_bevacizumab]}}]
cohort: {{size: 60}}
treatment: {{sequence: [ramucirumab, cabozantinib], label_restrictions: {str(restricted).lower()}}}
"""
    )
    (_, tables), *_ = simulate_replicates(sc, 3, [0])
    ln = tables["lines"]
    line, drug = np.asarray(ln["line"]), np.asarray(ln["drug"], dtype=object)
    assert set(drug[line == 1]) == {"atezolizumab_bevacizumab"} and (line == 1).sum() == 60
    assert set(drug[line == 2]) == {"ramucirumab"}
    third = set(drug[line == 3])
    assert third == (set() if restricted else {"cabozantinib"})


def test_supportive_care_arm_has_an_index_line_and_no_measured_progression():
    """A supportive-care-only sequence writes one index-line row per patient (the data
    contract) and, with nobody imaged, leaves response and PFS undefined rather than 0% or a
    median of early deaths; OS is still estimated, and a comparison against it runs."""
    arms = """    - {name: ram, sequence: [ramucirumab]}
    - {name: bsc, sequence: [best_supportive_care]}"""
    sc = _scenario(arms, size=30, replicates=2)
    one = loads(
        BASE.replace("  arms:\n{arms}\n", "  sequence: [best_supportive_care]\n").format(
            size=30, replicates=1
        )
    )
    ((_, tables),) = simulate_replicates(one, 11, [0])
    ln, pt = tables["lines"], tables["patients"]
    index = [
        (p, line, drug)
        for p, line, drug, idx in zip(
            ln["patient_id"], ln["line"], ln["drug"], ln["index"], strict=True
        )
        if idx
    ]
    assert sorted(p for p, _, _ in index) == sorted(pt["patient_id"])
    lines = dict(zip(pt["patient_id"], pt["index_line"], strict=True))
    assert all(line == lines[p] and d == "best_supportive_care" for p, line, d in index)
    m = metrics_from_endpoints(patient_endpoints(tables, scan_interval_days=56.0))
    assert np.isfinite(m["os_median_months"])
    for name in ("pfs_recist_median_months", "orr_recist", "dcr_mrecist", "bor_recist_ne"):
        assert np.isnan(m[name]), name
    res = compare_mod.simulate_compare(sc, 11, 2)
    d = compare_mod.summarise_compare(res)["differences"]["bsc"]
    assert d["os_rmst_months"]["replicates_used"] == 2
    assert d["pfs_recist_median_months"]["replicates_used"] == 0


def test_the_report_methods_state_the_scenarios_response_rule():
    """The Methods paragraph on endpoints says how best response was read (it said "stable
    disease for at least 6 weeks" whatever the scenario's rule)."""
    from hccsim.analysis.response import ResponseRule
    from hccsim.simulator.studies import compare

    default = dict(compare.methods(ResponseRule()))["Endpoints"]
    chart = dict(compare.methods(ResponseRule(0.0, confirm=True)))["Endpoints"]
    assert "(SD at least 42 days after its start; no confirmation)" in default
    assert "(SD at least 0 days after its start; CR/PR confirmed at least 28 days later)" in chart
    assert "{" not in default + chart


def test_an_unreached_data_cut_gets_a_note(tmp_path):
    """A calendar cut after the simulated follow-up: each replicate is analysed with all its
    follow-up, as hccsim run does, and the terminal, compare.json and the report say so."""
    text = BASE.format(arms=TWO, size=20, replicates=2).replace(
        "max_follow_up_months: 24", "max_follow_up_months: 12"
    )
    path = tmp_path / "c.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    r = hccsim("compare", str(path), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr == (
        f"hccsim: note: {path}: analysis.data_cut_months: 20 not reached in 2 of 2 replicates "
        "(the simulated follow-up, observation.max_follow_up_months 12, ended before it with "
        "patients alive); these are analysed with all their follow-up\n"
    )
    assert json.loads((out / "compare.json").read_text())["data_cut_not_reached_replicates"] == 2
    assert "was not reached in 2 of 2 replicates" in (out / "report.html").read_text()
    reached = compare_mod.simulate_compare(_scenario(TWO, size=20, replicates=2), 11, 2)
    assert reached.cut_not_reached == 0  # follow-up to 24 months passes the cut at 20
