"""The parameter set in use: ``params/default.yaml`` over the catalogue's priors, then a
scenario's ``parameters:`` overrides (DESIGN sections 4 and 9).

Every overridable quantity has a dotted path, for example ``death.base_rate_per_month`` or
``drugs.ramucirumab.kill_rate_per_day`` or ``drugs.ramucirumab.ae.hypertension.rate_per_month``.
:func:`parameter_paths` lists them; :func:`resolve` builds the frozen objects the models use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from hccsim.simulator.catalogue import LAB_ANALYTES, Therapy, catalogue
from hccsim.simulator.disease.labs import LabParams
from hccsim.simulator.yamlio import parse_yaml_text

_SECTIONS = ("tumour", "death", "policy", "toxicity", "afp", "decompensation", "status")
#: Lab parameters: one block per analyte (disease/labs.py), six constants each.
_LAB_FIELDS = (
    "washout_per_day", "burden", "visit_sd", "susceptibility_sd_log", "baseline_median",
    "baseline_sd_log",
)  # fmt: skip
#: Analytes whose baseline comes from the population preset (drawn by the copula), so they have
#: no ``baseline_median`` or ``baseline_sd_log`` of their own.
_FROM_PRESET = ("albumin_g_dl", "bilirubin_mg_dl", "inr")


def _lab_fields(analyte: str) -> tuple[str, ...]:
    return _LAB_FIELDS[:4] if analyte in _FROM_PRESET else _LAB_FIELDS


@dataclass(frozen=True, slots=True)
class TumourParams:
    growth_median_per_day: float
    growth_patient_sd_log: float
    growth_log10_afp_slope: float
    growth_lesion_sd_log: float
    kill_patient_sd_log: float
    kill_cross_drug_correlation: float
    kill_lesion_sd_log: float
    resistance_patient_sd_log: float
    resistance_lesion_sd_log: float
    measurement_sd_log: float
    central_equivocal_sd: float
    disappear_mm: float
    too_small_mm: float
    nontarget_pd_volume_ratio: float
    nonenhancing_after_tace: float
    viable_fraction_low: float
    viable_recovery_rate_per_day: float
    liver_volume_cm3: float
    new_lesion_rate_per_month: float
    new_lesion_reference_cm3: float
    new_lesion_exponent: float
    new_lesion_seed_mm: float
    new_lesion_liver_share: float
    new_lesion_escape_share: float
    new_lesion_baseline_pool: float
    new_lesion_patient_sd_log: float
    new_lesion_growth_exponent: float
    effect_at_half_dose: float
    vascular_invasion_rate_per_month: float
    spontaneous_response_fraction: float
    spontaneous_kill_rate_per_day: float
    spontaneous_resistance_rate_per_day: float


@dataclass(frozen=True, slots=True)
class DeathParams:
    base_rate_per_month: float
    reference_burden_cm3: float
    burden_exponent: float
    log_hr_ecog: float
    log_hr_decompensated: float
    log_hr_mvi: float
    log_hr_ehm: float
    log_hr_albi: float
    albi_reference: float
    log_hr_log10_afp: float
    log10_afp_reference: float
    background_gompertz_log_rate_at_70: float
    background_gompertz_slope_per_year: float
    background_female_log_hr: float
    lethal_burden_cm3: float
    lethal_burden_rate_per_month: float
    lethal_burden_exponent: float
    era_hazard_ratio_per_decade: float
    era_reference_year: float


@dataclass(frozen=True, slots=True)
class PolicyParams:
    next_line_logit_intercept: float
    next_line_logit_per_line: float
    next_line_logit_per_ecog: float
    next_line_logit_per_albi: float
    next_line_logit_decompensated: float
    albi_reference: float
    gap_median_days: float
    gap_sd_log: float
    stop_at_ecog: float
    stop_at_decompensation_grade: float


@dataclass(frozen=True, slots=True)
class ToxicityParams:
    susceptibility_sd_log: float
    grade2_action_probability: float
    withdraw_probability: float


@dataclass(frozen=True, slots=True)
class AfpParams:
    burden_slope: float
    slope_patient_sd_log: float
    visit_sd_log: float
    max_ng_ml: float


@dataclass(frozen=True, slots=True)
class DecompensationParams:
    ascites_rate_per_month: float
    ascites_log_hr_per_albi: float
    encephalopathy_rate_per_month: float
    encephalopathy_log_hr_per_albi: float
    albi_reference: float


@dataclass(frozen=True, slots=True)
class StatusParams:
    worsening_rate_per_month: float
    reference_burden_cm3: float
    burden_exponent: float
    log_hr_per_albi: float
    log_hr_decompensated: float
    albi_reference: float


@dataclass(frozen=True, slots=True)
class AEParams:
    term: str
    rate_per_day: float
    grade_probs: tuple[float, float, float, float, float]
    duration_days: float
    hold_at_grade: int
    stop_at_grade: int


@dataclass(frozen=True, slots=True)
class DrugParams:
    name: str
    code: int
    kind: str
    kill_rate_per_day: float
    resistance_rate_per_day: float
    responder_fraction: float | None
    responder_kill_rate_per_day: float | None
    responder_resistance_rate_per_day: float | None
    growth_inhibition: float
    necrosis_rate_per_day: float
    viable_floor: float
    lab_effects_per_day: np.ndarray  # per analyte (disease/labs.py ANALYTES order)
    lab_rules: tuple
    beyond_progression: float
    cycle_days: int
    typical_duration_days: float
    reduction_levels: tuple[float, ...]
    reduction_levels_below_60kg: tuple[float, ...] | None
    reduce_after_hold: bool
    acts_on_intolerable_grade2: bool
    afp_min: float | None
    requires_prior: tuple[str, ...]
    adverse_events: tuple[AEParams, ...]

    @property
    def active(self) -> bool:
        """An active line is imaged and can end by progression; supportive care is not."""
        return self.kind != "supportive"


@dataclass(frozen=True, slots=True)
class ModelParameters:
    version: str
    tumour: TumourParams
    death: DeathParams
    policy: PolicyParams
    toxicity: ToxicityParams
    afp: AfpParams
    decompensation: DecompensationParams
    status: StatusParams
    labs: LabParams
    drugs: Mapping[str, DrugParams]


_CLASSES = {
    "tumour": TumourParams,
    "death": DeathParams,
    "policy": PolicyParams,
    "toxicity": ToxicityParams,
    "afp": AfpParams,
    "decompensation": DecompensationParams,
    "status": StatusParams,
}

_DRUG_EFFECT_KEYS = (
    "kill_rate_per_day",
    "resistance_rate_per_day",
    "responder_fraction",
    "responder_kill_rate_per_day",
    "responder_resistance_rate_per_day",
    "growth_inhibition",
    "necrosis_rate_per_day",
    "viable_floor",
)


def _strip_sources(node: Any) -> Any:
    """``{value: x, source: s}`` leaves become ``x``; other mappings are walked."""
    if isinstance(node, dict):
        if "value" in node and set(node) <= {"value", "source"}:
            return node["value"]
        return {k: _strip_sources(v) for k, v in node.items()}
    return node


#: Environment variable naming another parameter file to use in place of params/default.yaml
#: (``hccsim calibrate --check --params FILE`` judges a candidate set this way; worker
#: processes inherit it).
PARAMS_ENV = "HCCSIM_PARAMS"


def params_source() -> tuple[str, str]:
    """``(label, text)`` of the parameter file in use."""
    import os

    other = os.environ.get(PARAMS_ENV)
    if other:
        from pathlib import Path

        return other, Path(other).read_text("utf-8")
    text = resources.files("hccsim.simulator.params").joinpath("default.yaml").read_text("utf-8")
    return "params/default.yaml", text


@cache
def _default_tree() -> dict[str, Any]:
    label, text = params_source()
    return _strip_sources(parse_yaml_text(text, label))


def _drug_flat(therapy: Therapy) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key in _DRUG_EFFECT_KEYS:
        source = (
            therapy.necrosis if key in ("necrosis_rate_per_day", "viable_floor") else therapy.effect
        )
        flat[key] = getattr(source, "rate_per_day" if key == "necrosis_rate_per_day" else key)
    for analyte, value in therapy.lab_effects.per_month.items():
        flat[f"lab_effects.{analyte}"] = value
    for term, ae in therapy.adverse_events.terms.items():
        flat[f"ae.{term}.rate_per_month"] = ae.rate_per_month
        flat[f"ae.{term}.duration_days"] = ae.duration_days
    return flat


@cache
def default_flat() -> dict[str, Any]:
    """Every overridable parameter by dotted path, with its value in the default set."""
    tree = _default_tree()
    flat: dict[str, Any] = {}
    for section in _SECTIONS:
        names = [f.name for f in fields(_CLASSES[section])]
        values = tree[section]
        if sorted(values) != sorted(names):
            raise ValueError(f"params/default.yaml: section {section} must give exactly {names}")
        for name in names:
            flat[f"{section}.{name}"] = float(values[name])
    labs = tree["labs"]
    if sorted(labs) != sorted(LAB_ANALYTES):
        raise ValueError(f"params/default.yaml: section labs must give exactly {LAB_ANALYTES}")
    for analyte in LAB_ANALYTES:
        wanted = _lab_fields(analyte)
        if sorted(labs[analyte]) != sorted(wanted):
            raise ValueError(f"params/default.yaml: labs.{analyte} must give exactly {wanted}")
        for name in wanted:
            flat[f"labs.{analyte}.{name}"] = float(labs[analyte][name])
    for name, therapy in catalogue().items():
        for key, value in _drug_flat(therapy).items():
            flat[f"drugs.{name}.{key}"] = value
    for path, value in _flatten(tree.get("drugs") or {}, "drugs").items():
        if path not in flat:
            raise ValueError(f"params/default.yaml: {path} is not a catalogue parameter")
        flat[path] = value
    return flat


def parameter_paths() -> list[str]:
    return sorted(default_flat())


def _flatten(node: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(_flatten(value, path))
        else:
            out[path] = value
    return out


def flatten_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Nested or dotted override mappings to ``{dotted.path: value}``."""
    return _flatten(overrides, "")


