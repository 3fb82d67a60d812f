"""The ``hccsim`` command.

Commands: ``run``, ``compare``, ``power``, ``sweep``, ``analyze``, ``calibrate``, ``validate``,
``schema``, ``list``. Bad input (a scenario, a value on the command line, an output folder) exits with
status 2 and a message that names the file, the field, the value and what is allowed; never
with a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
import traceback
from pathlib import Path

from hccsim.simulator import __version__
from hccsim.simulator.errors import InputError

EXIT_BAD_INPUT = 2
#: ``hccsim run`` writes its report when the replicates analysed hold at most this many patients.
REPORT_MAX_PATIENTS = 200_000


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Text that starts like a negative number (-30,60, -1e3) is a value for the option's
        # own check, not an unknown option (no option starts with a digit): argparse's pattern
        # takes only -30 and -0.5, and "--sample-sizes -30,60" got "expected one argument".
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str):  # exit 2 with our own wording, never a traceback
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"hccsim: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; expected a whole number >= 1"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected a whole number >= 1")
    return value


#: The scenario files' cap on replicates (``Scenario.replicates``): a run beyond it would
#: write a scenario.resolved.yaml that does not validate.
MAX_REPLICATES = 100_000


def _whole_number(text: str, low: int, high: int) -> int:
    message = f"{text!r} is not allowed; expected a whole number from {low:,} to {high:,}"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(message) from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(message)
    return value


def _replicates(text: str) -> int:
    return _whole_number(text, 1, MAX_REPLICATES)


def _power_replicates(text: str) -> int:
    """``hccsim power --replicates``: the bounds of the scenario files' ``power.replicates``."""
    from hccsim.simulator.scenario import POWER_REPLICATES

    return _whole_number(text, *POWER_REPLICATES)


def _seed(text: str) -> int:
    from hccsim.simulator.streams import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; expected a whole number from 0 to {MAX_SEED}"
        ) from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; expected a whole number from 0 to {MAX_SEED}"
        )
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; expected a positive number, e.g. 8"
        ) from None
    if not 0 < value < 1e4:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; expected a positive number, e.g. 8"
        )
    return value


def _sd_weeks(text: str) -> float:
    message = f"{text!r} is not allowed; expected a number of weeks from 0 to 52, e.g. 6"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(message) from None
    if not 0 <= value <= 52:
        raise argparse.ArgumentTypeError(message)
    return value


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(n < 2 for n in sizes) or sorted(set(sizes)) != sizes:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; expected increasing whole numbers >= 2 separated by "
            "commas, e.g. 200,250,300"
        )
    return sizes


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.5 <= value <= 0.99:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; expected a power between 0.5 and 0.99, e.g. 0.8"
        )
    return value


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; expected a number of workers >= 1, or -1 for all cores"
        ) from None
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; expected a number of workers >= 1, or -1 for all cores"
        )
    from hccsim.simulator.studies.run import local_jobs_max

    if value > local_jobs_max():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; expected at most {local_jobs_max()} workers on this "
            f"machine ({os.cpu_count() or 1} cores), or -1 for all cores"
        )
    return value


