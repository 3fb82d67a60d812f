"""The run folder on disk: parquet parts written in chunks and committed atomically, and the
manifest that lets ``--resume`` trust what is there.

A replicate's six tables are streamed to temporary files (``.part-RRRRR.parquet.tmp``) in row
groups of a fixed number of rows, so the bytes of a part do not depend on how the patients were
batched. Only when the whole replicate is written are the six files renamed into place, and
only then is the replicate added to ``manifest.json`` (itself replaced atomically). A resume
trusts a replicate when the manifest lists it and its six parts exist; anything else is redone.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from hccsim.analysis.schema import TABLE_NAMES, arrow_schema
from hccsim.simulator.records import to_arrow
from hccsim.simulator.studies import faults

#: Rows per parquet row group (fixed, whatever the batch size).
ROW_GROUP_ROWS = 131_072
MANIFEST = "manifest.json"


def part_path(out: Path, table: str, replicate: int) -> Path:
    return out / "cohort" / table / f"part-{replicate:05d}.parquet"


def _tmp_path(out: Path, table: str, replicate: int) -> Path:
    return out / "cohort" / table / f".part-{replicate:05d}.parquet.tmp"


def write_json(path: Path, data) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


class ReplicateWriter:
    """Streams one replicate's tables to temporary parts; :meth:`commit` puts them in place."""

    def __init__(self, out: Path, replicate: int, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        self.out = out
        self.replicate = replicate
        self.rows = row_group_rows
        self._writers: dict = {}
        self._pending: dict[str, list] = {name: [] for name in TABLE_NAMES}
        self._pending_rows = dict.fromkeys(TABLE_NAMES, 0)

    def add(self, tables) -> None:
        """Append one batch (numpy columns of all six tables)."""
        for name in TABLE_NAMES:
            table = to_arrow(name, tables[name])
            if table.num_rows:
                self._pending[name].append(table)
                self._pending_rows[name] += table.num_rows
            if self._pending_rows[name] >= self.rows:
                self._flush(name, final=False)

    def _writer(self, name: str):
        import pyarrow.parquet as pq

        w = self._writers.get(name)
        if w is None:
            path = _tmp_path(self.out, name, self.replicate)
            path.parent.mkdir(parents=True, exist_ok=True)
            w = pq.ParquetWriter(path, arrow_schema(name))
            self._writers[name] = w
        return w

    def _flush(self, name: str, final: bool) -> None:
        """Write whole row groups of the pending rows (at the end: all of them)."""
        import pyarrow as pa

        writer = self._writer(name)  # every part exists, even when its table is empty
        pending = self._pending[name]
        if not pending:
            return
        table = pa.concat_tables(pending)
        full = table.num_rows if final else (table.num_rows // self.rows) * self.rows
        if full:
            writer.write_table(table.slice(0, full), row_group_size=self.rows)
        rest = table.slice(full)
        self._pending[name] = [rest] if rest.num_rows else []
        self._pending_rows[name] = rest.num_rows

    def commit(self) -> None:
        """Write what is left, close, and rename the six parts into place."""
        for i, name in enumerate(TABLE_NAMES):
            if i == 3:
                faults.check("write", self.replicate)
            self._flush(name, final=True)
            self._writers.pop(name).close()
        for i, name in enumerate(TABLE_NAMES):
            if i == 3:
                faults.check("commit", self.replicate)
            os.replace(
                _tmp_path(self.out, name, self.replicate), part_path(self.out, name, self.replicate)
            )

    def abort(self) -> None:
        """Close and delete the temporary parts (after a failure)."""
        for w in self._writers.values():
            with contextlib.suppress(Exception):  # best effort while already failing
                w.close()
        self._writers.clear()
        for name in TABLE_NAMES:
            _tmp_path(self.out, name, self.replicate).unlink(missing_ok=True)


def remove_temporaries(out: Path) -> None:
    """Delete half-written parts left by a crash (they are never trusted)."""
    folder = out / "cohort"
    if folder.is_dir():
        for tmp in folder.glob("*/.part-*.parquet.tmp"):
            tmp.unlink()


def complete_replicates(out: Path, manifest: dict) -> set[int]:
    """Replicates the manifest lists as done and whose six parts all exist."""
    done = set()
    for key in manifest.get("done", {}):
        r = int(key)
        if all(part_path(out, name, r).is_file() for name in TABLE_NAMES):
            done.add(r)
    return done