#: Leaves with bounds other than "a number >= 0": (low, high, low is exclusive).
_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "responder_fraction": (0.0, 1.0, False),
    "spontaneous_response_fraction": (0.0, 1.0, False),
    "grade2_action_probability": (0.0, 1.0, False),
    "withdraw_probability": (0.0, 1.0, False),
    "growth_inhibition": (0.0, 2.0, False),
    "kill_cross_drug_correlation": (-1.0, 1.0, False),
    "viable_fraction_low": (0.0, 1.0, False),
    "nonenhancing_after_tace": (0.0, 1.0, False),
    "viable_floor": (0.0, 1.0, False),
    "new_lesion_liver_share": (0.0, 1.0, False),
    "new_lesion_escape_share": (0.0, 1.0, False),
    "new_lesion_baseline_pool": (0.0, 1.0, False),
    "effect_at_half_dose": (0.5, 1.0, False),
    "liver_volume_cm3": (0.0, math.inf, True),
    "max_ng_ml": (0.0, math.inf, True),
    "new_lesion_reference_cm3": (0.0, math.inf, True),
    "new_lesion_seed_mm": (0.0, math.inf, True),
    "reference_burden_cm3": (0.0, math.inf, True),
    "lethal_burden_cm3": (0.0, math.inf, True),
    "era_hazard_ratio_per_decade": (0.0, math.inf, True),
    "disappear_mm": (0.0, math.inf, True),
    "too_small_mm": (0.0, math.inf, True),
    "nontarget_pd_volume_ratio": (0.0, math.inf, True),
    "gap_median_days": (0.0, math.inf, True),
    "duration_days": (0.0, math.inf, True),
    "washout_per_day": (0.0, math.inf, True),
    "baseline_median": (0.0, math.inf, True),
    # ECOG runs 0-4 (5 switches the rule off); ascites and encephalopathy reach CTCAE grade 2
    # or 3 in the model (4 switches it off).
    "stop_at_ecog": (1.0, 5.0, False),
    "stop_at_decompensation_grade": (2.0, 4.0, False),
}


