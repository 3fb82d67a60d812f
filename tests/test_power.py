"""Trial designs and ``hccsim power``: randomisation, accrual, nested sample sizes, and the
validity of the simulated power.

Validity runs the whole machinery (arms, permuted blocks, Poisson accrual, calendar data cut,
nested sizes, the log-rank of ``analysis.power``) on a model made exponential: a constant death
hazard of 0.05 per month with every covariate effect and background mortality switched off, no
treatment (best supportive care in both arms), and the experimental arm's hazard multiplied by
``death_hazard_ratio``. Its power is compared with an independent numpy simulation of the same
exponential design. Tolerances are 3 Monte-Carlo standard errors of the difference, at fixed
seeds (the tests cannot flake).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hccsim.analysis.survival import logrank_many
from hccsim.simulator import trial
from hccsim.simulator.cli import main
from hccsim.simulator.records import concat
from hccsim.simulator.scenario import loads
from hccsim.simulator.studies import power as power_mod
from hccsim.simulator.studies.run import build_spec, simulate_task
from tests.helpers import hccsim
from tests.test_survival_model import CONSTANT_HAZARD

#: The constant-hazard parameters (0.05 deaths a month, nothing else acting on death).
CONSTANT_DEATH_HAZARD = CONSTANT_HAZARD[CONSTANT_HAZARD.index("parameters:") :]

MONTH = 30.4375
N, RATE, CUT, BASE = 80, 10.0, 18.0, 0.05


def _exponential(hr: float, replicates: int, sizes=(N,), sides: int = 2) -> str:
    return f"""
name: exponential-check
description: Exponential overall survival with proportional hazards between two arms.
seed: 7
population: {{preset: anchor_ramucirumab}}
cohort: {{size: {max(sizes)}, accrual_per_month: {RATE}}}
treatment:
  arms:
    - {{name: control, sequence: [best_supportive_care]}}
    - {{name: experimental, sequence: [best_supportive_care], death_hazard_ratio: {hr}}}
observation: {{max_follow_up_months: 24, labs_off_treatment: false, lab_weeks: 12}}
analysis: {{data_cut_months: {CUT}}}
power: {{endpoint: os, test: logrank, sides: {sides}, sample_sizes: {list(sizes)}, replicates: {replicates}}}
{CONSTANT_DEATH_HAZARD}"""


def _exact_power(hr: float, replicates: int, seed: int = 1) -> float:
    """The same design in plain numpy: Poisson accrual at RATE a month, 1:1 permuted blocks of
    two, exponential survival (BASE a month; BASE x hr in the experimental arm), censoring at
    the calendar cut, two-sided log-rank at 5% with the effect in the hypothesised direction."""
    rng = np.random.default_rng(seed)
    entry = np.cumsum(rng.exponential(1.0 / RATE, size=(replicates, N)), axis=1)
    arm = np.stack([rng.permutation([0, 1]) for _ in range(replicates * N // 2)]).reshape(
        replicates, N
    )
    t = rng.exponential(1.0, size=(replicates, N)) / (BASE * np.where(arm == 1, hr, 1.0))
    follow = CUT - entry
    enrolled = follow > 0
    d = np.where(enrolled, np.minimum(t, follow), np.nan)
    e = enrolled & (t <= follow)
    res = logrank_many(d, e, arm)
    reject = (res.p_value < 0.05) & (res.z < 0)  # fewer deaths than expected in arm 1
    return float(np.mean(reject))


def _mc_tolerance(p: float, r1: int, r2: int) -> float:
    return 3.0 * math.sqrt(max(p * (1 - p), 0.01) * (1.0 / r1 + 1.0 / r2))


@pytest.mark.slow
def test_exponential_power_equals_an_exact_simulation_of_the_same_design():
    """HR 0.6, 80 patients, 300 hccsim trials against 20,000 numpy trials: the powers (about
    0.3) agree within 3 MC SE of their difference (about 0.08)."""
    replicates = 300
    sc = loads(_exponential(0.6, replicates))
    assert sc.parameters["death"]["base_rate_per_month"] == BASE  # the exact model's rate
    results = power_mod.simulate_power(sc, sc.seed, jobs=2)
    simulated = float(results[:, 0, 0].mean())
    exact = _exact_power(0.6, 20_000)
    assert abs(simulated - exact) <= _mc_tolerance(exact, replicates, 20_000), (simulated, exact)
    assert 0.15 < exact < 0.6  # a power where the comparison has teeth


@pytest.mark.slow
def test_type_one_error_at_no_effect_is_alpha():
    """Identical arms (HR 1), 400 trials, one-sided log-rank at 5%: the rejection rate is
    within 3 MC SE (0.033) of alpha. (Two-sided tests count rejections only with the effect in
    the hypothesised direction, so their rate at no effect is alpha / 2;
    ``tests/test_analysis_power.py`` checks both on many more exponential trials.)"""
    replicates = 400
    sc = loads(_exponential(1.0, replicates, sides=1))
    results = power_mod.simulate_power(sc, sc.seed, jobs=2)
    rate = float(results[:, 0, 0].mean())
    assert abs(rate - 0.05) <= 3 * math.sqrt(0.05 * 0.95 / replicates), rate


def test_nested_sizes_are_the_trials_of_those_sizes():
    """The size-40 result of a replicate simulated at 80 patients equals that of a trial of 40
    patients simulated on its own (entry times and arms depend only on the patient index)."""
    big = loads(_exponential(0.7, 10, sizes=(40, 80)))
    small = loads(_exponential(0.7, 10, sizes=(40,)))
    for r in range(4):
        a = power_mod.replicate_results(big, 7, r)
        b = power_mod.replicate_results(small, 7, r)
        np.testing.assert_array_equal(a[0], b[0])


def test_results_do_not_depend_on_the_number_of_workers():
    sc = loads(_exponential(0.7, 12, sizes=(30, 60)))
    one = power_mod.simulate_power(sc, 3, jobs=1)
    two = power_mod.simulate_power(sc, 3, jobs=2)
    np.testing.assert_array_equal(one, two)
    on_dask = power_mod.simulate_power(sc, 3, jobs=2, backend="dask")  # a local cluster
    np.testing.assert_array_equal(one, on_dask)


TRIAL = """
name: randomisation-check
description: Stratified 2:1 permuted blocks.
seed: 11
population: {preset: anchor_ramucirumab}
cohort: {size: 300, batch_size: 70, accrual_per_month: 12, accrual_ramp_up_months: 6}
treatment:
  arms:
    - {name: control, sequence: [placebo]}
    - {name: experimental, sequence: [ramucirumab], allocation: 2}
  randomisation: {block_multiple: 2, stratify_by: [ecog, mvi_or_ehm]}
