"""What ``hccsim calibrate`` and ``hccsim calibrate --check`` do, apart from argument parsing."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import re
import time
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

from hccsim.simulator import __version__, parameters
from hccsim.simulator.calibration import check, fit, pools, report
from hccsim.simulator.calibration import targets as targets_mod
from hccsim.simulator.errors import InputError

DEFAULT_SEED = 20261205
#: --check: pools of this many times the published arm size, at least MIN_POOL patients.
CHECK_FACTOR = 4.0
CHECK_MIN_POOL = 1500
#: --check: cohorts of the published size drawn per target.
CHECK_RESAMPLES = 500
#: calibrate: smaller pools (the loss needs no resampling), at least FIT_MIN_POOL patients.
FIT_FACTOR = 1.5
FIT_MIN_POOL = 600


def params_file() -> Path:
    return Path(str(resources.files("hccsim.simulator.params").joinpath("default.yaml")))


def parameter_provenance() -> dict:
    label, text = parameters.params_source()
    raw = text.encode("utf-8")
    tree = parameters._default_tree()
    return {
        "file": label,
        "version": str(tree.get("version")),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "calibration": tree.get("calibration"),
    }


#: Next to the targets file: why targets the model misses miss (``gaps: {target id: reason}``).
KNOWN_GAPS = "known_gaps.yaml"


def known_gaps(targets_path: Path, ids) -> dict[str, str]:
    """``{target id: reason}`` from ``known_gaps.yaml`` beside ``targets_path`` (none if absent).

    A key names one target id, or several separated by commas (one reason shared by them); a
    name ending in ``*`` names every target whose id starts with the rest. A name that names
    no target, or a reason that is not text, is an input error naming the file and the key.
    """
    from hccsim.simulator.yamlio import parse_yaml_text

    p = Path(targets_path).with_name(KNOWN_GAPS)
    if not p.is_file():
        return {}
    data = parse_yaml_text(p.read_text("utf-8"), str(p))
    gaps = data.get("gaps") if isinstance(data, dict) else None
    if not isinstance(gaps, dict):
        raise InputError(f"{p}: expected a mapping 'gaps: {{target id: reason}}'")
    ids = list(ids)
    out: dict[str, str] = {}
    for key, reason in gaps.items():
        if not isinstance(reason, str) or not reason.strip():
            raise InputError(
                f"{p}: gaps.{key}: {reason!r} is not allowed; expected a reason (text)"
            )
        for name in (n.strip() for n in str(key).split(",")):
            hits = [
                i for i in ids if (i.startswith(name[:-1]) if name.endswith("*") else i == name)
            ]
            if not hits:
                raise InputError(
                    f"{p}: gaps.{key}: {name!r} names no target of the targets file; expected "
                    f"a target id such as {ids[0]!r}, or a prefix ending in '*'"
                )
            for i in hits:
                out.setdefault(i, " ".join(reason.split()))
    return out


def _published_sizes(data: Mapping, studies) -> dict[tuple[str, str], int]:
    return {k: v for k, v in check.arm_sizes(data).items() if k[0] in studies}


def run_check(
    *,
    targets_path: str | None,
    out: Path,
    seed: int,
    resamples: int,
    factor: float,
    minimum: int,
    run_map,
    studies: list[str] | None = None,
    log: Callable[[str], None],
) -> dict:
    t0 = time.perf_counter()
    data, digest, path = targets_mod.load_raw(targets_path)
    targets = targets_mod.all_targets(data)
    gaps = known_gaps(path, [t.id for t in targets])
    known = targets_mod.studies(targets)
    if studies:
        bad = [s for s in studies if s not in known]
        if bad:
            raise InputError(f"--studies: {bad} not in {path}; allowed: {', '.join(known)}")
        targets = [t for t in targets if t.study in studies]
    chosen = targets_mod.studies(targets)
    published = _published_sizes(data, chosen)
    sizes = check.pool_sizes(published, factor, minimum)
    log(
        f"hccsim calibrate --check: {len(targets)} targets of {len(chosen)} studies; pools of "
        f"{sum(sizes.values()):,} simulated patients; {resamples} cohorts per study"
    )
    arm_pools = pools.simulate_pools(chosen, sizes, {}, seed, run_map)
    log(f"  pools simulated in {time.perf_counter() - t0:.0f} s; resampling")
    draws = check.resample(targets, arm_pools, published, resamples, seed)
    results = check.judge(targets, draws)
    verdict = check.verdict(results)
    provenance = {
        "targets": {"path": str(path), "sha256": digest},
        "parameters": parameter_provenance(),
        "seed": seed,
        "resamples": resamples,
        "pool": {
            "factor": factor,
            "minimum": minimum,
            "sizes": {f"{s}.{a}": n for (s, a), n in sizes.items()},
        },
        "hccsim": __version__,
        "commit": git_commit(),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.perf_counter() - t0,
        "studies": chosen,
    }
    anchor = {}
    if ("anchor_study", "ramucirumab") in arm_pools:
        anchor = report.anchor_tables(data, arm_pools[("anchor_study", "ramucirumab")], results)
    notes = uncertainty_notes(results)
    files = report.write(out, results, verdict, provenance, anchor, notes, gaps)
    return {
        "verdict": verdict,
        "files": files,
        "results": results,
        "seconds": provenance["seconds"],
    }


def uncertainty_notes(results) -> list[str]:
    by = {r.id: r for r in results}
    notes = []
    os_ = by.get("anchor_study.os_median")
    if os_ is not None and os_.mean is not None:
        notes.append(
            "Ramucirumab rests on the anchor study's 37 patients: its published median OS of "
            f"{os_.published:.1f} months has a 95% CI of {os_.ci[0]:.1f}-{os_.ci[1]:.1f}, and "
            f"cohorts of 37 simulated with one fixed parameter set already spread over "
            f"{os_.low:.1f}-{os_.high:.1f} months. Any ramucirumab effect within that width "
            "fits the study about equally well: treat ramucirumab results as provisional."
        )
    notes.append(
        "Independent-review figures are compared with a simulated blinded central reader "
        "(observation.assessor: independent) where the whole emulation is independently "
        "reviewed; REFLECT's independent ORRs are compared with its investigator reading (its "
        "PFS was investigator-assessed). TTP by RECIST 1.0 is emulated by RECIST 1.1. Every "
        "simulated adverse event of the index line counts as treatment-related."
    )
    return notes


# --- calibrate --------------------------------------------------------------------------------


def run_calibrate(
    *,
    targets_path: str | None,
    checkpoint_path: Path,
    seed: int,
    factor: float,
    minimum: int,
    run_map,
    only: list[str] | None,
    write_params: Path | None,
    log: Callable[[str], None],
    max_evaluations: int | None = None,
) -> dict:
    """Fit the stages in order (``only``: a subset), each capped at ``max_evaluations``
    simulations when given, resuming from the checkpoint at ``checkpoint_path``."""
    t0 = time.perf_counter()
    data, digest, path = targets_mod.load_raw(targets_path)
    targets = targets_mod.all_targets(data)
    stages = fit.build_stages(targets)
    if only:
        names = [s.name for s in stages]
        bad = [s for s in only if s not in names]
        if bad:
            raise InputError(f"--stages: {bad} unknown; allowed: {', '.join(names)}")
        stages = [s for s in stages if s.name in only]
    if max_evaluations is not None:
        stages = [
            dataclasses.replace(s, max_evaluations=min(s.max_evaluations, max_evaluations))
            for s in stages
        ]
    sizes = check.pool_sizes(check.arm_sizes(data), factor, minimum)
    header = {
        "targets_sha256": digest,
        "seed": seed,
        "factor": factor,
        "minimum": minimum,
        "stages": [s.name for s in stages],
        "max_evaluations": max_evaluations,
        "start_parameters_sha256": parameter_provenance()["sha256"],
        "loss_version": fit.LOSS_VERSION,
    }
    cp = fit.Checkpoint(checkpoint_path, header)
    values, results = fit.calibrate(
        targets, stages, sizes=sizes, seed=seed, run_map=run_map, checkpoint=cp, log=log
    )
    summary = {
        "targets_sha256": digest,
        "targets_path": str(path),
        "seed": seed,
        "hccsim": __version__,
        "commit": git_commit(),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d"),
        "seconds": round(time.perf_counter() - t0),
        "pool": {"factor": factor, "minimum": minimum},
        "stages": [
            {
                "name": r.name,
                "loss_start": round(r.loss_start, 4),
                "loss": round(r.loss, 4),
                "evaluations": r.evaluations,
            }
            for r in results
        ],
    }
    if write_params is not None:
        write_parameters(write_params, values, summary)
    return {"values": values, "stages": results, "summary": summary}


def write_parameters(path: Path, values: Mapping[str, float], summary: Mapping) -> None:
    """Write fitted values into a copy of ``params/default.yaml`` at ``path``: section values
    in place (with a comment giving the previous value), drug values under ``drugs:``, and a
    ``calibration:`` provenance block. Comments and sources of other values are kept.

    A run of some stages only (``--stages``) refits those and keeps the rest: the drug values
    and the stage records of the parameter file it started from that it did not refit are
    carried over, and the provenance says which stages come from the earlier calibration."""
    import yaml

    text = parameters.params_source()[1]
    before = yaml.safe_load(text) or {}
    # (value, source) per drug and key: the starting file's fitted drug values, then this run's
    drugs: dict[str, dict[str, tuple[float, str]]] = {}
    for drug, kv in (before.get("drugs") or {}).items():
        for key, entry in (kv or {}).items():
            if isinstance(entry, Mapping):
                drugs.setdefault(drug, {})[key] = (entry["value"], str(entry.get("source", "")))
            else:
                drugs.setdefault(drug, {})[key] = (entry, "")
    for p, v in sorted(values.items()):
        if p.startswith("drugs."):
            _, drug, key = p.split(".", 2)
            drugs.setdefault(drug, {})[key] = (v, "calibrated (hccsim calibrate)")
            continue
        section, name = p.split(".", 1)
        pattern = re.compile(
            rf"(^{re.escape(section)}:\n(?:(?!^\S).*\n)*?^  {re.escape(name)}:\n    value: )([^\n#]+)(.*)$",
            re.M,
        )
        m = pattern.search(text)
        if m is None:
            raise ValueError(f"params/default.yaml: cannot find {p}")
        old = m.group(2).strip()
        text = text[: m.start(2)] + f"{v:.6g}  # calibrated (was {old})" + text[m.end(3) :]
    earlier = before.get("calibration") or {}
    rerun = {st["name"] for st in summary["stages"]}
    kept = [st for st in earlier.get("stages") or [] if st.get("name") not in rerun]
    if kept:
        # the earlier records in their order, a refitted stage in its place, new ones after
        fresh = {st["name"]: st for st in summary["stages"]}
        merged = [fresh.pop(st["name"], st) for st in earlier.get("stages") or []]
        summary = {
            **summary,
            "earlier": (
                f"stages {', '.join(st['name'] for st in kept)} kept from the calibration of "
                f"{earlier.get('date', 'unknown date')} (commit {earlier.get('commit', 'unknown')}); "
                f"refitted here: {', '.join(sorted(rerun))}"
            ),
            "stages": merged + list(fresh.values()),
        }
    version = _version(summary) + ("+partial-refit" if kept else "")
    text = re.sub(r"^version: .*$", f'version: "{version}"', text, count=1, flags=re.M)
    head, sep, _ = text.partition("\ndrugs:")
    if not sep:
        raise ValueError("params/default.yaml: no drugs: section")
    head = re.sub(r"\ncalibration:.*\Z", "", head, flags=re.S)  # a previous calibration's block
    lines = ["", "calibration:  # provenance of the fitted values (hccsim calibrate)"]
    lines += [
        f"  {k}: {_yaml_scalar(v)}" for k, v in summary.items() if k not in ("stages", "pool")
    ]
    lines.append(
        f"  pool: {{factor: {summary['pool']['factor']}, minimum: {summary['pool']['minimum']}}}"
    )
    lines.append("  stages:")
    for s in summary["stages"]:
        lines.append(
            f"    - {{name: {s['name']}, loss_start: {s['loss_start']}, loss: {s['loss']}, evaluations: {s['evaluations']}}}"
        )
    lines.append("drugs:  # fitted drug effects; they win over the catalogue's priors")
    if not drugs:
        lines[-1] = "drugs: {}"
    for drug in sorted(drugs):
        lines.append(f"  {drug}:")
        for k in sorted(drugs[drug]):
            v, source = drugs[drug][k]
            lines.append(f"    {k}: {{value: {v:.6g}, source: {_yaml_scalar(source)}}}")
    path.write_text(head.rstrip("\n") + "\n" + "\n".join(lines) + "\n", "utf-8")


def git_commit() -> str:
    """The repository's commit (with ``+dirty`` for local changes), or ``unknown``."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip()[:12] + ("+dirty" if dirty.stdout.strip() else "")


def _version(summary: Mapping) -> str:
    return f"calibrated-{summary['date']}-seed{summary['seed']}"


def _yaml_scalar(v) -> str:
    if isinstance(v, (int, float)):
        return str(v)
    return '"' + str(v).replace('"', "'") + '"'
