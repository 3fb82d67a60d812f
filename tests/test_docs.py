"""Documentation that runs: examples validate, references match the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from hccsim.analysis.schema import describe
from hccsim.simulator import parameters
from hccsim.simulator.scenario import Scenario, loads

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(), flags=re.S)


SCENARIO_BLOCKS = [
    pytest.param(block, id=f"{path.name}-{i}")
    for path in DOCS
    for i, block in enumerate(_yaml_blocks(path))
    if "population:" in block
]


def test_docs_have_scenario_examples():
    assert len(SCENARIO_BLOCKS) >= 2


@pytest.mark.parametrize("block", SCENARIO_BLOCKS)
def test_scenario_examples_in_the_docs_are_valid(block):
    loads(block, "example")


def test_cohort_table_reference_matches_the_schema():
    assert describe().strip() in (ROOT / "docs" / "cohort-tables.md").read_text()


def _field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(_field_paths(ann, f"{prefix}{name}."))
        else:
            out.append(prefix + name)
    return out


def test_every_scenario_field_is_documented():
    text = (ROOT / "docs" / "scenarios.md").read_text()
    missing = [p for p in _field_paths(Scenario) if f"`{p}`" not in text]
    assert not missing, f"docs/scenarios.md lacks {missing}"


def test_readme_gives_the_two_commands_first():
    text = (ROOT / "README.md").read_text()
    assert text.index("make demo") < text.index("## ")
    assert text.index("make test") < text.index("## ")


def test_readme_lists_every_summary_metric():
    from hccsim.analysis.summary import METRICS

    text = (ROOT / "README.md").read_text()
    assert all(f"`{m}`" in text for m in METRICS)


_SECTION_PATH = re.compile(
    r"`((?:death|tumour|policy|toxicity|afp|decompensation|status)\.[a-z_0-9]+"
    r"|labs\.[a-z_0-9]+\.[a-z_0-9]+|drugs\.[a-z_0-9]+\.[a-z_0-9.]+)`"
)


@pytest.mark.parametrize(("doc", "at_least"), [("scenarios.md", 0), ("model.md", 40)])
def test_parameter_paths_in_docs_exist(doc, at_least):
    """Every full parameter path the docs name in backticks is one `hccsim list parameters`
    prints (paths with placeholders such as `<name>` are not matched)."""
    known = set(parameters.parameter_paths())
    text = (ROOT / "docs" / doc).read_text()
    found = _SECTION_PATH.findall(text)
    assert len(found) >= at_least
    for path in found:
        assert path in known, path
