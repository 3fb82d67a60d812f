"""The calibration scenarios (scenarios/calibration/): one emulated study per entry of
targets.yaml, whose names, arms, sizes and imaging the calibration code relies on. Every file
validates, follows the naming and design contract, matches targets.yaml where the targets file
is found, and runs on a small cohort."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from hccsim.simulator import cohort
from hccsim.simulator.catalogue import catalogue
from hccsim.simulator.scenario import load
from hccsim.simulator.studies.run import run

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "scenarios" / "calibration"
FILES = sorted(FOLDER.glob("*.yaml"))

#: Trial key of targets.yaml -> (control arm, allocation weight of each arm).
DESIGN = {
    "SHARP": ("placebo", {"placebo": 1, "sorafenib": 1}),
    "ASIA_PACIFIC": ("placebo", {"placebo": 1, "sorafenib": 2}),
    "REFLECT": ("sorafenib", {"sorafenib": 1, "lenvatinib": 1}),
    "RESORCE": ("placebo", {"placebo": 1, "regorafenib": 2}),
    "CELESTIAL": ("placebo", {"placebo": 1, "cabozantinib": 2}),
    "IMBRAVE150": ("sorafenib", {"sorafenib": 1, "atezolizumab_bevacizumab": 2}),
    "HIMALAYA": (
        "sorafenib",
        {"sorafenib": 1, "durvalumab_tremelimumab": 1, "durvalumab": 1},
    ),
    "KEYNOTE240": ("placebo", {"placebo": 1, "pembrolizumab": 2}),
    "CHECKMATE459": ("sorafenib", {"sorafenib": 1, "nivolumab": 1}),
}
#: Published enrolment periods in months (the files' headers give the dates).
ENROLMENT_MONTHS = {
    "anchor_study": 21.5,
    "SHARP": 13.0,
    "ASIA_PACIFIC": 16.4,
    "REFLECT": 28.9,
    "RESORCE": 31.6,
    "CELESTIAL": 43.0,
    "IMBRAVE150": 10.5,
    "HIMALAYA": 19.7,
    "KEYNOTE240": 17.8,
    "CHECKMATE459": 16.4,
}
STUDIES = ["anchor_study", *DESIGN]


def stem(study: str) -> str:
    return "anchor_study" if study == "anchor_study" else study.lower()


def path_of(study: str) -> Path:
    return FOLDER / f"{stem(study)}.yaml"


def targets_path() -> Path | None:
    """The repository's copy, else $HCCSIM_TARGETS, else ../shared/calibration/targets.yaml."""
    env = os.environ.get("HCCSIM_TARGETS")
    for candidate in (
        ROOT / "calibration" / "targets.yaml",
        Path(env) if env else None,
        ROOT.parent / "shared" / "calibration" / "targets.yaml",
    ):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def targets() -> dict:
    path = targets_path()
    if path is None:
        pytest.skip(
            "targets.yaml not found (calibration/, $HCCSIM_TARGETS, ../shared/calibration/)"
        )
    return yaml.safe_load(path.read_text("utf-8"))


#: The paragraphs a header may hold, each starting a comment line as ``Key: ...``.
HEADER_KEYS = (
    "Question",
    "Run",
    "Sources",
    "Targets served",
    "Endpoints",
    "Design",
    "Accrual",
    "Data cut",
    "Observation",
    "Later lines",
    "Not expressible",
)


