"""The shipped scenario library: every file is headed by its question, its command and its
sources, validates, and its command runs (with few replicates) and writes its outputs."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hccsim.simulator.scenario import load

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))

#: What each command must write, and the options that keep the test quick.
OUTPUTS = {
    "run": ("summary.json", "report.html", "provenance.json", "scenario.resolved.yaml"),
    "compare": ("compare.json", "compare.csv", "report.html", "figures/km_os.png"),
    "power": ("power.json", "power.csv", "report.html", "figures/power_curve.png"),
    "sweep": ("sweep.json", "sweep.csv", "report.html", "figures/sweep.png"),
}


def header(path: Path) -> dict[str, str]:
    """The ``# Question:``, ``# Run:`` and ``# Sources:`` paragraphs of a file's header."""
    out: dict[str, str] = {}
    key = None
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        for name in ("Question", "Run", "Sources"):
            if text.startswith(f"{name}:"):
                key, text = name, text[len(name) + 1 :].strip()
        if key:
            out[key] = (out.get(key, "") + " " + text).strip()
    return out


def quick(args: list[str], path: Path) -> list[str]:
    """The header's command with few replicates (and small sizes for power)."""
    command = args[0]
    args = [a for a in args if a not in ("--jobs", "2")] + ["--jobs", "2", "--quiet"]
    sc = load(path)
    if command == "power":
        sizes = sc.power.sample_sizes[:2]
        return [*args, "--replicates", "10", "--sample-sizes", ",".join(map(str, sizes))]
    if command == "sweep" and sc.power is not None:
        return [*args, "--replicates", "10"]
    return [*args, "--replicates", "2"]


def test_the_library_is_complete():
    names = {p.stem for p in SCENARIOS}
    assert {
        "anchor_ramucirumab",
        "compare_after_lenvatinib",
        "phase2_ramucirumab_after_atezo_bev",
        "trial_ramucirumab_vs_cabozantinib_after_atezo_bev",
        "sweep_imaging_interval",
        "sweep_recist_vs_mrecist",
        "power_second_line_afp400",
    } <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_header_states_question_command_and_sources(path):
    h = header(path)
    assert set(h) == {"Question", "Run", "Sources"}, f"{path.name}: header has {sorted(h)}"
    assert h["Question"].endswith("?") or "?" in h["Question"], path.name
    args = shlex.split(h["Run"])
    assert args[0] == "hccsim" and args[1] in OUTPUTS, h["Run"]
    assert Path(args[2]) == Path("scenarios") / path.name, h["Run"]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_runs_and_writes_its_outputs(path, tmp_path):
    load(path)  # validates, or raises with every problem
    args = shlex.split(header(path)["Run"])[1:]
    args[1] = str(path)
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "hccsim.simulator", *quick(args, path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    for name in OUTPUTS[args[0]]:
        assert (out / name).is_file(), f"{path.name}: {name} missing"
    sc = load(path)
    if args[0] == "sweep" and "power.endpoint" in sc.sweep.grid:
        data = json.loads((out / "sweep.json").read_text())
        assert data["endpoint"] == "swept"
        assert {pt["point"]["power.endpoint"] for pt in data["points"]} == set(
            sc.sweep.grid["power.endpoint"]
        )