def _parallel_options(p: argparse.ArgumentParser, what: str) -> None:
    """``--jobs``, ``--backend`` and ``--scheduler``, shared by the commands that simulate."""
    p.add_argument(
        "--jobs", type=_jobs, default=1, help="parallel workers (-1: all cores; default 1)"
    )
    p.add_argument(
        "--backend",
        choices=["loky", "dask"],
        default="loky",
        help=f"where {what} run: local worker processes (loky, default) or a Dask cluster",
    )
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hccsim", description="Synthetic cohorts of patients with advanced HCC.")
    parser.add_argument("--version", action="version", version=f"hccsim {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND"
    )

    p = sub.add_parser("run", help="simulate a scenario and write its run folder")
    p.add_argument("scenario", help="scenario YAML file (or the name of a shipped scenario)")
    p.add_argument(
        "--replicates", type=_replicates, help="number of replicates (default: the scenario's)"
    )
    p.add_argument(
        "--seed", type=_seed, help="root seed (default: the scenario's, else drawn and recorded)"
    )
    p.add_argument(
        "--jobs", type=_jobs, default=1, help="parallel workers (-1: all cores; default 1)"
    )
    p.add_argument("--out", help="run folder (default: results/<scenario name>)")
    p.add_argument(
        "--backend",
        choices=["loky", "dask"],
        default="loky",
        help="where tasks run: local worker processes (loky, default) or a Dask cluster",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default with --backend dask: "
        "a local cluster of --jobs workers)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted run in --out: keep finished replicates, redo the rest",
    )
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar and no summary on the terminal"
    )
    p.add_argument(
        "--no-report",
        action="store_true",
        help="skip tables/, figures/ and report.html (written by default when the replicates "
        f"analysed hold at most {REPORT_MAX_PATIENTS:,} patients; `hccsim analyze` can add them "
        "later)",
    )

    p = sub.add_parser(
        "analyze",
        help="analyse cohort tables (a hospital's own, or a run's): tables, figures, report",
    )
    p.add_argument(
        "folder",
        help="a folder of cohort tables (<table>.csv or .parquet, see docs/data-format.md), a "
        "run's cohort/ folder, a run folder, or 'example' for the shipped synthetic example",
    )
    p.add_argument(
        "--out",
        help="output folder (default: results/<folder name>-analysis; for a run "
        "folder, the run folder itself)",
    )
    p.add_argument(
        "--scan-interval-weeks",
        type=_positive_float,
        help="planned weeks between scans, for the PFS rule on two missed scans (default: the "
        "run's imaging interval, else the median interval between recorded scans)",
    )
    p.add_argument(
        "--sd-min-weeks",
        type=_sd_weeks,
        help="minimum weeks after the start of the line at which stable disease counts for best "
        "overall response (default: the run's scenario, analysis.stable_disease_min_weeks, "
        "else 6; 0: any visit after baseline)",
    )
    p.add_argument(
        "--confirm-responses",
        choices=("yes", "no"),
        help="whether a CR or PR needs a confirming scan at least 4 weeks later to count for "
        "best overall response (default: the run's scenario, analysis.confirm_responses, "
        "else no)",
    )
    p.add_argument(
        "--max-replicates",
        type=_positive_int,
        default=200,
        help="tables and figures of a simulated study use at most this many replicates "
        "(default 200); summary.json uses all",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in --out")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")

    p = sub.add_parser(
        "power",
        help="simulation-based power and sample size of a trial scenario (its power: section)",
    )
    p.add_argument("scenario", help="scenario YAML file with a power: section (or a shipped name)")
    p.add_argument(
        "--sample-sizes",
        type=_sizes,
        help="comma-separated increasing sample sizes, e.g. 200,250,300 (default: the scenario's)",
    )
    p.add_argument(
        "--replicates",
        type=_power_replicates,
        help="simulated trials per size (default: the scenario's)",
    )
    p.add_argument(
        "--target-power",
        type=_probability,
        help="power to reach, e.g. 0.8 (default: the scenario's)",
    )
    p.add_argument("--seed", type=_seed, help="root seed (default: the scenario's, else drawn)")
    _parallel_options(p, "trials")
    p.add_argument("--out", help="output folder (default: results/<scenario name>-power)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no table")

    p = sub.add_parser(
        "compare",
        help="compare the arms of a scenario on the same virtual patients (common random numbers)",
    )
    p.add_argument("scenario", help="scenario YAML file with treatment.arms (or a shipped name)")
    p.add_argument(
        "--replicates",
        type=_replicates,
        help="replicates, at least 2 (default: the scenario's, at least 2)",
    )
    p.add_argument("--seed", type=_seed, help="root seed (default: the scenario's, else drawn)")
    _parallel_options(p, "replicates")
    p.add_argument("--out", help="output folder (default: results/<scenario name>-compare)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no table")

    p = sub.add_parser(
        "sweep",
        help="simulate a scenario over the grid of its sweep: section (summaries or power)",
    )
    p.add_argument("scenario", help="scenario YAML file with a sweep: section (or a shipped name)")
    p.add_argument(
        "--replicates",
        type=_positive_int,
        help="replicates per point (with a power: section, trials per point; default: the "
        "scenario's)",
    )
    p.add_argument("--seed", type=_seed, help="root seed (default: the scenario's, else drawn)")
    _parallel_options(p, "tasks")
    p.add_argument("--out", help="output folder (default: results/<scenario name>-sweep)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no table")

    p = sub.add_parser(
        "calibrate",
        help="fit the model parameters to the published targets, or judge them (--check)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="judge the parameters against every target (report.md, report.html, "
        "calibration.json in --out); exit 1 if the acceptance rule fails",
    )
    p.add_argument(
        "--targets",
        metavar="FILE",
        help="targets file (default: $HCCSIM_TARGETS, else calibration/targets.yaml)",
    )
    p.add_argument(
        "--params",
        metavar="FILE",
        help="parameter file to judge or start from (default: the installed "
        "simulator/params/default.yaml)",
    )
    p.add_argument("--seed", type=_seed, help="root seed of the pools (default 20261205)")
    _parallel_options(p, "pools")
    p.add_argument(
        "--out",
        help="output folder (default: calibration/ with --check, else results/calibration/, "
        "which holds the checkpoint an interrupted calibration resumes from)",
    )
    p.add_argument(
        "--resamples",
        type=_positive_int,
        help="--check: simulated cohorts of the published size per target (default 500)",
    )
    p.add_argument(
        "--pool-factor",
        type=_positive_float,
        help="pool per arm in multiples of the published arm size (default 4 with --check, "
        "1.5 when fitting)",
    )
    p.add_argument(
        "--min-pool",
        type=_positive_int,
        help="smallest pool per arm (default 1500 with --check, 600 when fitting)",
    )
    p.add_argument(
        "--studies",
        metavar="NAMES",
        help="--check: comma-separated studies to judge (default: all)",
    )
    p.add_argument(
        "--stages",
        metavar="NAMES",
        help="comma-separated fitting stages to run (default: all, in order)",
    )
    p.add_argument(
        "--max-evaluations",
        type=_positive_int,
        help="cap on the simulations of each fitting stage (default: each stage's own, 30-70)",
    )
    p.add_argument(
        "--params-out",
        metavar="FILE",
        help="where the fitted parameter file goes (default: the installed "
        "simulator/params/default.yaml)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors and the verdict")

    p = sub.add_parser("validate", help="check scenario files; report every problem of every file")
    p.add_argument("files", nargs="+", help="scenario YAML files")

    sub.add_parser("schema", help="print the JSON Schema of the scenario format")

    p = sub.add_parser("list", help="list drugs, presets, shipped scenarios or model parameters")
    p.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=["all", "drugs", "presets", "scenarios", "parameters"],
    )
    return parser


