"""Scenario files: the format of DESIGN section 9, validated with clear messages.

A scenario is YAML. Loading is bounded for any input (``yamlio``). Validation reports every
problem at once; each message names the file, the dotted path of the field, the bad value and
what is allowed, for example::

    scenarios/x.yaml: observation.imaging_weeks: -4 is not allowed; expected a positive number of weeks, e.g. 6

Sections: ``name``, ``description``, ``seed``, ``replicates``, ``population``, ``cohort``,
``treatment``, ``observation``, ``analysis``, ``power`` (for ``hccsim power``), ``compare``
(options of ``hccsim compare``), ``sweep`` (the grid of ``hccsim sweep``), ``parameters``.
Every point of a sweep grid is validated as a scenario of its own, and its problems are
reported at ``sweep.grid.<path>``.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from hccsim.simulator import cohort, parameters
from hccsim.simulator.catalogue import catalogue, drug_names
from hccsim.simulator.errors import InputError
from hccsim.simulator.streams import MAX_SEED
from hccsim.simulator.yamlio import parse_yaml_text, read_yaml, shorten

DAYS_PER_WEEK = 7.0
DAYS_PER_MONTH = 30.4375


def _f(default: Any = ..., *, expected: str, description: str = "", **kw) -> Any:
    """A field whose ``expected`` text completes the message "... is not allowed; expected ..."."""
    return Field(
        default, description=description or expected, json_schema_extra={"expected": expected}, **kw
    )


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _drug(name: str) -> str:
    known = drug_names()
    if name not in known:
        hint = difflib.get_close_matches(name, known, n=1)
        raise PydanticCustomError(
            "hccsim",
            "{message}",
            {
                "message": "not a drug of the catalogue; expected one of: "
                + ", ".join(known)
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
            },
        )
    return name


_DRUG_ITEM = Annotated[
    str,
    AfterValidator(_drug),
    Field(
        json_schema_extra={
            "expected": "the name of a drug of the catalogue (hccsim list drugs), e.g. sorafenib"
        }
    ),
]


class Eligibility(_Section):
    """Who may enter, on top of the preset's own eligibility; patients are re-drawn until they
    meet every criterion (at most 1,000 candidates each)."""

    afp_min: float | None = _f(None, expected="a number of ng/mL >= 0, e.g. 400", ge=0)
    afp_max: float | None = _f(None, expected="a positive number of ng/mL, e.g. 400", gt=0)
    child_pugh_classes: list[Literal["A", "B", "C"]] | None = _f(
        None, expected="a list of Child-Pugh classes among A, B, C, e.g. [A]", min_length=1
    )
    child_pugh_max_score: int | None = _f(
        None, expected="a whole Child-Pugh score from 5 to 15, e.g. 7", ge=5, le=15
    )
    ecog_max: int | None = _f(
        None, expected="a whole ECOG performance status from 0 to 4, e.g. 1", ge=0, le=4
    )
    bclc: list[Literal["0", "A", "B", "C", "D"]] | None = _f(
        None, expected="a list of BCLC stages among 0, A, B, C, D, e.g. [B, C]", min_length=1
    )
    index_lines: list[Annotated[int, Field(ge=1, le=20)]] | None = _f(
        None, expected="a list of index-line numbers from 1 to 20, e.g. [2, 3]", min_length=1
    )
    prior_drugs_any: list[_DRUG_ITEM] | None = _f(
        None,
        expected="a list of drugs, at least one of which the patient received, e.g. [sorafenib]",
        min_length=1,
    )
    prior_drugs_none: list[_DRUG_ITEM] | None = _f(
        None,
        expected="a list of drugs the patient must not have received, e.g. [lenvatinib]",
        min_length=1,
    )
    occupation_max_pct: float | None = _f(
        None, expected="a percentage of the liver above 0 and up to 100, e.g. 50", gt=0, le=100
    )
    measurable_disease: bool = _f(
        False, expected="true or false: require at least one measurable (>= 10 mm) liver lesion"
    )

    def criteria(self) -> cohort.Criteria:
        return cohort.Criteria.model_validate(self.model_dump())


class PriorStream(_Section):
    prior: list[_DRUG_ITEM] = _f(
        expected="the regimens received before the index line, in order, e.g. [atezolizumab_bevacizumab]",
        min_length=1,
        max_length=8,
    )
    weight: float = _f(
        1.0, expected="a positive relative weight of this stream, e.g. 3", gt=0, le=1_000_000
    )


class Population(_Section):
    preset: str = _f(
        expected="the name of a population preset (hccsim list presets), e.g. anchor_ramucirumab",
        description="Population preset: the joint distribution of baseline covariates.",
    )
    overrides: dict[
        str,
        Annotated[
            dict[
                str,
                Annotated[
                    float, Field(json_schema_extra={"expected": "a finite number, e.g. 3000"})
                ],
            ],
            Field(
                json_schema_extra={"expected": "a mapping parameter -> number, e.g. {median: 3000}"}
            ),
        ],
    ] = _f(
        {},
        expected="a mapping covariate -> {parameter: number}, e.g. {afp_ng_ml: {median: 3000}}",
        description="Replace parameters of the preset's marginal distributions.",
    )
    eligibility: Eligibility = _f(
        Eligibility(),
        expected="a mapping of criteria (afp_min, child_pugh_classes, ecog_max, bclc, index_lines, ...)",
        description="Criteria on top of the preset's own eligibility.",
    )
    prior_lines: list[PriorStream] | None = _f(
        None,
        expected="a list of 1 to 20 streams, each {prior: [regimens before the index line], weight}, e.g. [{prior: [atezolizumab_bevacizumab]}] (replaces the preset's own prior lines)",
        description="How patients reached the index line, replacing the preset's treatment streams (the baseline marginals stay the preset's).",
        min_length=1,
        max_length=20,
    )

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str) -> str:
        names = cohort.preset_names()
        if v not in names:
            hint = difflib.get_close_matches(v, names, n=1)
            raise PydanticCustomError(
                "hccsim",
                "{message}",
                {
                    "message": "not a population preset; expected one of: "
                    + ", ".join(names)
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                },
            )
        return v


class Cohort(_Section):
    size: int = _f(
        expected="a whole number of patients from 1 to 10,000,000, e.g. 37", ge=1, le=10_000_000
    )
    entry: Literal["index_line", "first_line"] = _f(
        "index_line",
        expected="index_line (start at the preset's index line) or first_line",
    )
    accrual_per_month: float | None = _f(
        None,
        expected="a positive number of patients per month, e.g. 2.5 (or leave it out: all patients enter at day 0)",
        gt=0,
        le=1e6,
    )
    batch_size: int = _f(
        1000,
        expected="a whole number of patients per simpy environment from 1 to 100,000 (results do not depend on it)",
        ge=1,
        le=100_000,
    )
    accrual_ramp_up_months: float | None = _f(
        None,
        expected="a positive number of months over which accrual rises linearly to accrual_per_month, e.g. 6 (needs accrual_per_month)",
        gt=0,
        le=120,
    )
    enrolment_year: float = _f(
        2020.0,
        expected="a calendar year from 1990 to 2040 at the middle of enrolment, e.g. 2018.5",
        description="Calendar time of enrolment, for the era effect on the disease death hazard (death.era_hazard_ratio_per_decade; 2020 = current practice).",
        ge=1990,
        le=2040,
    )

    @model_validator(mode="after")
    def _ramp_needs_rate(self) -> Cohort:
        if self.accrual_ramp_up_months is not None and self.accrual_per_month is None:
            raise PydanticCustomError(
                "hccsim",
                "{message}",
                {
                    "message": "a ramp-up needs a full accrual rate; expected accrual_per_month too (or leave accrual_ramp_up_months out)",
                    "field": "accrual_ramp_up_months",
                    "value": self.accrual_ramp_up_months,
                },
            )
        return self


_SEQUENCE_ITEM = Annotated[
    str,
    AfterValidator(_drug),
    Field(
        json_schema_extra={
            "expected": "the name of a drug of the catalogue (hccsim list drugs), e.g. ramucirumab"
        }
    ),
]


def _supportive_last(v: list[str] | None) -> list[str] | None:
    """Best supportive care may only end a sequence."""
    if v is not None:
        for i, name in enumerate(v[:-1]):
            if catalogue()[name].kind == "supportive":
                raise PydanticCustomError(
                    "hccsim",
                    "{message}",
                    {
                        "message": "best supportive care ends a sequence; expected it only as the last entry",
                        "item": i,
                        "value": name,
                    },
                )
    return v


STRATIFICATION_FACTORS = (
    "ecog",
    "afp_ge_400",
    "child_pugh",
    "mvi_or_ehm",
    "bclc",
    "line",
    "age_ge_65",
)


class Arm(_Section):
    name: str = _f(
        expected="a short arm name of letters, digits, '-', '_' or '.', e.g. ramucirumab",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$",
    )
    sequence: list[_SEQUENCE_ITEM] = _f(
        expected="a list of 1 to 12 regimens from the index line on, e.g. [ramucirumab, regorafenib]",
        min_length=1,
        max_length=12,
    )
    allocation: int = _f(
        1, expected="a whole-number allocation weight from 1 to 10, e.g. 2 for 2:1", ge=1, le=10
    )
    death_hazard_ratio: float = _f(
        1.0,
        expected="a positive number multiplying this arm's death hazard, e.g. 0.8 (an assumed direct effect for sensitivity or validation; 1: none)",
        gt=0,
        le=10,
    )

    @field_validator("sequence")
    @classmethod
    def _supportive_last(cls, v):
        return _supportive_last(v)


class Randomisation(_Section):
    block_multiple: int = _f(
        1,
        expected="a whole number from 1 to 10: each permuted block holds this many times the sum of the allocation weights",
        ge=1,
        le=10,
    )
    stratify_by: list[Literal[STRATIFICATION_FACTORS]] = _f(
        [],
        expected="a list of up to 4 stratification factors from: "
        + ", ".join(STRATIFICATION_FACTORS),
        max_length=4,
    )


class Treatment(_Section):
    sequence: list[_SEQUENCE_ITEM] | None = _f(
        None,
        expected="a list of 1 to 12 regimens from the index line on, e.g. [ramucirumab, regorafenib] (or arms for a randomised trial)",
        min_length=1,
        max_length=12,
    )
    arms: list[Arm] | None = _f(
        None,
        expected="a list of 2 to 6 arms, each with name, sequence and allocation (or sequence for a single-arm cohort)",
        min_length=2,
        max_length=6,
    )
    randomisation: Randomisation = _f(
        Randomisation(), expected="a mapping with block_multiple and stratify_by"
    )
    progression_criterion: Literal["recist1.1", "mrecist"] = _f(
        "recist1.1",
        expected="recist1.1 or mrecist: the criterion whose progression ends a line",
    )
    label_restrictions: bool = _f(
        True,
        expected="true (a later-line regimen whose label the patient does not meet is skipped: ramucirumab needs AFP >= 400 ng/mL, regorafenib and cabozantinib prior sorafenib) or false (off-label use allowed, as a trial protocol or practice may)",
    )
    treat_beyond_progression: bool = _f(
        False,
        expected="false (the index line ends at radiological progression) or true (it goes on after radiological progression until clinical deterioration, toxicity or death, as SHARP treated until both radiological and symptomatic progression)",
    )

    @field_validator("sequence")
    @classmethod
    def _supportive_last(cls, v):
        return _supportive_last(v)

    @model_validator(mode="after")
    def _one_design(self) -> Treatment:
        if (self.sequence is None) == (self.arms is None):
            raise PydanticCustomError(
                "hccsim",
                "{message}",
                {
                    "message": "expected exactly one of sequence (one treatment sequence) and arms (a randomised trial)",
                    "field": "arms" if self.arms is not None else "sequence",
                    "value": "both given" if self.arms is not None else "neither given",
                },
            )
        if self.arms is not None:
            names = [a.name for a in self.arms]
            if len(set(names)) < len(names):
                raise PydanticCustomError(
                    "hccsim",
                    "{message}",
                    {
                        "message": "arm names must differ",
                        "field": "arms",
                        "value": ", ".join(names),
                    },
                )
        return self

    @property
    def arm_list(self) -> list[Arm]:
        """The arms; a single-sequence scenario is one arm named after nothing in particular."""
        if self.arms is not None:
            return list(self.arms)
        return [Arm(name="single", sequence=list(self.sequence))]


class Observation(_Section):
    imaging_weeks: float = _f(6.0, expected="a positive number of weeks, e.g. 6", gt=0, le=52)
    imaging_window_days: float = _f(
        3.0,
        expected="a number of days >= 0 and below half the imaging interval, e.g. 3",
        ge=0,
        le=60,
    )
    lab_weeks: float = _f(2.0, expected="a positive number of weeks, e.g. 2", gt=0, le=52)
    labs_off_treatment: bool = _f(
        True,
        expected="true (labs throughout follow-up) or false (labs only during treatment lines)",
    )
    max_follow_up_months: float = _f(
        36.0, expected="a positive number of months up to 240, e.g. 36", gt=0, le=240
    )
    assessor: Literal["investigator", "independent"] = _f(
        "investigator",
        expected="investigator (the responses recorded are those that decide treatment) or independent (a blinded central reader's, with RECIST 1.1's rule for equivocal new lesions; lines still end on the investigator's reading)",
    )

    @model_validator(mode="after")
    def _window(self) -> Observation:
        half = self.imaging_weeks * DAYS_PER_WEEK / 2
        if self.imaging_window_days >= half:
            weeks = self.imaging_weeks
            window = self.imaging_window_days
            raise PydanticCustomError(
                "hccsim",
                "{message}",
                {
                    "message": f"expected a number of days below {half:g}, half the imaging interval of {weeks:g} week{'' if weeks == 1 else 's'}, so that scans stay in order",
                    "field": "imaging_window_days",
                    "value": int(window) if window.is_integer() else window,
                },
            )
        return self


class Analysis(_Section):
    data_cut_months: float | None = _f(
        None,
        expected="a positive number of months after the study start (accrual day 0), e.g. 27.5 (or leave it out: no data cut)",
        gt=0,
        le=600,
    )
    data_cut_events: int | None = _f(
        None,
        expected="a whole number of events of the primary endpoint (power.endpoint; deaths by default) at which the data are cut, e.g. 300 (or leave it out)",
        ge=1,
        le=10_000_000,
    )
    stable_disease_min_weeks: float = _f(
        6.0,
        expected="a number of weeks from 0 to 52: the minimum time after the start of the line at which a stable-disease reading counts for best overall response (RECIST 1.1 leaves it to the protocol, 'in general not less than 6-8 weeks'), e.g. 6 (0: any visit after baseline)",
        ge=0,
        le=52,
    )
    confirm_responses: bool = _f(
        False,
        expected="true or false: whether a CR or PR counts for best overall response only when a scan at least 4 weeks later confirms it (RECIST 1.1: required where response is the primary endpoint of a non-randomised trial)",
    )


def _refuse(field: str, value: Any, message: str):
    """Raise the validation error of a cross-field check, reported at ``field``."""
    raise PydanticCustomError(
        "hccsim", "{message}", {"message": message, "field": field, "value": value}
    )


ENDPOINTS = (
    "os",
    "pfs_recist",
    "pfs_mrecist",
    "orr_recist",
    "orr_mrecist",
    "pfs_rate_recist",
    "pfs_rate_mrecist",
)
#: The bounds of ``power.replicates`` (and of ``hccsim power --replicates``).
POWER_REPLICATES = (10, 1_000_000)
TESTS = ("logrank", "stratified_logrank", "cox_wald", "rmst", "one_sample_logrank", "binomial")


class Power(_Section):
    endpoint: Literal[ENDPOINTS] = _f(
        "os", expected="the primary endpoint: one of " + ", ".join(ENDPOINTS)
    )
    test: Literal[TESTS] = _f(
        "logrank",
        expected="the test: logrank, stratified_logrank, cox_wald or rmst (two arms); one_sample_logrank or binomial (one arm)",
    )
    alpha: float = _f(
        0.05, expected="a significance level between 0 and 0.5, e.g. 0.05", gt=0, lt=0.5
    )
    sides: Literal[1, 2] = _f(2, expected="1 or 2 (sided test)")
    sample_sizes: list[Annotated[int, Field(ge=2, le=1_000_000)]] = _f(
        expected="a list of 1 to 20 increasing whole numbers of patients, e.g. [200, 250, 300]",
        min_length=1,
        max_length=20,
    )
    replicates: int = _f(
        1000,
        expected="a whole number of replicates from {:,} to {:,}, e.g. 1000".format(
            *POWER_REPLICATES
        ),
        ge=POWER_REPLICATES[0],
        le=POWER_REPLICATES[1],
    )
    target_power: float = _f(
        0.8, expected="a power between 0.5 and 0.99, e.g. 0.8", ge=0.5, le=0.99
    )
    rmst_months: float | None = _f(
        None, expected="the RMST horizon in months, e.g. 12 (needed by test rmst)", gt=0, le=240
    )
    landmark_months: float | None = _f(
        None,
        expected="the landmark in months of a pfs_rate endpoint, e.g. 6",
        gt=0,
        le=240,
    )
    benchmark_median_months: float | None = _f(
        None,
        expected="the historical median in months of a single-arm time-to-event test (exponential benchmark), e.g. 2.8",
        gt=0,
        le=240,
    )
    benchmark_rate: float | None = _f(
        None,
        expected="the historical rate (0-1) of a single-arm binomial test, e.g. 0.1",
        gt=0,
        lt=1,
    )

    @model_validator(mode="after")
    def _consistent(self) -> Power:
        sizes = self.sample_sizes
        if any(b <= a for a, b in itertools.pairwise(sizes)):
            _refuse(
                "sample_sizes", str(sizes), "expected increasing sample sizes, e.g. [200, 250, 300]"
            )
        rate_endpoint = self.endpoint.startswith(("orr", "pfs_rate"))
        if self.test == "binomial" and not rate_endpoint:
            _refuse(
                "test",
                self.test,
                "the binomial test needs a rate endpoint (orr_recist, orr_mrecist, pfs_rate_recist, pfs_rate_mrecist)",
            )
        if self.test != "binomial" and rate_endpoint:
            _refuse(
                "endpoint",
                self.endpoint,
                "a rate endpoint is tested by test binomial (a single-arm study against benchmark_rate)",
            )
        if self.test == "binomial" and self.benchmark_rate is None:
            _refuse(
                "benchmark_rate",
                None,
                "test binomial needs benchmark_rate, the historical rate, e.g. 0.1",
            )
        if self.test == "one_sample_logrank" and self.benchmark_median_months is None:
            _refuse(
                "benchmark_median_months",
                None,
                "test one_sample_logrank needs benchmark_median_months, e.g. 2.8",
            )
        if self.test == "rmst" and self.rmst_months is None:
            _refuse("rmst_months", None, "test rmst needs rmst_months, the horizon, e.g. 12")
        if self.endpoint.startswith("pfs_rate") and self.landmark_months is None:
            _refuse(
                "landmark_months", None, f"endpoint {self.endpoint} needs landmark_months, e.g. 6"
            )
        return self


class Compare(_Section):
    reference: str | None = _f(
        None,
        expected="the name of one of treatment.arms, the arm the others are compared with (default: the first arm)",
    )
    rmst_months: float = _f(
        12.0,
        expected="the horizon in months of the restricted mean survival times, e.g. 12",
        gt=0,
        le=240,
    )


#: Sections a sweep may vary (``name``, ``seed`` and the like identify a run, they are not
#: part of the model or the design).
SWEEP_SECTIONS = (
    "population",
    "cohort",
    "treatment",
    "observation",
    "analysis",
    "power",
    "parameters",
)
SWEEP_MAX_POINTS = 60


class Sweep(_Section):
    grid: dict[
        Annotated[
            str,
            Field(
                pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$",
                json_schema_extra={
                    "expected": "a dotted path into the scenario, e.g. observation.imaging_weeks"
                },
            ),
        ],
        Annotated[
            list[Any],
            Field(
                min_length=1,
                max_length=12,
                json_schema_extra={"expected": "a list of 1 to 12 values, e.g. [4, 6, 8, 12]"},
            ),
        ],
    ] = _f(
        expected="a mapping of 1 to 3 dotted paths to lists of values, e.g. {observation.imaging_weeks: [4, 6, 8, 12]}",
        min_length=1,
        max_length=3,
    )
    metrics: list[str] | None = _f(
        None,
        expected="a list of 1 to 8 summary metric names (README, summary.json), e.g. [pfs_recist_median_months, os_median_months] (default: medians of OS and PFS and ORR by both criteria)",
        min_length=1,
        max_length=8,
    )

    @model_validator(mode="after")
    def _paths_and_size(self) -> Sweep:
        for path in self.grid:
            if path.split(".")[0] not in SWEEP_SECTIONS:
                _refuse(
                    "grid",
                    path,
                    "expected a dotted path into one of: " + ", ".join(SWEEP_SECTIONS),
                )
        for path, values in self.grid.items():
            seen = []
            for v in values:
                if any(v == w and isinstance(v, bool) == isinstance(w, bool) for w in seen):
                    _refuse(
                        "grid",
                        path,
                        f"lists the value {v!r} twice; give each value once (a repeated point "
                        "is simulated again and shown twice)",
                    )
                seen.append(v)
        points = math.prod(len(v) for v in self.grid.values())
        if points > SWEEP_MAX_POINTS:
            _refuse(
                "grid",
                f"{points} points",
                f"a sweep has at most {SWEEP_MAX_POINTS} points (the product of the list lengths); split it",
            )
        if self.metrics is not None:
            from hccsim.analysis.summary import METRICS

            # A name missing its unit (os_median) is matched against the names without it.
            names = {m.removesuffix("_months"): m for m in METRICS} | {m: m for m in METRICS}
            for m in self.metrics:
                if m not in METRICS and not m.startswith(("ae_any_", "ae_g3_")):
                    hint = difflib.get_close_matches(m, names, n=1)
                    _refuse(
                        "metrics",
                        m,
                        "not a summary metric; expected names such as os_median_months, "
                        "pfs_recist_median_months, orr_mrecist (README lists them all)"
                        + (f" (did you mean {names[hint[0]]!r}?)" if hint else ""),
                    )
        return self

    def points(self) -> list[dict[str, Any]]:
        """Every combination of the grid, the first path varying slowest."""
        keys = list(self.grid)
        return [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*(self.grid[k] for k in keys))
        ]


class Scenario(_Section):
    name: str = _f(
        expected="a short name (up to 80 characters) of letters, digits, '-', '_' or '.' that starts with a letter or digit, e.g. anchor-ramucirumab",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$",
    )
    description: str = _f(
        expected="a text of up to 20,000 characters that states the question the scenario answers",
        min_length=1,
        max_length=20_000,
    )
    seed: int | None = _f(
        None,
        expected=f"a whole number from 0 to {MAX_SEED} (or leave it out: one is drawn and recorded)",
        ge=0,
        le=MAX_SEED,
    )
    replicates: int = _f(
        1, expected="a whole number of replicates from 1 to 100,000, e.g. 200", ge=1, le=100_000
    )
    population: Population = _f(expected="a mapping with preset (and optionally overrides)")
    cohort: Cohort = _f(
        expected="a mapping with size (and optionally entry, accrual_per_month, batch_size)"
    )
    treatment: Treatment = _f(
        expected="a mapping with sequence (and optionally progression_criterion)"
    )
    observation: Observation = _f(
        Observation(),
        expected="a mapping with imaging_weeks, imaging_window_days, lab_weeks, labs_off_treatment, max_follow_up_months, assessor",
    )
    analysis: Analysis = _f(
        Analysis(),
        expected="a mapping with data_cut_months, data_cut_events, stable_disease_min_weeks, confirm_responses",
    )
    power: Power | None = _f(
        None,
        expected="a mapping with endpoint, test, alpha, sides, sample_sizes, replicates and target_power (for hccsim power)",
    )
    compare: Compare | None = _f(
        None,
        expected="a mapping with reference and rmst_months (options of hccsim compare)",
    )
    sweep: Sweep | None = _f(
        None,
        expected="a mapping with grid (dotted paths -> lists of values) and optionally metrics (for hccsim sweep)",
    )
    parameters: dict[str, Any] = _f(
        {},
        expected="a mapping of model parameters to override (hccsim list parameters), e.g. {death: {burden_exponent: 0.4}}",
    )

    @model_validator(mode="after")
    def _design_fits(self) -> Scenario:
        a, p = self.analysis, self.power
        if a.data_cut_months is not None and a.data_cut_events is not None:
            _refuse(
                "analysis",
                "both data cuts",
                "expected at most one of analysis.data_cut_months and analysis.data_cut_events",
            )
        c = self.compare
        if c is not None and c.reference is not None:
            names = [a.name for a in self.treatment.arms or ()]
            if not names:
                _refuse(
                    "compare.reference",
                    c.reference,
                    "expected the name of an arm, but the scenario has no treatment.arms",
                )
            if c.reference not in names:
                _refuse(
                    "compare.reference",
                    c.reference,
                    "expected one of the arm names: " + ", ".join(names),
                )
        if self.population.prior_lines is not None and self.cohort.entry == "first_line":
            _refuse(
                "population.prior_lines",
                "given",
                "a first-line cohort (cohort.entry first_line) has no lines before the index line; remove population.prior_lines or use cohort.entry index_line",
            )
        if p is None:
            return self
        two_arm = self.treatment.arms is not None
        if p.test in ("one_sample_logrank", "binomial") and two_arm:
            _refuse(
                "power",
                p.test,
                f"test {p.test} is for a single-arm study (treatment.sequence); with arms use logrank, stratified_logrank, cox_wald or rmst",
            )
        if p.test not in ("one_sample_logrank", "binomial") and not two_arm:
            _refuse(
                "power",
                p.test,
                f"test {p.test} compares arms; a single-arm study (treatment.sequence) uses one_sample_logrank or binomial",
            )
        if two_arm and len(self.treatment.arms) != 2:
            _refuse(
                "power",
                p.test,
                "power compares two arms; expected exactly two arms (the first is the control)",
            )
        if p.test == "stratified_logrank" and not self.treatment.randomisation.stratify_by:
            _refuse("power", p.test, "stratified_logrank needs treatment.randomisation.stratify_by")
        if p.sample_sizes[-1] > self.cohort.size:
            _refuse(
                "power",
                p.sample_sizes[-1],
                f"the largest sample size exceeds cohort.size ({self.cohort.size}); set cohort.size to at least {p.sample_sizes[-1]}",
            )
        return self

    # -- derived quantities in the simulator's units --------------------------------------
    @property
    def imaging_interval_days(self) -> float:
        return self.observation.imaging_weeks * DAYS_PER_WEEK

    @property
    def response_rule(self):
        """How best overall response is read (``analysis`` section)."""
        from hccsim.analysis.response import ResponseRule

        a = self.analysis
        return ResponseRule(a.stable_disease_min_weeks * DAYS_PER_WEEK, a.confirm_responses)

    @property
    def horizon_days(self) -> float:
        return self.observation.max_follow_up_months * DAYS_PER_MONTH

    def resolved(self, seed: int) -> Scenario:
        """This scenario with every default filled in and the seed recorded."""
        return self.model_copy(update={"seed": seed})

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            self.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=100
        )

    def content_hash(self) -> str:
        """SHA-256 of the resolved content without ``seed`` and ``replicates`` (recorded apart)."""
        data = self.model_dump(mode="json", exclude={"seed", "replicates"})
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


SECTION_KEYS = tuple(Scenario.model_fields)


# -- loading and messages -------------------------------------------------------------------
def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file; :class:`InputError` lists every problem."""
    return validate_data(read_yaml(path), str(path))