observation: {max_follow_up_months: 3}
"""


def test_stratified_permuted_blocks_balance_every_stratum_and_ignore_batches():
    sc = loads(TRIAL)
    spec = build_spec(sc, 11)
    whole = simulate_task(spec, 0, 0, 300)["patients"]
    parts = concat([simulate_task(spec, 0, a, min(a + 70, 300)) for a in range(0, 300, 70)])
    for col in ("arm", "stratum", "entry_day"):
        np.testing.assert_array_equal(whole[col], parts["patients"][col])
    arm = np.asarray(whole["arm"], dtype=object)
    stratum = np.asarray(whole["stratum"], dtype=object)
    assert len(set(stratum.tolist())) == 4
    block = 2 * (1 + 2)
    for s in set(stratum.tolist()):
        seq = (arm[stratum == s] == "experimental").astype(int)
        # After every complete block, exactly 2/3 are experimental; within a block at most
        # one block's worth of imbalance.
        for k in range(block, len(seq) + 1, block):
            assert seq[:k].sum() == 2 * k // 3
        assert abs(seq.sum() - 2 * len(seq) / 3) <= block
    # The patients' baselines decide their strata.
    ecog = np.asarray(whole["ecog"])
    assert all(("ECOG 0" in s) == (e == 0) for s, e in zip(stratum, ecog, strict=True))


def test_ramp_up_is_the_inverse_of_the_expected_accrual():
    """Expected patients by month t: r t^2 / (2R) up to R, r (t - R/2) after."""
    r, ramp = 12.0, 6.0
    months = np.array([0.5, 3.0, 6.0, 9.0, 20.0])
    expected = np.where(months <= ramp, r * months**2 / (2 * ramp), r * (months - ramp / 2))
    np.testing.assert_allclose(trial.ramp_up_months(expected, r, ramp), months, rtol=1e-12)
    np.testing.assert_allclose(trial.ramp_up_months(expected, r, 0.0), expected / r)
    spec = build_spec(loads(TRIAL), 11)
    entry = np.asarray(simulate_task(spec, 0, 0, 300)["patients"]["entry_day"]) / MONTH
    assert np.all(np.diff(entry) > 0)
    # Unit-rate Poisson times mapped through the ramp: 36 patients expected by month 6
    # (SD 6): the 36th patient enters within a few months of month 6.
    assert 3.0 < entry[35] < 9.0


def test_power_command_writes_its_outputs(tmp_path):
    out = tmp_path / "power"
    res = hccsim(
        "power", "power_second_line_afp400", "--replicates", "10", "--sample-sizes",
        "60,90", "--out", str(out), "--jobs", "2",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    data = json.loads((out / "power.json").read_text())
    assert [r["n"] for r in data["rows"]] == [60, 90]
    assert all(0.0 <= r["power"] <= 1.0 for r in data["rows"])
    assert (out / "power.csv").read_text().startswith("n,replicates,power,")
    assert (out / "figures" / "power_curve.png").read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "scans read by" in html
    assert "Schoenfeld" in res.stdout
    assert res.stderr == ""  # its data cut (36 months) is reached: no note


UNREACHED = """
name: power-cut-check
description: A data cut that 20 or 40 patients followed for 12 months never reach.
seed: 5
population: {preset: second_line_post_sorafenib}
cohort: {size: 40}
treatment:
  arms:
    - {name: placebo, sequence: [placebo]}
    - {name: cabozantinib, sequence: [cabozantinib]}