def header(path: Path) -> dict[str, str]:
    """The paragraphs of a file's comment header, by their leading ``Key:``."""
    out: dict[str, str] = {}
    key = None
    for line in path.read_text("utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        for name in HEADER_KEYS:
            if text.startswith(f"{name}:"):
                key, text = name, text[len(name) + 1 :].strip()
        if key:
            out[key] = (out.get(key, "") + " " + text).strip()
    return out


def keys_anywhere(node) -> set[str]:
    if isinstance(node, dict):
        return set(node) | set().union(*(keys_anywhere(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(keys_anywhere(v) for v in node))
    return set()


def enrolment_months(sc) -> float:
    """Expected time for ``cohort.size`` patients to enrol: rate r after a linear ramp over R
    months enrols r (T - R/2) patients by T >= R."""
    rate = sc.cohort.accrual_per_month
    ramp = sc.cohort.accrual_ramp_up_months or 0.0
    n = sc.cohort.size
    if n <= rate * ramp / 2:  # within the ramp: r t^2 / (2R)
        return (2 * ramp * n / rate) ** 0.5
    return n / rate + ramp / 2


# -- the folder and the contract every file follows -----------------------------------------------
def test_one_file_per_study_and_a_readme():
    assert {p.stem for p in FILES} == {stem(s) for s in STUDIES}
    readme = (FOLDER / "README.md").read_text("utf-8")
    for p in FILES:
        assert f"`{p.name}`" in readme, f"README.md lacks a row for {p.name}"


def test_one_file_per_entry_of_targets(targets):
    assert set(targets["trials"]) == set(DESIGN)
    assert {p.stem for p in FILES} == {"anchor_study"} | {t.lower() for t in targets["trials"]}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_file_validates_and_follows_the_contract(path):
    sc = load(path)
    assert sc.name == "calibration-" + path.stem.replace("_", "-")
    assert sc.seed is not None and sc.replicates == 1
    assert sc.parameters == {}
    raw = yaml.safe_load(path.read_text("utf-8"))
    assert "parameters" not in raw
    assert "death_hazard_ratio" not in keys_anywhere(raw)
    assert all(a.death_hazard_ratio == 1.0 for a in sc.treatment.arm_list)
    # accrual over the enrolment period, all enrolled by the cut, follow-up covering the cut
    cut = sc.analysis.data_cut_months
    assert sc.cohort.accrual_per_month is not None and cut is not None
    assert sc.analysis.data_cut_events is None
    assert sc.observation.max_follow_up_months >= cut
    assert enrolment_months(sc) < cut
    h = header(path)
    assert {"Question", "Run", "Sources", "Targets served", "Endpoints", "Later lines"} <= set(h)
    args = shlex.split(h["Run"])
    assert args[:2] == ["hccsim", "run"] and Path(args[2]) == path.relative_to(ROOT)
    assert "not fitted" in h["Later lines"]


@pytest.mark.parametrize("study", STUDIES)
def test_enrolment_lasts_as_long_as_published(study):
    sc = load(path_of(study))
    assert enrolment_months(sc) == pytest.approx(ENROLMENT_MONTHS[study], abs=0.15)


@pytest.mark.parametrize("study", STUDIES)
def test_later_regimens_are_reachable_under_the_labels(study):
    """A later regimen whose label needs a prior drug follows that drug in the sequence or in
    some prior-line stream of the preset; otherwise label restrictions would always skip it."""
    sc = load(path_of(study))
    preset = cohort.presets()[sc.population.preset]
    streams = [set(s.prior) for s in preset.prior_lines.streams] if preset.prior_lines else [set()]
    drugs = catalogue()
    for arm in sc.treatment.arm_list:
        for i, name in enumerate(arm.sequence[1:], start=1):
            before = set(arm.sequence[:i])
            needs = set(drugs[name].restrictions.requires_prior)
            assert any(needs <= before | s for s in streams), f"{arm.name}: {name} needs {needs}"


# -- against targets.yaml -------------------------------------------------------------------------
@pytest.mark.parametrize("trial", list(DESIGN))
def test_trial_design_matches_targets(trial, targets):
    t = targets["trials"][trial]
    sc = load(path_of(trial))
    control, allocation = DESIGN[trial]
    arms = sc.treatment.arms
    assert arms is not None and sc.treatment.sequence is None
    assert arms[0].name == control
    assert {a.name for a in arms} == set(t["arms"])
    assert {a.name: a.allocation for a in arms} == allocation
    for a in arms:
        assert a.sequence[0] == a.name  # placebo arms: the catalogue's placebo
        assert a.name in catalogue()
    assert sc.cohort.size == sum(int(arm["n"]) for arm in t["arms"].values())
    assert sc.observation.imaging_weeks == t["setting"]["imaging_weeks"]
    assert sc.population.preset == trial.lower()
    assert sc.cohort.entry == "index_line"


def test_anchor_study_matches_targets(targets):
    a = targets["anchor_study"]
    sc = load(path_of("anchor_study"))
    assert sc.treatment.arms is None and sc.treatment.sequence[0] == "ramucirumab"
    assert sc.population.preset == "anchor_ramucirumab"
    assert sc.cohort.size == a["n"] == 37
    obs = sc.observation
    assert obs.imaging_weeks == 6 and 0 < obs.imaging_window_days < 21
    assert obs.lab_weeks == 2 and obs.labs_off_treatment is False
    assert 27.0 <= sc.analysis.data_cut_months <= 28.0  # June 2019 to the end of September 2021
    assert (
        sc.treatment.sequence
        == load(ROOT / "scenarios" / "anchor_ramucirumab.yaml").treatment.sequence
    )


#: Emulations whose responses are read with confirmation: RECIST 1.0 always confirms (SHARP,
#: Asia-Pacific); IMbrave150 published confirmed responses. The others keep the default.
CONFIRMED = {"sharp", "asia_pacific", "imbrave150"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_best_response_is_read_as_the_study_did(path):
    """Confirmation where the study confirmed; SD from any scan only in the anchor study's
    chart review (and in the user-facing anchor scenario, which must read it the same way);
    from the 6-week visit less its 7-day window in RESORCE, whose disease-control target
    counts SD at that visit; from 6 weeks elsewhere."""
    rule = load(path).response_rule
    assert rule.confirm == (path.stem in CONFIRMED)
    expected = {"anchor_study": 0.0, "resorce": 35.0}.get(path.stem, 42.0)
    assert rule.sd_min_days == expected
    if path.stem == "anchor_study":
        assert load(ROOT / "scenarios" / "anchor_ramucirumab.yaml").response_rule == rule


# -- every file runs ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_runs_on_a_small_cohort(path, tmp_path):
    sc = load(path)
    small = sc.model_copy(update={"cohort": sc.cohort.model_copy(update={"size": 12})})
    result = run(small, tmp_path / "run", replicates=1)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["n"] == 12 and summary["replicates"] == 1
    assert summary["scenario"] == sc.name and summary["seed"] == sc.seed == result.seed
    parts = sorted((tmp_path / "run" / "cohort" / "patients").glob("*.parquet"))
    assert len(parts) == 1
    patients = pq.read_table(parts[0]).to_pydict()
    assert len(patients["patient_id"]) == 12
    if sc.treatment.arms:
        assert set(patients["arm"]) <= {a.name for a in sc.treatment.arms}
