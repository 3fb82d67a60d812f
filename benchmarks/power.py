"""Power-calculation speed: a two-arm trial at nested sample sizes 200, 250, 300, 350 and 400,
1,000 simulated trials, end to end (simulation, data cut, log-rank per size), on 1 and on 2
workers, and the parallel efficiency (time on 1 / time on 2).

The trial: the generic second-line population after sorafenib, placebo against cabozantinib
1:1, accrual 20 a month, analysis 24 months after the first patient, two-sided log-rank on OS.
Target (issue 9): at most 60 s end to end on 2 cores, parallel efficiency at least 1.7.

    python benchmarks/power.py [--replicates 1000] [--skip-serial]

``--skip-serial`` times only the 2-worker run (the serial time is then estimated from the
per-replicate time of a 2-replicate-chunk serial sample and marked as such).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from hccsim.simulator import __version__
from hccsim.simulator.scenario import loads
from hccsim.simulator.studies import power as power_mod
from hccsim.simulator.studies.run import library_versions

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from engine import insert_row, machine  # noqa: E402

SCENARIO = """
name: power-benchmark
description: Two-arm second-line trial for the power benchmark.
seed: 99
population: {{preset: second_line_post_sorafenib}}
cohort: {{size: 400, accrual_per_month: 20}}
treatment:
  arms:
    - {{name: placebo, sequence: [placebo, best_supportive_care]}}
    - {{name: cabozantinib, sequence: [cabozantinib, best_supportive_care]}}
observation: {{imaging_weeks: 8, lab_weeks: 4, max_follow_up_months: 24}}
analysis: {{data_cut_months: 24}}
power:
  endpoint: os
  test: logrank
  sample_sizes: [200, 250, 300, 350, 400]
  replicates: {replicates}
"""


def _time(sc, jobs: int) -> float:
    t0 = time.perf_counter()
    power_mod.simulate_power(sc, sc.seed, jobs=jobs)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--skip-serial", action="store_true")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    sc = loads(SCENARIO.format(replicates=args.replicates))
    two = _time(sc, 2)
    if args.skip_serial:
        sample = loads(SCENARIO.format(replicates=20))
        one = _time(sample, 1) * args.replicates / 20
        how = "serial estimated from 20 replicates"
    else:
        one = _time(sc, 1)
        how = "both timed"
    efficiency = one / two
    histories = args.replicates * 400
    print(f"power benchmark: {args.replicates} trials x sizes 200-400 (nested), 400 patients each")
    print(f"  2 workers: {two:.1f} s   1 worker: {one:.1f} s ({how})   efficiency {efficiency:.2f}")
    print(f"  {histories / two:,.0f} histories/s on 2 workers")
    if not args.no_record:
        libs = library_versions()
        line = (
            f"| {datetime.now(UTC).strftime('%Y-%m-%d')} | {__version__} | {args.replicates} | "
            f"{two:.1f} | {one:.1f} | {efficiency:.2f} | {histories / two:,.0f} | {machine()} | "
            f"Python {libs['python']}, numpy {libs['numpy']}, joblib {libs.get('joblib', '?')} "
            f"| {how}. {args.note} |\n"
        )
        results = HERE / "results.md"
        text = results.read_text()
        if "2-worker seconds" not in text:
            text += (
                "\n## Power calculation (`benchmarks/power.py`)\n\n"
                "Two-arm trial, nested sizes 200-400, log-rank on OS. Target (issue 9): at most "
                "60 s end to end on 2 cores, parallel efficiency at least 1.7.\n\n"
                "| date | hccsim | trials | 2-worker seconds | 1-worker seconds | efficiency | "
                "histories/s | machine | versions | note |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n"
            )
        results.write_text(insert_row(text, line, "2-worker seconds"))
        print(f"  recorded in {results.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
