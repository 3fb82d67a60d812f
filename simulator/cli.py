"""The ``hccsim`` command.

Commands in this version: ``run``, ``validate``, ``schema``, ``list``. Bad input (a scenario,
a value on the command line, an output folder) exits with status 2 and a message that names
the file, the field, the value and what is allowed; never with a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import traceback
from pathlib import Path

from hccsim.simulator import __version__
from hccsim.simulator.errors import InputError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
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
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hccsim", description="Synthetic cohorts of patients with advanced HCC.")
    parser.add_argument("--version", action="version", version=f"hccsim {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND"
    )

    p = sub.add_parser("run", help="simulate a scenario and write its run folder")
    p.add_argument("scenario", help="scenario YAML file (or the name of a shipped scenario)")
    p.add_argument(
        "--replicates", type=_positive_int, help="number of replicates (default: the scenario's)"
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        command = {"run": _run, "validate": _validate, "schema": _schema, "list": _list}
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
    if not args.quiet:
        print(_headline(result))
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


def _headline(result) -> str:
    s = result.summary
    m = s["metrics"]
    lines = [
        f"hccsim run '{s['scenario']}': {s['replicates']} replicate(s) of {s['n']} patients, seed {s['seed']}",
        f"  results:        {result.out}/ (summary.json, cohort/<table>/part-*.parquet)"
        + (f"; {result.resumed} replicate(s) kept from before" if result.resumed else ""),
        "  medians across replicates, months (central 95% of replicates):",
        f"  OS              {_fmt(m['os_median_months'])}",
        f"  PFS RECIST 1.1  {_fmt(m['pfs_recist_median_months'])}",
        f"  PFS mRECIST     {_fmt(m['pfs_mrecist_median_months'])}",
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
