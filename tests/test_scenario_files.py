"""Scenario files: a corpus of valid and invalid files, the loader and ``hccsim validate``.

``tests/scenarios/valid/*.yaml`` must load. Each ``tests/scenarios/invalid/*.yaml`` starts with
one ``# error: MESSAGE`` line per problem: the exact text ``hccsim validate`` prints for it
after ``hccsim: FILE: ``. Loading must report exactly those problems, and the command must
print them on stderr and exit with status 2, never with a traceback.

Subprocesses are slow (about 0.4 s each), so each command-line behaviour is checked by one
subprocess on many files; per-file exit statuses are checked in-process through ``cli.main``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hccsim.simulator import cli, yamlio
from hccsim.simulator.errors import InputError
from hccsim.simulator.scenario import SECTION_KEYS, Scenario, load, loads

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parent / "scenarios"
VALID = sorted((CORPUS / "valid").glob("*.yaml"))
INVALID = sorted((CORPUS / "invalid").glob("*.yaml"))
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
ERROR_PREFIX = "# error: "

# Wording of pydantic or Python that must never reach a clinician.
LEAKS = ("Input should", "Field required", "Extra inputs", "validation error", "type=", "Traceback")


def _ids(paths: list[Path]) -> list:
    return [pytest.param(p, id=p.stem) for p in paths]


def expected_messages(path: Path) -> list[str]:
    """The ``# error:`` lines of an invalid file, without the prefix."""
    lines = path.read_text("utf-8").splitlines()
    return [line[len(ERROR_PREFIX) :] for line in lines if line.startswith(ERROR_PREFIX)]


def load_messages(path: Path) -> list[str]:
    """The messages ``load`` raises for ``path``, without their ``path: `` prefix."""
    with pytest.raises(InputError) as info:
        load(path)
    prefix = f"{path}: "
    assert all(m.startswith(prefix) for m in info.value.messages), info.value.messages
    return [m[len(prefix) :] for m in info.value.messages]


def hccsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hccsim.simulator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def stderr_lines(stderr: str) -> set[str]:
    return set(stderr.splitlines())


# -- the corpus itself ------------------------------------------------------------------------
def test_corpus_is_complete():
    assert len(VALID) >= 5
    assert len(INVALID) >= 20
    assert SHIPPED
    for path in INVALID:
        assert expected_messages(path), f"{path.name} lacks a first line '# error: ...'"
        assert path.read_text("utf-8").startswith(ERROR_PREFIX), path.name


@pytest.mark.parametrize("path", _ids(INVALID))
def test_expected_messages_are_clinician_text(path):
    for message in expected_messages(path):
        assert not any(leak in message for leak in LEAKS), message
        assert len(message) < 600, "long values must be shortened"


# -- (a), (h) valid files load -----------------------------------------------------------------
@pytest.mark.parametrize("path", _ids(VALID) + _ids(SHIPPED))
def test_valid_file_loads(path):
    scenario = load(path)
    assert isinstance(scenario, Scenario)
    assert scenario.cohort.size >= 1


@pytest.mark.parametrize("path", _ids(VALID))
def test_valid_corpus_is_small(path):
    """Another test may simulate these files; they must stay cheap."""
    scenario = load(path)
    assert scenario.cohort.size <= 50
    assert scenario.replicates <= 2


def test_valid_corpus_covers_the_options():
    scenarios = [load(p) for p in VALID]
    raw = [p.read_text("utf-8") for p in VALID]
    assert {s.cohort.entry for s in scenarios} == {"index_line", "first_line"}
    assert any(s.cohort.accrual_per_month is not None for s in scenarios)
    assert any(s.treatment.progression_criterion == "mrecist" for s in scenarios)
    assert any(s.treatment.sequence == ["best_supportive_care"] for s in scenarios)
    assert any(s.population.overrides.get("afp_ng_ml", {}).get("median") == 3000 for s in scenarios)
    assert any(
        s.parameters.get("drugs", {}).get("ramucirumab", {}).get("kill_rate_per_day") == 0.005
        for s in scenarios
    )
    assert any(any("." in key for key in s.parameters) for s in scenarios)  # dotted form
    assert any("seed:" not in text and "observation:" not in text for text in raw)  # defaults


# -- (b) invalid files raise InputError with exactly the expected messages ----------------------
@pytest.mark.parametrize("path", _ids(INVALID))
def test_invalid_file_is_refused_with_its_messages(path):
    expected = expected_messages(path)
    got = load_messages(path)
    for message in expected:
        assert message in got
    assert sorted(got) == sorted(expected), "unexpected extra or repeated messages"


# -- (c) the command line ---------------------------------------------------------------------
@pytest.mark.parametrize("path", _ids(INVALID))
def test_validate_command_on_each_invalid_file(path, capsys):
    status = cli.main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert sorted(err.splitlines()) == sorted(
        f"hccsim: {path}: {m}" for m in expected_messages(path)
    )


@pytest.fixture(scope="module")
def validate_all_invalid() -> subprocess.CompletedProcess:
    return hccsim("validate", *map(str, INVALID))


def test_validate_subprocess_exits_2_without_traceback(validate_all_invalid):
    result = validate_all_invalid
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert all(line.startswith("hccsim: ") for line in result.stderr.splitlines())


