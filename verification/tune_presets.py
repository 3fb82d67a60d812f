"""Tune the liver-function marginals of a preset so its *derived* shares match their targets.

Child-Pugh and ALBI are derived, never drawn, so a preset's albumin, bilirubin and ascites
marginals are chosen to reproduce the published Child-Pugh shares and median ALBI under the
default copula. This script does that by Nelder-Mead on fixed draws (common random numbers) and
prints the values to write into the preset. It is a tool for preset authors, not part of a run.

    python -m verification.tune_presets anchor_ramucirumab --cp 17 13 7 --albi -2.27 [--afp 1965] [--age 73]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.optimize import brentq, minimize

from hccsim.simulator import cohort


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("preset")
    ap.add_argument(
        "--cp", nargs=3, type=float, required=True, help="counts of Child-Pugh 5, 6, >=7"
    )
    ap.add_argument("--albi", type=float, required=True, help="median ALBI")
    ap.add_argument("--afp", type=float, help="median AFP after truncation")
    ap.add_argument("--age", type=float, help="median age after truncation")
    ap.add_argument("--n", type=int, default=60_000)
    args = ap.parse_args(argv)
    base = cohort.presets()[args.preset]
    z = np.random.default_rng(20261125).standard_normal((args.n, cohort.N_DRAWN))
    target = np.array(args.cp) / sum(args.cp)

    def preset(x):
        alb, bil, asc = x
        asc = min(max(asc, 0.0), 0.6)
        over = {
            "albumin_g_dl": {"mean": float(alb)},
            "bilirubin_mg_dl": {"median": float(max(bil, 0.25))},
        }
        p = cohort.apply_overrides(base, over)
        data = p.model_dump()
        data["marginals"]["ascites"]["weights"] = {0: 1 - asc, 1: asc * 0.85, 2: asc * 0.15}
        return cohort.Preset.model_validate(data)

    def loss(x):
        c = cohort.draw_candidates(preset(x), z, False)
        cp = np.minimum(c["child_pugh_score"], 7)
        shares = np.array([(cp == 5).mean(), (cp == 6).mean(), (cp == 7).mean()])
        return float(np.sum((shares - target) ** 2) + (np.median(c["albi"]) - args.albi) ** 2 / 4)

    m = base.marginals
    asc0 = 1 - m["ascites"].weights[0] / sum(m["ascites"].weights.values())
    res = minimize(
        loss,
        [m["albumin_g_dl"].mean, m["bilirubin_mg_dl"].median, asc0],
        method="Nelder-Mead",
        options={"xatol": 1e-3, "fatol": 1e-7, "maxiter": 300},
    )
    best = preset(res.x)
    c = cohort.draw_candidates(best, z, False)
    cp = np.minimum(c["child_pugh_score"], 7)
    print(
        f"albumin mean {res.x[0]:.3f}; bilirubin median {max(res.x[1], 0.25):.3f}; ascites weights "
        f"{ {k: round(v, 4) for k, v in best.marginals['ascites'].weights.items()} }"
    )
    print(
        f"-> Child-Pugh 5/6/>=7 {[(cp == k).mean().round(3) for k in (5, 6, 7)]} (target {target.round(3)}), "
        f"median ALBI {np.median(c['albi']):.3f} (target {args.albi})"
    )
    for cov, goal in (("afp_ng_ml", args.afp), ("age", args.age)):
        if goal is None:
            continue
        key = "median" if cov == "afp_ng_ml" else "mean"

        def gap(v, cov=cov, key=key, goal=goal):
            p = cohort.apply_overrides(best, {cov: {key: float(v)}})
            return float(np.median(cohort.draw_candidates(p, z, False)[cov]) - goal)

        lo, hi = (goal / 20, goal * 5) if cov == "afp_ng_ml" else (goal - 15, goal + 15)
        print(f"{cov} {key} {brentq(gap, lo, hi, xtol=1e-3):.2f} gives median {goal}")


if __name__ == "__main__":
    main()
