"""``python -m verification [NAME ...]``: run the long checks (all by default)."""

from __future__ import annotations

import sys
import time

from verification import checks


def main(argv: list[str]) -> int:
    names = argv or list(checks.ALL)
    failed = []
    for name in names:
        if name not in checks.ALL:
            print(f"unknown check {name!r}; choose from {', '.join(checks.ALL)}", file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        ok, report = checks.ALL[name]()
        status = "ok" if ok else "FAILED"
        print(f"[{status}] {name} ({time.perf_counter() - t0:.1f} s)\n{report}\n")
        if not ok:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
