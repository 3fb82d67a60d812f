"""One patient's clinical course: lines, holds, scans, and the decision taken at each event.

The engine (``engine.py``) owns the clock and asks a :class:`Course` three things: when its next
scheduled decision is (:meth:`Course.next_decision`), whether a random event comes first
(:meth:`Course.next_random_event`: death, new vascular invasion, ascites, encephalopathy or an
ECOG worsening, with new lesions seeded meanwhile, by the next-reaction method), and to act on either (:meth:`Course.handle`,
:meth:`Course.random_event`). The disease models (``disease/``) answer the course: the tumour in
closed form between state changes, the hazards by quadrature, adverse events as Poisson
processes; the radiologist (``imaging.py``) reads the scans. Infusion cycles, lower-grade
adverse events and lab draws are filled in when the history is complete (:meth:`Course.finish`).

Same-day order: death, then new vascular invasion (and new lesions seeded before it), then imaging, then
adverse-event onsets, then resolutions (resumption of dosing), then lab actions (hold, resume,
stop on a lab value), then line starts. The follow-up horizon wins a tie with any decision: a
decision due exactly at the horizon is not taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hccsim.analysis.scores import albi, child_pugh_score
from hccsim.simulator.disease import labs, tumour
from hccsim.simulator.disease.afp import capped, observed_afp, true_log_afp
from hccsim.simulator.disease.progression import new_lesion, occult_pool
from hccsim.simulator.disease.survival import (
    ASCITES,
    DEATH,
    ECOG,
    ENCEPHALOPATHY,
    N_PROCESSES,
    VASCULAR_INVASION,
    DeathHazard,
    Hazards,
    seeding_scale,
)
from hccsim.simulator.disease.toxicity import LineToxicity
from hccsim.simulator.history import MAX_PRIOR, prior_lines
from hccsim.simulator.imaging import Radiologist
from hccsim.simulator.parameters import DrugParams, ModelParameters
from hccsim.simulator.policy import LinePolicy, NextLine
from hccsim.simulator.records import PATIENT_COLS, Buffers
from hccsim.simulator.streams import BlockStream, PatientStreams, Purpose

# Scheduled decision kinds, in their same-day order (random events come before any of them).
IMAGING, AE_ONSET, AE_RESOLVED, LAB_ACTION, LINE_START, HORIZON = range(6)
#: What a lab visit can trigger under the regimen's dose rules.
LAB_HOLD, LAB_STOP, LAB_RESUME = range(3)
#: A hold for a lab value that has not resolved after this long ends the regimen (days).
LAB_HOLD_MAX_DAYS = 84.0
#: Baseline AFP (ng/mL) at which ``tumour.growth_log10_afp_slope`` leaves the growth rate as drawn.
AFP_REFERENCE_NG_ML = 100.0
AFP_REFERENCE_LOG10 = math.log10(AFP_REFERENCE_NG_ML)
#: The AE term of each analyte's dose rule.
RULE_TERMS = {
    "urine_protein_g_24h": "proteinuria", "platelets_10e9_l": "platelet_count_decreased",
    "ast_u_l": "ast_increased", "alt_u_l": "alt_increased",
    "bilirubin_mg_dl": "blood_bilirubin_increased", "albumin_g_dl": "hypoalbuminemia",
    "haemoglobin_g_dl": "anemia", "ammonia_umol_l": "ammonia_increased", "inr": "inr_increased",
}  # fmt: skip
INF = math.inf
#: Up-front biology draws after the lesions: growth, shared kill sensitivity, AE
#: susceptibility, AFP slope (normals); immune responsiveness and cause of death (uniforms);
#: then lab baselines and lab susceptibilities (normals, one per analyte each).
_N_EXTRA_NORMALS = 4
_N_EXTRA_UNIFORMS = 2


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
    labs_off_treatment: bool = True  # lab draws between lines and after the last one too
    streams: tuple[tuple[str, ...], ...] = ()  # the preset's prior sequences, by stream index
    history_known: bool = False  # prior lines come from treatment streams (or first line)
    quadrature_step: float = 14.0
    death_hazard_ratio: float = 1.0  # an arm's assumed direct effect on the death hazard
    label_restrictions: bool = True  # later lines skip a regimen whose label is not met
    enrolment_year: float | None = None  # calendar era (None: the parameters' reference year)
    treat_beyond_progression: bool = False  # the index line outlasts radiological progression
    assessor: str = "investigator"  # who reads the recorded responses: or "independent"

    @property
    def policy(self) -> LinePolicy:
        return LinePolicy(self.params.policy, self.sequence, self.label_restrictions)


class Course:
    __slots__ = (
        "afp_slope",
        "b",
        "beyond",
        "block",
        "buf",
        "central",
        "cimg",
        "ctx",
        "di",
        "drug",
        "entry_day",
        "exposure",
        "growth",
        "hazards",
        "hold_until",
        "holds",
        "img",
        "lab_actions",
        "lab_days",
        "lab_held",
        "lab_kind",
        "lab_noise",
        "lab_rule",
        "lab_segments",
        "lab_since",
        "labs",
        "lesions",
        "level",
        "levels",
        "line",
        "line_start",
        "lines_done",
        "log_afp0",
        "log_v0",
        "log_vv0",
        "new_mvi",
        "next",
        "on_drug_since",
        "pid",
        "policy",
        "pos",
        "progression",
        "radiologist",
        "received",
        "reductions",
        "responsive",
        "seeding",
        "seeds",
        "segments",
        "sens_shared",
        "status_log",
        "stratum",
        "streams",
        "susceptibility",
        "t_ae",
        "t_img",
        "t_lab",
        "t_line",
        "tox",
        "tox_rng",
        "u_cause",
        "visit",
    )  # fmt: skip

    def __init__(
        self,
        ctx: Context,
        pid: int,
        streams: PatientStreams,
        b: dict,
        buf: Buffers,
        policy: LinePolicy,
        entry_day: float = 0.0,
        stratum: str | None = None,
    ) -> None:
        self.ctx, self.pid, self.streams, self.b, self.buf = ctx, pid, streams, b, buf
        self.policy, self.entry_day, self.stratum = policy, entry_day, stratum
        p = ctx.params
        bio = streams.biology
        z = bio.standard_normal(tumour.N_NORMALS + _N_EXTRA_NORMALS)
        u = bio.random(tumour.N_UNIFORMS + _N_EXTRA_UNIFORMS)
        death_budget = float(bio.standard_exponential())
        z_lab = bio.standard_normal((2, labs.N))
        z_growth, z_kill, z_ae, z_afp = z[tumour.N_NORMALS :].tolist()
        self.responsive, self.u_cause = u[tumour.N_UNIFORMS :].tolist()
        self.sens_shared = z_kill
        self.susceptibility = math.exp(p.toxicity.susceptibility_sd_log * z_ae)
        self.afp_slope = p.afp.burden_slope * math.exp(p.afp.slope_patient_sd_log * z_afp)
        # Growth: log-normal between patients, faster with a higher baseline AFP (a tenfold
        # AFP multiplies the rate by exp(slope); AFP_REFERENCE_NG_ML has the median rate).
        self.growth = p.tumour.growth_median_per_day * math.exp(
            p.tumour.growth_patient_sd_log * z_growth
            + p.tumour.growth_log10_afp_slope * (math.log10(b["afp_ng_ml"]) - AFP_REFERENCE_LOG10)
        )
        # The patient's rate relative to the median (lesion draws and new-lesion seeding).
        growth_factor = self.growth / p.tumour.growth_median_per_day
        lz = tumour.build_lesions(
            p.tumour,
            int(b["intrahepatic_lesions"]),
            float(b["max_lesion_mm"]),
            float(b["occupation_pct"]),
            bool(b["ehm"]),
            bool(b["prior_tace"]),
            growth_factor,
            z[: tumour.N_NORMALS],
            u[: tumour.N_UNIFORMS],
        )
        self.lesions = lz
        lz.set_segment(0.0, 0.0, 0.0, 1.0, 0.0)
        volumes = lz.volumes_grid(np.zeros(1))
        # New-lesion propensity, then the occult pool: drawn only when used, so that
        # the other streams and results do not depend on them.
        t_par = p.tumour
        # A faster-growing tumour seeds more new lesions: (g / g_median)^exponent.
        self.seeding = growth_factor**t_par.new_lesion_growth_exponent
        if t_par.new_lesion_patient_sd_log > 0.0 or t_par.new_lesion_baseline_pool > 0.0:
            rng = streams.keyed(Purpose.NEW_LESIONS, 0, 0)
            if t_par.new_lesion_patient_sd_log > 0.0:
                self.seeding *= math.exp(t_par.new_lesion_patient_sd_log * rng.standard_normal())
            if t_par.new_lesion_baseline_pool > 0.0:
                volumes = self._occult_pool(t_par, float(volumes[1][0]), rng)
        self.log_v0 = math.log(tumour.SPHERE_CM3 * float(volumes[0][0]))
        self.log_vv0 = math.log(max(tumour.SPHERE_CM3 * float(volumes[1][0]), 1e-6))
        self.log_afp0 = math.log(b["afp_ng_ml"])
        # Labs: baselines, susceptibilities, and the visit noise of the whole lab grid.
        self.labs = labs.LabState(
            labs.baseline(b, p.labs, z_lab[0]),
            np.exp(p.labs.susceptibility_sd_log * z_lab[1]),
            p.labs,
            self.log_v0,
        )
        self.lab_segments = [self.labs.snapshot()]
        self.lab_days = np.arange(0.0, ctx.horizon + 1e-9, ctx.lab_interval)
        self.lab_noise = streams.keyed(Purpose.LABS, 0, 0).standard_normal(
            (len(self.lab_days), labs.N + 1)
        )
        self.t_lab, self.lab_kind, self.lab_rule, self.lab_held, self.lab_since = (
            INF,
            -1,
            None,
            None,
            INF,
        )
        self.lab_actions: list[tuple[int, str, float, str]] = []
        death = DeathHazard(
            p.death,
            lz,
            age=b["age"],
            male=bool(b["male"]),
            ecog=b["ecog"],
            mvi=bool(b["mvi"]),
            ehm=bool(b["ehm"]),
            albi=b["albi"],
            afp=b["afp_ng_ml"],
            hazard_ratio=ctx.death_hazard_ratio,
            enrolment_year=ctx.enrolment_year,
        )
        self.progression = streams.keyed(Purpose.PROGRESSION, 0, 0)
        budgets = np.array([death_budget, *self.progression.standard_exponential(N_PROCESSES - 1)])
        self.hazards = Hazards(death, p, self.labs, b, budgets, self.seeding)
        # Clinical status from each change on: (day, ascites, encephalopathy, ECOG).
        self.status_log: list[tuple[float, int, int, int]] = [
            (-INF, int(b["ascites"]), int(b["encephalopathy"]), int(b["ecog"]))
        ]
        self.new_mvi = False
        self.seeds: list[float] = []
        self.segments = [self._snapshot()]
        independent = ctx.assessor == "independent"
        self.radiologist = Radiologist(p.tumour, buf, pid, record=not independent)
        self.central = (
            Radiologist(p.tumour, buf, pid, lead=self.radiologist) if independent else None
        )
        self.cimg: BlockStream | None = None
        self.exposure: list[tuple[float, float, float, DrugParams, int]] = []
        self.lines_done: list[tuple[float, float]] = []
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
        self.di = 0.0
        self.t_img = self.t_ae = self.hold_until = self.t_line = INF
        self.next: NextLine | None = None
        first = ctx.sequence[0]
        if first.active:
            self._start_line(0.0, 0, first)

    def _occult_pool(self, t, d3v: float, rng: np.random.Generator):
        """Add the occult lesions present at the start (``progression.occult_pool``) and
        return the volumes at day 0 with them. They are new lesions, not yet seen; their
        organs do not change the baseline covariates (EHM is as the preset drew it)."""
        rate = (
            self.seeding
            * t.new_lesion_rate_per_month
            * seeding_scale(t)
            * d3v**t.new_lesion_exponent
        )
        pool = occult_pool(t, self.growth, rate, tumour.MAX_LESIONS - self.lesions.n, rng)
        self.lesions.add([(0.0, at) for at in pool])
        return self.lesions.volumes_grid(np.zeros(1))

    # -- questions from the engine -------------------------------------------------------
    def next_decision(self) -> tuple[float, int]:
        t, kind = self.t_img, IMAGING
        if self.t_ae < t:
            t, kind = self.t_ae, AE_ONSET
        if self.hold_until < t:
            t, kind = self.hold_until, AE_RESOLVED
        if self.t_lab < t:
            t, kind = self.t_lab, LAB_ACTION
        if self.t_line < t:
            t, kind = self.t_line, LINE_START
        if self.ctx.horizon <= t:
            t, kind = self.ctx.horizon, HORIZON
        return t, kind

    def next_random_event(self, now: float, t_next: float) -> tuple[float | None, int]:
        """The first of death, new vascular invasion, ascites, encephalopathy and an ECOG
        worsening before ``t_next`` (new lesions seeded meanwhile join at the next event)."""
        j, t, seeds = self.hazards.advance(now, t_next, self.ctx.quadrature_step, self._budget)
        self.seeds = seeds
        return t, j

    def _budget(self) -> float:
        return float(self.progression.standard_exponential())

    def _add_seeds(self, t: float) -> None:
        """New lesions seeded since the last event join the patient's lesions at ``t``."""
        if not self.seeds:
            return
        p = self.ctx.params.tumour
        room = tumour.MAX_LESIONS - self.lesions.n
        # Every seed draws its attributes (the stream stays aligned); those past the cap go.
        drawn = [(seeded, new_lesion(p, self.growth, self.progression)) for seeded in self.seeds]
        self.lesions.add(drawn[: max(room, 0)])
        if any(at["organ"] != tumour.LIVER for _, at in drawn[: max(room, 0)]):
            self.hazards.extrahepatic_spread()
        self.seeds = []
        self._segment(t)
        self.hazards.refresh()

    def random_event(self, t: float, kind: int) -> bool:
        """Act on a random event at ``t``; True when the patient died."""
        if kind == DEATH:
            self.die(t)
            return True
        self._add_seeds(t)
        h = self.hazards
        h.event(kind)
        self.status_log.append((t, h.ascites, h.encephalopathy, h.ecog))
        if kind == VASCULAR_INVASION:  # seen at the next scan
            self.new_mvi = True
        elif kind in (ASCITES, ENCEPHALOPATHY) and self.drug is not None:
            term = "ascites" if kind == ASCITES else "hepatic_encephalopathy"
            grade = 1 + (self.hazards.ascites if kind == ASCITES else self.hazards.encephalopathy)
            stop = grade >= self.ctx.params.policy.stop_at_decompensation_grade
            self._ae_row(term, grade, t, t, "drug_withdrawn" if stop else "none")
            if stop:
                self._end_line(t, "clinical_deterioration")
        elif (
            kind == ECOG and self.drug is not None and h.ecog >= self.ctx.params.policy.stop_at_ecog
        ):
            self._end_line(t, "clinical_deterioration")
        self._schedule_lab(t)
        return False

    def handle(self, t: float, kind: int) -> bool:
        """Take the decision due at ``t``; True when the patient died of it."""
        self._add_seeds(t)
        if kind == IMAGING:
            self._imaging(t)
        elif kind == AE_ONSET:
            if self._ae_onset(t):
                return True
        elif kind == AE_RESOLVED:
            self._resume(t)
        elif kind == LAB_ACTION:
            self._lab_action(t)
        elif kind == LINE_START:
            nxt, self.next, self.t_line = self.next, None, INF
            self._start_line(t, nxt.position, nxt.drug)
        self._schedule_lab(t)
        return False

    # -- lines -----------------------------------------------------------------------------
    def _snapshot(self) -> tuple:
        lz = self.lesions
        return (lz.s, lz.logd, lz.g, lz.a, lz.lam, lz.fv, lz.f_eq, lz.r, lz.killing)

    def _segment(self, t: float) -> None:
        """A state change at ``t``: the drug, dose intensity or lesions in force changed."""
        drug = self.drug
        on = drug is not None and self.di > 0.0
        self.lesions.set_segment(
            t,
            tumour.dose_effect(self.di, self.ctx.params.tumour.effect_at_half_dose) if on else 0.0,
            self.line_start if drug is not None else t,
            drug.viable_floor if on else 1.0,
            drug.necrosis_rate_per_day if on else 0.0,
        )
        self.segments.append(self._snapshot())
        self.labs.set_segment(t, drug.lab_effects_per_day if on else None, self.di)
        self.lab_segments.append(self.labs.snapshot())

    def _start_line(self, t: float, pos: int, drug: DrugParams) -> None:
        p = self.ctx.params
        self.line += 1
        self.pos, self.drug, self.line_start = pos, drug, t
        self.level, self.di, self.holds, self.reductions = 0, 1.0, 0, 0
        heavy = self.b["weight_kg"] >= 60.0 or drug.reduction_levels_below_60kg is None
        self.levels = drug.reduction_levels if heavy else drug.reduction_levels_below_60kg
        self.beyond = False
        self.received.append(drug.name)
        # The line's treatment stream: the drug-effect draws first (sensitivity, pace of
        # resistance), then the AE process.
        self.tox_rng = self.streams.keyed(Purpose.TREATMENT, self.line, drug.code)
        rho = p.tumour.kill_cross_drug_correlation
        z = rho * self.sens_shared + math.sqrt(max(0.0, 1.0 - rho * rho)) * float(
            self.tox_rng.standard_normal()
        )
        responder = (
            drug.responder_fraction is not None and self.responsive < drug.responder_fraction
        )
        # the patient's pace of acquired resistance to this regimen (drawn per line)
        pace = math.exp(p.tumour.resistance_patient_sd_log * float(self.tox_rng.standard_normal()))
        sensitivity = math.exp(p.tumour.kill_patient_sd_log * z)
        rates = tumour.drug_rates(drug, sensitivity, responder, pace)
        if drug.kind != "supportive" and p.tumour.spontaneous_response_fraction > 0.0:
            u = float(self.streams.keyed(Purpose.SPONTANEOUS, self.line, drug.code).random())
            if u < p.tumour.spontaneous_response_fraction:
                rates = tumour.spontaneous(rates, p.tumour)
        self.lesions.set_drug(*rates)
        self._segment(t)
        self.on_drug_since = t
        self.tox = LineToxicity.for_drug(drug, _grade2_share(p, drug))
        self.t_ae = self.tox.next_action_onset(t, self.susceptibility, self.tox_rng)
        self.hold_until = INF
        self.lab_held = None
        self.img = BlockStream(
            self.streams.keyed(Purpose.IMAGING, self.line, drug.code), tumour.MAX_LESIONS
        )
        self.visit = 0
        self.block = self.img.next_block()
        self.radiologist.scan(self.lesions, t, self.line, 0, self.block[0], True, False)
        if self.central is not None:
            self.cimg = BlockStream(
                self.streams.keyed(Purpose.CENTRAL, self.line, drug.code), tumour.MAX_LESIONS
            )
            z = self.cimg.next_block()[0]
            self.central.scan(self.lesions, t, self.line, 0, z, True, False)
        self.new_mvi = False  # known at this line's baseline: not new for it
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
        self.lines_done.append((self.line_start, t))
        self.drug = None
        self.di = 0.0
        self.t_img = self.t_ae = self.hold_until = self.t_lab = INF
        self.lab_held = None
        self.lesions.set_drug(0.0, 0.0, 0.0)
        self._segment(t)
        if reason in ("death", "end_of_follow_up") or self._unfit():
            return
        rng = self.streams.keyed(Purpose.POLICY, self.line, drug.code)
        # Prior-drug restrictions need the whole history: known for first-line cohorts and for
        # presets with treatment streams; a preset with bare index-line weights leaves it unknown.
        history = (
            self.received if self.ctx.history_known or int(self.b["index_line"]) == 1 else None
        )
        h = self.hazards
        nxt = self.policy.after_line(
            self.pos,
            self.line,
            h.ecog,
            self.albi(t),
            h.decompensated,
            self.true_afp(t),
            history,
            rng,
        )
        if nxt is not None:
            self.next, self.t_line = nxt, t + nxt.gap_days

    def _unfit(self) -> bool:
        """Whether the patient is past the clinical-deterioration limits of the policy (ECOG, or
        ascites or encephalopathy of the stopping CTCAE grade): no further systemic line."""
        h, pol = self.hazards, self.ctx.params.policy
        worst = max(h.ascites, h.encephalopathy)
        return h.ecog >= pol.stop_at_ecog or (
            worst > 0 and 1 + worst >= pol.stop_at_decompensation_grade
        )

    def true_afp(self, t: float) -> float:
        """The patient's true (latent) AFP at ``t`` within the current segment."""
        vv = tumour.SPHERE_CM3 * float(self.lesions.volumes_grid(np.array([t]))[1][0])
        raw = math.exp(
            min(
                true_log_afp(self.log_afp0, self.afp_slope, math.log(max(vv, 1e-6)) - self.log_vv0),
                700.0,
            )
        )
        return float(capped(self.ctx.params.afp, raw))

    def albi(self, t: float) -> float:
        """The patient's latent ALBI at ``t`` within the current segment."""
        d3 = self.lesions.volumes_grid(np.array([t]))[0]
        return float(self.hazards.albi(np.array([t]), d3)[0])

    # -- imaging -----------------------------------------------------------------------------
    def _schedule_imaging(self) -> None:
        self.visit += 1
        self.block = self.img.next_block()
        jitter = (2.0 * float(self.block[1][0]) - 1.0) * self.ctx.imaging_window
        self.t_img = self.line_start + self.visit * self.ctx.imaging_interval + jitter

    def _imaging(self, t: float) -> None:
        resp = self.radiologist.scan(
            self.lesions, t, self.line, self.visit, self.block[0], False, self.new_mvi
        )
        if self.central is not None:  # independent review: its reading is recorded
            z = self.cimg.next_block()[0]
            self.central.scan(self.lesions, t, self.line, self.visit, z, False, self.new_mvi)
        self.new_mvi = False
        if resp[0 if self.ctx.criterion == "recist1.1" else 1] != "PD":
            self._schedule_imaging()
            return
        drug = self.drug
        if self.ctx.treat_beyond_progression and self.pos == 0:
            # A protocol that treats until symptomatic progression (SHARP): the index line goes
            # on, scanned as before, until clinical deterioration, toxicity or death.
            self._schedule_imaging()
            return
        if not self.beyond and drug.beyond_progression > 0.0:
            # Immunotherapy beyond a first radiological progression, for some patients: the
            # next progression ends the line.
            u = float(self.streams.keyed(Purpose.BEYOND, self.line, drug.code).random())
            if u < drug.beyond_progression:
                self.beyond = True
                self._schedule_imaging()
                return
        self._end_line(t, "progression")

    # -- dose rules on lab values ------------------------------------------------------------
    def _schedule_lab(self, now: float) -> None:
        """The next lab visit, before the next other decision, at which a dose rule of the
        regimen fires (hold, stop) or a held rule lets the regimen resume."""
        self.t_lab = INF
        drug = self.drug
        if drug is None or not drug.lab_rules or (self.lab_held is None and self.di <= 0.0):
            return
        until = min(self.t_img, self.t_ae, self.hold_until, self.t_line, self.ctx.horizon)
        k0 = int(np.searchsorted(self.lab_days, now, side="right"))
        k1 = int(np.searchsorted(self.lab_days, until, side="right"))
        if k0 >= k1:
            return
        days = self.lab_days[k0:k1]
        d3 = self.lesions.volumes_grid(days)[0]
        latent = self.labs.latent(days, np.log(np.maximum(tumour.SPHERE_CM3 * d3, 1e-9)))
        observed = labs.observe(latent, self.lab_noise[k0:k1, : labs.N], self.ctx.params.labs)
        if self.lab_held is not None:
            rule = self.lab_held
            v = observed[:, labs.ANALYTES.index(rule.lab)] / _scale(rule)
            high = rule.direction == "high"
            back = v < rule.resume if high else v >= rule.resume
            # Still held: a value past the stop limit, or a hold beyond the cap, withdraws it.
            worse = np.zeros(len(v), dtype=bool)
            if rule.stop is not None:
                worse = v > rule.stop if high else v < rule.stop
            late = days - self.lab_since > LAB_HOLD_MAX_DAYS
            hits = np.flatnonzero(back | late | worse)
            if len(hits):
                k = int(hits[0])
                self.t_lab, self.lab_rule = float(days[k]), rule
                self.lab_kind = LAB_RESUME if back[k] and not worse[k] else LAB_STOP
            return
        first, kind, which = len(days), -1, None
        none = np.empty(0, dtype=int)
        for rule in drug.lab_rules:
            v = observed[:, labs.ANALYTES.index(rule.lab)] / _scale(rule)
            high = rule.direction == "high"
            stop = (
                none
                if rule.stop is None
                else np.flatnonzero(v > rule.stop if high else v < rule.stop)
            )
            hold = (
                none
                if rule.hold is None
                else np.flatnonzero(v >= rule.hold if high else v < rule.hold)
            )
            for hits, k_kind in ((stop, LAB_STOP), (hold, LAB_HOLD)):
                if len(hits) and (hits[0] < first or (hits[0] == first and k_kind == LAB_STOP)):
                    first, kind, which = int(hits[0]), k_kind, rule
        if which is not None:
            self.t_lab, self.lab_kind, self.lab_rule = float(days[first]), kind, which

    def _lab_action(self, t: float) -> None:
        rule, kind = self.lab_rule, self.lab_kind
        self.t_lab = INF
        term = RULE_TERMS[rule.lab]
        if kind == LAB_STOP:
            self.lab_actions.append((self.line, term, t, "drug_withdrawn"))
            self._end_line(t, "toxicity")
        elif kind == LAB_HOLD:
            if self.drug.reduce_after_hold and self.level + 1 >= len(self.levels):
                self.lab_actions.append((self.line, term, t, "drug_withdrawn"))
                self._end_line(t, "toxicity")
                return
            self.lab_actions.append((self.line, term, t, "dose_held"))
            self._close_exposure(t)
            self.holds += 1
            self.t_ae = INF
            self.di = 0.0
            self.lab_held, self.lab_since = rule, t
            self._segment(t)
        else:  # resume
            self.lab_held = None
            self._resume(t)

    # -- adverse events ----------------------------------------------------------------------
    def _ae_onset(self, t: float) -> bool:
        ae, grade, duration, u_withdraw = self.tox.draw_action_event(self.tox_rng)
        drug = self.drug
        if grade == 5:
            self._ae_row(ae.term, grade, t, t, "death")
            self.finish(t, died=True, cause="adverse_event")
            return True
        last_level = self.level + 1 >= len(self.levels)
        withdraw = grade >= 3 and u_withdraw < self.ctx.params.toxicity.withdraw_probability
        if grade >= ae.stop_at_grade or withdraw or (drug.reduce_after_hold and last_level):
            self._ae_row(ae.term, grade, t, t + duration, "drug_withdrawn")
            self._end_line(t, "toxicity")
            return False
        self._ae_row(ae.term, grade, t, t + duration, "dose_held")
        self._close_exposure(t)
        self.holds += 1
        self.hold_until = t + duration
        self.t_ae = INF
        self.di = 0.0
        self._segment(t)
        return False

    def _resume(self, t: float) -> None:
        drug = self.drug
        if drug.reduce_after_hold:
            self.level += 1
            self.reductions += 1
        self.di = self.levels[self.level]
        self.hold_until = INF
        self._segment(t)
        self.on_drug_since = t
        self.t_ae = self.tox.next_action_onset(t, self.di * self.susceptibility, self.tox_rng)

    def _ae_row(self, term: str, grade: int, onset: float, end: float, action: str) -> None:
        self.buf.adverse_events.append(
            (self.pid, self.line, self.drug.name, term, grade, onset, end, action)
        )

    # -- the end -------------------------------------------------------------------------------
    def die(self, t: float) -> None:
        # The intensity that fired: the death row of the competing processes at ``t`` (with the
        # latent ALBI of that moment), split into background and disease by a uniform.
        total = float(self.hazards.rates(np.array([t]))[DEATH][0])
        background = self.hazards.death.background(t)
        cause = "background" if self.u_cause * total < background else "cancer"
        self.finish(t, died=True, cause=cause)

    def finish(self, t: float, died: bool, cause: str | None = None) -> None:
        """Close the history at death or at the horizon and fill in what happened in between."""
        if self.drug is not None:
            self._end_line(t, "death" if died else "end_of_follow_up")
        elif self.line == int(self.b["index_line"]) - 1:
            # Supportive care as the index "line" (a natural-history cohort): one row from day 0
            # to the end, no cycles, so every patient has an index line as the contract asks.
            self.buf.lines.append(
                (
                    self.pid,
                    self.line + 1,
                    self.ctx.sequence[0].name,
                    True,
                    0.0,
                    t,
                    "death" if died else "end_of_follow_up",
                    0,
                    0,
                    0,
                )
            )
        row = dict(self.b)
        row.update(
            patient_id=self.pid,
            arm=self.ctx.arm,
            stratum=self.stratum,
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
        if self.lab_actions:
            self.buf.lab_actions.append((self.pid, self.lab_actions))

    def _minor_adverse_events(self) -> None:
        by_line: dict[int, list] = {}
        for a, b_, di, drug, line in self.exposure:
            by_line.setdefault(line, []).append((a, b_, di, drug))
        for line, intervals in by_line.items():
            drug = intervals[0][3]
            tox = LineToxicity.for_drug(drug, _grade2_share(self.ctx.params, drug))
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

    def log_volumes_at(self, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log total and log viable tumour volume at past ``days`` from the recorded segments."""
        starts = np.array([s[0] for s in self.segments])
        which = np.searchsorted(starts, days, side="right") - 1
        total, viable = np.empty(len(days)), np.empty(len(days))
        for k in np.unique(which).tolist():
            s, logd, g, a, lam, fv, f_eq, r, killing = self.segments[k]
            sel = which == k
            x = days[sel][None, :] - s
            grid = logd[:, None] + g[:, None] * x
            if killing:
                grid -= a[:, None] * tumour.phi(lam[:, None], x)
            d3 = np.exp(3.0 * np.minimum(grid, 35.0))
            f = f_eq[:, None] + (fv - f_eq)[:, None] * np.exp(-r[:, None] * x)
            total[sel] = np.log(np.maximum(tumour.SPHERE_CM3 * d3.sum(axis=0), 1e-300))
            viable[sel] = np.log(np.maximum(tumour.SPHERE_CM3 * (d3 * f).sum(axis=0), 1e-6))
        return total, viable

    def _labs(self, last: float) -> None:
        """Lab draws on the grid up to the last follow-up (only during lines unless the
        scenario observes labs off treatment too), from the same noise as the dose rules."""
        k = np.flatnonzero(self.lab_days <= last + 1e-9)
        if not self.ctx.labs_off_treatment:
            days = self.lab_days[k]
            during = np.zeros(len(k), dtype=bool)
            for start, end in self.lines_done:
                during |= (days >= start - 1e-9) & (days <= end + 1e-9)
            k = k[during]
        if not len(k):
            return
        days = self.lab_days[k]
        p = self.ctx.params
        logv, logvv = self.log_volumes_at(days)
        latent = labs.latent_at(self.labs, self.lab_segments, days, logv)
        observed = labs.observe(latent, self.lab_noise[k, : labs.N], p.labs)
        afp = observed_afp(
            p.afp,
            true_log_afp(self.log_afp0, self.afp_slope, logvv - self.log_vv0),
            self.lab_noise[k, labs.N],
        )
        alb, bil, inr = observed[:, labs.ALB], observed[:, labs.BIL], observed[:, labs.INR]
        log = self.status_log
        at = np.searchsorted([s[0] for s in log], days, side="right") - 1
        status = np.array([s[1:] for s in log], dtype=np.int64)[at]
        values = np.column_stack(
            [
                alb,
                bil,
                inr,
                albi(alb, bil),
                status[:, 0],
                status[:, 1],
                child_pugh_score(alb, bil, inr, status[:, 0], status[:, 1]),
                status[:, 2],
                afp,
                observed[:, labs.AST],
                observed[:, labs.ALT],
                observed[:, labs.PLT],
                observed[:, labs.HB],
                observed[:, labs.NH3],
                observed[:, labs.UPROT],
            ]
        )
        self.buf.labs.append((self.pid, days, values))


def _scale(rule) -> float:
    """The unit of a rule's thresholds: 1, or the analyte's upper limit of normal."""
    return float(labs.ULN[labs.ANALYTES.index(rule.lab)]) if rule.scale == "uln" else 1.0


def _grade2_share(params: ModelParameters, drug: DrugParams) -> float:
    """Share of grade 2 onsets acted on for ``drug``: the model's intolerable share for a
    regimen held and reduced for intolerable grade 2 events (oral kinase inhibitors), else 0."""
    return params.toxicity.grade2_action_probability if drug.acts_on_intolerable_grade2 else 0.0
