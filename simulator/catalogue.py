"""The therapy catalogue: one data file per regimen in ``therapies/`` (DESIGN section 4).

The files hold dosing, label restrictions, effect priors, necrosis, lab effects, lab dose rules,
beyond-progression use and adverse-event profiles, each with its source. They are read once per process and validated here; the values
in use are assembled with ``params/default.yaml`` by :mod:`hccsim.simulator.parameters`.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hccsim.simulator.yamlio import parse_yaml_text

Kind = Literal["antiangiogenic", "immunotherapy", "none", "supportive"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dosing(_Strict):
    route: Literal["iv", "oral", "none"]
    dose: float = Field(ge=0)
    unit: str
    weight_based: bool
    cycle_days: int = Field(gt=0)
    reduction_levels: tuple[float, ...] = Field(min_length=1)
    #: Lenvatinib: 8 mg below 60 kg, reduced to 4 mg then 4 mg every other day, as fractions
    #: of that patient's full dose.
    reduction_levels_below_60kg: tuple[float, ...] | None = None
    reduce_after_hold: bool
    #: Held and reduced for grade 2 events the patient cannot tolerate (oral kinase
    #: inhibitors; the share is ``toxicity.grade2_action_probability``).
    acts_on_intolerable_grade2: bool = False
    source: str

    @field_validator("reduction_levels")
    @classmethod
    def _levels(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if v[0] != 1.0 or any(not 0 < x <= 1 for x in v) or list(v) != sorted(v, reverse=True):
            raise ValueError("reduction_levels must start at 1.0 and decrease within (0, 1]")
        return v


class TypicalDuration(_Strict):
    """Median time on the regimen in its pivotal setting: used to place prior lines in time."""

    months: float = Field(ge=0)
    source: str


class Restrictions(_Strict):
    afp_min: float | None = None
    requires_prior: tuple[str, ...] = ()
    source: str | None = None


class Effect(_Strict):
    kill_rate_per_day: float = Field(ge=0)
    resistance_rate_per_day: float = Field(ge=0)
    responder_fraction: float | None = Field(default=None, ge=0, le=1)
    responder_kill_rate_per_day: float | None = Field(default=None, ge=0)
    responder_resistance_rate_per_day: float | None = Field(default=None, ge=0)
    #: Share of each lesion's own growth rate the drug suppresses at full dose (cytostatic
    #: effect; above 1 the lesion shrinks), waning at the resistance rate like the kill rate.
    growth_inhibition: float = Field(default=0.0, ge=0, le=2)
    source: str

    @model_validator(mode="after")
    def _mixture(self) -> Effect:
        parts = (self.responder_kill_rate_per_day, self.responder_resistance_rate_per_day)
        if (self.responder_fraction is None) != all(p is None for p in parts):
            raise ValueError("a responder mixture needs its fraction, kill rate and resistance")
        return self


class Necrosis(_Strict):
    """How the drug lowers the viable (enhancing) fraction of lesions (mRECIST)."""

    rate_per_day: float = Field(ge=0)
    viable_floor: float = Field(gt=0, le=1)
    source: str


#: The analytes a regimen can move (the labs table's columns, AFP apart; see disease/labs.py).
LAB_ANALYTES = (
    "albumin_g_dl", "bilirubin_mg_dl", "inr", "ast_u_l", "alt_u_l", "platelets_10e9_l",
    "haemoglobin_g_dl", "ammonia_umol_l", "urine_protein_g_24h",
)  # fmt: skip


class LabEffects(_Strict):
    """Change per month at full dose: g/dL for albumin and haemoglobin, log scale otherwise."""

    per_month: dict[Literal[LAB_ANALYTES], float]  # type: ignore[valid-type]
    source: str

    @model_validator(mode="after")
    def _all(self) -> LabEffects:
        if sorted(self.per_month) != sorted(LAB_ANALYTES):
            raise ValueError(f"per_month must give every analyte: {', '.join(LAB_ANALYTES)}")
        return self


class LabRule(_Strict):
    """A label dose rule read from a lab value at lab visits on treatment: hold at ``hold``,
    resume once past ``resume``, stop at ``stop``; ``direction`` says which side is bad and
    ``scale: uln`` gives thresholds in multiples of the upper limit of normal."""

    lab: Literal[LAB_ANALYTES]  # type: ignore[valid-type]
    direction: Literal["high", "low"]
    scale: Literal["value", "uln"] = "value"
    hold: float | None = Field(None, gt=0)
    resume: float | None = Field(None, gt=0)
    stop: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> LabRule:
        if self.hold is None and self.stop is None:
            raise ValueError("a lab rule needs hold or stop")
        if self.hold is not None and self.resume is None:
            raise ValueError("a hold needs its resume threshold")
        return self


class LabRules(_Strict):
    rules: tuple[LabRule, ...] = ()
    source: str = ""


class BeyondProgression(_Strict):
    """Share of patients who continue the regimen after a first radiological progression."""

    probability: float = Field(ge=0, le=1)
    source: str


class AETerm(_Strict):
    rate_per_month: float = Field(ge=0)
    grades: tuple[float, float, float, float, float]
    duration_days: float = Field(gt=0)
    #: The grade from which an onset holds the regimen (a hyperuricemia of grade 3 does not).
    hold_at_grade: int = Field(default=3, ge=1, le=5)
    stop_at_grade: int = Field(default=4, ge=1, le=5)

    @field_validator("grades")
    @classmethod
    def _probabilities(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(p < 0 for p in v) or abs(sum(v) - 1.0) > 1e-9:
            raise ValueError("grade probabilities must be >= 0 and sum to 1")
        return v


class AdverseEvents(_Strict):
    source: str
    terms: dict[str, AETerm]


class Therapy(_Strict):
    name: str
    code: int = Field(ge=0, lt=2**16)
    label: str
    description: str
    kind: Kind
    dosing: Dosing
    typical_duration: TypicalDuration
    restrictions: Restrictions
    effect: Effect
    necrosis: Necrosis
    lab_effects: LabEffects
    lab_rules: LabRules = LabRules()
    beyond_progression: BeyondProgression | None = None
    adverse_events: AdverseEvents


@cache
def catalogue() -> dict[str, Therapy]:
    """All regimens by name, validated; codes are unique."""
    out: dict[str, Therapy] = {}
    folder = resources.files("hccsim.simulator.therapies")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        source = f"therapies/{entry.name}"
        therapy = Therapy.model_validate(parse_yaml_text(entry.read_text("utf-8"), source))
        if therapy.name != entry.name.removesuffix(".yaml"):
            raise ValueError(f"{source}: name {therapy.name!r} does not match the file name")
        out[therapy.name] = therapy
    codes = [t.code for t in out.values()]
    if len(set(codes)) != len(codes):
        raise ValueError("therapy codes must be unique: they key the random streams")
    return out


def drug_names() -> list[str]:
    return sorted(catalogue())
