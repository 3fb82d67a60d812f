"""The simulation engine: simpy, one process per patient, events only at decisions.

A batch of patients (about a thousand) shares one simpy environment. Each patient's process
asks its :class:`~hccsim.simulator.patient.Course` for the next decision (a scan, an
adverse-event onset or resolution, a lab action, a line start, the follow-up horizon), asks
whether a random event comes first (death, new vascular invasion, ascites, encephalopathy, an
ECOG worsening, with new lesions seeded meanwhile; next-reaction method: each
process's cumulative intensity up to that decision against what remains of its exponential
budget), waits until the first of them, and lets the course act. Nothing happens between
events: tumour sizes are closed forms, and cycles, lab draws and lower-grade adverse events are
filled in when the patient's history is complete.

Patients never interact, so a batch is a pure function of (scenario, seed, replicate, patient
range); tables are put in patient order at the end, so they are the same for any batch size.
Decision times are carried exactly (not read back from ``env.now``, which accumulates rounding).
"""

from __future__ import annotations

import functools

import numpy as np
import simpy

from hccsim.analysis.ctcae import treatment_emergent_events
from hccsim.simulator import trial
from hccsim.simulator.cohort import Criteria, Preset, draw_eligible
from hccsim.simulator.patient import HORIZON, Context, Course
from hccsim.simulator.records import Buffers, Columns
from hccsim.simulator.streams import PatientStreams, Purpose, replicate_stream

DAYS_PER_MONTH = 30.4375


def _process(env: simpy.Environment, course: Course, start: float):
    now = start
    while True:
        t_next, kind = course.next_decision()
        t_random, what = course.next_random_event(now, t_next)
        if t_random is not None:  # a random event (death, ...) comes first
            yield env.timeout(t_random - now)
            now = t_random
            if course.random_event(now, what):
                return
            continue
        yield env.timeout(t_next - now)
        now = t_next
        if kind == HORIZON:
            course.finish(now, died=False)
            return
        if course.handle(now, kind):
            return


#: Patients per accrual block (fixed: entry times must not depend on the batch size).
ACCRUAL_BLOCK = 1024


@functools.lru_cache(maxsize=64)
def _block_starts(root: int, replicate: int, blocks: int) -> tuple[float, ...]:
    """Accrual time (in units of the mean gap) at the start of each of the first ``blocks``."""
    starts = [0.0]
    for j in range(blocks - 1):
        total = replicate_stream(root, replicate, Purpose.ACCRUAL, j).standard_gamma(ACCRUAL_BLOCK)
        starts.append(starts[-1] + float(total))
    return tuple(starts)


def entry_days(
    root: int,
    replicate: int,
    start: int,
    stop: int,
    accrual_per_month: float | None,
    ramp_up_months: float | None = None,
) -> np.ndarray:
    """Entry days of patients ``start .. stop-1``: a Poisson accrual process, or all at day 0.

    Patients are accrued in blocks of :data:`ACCRUAL_BLOCK`. Each block's stream gives its total
    time first (Gamma with shape = block size, in mean gaps) and then its gaps, normalised to
    that total: given the total, normalised exponential gaps are exactly the Dirichlet spacings
    of a Poisson process, so the entry times are a Poisson process, computed for any range of
    patients without drawing the gaps of earlier blocks. They depend only on the replicate and
    the patient index.
    """
    if not accrual_per_month or stop <= start:
        return np.zeros(max(stop - start, 0))
    first, last = start // ACCRUAL_BLOCK, (stop - 1) // ACCRUAL_BLOCK
    starts = _block_starts(root, replicate, last + 1)
    out = []
    for j in range(first, last + 1):
        gen = replicate_stream(root, replicate, Purpose.ACCRUAL, j)
        total = gen.standard_gamma(ACCRUAL_BLOCK)
        gaps = gen.standard_exponential(ACCRUAL_BLOCK)
        times = starts[j] + total * np.cumsum(gaps) / gaps.sum()
        lo = max(start - j * ACCRUAL_BLOCK, 0)
        hi = min(stop - j * ACCRUAL_BLOCK, ACCRUAL_BLOCK)
        out.append(times[lo:hi])
    if ramp_up_months:  # a linear ramp-up: the unit-rate times mapped through it (trial.py)
        months = trial.ramp_up_months(np.concatenate(out), accrual_per_month, ramp_up_months)
        return months * DAYS_PER_MONTH
    return np.concatenate(out) * (DAYS_PER_MONTH / accrual_per_month)


