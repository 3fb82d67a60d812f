"""``hccsim analyze``: every table, figure and the report from the shipped example dataset and
from a run's ``cohort/`` folder; broken inputs exit 2 with a message that names the table, the
column and the rows, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hccsim.analysis.figures import FIGURE_NAMES
from hccsim.analysis.io import example_cohort
from hccsim.analysis.tables import TABLE_NAMES
from tests.helpers import hccsim

SCENARIO = """\
name: analyze-check
description: A small run whose cohort folder is analysed again.
seed: 4242
replicates: 3
population: {preset: anchor_ramucirumab}
cohort: {size: 37}
treatment: {sequence: [ramucirumab, regorafenib]}
observation: {imaging_weeks: 6, max_follow_up_months: 24, lab_weeks: 2}
"""


def _outputs_complete(out: Path) -> None:
    for name in TABLE_NAMES:
        assert (out / "tables" / f"{name}.csv").stat().st_size > 0, name
    for name in FIGURE_NAMES:
        assert (out / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
    html = (out / "report.html").read_text()
    assert html.count("<img ") == len(FIGURE_NAMES)
    assert html.count("<table>") >= len(TABLE_NAMES)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["os_median_months"]["median"] > 0


def test_the_example_dataset_gives_every_table_figure_and_the_report(tmp_path):
    out = tmp_path / "example"
    res = hccsim("analyze", "example", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "OS median, months:" in res.stdout and "95% CI" in res.stdout
    _outputs_complete(out)
    # Without --overwrite an analysis is not replaced.
    again = hccsim("analyze", str(example_cohort()), "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_a_runs_cohort_folder_gives_the_same_outputs(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    run = tmp_path / "run"
    res = hccsim("run", str(scenario), "--out", str(run), "--quiet")
    assert res.returncode == 0, res.stderr
    _outputs_complete(run)  # hccsim run writes the report itself
    out = tmp_path / "again"
    res = hccsim("analyze", str(run / "cohort"), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "3 replicate(s)" in res.stdout
    _outputs_complete(out)
    # Read from the run folder, the run's own summary (all replicates) is kept.
    assert (out / "summary.json").read_text() == (run / "summary.json").read_text()


def test_sd_min_weeks_sets_the_stable_disease_rule(tmp_path):
    """--sd-min-weeks reaches the best-response table (with 52 weeks almost no SD is left) and
    a value outside 0-52 exits 2 with the option's message."""
    import pandas as pd

    def count(response, *extra):
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        res = hccsim("analyze", "example", "--out", str(out), "--quiet", *extra)
        assert res.returncode == 0, res.stderr
        t = pd.read_csv(out / "tables" / "best_response.csv")
        return int(t[(t.criterion == "mRECIST") & (t.response == response)]["n"].iloc[0])

    assert count("SD") > count("SD", "--sd-min-weeks", "52")
    # confirmation: the example's mRECIST responders include unconfirmed ones
    assert count("ORR") > count("ORR", "--confirm-responses", "yes")
    assert count("ORR") == count("ORR", "--confirm-responses", "no")
    bad = hccsim("analyze", "example", "--out", str(tmp_path / "bad"), "--sd-min-weeks", "-1")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--sd-min-weeks: '-1' is not allowed; expected a number of weeks from 0 to 52" in (
        bad.stderr
    )