observation: {max_follow_up_months: 12}
power: {sample_sizes: [20, 40], replicates: 10}
"""


@pytest.mark.parametrize(
    ("cut", "why"),
    [
        ("data_cut_events: 500", "fewer events in the whole simulated follow-up"),
        (
            "data_cut_months: 100",
            "the simulated follow-up, observation.max_follow_up_months 12, ended before it "
            "with patients alive",
        ),
    ],
)
def test_a_data_cut_that_is_not_reached_gets_a_note(cut, why, tmp_path, capsys):
    """Each trial is analysed with all its follow-up, as before, and the note says so (it
    used to say nothing)."""
    path = tmp_path / "cut.yaml"
    path.write_text(UNREACHED + f"analysis: {{{cut}}}\n")
    assert main(["power", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert capsys.readouterr().err == (
        f"hccsim: note: {path}: analysis.{cut} not reached in 10 of 10 trials at n=20, 10 of "
        f"10 trials at n=40 ({why}); these are analysed with all their follow-up\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sample-sizes", "100,50"], "increasing whole numbers"),
        # a value starting with '-' used to get argparse's "expected one argument"
        (["--sample-sizes", "-30,60"], "'-30,60' is not allowed; expected increasing whole"),
        (["--sample-sizes=-30,60"], "'-30,60' is not allowed; expected increasing whole"),
        (["--target-power", "1.5"], "between 0.5 and 0.99"),
        # the bounds of power.replicates, refused by the option before any work
        (["--replicates", "5"], "'5' is not allowed; expected a whole number from 10 to 1,000,000"),
        (["--replicates", "1000001"], "'1000001' is not allowed; expected a whole number from 10"),
    ],
)
def test_bad_power_options_exit_2(tmp_path, args, message):
    res = hccsim("power", "power_second_line_afp400", "--out", str(tmp_path / "o"), *args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


def test_a_scenario_without_a_power_section_is_refused():
    res = hccsim("power", "anchor_ramucirumab")
    assert res.returncode == 2
    assert "power: missing" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("endpoint", "assessor", "said"),
    [
        ("os", "independent", None),
        ("pfs_recist", "investigator", "investigator's reading"),
        ("pfs_recist", "independent", "blinded independent central review"),
    ],
)
def test_the_power_table_note_says_whose_reading_a_scan_endpoint_is(
    endpoint, assessor, said, tmp_path
):
    """A scan-read endpoint (PFS, response) depends on who read the scans; OS does not."""
    from hccsim.analysis.report import ASSESSOR_TEXT
    from hccsim.simulator.studies import power as power_mod

    text = UNREACHED.replace(
        "observation: {max_follow_up_months: 12}",
        f"observation: {{max_follow_up_months: 12, assessor: {assessor}}}",
    ).replace("power: {sample_sizes", f"power: {{endpoint: {endpoint}, sample_sizes")
    sc = loads(text, "p.yaml")
    assert (sc.power.endpoint, sc.observation.assessor) == (endpoint, assessor)
    rows = power_mod.summarise_power(sc, power_mod.simulate_power(sc, 5))
    power_mod.write_outputs(tmp_path, sc, 5, rows, {"scenario": sc.name})
    html = (tmp_path / "report.html").read_text().replace("&#x27;", "'")
    if said is None:
        assert all(t.strip()[:60] not in html for t in ASSESSOR_TEXT.values())
    else:
        assert said in html
