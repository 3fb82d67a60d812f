"""Scale: a cohort of 1,000,000 patients streamed to parquet, with its peak memory.

Runs ``hccsim run`` on a named scenario resized to ``--patients`` (one replicate) in a child
process and samples the resident memory of the whole process tree (the client and its worker
processes) every 0.2 s with psutil. Reports wall time, histories per second, the peak memory of
the client alone and of the whole tree, and the size of the parts; appends the result to
``benchmarks/results.md``. Target (issue 3): peak memory under 2 GB for 1,000,000 patients.

    python benchmarks/scale.py [--patients 1000000] [--jobs 2] [--scenario anchor_ramucirumab]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine import machine  # noqa: E402

from hccsim.simulator import __version__  # noqa: E402
from hccsim.simulator.studies.run import library_versions  # noqa: E402


def _tree_rss(proc: psutil.Process) -> tuple[int, int]:
    try:
        own = proc.memory_info().rss
        kids = sum(c.memory_info().rss for c in proc.children(recursive=True))
    except psutil.Error:
        return 0, 0
    return own, own + kids


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="anchor_ramucirumab")
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)

    src = HERE.parent / "scenarios" / f"{args.scenario}.yaml"
    data = yaml.safe_load(src.read_text())
    data["cohort"]["size"] = args.patients
    data["replicates"] = 1
    data["name"] = f"{data['name']}-scale"
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "scale.yaml"
        scenario.write_text(yaml.safe_dump(data, sort_keys=False))
        out = Path(tmp) / "run"
        cmd = [
            sys.executable,
            "-m",
            "hccsim.simulator",
            "run",
            str(scenario),
            "--out",
            str(out),
            "--jobs",
            str(args.jobs),
            "--quiet",
        ]
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd)
        proc = psutil.Process(child.pid)
        peak_client = peak_tree = 0
        while child.poll() is None:
            own, tree = _tree_rss(proc)
            peak_client, peak_tree = max(peak_client, own), max(peak_tree, tree)
            time.sleep(0.2)
        seconds = time.perf_counter() - t0
        if child.returncode != 0:
            print(f"hccsim run failed with status {child.returncode}", file=sys.stderr)
            return 1
        size = sum(p.stat().st_size for p in (out / "cohort").rglob("*.parquet"))
        rows = {}
        import pyarrow.parquet as pq

        for part in sorted((out / "cohort").rglob("*.parquet")):
            rows[part.parent.name] = pq.ParquetFile(part).metadata.num_rows
    gb = 1024**3
    print(
        f"{args.patients:,} patients, --jobs {args.jobs}: {seconds:,.0f} s "
        f"({args.patients / seconds:,.0f} histories/s)"
    )
    print(
        f"  peak memory: client {peak_client / gb:.2f} GB, client + workers {peak_tree / gb:.2f} GB"
    )
    print(f"  parts: {size / gb:.2f} GB; rows: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    if not args.no_record:
        libs = library_versions()
        line = (
            f"| {datetime.now(UTC).strftime('%Y-%m-%d')} | {__version__} | {data['name']} "
            f"| {args.patients:,} | {args.jobs} | {seconds:,.0f} | {peak_client / gb:.2f} "
            f"| {peak_tree / gb:.2f} | {size / gb:.2f} | {machine()} | Python {libs['python']}, "
            f"numpy {libs['numpy']}, pyarrow {libs['pyarrow']} |\n"
        )
        results = HERE / "results.md"
        text = results.read_text() if results.exists() else "# Benchmark results\n"
        header = "## Scale: streaming a large cohort to parquet (`benchmarks/scale.py`)"
        if header not in text:
            text += (
                f"\n{header}\n\nTarget: peak memory under 2 GB for 1,000,000 patients.\n\n"
                "| date | hccsim | scenario | patients | jobs | seconds | peak client GB "
                "| peak client + workers GB | parts GB | machine | versions |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|\n"
            )
        results.write_text(text + line)
        print(f"  recorded in {results.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
