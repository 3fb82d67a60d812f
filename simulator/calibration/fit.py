"""``hccsim calibrate``: staged simulated method of moments under common random numbers.

Stages (DESIGN section 11):

0. fixed from the literature or as priors, not fitted: measurement error, growth variability,
   the between-patient spread of the pace of resistance, the link of new-lesion seeding to
   growth, background mortality (``params/default.yaml`` sources).
1. ``natural_history``: untreated growth, new-lesion rate, the baseline death rate and the
   share of spontaneous regressions (responses on any regimen, placebo included), from the
   placebo arms (SHARP, Asia-Pacific, RESORCE, CELESTIAL, KEYNOTE-240).
2. one stage per drug, in the order of :data:`DRUG_ORDER`, from the medians, landmarks and
   response rates of that drug's arms: kill rate, resistance rate and growth inhibition (and the
   necrosis rate where an mRECIST response is a target); for an immunotherapy the responder
   share and kill rate, the growth inhibition and the resistance rate. The sorafenib stage also
   fits the calendar-era effect on death (``death.era_hazard_ratio_per_decade``): its arms were
   enrolled from 2005 (SHARP) to 2019 (HIMALAYA, IMbrave150).
3. ``safety``: adverse-event hazards by a damped fixed point on the shares of the AE tables.
4. ``tolerability``: the share of grade 2 onsets of the oral kinase inhibitors acted on and the
   chance of withdrawal after a severe onset, from the dose reductions and the
   treatment-related discontinuations (Nelder-Mead, as stages 1-2).

Each stage minimises ``sum ((simulated - published) / se)^2`` over its fitted targets, the
simulated statistic being taken on large pools simulated with one seed (common random numbers:
the loss is a deterministic function of the parameters). A median is compared on the survival
scale at the published median: the distance is zero while the Kaplan-Meier curve crosses 0.5
within the rounding of the published figure (half a unit of its last digit, at least half a
day) and otherwise ``S - 0.5`` at the near edge of that interval (survival above 0.5 after it,
or below 0.5 before it), with the standard error carried to that scale (``0.5 ln 2 x se`` of
the log median, exponential approximation). The trial's curve stood at 0.5 there, whether the
median fell on a scan day or between scans (deaths and off-schedule scans), and the check
compares the median itself, so the fit pins the crossing to the published day rather than to
a window around it. A pool simulated at the parameters behind the published median gives
exactly zero, and a median that is not reached in the pool still gives a finite distance.
Hazard ratios are never fitted. Nelder-Mead (derivative-free) works on log-transformed, box-bounded parameters.

Every evaluation is appended to a checkpoint file; a rerun with the same seed and targets
replays the recorded evaluations (the optimiser is deterministic) and goes on from where the
interrupted run stopped.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hccsim.simulator import parameters
from hccsim.simulator.calibration import pools
from hccsim.simulator.calibration.targets import Target
from hccsim.simulator.engine import DAYS_PER_MONTH

#: The drug whose stage also fits the calendar-era effect on death.
ERA_DRUG = "sorafenib"
#: Drugs fitted in stage 2, in this order (sorafenib first: it is a later line elsewhere).
DRUG_ORDER = (
    "sorafenib",
    "lenvatinib",
    "regorafenib",
    "cabozantinib",
    "atezolizumab_bevacizumab",
    "durvalumab_tremelimumab",
    "durvalumab",
    "pembrolizumab",
    "nivolumab",
    "ramucirumab",
)
#: Slope of S(t) against log t at the median, exponential approximation: 0.5 ln 2.
SURVIVAL_SLOPE = 0.5 * math.log(2.0)
#: The smallest half-width of a median's interval: trials date events to the day.
MEDIAN_MIN_HALF_DAYS = 0.5
#: Version of the loss, in every checkpoint's header: a checkpoint recorded under another
#: definition of the distances is refused rather than replayed (2: medians at the published
#: figure's rounding; 1: within half an imaging interval, or a week for OS).
LOSS_VERSION = 2
#: A fitted parameter starts at least this share of its log range inside its bounds.
START_MARGIN = 0.05


@dataclass(frozen=True)
class Param:
    path: str
    low: float
    high: float

    def to_x(self, value: float, margin: float = 1e-4) -> float:
        """Box-bounded log value -> unbounded coordinate (logit on the log scale).

        A value within ``margin`` (a share of the log range) of a bound, or outside, is moved
        to that distance: the optimiser starts where a step of its simplex still moves the
        value (a start at 0, say a growth inhibition not yet given, would be stuck at the bound).
        """
        lo, hi = math.log(self.low), math.log(self.high)
        u = (math.log(max(value, 1e-300)) - lo) / (hi - lo)
        u = min(max(u, margin), 1.0 - margin)
        return math.log(u / (1.0 - u))

    def from_x(self, x: float) -> float:
        lo, hi = math.log(self.low), math.log(self.high)
        u = 1.0 / (1.0 + math.exp(-x))
        return math.exp(lo + u * (hi - lo))


@dataclass(frozen=True)
class Stage:
    name: str
    params: tuple[Param, ...]
    target_ids: tuple[str, ...]
    description: str
    max_evaluations: int = 60


@dataclass
class StageResult:
    name: str
    values: dict[str, float]
    loss_start: float
    loss: float
    evaluations: int
    seconds: float
    per_target: dict[str, float] = field(default_factory=dict)

    def record(self) -> dict:
        """What a checkpoint keeps of a finished stage (replayed by :func:`calibrate`)."""
        return {
            "values": self.values,
            "loss": self.loss,
            "loss_start": self.loss_start,
            "evaluations": self.evaluations,
        }


def _index_drug(t: Target) -> str:
    return "ramucirumab" if t.study == "anchor_study" else t.arms[0]


def _efficacy(t: Target) -> bool:
    return t.fitted and (
        t.statistic in ("median", "landmark")
        or (
            t.statistic == "share" and t.endpoint.split(":")[0].startswith(("orr_", "dcr_", "bor_"))
        )
    )


def _natural_history(t: Target) -> bool:
    """Placebo efficacy targets, plus the placebo share that stopped for an adverse event.

    On placebo almost every such stop is clinical decline (ECOG 3 ends a line), so that share
    sets the pace of decline, ``status.worsening_rate_per_month``.
    """
    if _index_drug(t) != "placebo" or not t.fitted:
        return False
    return _efficacy(t) or (t.statistic == "share" and t.endpoint == "discontinued_any_ae")


def build_stages(targets: Sequence[Target], drugs: Sequence[str] = DRUG_ORDER) -> list[Stage]:
    defaults = parameters.default_flat()
    out = [
        Stage(
            "natural_history",
            (
                Param("tumour.growth_median_per_day", 0.0008, 0.012),
                Param("tumour.new_lesion_rate_per_month", 0.05, 4.0),
                Param("death.base_rate_per_month", 0.0005, 0.05),
                Param("tumour.spontaneous_response_fraction", 0.001, 0.2),
                Param("status.worsening_rate_per_month", 0.005, 1.0),
            ),
            tuple(t.id for t in targets if _natural_history(t)),
            "untreated growth, new lesions, baseline death, the share of spontaneous "
            "regressions and the pace of clinical decline (ECOG) from the placebo arms",
            max_evaluations=90,
        )
    ]
    for drug in drugs:
        ids = tuple(t.id for t in targets if _efficacy(t) and _index_drug(t) == drug)
        if not ids:
            continue
        inhibition = Param(f"drugs.{drug}.growth_inhibition", 0.01, 1.95)
        resistance = Param(f"drugs.{drug}.resistance_rate_per_day", 1e-3, 0.2)
        if defaults.get(f"drugs.{drug}.responder_fraction") is not None:
            # Immunotherapy: the responders' share and kill rate make the responses; the
            # growth inhibition and resistance of the base rates (everyone) shape PFS.
            ps = [
                Param(f"drugs.{drug}.responder_fraction", 0.01, 0.8),
                Param(f"drugs.{drug}.responder_kill_rate_per_day", 1e-3, 0.08),
                inhibition,
                resistance,
            ]
        else:
            ps = [Param(f"drugs.{drug}.kill_rate_per_day", 1e-4, 0.05), resistance, inhibition]
            if any(
                "mrecist" in t.endpoint and t.statistic == "share" for t in _by_id(targets, ids)
            ):
                ps.append(Param(f"drugs.{drug}.necrosis_rate_per_day", 1e-3, 0.2))
        if drug == ERA_DRUG:
            # The era effect on death: the sorafenib arms span 2005-2019 (SHARP to HIMALAYA),
            # the widest spread of enrolment years of any one drug.
            ps.append(Param("death.era_hazard_ratio_per_decade", 0.4, 1.3))
        names = ", ".join(p.path.rsplit(".", 1)[1] for p in ps)
        out.append(
            Stage(
                f"drug_{drug}",
                tuple(ps),
                ids,
                f"{drug}: {names} from its arms",
                max_evaluations=min(60, 15 * len(ps)),
            )
        )
    tolerability = tuple(t.id for t in targets if t.fitted and t.endpoint in TOLERABILITY_ENDPOINTS)
    safety = tuple(safety_parameters(targets))
    if safety:
        out.append(
            Stage(
                SAFETY_STAGE,
                (),
                safety,
                "adverse-event hazards and lab effects from the AE tables (damped fixed point)",
                max_evaluations=SAFETY_ITERATIONS,
            )
        )
    if tolerability:
        out.append(
            Stage(
                TOLERABILITY_STAGE,
                (
                    Param("toxicity.grade2_action_probability", 0.01, 0.95),
                    Param("toxicity.withdraw_probability", 0.005, 0.8),
                ),
                tolerability,
                "intolerable grade 2 share and withdrawal after severe events, from the dose "
                "reductions and treatment-related discontinuations",
                max_evaluations=30,
            )
        )
    return out


def _by_id(targets: Sequence[Target], ids) -> list[Target]:
    want = set(ids)
    return [t for t in targets if t.id in want]


def distance(t: Target, arms: Mapping[str, Mapping]) -> float:
    """Standardised distance of one target on whole pools (see the module docstring)."""
    if t.statistic == "median":
        e = arms[t.arms[0]][t.endpoint]
        day = t.value * DAYS_PER_MONTH
        half = max(t.rounding * DAYS_PER_MONTH, MEDIAN_MIN_HALF_DAYS)
        before, after = pools.km_at(e, day - half), pools.km_at(e, day + half)
        # not the mean of the two: a scan-day drop from 0.95 to 0.3 would not sit at 0.5
        s = after if after > 0.5 else (before if before < 0.5 else 0.5)
        return (s - 0.5) / (SURVIVAL_SLOPE * t.se)
    sim = pools.statistic(t, arms)
    if not math.isfinite(sim):
        return 10.0
    if t.scale == "log":
        return (math.log(max(sim, 1e-9)) - math.log(t.value)) / t.se
    return (sim - t.value) / t.se


def loss_of(
    ts: Sequence[Target], arm_pools: Mapping[tuple[str, str], Mapping]
) -> tuple[float, dict[str, float]]:
    per = {}
    for t in ts:
        arms = {a: arm_pools[(t.study, a)] for a in t.arms}
        per[t.id] = distance(t, arms)
    return float(sum(d * d for d in per.values())), per


class Checkpoint:
    """Evaluations appended as JSON lines; reloaded to replay an interrupted calibration."""

    def __init__(self, path: Path | None, header: dict):
        self.path = path
        self.memo: dict[tuple, dict] = {}
        self.done: dict[str, dict] = {}
        if path is None:
            return
        if path.exists():
            lines = path.read_text("utf-8").splitlines()
            first = json.loads(lines[0]) if lines else {}
            if first.get("header") != header:
                raise ValueError(
                    f"{path}: checkpoint of another calibration (seed, targets or settings "
                    "differ); remove it or choose another --out"
                )
            for line in lines[1:]:
                rec = json.loads(line)
                if "done" in rec:
                    self.done[rec["stage"]] = rec
                else:
                    self.memo[(rec["stage"], tuple(rec["x"]))] = rec
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"header": header}) + "\n", "utf-8")

    def _append(self, rec: dict) -> None:
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")

    def get(self, stage: str, x: tuple) -> dict | None:
        return self.memo.get((stage, x))

    def put(self, stage: str, x: tuple, rec: dict) -> None:
        rec = {"stage": stage, "x": list(x), **rec}
        self.memo[(stage, x)] = rec
        self._append(rec)

    def finish(self, stage: str, rec: dict) -> None:
        rec = {"stage": stage, "done": True, **rec}
        self.done[stage] = rec
        self._append(rec)


def _key(x: np.ndarray) -> tuple:
    return tuple(float(f"{v:.10g}") for v in x)


def run_stage(
    stage: Stage,
    targets: Sequence[Target],
    current: dict[str, float],
    *,
    sizes: Mapping[tuple[str, str], int],
    seed: int,
    run_map,
    checkpoint: Checkpoint,
    folder: Path | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> StageResult:
    """Minimise the stage's loss from ``current`` (flat parameter overrides)."""
    from scipy.optimize import minimize

    ts = _by_id(targets, stage.target_ids)
    studies = sorted({t.study for t in ts})
    needed = {(t.study, a) for t in ts for a in t.arms}
    stage_sizes = {k: v for k, v in sizes.items() if k in needed}
    defaults = parameters.default_flat()
    start = np.array(
        [p.to_x(current.get(p.path, defaults[p.path]) or 0.0, START_MARGIN) for p in stage.params],
        dtype=float,
    )
    t0 = time.perf_counter()
    count = {"n": 0}
    best = {"loss": math.inf}

    def evaluate(x: np.ndarray) -> float:
        key = _key(x)
        rec = checkpoint.get(stage.name, key)
        if rec is None:
            values = {p.path: p.from_x(v) for p, v in zip(stage.params, key, strict=True)}
            arm_pools = pools.simulate_pools(
                studies, stage_sizes, {**current, **values}, seed, run_map, folder
            )
            loss, per = loss_of(ts, arm_pools)
            rec = {"loss": loss, "values": values, "per_target": per}
            checkpoint.put(stage.name, key, rec)
        count["n"] += 1
        if rec["loss"] < best["loss"]:
            best.update(rec)
        log(
            f"  {stage.name} evaluation {count['n']}: loss {rec['loss']:.3f} "
            f"(best {best['loss']:.3f}) "
            + ", ".join(f"{p.rsplit('.', 1)[1]}={v:.4g}" for p, v in rec["values"].items())
        )
        return float(rec["loss"])

    loss_start = evaluate(start)
    dim = len(start)
    simplex = np.vstack([start] + [start + 0.6 * np.eye(dim)[i] for i in range(dim)])
    minimize(
        evaluate,
        start,
        method="Nelder-Mead",
        options={
            "initial_simplex": simplex,
            "maxfev": stage.max_evaluations,
            "xatol": 0.02,
            "fatol": 0.05,
        },
    )
    result = StageResult(
        stage.name,
        dict(best["values"]),
        loss_start,
        float(best["loss"]),
        count["n"],
        time.perf_counter() - t0,
        dict(best["per_target"]),
    )
    checkpoint.finish(
        stage.name,
        result.record(),
    )
    return result


