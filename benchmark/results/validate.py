"""What ``bench leaderboard merge`` checks before it accepts a record from another machine, beyond its
schema (``record.read_record``): that it names a workload this code knows at that version, on a corpus
whose targets are known (shipped, or calibrated in the source's or the destination's targets file); that
its run id is the hash of what it says it ran; that its code version has the form records carry; and that
its outcome follows from its own evaluations: steps-to-target, the final and best losses and the status
are recomputed, so an edited number is refused with the reason. A record whose schedule is WSD recomputes them
from its cooldown branches instead (``results.budgets``): its search is run again on the branches it records,
which must be exactly the ones that search asks for, each starting where its schedule's cooldown does."""

from __future__ import annotations

import math
import re
from dataclasses import fields
from pathlib import Path

from benchmark.results.budgets import available, bound_budget, branch_start, candidate_budgets, search
from benchmark.results.curves import steps_to_target
from benchmark.results.record import GRID, run_id
from benchmark.workload.presets import PRESETS, Workload, calibrated

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


def outcome_problem(record: dict) -> str | None:
    """Why the outcome ``record`` claims (steps-to-target, final and best losses, status) does not follow from
    its evaluations, or from its cooldown branches where its schedule is WSD; None when it does."""
    if record["run"].get("schedule") == "wsd":
        return _branches_problem(record)
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
    return _workload_problem(run, targets_files) or _identity_problem(run) or outcome_problem(record)


def _workload(run: dict) -> Workload:
    cfg = run["workload_config"]
    return Workload(**{f.name: tuple(cfg[f.name]) if isinstance(cfg[f.name], list) else cfg[f.name]
                       for f in fields(Workload) if f.name in cfg})


def _search(record: dict, w: Workload) -> tuple[list[int], float | None, dict] | str:
    """(the budgets the trial's search asks for, in its order; the final loss of the run it ends on; what it
    finds), run on the record's branches; or why it cannot be."""
    run = record["run"]
    c, branches = run["hparams"]["cooldown"], {b["budget"]: b for b in run.get("branches") or []}
    diverged = run["status"] == "diverged"
    budgets = available(candidate_budgets(w.resolution_grid(), w.max_steps, c), c, run["steps_run"], diverged)
    bound = bound_budget(budgets, c, [(e["step"], e["val_loss"]) for e in record["evals"]], min(w.targets)) \
        if w.targets else None
    asked: dict[int, None] = {}

    def final_loss(n: int) -> float | None:
        if n not in branches:
            raise LookupError(f"its search needs the branch of budget {n}, which it does not record")
        asked[n] = None
        return branches[n]["final_val_loss"]

    try:
        found, final = search(budgets, w.targets, final_loss, bound, w.max_steps)
    except LookupError as e:
        return str(e)
    return list(asked), final, found


def _branches_problem(record: dict) -> str | None:
    run, w = record["run"], _workload(record["run"])
    c, evals = run["hparams"]["cooldown"], {e["step"]: e["val_loss"] for e in record["evals"]}
    for b in run.get("branches") or []:
        n = b["budget"]
        if b["start"] != branch_start(n, c) or b["length"] != n - b["start"]:
            return f"the branch of budget {n} starts at {b['start']}, its cooldown at {branch_start(n, c)}"
        if b["length"] == 0 and not _same(b["final_val_loss"], evals.get(n)):
            return f"the branch of budget {n} ends at {b['final_val_loss']}, its evaluation at step {n} says {evals.get(n)}"
    searched = _search(record, w)
    if isinstance(searched, str):
        return searched
    asked, final, found = searched
    if asked != [b["budget"] for b in run.get("branches") or []]:
        return f"its branches are budgets {[b['budget'] for b in run['branches']]}, its search asks for {asked}"
    for t in w.targets:
        for key, i in (("steps_to_target", 0), ("steps_to_target_bracket", 1)):
            if not _same(run[key].get(f"{t:g}"), found[t][i]):
                return f"{key.replace('_', ' ')} {t:g} says {run[key].get(f'{t:g}')}, its branches give {found[t][i]}"
    losses = [x for x in [*evals.values(), *(b["final_val_loss"] for b in run["branches"])]
              if x is not None and math.isfinite(x)]
    if not _same(run["final_val_loss"], final):
        return f"final validation loss says {run['final_val_loss']}, its branch at the budget {final}"
    if not _same(run.get("best_val_loss"), min(losses, default=None)):
        return f"best validation loss says {run.get('best_val_loss')}, its evaluations and branches give {min(losses, default=None)}"
    tightest = found[min(w.targets)][0] if w.targets else None
    status = "diverged" if run["status"] == "diverged" else "reached" if tightest is not None else "budget"
    return None if run["status"] == status else f"status says {run['status']}, its branches say {status}"
