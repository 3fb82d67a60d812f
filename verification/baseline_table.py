"""The anchor preset's simulated baseline table next to the published one.

    python -m verification.baseline_table [--n 100000]

Draws patients exactly as a run does (each from its own stream, re-drawn until eligible) and
prints each row of the anchor study's Table 1 (targets.yaml, counts of 37) with the simulated
share or median.
"""

from __future__ import annotations

import argparse

import numpy as np

from hccsim.simulator import cohort
from hccsim.simulator.streams import PatientStreams

ROWS = [
    ("male", 31, lambda a: a["male"]),
    ("age >= 73", 19, lambda a: a["age"] >= 73),
    ("HBsAg positive", 8, lambda a: a["hbv"]),
    ("HBV DNA suppressed", 7, lambda a: a["hbv_dna_suppressed"]),
    ("HCV antibody positive", 14, lambda a: a["hcv"]),
    ("HCV SVR", 11, lambda a: a["hcv_svr"]),
    ("alcohol abuse", 6, lambda a: a["alcohol"]),
    ("smoking history", 23, lambda a: a["smoking"]),
    ("weight < 60 kg", 18, lambda a: a["weight_kg"] < 60),
    ("hypertension", 24, lambda a: a["hypertension"]),
    ("diabetes", 12, lambda a: a["diabetes"]),
    ("hyperlipidaemia", 11, lambda a: a["hyperlipidemia"]),
    ("liver cirrhosis", 12, lambda a: a["cirrhosis"]),
    ("ECOG 0", 24, lambda a: a["ecog"] == 0),
    ("ECOG <= 1", 36, lambda a: a["ecog"] <= 1),
    ("Child-Pugh 5", 17, lambda a: a["child_pugh_score"] == 5),
    ("Child-Pugh 6", 13, lambda a: a["child_pugh_score"] == 6),
    ("Child-Pugh >= 7", 7, lambda a: a["child_pugh_score"] >= 7),
    ("Child-Pugh class A", 30, lambda a: a["child_pugh_class"] == "A"),
    ("intrahepatic lesions >= 8", 21, lambda a: a["intrahepatic_lesions"] >= 8),
    ("largest lesion > 50 mm", 21, lambda a: a["max_lesion_mm"] > 50),
    ("tumour occupation >= 50%", 3, lambda a: a["occupation_pct"] >= 50),
    ("macrovascular invasion", 8, lambda a: a["mvi"]),
    ("extrahepatic metastasis", 18, lambda a: a["ehm"]),
    ("BCLC C", 21, lambda a: a["bclc"] == "C"),
    ("differentiation moderate", 21, lambda a: a["differentiation"] == "moderate"),
    ("differentiation unknown", 11, lambda a: a["differentiation"] == "unknown"),
    (
        "any prior local therapy",
        32,
        lambda a: a["prior_resection"] | a["prior_ablation"] | a["prior_tace"],
    ),
    ("prior resection", 10, lambda a: a["prior_resection"]),
    ("prior ablation", 13, lambda a: a["prior_ablation"]),
    ("prior TACE", 28, lambda a: a["prior_tace"]),
    ("ramucirumab in line 2", 13, lambda a: a["index_line"] == 2),
    ("ramucirumab in line 3", 14, lambda a: a["index_line"] == 3),
    ("ramucirumab in line 4", 8, lambda a: a["index_line"] == 4),
    ("ramucirumab in line 5", 2, lambda a: a["index_line"] == 5),
]
MEDIANS = [
    ("age (years)", 73, "age"),
    ("AFP (ng/mL)", 1965.0, "afp_ng_ml"),
    ("ALBI", -2.27, "albi"),
]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args(argv)
    preset = cohort.presets()["anchor_ramucirumab"]
    gens = [PatientStreams(20261125, 0, i).biology for i in range(args.n)]
    a = cohort.draw_eligible(preset, preset.eligibility, gens, first_line=False)
    print(f"| row | published (of 37) | published % | simulated % (n = {args.n:,}) |")
    print("|---|---|---|---|")
    for name, count, f in ROWS:
        print(f"| {name} | {count} | {100 * count / 37:.1f} | {100 * np.mean(f(a)):.1f} |")
    for name, value, col in MEDIANS:
        print(f"| median {name} | {value} | | {np.median(a[col]):.4g} |")


if __name__ == "__main__":
    main()
