"""Engine throughput: patient histories per second per core, and events per patient.

Simulates 10,000 patients of a named scenario in one process (one core), in the scenario's
batches, exactly as a run's worker does (tables built, not written), and reports:

- histories per second per core (best of ``--repeats`` timed runs, after one warm-up batch);
- events per patient: decisions the engine scheduled (scans, adverse-event onsets and
  resolutions, line starts, death or the horizon), counted from the tables;
- rows per patient of each table.

The result is appended to ``benchmarks/results.md`` with the machine, versions and date.
Targets (issue 2): at least 5,000 histories per second per core for the full model; 10,000 is
the stretch goal. This is a benchmark, not a test: nothing fails if the target is missed.

    python benchmarks/engine.py [--scenario anchor_ramucirumab] [--patients 10000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from hccsim.simulator import __version__
from hccsim.simulator import scenario as scenario_mod
from hccsim.simulator.studies.run import batches, build_spec, library_versions, simulate_task

HERE = Path(__file__).resolve().parent


def _scenario(name: str) -> scenario_mod.Scenario:
    path = Path(name)
    if not path.exists():
        path = HERE.parent / "scenarios" / f"{name}.yaml"
    return scenario_mod.load(path)


def _events(tables) -> int:
    """Engine decisions: scans after a line's baseline, AE actions (onset, and resumption after
    a hold), line starts and the end of each history (death or horizon)."""
    a = tables["assessments"]
    ae = tables["adverse_events"]
    action = ae["action"]
    return int(
        (~a["baseline"]).sum()
        + (action != "none").sum()
        + (action == "dose_held").sum()
        + len(tables["lines"]["line"])
        + len(tables["patients"]["patient_id"])
    )


def measure(sc: scenario_mod.Scenario, patients: int, repeats: int, seed: int = 12345):
    sc = sc.model_copy(update={"cohort": sc.cohort.model_copy(update={"size": patients})})
    spec = build_spec(sc, seed)
    cuts = batches(patients, sc.cohort.batch_size)
    simulate_task(spec, 99, 0, min(200, patients))  # warm-up: imports, caches
    best = float("inf")
    tables = None
    for rep in range(repeats):
        t0 = time.perf_counter()
        parts = [simulate_task(spec, rep, a, b) for a, b in cuts]
        best = min(best, time.perf_counter() - t0)
        tables = parts
    rows = {name: sum(len(p[name]["patient_id"]) for p in tables) / patients for name in tables[0]}
    events = sum(_events(p) for p in tables) / patients
    return patients / best, events, rows, best


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="anchor_ramucirumab")
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one run instead")
    ap.add_argument("--no-record", action="store_true", help="do not append to results.md")
    ap.add_argument("--note", default="", help="a note for the results table")
    args = ap.parse_args(argv)
    sc = _scenario(args.scenario)
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        measure(sc, args.patients, 1)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return 0
    rate, events, rows, seconds = measure(sc, args.patients, args.repeats)
    libs = library_versions()
    print(
        f"scenario {sc.name}: {args.patients} patients in {seconds:.2f} s (best of {args.repeats})"
    )
    print(f"  histories per second per core: {rate:,.0f}")
    print(f"  events per patient:            {events:.1f}")
    print("  rows per patient:              " + ", ".join(f"{k} {v:.1f}" for k, v in rows.items()))
    if not args.no_record:
        line = (
            f"| {datetime.now(UTC).strftime('%Y-%m-%d')} | {__version__} | {sc.name} | {args.patients} "
            f"| {rate:,.0f} | {events:.1f} | {machine()} | Python {libs['python']}, numpy {libs['numpy']}, "
            f"simpy {libs['simpy']} | {args.note} |\n"
        )
        results = HERE / "results.md"
        if not results.exists():
            results.write_text(
                "# Engine benchmark results\n\nAppended by `python benchmarks/engine.py` "
                "(`make bench`). Target: 5,000 histories per second per core (stretch 10,000).\n\n"
                "| date | hccsim | scenario | patients | histories/s/core | events/patient "
                "| machine | versions | note |\n|---|---|---|---|---|---|---|---|---|\n"
            )
        results.write_text(insert_row(results.read_text(), line))
        print(f"  recorded in {results.relative_to(HERE.parent)}")
    return 0


def insert_row(text: str, line: str, column: str = "histories/s/core") -> str:
    """``text`` with ``line`` added after the last row of the first table whose header names
    ``column`` (by default the engine table); other sections of the file stay where they are."""
    lines = text.splitlines(keepends=True)
    header = next((i for i, s in enumerate(lines) if s.startswith("|") and column in s), None)
    if header is None:
        return text + line
    end = header + 1
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join([*lines[:end], line, *lines[end:]])


if __name__ == "__main__":
    sys.exit(main())