@pytest.mark.parametrize("path", _ids(INVALID))
def test_validate_subprocess_prints_each_message(path, validate_all_invalid):
    lines = stderr_lines(validate_all_invalid.stderr)
    for message in expected_messages(path):
        assert f"hccsim: {path}: {message}" in lines


def test_validate_subprocess_on_all_valid_files():
    files = VALID + SHIPPED
    result = hccsim("validate", *map(str, files))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [f"{p}: ok" for p in files]


def test_validate_subprocess_on_a_mix_reports_every_problem(tmp_path):
    missing = tmp_path / "missing.yaml"
    files = [VALID[0], INVALID[0], missing, *VALID[1:3], *INVALID[1:], SHIPPED[0]]
    result = hccsim("validate", *map(str, files))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = stderr_lines(result.stderr)
    for path in INVALID:
        for message in expected_messages(path):
            assert f"hccsim: {path}: {message}" in lines
    assert f"hccsim: {missing}: no such file" in lines
    ok = result.stdout.splitlines()
    assert ok == [f"{p}: ok" for p in files if p in VALID or p in SHIPPED]


# -- (d) missing and unreadable files ---------------------------------------------------------
def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nope.yaml"
    with pytest.raises(InputError) as info:
        load(path)
    assert info.value.messages == [f"{path}: no such file"]
    assert cli.main(["validate", str(path)]) == 2
    assert capsys.readouterr().err == f"hccsim: {path}: no such file\n"


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(InputError, match="is a folder; expected a YAML file"):
        load(tmp_path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"the file is empty; expected a scenario with keys name"):
        load(path)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: café\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 9\); save the file as UTF-8"):
        load(path)


# -- (e) size cap ------------------------------------------------------------------------------
def test_file_over_the_size_cap_is_refused(tmp_path, capsys):
    path = tmp_path / "big.yaml"
    line = "# " + "x" * 98 + "\n"
    path.write_text(VALID[0].read_text("utf-8") + line * (yamlio.MAX_BYTES // len(line) + 1))
    assert path.stat().st_size > yamlio.MAX_BYTES
    message = f"{path}: larger than {yamlio.MAX_BYTES // 1000} kB; scenario files are small"
    with pytest.raises(InputError) as info:
        load(path)
    assert info.value.messages == [message]
    assert cli.main(["validate", str(path)]) == 2
    assert capsys.readouterr().err == f"hccsim: {message}\n"


def test_text_over_the_size_cap_is_refused():
    text = "name: x\ndescription: " + "y" * yamlio.MAX_BYTES + "\n"
    with pytest.raises(InputError, match="larger than 1000 kB"):
        loads(text, "big")


def test_file_at_the_size_cap_is_read(tmp_path):
    path = tmp_path / "full.yaml"
    head = VALID[0].read_text("utf-8")
    path.write_text(head + "#" * (yamlio.MAX_BYTES - len(head.encode()) - 1) + "\n")
    assert path.stat().st_size == yamlio.MAX_BYTES
    load(path)


# -- (f) alias bombs and deep nesting ----------------------------------------------------------
def _billion_laughs(levels: int = 12, width: int = 10) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_quickly(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_billion_laughs())
    start = time.perf_counter()
    with pytest.raises(InputError) as info:
        load(path)
    assert time.perf_counter() - start < 1.0
    assert info.value.messages == [
        f"{path}: line 1: YAML anchors (&l0) are not allowed; write the value out in full"
    ]


def test_alias_bomb_without_leading_anchor_is_refused_quickly():
    """Aliases alone (undefined anchors) are refused at the first one, before any expansion."""
    text = "a: [" + ", ".join(["*x"] * 100_000) + "]\n"
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"line 1: YAML aliases \(\*x\) are not allowed"):
        loads(text, "bomb")
    assert time.perf_counter() - start < 1.0


def test_deep_nesting_is_refused_quickly():
    text = "parameters: " + "[" * 10_000 + "]" * 10_000 + "\n"
    start = time.perf_counter()
    with pytest.raises(InputError, match="nesting deeper than 50 levels is not allowed"):
        loads(text, "deep")
    assert time.perf_counter() - start < 1.0


# -- (g) schema --------------------------------------------------------------------------------
def test_schema_command_prints_json_with_every_section(capsys):
    assert cli.main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert set(SECTION_KEYS) <= set(schema["properties"])
    assert set(schema["properties"]) == set(Scenario.model_fields)
    assert set(schema["required"]) == {"name", "description", "population", "cohort", "treatment"}
    assert schema["additionalProperties"] is False


# -- (i) resolved scenarios load back equal ----------------------------------------------------
@pytest.mark.parametrize("path", _ids(VALID) + _ids(SHIPPED))
def test_resolved_scenario_round_trips(path, tmp_path):
    resolved = load(path).model_copy(update={"seed": 5})
    again = loads(resolved.to_yaml(), "resolved")
    assert again == resolved
    assert again.seed == 5
    assert again.content_hash() == resolved.content_hash()
    out = tmp_path / "scenario.resolved.yaml"
    out.write_text(resolved.to_yaml(), "utf-8")
    assert load(out) == resolved
