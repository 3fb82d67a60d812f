"""``hccsim run`` end to end: the run folder, identical tables for any number of workers,
re-running the resolved scenario, and clear errors (exit 2, no traceback) for bad input.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hccsim.analysis import schema
from hccsim.simulator.cli import main
from tests.helpers import hccsim

ROOT = Path(__file__).resolve().parents[1]

SMALL = """\
name: small-run
description: A small run for the tests.
seed: 4242
replicates: 3
population: {preset: anchor_ramucirumab}
cohort: {size: 60, batch_size: 25}
treatment: {sequence: [ramucirumab, regorafenib, cabozantinib]}
observation: {imaging_weeks: 6, max_follow_up_months: 24}
"""


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sc") / "small.yaml"
    path.write_text(SMALL)
    return path


@pytest.fixture(scope="module")
def runs(scenario_file, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("runs")
    folders = {}
    for jobs in ("1", "2"):
        folder = out / f"jobs{jobs}"
        res = hccsim("run", str(scenario_file), "--jobs", jobs, "--out", str(folder), "--quiet")
        assert res.returncode == 0, res.stderr
        assert res.stdout == "" and res.stderr == ""  # --quiet: nothing on the terminal
        folders[jobs] = folder
    return folders


def test_run_folder_has_every_file(runs):
    folder = runs["1"]
    for name in ("scenario.resolved.yaml", "provenance.json", "manifest.json", "summary.json"):
        assert (folder / name).is_file(), name
    for table in schema.TABLE_NAMES:
        parts = sorted((folder / "cohort" / table).glob("part-*.parquet"))
        assert [p.name for p in parts] == [f"part-{r:05d}.parquet" for r in range(3)]
    assert not list(folder.rglob("*.tmp"))
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["seed"] == 4242 and len(prov["scenario_hash"]) == 64
    assert {"numpy", "simpy", "pyarrow"} <= set(prov["libraries"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(manifest["done"]) == ["0", "1", "2"]
    assert manifest["scenario_hash"] == prov["scenario_hash"]
    summary = json.loads((folder / "summary.json").read_text())
    # The manifest keeps each replicate's metrics; the summary is their spread.
    medians = sorted(m["os_median_months"] for m in manifest["done"].values())
    assert summary["metrics"]["os_median_months"]["median"] == medians[1]


def test_summary_json_format(runs):
    summary = json.loads((runs["1"] / "summary.json").read_text())
    assert summary["scenario"] == "small-run"
    assert (summary["n"], summary["replicates"], summary["seed"]) == (60, 3, 4242)
    for name in ("os_median_months", "pfs_recist_median_months", "pfs_mrecist_median_months"):
        stats = summary["metrics"][name]
        assert set(stats) == {"mean", "median", "q025", "q975"}
        assert stats["q025"] <= stats["median"] <= stats["q975"]


def test_one_and_two_workers_write_identical_tables(runs):
    for table in schema.TABLE_NAMES:
        for r in range(3):
            name = f"cohort/{table}/part-{r:05d}.parquet"
            a, b = runs["1"] / name, runs["2"] / name
            assert pq.read_table(a).equals(pq.read_table(b)), name
            assert a.read_bytes() == b.read_bytes(), name


def test_parts_follow_the_contract(runs):
    tables = {
        t: pq.read_table(runs["1"] / "cohort" / t / "part-00001.parquet")
        for t in schema.TABLE_NAMES
    }
    schema.validate(tables)
    assert set(tables["patients"].column("replicate").to_pylist()) == {1}


def test_resolved_scenario_reruns_to_the_same_tables(runs, tmp_path):
    resolved = runs["1"] / "scenario.resolved.yaml"
    rerun = tmp_path / "rerun"
    assert main(["run", str(resolved), "--out", str(rerun), "--quiet"]) == 0
    for table in schema.TABLE_NAMES:
        for r in range(3):
            name = f"cohort/{table}/part-{r:05d}.parquet"
            assert (rerun / name).read_bytes() == (runs["1"] / name).read_bytes(), name
    assert (rerun / "scenario.resolved.yaml").read_text().split("\n", 1)[
        1
    ] == resolved.read_text().split("\n", 1)[1]


def test_seed_and_replicates_from_the_command_line(scenario_file, tmp_path):
    out = tmp_path / "o"
    assert (
        main(
            [
                "run",
                str(scenario_file),
                "--out",
                str(out),
                "--seed",
                "7",
                "--replicates",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["seed"], summary["replicates"]) == (7, 2)
    assert "seed: 7" in (out / "scenario.resolved.yaml").read_text()


def test_run_prints_where_results_are_and_headline_numbers(scenario_file, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", str(scenario_file), "--out", str(out), "--replicates", "1"]) == 0
    text = capsys.readouterr().out
    assert str(out) in text and "OS" in text and "PFS RECIST 1.1" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "no-such-file.yaml"], "no-such-file.yaml: no such file"),
        (
            ["run", "natural_histry"],
            "natural_histry: no such file, and not a shipped scenario; did you mean "
            "'natural_history'?",
        ),
        (
            ["run", "SCENARIO", "--replicates", "0"],
            "'0' is not allowed; expected a whole number from 1 to 100,000",
        ),
        (  # the scenario files' cap: a run beyond it wrote a resolved scenario that fails
            ["run", "SCENARIO", "--replicates", "100001"],
            "'100001' is not allowed; expected a whole number from 1 to 100,000",
        ),
        (["run", "SCENARIO", "--out", ""], "--out: an empty path"),
        (["run", "SCENARIO", "--seed", "-3"], "expected a whole number from 0 to"),
        (["run", "SCENARIO", "--jobs", "zero"], "expected a number of workers >= 1, or -1"),
        (  # tens of thousands of workers used to hang, exhausting the semaphores
            ["run", "SCENARIO", "--jobs", "100000"],
            "'100000' is not allowed; expected at most",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_command_lines_exit_2_with_a_message(args, message, scenario_file):
    args = [str(scenario_file) if a == "SCENARIO" else a for a in args]
    res = hccsim(*args)
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_existing_output_folder_is_not_overwritten_silently(scenario_file, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    res = hccsim("run", str(scenario_file), "--out", str(out), "--quiet")
    assert res.returncode == 2 and "exists and is not empty" in res.stderr
    res = hccsim("run", str(scenario_file), "--out", str(out), "--quiet", "--overwrite")
    assert res.returncode == 2 and "no provenance.json" in res.stderr
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "command",
    [
        ["run", "SCENARIO"],
        ["power", "power_second_line_afp400"],
        ["sweep", "sweep_imaging_interval"],
        ["compare", "compare_after_lenvatinib"],
        ["analyze", "EXAMPLE"],
    ],
    ids=lambda c: c[0],
)
def test_an_output_folder_that_cannot_be_made_is_refused_before_any_work(
    command, scenario_file, tmp_path
):
    """A path through a file: exit 2 with the folder named, before simulating (the sweep
    used to fail after every point had been simulated, the others with a traceback)."""
    from hccsim.analysis.io import example_cohort

    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    subs = {"SCENARIO": str(scenario_file), "EXAMPLE": str(example_cohort())}
    args = [subs.get(a, a) for a in command]
    for out, why in ((blocker / "sub", "cannot create the folder"), (blocker, "not a folder")):
        res = hccsim(*args, "--out", str(out), "--quiet")
        assert res.returncode == 2, (command, out, res.stderr)
        assert f"--out {out}: " in res.stderr and why in res.stderr, res.stderr
        assert "Traceback" not in res.stderr


CUT_NOTE = (
    "not reached in {k} of {n} replicates (the simulated follow-up, "
    "observation.max_follow_up_months 24, ended before it with patients alive); these are "
    "analysed with all their follow-up"
)


@pytest.mark.parametrize(
    ("analysis", "note"),
    [
        # everyone enters on day 0 and is followed for 24 months at most
        ("data_cut_months: 30", "analysis.data_cut_months: 30 " + CUT_NOTE.format(k=2, n=2)),
        ("data_cut_months: 20", None),  # reached: no note
        (
            "data_cut_events: 500",
            "analysis.data_cut_events: 500 is not applied by hccsim run (hccsim power applies "
            "it); every replicate is analysed with all its follow-up",
        ),
    ],
)
def test_a_data_cut_that_is_not_reached_gets_a_note(analysis, note, tmp_path, capsys):
    """The run goes on (status 0) with a note on stderr; it used to say nothing."""
    path = tmp_path / "cut.yaml"
    path.write_text(SMALL.replace("replicates: 3", "replicates: 2") + f"analysis: {{{analysis}}}\n")
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--quiet", "--no-report"]) == 0
    assert capsys.readouterr().err == (f"hccsim: note: {path}: {note}\n" if note else "")


def test_a_resumed_run_counts_the_replicates_kept_in_its_note(tmp_path, capsys):
    path = tmp_path / "cut.yaml"
    path.write_text(SMALL + "analysis: {data_cut_months: 30}\n")
    args = ["run", str(path), "--out", str(tmp_path / "o"), "--quiet", "--no-report"]
    assert main([*args, "--replicates", "1"]) == 0
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0  # replicate 0 kept, 1 and 2 simulated
    note = f"hccsim: note: {path}: analysis.data_cut_months: 30 " + CUT_NOTE.format(k=3, n=3)
    assert capsys.readouterr().err == note + "\n"


def test_the_scenarios_response_rule_reaches_summary_and_tables(tmp_path):
    """analysis.stable_disease_min_weeks and analysis.confirm_responses decide how hccsim run
    reads best response: the same simulated patients (same seed), read three ways, give the
    shares that ``best_responses`` gives on the run's own tables under each rule."""
    import numpy as np
    import pandas as pd

    from hccsim.analysis.io import read_cohort
    from hccsim.analysis.response import best_responses

    rules = {
        "default": "",
        "chart": "stable_disease_min_weeks: 0",
        "confirm": "confirm_responses: true",
    }
    kw = {"default": {}, "chart": {"sd_min_days": 0.0}, "confirm": {"confirm": True}}
    shares = {}
    for name, extra in rules.items():
        path = tmp_path / f"{name}.yaml"
        analysis = f"analysis: {{{extra}}}\n" if extra else ""
        path.write_text(SMALL.replace("replicates: 3", "replicates: 1") + analysis)
        out = tmp_path / name
        assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
        metrics = json.loads((out / "summary.json").read_text())["metrics"]
        tables = read_cohort(out / "cohort")
        bor = best_responses(tables, "recist1.1", **kw[name])
        for r in ("sd", "ne"):
            assert metrics[f"bor_recist_{r}"]["median"] == pytest.approx(
                np.mean(bor == r.upper())
            ), (name, r)
        assert metrics["orr_recist"]["median"] == pytest.approx(np.isin(bor, ("CR", "PR")).mean())
        table = pd.read_csv(out / "tables" / "best_response.csv")
        sd = table[(table.criterion == "RECIST 1.1") & (table.response == "SD")]["n"].iloc[0]
        assert sd == np.sum(bor == "SD"), name
        shares[name] = (np.mean(bor == "SD"), np.isin(bor, ("CR", "PR")).mean())
        mrecist = best_responses(tables, "mrecist", **kw[name])
        orr = np.isin(mrecist, ("CR", "PR")).mean()
        assert metrics["orr_mrecist"]["median"] == pytest.approx(orr), name
        shares[name] += (orr,)
    assert shares["chart"][0] > shares["default"][0]  # SD from any scan: more SD
    # this cohort has unconfirmed mRECIST responders, so confirmation must lower the ORR
    assert shares["confirm"][2] < shares["default"][2]


def test_shipped_scenarios_run_by_name(tmp_path):
    out = tmp_path / "o"
    assert (
        main(["run", "anchor_ramucirumab", "--out", str(out), "--replicates", "1", "--quiet"]) == 0
    )
    assert (out / "summary.json").exists()


def test_progress_bar_shows_patients_and_time_left(capsys, monkeypatch):
    from hccsim.simulator import cli

    clock = iter([100.0, 110.0, 130.0])  # start, then 10 s and 30 s later
    monkeypatch.setattr(cli.time, "monotonic", lambda: next(clock))
    show = cli._progress_bar(True)
    show(250_000, 1_000_000)
    show(1_000_000, 1_000_000)
    err = capsys.readouterr().err
    # A quarter done after 10 s: 30 s left, estimated from the rate so far.
    assert "patients 250,000/1,000,000" in err and " 25%" in err and "0:00:30 left" in err
    assert "100%" in err and err.endswith("\n")
    assert cli._progress_bar(False) is None


def test_output_into_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "hccsim.simulator", "list", "drugs"],  # less than a pipe buffer
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader goes away at once, as with `| head -0`
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err