def simulate_batch(
    ctx: Context,
    preset: Preset,
    *,
    root: int,
    replicate: int,
    start: int,
    stop: int,
    first_line: bool = False,
    accrual_per_month: float | None = None,
    criteria: Criteria | None = None,
    design=None,
    ramp_up_months: float | None = None,
) -> dict[str, Columns]:
    """Simulate patients ``start .. stop-1`` of one replicate to the horizon; return the tables.

    Each patient's baseline is its first candidate that meets ``criteria`` (the preset's own
    eligibility merged with the scenario's), drawn from its own generator.
    """
    env = simpy.Environment()
    buf = Buffers()
    streams = [PatientStreams(root, replicate, pid) for pid in range(start, stop)]
    criteria = criteria if criteria is not None else preset.eligibility
    chosen = draw_eligible(preset, criteria, [s.biology for s in streams], first_line)
    baseline = {k: v.tolist() for k, v in chosen.items()}
    entry = entry_days(root, replicate, start, stop, accrual_per_month, ramp_up_months).tolist()
    keys = list(baseline)
    if design is None:
        contexts, labels = [ctx] * (stop - start), [None] * (stop - start)
    else:
        arm, labels = _randomise(design, preset, criteria, first_line, replicate, start, chosen)
        contexts = [design.arms[a] for a in arm.tolist()]
    policies = {id(c): c.policy for c in contexts}
    for i, s in enumerate(streams):
        b = {k: baseline[k][i] for k in keys}
        c = contexts[i]
        course = Course(c, start + i, s, b, buf, policies[id(c)], entry[i], labels[i])
        env.process(_process(env, course, 0.0))
    env.run()
    tables = buf.to_columns(replicate)
    tables["adverse_events"] = _with_lab_events(tables, buf.lab_actions)
    return tables


def _randomise(design, preset, criteria, first_line, replicate, start, chosen):
    """Arms and stratum labels of this batch's patients (``trial.py``). Permuted blocks within
    strata need the strata of every earlier patient of the replicate: their baselines are drawn
    again, from their own generators, so exactly as their own batches draw them."""
    n = len(next(iter(chosen.values())))
    if design.stratify_by:
        every = chosen
        if start:
            earlier = [PatientStreams(design.root, replicate, pid).biology for pid in range(start)]
            before = draw_eligible(preset, criteria, earlier, first_line)
            every = {k: np.concatenate([before[k], chosen[k]]) for k in chosen}
        codes, labels = trial.strata(every, design.stratify_by)
    else:
        codes, labels = np.zeros(start + n, dtype=np.int64), [None] * (start + n)
    arms = trial.allocate(design.root, replicate, codes, design.weights, design.block_multiple)
    return arms[start:], labels[start:]


def _with_lab_events(tables, lab_actions) -> Columns:
    """The event-based adverse events with the lab-based ones added: graded from the batch's
    labs by CTCAE v5.0 as treatment-emergent worsening on each line (``analysis.ctcae``), with
    the dose actions that the simulated physician took on those lab values."""
    lab = treatment_emergent_events(tables)
    if len(lab["patient_id"]) and lab_actions:
        action = lab["action"].copy()
        key = list(
            zip(lab["patient_id"].tolist(), lab["line"].tolist(), lab["term"].tolist(), strict=True)
        )
        onset, end = lab["onset_day"], lab["end_day"]
        rows: dict[tuple, list[int]] = {}
        for i, k in enumerate(key):
            rows.setdefault(k, []).append(i)
        for pid, actions in lab_actions:
            for line, term, day, what in actions:
                for i in rows.get((pid, line, term), []):
                    if onset[i] <= day + 1e-9 and day <= end[i] + 1e-9:
                        action[i] = what
                        break
        lab["action"] = action
    events = tables["adverse_events"]
    joined = {c: np.concatenate([events[c], lab[c]]) for c in events}
    # Patient, line, onset: event-based and lab-based rows interleave in time.
    order = np.lexsort((joined["onset_day"], joined["line"], joined["patient_id"]))
    return {c: v[order] for c, v in joined.items()}
