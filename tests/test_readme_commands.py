"""Every command README.md shows works as the README says.

Which lines are commands: every line of a ```sh block (comments dropped, `\\` continuations
joined), and in a ```text block every line starting with `$ `; the lines after it, up to the
next `$ `, are its documented output. `.venv/bin/` before the program is dropped.

How each is checked (no command is skipped; `test_every_readme_command_has_a_rule` enforces it):

- `make TARGET ...`: TARGET is a rule of the Makefile and `make -n` (a dry run: nothing is
  built or installed) accepts it.
- `hccsim ...`: run as `python -m hccsim.simulator ...` in a fresh folder holding copies of
  `scenarios/` and `analysis/data/example_cohort/`; the commands of one block run in order in
  one folder (a `--resume` follows its run, `analyze` reads the run before it). Quick options
  (`quick_argv`): the block's `--replicates` values are mapped, in increasing order, to 2, 3, ...
  (10, 11, ... for power designs, whose minimum is 10 trials), and `--replicates` is added
  where the command has none; `--jobs` at most 2; `hccsim power` gets `--sample-sizes 40,60`;
  `--scheduler tcp://...` (a remote Dask cluster, which a test cannot reach) is replaced by a
  local Dask cluster of 2 workers (`--backend dask --jobs 2`), so the Dask path really runs.
  Placeholder paths get the stand-ins of STAND_INS. Commands in EXACT are cheap: they run
  unchanged and must print their documented output verbatim.
- A command must exit with status 0 and write the files the README says it writes (FILES); a
  run folder must hold the replicates asked for. When its documented output is an `hccsim: ...`
  error line, it must exit with status 2 and print that line on stderr.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hccsim.simulator.cli import build_parser
from hccsim.simulator.scenario import load

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLE_COHORT = ROOT / "analysis" / "data" / "example_cohort"

SUBCOMMANDS = (
    "run",
    "compare",
    "sweep",
    "power",
    "analyze",
    "calibrate",
    "validate",
    "list",
    "schema",
)

#: Commands run exactly as written, whose stdout must equal the README's output line by line.
EXACT = {
    "hccsim run scenarios/anchor_ramucirumab.yaml --jobs 2",
    "hccsim analyze analysis/data/example_cohort",
}

#: Lines of ```sh blocks that are neither `hccsim` nor `make` (none at present; a new one must
#: be listed here with the reason it is not run).
OTHER_COMMANDS: dict[str, str] = {}

VALUE_OPTIONS = {
    "--replicates",
    "--seed",
    "--jobs",
    "--out",
    "--backend",
    "--scheduler",
    "--sample-sizes",
    "--target-power",
    "--scan-interval-weeks",
    "--max-replicates",
    "--targets",
    "--params",
    "--resamples",
    "--pool-factor",
    "--min-pool",
    "--studies",
    "--stages",
    "--max-evaluations",
    "--params-out",
}
FLAG_OPTIONS = {"--overwrite", "--resume", "--quiet", "--no-report", "--check"}

#: `hccsim calibrate` in quick form: small pools of one study; a fit runs one stage briefly.
CALIBRATE_QUICK = {"--pool-factor": "1", "--min-pool": "60"}
CALIBRATE_CHECK_QUICK = {"--studies": "anchor_study", "--resamples": "20"}
CALIBRATE_FIT_QUICK = {"--stages": "drug_ramucirumab", "--max-evaluations": "2"}

_TABLES = ("patients", "lines", "lesions", "assessments", "labs", "adverse_events")
_PAPER_TABLES = tuple(
    f"tables/{t}.csv"
    for t in (
        "baseline",
        "adverse_events",
        "discontinuation",
        "best_response",
        "survival",
        "subgroups",
        "cox",
        "albi",
    )
)
_FIGURES = tuple(
    f"figures/{f}.png"
    for f in ("swimmer", "albi", "km_os", "km_pfs", "km_line_group", "km_dc4w", "forest")
)
REPORT = ("summary.json", *_PAPER_TABLES, *_FIGURES, "report.html")

#: What the README says each command writes.
FILES = {
    "run": ("scenario.resolved.yaml", "provenance.json", "manifest.json", "summary.json"),
    "analyze": REPORT,
    "compare": (
        "compare.json",
        "compare.csv",
        "figures/km_os.png",
        "figures/km_pfs_recist.png",
        "figures/km_pfs_mrecist.png",
        "figures/later_lines.png",
        "figures/time_on_drug.png",
        "report.html",
        "provenance.json",
        "scenario.resolved.yaml",
    ),
    "sweep": (
        "scenario.resolved.yaml",
        "sweep.csv",
        "sweep.json",
        "figures/sweep.png",
        "report.html",
    ),
    "power": (
        "power.json",
        "power.csv",
        "figures/power_curve.png",
        "report.html",
        "scenario.resolved.yaml",
    ),
}


# --- stand-ins for placeholder paths -------------------------------------------------------


def _cohort_copy(cwd: Path, name: str) -> Path:
    dest = cwd / name
    shutil.copytree(EXAMPLE_COHORT, dest)
    return dest


def _broken_cohort(cwd: Path, name: str) -> Path:
    """The example cohort with line 4 of patients.csv (patient 2) followed up to day -5."""
    dest = _cohort_copy(cwd, name)
    path = dest / "patients.csv"
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    col = rows[0].index("last_follow_up_day")
    assert rows[3][rows[0].index("patient_id")] == "2"
    rows[3][col] = "-5"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return dest


def _bad_scenario(cwd: Path, name: str) -> Path:
    """The anchor scenario with `imaging_weeks: -4`."""
    text = (ROOT / "scenarios" / "anchor_ramucirumab.yaml").read_text()
    bad = re.sub(r"(?m)^(\s*imaging_weeks:) 6\b", r"\1 -4", text)
    assert bad != text
    (cwd / name).write_text(bad)
    return cwd / name


STAND_INS = {
    "path/to/my_cohort": _cohort_copy,  # a hospital's own tables: the example cohort
    "my_cohort": _broken_cohort,  # the documented error example
    "x.yaml": _bad_scenario,  # the documented scenario error
}


# --- reading the README ----------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    tokens: tuple[str, ...]
    output: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    @property
    def program(self) -> str:
        return self.tokens[0]

    @property
    def expected_error(self) -> str | None:
        if self.output and self.output[0].startswith("hccsim: "):
            return self.output[0]
        return None


@dataclass
class Block:
    name: str
    commands: list[Command] = field(default_factory=list)
    others: list[str] = field(default_factory=list)


_BLOCK = re.compile(r"^([ \t]*)```(sh|text)[ \t]*\n(.*?)^[ \t]*```", re.S | re.M)


def _tokens(line: str) -> tuple[str, ...]:
    tokens = shlex.split(line, comments=True)
    if tokens and tokens[0].startswith(".venv/bin/"):
        tokens[0] = tokens[0].removeprefix(".venv/bin/")
    return tuple(tokens)


def readme_blocks() -> list[Block]:
    text = README.read_text()
    headings = [(m.start(), m.group(1)) for m in re.finditer(r"^## (.+)$", text, flags=re.M)]
    blocks: list[Block] = []
    for match in _BLOCK.finditer(text):
        heading = "intro"
        for pos, title in headings:
            if pos < match.start():
                heading = title
        slug = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")
        block = Block(f"{slug}-{sum(b.name.startswith(slug + '-') for b in blocks) + 1}")
        body = textwrap.dedent(match.group(3)).splitlines()
        if match.group(2) == "sh":
            logical: list[str] = []
            for line in body:
                if logical and logical[-1].endswith("\\"):
                    logical[-1] = logical[-1][:-1] + " " + line.strip()
                else:
                    logical.append(line.strip())
            for line in logical:
                tokens = _tokens(line)
                if not tokens:
                    continue
                if tokens[0] in ("hccsim", "make"):
                    block.commands.append(Command(tokens))
                else:
                    block.others.append(" ".join(tokens))
        else:
            prompts = [i for i, line in enumerate(body) if line.startswith("$ ")]
            for i, end in zip(prompts, [*prompts[1:], len(body)], strict=True):
                output = tuple(line.rstrip() for line in body[i + 1 : end])
                block.commands.append(Command(_tokens(body[i][2:]), output))
        if block.commands or block.others:
            blocks.append(block)
    return blocks


BLOCKS = readme_blocks()
COMMANDS = [c for b in BLOCKS for c in b.commands]


# --- planning a command ----------------------------------------------------------------------


@dataclass
class Step:
    command: Command
    argv: list[str]
    out: Path | None = None
    files: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    replicates: int | None = None
    statuses: tuple[int, ...] = (0,)


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", (ROOT / "Makefile").read_text(), re.M))


def prepare(cwd: Path) -> None:
    """The repository parts README commands name, copied (never linked: outputs stay in cwd)."""
    shutil.copytree(ROOT / "scenarios", cwd / "scenarios", ignore=shutil.ignore_patterns("*.py"))
    shutil.copytree(EXAMPLE_COHORT, cwd / "analysis" / "data" / "example_cohort")


def _scenario_file(arg: str, cwd: Path) -> Path:
    if arg.endswith((".yaml", ".yml")):
        path = cwd / arg
    else:
        path = ROOT / "scenarios" / f"{arg}.yaml"
    assert path.is_file(), f"scenario {arg!r} is neither a file nor a shipped scenario"
    return path


def _split(tokens: tuple[str, ...]) -> tuple[list[str], dict[str, str | None]]:
    """Positionals and options of `hccsim SUB ...`; an option without a rule is an error."""
    positionals: list[str] = []
    options: dict[str, str | None] = {}
    rest = list(tokens[2:])
    while rest:
        token = rest.pop(0)
        if token in VALUE_OPTIONS:
            assert rest, f"{token} without a value"
            options[token] = rest.pop(0)
        elif token in FLAG_OPTIONS:
            options[token] = None
        elif token.startswith("-"):
            raise AssertionError(
                f"no rule for option {token} (add it to VALUE_OPTIONS/FLAG_OPTIONS)"
            )
        else:
            positionals.append(token)
    return positionals, options


def _is_power_design(sub: str, positionals: list[str], cwd: Path) -> bool:
    if sub == "power":
        return True
    return sub == "sweep" and load(_scenario_file(positionals[0], cwd)).power is not None


def replicate_map(block: Block) -> dict[str, int]:
    """README `--replicates` values of a block, in increasing order, to ranks 0, 1, ..."""
    values = set()
    for c in block.commands:
        if c.program == "hccsim" and "--replicates" in c.tokens:
            values.add(int(c.tokens[c.tokens.index("--replicates") + 1]))
    return {str(v): rank for rank, v in enumerate(sorted(values))}


def plan(command: Command, cwd: Path, ranks: dict[str, int], outs: set[Path]) -> Step:
    """The command with quick options, and what it must write (see the module docstring)."""
    tokens = command.tokens
    assert tokens[0] == "hccsim" and len(tokens) >= 2, command.text
    sub = tokens[1]
    assert sub in SUBCOMMANDS, f"no rule for `hccsim {sub}`"
    positionals, options = _split(tokens)
    for arg in positionals:
        if arg in STAND_INS and not (cwd / arg).exists():
            STAND_INS[arg](cwd, arg)
    if options.get("--out") is not None:
        assert not Path(options["--out"]).is_absolute(), "an absolute --out would leave tmp"

    if sub in ("list", "schema"):
        return Step(command, list(tokens[1:]))
    if sub == "validate":
        files = [p for arg in positionals for p in sorted(glob.glob(arg, root_dir=cwd))]
        assert files, f"{command.text}: the file pattern matches nothing"
        return Step(command, ["validate", *files])
    if command.expected_error:
        return Step(command, list(tokens[1:]))
    if sub == "calibrate":
        return _plan_calibrate(command, options, cwd, outs)

    exact = command.text in EXACT
    argv = [sub, *positionals]
    if sub == "analyze":
        (folder,) = positionals
        assert folder == "example" or (cwd / folder).is_dir() or cwd / folder in outs, folder
    else:
        (scenario,) = positionals
        sc = load(_scenario_file(scenario, cwd))
        base = 10 if _is_power_design(sub, positionals, cwd) else 2
        if not exact:
            value = options.get("--replicates")
            options["--replicates"] = str(base + ranks[value] if value is not None else base)
            if "--scheduler" in options:  # a remote cluster: a local Dask cluster of 2 workers
                del options["--scheduler"]
                options["--backend"] = "dask"
                options["--jobs"] = "2"
            if "--jobs" in options:
                jobs = int(options["--jobs"])
                options["--jobs"] = str(2 if jobs < 0 else min(jobs, 2))
            if sub == "power":
                options["--sample-sizes"] = "40,60"
    for name, value in options.items():
        argv += [name] if value is None else [name, value]
    if exact:
        assert argv == list(tokens[1:]), "EXACT commands run unchanged"

    if "--out" in options:
        out = cwd / options["--out"]
    elif sub == "analyze":
        folder = positionals[0]
        if folder == "example":
            out = cwd / "results" / f"{EXAMPLE_COHORT.name}-analysis"
        elif (cwd / folder / "manifest.json").exists() or cwd / folder in outs:
            out = cwd / folder
        else:
            out = cwd / "results" / f"{Path(folder).name}-analysis"
    else:
        suffix = "" if sub == "run" else f"-{sub}"
        out = cwd / "results" / f"{sc.name}{suffix}"
    outs.add(out)

    files, absent, replicates = FILES[sub], (), None
    if sub == "run":
        replicates = int(options.get("--replicates") or sc.replicates)
        parts = tuple(
            f"cohort/{t}/part-{r:05d}.parquet" for t in _TABLES for r in range(replicates)
        )
        files = files + parts
        if "--no-report" in options:
            absent = ("report.html", "tables", "figures")
        else:
            files = files + REPORT
    return Step(command, argv, out, files, absent, replicates)


def _plan_calibrate(command: Command, options: dict, cwd: Path, outs: set[Path]) -> Step:
    """`hccsim calibrate`: quick pools; --check may fail its verdict (exit 1) on small pools,
    and must write its report; a fit writes its parameter file and checkpoint."""
    check = "--check" in options
    options.update(CALIBRATE_QUICK)
    options.update(CALIBRATE_CHECK_QUICK if check else CALIBRATE_FIT_QUICK)
    if "--jobs" in options:
        jobs = int(options["--jobs"])
        options["--jobs"] = str(2 if jobs < 0 else min(jobs, 2))
    if not check:
        options.setdefault("--params-out", "fitted.yaml")  # never the installed file
    argv = ["calibrate"]
    for name, value in options.items():
        argv += [name] if value is None else [name, value]
    default = "calibration" if check else "results/calibration"
    out = cwd / (options.get("--out") or default)
    outs.add(out)
    if check:
        files = ("report.md", "report.html", "calibration.json", "figures/os.png")
    else:  # an absolute path: the parameter file is not in the output folder
        files = ("checkpoint.jsonl", str(cwd / options["--params-out"]))
    return Step(command, argv, out, files, statuses=(0, 1) if check else (0,))


def run_step(step: Step, cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hccsim.simulator", *step.argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    shown = f"hccsim {' '.join(step.argv)}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    error = step.command.expected_error
    if error:
        assert result.returncode == 2, shown
        assert error in result.stderr.splitlines(), shown
        assert "Traceback" not in result.stderr, shown
        return
    assert result.returncode in step.statuses, shown
    output = step.command.output
    if step.command.text in EXACT:
        assert [line.rstrip() for line in result.stdout.splitlines()] == list(output), shown
    elif output:  # the header line, up to the name of the scenario
        head = re.match(r"hccsim \w+ '[^']+':", output[0])
        assert head and head.group(0) in result.stdout, shown
    sub = step.argv[0]
    if sub == "schema":
        assert json.loads(result.stdout)["title"] == "Scenario"
    elif sub == "validate":
        assert result.stdout.splitlines() == [f"{f}: ok" for f in step.argv[1:]], shown
    elif sub == "list":
        assert result.stdout.strip(), shown
    if step.out is not None:
        missing = [f for f in step.files if not (step.out / f).exists()]
        assert not missing, f"{shown}\n{step.out} lacks {missing}"
        present = [f for f in step.absent if (step.out / f).exists()]
        assert not present, f"{shown}\n{step.out} should not hold {present}"
    if step.replicates is not None:
        manifest = json.loads((step.out / "manifest.json").read_text())
        assert len(manifest["done"]) == step.replicates, manifest["done"].keys()


def check_make(command: Command) -> None:
    targets = [t for t in command.tokens[1:] if "=" not in t and not t.startswith("-")]
    assert targets, command.text
    assert set(targets) <= make_targets(), f"{command.text}: not a rule of the Makefile"
    if shutil.which("make"):
        result = subprocess.run(
            ["make", "-n", "-C", str(ROOT), *command.tokens[1:]],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr


# --- tests -----------------------------------------------------------------------------------


def test_every_readme_command_has_a_rule(tmp_path):
    """Every command line found is run by a block test or checked against the Makefile."""
    assert len(COMMANDS) >= 25, [c.text for c in COMMANDS]
    others = {line for b in BLOCKS for line in b.others}
    assert others <= set(OTHER_COMMANDS), f"sh lines without a rule: {others - set(OTHER_COMMANDS)}"
    texts = [c.text for c in COMMANDS]
    assert {"make demo", "make test"} <= set(texts)
    assert set(texts) >= EXACT, EXACT - set(texts)
    used = {c.tokens[1] for c in COMMANDS if c.program == "hccsim"}
    assert set(SUBCOMMANDS) <= used, f"README runs no `hccsim {set(SUBCOMMANDS) - used}`"
    prepare(tmp_path)
    for block in BLOCKS:
        ranks, outs = replicate_map(block), set()
        for command in block.commands:
            if command.program == "make":
                check_make(command)
            else:
                step = plan(command, tmp_path, ranks, outs)
                assert step.argv[0] == command.tokens[1]


def _block_param(block: Block):
    simulates = any(
        c.program == "hccsim" and c.tokens[1] in ("run", "compare", "sweep", "power")
        for c in block.commands
    )
    return pytest.param(block, id=block.name, marks=[pytest.mark.slow] if simulates else [])


@pytest.mark.parametrize("block", [_block_param(b) for b in BLOCKS if b.commands])
def test_readme_block_runs(block, tmp_path):
    prepare(tmp_path)
    ranks, outs = replicate_map(block), set()
    for command in block.commands:
        if command.program == "make":
            check_make(command)
        else:
            run_step(plan(command, tmp_path, ranks, outs), tmp_path)


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_readme_synopses_match_the_command_line():
    """Each `hccsim SUB [--option ...]` synopsis lists exactly the options of `hccsim SUB -h`,
    and every subcommand has a synopsis."""
    text = README.read_text()
    spans = [" ".join(s.split()) for s in re.findall(r"`(hccsim [^`]+)`", text)]
    parsers = _subparsers()
    assert set(parsers) == set(SUBCOMMANDS)
    for sub, parser in parsers.items():
        options = {o for a in parser._actions for o in a.option_strings if o.startswith("--")} - {
            "--help"
        }
        positionals = [a for a in parser._actions if not a.option_strings]
        synopses = [s for s in spans if s.split()[1] == sub and ("[" in s or "..." in s)]
        if options:
            synopses = [s for s in synopses if "[--" in s]
            assert synopses, f"README has no synopsis of `hccsim {sub}` with its options"
            for s in synopses:
                assert set(re.findall(r"--[a-z-]+", s)) == options, (s, sorted(options))
        elif positionals and positionals[0].choices:
            assert any(
                set(re.findall(r"\[([a-z|]+)\]", s)[0].split("|")) == set(positionals[0].choices)
                for s in synopses
            ), f"README lacks `hccsim {sub} [{'|'.join(positionals[0].choices)}]`"
        else:
            assert any(s.split()[1] == sub for s in spans), f"README never names `hccsim {sub}`"


def test_scenario_library_table_lists_every_shipped_scenario():
    """One row per scenarios/*.yaml with the command of its `# Run:` header."""
    text = README.read_text()
    section = text[text.index("## The scenario library") :]
    section = section[: section.index("\n## ")]
    rows = {r.split("|")[1].strip(): r for r in section.splitlines() if r.startswith("| `")}
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        header = " ".join(
            line.lstrip("#").strip()
            for line in path.read_text().splitlines()
            if line.startswith("#")
        )
        run = re.search(r"Run: (hccsim .*?)(?= Sources:|$)", header)
        assert run, f"{path.name} has no # Run: line"
        row = rows.get(f"`{path.name}`")
        assert row, f"the library table lacks {path.name}"
        assert f"`{run.group(1).strip()}`" in row, (path.name, run.group(1))
    assert len(rows) == len(list((ROOT / "scenarios").glob("*.yaml")))
