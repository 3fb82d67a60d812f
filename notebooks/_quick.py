"""Small helpers shared by the notebooks: quick mode, shipped scenarios, output folders, the
published anchor figures and inline display of tables and PNG files.

Quick mode (``HCCSIM_QUICK=1``, as the tests run the notebooks) uses few replicates and small
sample-size grids; without it the notebooks use the scenarios' own settings.
"""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path

#: The repository root when the notebooks run from a checkout (None for a copied notebook).
_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent if (_HERE.parent / "pyproject.toml").is_file() else None

QUICK = os.environ.get("HCCSIM_QUICK", "").strip() not in ("", "0")

#: At most two worker processes (DESIGN section 10; results do not depend on the number).
JOBS = 2


def pick(full, quick):
    """``quick`` in quick mode, else ``full``."""
    return quick if QUICK else full


def scenario_path(file_name: str) -> Path:
    """A shipped scenario: ``scenarios/<file_name>`` of the checkout, else the installed copy."""
    if ROOT is not None and (ROOT / "scenarios" / file_name).is_file():
        return ROOT / "scenarios" / file_name
    return Path(str(resources.files("hccsim.scenarios") / file_name))


def output_folder(name: str) -> Path:
    """Where a notebook writes its run folders: ``$HCCSIM_NOTEBOOK_OUT/<name>``, else
    ``results/notebooks/<name>`` of the checkout (git-ignored), else a temporary folder."""
    if os.environ.get("HCCSIM_NOTEBOOK_OUT"):
        out = Path(os.environ["HCCSIM_NOTEBOOK_OUT"]) / name
    elif ROOT is not None:
        out = ROOT / "results" / "notebooks" / name
    else:
        out = Path(tempfile.mkdtemp(prefix=f"hccsim-{name}-"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def shown_path(path: Path) -> str:
    """``path`` relative to the checkout when it lies inside it (for printing)."""
    if ROOT is not None:
        try:
            return str(Path(path).resolve().relative_to(ROOT))
        except ValueError:
            pass
    return str(path)


def targets_path() -> Path | None:
    """The calibration targets file: ``$HCCSIM_TARGETS``, else ``calibration/targets.yaml`` in
    the checkout or beside it (``../shared/calibration``); None when none is found."""
    candidates = []
    if os.environ.get("HCCSIM_TARGETS"):
        candidates.append(Path(os.environ["HCCSIM_TARGETS"]))
    if ROOT is not None:
        candidates += [
            ROOT / "calibration" / "targets.yaml",
            ROOT.parent / "shared" / "calibration" / "targets.yaml",
        ]
    return next((p for p in candidates if p.is_file()), None)


def anchor_targets() -> dict | None:
    """The ``anchor_study`` block of the targets file, or None when the file is not found."""
    import yaml

    path = targets_path()
    if path is None:
        return None
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)["anchor_study"]


def show_table(df, title: str | None = None, note: str | None = None) -> None:
    """Display a table with its title above and its note below (Markdown)."""
    from IPython.display import Markdown, display

    title = title if title is not None else df.attrs.get("title")
    if title:
        display(Markdown(f"**{title}**"))
    styled = df.style.hide(axis="index").format(escape="html").format_index(escape="html", axis=1)
    display(styled if len(df) else df)
    note = note if note is not None else df.attrs.get("note")
    if note:
        display(Markdown(f"<small>{note}</small>"))


def show_png(path, width: int = 720) -> None:
    """Display a PNG file written by hccsim inline."""
    from IPython.display import Image, display

    display(Image(filename=str(path), width=width))
