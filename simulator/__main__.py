"""``python -m hccsim.simulator`` is the ``hccsim`` command."""

from hccsim.simulator.cli import main

raise SystemExit(main())
