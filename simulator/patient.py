"""One patient's clinical course: lines, holds, scans, and the decision taken at each event.

The engine (``engine.py``) owns the clock and asks a :class:`Course` three things: when its next
decision is (:meth:`Course.next_decision`), whether death comes first
(:meth:`Course.death_before`), and to take the decision (:meth:`Course.handle`). The disease
models (``disease/``) answer the course: the tumour in closed form between state changes, the
death hazard by quadrature, adverse events as Poisson processes. Infusion cycles, lower-grade
adverse events and lab draws are filled in when the history is complete (:meth:`Course.finish`).

Same-day order: death, then imaging, then adverse-event onsets, then resolutions (resumption of
dosing), then line starts; the follow-up horizon comes last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hccsim.analysis.response import visit_response
from hccsim.simulator.disease import tumour
from hccsim.simulator.disease.afp import observed_afp, true_log_afp
from hccsim.simulator.disease.liver import liver_labs
from hccsim.simulator.disease.survival import DeathHazard
from hccsim.simulator.disease.toxicity import LineToxicity
from hccsim.simulator.history import MAX_PRIOR, prior_lines
from hccsim.simulator.parameters import DrugParams, ModelParameters
from hccsim.simulator.policy import LinePolicy, NextLine
from hccsim.simulator.records import PATIENT_COLS, Buffers
from hccsim.simulator.streams import BlockStream, PatientStreams, Purpose

# Decision kinds, in their same-day order (death is checked before any of them).
IMAGING, AE_ONSET, AE_RESOLVED, LINE_START, HORIZON = range(5)
INF = math.inf
_ORGAN_NAMES = np.array(tumour.ORGANS, dtype=object)
#: Uniforms and normals drawn up front after the lesions: growth, shared kill sensitivity and
#: AE susceptibility (normals); immune responsiveness and cause-of-death split (uniforms).
_N_EXTRA_NORMALS = 3
_N_EXTRA_UNIFORMS = 2
N_LAB_VALUES = 11


@dataclass(frozen=True)
class Context:
    """What every patient of a run shares (picklable, sent to workers once per task)."""

    params: ModelParameters
    sequence: tuple[DrugParams, ...]
    arm: str
    criterion: str  # "recist1.1" or "mrecist": the one that ends a line
    imaging_interval: float  # days
    imaging_window: float  # days either side
    lab_interval: float  # days
    horizon: float  # days of follow-up from the index start
    streams: tuple[tuple[str, ...], ...] = ()  # the preset's prior sequences, by stream index
    history_known: bool = False  # prior lines come from treatment streams (or first line)
    quadrature_step: float = 14.0

    @property
    def policy(self) -> LinePolicy:
        return LinePolicy(self.params.policy, self.sequence)


class Reader:
    """What the simulated radiologist needs for every scan of one patient, computed once."""

    __slots__ = (
        "has_nontarget",
        "liver",
        "log_gone",
        "n",
        "n_tracked",
        "nontarget",
        "nt_pd_ratio",
        "sd",
        "static",
        "static_tail",
        "too_small",
        "viable",
        "w_mrecist",
        "w_nontarget",
        "w_recist",
    )

    def __init__(self, p, lz: tumour.Lesions) -> None:
        self.n = lz.n
        self.n_tracked = int((~lz.latent).sum())  # the latent burden, if any, is the last slot
        self.sd = p.measurement_sd_log
        self.log_gone = math.log(p.disappear_mm)
        self.too_small = p.too_small_mm
        self.nt_pd_ratio = p.nontarget_pd_volume_ratio
        self.viable = np.where(lz.enhancing, lz.viable, 0.0)
        self.liver = lz.organ == tumour.LIVER
        self.w_recist = lz.recist_target.astype(float)
        self.w_mrecist = lz.mrecist_target.astype(float)
        self.nontarget = ~lz.recist_target
        self.w_nontarget = self.nontarget.astype(float)
        self.has_nontarget = bool(self.nontarget.any())
        k = self.n_tracked
        self.static = (
            np.arange(k, dtype=np.int64),
            _ORGAN_NAMES[lz.organ[:k]],
            lz.recist_target[:k],
            lz.mrecist_target[:k],
        )
        self.static_tail = (lz.enhancing[:k], np.zeros(k, dtype=bool))


class Course:
    __slots__ = (
        "b",
        "base_m",
        "base_r",
        "block",
        "budget",
        "buf",
        "ctx",
        "di",
        "drug",
        "entry_day",
        "exposure",
        "hazard",
        "hold_until",
        "holds",
        "img",
        "kill",
        "lam",
        "lesions",
        "level",
        "line",
        "line_start",
        "log_afp0",
        "log_v0",
        "nadir_m",
        "nadir_nt",
        "nadir_r",
        "next",
        "on_drug_since",
        "pid",
        "policy",
        "pos",
        "reader",
        "received",
        "reductions",
        "responsive",
        "segments",
        "sens_shared",
        "streams",
        "susceptibility",
        "t_ae",
        "t_img",
        "t_line",
        "tox",
        "tox_rng",
        "u_cause",
        "visit",
    )

    def __init__(
        self,
        ctx: Context,
        pid: int,
        streams: PatientStreams,
        b: dict,
        buf: Buffers,
        policy: LinePolicy,
        entry_day: float = 0.0,
    ) -> None:
        self.ctx, self.pid, self.streams, self.b, self.buf, self.policy = (
            ctx,
            pid,
            streams,
            b,
            buf,
            policy,
        )
        self.entry_day = entry_day
        p = ctx.params
        bio = streams.biology
        z = bio.standard_normal(tumour.N_NORMALS + _N_EXTRA_NORMALS)
        u = bio.random(tumour.N_UNIFORMS + _N_EXTRA_UNIFORMS)
        self.budget = float(bio.standard_exponential())
        z_growth, z_kill, z_ae = z[tumour.N_NORMALS :].tolist()
        self.responsive, self.u_cause = u[tumour.N_UNIFORMS :].tolist()
        self.sens_shared = z_kill
        self.susceptibility = math.exp(p.toxicity.susceptibility_sd_log * z_ae)
        lz = tumour.build_lesions(
            p.tumour,
            int(b["intrahepatic_lesions"]),
            float(b["max_lesion_mm"]),
            bool(b["ehm"]),
            bool(b["prior_tace"]),
            math.exp(p.tumour.growth_patient_sd_log * z_growth),
            z[: tumour.N_NORMALS],
            u[: tumour.N_UNIFORMS],
        )
        self.lesions = lz
        self.reader = Reader(p.tumour, lz)
        self.hazard = DeathHazard(
            p.death,
            lz,
            age=b["age"],
            male=bool(b["male"]),
            ecog=b["ecog"],
            mvi=bool(b["mvi"]),
            ehm=bool(b["ehm"]),
            albi=b["albi"],
            afp=b["afp_ng_ml"],
        )
        self.log_v0 = math.log(float(tumour.volume_cm3(lz.logd)))
        self.log_afp0 = math.log(b["afp_ng_ml"])
        self.segments = [(0.0, lz.logd, lz.a, lz.lam)]
        self.exposure: list[tuple[float, float, float, DrugParams, int]] = []
        # Prior lines (index-line cohorts): placed before day 0 from the preset's stream.
        prior = ctx.streams[b["stream"]] if b["stream"] >= 0 else ()
        history_normals = bio.standard_normal(2 * MAX_PRIOR)
        for line, drug, start, end, cycles in prior_lines(
            prior, p.drugs, p.policy, history_normals
        ):
            buf.lines.append((pid, line, drug, False, start, end, "progression", cycles, 0, 0))
        self.received: list[str] = list(prior)
        self.line = int(b["index_line"]) - 1
        self.drug: DrugParams | None = None
        self.t_img = self.t_ae = self.hold_until = self.t_line = INF
        self.next: NextLine | None = None
        first = ctx.sequence[0]
        if first.active:
            self._start_line(0.0, 0, first)

    # -- questions from the engine -------------------------------------------------------
    def next_decision(self) -> tuple[float, int]:
        t, kind = self.t_img, IMAGING
        if self.t_ae < t:
            t, kind = self.t_ae, AE_ONSET
        if self.hold_until < t:
            t, kind = self.hold_until, AE_RESOLVED
        if self.t_line < t:
            t, kind = self.t_line, LINE_START
        if self.ctx.horizon <= t:
            t, kind = self.ctx.horizon, HORIZON
        return t, kind

    def death_before(self, now: float, t_next: float) -> float | None:
        used, t_death = self.hazard.integrate(now, t_next, self.budget, self.ctx.quadrature_step)
        self.budget -= used
        return t_death

    def handle(self, t: float, kind: int) -> bool:
        """Take the decision due at ``t``; True when the patient died of it."""
        if kind == IMAGING:
            self._imaging(t)
        elif kind == AE_ONSET:
            return self._ae_onset(t)
        elif kind == AE_RESOLVED:
            self._resume(t)
        elif kind == LINE_START:
            nxt, self.next, self.t_line = self.next, None, INF
            self._start_line(t, nxt.position, nxt.drug)
        return False

    # -- lines -----------------------------------------------------------------------------
    def _segment(self, t: float, kill, lam, di: float, t0: float) -> None:
        lz = self.lesions
        lz.set_segment(t, kill, lam, di, t0)
        self.segments.append((t, lz.logd, lz.a, lz.lam))

    def _start_line(self, t: float, pos: int, drug: DrugParams) -> None:
        p = self.ctx.params
        self.line += 1
        self.pos, self.drug, self.line_start = pos, drug, t
        self.level, self.di, self.holds, self.reductions = 0, 1.0, 0, 0
        self.received.append(drug.name)
        # The line's treatment stream: the drug-effect draw first, then the AE process.
        self.tox_rng = self.streams.keyed(Purpose.TREATMENT, self.line, drug.code)
        rho = p.tumour.kill_cross_drug_correlation
        z = rho * self.sens_shared + math.sqrt(max(0.0, 1.0 - rho * rho)) * float(
            self.tox_rng.standard_normal()
        )
        responder = (
            drug.responder_fraction is not None and self.responsive < drug.responder_fraction
        )
        self.kill, self.lam = tumour.drug_rates(
            drug, self.lesions, math.exp(p.tumour.kill_patient_sd_log * z), responder
        )
        self._segment(t, self.kill, self.lam, 1.0, t)
        self.on_drug_since = t
        self.tox = LineToxicity.for_drug(drug)
        self.t_ae = self.tox.next_action_onset(t, self.susceptibility, self.tox_rng)
        self.hold_until = INF
        self.img = BlockStream(
            self.streams.keyed(Purpose.IMAGING, self.line, drug.code), tumour.SLOTS
        )
        self.visit = 0
        self.block = self.img.next_block()
        self._scan(t, baseline=True)
        self._schedule_imaging()

    def _close_exposure(self, t: float) -> None:
        if self.on_drug_since < INF:
            self.exposure.append((self.on_drug_since, t, self.di, self.drug, self.line))
            self.on_drug_since = INF

    def _end_line(self, t: float, reason: str) -> None:
        drug = self.drug
        self._close_exposure(t)
        cycles = sum(
            math.ceil((b - a) / drug.cycle_days - 1e-9)
            for a, b, _, _, line in self.exposure
            if line == self.line
        )
        self.buf.lines.append(
            (
                self.pid,
                self.line,
                drug.name,
                self.pos == 0,
                self.line_start,
                t,
                reason,
                cycles,
                self.reductions,
                self.holds,
            )
        )
        self.drug = None
        self.t_img = self.t_ae = self.hold_until = INF
        self._segment(t, 0.0, 0.0, 0.0, t)
        if reason in ("death", "end_of_follow_up"):
            return
        afp_now = math.exp(
            true_log_afp(
                self.ctx.params.afp,
                self.log_afp0,
                self.log_v0,
                math.log(float(tumour.volume_cm3(self.lesions.logd))),
            )
        )
        rng = self.streams.keyed(Purpose.POLICY, self.line, drug.code)
        # Prior-drug restrictions need the whole history: known for first-line cohorts and for
        # presets with treatment streams; a preset with bare index-line weights leaves it unknown.
        history = (
            self.received if self.ctx.history_known or int(self.b["index_line"]) == 1 else None
        )
        nxt = self.policy.after_line(self.pos, self.line, self.b["ecog"], afp_now, history, rng)
        if nxt is not None:
            self.next, self.t_line = nxt, t + nxt.gap_days

    # -- imaging -----------------------------------------------------------------------------
    def _schedule_imaging(self) -> None:
        self.visit += 1
        self.block = self.img.next_block()
        jitter = (2.0 * float(self.block[1][0]) - 1.0) * self.ctx.imaging_window
        self.t_img = self.line_start + self.visit * self.ctx.imaging_interval + jitter

    def _scan(self, t: float, baseline: bool) -> str | None:
        """Image all lesions at ``t``, record them, and read the visit (None at baseline)."""
        rd = self.reader
        logd = self.lesions.log_diameters(t)
        logobs = logd + rd.sd * self.block[0][: rd.n]
        raw = np.exp(logobs)
        gone = logd < rd.log_gone
        rec = np.where(gone, 0.0, np.maximum(raw, rd.too_small))
        viable = np.where(gone, 0.0, raw * rd.viable)
        sum_r = float(rec @ rd.w_recist)
        sum_m = float(np.where(rd.liver, viable, rec) @ rd.w_mrecist)
        nt_vol = float(np.exp(3.0 * logobs) @ rd.w_nontarget)
        k = rd.n_tracked
        self.buf.lesions.append(
            (self.pid, self.line, self.visit, t, *rd.static, rec[:k], viable[:k], *rd.static_tail)
        )
        if baseline:
            self.base_r = self.nadir_r = sum_r
            self.base_m = self.nadir_m = sum_m
            self.nadir_nt = nt_vol
            nontarget = "non-CR/non-PD" if rd.has_nontarget else "absent"
            self.buf.assessments.append(
                (self.pid, self.line, 0, t, True, sum_r, sum_m, nontarget, False, None, None)
            )
            return None
        if not rd.has_nontarget:
            nontarget = "absent"
        elif nt_vol >= rd.nt_pd_ratio * self.nadir_nt:
            nontarget = "PD"
        elif gone[rd.nontarget].all():
            nontarget = "CR"
        else:
            nontarget = "non-CR/non-PD"
        resp_r = visit_response(
            sum_r, self.base_r, self.nadir_r, nontarget=nontarget, criterion="recist1.1"
        )
        nt_m = nontarget if self.base_m > 0 else ("PD" if nontarget == "PD" else "NE")
        resp_m = visit_response(
            sum_m, self.base_m, self.nadir_m, nontarget=nt_m, criterion="mrecist"
        )
        self.nadir_r = min(self.nadir_r, sum_r)
        self.nadir_m = min(self.nadir_m, sum_m)
        self.nadir_nt = min(self.nadir_nt, nt_vol)
        self.buf.assessments.append(
            (
                self.pid,
                self.line,
                self.visit,
                t,
                False,
                sum_r,
                sum_m,
                nontarget,
                False,
                resp_r,
                resp_m,
            )
        )
        return resp_r if self.ctx.criterion == "recist1.1" else resp_m

    def _imaging(self, t: float) -> None:
        if self._scan(t, baseline=False) == "PD":
            self._end_line(t, "progression")
        else:
            self._schedule_imaging()

    # -- adverse events ----------------------------------------------------------------------
    def _ae_onset(self, t: float) -> bool:
        ae, grade, duration = self.tox.draw_action_event(self.tox_rng)
        drug = self.drug
        if grade == 5:
            self._ae_row(ae.term, grade, t, t, "death")
            self.finish(t, died=True, cause="adverse_event")
            return True
        last_level = self.level + 1 >= len(drug.reduction_levels)
        if grade >= ae.stop_at_grade or (drug.reduce_after_hold and last_level):
            self._ae_row(ae.term, grade, t, t + duration, "drug_withdrawn")
            self._end_line(t, "toxicity")
            return False
        self._ae_row(ae.term, grade, t, t + duration, "dose_held")
        self._close_exposure(t)
        self.holds += 1
        self.hold_until = t + duration
        self.t_ae = INF
        self._segment(t, self.kill, self.lam, 0.0, self.line_start)
        return False

    def _resume(self, t: float) -> None:
        drug = self.drug
        if drug.reduce_after_hold:
            self.level += 1
            self.reductions += 1
        self.di = drug.reduction_levels[self.level]
        self.hold_until = INF
        self._segment(t, self.kill, self.lam, self.di, self.line_start)
        self.on_drug_since = t
        self.t_ae = self.tox.next_action_onset(t, self.di * self.susceptibility, self.tox_rng)

    def _ae_row(self, term: str, grade: int, onset: float, end: float, action: str) -> None:
        self.buf.adverse_events.append(
            (self.pid, self.line, self.drug.name, term, grade, onset, end, action)
        )

    # -- the end -------------------------------------------------------------------------------
    def die(self, t: float) -> None:
        h = self.hazard
        times = np.array([t])
        total = float(h.hazard(times)[0])
        background = h.background(t)
        cause = "background" if self.u_cause * total < background else "cancer"
        self.finish(t, died=True, cause=cause)

    def finish(self, t: float, died: bool, cause: str | None = None) -> None:
        """Close the history at death or at the horizon and fill in what happened in between."""
        if self.drug is not None:
            self._end_line(t, "death" if died else "end_of_follow_up")
        row = dict(self.b)
        row.update(
            patient_id=self.pid,
            arm=self.ctx.arm,
            stratum=None,
            entry_day=self.entry_day,
            index_drug=self.ctx.sequence[0].name,
            death=died,
            death_day=t if died else None,
            last_follow_up_day=t,
            cause_of_death=cause if died else None,
        )
        self.buf.patients.append(tuple(row[c] for c in PATIENT_COLS))
        self._minor_adverse_events()
        self._labs(t)

    def _minor_adverse_events(self) -> None:
        by_line: dict[int, list] = {}
        for a, b_, di, drug, line in self.exposure:
            by_line.setdefault(line, []).append((a, b_, di, drug))
        for line, intervals in by_line.items():
            drug = intervals[0][3]
            tox = LineToxicity.for_drug(drug)
            rng = self.streams.keyed(Purpose.TOXICITY_MINOR, line, drug.code)
            spans = [(a, b_, di * self.susceptibility) for a, b_, di, _ in intervals]
            term, grade, onset, duration = tox.minor_events(spans, rng)
            names = tox.terms
            for j, g, a, d in zip(
                term.tolist(), grade.tolist(), onset.tolist(), duration.tolist(), strict=True
            ):
                self.buf.adverse_events.append(
                    (self.pid, line, drug.name, names[j].term, g, a, a + d, "none")
                )

    def log_volume_at(self, days: np.ndarray) -> np.ndarray:
        """log total tumour volume at past ``days`` from the recorded segments of the history."""
        segs = self.segments
        starts = np.array([s[0] for s in segs])
        k = np.searchsorted(starts, days, side="right") - 1
        logd = np.array([s[1] for s in segs])[k]  # (days, lesions)
        a = np.array([s[2] for s in segs])[k]
        lam = np.array([s[3] for s in segs])[k]
        x = (days - starts[k])[:, None]
        grid = logd + self.lesions.g * x - a * tumour.phi(lam, x)
        return np.log(tumour.SPHERE_CM3 * np.add.reduce(np.exp(3.0 * grid), axis=1))

    def _labs(self, last: float) -> None:
        ctx = self.ctx
        days = np.arange(0.0, last + 1e-9, ctx.lab_interval)
        if not len(days):
            return
        p = ctx.params
        dlogv = self.log_volume_at(days) - self.log_v0
        z = self.streams.keyed(Purpose.LABS, 0, 0).standard_normal((len(days), 4))
        drift = [
            (a, b_, d.albumin_g_dl_per_month, d.log_bilirubin_per_month)
            for a, b_, _, d, _ in self.exposure
        ]
        b = self.b
        alb, bil, inr, albi = liver_labs(
            p.liver, days, dlogv, b["albumin_g_dl"], b["bilirubin_mg_dl"], b["inr"], drift, z[:, :3]
        )
        afp = observed_afp(p.afp, true_log_afp(p.afp, self.log_afp0, 0.0, dlogv), z[:, 3])
        values = np.full((len(days), N_LAB_VALUES), np.nan)
        values[:, 0], values[:, 1], values[:, 2], values[:, 3], values[:, 4] = (
            alb,
            bil,
            inr,
            albi,
            afp,
        )
        self.buf.labs.append((self.pid, days, values))
