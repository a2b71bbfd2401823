"""What ``bench leaderboard merge`` checks before it accepts a record from another machine, beyond its
schema (``record.read_record``): that it names a workload this code knows at that version, on a corpus
whose targets are known (shipped, or calibrated in the source's or the destination's targets file); that
its run id is the hash of what it says it ran; that its code version has the form records carry; and that
its outcome follows from its own evaluations: steps-to-target, the final and best losses and the status
are recomputed, so an edited number is refused with the reason."""

from __future__ import annotations

import math
import re
from pathlib import Path

from benchmark.results.curves import steps_to_target
from benchmark.results.record import GRID, run_id
from benchmark.workload.presets import PRESETS, calibrated

CODE_VERSION = re.compile(r"^\d+\.\d+\.\d+(\+[0-9a-f]{7,40}(\.dirty)?)?$")


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def _workload_problem(run: dict, targets_files: list[Path]) -> str | None:
    preset = PRESETS.get(run["workload"])
    if preset is None:
        return f"unknown workload {run['workload']!r}"
    for path in [None, *targets_files]:
        w = calibrated(preset, run.get("corpus_key"), path)
        if w.version == run["workload_version"] and w.key() == run["workload_key"]:
            return None
    return (f"workload {run['workload']} v{run['workload_version']} (key {run['workload_key']}) is not one this code "
            f"knows on corpus {run.get('corpus_key')!r}: another definition, or targets calibrated elsewhere "
            "(merge that results folder's targets.json with it)")


def _identity_problem(run: dict) -> str | None:
    hparams = [(k, run["hparams"][k]) for k in sorted(run.get("overrides") or [])]
    expected = run_id(run["workload"], run["workload_key"], run.get("corpus_key", ""), run["optimizer"], hparams,
                      run["k"], run["seed"], run.get("numerics") or "", run.get("protocol") or GRID)
    return None if run["run_id"] == expected else f"run id {run['run_id']} is not the hash of its settings ({expected})"


def _outcome_problem(record: dict) -> str | None:
    run, evals = record["run"], record["evals"]
    targets = sorted((run.get("workload_config") or {}).get("targets") or [], reverse=True)
    steps, losses = [e["step"] for e in evals], [e["val_loss"] for e in evals]
    for t in targets:
        claimed, actual = run["steps_to_target"].get(f"{t:g}"), steps_to_target(steps, losses, t)
        if not _same(claimed, actual):
            return f"steps to {t:g} say {claimed}, its evaluations give {actual}"
    finite = [x for x in losses if x is not None and math.isfinite(x)]
    if losses and not _same(run["final_val_loss"], losses[-1]):
        return f"final validation loss says {run['final_val_loss']}, its last evaluation {losses[-1]}"
    if finite and not _same(run.get("best_val_loss", min(finite)), min(finite)):
        return f"best validation loss says {run.get('best_val_loss')}, its evaluations give {min(finite)}"
    reached_all = bool(targets) and steps_to_target(steps, losses, min(targets)) is not None
    status, budget = run["status"], (run.get("workload_config") or {}).get("max_steps")
    if status == "reached" and not reached_all:
        return "status says reached, but its evaluations never reach its last target"
    if status in ("budget", "pruned") and reached_all:
        return f"status says {status}, but its evaluations reach its last target"
    if status == "budget" and budget is not None and run.get("steps_run") != budget:
        return f"status says budget, but it ran {run.get('steps_run')} of {budget} steps"
    if status not in ("reached", "budget", "pruned", "diverged"):
        return f"status {status!r} is not a finished trial's"
    return None


def record_problem(record: dict, targets_files: list[Path]) -> str | None:
    """Why ``record`` (readable, current schema) must not enter a leaderboard, or None."""
    run = record["run"]
    if not isinstance(run.get("code_version"), str) or not CODE_VERSION.match(run["code_version"]):
        return f"code version {run.get('code_version')!r} is not one optbench writes"
    return _workload_problem(run, targets_files) or _identity_problem(run) or _outcome_problem(record)
