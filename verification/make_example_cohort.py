"""Write the example cohort shipped with hccsim (``analysis/data/example_cohort/``).

    python -m verification.make_example_cohort [--out FOLDER]

40 SYNTHETIC patients simulated from the anchor scenario (``scenarios/anchor_ramucirumab.yaml``,
its seed, replicate 0), cut at the scenario's data lock (``analysis.data_cut_months``) with
``hccsim.analysis.endpoints.data_cut``, and written as plain CSV, one file per table, with a
README.md that says they are synthetic. Values are rounded as a clinic records them (days and
diameters to 0.1, albumin, bilirubin and INR to 0.01, ALBI to 0.001; see ``DECIMALS``), and
the Child-Pugh score of each lab draw is that of its rounded values.
Rounding is monotone, so every ordering the schema checks (a day on or before the last
follow-up, lines not overlapping) still holds; the script reads the folder back with
``read_cohort`` (which runs ``schema.validate``), checks that the values read are the values
written, and reports the stored Child-Pugh scores and ALBI grades that the rounded labs would
no longer give (there should be none). The same command always writes the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from hccsim.analysis import scores
from hccsim.analysis.endpoints import data_cut
from hccsim.analysis.io import read_cohort
from hccsim.analysis.schema import TABLES
from hccsim.simulator.scenario import DAYS_PER_MONTH, load
from hccsim.simulator.studies.run import simulate_replicates

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "anchor_ramucirumab.yaml"
OUT = ROOT / "analysis" / "data" / "example_cohort"
PATIENTS = 40
REPLICATE = 0

#: Decimals kept, by column name (first) or unit.
DECIMALS = {
    "inr": 2,
    "albi": 3,
    "haemoglobin_g_dl": 1,
    "days": 1,
    "mm": 1,
    "years": 1,
    "kg": 1,
    "%": 1,
    "g/dL": 2,
    "mg/dL": 2,
    "ng/mL": 1,
    "U/L": 0,
    "10^9/L": 0,
    "µmol/L": 0,
    "g/24 h": 2,
}


def simulate() -> dict[str, pd.DataFrame]:
    """The example cohort's tables, cut at the data lock, before rounding."""
    sc = load(SCENARIO)
    sc = sc.model_copy(update={"cohort": sc.cohort.model_copy(update={"size": PATIENTS})})
    [(_, tables)] = list(simulate_replicates(sc, sc.seed, [REPLICATE]))
    cut = data_cut(tables, sc.analysis.data_cut_months * DAYS_PER_MONTH)
    return {name: pd.DataFrame(cut[name]) for name in TABLES}


def rounded(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    out = {}
    for name, df in tables.items():
        df = df.copy()
        for c in TABLES[name]:
            if c.dtype != "float64":
                continue
            decimals = DECIMALS.get(c.name, DECIMALS.get(c.unit))
            if decimals is None:
                raise ValueError(f"no rounding rule for {name}.{c.name} ({c.unit!r})")
            df[c.name] = df[c.name].round(decimals) + 0.0  # + 0.0: no "-0.0" in the files
        out[name] = df
    # A clinic scores the values it records: a lab draw whose albumin rounds onto a Child-Pugh
    # threshold (3.4996 -> 3.50 g/dL) gets the score of the rounded values.
    lab = out["labs"]
    lab["child_pugh_score"] = np.asarray(
        scores.child_pugh_score(
            lab["albumin_g_dl"],
            lab["bilirubin_mg_dl"],
            lab["inr"],
            lab["ascites"],
            lab["encephalopathy"],
        ),
        dtype=np.int64,
    )
    return out


def write(tables: dict[str, pd.DataFrame], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df = df.copy()
        for c in TABLES[name]:
            if c.dtype == "bool":
                df[c.name] = np.where(df[c.name].to_numpy(dtype=bool), "true", "false")
        df.to_csv(out / f"{name}.csv", index=False, lineterminator="\n")


def score_mismatches(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Stored Child-Pugh scores and ALBI grades that the rounded values do not give."""
    found = []
    pt = tables["patients"]
    cp = scores.child_pugh_score(
        pt["albumin_g_dl"], pt["bilirubin_mg_dl"], pt["inr"], pt["ascites"], pt["encephalopathy"]
    )
    n = int(np.sum(np.asarray(cp) != pt["child_pugh_score"].to_numpy()))
    if n:
        found.append(f"patients.child_pugh_score: {n} rows differ from the rounded labs")
    grade = scores.albi_grade(pt["albi"].to_numpy())
    n = int(np.sum(np.asarray(grade) != pt["albi_grade"].to_numpy()))
    if n:
        found.append(f"patients.albi_grade: {n} rows differ from the rounded ALBI")
    lab = tables["labs"]
    cp = scores.child_pugh_score(
        lab["albumin_g_dl"],
        lab["bilirubin_mg_dl"],
        lab["inr"],
        lab["ascites"],
        lab["encephalopathy"],
    )
    n = int(np.sum(np.asarray(cp) != lab["child_pugh_score"].to_numpy()))
    if n:
        found.append(f"labs.child_pugh_score: {n} rows differ from the rounded labs")
    return found


def readme(tables: dict[str, pd.DataFrame], size: int) -> str:
    sc = load(SCENARIO)
    rows = "\n".join(f"| `{name}.csv` | {len(df)} |" for name, df in tables.items())
    pt = tables["patients"]
    return f"""\
# Example cohort: SYNTHETIC data, not real patients

**Every patient in this folder is simulated.** No row describes a real person. The tables were
generated by hccsim's simulator, and any resemblance to a real patient is chance.

The folder shows how a cohort is laid out for `hccsim.analysis.io.read_cohort` (one CSV file per
table, the columns of `docs/data-format.md`), and gives the analysis something to run on:

```python
from hccsim.analysis.io import example_cohort, read_cohort

tables = read_cohort(example_cohort())
```

How it was made: `python -m verification.make_example_cohort` simulates {len(pt)} patients of
the anchor scenario (`scenarios/anchor_ramucirumab.yaml`, seed {sc.seed}, replicate {REPLICATE}),
who start ramucirumab as their 2nd to 5th line. It cuts the tables at the scenario's data lock,
{sc.analysis.data_cut_months:g} months after the study start (patients alive then are censored on
that day), and rounds values as a clinic records them (days to 0.1, labs to 2-3 decimals). Days
count from the start of the index line (day 0); earlier lines have negative days. The same
command with the same hccsim version writes the same files.

| file | rows |
|---|---|
{rows}

Total size about {size // 1024} KB.
"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder to write (default {OUT})")
    args = parser.parse_args(argv)
    tables = rounded(simulate())
    write(tables, args.out)
    size = sum(p.stat().st_size for p in args.out.glob("*.csv"))
    (args.out / "README.md").write_text(readme(tables, size))
    cohort = read_cohort(args.out)  # raises CohortInputError when a table is invalid
    problems = list(cohort.warnings)
    for name, df in tables.items():
        try:
            pd.testing.assert_frame_equal(cohort[name], df)
        except AssertionError as exc:
            problems.append(f"{name}: read back differently: {exc}")
    problems += score_mismatches(tables)
    for name, df in tables.items():
        print(f"{name:15s} {len(df):5d} rows")
    print(f"written to {args.out} ({size / 1024:.0f} KB of CSV)")
    for p in problems:
        print(f"PROBLEM: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
