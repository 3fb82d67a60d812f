"""The narrated notebooks (notebooks/*.ipynb): each runs from top to bottom in quick mode
(``HCCSIM_QUICK=1``) without an error and shows its figures and key tables; the stored copies
carry the outputs of such a run, without errors, and stay small."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
#: Per notebook: the titles of the tables it must show, and how many figures at least.
EXPECTED = {
    "01_reproduce_anchor_study.ipynb": (
        (
            "Table 1. Baseline characteristics",
            "Best overall response on ramucirumab",
            "Medians: simulation and publication",
            "Table 2. Adverse events on the index line",
            "Table 8. ALBI score during the index line",
        ),
        5,  # KM OS, KM PFS, swimmer, medians, ALBI
    ),
    "02_sequences_after_lenvatinib.ipynb": (
        (
            "Differences from ramucirumab in survival (months)",
            "Each arm",
            "Later lines and drug exposure",
            "Precision gained by giving every arm to the same patients",
        ),
        5,  # differences, KM OS, KM PFS, later lines, time on drug
    ),
    "03_size_followup_ramucirumab_after_atezo_bev.ipynb": (
        (
            "Phase 2: power by number of patients",
            "Randomised trial: power by number of patients",
            "Deaths and patients needed for 80% power by target hazard ratio",
            "simulation and closed forms",
        ),
        3,  # phase 2 power and O/E, trial power, closed-form check
    ),
}
#: Seconds allowed for one cell in quick mode (the slowest takes well under a minute).
CELL_TIMEOUT = 600
MAX_BYTES = 1_500_000


def _outputs(nb) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _errors(nb) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in _outputs(nb) if o.output_type == "error"]


def _figures(nb) -> int:
    return sum("image/png" in o.get("data", {}) for o in _outputs(nb))


def _text(nb) -> str:
    parts = []
    for o in _outputs(nb):
        if o.output_type == "stream":
            parts.append(o.text)
        for kind in ("text/markdown", "text/html", "text/plain"):
            parts.append(str(o.get("data", {}).get(kind, "")))
    return "\n".join(parts)


def _check(nb, name: str) -> None:
    tables, figures = EXPECTED[name]
    assert not _errors(nb), f"{name}: {_errors(nb)}"
    assert _figures(nb) >= figures, f"{name}: {_figures(nb)} figures, expected >= {figures}"
    text = _text(nb)
    missing = [t for t in tables if t not in text]
    assert not missing, f"{name}: tables not shown: {missing}"


def test_every_notebook_is_listed():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stored_notebook_was_executed(name):
    path = NOTEBOOKS / name
    assert path.stat().st_size < MAX_BYTES, f"{name}: {path.stat().st_size:,} bytes"
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") is not None for c in code), (
        f"{name}: not every code cell was executed; run the notebook (HCCSIM_QUICK=1) and save it"
    )
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
        f"{name}: cells were executed out of order"
    )
    _check(nb, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_in_quick_mode(name, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("HCCSIM_QUICK", "1")
    monkeypatch.setenv("HCCSIM_NOTEBOOK_OUT", str(tmp_path))  # run folders go there
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:  # start from a clean notebook
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # imports notebooks/_quick.py
    )
    client.execute()
    _check(nb, name)
    assert any("Mode: quick" in o.get("text", "") for o in _outputs(nb)), (
        f"{name}: the notebook did not switch to quick mode"
    )
    assert any(tmp_path.iterdir()), f"{name}: nothing written to HCCSIM_NOTEBOOK_OUT"
