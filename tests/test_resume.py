"""Failures and ``--resume``: deterministic fault injection (HCCSIM_FAULT), then resume, then
byte-for-byte comparison with an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hccsim.analysis.schema import TABLE_NAMES
from tests.helpers import hccsim, parquet_files

SCENARIO = """\
name: resume-check
description: Small run for the failure and resume tests.
seed: 90210
replicates: 4
population: {preset: anchor_ramucirumab}
cohort: {size: 40, batch_size: 15}
treatment: {sequence: [ramucirumab, regorafenib]}
observation: {max_follow_up_months: 24}
"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("resume") / "resume.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module")
def reference(scenario, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    res = hccsim("run", str(scenario), "--out", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    return out


def _same_as_reference(out: Path, reference: Path) -> None:
    assert parquet_files(out) == parquet_files(reference)
    a = json.loads((out / "summary.json").read_text())
    b = json.loads((reference / "summary.json").read_text())
    assert a == b


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_failed_task_then_resume_gives_the_uninterrupted_result(
    scenario, reference, tmp_path, jobs
):
    out = tmp_path / "run"
    res = hccsim(
        "run", str(scenario), "--out", str(out), "--quiet", "--jobs", jobs, fault="simulate:2"
    )
    assert res.returncode == 1
    assert "replicate(s) 2 failed" in res.stderr
    assert "injected fault while simulating replicate 2" in res.stderr
    assert "--resume" in res.stderr and "Traceback" not in res.stderr
    assert "InjectedFault" in (out / "error.log").read_text()  # the details are kept
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["done"]) == ["0", "1", "3"]  # the others were finished and kept
    assert not (out / "summary.json").exists()  # no summary of an incomplete run
    assert not list(out.rglob("*.tmp"))  # the failed replicate's temporaries were removed
    assert not (out / "cohort" / "patients" / "part-00002.parquet").exists()
    res = hccsim("run", str(scenario), "--out", str(out), "--resume", "--jobs", jobs)
    assert res.returncode == 0, res.stderr
    assert "3 replicate(s) kept from before" in res.stdout
    _same_as_reference(out, reference)


@pytest.mark.parametrize("stage", ["write", "commit"])
def test_crash_never_leaves_a_part_that_resume_trusts(scenario, reference, tmp_path, stage):
    """The client process dies half-way through writing (``write``) or renaming (``commit``)
    replicate 1: what is on disk for it is never trusted, and resume redoes it."""
    out = tmp_path / "run"
    res = hccsim("run", str(scenario), "--out", str(out), "--quiet", fault=f"{stage}:1")
    assert res.returncode == 70  # the injected crash's exit status
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["done"]) == ["0"]
    if stage == "write":
        assert list(out.rglob(".part-00001.parquet.tmp"))
    else:  # three of six parts renamed into place, not yet in the manifest
        assert (out / "cohort" / TABLE_NAMES[0] / "part-00001.parquet").exists()
    res = hccsim("run", str(scenario), "--out", str(out), "--resume", "--quiet")
    assert res.returncode == 0, res.stderr
    assert not list(out.rglob("*.tmp"))
    _same_as_reference(out, reference)


def test_resume_can_add_replicates(scenario, tmp_path):
    out, full = tmp_path / "grow", tmp_path / "full"
    assert (
        hccsim("run", str(scenario), "--out", str(out), "--quiet", "--replicates", "2").returncode
        == 0
    )
    res = hccsim(
        "run", str(scenario), "--out", str(out), "--quiet", "--resume", "--replicates", "5"
    )
    assert res.returncode == 0, res.stderr
    assert (
        hccsim("run", str(scenario), "--out", str(full), "--quiet", "--replicates", "5").returncode
        == 0
    )
    _same_as_reference(out, full)


