"""Deterministic fault injection for tests of failure and ``--resume`` (never set in real runs).

``HCCSIM_FAULT`` holds comma-separated ``stage:replicate`` items:

- ``simulate:K``: the task that simulates the first batch of replicate K raises
  :class:`InjectedFault` (in the worker, like any bug or lost worker would);
- ``write:K``: the client process dies (``os._exit``) while replicate K is half written (three
  of its six temporary parts written);
- ``commit:K``: the client process dies after renaming three of replicate K's six parts.

A process that dies runs no cleanup, as after a power cut or an out-of-memory kill.
"""

from __future__ import annotations

import os

ENV = "HCCSIM_FAULT"
CRASH_STATUS = 70


class InjectedFault(RuntimeError):
    """A failure injected on purpose through HCCSIM_FAULT."""


def check(stage: str, replicate: int) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    for item in spec.split(","):
        name, _, rep = item.strip().partition(":")
        if name == stage and rep.strip().isdigit() and int(rep) == replicate:
            if stage == "simulate":
                raise InjectedFault(f"injected fault while simulating replicate {replicate}")
            os._exit(CRASH_STATUS)
