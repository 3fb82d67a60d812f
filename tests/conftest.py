"""Test configuration: the hypothesis profiles of pyproject.toml ([tool.hccsim.hypothesis]).

The profile is chosen by the HYPOTHESIS_PROFILE environment variable; ``ci`` by default.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]


def _register_profiles() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for name, options in config["tool"]["hccsim"]["hypothesis"].items():
        options = dict(options)
        if options.get("deadline") == "none":
            options["deadline"] = None
        settings.register_profile(name, **options)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_register_profiles()