def test_resume_refuses_a_changed_scenario_seed_or_version(scenario, reference, tmp_path):
    changed = tmp_path / "changed.yaml"
    changed.write_text(SCENARIO.replace("max_follow_up_months: 24", "max_follow_up_months: 30"))
    res = hccsim("run", str(changed), "--out", str(reference), "--resume")
    assert res.returncode == 2
    assert "was made with a different run: the scenario (hash" in res.stderr
    res = hccsim("run", str(scenario), "--out", str(reference), "--resume", "--seed", "5")
    assert res.returncode == 2 and "the seed (90210 in the manifest, 5 now)" in res.stderr
    copy = tmp_path / "copy"
    copy.mkdir()
    manifest = json.loads((reference / "manifest.json").read_text())
    manifest["hccsim"] = "0.0.1"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    res = hccsim("run", str(scenario), "--out", str(copy), "--resume")
    assert res.returncode == 2 and "the hccsim version (0.0.1 in the manifest" in res.stderr
    res = hccsim("run", str(scenario), "--out", str(reference), "--resume", "--replicates", "2")
    assert res.returncode == 2 and "may keep or raise that number, not lower it" in res.stderr
    assert "Traceback" not in res.stderr


def test_resume_without_a_run_and_contradictory_flags(scenario, tmp_path):
    res = hccsim("run", str(scenario), "--out", str(tmp_path / "none"), "--resume")
    assert res.returncode == 2 and "there is no run to resume there" in res.stderr
    res = hccsim("run", str(scenario), "--out", str(tmp_path / "x"), "--resume", "--overwrite")
    assert res.returncode == 2 and "contradict each other" in res.stderr


def test_a_finished_run_resumes_to_itself(scenario, reference, tmp_path):
    before = parquet_files(reference)
    res = hccsim("run", str(scenario), "--out", str(reference), "--resume", "--quiet")
    assert res.returncode == 0, res.stderr
    assert parquet_files(reference) == before


SHORT = """\
name: not-reached
description: Twelve months of follow-up for 15 patients, so that some medians are not reached.
seed: 1
replicates: 3
population: {preset: anchor_ramucirumab}
cohort: {size: 15}
treatment: {sequence: [ramucirumab, best_supportive_care]}
observation: {imaging_weeks: 6, max_follow_up_months: 12, lab_weeks: 2}
"""


def test_medians_not_reached_survive_the_manifest_and_a_resume(tmp_path):
    """A replicate metric that is inf (a median not reached) or NaN (a hazard ratio with an
    empty group) is kept in the strict-JSON manifest as text and read back as a float by
    --resume, which then gives the summary of an uninterrupted run."""
    path = tmp_path / "short.yaml"
    path.write_text(SHORT)
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert hccsim("run", str(path), "--out", str(whole), "--quiet", "--no-report").returncode == 0
    done = json.loads((whole / "manifest.json").read_text())["done"]
    texts = {v for m in done.values() for v in m.values() if isinstance(v, str)}
    assert texts == {"inf", "nan"}  # both occur with this seed
    first = hccsim(
        "run", str(path), "--out", str(part), "--replicates", "2", "--quiet", "--no-report"
    )
    assert first.returncode == 0, first.stderr
    again = hccsim(
        "run",
        str(path),
        "--out",
        str(part),
        "--replicates",
        "3",
        "--resume",
        "--quiet",
        "--no-report",
    )
    assert again.returncode == 0, again.stderr
    assert (part / "summary.json").read_text() == (whole / "summary.json").read_text()


def test_a_part_damaged_since_the_run_is_refused_with_exit_2(scenario, reference, tmp_path):
    """A resumed folder whose parquet part was damaged after it was written: the report
    cannot read it; exit 2 with the part named and the way out (a traceback before)."""
    import shutil

    out = tmp_path / "damaged"
    shutil.copytree(reference, out)
    part = sorted((out / "cohort" / "patients").glob("part-*.parquet"))[0]
    part.write_bytes(b"junk")
    res = hccsim("run", str(scenario), "--out", str(out), "--resume", "--quiet")
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert f"patients/{part.name}: cannot be read as parquet" in res.stderr
    assert "start it again with --overwrite" in res.stderr