def test_a_run_folder_is_read_under_the_runs_response_rule(tmp_path):
    """hccsim analyze of a run folder takes the rule from scenario.resolved.yaml (the report
    states it); an option that changes it recomputes summary.json instead of keeping the
    run's, and the report's Methods say the rule used."""
    import numpy as np
    import pandas as pd

    from hccsim.analysis.io import read_cohort
    from hccsim.analysis.response import best_responses

    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO + "analysis: {stable_disease_min_weeks: 0}\n")
    run = tmp_path / "run"
    assert hccsim("run", str(scenario), "--out", str(run), "--quiet").returncode == 0
    cohort = read_cohort(run / "cohort")
    out = tmp_path / "again"
    res = hccsim("analyze", str(run), "--out", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    t = pd.read_csv(out / "tables" / "best_response.csv")
    sd = t[(t.criterion == "RECIST 1.1") & (t.response == "SD")]["n"].iloc[0]
    per_rep = [
        np.sum(best_responses(cohort, "recist1.1", sd_min_days=0.0)[rep == r] == "SD")
        for rep in [np.asarray(cohort["patients"]["replicate"])]
        for r in range(3)
    ]
    assert sd == pytest.approx(np.mean(per_rep))
    html = (out / "report.html").read_text()
    assert "SD at least 0 days after its start; no confirmation" in html
    assert "stable disease counts from any scan after day 0" in html
    assert "the run&#x27;s scenario" in html or "the run's scenario" in html
    assert (out / "summary.json").read_text() == (run / "summary.json").read_text()
    # --confirm-responses yes: summary.json recomputed under the new rule
    out2 = tmp_path / "confirmed"
    res = hccsim("analyze", str(run), "--out", str(out2), "--quiet", "--confirm-responses", "yes")
    assert res.returncode == 0, res.stderr
    ran = json.loads((run / "summary.json").read_text())["metrics"]
    new = json.loads((out2 / "summary.json").read_text())["metrics"]
    assert new["orr_mrecist"]["mean"] < ran["orr_mrecist"]["mean"]
    html2 = (out2 / "report.html").read_text()
    assert "CR/PR confirmed at least 28 days later" in html2
    assert "given: --confirm-responses" in html2


def _broken(tmp_path: Path, change) -> Path:
    folder = tmp_path / "cohort"
    shutil.copytree(example_cohort(), folder)
    change(folder)
    return folder


def _edit_csv(path: Path, column: str, row: int, value: str) -> None:
    """Set ``column`` of data row ``row`` (1-based), which is line ``row + 1`` of the file
    counting the header as line 1, the convention of hccsim's messages."""
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def _to_parquet(folder: Path, table: str, column: str, how: str) -> None:
    """Replace ``<table>.csv`` by ``<table>.parquet`` with ``column`` made durations,
    dates, or infinite in its third row."""
    import numpy as np
    import pandas as pd

    df = pd.read_csv(folder / f"{table}.csv")
    if how == "timedelta":
        df[column] = pd.to_timedelta(df[column].fillna(0), unit="D")
    elif how == "datetime":
        df[column] = pd.Timestamp("2019-03-01") + pd.to_timedelta(df[column].fillna(0), unit="D")
    else:
        df[column] = df[column].astype(float)
        df.loc[2, column] = np.inf
    df.to_parquet(folder / f"{table}.parquet")
    (folder / f"{table}.csv").unlink()


def _drop_column(path: Path, column: str) -> None:
    lines = [line.split(",") for line in path.read_text().splitlines()]
    k = lines[0].index(column)
    path.write_text("\n".join(",".join(c[:k] + c[k + 1 :]) for c in lines) + "\n")


@pytest.mark.parametrize(
    ("case", "change", "expected"),
    [
        (
            "missing column",
            lambda f: _drop_column(f / "patients.csv", "death"),
            ["patients", "death"],
        ),
        (
            "negative day",
            lambda f: _edit_csv(f / "patients.csv", "last_follow_up_day", 3, "-5"),
            ["patients", "last_follow_up_day", "line 4"],
        ),
        (
            "text in a numeric column",
            lambda f: _edit_csv(f / "labs.csv", "albumin_g_dl", 2, "abc"),
            ["labs", "albumin_g_dl", "line 3", "'abc'"],
        ),
        (
            "missing table",
            lambda f: (f / "lines.csv").unlink(),
            ["lines"],
        ),
        (  # accepted before (lines were checked, adverse events not)
            "adverse event ending before its onset",
            lambda f: _edit_csv(f / "adverse_events.csv", "end_day", 2, "1"),
            ["adverse_events", "end_day", "before onset_day"],
        ),
        (  # numpy counts durations as integers: nanoseconds were read as days, exit 0
            "durations in parquet",
            lambda f: _to_parquet(f, "patients", "last_follow_up_day", "timedelta"),
            ["patients.parquet", "last_follow_up_day", "holds durations", "timedelta64"],
        ),
        (
            "dates in parquet",
            lambda f: _to_parquet(f, "patients", "entry_day", "datetime"),
            ["patients.parquet", "entry_day", "holds dates/times", "datetime64"],
        ),
        (  # an infinite day used to end in an OverflowError traceback while writing the message
            "infinite day in parquet",
            lambda f: _to_parquet(f, "patients", "last_follow_up_day", "inf"),
            ["patients.parquet", "last_follow_up_day", "inf"],
        ),
        (
            "empty folder",
            lambda f: [p.unlink() for p in f.iterdir()],
            ["patients"],
        ),
    ],
)
def test_broken_inputs_get_their_message_and_exit_2(tmp_path, case, change, expected):
    folder = _broken(tmp_path, change)
    res = hccsim("analyze", str(folder), "--out", str(tmp_path / "out"))
    assert res.returncode == 2, (case, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    first = res.stderr.strip().splitlines()[0]
    assert first.startswith(f"hccsim: {folder}"), first
    for word in expected:
        assert word in res.stderr, (case, word, res.stderr)
    assert not (tmp_path / "out" / "report.html").exists()


def test_a_folder_that_does_not_exist_exits_2(tmp_path):
    res = hccsim("analyze", str(tmp_path / "nowhere"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "nowhere" in res.stderr
