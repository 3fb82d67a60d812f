"""Fuzzed input: random YAML text and random mutations of every valid scenario.

Each outcome must be a valid scenario or the loader's own error (InputError) with a message
that names the source, within a time bound; never another exception. CI runs a fixed,
derandomized set; a longer campaign:

    HYPOTHESIS_PROFILE=dev HCCSIM_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz_scenarios.py
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hccsim.simulator.errors import InputError
from hccsim.simulator.scenario import Scenario, loads, validate_data

ROOT = Path(__file__).resolve().parents[1]
VALID = sorted((ROOT / "tests" / "scenarios" / "valid").glob("*.yaml")) + sorted(
    (ROOT / "scenarios").glob("*.yaml")
)
TEXTS = [p.read_text() for p in VALID]
DATA = [yaml.safe_load(t) for t in TEXTS]
TIME_BOUND = 2.0  # seconds per load; real files load in milliseconds
EXAMPLES = int(os.environ.get("HCCSIM_FUZZ_EXAMPLES", "150"))

# YAML-ish vocabulary so that random text often parses and reaches the validator.
TOKENS = st.sampled_from(
    [
        ": ",
        "\n",
        "  ",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&a ",
        "*a",
        "!!python/object ",
        "'",
        '"',
        "#",
        "name",
        "seed",
        "cohort",
        "size",
        "population",
        "preset",
        "treatment",
        "sequence",
        "ramucirumab",
        "anchor_ramucirumab",
        "observation",
        "imaging_weeks",
        "parameters",
        "death",
        "1",
        "-4",
        "1e400",
        ".nan",
        "true",
        "null",
        "~",
        "2023-01-01",
        "\t",
        "? ",
        "|",
        ">",
        "%",
    ]
)


def _check(load) -> Scenario | None:
    t0 = time.perf_counter()
    try:
        result = load()
    except InputError as exc:
        assert exc.messages and all(m.startswith("fuzz") for m in exc.messages), exc.messages
        assert all(len(m) < 4000 for m in exc.messages)  # long values are shortened
        result = None
    assert time.perf_counter() - t0 < TIME_BOUND
    return result


@given(st.text(max_size=400))
@settings(max_examples=EXAMPLES)
def test_random_text(text):
    _check(lambda: loads(text, "fuzz"))


@given(st.lists(TOKENS, max_size=60).map("".join))
@settings(max_examples=EXAMPLES)
def test_random_yaml_like_text(text):
    _check(lambda: loads(text, "fuzz"))


@given(
    st.sampled_from(range(len(TEXTS))),
    st.lists(
        st.tuples(
            st.floats(0, 1), st.sampled_from(["insert", "delete", "replace"]), st.characters()
        ),
        max_size=8,
    ),
)
@settings(max_examples=EXAMPLES)
def test_text_mutations_of_valid_scenarios(which, edits):
    text = TEXTS[which]
    for where, kind, char in edits:
        i = int(where * len(text))
        if kind == "insert":
            text = text[:i] + char + text[i:]
        elif kind == "delete":
            text = text[:i] + text[i + 1 :]
        else:
            text = text[:i] + char + text[i + 1 :]
    _check(lambda: loads(text, "fuzz"))


VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True),
        st.text(max_size=30),
        st.sampled_from(["ramucirumab", "anchor_ramucirumab", "mrecist", "first_line"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=10,
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _mutate(data, path, op, value, key):
    data = copy.deepcopy(data)
    if not path:
        return value if op == "replace" else data
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if op == "replace":
        parent[last] = value
    elif op == "delete":
        del parent[last]
    elif isinstance(parent, dict):
        parent[key] = value
    else:
        parent.insert(last, value)
    return data


@given(st.data())
@settings(max_examples=2 * EXAMPLES)
def test_structural_mutations_of_valid_scenarios(data):
    base = DATA[data.draw(st.sampled_from(range(len(DATA))))]
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(base))
        path = data.draw(st.sampled_from(paths))
        op = data.draw(st.sampled_from(["replace", "delete", "add"]))
        base = _mutate(base, path, op, data.draw(VALUES), data.draw(st.text(max_size=12)))
    result = _check(lambda: validate_data(base, "fuzz"))
    if result is not None:
        # A mutation that validates is a real scenario: it round-trips through its YAML.
        assert loads(result.to_yaml(), "fuzz") == result
