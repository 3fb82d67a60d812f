"""Per-replicate summary speed: milliseconds per ``summarise_replicate`` call.

Simulates ``--replicates`` replicates of ``--patients`` patients of a scenario (default: the
anchor scenario at 400 patients, 20 replicates), then times the headline metrics of each
(``hccsim.analysis.summary.summarise_replicate``: every metric of summary.json, numpy only) and,
for comparison, the same Kaplan-Meier medians alone by lifelines. Reports the median over
replicates of the best of ``--repeats`` timings, split into the per-patient results
(``patient_endpoints``) and the metrics from them (``metrics_from_endpoints``), and records a row
in ``benchmarks/results.md``. Target (issue 7): a few milliseconds for 400 patients.

    python benchmarks/summary.py [--scenario anchor_ramucirumab] [--patients 400] [--replicates 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from hccsim.analysis.endpoints import overall_survival, progression_free_survival
from hccsim.analysis.summary import metrics_from_endpoints, patient_endpoints
from hccsim.simulator import __version__
from hccsim.simulator.records import concat
from hccsim.simulator.studies.run import batches, build_spec, library_versions, simulate_task

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from engine import _scenario, insert_row, machine  # noqa: E402


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="anchor_ramucirumab")
    ap.add_argument("--patients", type=int, default=400)
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-record", action="store_true", help="do not write to results.md")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    sc = _scenario(args.scenario)
    sc = sc.model_copy(update={"cohort": sc.cohort.model_copy(update={"size": args.patients})})
    spec = build_spec(sc, 2024)
    interval = sc.imaging_interval_days
    rule = sc.response_rule  # as hccsim run reads best response for this scenario
    reps = [
        concat([simulate_task(spec, r, a, b) for a, b in batches(args.patients, 1000)])
        for r in range(args.replicates)
    ]
    from lifelines import KaplanMeierFitter  # the reference, timed for comparison only

    def lifelines_medians(t):
        return [
            KaplanMeierFitter().fit(e.durations, e.events).median_survival_time_
            for e in (
                overall_survival(t),
                progression_free_survival(t, "recist1.1", scan_interval_days=interval),
                progression_free_survival(t, "mrecist", scan_interval_days=interval),
            )
        ]

    per, met, tot, ref = [], [], [], []
    for t in reps:
        ends = patient_endpoints(t, scan_interval_days=interval, response_rule=rule)
        per.append(
            _best(
                lambda t=t: patient_endpoints(t, scan_interval_days=interval, response_rule=rule),
                args.repeats,
            )
        )
        met.append(_best(lambda e=ends: metrics_from_endpoints(e), args.repeats))
        tot.append(per[-1] + met[-1])
        ref.append(_best(lambda t=t: lifelines_medians(t), args.repeats))
    ms = {
        k: 1e3 * float(np.median(v))
        for k, v in (("per", per), ("met", met), ("tot", tot), ("ref", ref))
    }
    n_metrics = len(
        metrics_from_endpoints(
            patient_endpoints(reps[0], scan_interval_days=interval, response_rule=rule)
        )
    )
    print(f"scenario {sc.name}: {args.patients} patients, {args.replicates} replicates")
    print(f"  summarise_replicate: {ms['tot']:.2f} ms per replicate ({n_metrics} metrics)")
    print(f"    patient_endpoints {ms['per']:.2f} ms, metrics_from_endpoints {ms['met']:.2f} ms")
    print(f"  lifelines KM medians of OS and both PFS alone: {ms['ref']:.2f} ms")
    if not args.no_record:
        libs = library_versions()
        line = (
            f"| {datetime.now(UTC).strftime('%Y-%m-%d')} | {__version__} | {sc.name} | "
            f"{args.patients} | {n_metrics} | {ms['tot']:.1f} | {ms['per']:.1f} | {ms['met']:.1f} | "
            f"{ms['ref']:.1f} | {machine()} | Python {libs['python']}, numpy {libs['numpy']}, "
            f"lifelines {libs.get('lifelines', '?')} | {args.note} |\n"
        )
        results = HERE / "results.md"
        text = results.read_text()
        if "ms/replicate" not in text:
            text += (
                "\n## Per-replicate summary (`benchmarks/summary.py`)\n\n"
                "Target (issue 7): a few milliseconds per replicate of 400 patients, numpy only. "
                "Median over replicates of the best of 5 timings; the lifelines column times "
                "only the three Kaplan-Meier medians by lifelines, for comparison.\n\n"
                "| date | hccsim | scenario | patients | metrics | ms/replicate | "
                "per-patient ms | metrics ms | lifelines 3 KM medians ms | machine | versions | note |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
            )
        results.write_text(insert_row(text, line, "ms/replicate"))
        print(f"  recorded in {results.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