def _tree(paths) -> dict:
    root: dict = {}
    for path in paths:
        node = root
        for part in path.split("."):
            node = node.setdefault(part, {})
    return root


def check_overrides(overrides: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Problems with a scenario's ``parameters:`` block as ``(path, message)`` pairs.

    Keys may be nested mappings or dotted paths (or both). An unknown name is reported at the
    first part that does not exist, with the names allowed there and the closest one.
    """
    defaults = default_flat()
    problems: list[tuple[str, str]] = []
    _walk(overrides, [], _tree(defaults), defaults, problems)
    return problems


def _walk(value: Any, path: list[str], node: dict, defaults, problems) -> None:
    import difflib

    from hccsim.simulator.yamlio import shorten

    here = ".".join(path)
    if isinstance(value, Mapping):
        if not node:  # a single parameter given a mapping
            problems.append(
                (
                    here,
                    f"{shorten(value)} is not allowed; expected a number (default {defaults[here]:g})",
                )
            )
            return
        for key, sub in value.items():
            parts = str(key).split(".")
            cur, walked = node, list(path)
            for part in parts:
                if part not in cur:
                    allowed = sorted(cur)
                    hint = difflib.get_close_matches(part, allowed, n=1)
                    where = f"under {'.'.join(walked)}" if walked else "at this level"
                    if len(allowed) <= 15:
                        msg = f"unknown parameter; allowed {where}: {', '.join(allowed)}"
                        msg += f" (did you mean {hint[0]!r}?)" if hint else ""
                    else:  # a long list helps nobody: the closest names, and where to see all
                        close = difflib.get_close_matches(part, allowed, n=3, cutoff=0.0)
                        msg = (
                            f"unknown parameter; {len(allowed)} are allowed {where}, the closest "
                            f"being {', '.join(close)} (hccsim list parameters shows them all)"
                        )
                    problems.append((".".join([*walked, part]), msg))
                    break
                cur = cur[part]
                walked.append(part)
            else:
                _walk(sub, walked, cur, defaults, problems)
        return
    if node:  # a group of parameters given a single value
        problems.append(
            (
                here,
                f"{shorten(value)} is not allowed; expected a mapping of: {', '.join(sorted(node))}",
            )
        )
        return
    default = defaults[here]
    if default is None:
        problems.append((here, "not used by this regimen (it has no responder mixture)"))
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(
            (
                here,
                f"{shorten(value)} is not allowed; expected a finite number (default {default:g})",
            )
        )
        return
    leaf = path[-1]
    if leaf in _BOUNDS:
        low, high, open_low = _BOUNDS[leaf]
        bad = value <= low if open_low else value < low
        if bad or value > high:
            if high == math.inf:
                expected = f"a number {'>' if open_low else '>='} {low:g}"
            else:
                expected = f"a number from {low:g} to {high:g}"
            problems.append(
                (
                    here,
                    f"{shorten(value)} is not allowed; expected {expected} (default {default:g})",
                )
            )
    elif value < 0 and not _may_be_negative(here):
        problems.append(
            (here, f"{shorten(value)} is not allowed; expected a number >= 0 (default {default:g})")
        )


def _may_be_negative(path: str) -> bool:
    leaf = path.rsplit(".", 1)[-1]
    return (
        leaf.startswith(("log_hr", "next_line_logit", "background_"))
        or leaf in LAB_ANALYTES  # drugs.X.lab_effects.<analyte>: either sign
        or leaf == "burden"
        or leaf.endswith("_reference")
        or leaf == "burden_slope"
    )


def resolve(overrides: Mapping[str, Any] | None = None) -> ModelParameters:
    """The parameter objects for a run: defaults, then ``overrides`` (already validated)."""
    flat = dict(default_flat())
    if overrides:
        for path, value in flatten_overrides(overrides).items():
            if path not in flat:
                raise KeyError(path)
            flat[path] = float(value)
    return build(flat)


def build(flat: Mapping[str, Any]) -> ModelParameters:
    sections = {}
    for section, cls in _CLASSES.items():
        sections[section] = cls(**{f.name: flat[f"{section}.{f.name}"] for f in fields(cls)})
    drugs: dict[str, DrugParams] = {}
    for name, therapy in catalogue().items():
        p = f"drugs.{name}."
        aes = tuple(
            AEParams(
                term=term,
                rate_per_day=flat[f"{p}ae.{term}.rate_per_month"] / 30.4375,
                grade_probs=ae.grades,
                duration_days=flat[f"{p}ae.{term}.duration_days"],
                hold_at_grade=ae.hold_at_grade,
                stop_at_grade=ae.stop_at_grade,
            )
            for term, ae in therapy.adverse_events.terms.items()
        )
        drugs[name] = DrugParams(
            name=name,
            code=therapy.code,
            kind=therapy.kind,
            **{key: flat[p + key] for key in _DRUG_EFFECT_KEYS},
            lab_effects_per_day=np.array([flat[f"{p}lab_effects.{a}"] for a in LAB_ANALYTES])
            / 30.4375,
            lab_rules=therapy.lab_rules.rules,
            beyond_progression=therapy.beyond_progression.probability
            if therapy.beyond_progression
            else 0.0,
            cycle_days=therapy.dosing.cycle_days,
            typical_duration_days=therapy.typical_duration.months * 30.4375,
            reduction_levels=therapy.dosing.reduction_levels,
            reduction_levels_below_60kg=therapy.dosing.reduction_levels_below_60kg,
            reduce_after_hold=therapy.dosing.reduce_after_hold,
            acts_on_intolerable_grade2=therapy.dosing.acts_on_intolerable_grade2,
            afp_min=therapy.restrictions.afp_min,
            requires_prior=therapy.restrictions.requires_prior,
            adverse_events=aes,
        )
    labs = LabParams(
        *(
            np.array([flat.get(f"labs.{a}.{f}", math.nan) for a in LAB_ANALYTES])
            for f in _LAB_FIELDS
        )
    )
    return ModelParameters(
        version=str(_default_tree()["version"]), drugs=drugs, labs=labs, **sections
    )