def make_folder(out: Path) -> None:
    """Create ``--out`` before any work (see ``studies.run.make_folder``)."""
    from hccsim.simulator.studies.run import make_folder as make

    make(out)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "out", None) == "":
            raise InputError(
                "--out: an empty path; give a folder, or leave --out out for the default"
            )
        command = {
            "run": _run,
            "analyze": _analyze,
            "power": _power,
            "sweep": _sweep,
            "compare": _compare,
            "calibrate": _calibrate,
            "validate": _validate,
            "schema": _schema,
            "list": _list,
        }
        status = command[args.command](args)
        sys.stdout.flush()  # inside the try: a reader that went away is handled below
        return status
    except InputError as exc:
        for message in exc.messages:
            print(f"hccsim: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("hccsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``hccsim list | head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _shipped_scenarios() -> dict[str, Path]:
    from importlib import resources

    folder = resources.files("hccsim.scenarios")
    return {
        p.name.removesuffix(".yaml"): Path(str(p))
        for p in folder.iterdir()
        if p.name.endswith(".yaml")
    }


def _scenario_path(text: str) -> Path:
    path = Path(text)
    if not path.exists() and not text.endswith((".yaml", ".yml")) and os.sep not in text:
        shipped = _shipped_scenarios()
        if text in shipped:
            return shipped[text]
        import difflib

        near = difflib.get_close_matches(text, list(shipped), n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise InputError(
            f"{text}: no such file, and not a shipped scenario; {hint}"
            "`hccsim list scenarios` shows the shipped ones"
        )
    return path


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def _progress_bar(enabled: bool):
    """A progress bar on stderr: patients done, share, elapsed time and an estimate of the time
    left (elapsed x remaining / done, so it settles as the run goes on)."""
    if not enabled:
        return None
    t0 = time.monotonic()

    def show(done: int, total: int) -> None:
        width = 30
        share = done / total if total else 1.0
        filled = int(width * share)
        elapsed = time.monotonic() - t0
        left = _clock(elapsed * (total - done) / done) if done else "?"
        sys.stderr.write(
            f"\rpatients {done:,}/{total:,} [{'#' * filled}{'.' * (width - filled)}] "
            f"{100 * share:3.0f}%  {_clock(elapsed)} elapsed, {left} left "
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _run(args) -> int:
    from hccsim.simulator import scenario as scenario_mod

    path = _scenario_path(args.scenario)
    sc = scenario_mod.load(path)
    out = Path(args.out) if args.out else Path("results") / sc.name
    interactive = not args.quiet and sys.stderr.isatty() and not os.environ.get("CI")
    try:
        result = _run_folder(args, sc, out, path, interactive)
    except (InputError, BrokenPipeError):
        raise
    except KeyboardInterrupt:
        print(
            f"hccsim: interrupted; finished replicates are kept in {out}; run the same command "
            "with --resume to finish",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # a failed task or a bug: keep what is done, say how to go on
        from hccsim.simulator.studies.run import RunFailed

        log = out / "error.log"
        if not isinstance(exc, RunFailed):
            with contextlib.suppress(OSError):
                log.write_text(traceback.format_exc())
        where = f"; details in {log}" if log.exists() else ""
        what = str(exc) if isinstance(exc, RunFailed) else f"{type(exc).__name__}: {exc}"
        print(
            f"hccsim: the run stopped: {what}{where}. Finished replicates are kept in {out}; "
            "run the same command with --resume to finish",
            file=sys.stderr,
        )
        return 1
    if sc.analysis.data_cut_events is not None:
        print(
            f"hccsim: note: {path}: analysis.data_cut_events: {sc.analysis.data_cut_events} is "
            "not applied by hccsim run (hccsim power applies it); every replicate is analysed "
            "with all its follow-up",
            file=sys.stderr,
        )
    elif result.cut_not_reached:
        _cut_note(path, sc, [f"{result.cut_not_reached} of {result.replicates} replicates"])
    if not args.quiet:
        print(_headline(result))
    size = result.summary["n"] * min(result.summary["replicates"], 200)
    if args.no_report:
        return 0
    if size > REPORT_MAX_PATIENTS:
        if not args.quiet:
            print(
                f"  report:         skipped ({size:,} patients in the replicates analysed; "
                f"run `hccsim analyze {out}` to write it)"
            )
        return 0
    from hccsim.analysis.io import CohortInputError, read_cohort
    from hccsim.analysis.pipeline import analyse

    try:
        tables = read_cohort(out / "cohort")
    except CohortInputError as exc:
        # a part damaged since it was written (a resumed folder): the run's tables are not
        # readable, so neither the report nor a resume can trust them
        messages = [f"{out}: {m}" for m in exc.messages]
        messages.append(
            f"{out}: the run folder's tables cannot be read; start it again with --overwrite"
        )
        raise InputError(messages[0], messages) from None
    tables, cut = _with_data_cut(tables, sc)
    done = analyse(
        tables,
        out,
        scan_interval_days=sc.imaging_interval_days,
        title=f"hccsim run: {sc.name}",
        subtitle=sc.description.strip().splitlines()[0],
        provenance={**_provenance(out), **cut},
        summary=result.summary,
        response_rule=sc.response_rule,
        assessor=sc.observation.assessor,
    )
    if not args.quiet:
        print(f"  report:         {done.report} (tables/, figures/)")
    return 0


def _cut_note(path: Path, sc, counts: list[str]) -> None:
    """Say on stderr (a note, not an error) that the scenario's data cut was not reached in
    ``counts`` (e.g. "2 of 3 replicates") and what was analysed instead."""
    from hccsim.simulator.studies.run import unreached_cut

    cut, why = unreached_cut(sc)
    print(
        f"hccsim: note: {path}: {cut} not reached in {', '.join(counts)} ({why}); these are "
        "analysed with all their follow-up",
        file=sys.stderr,
    )


def _with_data_cut(tables, sc) -> tuple[dict, dict]:
    """The tables at the scenario's data cut (``analysis.data_cut_months``), as summary.json
    sees them, and a provenance line saying so."""
    months = sc.analysis.data_cut_months
    if months is None:
        return tables, {"data cut": "none (whole simulated follow-up)"}
    from hccsim.analysis.endpoints import data_cut

    return data_cut(tables, months * 30.4375), {
        "data cut": f"{months:g} months after the study start (analysis.data_cut_months)"
    }


def _reader(assessor: str) -> str:
    """The provenance line "scans read by" for a scenario's ``observation.assessor``."""
    from hccsim.analysis.report import READERS

    return READERS[assessor]


def _provenance(run_folder: Path) -> dict:
    """The run's provenance.json, flattened to text for the report."""
    import json

    try:
        data = json.loads((run_folder / "provenance.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in data.items()}


def _analyze(args) -> int:
    from hccsim.analysis.io import CohortInputError, read_cohort
    from hccsim.analysis.pipeline import analyse, estimate_scan_interval
    from hccsim.analysis.response import ResponseRule

    src = Path(args.folder)
    if args.folder == "example" and not src.exists():
        from importlib import resources

        src = Path(str(resources.files("hccsim.analysis") / "data" / "example_cohort"))
    run_folder = src if (src / "cohort").is_dir() else None
    if src.name == "cohort" and (src.parent / "manifest.json").exists():
        run_folder = src.parent
    if args.out:
        out = Path(args.out)
    elif run_folder is not None:
        out = run_folder
    else:
        out = Path("results") / f"{src.resolve().name}-analysis"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    # Options that change how the cohort is read: the run's own summary.json (made under the
    # run's settings) is then recomputed and written.
    overridden = (
        args.scan_interval_weeks is not None
        or args.sd_min_weeks is not None
        or args.confirm_responses is not None
    )
    rewrites_summary = run_folder is None or overridden
    outputs = ("report.html", "tables", "figures") + (("summary.json",) if rewrites_summary else ())
    clash = [p for p in outputs if (out / p).exists()]
    if clash and not args.overwrite:
        raise InputError(
            f"--out {out}: already holds {', '.join(clash)}; use --overwrite to replace them"
        )
    make_folder(out)
    try:
        tables = read_cohort(src)
        warnings = list(tables.warnings)
    except CohortInputError as exc:
        messages = [f"{args.folder}: {m}" for m in exc.messages]
        raise InputError(messages[0], messages) from None
    summary, interval, rule, meta = None, None, None, {"source": str(src)}
    assessor = None
    if run_folder is not None:
        import json

        try:
            summary = None if overridden else json.loads((run_folder / "summary.json").read_text())
        except (OSError, ValueError):
            summary = None
        meta = _provenance(run_folder) or meta
        resolved = run_folder / "scenario.resolved.yaml"
        if resolved.exists():
            from hccsim.simulator import scenario as scenario_mod

            sc = scenario_mod.load(resolved)
            interval, rule = sc.imaging_interval_days, sc.response_rule
            assessor = sc.observation.assessor
            tables, cut = _with_data_cut(tables, sc)
            meta = {**meta, **cut}
    if args.scan_interval_weeks:
        interval = 7.0 * args.scan_interval_weeks
    how = "given" if args.scan_interval_weeks else "from the run's scenario"
    if interval is None:
        interval, how = estimate_scan_interval(tables), "median interval between recorded scans"
    rule_from = "the run's scenario" if rule is not None else "the default"
    rule = rule or ResponseRule()
    if args.sd_min_weeks is not None or args.confirm_responses is not None:
        rule_from = "given: " + ", ".join(
            opt
            for opt, v in (
                ("--sd-min-weeks", args.sd_min_weeks),
                ("--confirm-responses", args.confirm_responses),
            )
            if v is not None
        )
        rule = ResponseRule(
            rule.sd_min_days if args.sd_min_weeks is None else 7.0 * args.sd_min_weeks,
            rule.confirm if args.confirm_responses is None else args.confirm_responses == "yes",
        )
    done = analyse(
        tables,
        out,
        scan_interval_days=interval,
        title=f"hccsim analyze: {meta.get('scenario') or src.resolve().name}",
        subtitle=f"cohort tables from {src}",
        provenance={
            **meta,
            "scan interval": f"{interval:g} days ({how})",
            "response rule from": rule_from,
        },
        summary=summary,
        max_replicates=args.max_replicates,
        notes=warnings,
        response_rule=rule,
        assessor=assessor,
    )
    if not args.quiet:
        m = done.summary["metrics"]
        reps = done.summary["replicates"]
        print(f"hccsim analyze {src}: {done.summary['n']} patients, {reps} replicate(s)")
        if reps == 1:  # a real cohort: its own medians with 95% CIs (log(-log))
            surv = done.dataframes["survival"].set_index("endpoint")

            def ci(name):
                r = surv.loc[name]
                low, high = _months(r["median_lower"]), _months(r["median_upper"])
                return f"{_months(r['median_months'])} (95% CI {low}-{high})"

            print(f"  OS median, months:  {ci('os')}")
            print(f"  PFS RECIST 1.1:     {ci('pfs_recist')}")
            print(f"  PFS mRECIST:        {ci('pfs_mrecist')}")
        else:
            print(f"  OS median, months:  {_fmt(m['os_median_months'])}")
            print(f"  PFS RECIST 1.1:     {_fmt(m['pfs_recist_median_months'])}")
            print(f"  PFS mRECIST:        {_fmt(m['pfs_mrecist_median_months'])}")
        for note in done.notes:
            print(f"  note: {note}")
        print(
            f"  written:            {done.report}, {out / 'tables'}/, {out / 'figures'}/, "
            f"{out / 'summary.json'}"
        )
    return 0


def _run_folder(args, sc, out, path, interactive):
    from hccsim.simulator.studies.run import run

    return run(
        sc,
        out,
        replicates=args.replicates,
        seed=args.seed,
        jobs=args.jobs,
        backend=args.backend,
        scheduler=args.scheduler,
        overwrite=args.overwrite,
        resume=args.resume,
        progress=_progress_bar(interactive),
        source=str(path),
    )


def _fmt(stat: dict) -> str:
    def num(x):
        return "NR" if x is None else f"{x:.1f}"

    return f"{num(stat['median'])} (95% range {num(stat['q025'])}-{num(stat['q975'])})"


def _months(x) -> str:
    x = float(x)
    return "NR" if x != x or x == float("inf") else f"{x:.1f}"


def _headline(result) -> str:
    s = result.summary
    m = s["metrics"]
    if m["orr_recist"]["median"] is None and m["pfs_recist_median_months"]["median"] is None:
        pfs = "not measured (nobody imaged on the index line)"
        pfs_recist = pfs_mrecist = pfs
    else:
        pfs_recist = _fmt(m["pfs_recist_median_months"])
        pfs_mrecist = _fmt(m["pfs_mrecist_median_months"])
    lines = [
        f"hccsim run '{s['scenario']}': {s['replicates']} replicate(s) of {s['n']} patients, seed {s['seed']}",
        f"  results:        {result.out}/ (summary.json, cohort/<table>/part-*.parquet)"
        + (f"; {result.resumed} replicate(s) kept from before" if result.resumed else ""),
        "  medians across replicates, months (central 95% of replicates):",
        f"  OS              {_fmt(m['os_median_months'])}",
        f"  PFS RECIST 1.1  {pfs_recist}",
        f"  PFS mRECIST     {pfs_mrecist}",
        "  best overall response, % of patients (median across replicates):",
        "                  CR    PR    SD    PD    NE   ORR   DCR",
    ]
    for crit, label in (("recist", "RECIST 1.1"), ("mrecist", "mRECIST")):
        cells = [m[f"bor_{crit}_{r}"]["median"] for r in ("cr", "pr", "sd", "pd", "ne")]
        cells += [m[f"orr_{crit}"]["median"], m[f"dcr_{crit}"]["median"]]
        lines.append(
            f"  {label:14s}" + "".join("   n/a" if c is None else f"{100 * c:6.1f}" for c in cells)
        )
    return "\n".join(lines)


def _power(args) -> int:
    import json

    from hccsim.simulator import scenario as scenario_mod
    from hccsim.simulator.streams import draw_root_seed
    from hccsim.simulator.studies import power as power_mod
    from hccsim.simulator.studies.run import library_versions

    path = _scenario_path(args.scenario)
    sc = scenario_mod.load(path)
    if sc.power is None:
        raise InputError(
            f"{path}: power: missing; hccsim power needs a power: section (endpoint, test, "
            "sample_sizes, ...; see docs/scenarios.md)"
        )
    update = {}
    if args.sample_sizes:
        update["sample_sizes"] = args.sample_sizes
    if args.replicates:
        update["replicates"] = args.replicates
    if args.target_power:
        update["target_power"] = args.target_power
    data = sc.model_dump(mode="json")
    data["power"].update(update)
    if data["power"]["sample_sizes"][-1] > data["cohort"]["size"]:
        data["cohort"]["size"] = data["power"]["sample_sizes"][-1]
    sc = scenario_mod.validate_data(data, f"{path} (with the command-line options)")
    seed = (
        args.seed
        if args.seed is not None
        else (sc.seed if sc.seed is not None else draw_root_seed())
    )
    out = Path(args.out) if args.out else Path("results") / f"{sc.name}-power"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise InputError(f"--out {out}: exists and is not empty; use --overwrite to replace it")
    make_folder(out)
    interactive = not args.quiet and sys.stderr.isatty() and not os.environ.get("CI")
    bar = _progress_bar(interactive)
    t0 = time.monotonic()
    results = power_mod.simulate_power(
        sc,
        seed,
        jobs=args.jobs,
        progress=(lambda d, t: bar(d, t)) if bar else None,
        backend=args.backend,
        scheduler=args.scheduler,
    )
    missed = results[:, :, power_mod.FIELDS.index("cut_not_reached")].sum(axis=0)
    if missed.any():
        trials = len(results)
        _cut_note(
            path,
            sc,
            [
                f"{k:.0f} of {trials} trials at n={n}"
                for n, k in zip(sc.power.sample_sizes, missed, strict=True)
                if k
            ],
        )
    rows = power_mod.summarise_power(sc, results)
    resolved = sc.resolved(seed)
    (out / "scenario.resolved.yaml").write_text(resolved.to_yaml())
    provenance = {
        "scenario": sc.name,
        "scenario_file": str(path),
        "seed": str(seed),
        "replicates per size": str(sc.power.replicates),
        "sample sizes": ", ".join(map(str, sc.power.sample_sizes)),
        "scans read by": _reader(sc.observation.assessor),
        "seconds": f"{time.monotonic() - t0:.1f} with {args.jobs} job(s), {args.backend}",
        "libraries": json.dumps(library_versions(), sort_keys=True),
    }
    n_target = power_mod.write_outputs(out, sc, seed, rows, provenance)
    if not args.quiet:
        p = sc.power
        print(
            f"hccsim power '{sc.name}': {p.test} on {p.endpoint}, alpha {p.alpha:g} "
            f"({p.sides}-sided), {p.replicates} trials per size, seed {seed}"
        )
        print("       n   power  (95% Wilson)     events  months  estimate  Schoenfeld  Freedman")
        for r in rows:

            def f(x, fmt):
                return format(x, fmt) if x == x else "n/a"

            print(
                f"  {r.n:6d}  {r.power:6.3f}  ({r.wilson_low:.3f}-{r.wilson_high:.3f})  "
                f"{r.mean_events:8.1f}  {r.mean_study_months:6.1f}  {f(r.estimate, '8.3f')}  "
                f"{f(r.schoenfeld_power, '10.3f')}  {f(r.freedman_power, '8.3f')}"
            )
        reached = "not reached" if n_target != n_target else f"{n_target:.0f} patients"
        print(f"  power {p.target_power:g} at: {reached}")
        print(f"  written: {out}/ (power.json, power.csv, figures/power_curve.png, report.html)")
    return 0


def _sweep(args) -> int:
    import json

    from hccsim.simulator import scenario as scenario_mod
    from hccsim.simulator.studies import sweep as sweep_mod
    from hccsim.simulator.studies.run import library_versions

    path = _scenario_path(args.scenario)
    sc = scenario_mod.load(path)
    plan = sweep_mod.plan(sc, source=str(path), replicates=args.replicates, seed=args.seed)
    out = Path(args.out) if args.out else Path("results") / f"{sc.name}-sweep"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise InputError(f"--out {out}: exists and is not empty; use --overwrite to replace it")
    make_folder(out)
    interactive = not args.quiet and sys.stderr.isatty() and not os.environ.get("CI")
    bar = _progress_bar(interactive)
    t0 = time.monotonic()
    result = sweep_mod.simulate_sweep(
        plan, jobs=args.jobs, backend=args.backend, scheduler=args.scheduler, progress=bar
    )
    resolved = plan.scenario
    provenance = {
        "scenario": resolved.name,
        "scenario_file": str(path),
        "seed": str(plan.seed),
        "mode": plan.mode,
        "points": str(len(plan.points)),
        "scans read by": (
            "per point (observation.assessor is swept)"
            if "observation.assessor" in plan.paths
            else _reader(resolved.observation.assessor)
        ),
        "replicates per point": str(
            resolved.power.replicates if plan.mode == "power" else resolved.replicates
        ),
        "seconds": f"{time.monotonic() - t0:.1f} with {args.jobs} job(s), {args.backend}",
        "libraries": json.dumps(library_versions(), sort_keys=True),
    }
    sweep_mod.write_outputs(out, result, provenance, source=str(path))
    if not args.quiet:
        print(sweep_mod.text_table(result))
        print(f"  written: {out}/ ({', '.join(sweep_mod.OUTPUTS)})")
    return 0


def _compare(args) -> int:
    import json

    from hccsim.simulator import scenario as scenario_mod
    from hccsim.simulator.streams import draw_root_seed
    from hccsim.simulator.studies import compare as compare_mod
    from hccsim.simulator.studies.run import library_versions

    path = _scenario_path(args.scenario)
    sc = scenario_mod.load(path)
    compare_mod.check_comparable(sc, str(path))
    replicates = args.replicates if args.replicates is not None else max(sc.replicates, 2)
    if replicates < 2:
        raise InputError(
            f"--replicates {replicates}: hccsim compare needs at least 2 replicates for "
            "Monte-Carlo intervals, e.g. --replicates 100"
        )
    seed = (
        args.seed
        if args.seed is not None
        else (sc.seed if sc.seed is not None else draw_root_seed())
    )
    out = Path(args.out) if args.out else Path("results") / f"{sc.name}-compare"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise InputError(f"--out {out}: exists and is not empty; use --overwrite to replace it")
    make_folder(out)
    interactive = not args.quiet and sys.stderr.isatty() and not os.environ.get("CI")
    bar = _progress_bar(interactive)
    t0 = time.monotonic()
    result = compare_mod.simulate_compare(
        sc,
        seed,
        replicates,
        jobs=args.jobs,
        backend=args.backend,
        scheduler=args.scheduler,
        progress=(lambda d, t: bar(d, t)) if bar else None,
    )
    if result.cut_not_reached:
        _cut_note(path, sc, [f"{result.cut_not_reached} of {replicates} replicates"])
    summary = compare_mod.summarise_compare(result)
    out.mkdir(parents=True, exist_ok=True)
    resolved = sc.model_copy(update={"seed": seed, "replicates": replicates})
    (out / "scenario.resolved.yaml").write_text(resolved.to_yaml())
    provenance = {
        "hccsim": __version__,
        "scenario": sc.name,
        "scenario_file": str(path),
        "scenario_hash": resolved.content_hash(),
        "seed": str(seed),
        "replicates": str(replicates),
        "patients per arm and replicate": str(sc.cohort.size),
        "arms": ", ".join(result.arms) + f" (reference: {result.reference})",
        "scans read by": _reader(sc.observation.assessor),
        "seconds": f"{time.monotonic() - t0:.1f} with {args.jobs} job(s)",
        "libraries": json.dumps(library_versions(), sort_keys=True),
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    compare_mod.write_outputs(out, result, summary, provenance)
    if not args.quiet:
        ref = result.reference
        print(
            f"hccsim compare '{sc.name}': {len(result.arms)} arms on the same {sc.cohort.size} "
            f"patients, {replicates} replicates, seed {seed}; reference {ref}"
        )
        table = [["", *result.arms]]
        for m in compare_mod.HEADLINE:
            row = [compare_mod.label(m)]
            for a in result.arms:
                cell = compare_mod._shown(m, summary["metrics"][a][m]["mean"])
                if a != ref:
                    d = summary["differences"][a][m]
                    cell += f" ({compare_mod._shown_diff(m, d['mean'])})"
                row.append(cell)
            table.append(row)
        widths = [max(len(r[j]) for r in table) for j in range(len(table[0]))]
        for r in table:
            print(
                f"  {r[0]:<{widths[0]}}"
                + "".join(f"  {c:>{w}}" for c, w in zip(r[1:], widths[1:], strict=True))
            )
        print(
            f"  (difference vs {ref} in brackets; Monte-Carlo intervals and 95% ranges in "
            "compare.csv and the report)"
        )
        print(f"  written: {out}/ (compare.json, compare.csv, figures/, report.html)")
    return 0


def _use_params(path: str | None) -> None:
    """Point every parameter lookup (here and in worker processes) at ``path``."""
    from hccsim.simulator import parameters

    if path is None:
        return
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--params {path}: no such file; give a parameter YAML file")
    os.environ[parameters.PARAMS_ENV] = str(p.resolve())
    parameters._default_tree.cache_clear()
    parameters.default_flat.cache_clear()
    try:
        parameters.default_flat()
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"--params {path}: not a parameter file like simulator/params/default.yaml "
            f"({type(exc).__name__}: {exc})"
        ) from None


def _names(text: str | None, option: str) -> list[str] | None:
    if text is None:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise InputError(f"{option} {text!r}: give comma-separated names")
    return names


def _calibrate(args) -> int:
    from hccsim.simulator.calibration import commands, fit
    from hccsim.simulator.studies.run import mapper

    _use_params(args.params)
    log = fit.stderr_log(args.quiet)
    seed = args.seed if args.seed is not None else commands.DEFAULT_SEED
    studies = _names(args.studies, "--studies")
    stages = _names(args.stages, "--stages")
    if args.check:
        if stages is not None or args.params_out is not None or args.max_evaluations:
            raise InputError(
                "--stages, --max-evaluations and --params-out are for fitting; drop them with "
                "--check"
            )
        out = Path(args.out) if args.out else Path("calibration")
        make_folder(out)
        with mapper(args.jobs, args.backend, args.scheduler) as run_map:
            done = commands.run_check(
                targets_path=args.targets,
                out=out,
                seed=seed,
                resamples=args.resamples or commands.CHECK_RESAMPLES,
                factor=args.pool_factor or commands.CHECK_FACTOR,
                minimum=args.min_pool or commands.CHECK_MIN_POOL,
                run_map=run_map,
                studies=studies,
                log=log,
            )
        v = done["verdict"]
        anchor = ", ".join(
            f"{k} {'inside' if ok else 'OUTSIDE'}" for k, ok in v["anchor_inside"].items()
        )
        print(
            f"hccsim calibrate --check: {'PASSED' if v['passed'] else 'FAILED'}: "
            f"{v['inside']} of {v['counted']} counted targets inside their simulated 95% range "
            f"({v['pass_rate']:.1%}; at least {v['rules']['pass_share']:.0%} needed); beyond "
            f"|z| {v['rules']['z_limit']}: {len(v['beyond_z_limit'])}; anchor medians: "
            f"{anchor or 'not judged'}"
        )
        print(f"  report: {done['files']['md']} ({done['seconds']:.0f} s)")
        return 0 if v["passed"] else 1
    if studies is not None or args.resamples is not None:
        raise InputError("--studies and --resamples are for --check; drop them when fitting")
    out = Path(args.out) if args.out else Path("results") / "calibration"
    make_folder(out)
    target = Path(args.params_out) if args.params_out else commands.params_file()
    with mapper(args.jobs, args.backend, args.scheduler) as run_map:
        done = commands.run_calibrate(
            targets_path=args.targets,
            checkpoint_path=out / "checkpoint.jsonl",
            seed=seed,
            factor=args.pool_factor or commands.FIT_FACTOR,
            minimum=args.min_pool or commands.FIT_MIN_POOL,
            run_map=run_map,
            only=stages,
            write_params=target,
            log=log,
            max_evaluations=args.max_evaluations,
        )
    for s in done["stages"]:
        print(f"  stage {s.name}: loss {s.loss_start:.3f} -> {s.loss:.3f} ({s.evaluations} runs)")
    print(f"hccsim calibrate: wrote {target}; judge it with `hccsim calibrate --check`")
    return 0


def _validate(args) -> int:
    from hccsim.simulator import scenario as scenario_mod

    failed = 0
    for name in args.files:
        try:
            scenario_mod.load(_scenario_path(name))
        except InputError as exc:
            failed += 1
            for message in exc.messages:
                print(f"hccsim: {message}", file=sys.stderr)
        else:
            print(f"{name}: ok")
    return EXIT_BAD_INPUT if failed else 0


def _schema(args) -> int:
    from hccsim.simulator.scenario import schema_json

    print(schema_json())
    return 0


def _list(args) -> int:
    from hccsim.simulator import cohort, parameters
    from hccsim.simulator.catalogue import catalogue

    what = args.what
    if what in ("all", "drugs"):
        print("drugs:")
        for name, t in sorted(catalogue().items()):
            print(f"  {name:26s} {t.label} ({t.kind})")
    if what in ("all", "presets"):
        print("presets:")
        for name, p in sorted(cohort.presets().items()):
            print(f"  {name:26s} {p.description.split('.')[0]}")
    if what in ("all", "scenarios"):
        from hccsim.simulator import scenario as scenario_mod

        print("scenarios:")
        for name, path in sorted(_shipped_scenarios().items()):
            sc = scenario_mod.load(path)
            print(f"  {name:26s} {sc.description.strip().splitlines()[0]}")
    if what == "parameters":
        for path, value in sorted(parameters.default_flat().items()):
            print(f"{path} = {value}")
    return 0
