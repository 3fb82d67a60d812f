"""hccsim.simulator: virtual patients with advanced HCC through sequential systemic therapy.

See DESIGN section 1 for the layout. The command line is ``hccsim`` (``python -m
hccsim.simulator``); studies are run through :mod:`hccsim.simulator.studies`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hccsim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"