def loads(text: str, source: str = "<scenario>") -> Scenario:
    return validate_data(parse_yaml_text(text, source), source)


def validate_data(data: Any, source: str) -> Scenario:
    if data is None:
        raise InputError(
            f"{source}: the file is empty; expected a scenario with keys {', '.join(SECTION_KEYS)}"
        )
    if not isinstance(data, dict):
        raise InputError(
            f"{source}: expected a mapping of scenario sections ({', '.join(SECTION_KEYS)}), "
            f"found {_kind(data)}"
        )
    messages: list[str] = []
    scenario = None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        messages.extend(format_errors(exc, source))
    messages.extend(_semantic_problems(data, source))
    if not messages and scenario is not None and scenario.sweep is not None:
        messages.extend(_sweep_problems(data, scenario.sweep, source))
    if messages:
        raise InputError(
            messages[0]
            if len(messages) == 1
            else f"{len(messages)} problems:\n" + "\n".join(messages),
            messages,
        )
    assert scenario is not None
    return scenario


def _point_label(point: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        text = json.dumps(v)
        return text if len(text) <= 40 else text[:37] + "..."

    return ", ".join(f"{k}={value(v)}" for k, v in point.items())


def _with_point(data: dict, point: dict[str, Any]) -> dict:
    """A copy of the raw scenario ``data`` with the point's values set at their dotted paths
    and the ``sweep`` section removed."""
    import copy

    out = copy.deepcopy(data)
    out.pop("sweep", None)
    for path, value in point.items():
        *parents, leaf = path.split(".")
        node = out
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[leaf] = copy.deepcopy(value)
    return out


def _sweep_problems(data: dict, sweep: Sweep, source: str) -> list[str]:
    out: list[str] = []
    for point in sweep.points():
        try:
            validate_data(_with_point(data, point), f"{source}: sweep point {_point_label(point)}")
        except InputError as exc:
            out.extend(m for m in exc.messages if m not in out)
    return out


def sweep_points(scenario: Scenario, source: str = "<scenario>") -> list[tuple[dict, Scenario]]:
    """The points of ``scenario.sweep``: ``(values by dotted path, the scenario at that
    point)``; each point keeps the scenario's name, seed and replicates."""
    if scenario.sweep is None:
        raise InputError(
            f"{source}: sweep: missing; hccsim sweep needs a sweep: section with a grid, e.g. "
            "{grid: {observation.imaging_weeks: [4, 6, 8, 12]}} (docs/scenarios.md)"
        )
    data = scenario.model_dump(mode="json", exclude_none=True)
    return [
        (
            point,
            validate_data(_with_point(data, point), f"{source}: sweep point {_point_label(point)}"),
        )
        for point in scenario.sweep.points()
    ]


def _semantic_problems(data: dict, source: str) -> list[str]:
    """Checks that need the catalogue, the parameter set or the preset."""
    out = []
    overrides = data.get("parameters")
    if isinstance(overrides, dict) and all(isinstance(k, str) for k in overrides):
        for path, message in parameters.check_overrides(overrides):
            out.append(f"{source}: parameters.{path}: {message}")
    pop = data.get("population")
    if (
        isinstance(pop, dict)
        and isinstance(pop.get("preset"), str)
        and pop["preset"] in cohort.presets()
        and isinstance(pop.get("overrides"), dict)
    ):
        out.extend(_override_problems(cohort.presets()[pop["preset"]], pop["overrides"], source))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def _override_problems(preset: cohort.Preset, overrides: dict, source: str) -> list[str]:
    """Unknown covariates and parameters, and values the preset's marginal refuses. Values that
    are not numbers, and keys that are not text, are left to the type check (one message each)."""
    out = []
    allowed = cohort.override_paths(preset)
    covs = sorted({p.split(".")[0] for p in allowed})
    for cov, params in overrides.items():
        if not isinstance(cov, str) or not isinstance(params, dict):
            continue
        if cov not in covs:
            hint = difflib.get_close_matches(cov, covs, n=1)
            if cov in preset.marginals:  # e.g. a categorical marginal: weights, not numbers
                msg = (
                    f"the {preset.marginals[cov].dist} marginal of {cov} has no numeric "
                    f"parameter to override; covariates that have: {', '.join(covs)}"
                )
            else:
                msg = f"unknown covariate; expected one of: {', '.join(covs)}" + (
                    f" (did you mean {hint[0]!r}?)" if hint else ""
                )
            out.append(f"{source}: population.overrides.{cov}: {msg}")
            continue
        for key, value in params.items():
            if not isinstance(key, str):
                continue
            path = f"{cov}.{key}"
            if path not in allowed:
                keys = sorted(p.split(".")[1] for p in allowed if p.startswith(cov + "."))
                hint = difflib.get_close_matches(key, keys, n=1)
                out.append(
                    f"{source}: population.overrides.{path}: unknown parameter of this "
                    f"{preset.marginals[cov].dist} marginal; expected one of: {', '.join(keys)}"
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                )
                continue
            if not _is_number(value):
                continue
            # A bound is checked on its own (its partner opened up); whether low < high is
            # checked once below, with every override of the covariate applied.
            trial = {key: value}
            if key in ("low", "high"):
                trial["high" if key == "low" else "low"] = (
                    float("inf")
                    if key == "low"
                    else (
                        0.0
                        if isinstance(preset.marginals[cov], cohort.LogNormal)
                        else float("-inf")
                    )
                )
            try:
                cohort.apply_overrides(preset, {cov: trial})
            except ValidationError as exc:
                ctx = exc.errors(include_url=False)[0].get("ctx") or {}
                kind = exc.errors(include_url=False)[0]["type"]
                if kind in _BOUNDS and _BOUNDS[kind][0] in ctx:
                    bound, sign = ctx[_BOUNDS[kind][0]], _BOUNDS[kind][1]
                    expected = f"a number {sign} {bound:g}"
                else:
                    expected = f"a valid value for this {preset.marginals[cov].dist} marginal"
                out.append(
                    f"{source}: population.overrides.{path}: {shorten(value)} is not allowed; "
                    f"expected {expected} (the preset's value is {allowed[path]:g})"
                )
        # A truncated marginal needs low < high once every override of it is applied.
        bounds = {k: params.get(k, allowed.get(f"{cov}.{k}")) for k in ("low", "high")}
        if (
            any(k in params for k in bounds)
            and all(_is_number(v) for v in bounds.values())
            and bounds["low"] >= bounds["high"]
        ):
            out.append(
                f"{source}: population.overrides.{cov}: low {bounds['low']:g} and high "
                f"{bounds['high']:g} are not allowed; expected low below high"
            )
    return out


def _kind(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a text",
        bool: "true/false",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _unwrap(annotation: Any) -> Any:
    """The model or item type inside Optional[...], list[...], Annotated[...]."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else annotation
    return annotation


def _field_info(loc: tuple):
    """(model class, field info) for a location, walking nested models and lists."""
    model: Any = Scenario
    info = None
    for part in loc:
        if isinstance(part, int) or part == "[key]":
            continue
        if (
            not (isinstance(model, type) and issubclass(model, BaseModel))
            or part not in model.model_fields
        ):
            return model, info
        info = model.model_fields[part]
        inner = _unwrap(info.annotation)
        if typing.get_origin(inner) is list:
            inner = _unwrap(typing.get_args(inner)[0])
        model = inner
    return model, info


def _expected_of(annotation: Any) -> tuple[Any, str]:
    """The type inside Optional[...] and Annotated[...], and the ``expected`` text found there."""
    expected = ""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation, *meta = typing.get_args(annotation)
            for m in meta:
                extra = getattr(m, "json_schema_extra", None)
                if isinstance(extra, dict) and "expected" in extra:
                    expected = str(extra["expected"])
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation, expected
            annotation = args[0]
        else:
            return annotation, expected


def _expected(loc: tuple) -> str:
    """The ``expected`` text of the field, list item or mapping value at ``loc``; the nearest
    enclosing one when the place itself has none."""
    current: Any = Scenario
    expected = ""
    for part in loc:
        current, found = _expected_of(current)
        expected = found or expected
        if isinstance(current, type) and issubclass(current, BaseModel):
            if part not in current.model_fields:
                break
            info = current.model_fields[part]
            extra = info.json_schema_extra
            if isinstance(extra, dict) and "expected" in extra:
                expected = str(extra["expected"])
            current = info.annotation
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            break
    else:
        _, found = _expected_of(current)
        expected = found or expected
    return expected


def _allowed_keys(loc: tuple) -> list[str]:
    model, _ = _field_info(loc)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def format_errors(exc: ValidationError, source: str) -> list[str]:
    """One message per pydantic error, in the form of the module docstring."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        kind = err["type"]
        if kind == "hccsim":
            if "item" in ctx:
                loc = (*loc, ctx["item"])
            if "field" in ctx:
                loc = (*loc, ctx["field"])
            value = ctx.get("value", err.get("input"))
            path = _path(loc)
            out.append(f"{source}: {path}: {shorten(value)} is not allowed; {ctx['message']}")
            continue
        if loc and loc[-1] == "[key]":  # a mapping key that is not text, or not of the form
            where = _path(loc[:-2])
            if kind == "string_pattern_mismatch" and loc[:-2] == ("sweep", "grid"):
                why = (
                    "expected a dotted path into one of: "
                    + ", ".join(SWEEP_SECTIONS)
                    + " (e.g. observation.imaging_weeks)"
                )
            elif kind == "string_pattern_mismatch":
                why = f"expected text of the form {ctx.get('pattern', '')}"
            else:
                why = "keys must be text"
            out.append(
                f"{source}: {where or 'top level'}: key {shorten(loc[-2])} is not allowed; {why}"
            )
            continue
        path = _path(loc)
        if kind == "missing":
            out.append(f"{source}: {path}: is required; expected {_expected(loc)}")
        elif kind == "extra_forbidden":
            parent = loc[:-1]
            allowed = _allowed_keys(parent)
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            where = f"under {_path(parent)}" if parent else "at the top level"
            msg = f"{source}: {path}: unknown key; allowed {where}: {', '.join(allowed)}"
            if hint:
                msg += f" (did you mean {hint[0]!r}?)"
            out.append(msg)
        elif kind == "invalid_key":
            where = _path(loc[:-1])
            out.append(
                f"{source}: {where or 'top level'}: key {shorten(loc[-1] if loc else err.get('input'))} is not allowed; keys must be text"
            )
        else:
            expected = _expected(loc) or err["msg"]
            out.append(
                f"{source}: {path}: {shorten(err.get('input'))} is not allowed; expected {expected}"
            )
    return out


def schema_json() -> str:
    """JSON Schema of the scenario format (``hccsim schema``)."""
    return json.dumps(Scenario.model_json_schema(), indent=2)
