"""Calibration targets: every published figure of ``targets.yaml`` as one :class:`Target`.

A target names its study (``anchor_study`` or a trial key), the arm(s) it belongs to, the
statistic the simulator computes for it (:data:`STATISTICS`), the published value with its
interval, and a standard error for the calibration loss. Rules (DESIGN section 11 and the
header of targets.yaml):

- Medians: standard error on the log scale, from the published 95% CI when there is one
  (``(log high - log low) / (2 x 1.96)``), else the larger of ``1 / sqrt(0.7 n)`` (events in
  about 70% of the arm) and 0.15 (15% of the value). Hazard ratios: from the CI at its level.
  Proportions: binomial with the Agresti-Coull count ``(x + 1) / (n + 2)``, so that 0 of n
  keeps a positive error. Landmark survival: binomial on the arm size.
- Every standard error is floored (:data:`FLOOR`): a CI of zero width (CELESTIAL placebo PFS
  on the 8-week scan) must not give an infinite weight. ``approx: true`` figures get 1.5 times
  the error.
- ``counted``: judged in the calibration check. Quantities fed straight into a preset
  (baseline tables, treatment streams, the AFP >= 400 share) are listed but not counted, and
  so are figures the targets file calls context only (REFLECT's investigator-assessed ORR).
- ``fitted``: used by the calibration loss. Hazard ratios are checks, never fitted.

Results of REACH, REACH-2 and their pooled analyses are not in targets.yaml and are never read.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hccsim.simulator.errors import InputError
from hccsim.simulator.yamlio import parse_yaml_text

#: Floors of the standard errors: log scale for medians and hazard ratios, absolute for
#: proportions, ALBI units for ALBI medians.
FLOOR = {"log": 0.05, "proportion": 0.01, "albi": 0.05}

#: Statistics the simulator computes for a target (see ``pools.statistic``).
STATISTICS = (
    "median",  # Kaplan-Meier median of ``endpoint`` (months)
    "share",  # share of the arm with ``endpoint`` true (response categories, AEs, ...)
    "hr",  # Cox hazard ratio (Efron ties) of ``arms[0]`` vs ``arms[1]`` on ``endpoint``
    "landmark",  # Kaplan-Meier survival at ``at_months``
    "median_value",  # plain median of a per-patient value (cycles, ALBI in a week)
    "subgroup_median",  # Kaplan-Meier median within a baseline subgroup (``subgroup``)
    "subgroup_hr",
)

#: The arm-name prefix of a trial's safety keys maps to an arm; the rest names the statistic.
SAFETY_KINDS = {
    # "for AE" in a trial report counts disease-related events too (SHARP: 37% on placebo):
    # the index line ended for toxicity or clinical deterioration. "For TRAE" counts only
    # treatment-related events: ended for toxicity.
    "discontinued_for_ae": "discontinued_any_ae",
    "discontinued_for_trae": "discontinued_for_ae",
    "dose_reduction": "dose_reduction",
    "grade3_trae": "grade3plus",
}
#: AE terms of the targets file under the CTCAE names the simulator uses.
AE_NAMES = {
    "hfsr": "palmar_plantar_erythrodysesthesia",
    "ppe": "palmar_plantar_erythrodysesthesia",
    "edema": "edema_limbs",
}

RESPONSES = ("CR", "PR", "SD", "PD", "NE")


@dataclass(frozen=True)
class Target:
    id: str  # e.g. "CELESTIAL.cabozantinib.pfs_recist"
    study: str  # "anchor_study" or a trial key
    arms: tuple[str, ...]  # one arm; two for a hazard ratio (experimental, control)
    statistic: str  # one of STATISTICS
    endpoint: str  # os, pfs_recist, pfs_mrecist, ttp_recist, bor_recist:PR, ae_any:term, ...
    value: float
    ci: tuple[float, float] | None
    se: float  # on the scale of ``scale``
    scale: str  # "log" (medians, HRs), "proportion", "albi", "count"
    n: int  # the published arm size (the sum of both arms for a hazard ratio)
    counted: bool
    fitted: bool
    approx: bool
    label: str
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def digits(self) -> int:
        """Decimal places of the published figure (its rounding). The parsed number has lost
        trailing zeros (8.0, 0.30), so medians count at least one place and hazard ratios,
        shares and ALBI values at least two, as they are published."""
        text = repr(float(self.value))
        if "e" in text:
            return 6
        shown = len(text.split(".")[1].rstrip("0")) if "." in text else 0
        if self.statistic in ("median", "subgroup_median"):
            return max(shown, 1)
        if self.statistic in ("hr", "subgroup_hr") or self.scale in ("proportion", "albi"):
            return max(shown, 2)
        return shown

    @property
    def rounding(self) -> float:
        """Half a unit of the published figure's last digit, on its own scale (0 for an exact
        count out of n): how far the true value may lie from the printed one."""
        if self.extra.get("count") is not None:
            return 0.0
        return 0.5 * 10.0 ** (-self.digits)


def default_targets_path() -> Path:
    """``$HCCSIM_TARGETS``, else ``calibration/targets.yaml`` under the current directory (the
    repository's copy), else ``../shared/calibration/targets.yaml`` next to the repository."""
    env = os.environ.get("HCCSIM_TARGETS")
    if env:
        return Path(env)
    for candidate in (
        Path("calibration/targets.yaml"),
        Path(__file__).resolve().parents[2] / "calibration" / "targets.yaml",
        Path(__file__).resolve().parents[3] / "shared" / "calibration" / "targets.yaml",
    ):
        if candidate.is_file():
            return candidate
    return Path("calibration/targets.yaml")


def load_raw(path: str | Path | None = None) -> tuple[dict, str, Path]:
    """The parsed targets file, the SHA-256 of its bytes and its path."""
    p = Path(path) if path is not None else default_targets_path()
    if not p.is_file():
        raise InputError(
            f"{p}: calibration targets file not found; pass --targets PATH or set HCCSIM_TARGETS"
        )
    raw = p.read_bytes()
    data = parse_yaml_text(raw.decode("utf-8"), str(p))
    if not isinstance(data, dict) or "anchor_study" not in data or "trials" not in data:
        raise InputError(f"{p}: a targets file needs top-level 'anchor_study' and 'trials'")
    return data, hashlib.sha256(raw).hexdigest(), p


def _value_ci(entry: Any) -> tuple[float, tuple[float, float] | None]:
    if isinstance(entry, dict):
        ci = entry.get("ci")
        return float(entry["value"]), (float(ci[0]), float(ci[1])) if ci else None
    return float(entry), None


def _log_se(value: float, ci, n: int, level: float = 0.95) -> float:
    if ci is not None and ci[0] > 0 and ci[1] > 0 and ci[1] >= ci[0]:
        z = _z(level)
        se = (math.log(ci[1]) - math.log(ci[0])) / (2.0 * z)
    else:
        se = max(1.0 / math.sqrt(max(0.7 * n, 1.0)), 0.15)
    return max(se, FLOOR["log"])


def _z(level: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(0.5 + level / 2.0))


def _prop_se(p: float, n: int) -> float:
    x = p * n
    pt = (x + 1.0) / (n + 2.0)
    return max(math.sqrt(pt * (1.0 - pt) / n), FLOOR["proportion"])


_ENDPOINT_LABEL = {
    "os": "median OS",
    "pfs_recist": "median PFS (RECIST 1.1)",
    "pfs_mrecist": "median PFS (mRECIST)",
    "ttp_recist": "median TTP (RECIST)",
}


def _arm_targets(trial: str, arm: str, entry: dict, approx: bool) -> list[Target]:
    n = int(entry["n"])
    out: list[Target] = []
    widen = 1.5 if approx else 1.0
    for key, raw in entry.items():
        if key == "n":
            continue
        if key in ("os", "pfs_recist", "pfs_mrecist", "ttp"):
            value, ci = _value_ci(raw)
            endpoint = "ttp_recist" if key == "ttp" else key
            out.append(
                Target(
                    id=f"{trial}.{arm}.{key}",
                    study=trial,
                    arms=(arm,),
                    statistic="median",
                    endpoint=endpoint,
                    value=value,
                    ci=ci,
                    se=_log_se(value, ci, n) * widen,
                    scale="log",
                    n=n,
                    counted=True,
                    fitted=True,
                    approx=approx,
                    label=f"{trial} {arm}: {_ENDPOINT_LABEL[endpoint]}",
                    note="TTP by RECIST 1.0 emulated by RECIST 1.1" if key == "ttp" else "",
                )
            )
        elif key.startswith(("orr_", "dcr_")):
            kind, crit, *rest = key.split("_")
            who = rest[0] if rest else ""
            context = who == "investigator" and any(
                k.startswith(f"{kind}_{crit}_independent") for k in entry
            )
            value = float(raw)
            out.append(
                Target(
                    id=f"{trial}.{arm}.{key}",
                    study=trial,
                    arms=(arm,),
                    statistic="share",
                    endpoint=f"{kind}_{crit}",
                    value=value,
                    ci=None,
                    se=_prop_se(value, n) * widen,
                    scale="proportion",
                    n=n,
                    counted=not context,
                    fitted=not context,
                    approx=approx,
                    label=f"{trial} {arm}: {kind.upper()} ({'RECIST 1.1' if crit == 'recist' else 'mRECIST'}"
                    + (f", {who} review" if who else "")
                    + ")",
                    note="context only (targets.yaml): the emulation has one assessor"
                    if context
                    else (f"{who} review, as the emulation's assessor reads it" if who else ""),
                )
            )
        else:
            raise InputError(
                f"targets.yaml: trials.{trial}.arms.{arm}.{key}: unknown figure; allowed: n, os, "
                "pfs_recist, pfs_mrecist, ttp, orr_<criterion>[_<assessor>], dcr_<criterion>[...]"
            )
    return out


def _hr_target(trial, key, raw, arms, n, approx, label, fitted=False) -> Target:
    value, ci = _value_ci(raw)
    level = float(raw.get("ci_level", 0.95)) if isinstance(raw, dict) else 0.95
    return Target(
        id=f"{trial}.{key}",
        study=trial,
        arms=arms,
        statistic="hr",
        endpoint={"os": "os", "pfs": "pfs", "ttp": "ttp_recist"}[key.split("_")[1]],
        value=value,
        ci=ci,
        se=_log_se(value, ci, n, level) * (1.5 if approx else 1.0),
        scale="log",
        n=n,
        counted=True,
        fitted=fitted,
        approx=approx,
        label=label,
        note="a check, not fitted",
        extra={"ci_level": level},
    )


def trial_targets(trial: str, spec: dict) -> list[Target]:
    setting = spec.get("setting", {})
    approx = bool(setting.get("approx", False))
    arms_spec = spec["arms"]
    arm_names = list(arms_spec)
    out: list[Target] = []
    for arm, entry in arms_spec.items():
        out.extend(_arm_targets(trial, arm, entry, approx))
    pfs_endpoint = next(
        (k for e in arms_spec.values() for k in e if k in ("pfs_recist", "pfs_mrecist")),
        "pfs_recist",
    )
    for key, raw in spec.items():
        if key.startswith("hr_"):
            parts = key.split("_")
            if len(parts) == 2:
                exp, ctl = arm_names[0], arm_names[-1]
            else:  # hr_os_stride_vs_sorafenib
                exp, ctl = arm_names[0], parts[-1]
            t = _hr_target(
                trial,
                key,
                raw,
                (exp, ctl),
                int(arms_spec[exp]["n"]) + int(arms_spec[ctl]["n"]),
                approx,
                f"{trial}: hazard ratio of {parts[1].upper()}, {exp} vs {ctl}",
            )
            if t.endpoint == "pfs":
                t = _replace(t, endpoint=pfs_endpoint)
            out.append(t)
    for kind, block in (spec.get("landmark") or {}).items():
        months = float(kind.split("_")[1])
        for arm, value in block.items():
            n = int(arms_spec[arm]["n"])
            se = max(math.sqrt(value * (1 - value) / n), FLOOR["proportion"])
            out.append(
                Target(
                    id=f"{trial}.{arm}.{kind}",
                    study=trial,
                    arms=(arm,),
                    statistic="landmark",
                    endpoint="os",
                    value=float(value),
                    ci=None,
                    se=se * (1.5 if approx else 1.0),
                    scale="proportion",
                    n=n,
                    counted=True,
                    fitted=True,
                    approx=approx,
                    label=f"{trial} {arm}: OS at {months:g} months",
                    extra={"at_months": months},
                )
            )
    for key, raw in (spec.get("subgroups") or {}).items():
        out.extend(_subgroup_targets(trial, key, raw, arms_spec, arm_names, approx))
    for key, value in (spec.get("safety") or {}).items():
        out.append(_safety_target(trial, key, float(value), arms_spec, approx))
    for arm, share in (spec.get("post_progression_systemic_therapy") or {}).items():
        if arm == "approx":
            continue
        # Keyed by arm: the share of that arm given any systemic therapy after the index line,
        # compared with the share starting a later line.
        out.append(
            Target(
                id=f"{trial}.{arm}.post_progression_therapy",
                study=trial,
                arms=(arm,),
                statistic="share",
                endpoint="later_line",
                value=float(share),
                ci=None,
                se=_prop_se(float(share), int(arms_spec[arm]["n"])),
                scale="proportion",
                n=int(arms_spec[arm]["n"]),
                counted=False,
                fitted=False,
                approx=True,
                label=f"{trial} {arm}: any later systemic therapy",
                note="shown, not counted: later lines are the emulation's design",
            )
        )
    return out


def _replace(t: Target, **kw) -> Target:
    from dataclasses import replace

    return replace(t, **kw)


def _subgroup_targets(trial, key, raw, arms_spec, arm_names, approx) -> list[Target]:
    if key == "afp_ge_400_fraction":
        return [
            Target(
                id=f"{trial}.{key}",
                study=trial,
                arms=tuple(arm_names),
                statistic="share",
                endpoint="afp_ge_400",
                value=float(raw),
                ci=None,
                se=_prop_se(float(raw), sum(int(a["n"]) for a in arms_spec.values())),
                scale="proportion",
                n=sum(int(a["n"]) for a in arms_spec.values()),
                counted=False,
                fitted=False,
                approx=approx,
                label=f"{trial}: share with AFP >= 400 ng/mL",
                note="fed into the preset: shown, not counted",
            )
        ]
    out = []
    # lenvatinib_os_afp_lt_400: 19.0   or   os_afp_ge_400: {cabozantinib: 8.5, placebo: 5.2, hr: 0.71}
    if isinstance(raw, dict):
        group = key.split("_", 1)[1]  # afp_ge_400
        for arm, value in raw.items():
            if arm == "hr":
                continue
            out.append(_subgroup_median(trial, arm, group, float(value), arms_spec, approx))
        if "hr" in raw:
            exp, ctl = arm_names[0], arm_names[-1]
            n = int(arms_spec[exp]["n"]) + int(arms_spec[ctl]["n"])
            t = _hr_target(
                trial,
                "hr_os",
                {"value": raw["hr"]},
                (exp, ctl),
                n,
                True,
                f"{trial}: hazard ratio of OS, {exp} vs {ctl}, {_group_label(group)}",
            )
            out.append(
                _replace(
                    t,
                    id=f"{trial}.hr_os_{group}",
                    statistic="subgroup_hr",
                    se=max(2.0 / math.sqrt(0.7 * n * _share_guess(group)), FLOOR["log"]),
                    extra={"subgroup": group},
                )
            )
    else:
        arm = next(a for a in arm_names if key.startswith(a + "_"))
        group = key[len(arm) + 1 :].split("_", 1)[1]
        out.append(_subgroup_median(trial, arm, group, float(raw), arms_spec, approx))
    return out


def _share_guess(group: str) -> float:
    return 0.4 if group == "afp_ge_400" else 0.6


def _group_label(group: str) -> str:
    return {"afp_ge_400": "AFP >= 400 ng/mL", "afp_lt_400": "AFP < 400 ng/mL"}[group]


def _subgroup_median(trial, arm, group, value, arms_spec, approx) -> Target:
    n = max(1, round(int(arms_spec[arm]["n"]) * _share_guess(group)))
    return Target(
        id=f"{trial}.{arm}.os_{group}",
        study=trial,
        arms=(arm,),
        statistic="subgroup_median",
        endpoint="os",
        value=value,
        ci=None,
        se=_log_se(value, None, n) * (1.5 if approx else 1.0),
        scale="log",
        n=n,
        counted=True,
        fitted=False,
        approx=approx,
        label=f"{trial} {arm}: median OS, {_group_label(group)}",
        note="subgroup size assumed from the AFP >= 400 share (about 40%)",
        extra={"subgroup": group},
    )


def _safety_target(trial, key, value, arms_spec, approx) -> Target:
    arm = max((a for a in arms_spec if key.startswith(a + "_")), key=len, default=None)
    if arm is None:
        raise InputError(f"targets.yaml: trials.{trial}.safety.{key}: no arm prefix")
    rest = key[len(arm) + 1 :]
    if rest in SAFETY_KINDS:
        endpoint = SAFETY_KINDS[rest]
    elif rest.startswith("grade3_"):
        term = rest[len("grade3_") :]
        endpoint = f"ae_g3:{AE_NAMES.get(term, term)}"
    else:
        raise InputError(f"targets.yaml: trials.{trial}.safety.{key}: unknown safety figure")
    n = int(arms_spec[arm]["n"])
    return Target(
        id=f"{trial}.{key}",
        study=trial,
        arms=(arm,),
        statistic="share",
        endpoint=endpoint,
        value=value,
        ci=None,
        se=_prop_se(value, n) * (1.5 if approx else 1.0),
        scale="proportion",
        n=n,
        counted=True,
        fitted=True,
        approx=approx,
        label=f"{trial} {arm}: {rest.replace('_', ' ')}",
        note="treatment-related: every simulated AE is drug- or disease-driven on the index line"
        if "trae" in rest
        else "",
    )


ANCHOR_ARM = "ramucirumab"


def anchor_targets(spec: dict) -> list[Target]:
    n = int(spec["n"])
    out: list[Target] = []
    arm = (ANCHOR_ARM,)
    eff = spec["efficacy"]
    for key, endpoint in (
        ("os_median", "os"),
        ("pfs_recist_median", "pfs_recist"),
        ("pfs_mrecist_median", "pfs_mrecist"),
    ):
        value, ci = _value_ci(eff[key])
        out.append(
            Target(
                id=f"anchor_study.{key}",
                study="anchor_study",
                arms=arm,
                statistic="median",
                endpoint=endpoint,
                value=value,
                ci=ci,
                se=_log_se(value, ci, n),
                scale="log",
                n=n,
                counted=True,
                fitted=True,
                approx=False,
                label=f"anchor study: {_ENDPOINT_LABEL[endpoint]}",
            )
        )
    for crit, name in (("recist", "RECIST 1.1"), ("mrecist", "mRECIST")):
        counts = eff[f"best_response_{crit}"]
        for r in RESPONSES:
            p = counts[r] / n
            out.append(
                Target(
                    id=f"anchor_study.best_response_{crit}.{r}",
                    study="anchor_study",
                    arms=arm,
                    statistic="share",
                    endpoint=f"bor_{crit}:{r}",
                    value=p,
                    ci=None,
                    se=_prop_se(p, n),
                    scale="proportion",
                    n=n,
                    counted=True,
                    fitted=r in ("PR", "SD", "PD"),
                    approx=False,
                    label=f"anchor study: best response {r} ({name}), {counts[r]} of {n}",
                    extra={"count": counts[r]},
                )
            )
    cyc = spec["exposure"]["cycles"]
    out.append(
        Target(
            id="anchor_study.cycles_median",
            study="anchor_study",
            arms=arm,
            statistic="median_value",
            endpoint="cycles",
            value=float(cyc["median"]),
            ci=None,
            se=0.15,
            scale="log",
            n=n,
            counted=True,
            fitted=False,
            approx=False,
            label="anchor study: median cycles of ramucirumab",
        )
    )
    safety = spec["safety"]
    for term, (anyg, g3) in safety["adverse_events"].items():
        name = AE_NAMES.get(term, term)
        for kind, count in (("any", anyg), ("g3", g3)):
            p = count / n
            out.append(
                Target(
                    id=f"anchor_study.ae_{kind}.{term}",
                    study="anchor_study",
                    arms=arm,
                    statistic="share",
                    endpoint=f"ae_{kind}:{name}",
                    value=p,
                    ci=None,
                    se=_prop_se(p, n),
                    scale="proportion",
                    n=n,
                    counted=True,
                    fitted=kind == "any",
                    approx=False,
                    label=f"anchor study: {term.replace('_', ' ')}, "
                    + ("any grade" if kind == "any" else "grade >= 3")
                    + f", {count} of {n}",
                    extra={"count": count},
                )
            )
    for key, endpoint in (
        ("patients_with_grade3plus_ae", "grade3plus"),
        ("discontinued_for_ae_only", "discontinued_for_ae"),
        ("dose_reduction", "dose_reduction"),
    ):
        count = int(safety[key])
        out.append(
            Target(
                id=f"anchor_study.{key}",
                study="anchor_study",
                arms=arm,
                statistic="share",
                endpoint=endpoint,
                value=count / n,
                ci=None,
                se=_prop_se(count / n, n),
                scale="proportion",
                n=n,
                counted=True,
                fitted=True,
                approx=False,
                label=f"anchor study: {key.replace('_', ' ')}, {count} of {n}",
                extra={"count": count},
            )
        )
    for week, value in spec["liver_function"]["albi_median_by_week"].items():
        out.append(
            Target(
                id=f"anchor_study.albi_week_{week}",
                study="anchor_study",
                arms=arm,
                statistic="median_value",
                endpoint=f"albi_week:{week}",
                value=float(value),
                ci=None,
                se=0.1,
                scale="albi",
                n=n,
                counted=week != "0",
                fitted=week != "0",
                approx=False,
                label=f"anchor study: median ALBI, week {week}",
                note="baseline fed into the preset: shown, not counted" if week == "0" else "",
            )
        )
    lines = spec["treatment_streams"]["ramucirumab_line"]
    for line, count in lines.items():
        out.append(
            Target(
                id=f"anchor_study.ramucirumab_line_{line}",
                study="anchor_study",
                arms=arm,
                statistic="share",
                endpoint=f"index_line:{line}",
                value=count / n,
                ci=None,
                se=_prop_se(count / n, n),
                scale="proportion",
                n=n,
                counted=False,
                fitted=False,
                approx=False,
                label=f"anchor study: ramucirumab in line {line}, {count} of {n}",
                note="fed into the preset (treatment streams): shown, not counted",
            )
        )
    return out


def all_targets(data: dict) -> list[Target]:
    out = anchor_targets(data["anchor_study"])
    for trial, spec in data["trials"].items():
        out.extend(trial_targets(trial, spec))
    ids = [t.id for t in out]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise InputError(f"targets.yaml: duplicate target ids {sorted(dup)}")
    return out


def studies(targets: list[Target]) -> list[str]:
    seen: list[str] = []
    for t in targets:
        if t.study not in seen:
            seen.append(t.study)
    return seen