def calibrate(
    targets: Sequence[Target],
    stages: Sequence[Stage],
    *,
    sizes: Mapping[tuple[str, str], int],
    seed: int,
    run_map,
    checkpoint: Checkpoint,
    folder: Path | None = None,
    start: Mapping[str, float] | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> tuple[dict[str, float], list[StageResult]]:
    """Run ``stages`` in order; each starts from the values of the previous ones."""
    current = dict(start or {})
    results = []
    for stage in stages:
        done = checkpoint.done.get(stage.name)
        if done is not None:
            log(f"stage {stage.name}: done in the checkpoint (loss {done['loss']:.3f})")
            current.update(done["values"])
            results.append(
                StageResult(
                    stage.name,
                    done["values"],
                    done["loss_start"],
                    done["loss"],
                    done.get("evaluations", 0),  # as recorded (older checkpoints: 0)
                    0.0,
                )
            )
            continue
        log(f"stage {stage.name}: {stage.description} ({len(stage.target_ids)} targets)")
        if stage.name == SAFETY_STAGE:
            r = run_safety(
                targets,
                current,
                sizes=sizes,
                seed=seed,
                run_map=run_map,
                checkpoint=checkpoint,
                folder=folder,
                iterations=stage.max_evaluations,
                log=log,
            )
        else:
            r = run_stage(
                stage,
                targets,
                current,
                sizes=sizes,
                seed=seed,
                run_map=run_map,
                checkpoint=checkpoint,
                folder=folder,
                log=log,
            )
        log(f"stage {stage.name}: loss {r.loss_start:.3f} -> {r.loss:.3f} in {r.seconds:.0f} s")
        current.update(r.values)
        results.append(r)
    return current, results


def stderr_log(quiet: bool) -> Callable[[str], None]:
    if quiet:
        return lambda s: None
    return lambda s: print(s, file=sys.stderr, flush=True)


# --- stage 3: adverse events ------------------------------------------------------------------

SAFETY_STAGE = "safety"
#: Fitted after the AE hazards: how often the AEs lead to a reduction or a withdrawal.
TOLERABILITY_STAGE = "tolerability"
TOLERABILITY_ENDPOINTS = ("dose_reduction", "discontinued_for_ae")
SAFETY_ITERATIONS = 4


def safety_parameters(targets: Sequence[Target]) -> dict[str, tuple[str, str]]:
    """``{target id: (parameter path, kind)}`` for every fitted AE-share target that one
    parameter governs: an event-based term's hazard (kind ``rate``) or, for a lab-based term,
    the drug's monthly effect on that analyte (kind ``lab``)."""
    from hccsim.analysis.ctcae import LAB_TERMS

    defaults = parameters.default_flat()
    out = {}
    for t in targets:
        if not (t.fitted and t.statistic == "share" and t.endpoint.startswith("ae_")):
            continue
        if t.value <= 0.0:
            continue  # 0 of n: nothing to match multiplicatively; judged as a check
        drug, term = _index_drug(t), t.endpoint.split(":")[1]
        rate = f"drugs.{drug}.ae.{term}.rate_per_month"
        if rate in defaults:
            out[t.id] = (rate, "rate")
        elif term in LAB_TERMS:
            lab = f"drugs.{drug}.lab_effects.{LAB_TERMS[term].column}"
            if defaults.get(lab):
                out[t.id] = (lab, "lab")
    return out


def _safety_ratio(target: float, sim: float, kind: str) -> float:
    """Multiplier moving ``sim`` towards ``target``: on the cumulative-hazard scale
    ``-ln(1 - p)`` for a hazard; damped (power 0.7) for a lab effect, whose link to the share
    is monotone but not proportional. Bounded to [1/4, 4] per iteration."""
    h = lambda p: -math.log(1.0 - min(p, 0.999))  # noqa: E731
    if sim <= 0.0:
        return 4.0
    r = h(target) / h(sim)
    if kind == "lab":
        r = r**0.7
    return min(max(r, 0.25), 4.0)


def run_safety(
    targets: Sequence[Target],
    current: dict[str, float],
    *,
    sizes: Mapping[tuple[str, str], int],
    seed: int,
    run_map,
    checkpoint: Checkpoint,
    folder: Path | None = None,
    iterations: int = SAFETY_ITERATIONS,
    log: Callable[[str], None] = lambda s: None,
) -> StageResult:
    """Damped fixed point on the AE shares under common random numbers (every iteration
    simulates the same patients); the values of the iteration with the smallest loss win."""
    mapping = safety_parameters(targets)
    ts = _by_id(targets, mapping)
    if not ts:
        return StageResult(SAFETY_STAGE, {}, 0.0, 0.0, 0, 0.0)
    defaults = parameters.default_flat()
    values = {p: current.get(p, defaults[p]) for p, _ in mapping.values()}
    studies = sorted({t.study for t in ts})
    needed = {(t.study, a) for t in ts for a in t.arms}
    stage_sizes = {k: v for k, v in sizes.items() if k in needed}
    t0 = time.perf_counter()
    best: dict = {"loss": math.inf}
    first = None
    for it in range(iterations):
        key = (it, *_key(np.array(list(values.values()))))
        rec = checkpoint.get(SAFETY_STAGE, key)
        if rec is None:
            arm_pools = pools.simulate_pools(
                studies, stage_sizes, {**current, **values}, seed, run_map, folder
            )
            loss, per = loss_of(ts, arm_pools)
            sims = {
                t.id: pools.statistic(t, {a: arm_pools[(t.study, a)] for a in t.arms}) for t in ts
            }
            rec = {"loss": loss, "values": dict(values), "per_target": per, "sims": sims}
            checkpoint.put(SAFETY_STAGE, key, rec)
        first = rec["loss"] if first is None else first
        if rec["loss"] < best["loss"]:
            best = rec
        log(f"  safety iteration {it + 1}: loss {rec['loss']:.3f} (best {best['loss']:.3f})")
        # several targets may share a parameter (any grade and grade >= 3): geometric mean
        ratios: dict[str, list[float]] = {}
        for t in ts:
            path, kind = mapping[t.id]
            ratios.setdefault(path, []).append(_safety_ratio(t.value, rec["sims"][t.id], kind))
        values = {
            p: rec["values"][p] * math.exp(float(np.mean(np.log(ratios[p])))) for p in rec["values"]
        }
    result = StageResult(
        SAFETY_STAGE,
        dict(best["values"]),
        float(first),
        float(best["loss"]),
        iterations,
        time.perf_counter() - t0,
        dict(best["per_target"]),
    )
    checkpoint.finish(
        SAFETY_STAGE,
        result.record(),
    )
    return result
