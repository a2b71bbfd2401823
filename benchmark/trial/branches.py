"""Steps-to-target of a trial whose schedule is WSD, by cooldown branches (issue 25; the rule, a pure function of
the branches' losses, is ``benchmark.results.budgets``).

With a decaying schedule the step at which a run crosses a target depends on the budget it was given, so the
measure is the smallest budget N whose run, with its schedule laid out over N, ends at or below the target. WSD's
warmup is a fraction of the workload's budget and its cooldown the last ``round(c * N)`` steps before N, so the
run of budget N is the constant run up to ``s = N - round(c * N)``, then a cooldown of its own. Hence:

1. the *constant phase*: the trial itself with no cooldown (its backend's ``budget`` far away), evaluated on
   its grid (the record's ``evals``), with a branch checkpoint at every step of the resolution grid that a
   branch starts from, up to the start of the branch that bounds the search (``budgets.bound_budget``: the
   smallest budget whose cooldown starts after the phase crossed its tightest target), or of the longest
   branch where it never crosses (or where the bound's branch missed: then it runs on to there);
2. a *branch* for budget N: from the checkpoint at s, ``budget = N``, the remaining ``N - s`` steps through the
   same host, its validation loss at N (a budget without cooldown, ``round(c * N) = 0``, is the constant
   phase's evaluation at N);
3. the search (``budgets.search``): per target, bisection over the budgets whose branch starts on a saved
   step, below the bound where there is one, branches shared by the targets; a target that the branch at the
   workload's budget does not reach is censored.

Every branch goes into the record (``run["branches"]``), and into a JSON beside the trial's resume checkpoint
as soon as it ends, so that a killed trial resumes its constant phase from that checkpoint and its search from
the branches done. Costs: the record's ``costs`` are the constant phase's, the branches' are summed into
``run["branch_costs"]``. One process only: a multi-process WSD trial is refused (a failed record).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable

import lightning as L

from benchmark.data.streams import StepDataset
from benchmark.files import atomic_write_json
from benchmark.results.budgets import (
    available,
    bound_budget,
    branch_start,
    candidate_budgets,
    reaches,
    search,
)
from benchmark.results.store import ResultsStore
from benchmark.trial.callbacks import Evaluation, StepProgress, restore, resume_checkpoint
from benchmark.trial.checkpoint import Checkpoint
from benchmark.trial.launch import fit
from optimizers.interface import Costs

NO_COOLDOWN = 2**62  # the constant phase's budget: a cooldown so far away that it never comes


def cooldown_fraction(hp) -> float | None:
    """The cooldown fraction of a backend whose schedule is WSD (its ``schedule`` or, for the Gauss-Newton
    family, its ``outer_schedule`` is "wsd"; the fraction is its ``cooldown``), else None."""
    wsd = "wsd" in (getattr(hp, "schedule", None), getattr(hp, "outer_schedule", None))
    return float(hp.cooldown) if wsd else None


def spent(now: Costs, before: Costs) -> Costs:
    return Costs(**{k: v - getattr(before, k) for k, v in vars(now).items()})


class BranchCheckpoints(L.Callback):
    """The constant phase saves a branch checkpoint (a resume checkpoint) at every step a branch starts from,
    and stops at the start of the branch that bounds the search."""

    def __init__(self, branches: Branches, evaluation: Evaluation) -> None:
        self.branches, self.evaluation = branches, evaluation

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.branches.save(module, self.evaluation)
        if self.branches.bounded(module.step_idx, self.evaluation):
            trainer.should_stop = True


def run_branch(module, trial, hw, stream, checkpoint: Checkpoint | None, budget: int, val_batches,
               on_step=None) -> dict:
    """Train ``module`` (built with ``checkpoint``'s weights) from ``checkpoint`` to step ``budget`` with its
    schedule laid out over ``budget`` steps: a cooldown branch from a branch checkpoint, or from a start as
    ``run_trial`` takes it (a warm start, None: a fresh initialisation) the whole run of that budget. Returns
    the branch as the record keeps it: its budget, start, length, final validation loss (None when it
    diverged before its end), the passes of its steps and their seconds."""
    w = trial.workload
    module.set_budget(budget)
    evaluation = Evaluation([budget], w.targets, val_batches, w.divergence_factor)
    if checkpoint is not None and checkpoint.resumes:
        restore(module, evaluation, checkpoint)
    start, before, seconds = module.step_idx, Costs.from_dict(module.costs.as_dict()), module.train_seconds
    if budget <= start:
        raise ValueError(f"a branch of budget {budget} cannot start at step {start}")
    callbacks = [evaluation, *([StepProgress(on_step)] if on_step is not None else [])]
    fit(module, StepDataset(stream, trial.k, start, budget), hw, callbacks)
    end = evaluation.evals[-1] if evaluation.evals and evaluation.evals[-1]["step"] == budget else None
    return {"budget": budget, "start": start, "length": budget - start,
            "final_val_loss": end["val_loss"] if end is not None else None,
            **spent(module.costs, before).as_dict(), "seconds": module.train_seconds - seconds}


class Branches:
    """The cooldown branches of one WSD trial: which budgets are candidates, where the constant phase ends,
    which of its steps it saves and evaluates, and the search. ``build(weights)`` builds the trial's host
    (``run.build_module``), ``stream`` is its training stream; files live under the store's work folder."""

    def __init__(self, trial, cooldown: float, store: ResultsStore, hw, build: Callable, stream) -> None:
        if hw.multi_process:
            raise ValueError("a WSD trial runs its cooldown branches in one process: run it on one device")
        w = trial.workload
        self.trial, self.cooldown, self.hw, self.build, self.stream = trial, cooldown, hw, build, stream
        self.budgets = candidate_budgets(w.resolution_grid(), w.max_steps, cooldown)
        self.stable_steps = branch_start(w.max_steps, cooldown)  # where the longest branch starts
        self.starts = {self.start(n) for n in self.budgets if self.start(n) < n}  # with a checkpoint
        self.bounding = True  # the constant phase stops at the bound's start (False: it runs on to its end)
        self.folder = store.work_dir / f"{trial.run_id}.branches"
        self.results_path = store.work_dir / f"{trial.run_id}.branches.json"

    def start(self, budget: int) -> int:
        return branch_start(budget, self.cooldown)

    def available(self, steps_run: int, diverged: bool) -> list[int]:
        return available(self.budgets, self.cooldown, steps_run, diverged)

    def bound(self, evaluation: Evaluation, budgets: list[int] | None = None) -> int | None:
        w = self.trial.workload
        if not w.targets:
            return None
        evals = [(e["step"], e["val_loss"]) for e in evaluation.evals]
        return bound_budget(self.budgets if budgets is None else budgets, self.cooldown, evals, min(w.targets))

    def bounded(self, step: int, evaluation: Evaluation) -> bool:
        """Whether the constant phase, at ``step``, has run as far as its search needs: past the start of the
        bound's branch, unless that branch (of an earlier attempt) missed the tightest target."""
        bound = self.bound(evaluation) if self.bounding and evaluation.status == "running" else None
        if bound is None or step < self.start(bound):
            return False
        missed = self.done().get(bound)
        return missed is None or reaches(missed["final_val_loss"], min(self.trial.workload.targets))

    def evaluation(self, val_batches) -> Evaluation:
        """The constant phase's: the workload's grid up to its end, its end, and every budget without
        cooldown (its run is the constant phase's first steps); it runs on past its targets."""
        w = self.trial.workload
        plain = {n for n in self.budgets if self.start(n) == n}
        grid = {s for s in w.eval_grid() if s <= self.stable_steps} | {self.stable_steps} | plain
        fine = [s for s in w.resolution_grid() if s <= self.stable_steps]
        return Evaluation(sorted(grid), w.targets, val_batches, w.divergence_factor, fine=fine, stop_at_target=False)

    def stable_callbacks(self, module, evaluation: Evaluation, writer) -> list[L.Callback]:
        """Ready ``module`` for (the rest of) the constant phase: no cooldown, the record written after the
        search rather than at the fit's end; the checkpoint of step 0 saved if a branch starts there."""
        module.set_budget(NO_COOLDOWN)
        writer.deferred = True
        if module.step_idx == 0:
            self.save(module, evaluation)
        return [BranchCheckpoints(self, evaluation)]

    def save(self, module, evaluation: Evaluation) -> None:
        if module.step_idx in self.starts and evaluation.status == "running":
            resume_checkpoint(module, evaluation).save(self.folder / f"{module.step_idx}.ckpt")

    def done(self) -> dict[int, dict]:
        """The branches of an earlier attempt of this trial, by budget."""
        if not self.results_path.exists():
            return {}
        return {b["budget"]: b for b in json.loads(self.results_path.read_text())}

    def branch(self, budget: int, evaluation: Evaluation, val_batches, on_step) -> dict:
        start = self.start(budget)
        if start == budget:  # no cooldown: the constant phase's evaluation at that step
            loss = next(e["val_loss"] for e in evaluation.evals if e["step"] == budget)
            return {"budget": budget, "start": start, "length": 0, "final_val_loss": loss,
                    **Costs().as_dict(), "seconds": 0.0}
        checkpoint = Checkpoint.load(self.folder / f"{start}.ckpt")
        module = self.build(checkpoint.model)
        return run_branch(module, self.trial, self.hw, self.stream, checkpoint, budget, val_batches, on_step)

    def search(self, evaluation: Evaluation, steps_run: int, val_batches, on_step=None,
               extend: Callable[[], int] | None = None) -> dict:
        """The branches the search asks for, in the order it asks, each from an earlier attempt where there is
        one, and what they say: the record's run fields they set. ``extend()`` runs the constant phase on to its
        end, should the bound's branch miss (it returns the step reached)."""
        w, done, asked = self.trial.workload, self.done(), {}
        budgets = self.available(steps_run, evaluation.status == "diverged")

        def final_loss(budget: int) -> float | None:
            if budget not in done:
                done[budget] = self.branch(budget, evaluation, val_batches, on_step)
                atomic_write_json(self.results_path, list(done.values()))
            asked.setdefault(budget, done[budget])
            return done[budget]["final_val_loss"]

        def run_on() -> list[int]:
            self.bounding = False
            reached = extend() if extend is not None and steps_run < self.stable_steps else steps_run
            return self.available(reached, evaluation.status == "diverged")

        found, final = search(budgets, w.targets, final_loss, self.bound(evaluation, budgets), w.max_steps, run_on)
        return outcome(w, evaluation, list(asked.values()), found, final)

    def clean(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.results_path.unlink(missing_ok=True)


def outcome(w, evaluation: Evaluation, branches: list[dict], found: dict, final: float | None) -> dict:
    """The run fields of a WSD trial's record that its branches decide (over those of its constant phase)."""
    total = Costs()
    for b in branches:
        total += Costs.from_dict(b)
    tightest = found[min(w.targets)][0] if w.targets else None
    losses = [x for x in [*(e["val_loss"] for e in evaluation.evals), *(b["final_val_loss"] for b in branches)]
              if x is not None and math.isfinite(x)]
    status = "diverged" if evaluation.status == "diverged" else "reached" if tightest is not None else "budget"
    return {"schedule": "wsd", "status": status, "branches": branches,
            "steps_to_target": {f"{t:g}": found[t][0] for t in w.targets},
            "steps_to_target_bracket": {f"{t:g}": found[t][1] for t in w.targets},
            "branch_costs": {**total.as_dict(), "seconds": sum(b["seconds"] for b in branches)},
            "final_val_loss": final, "best_val_loss": min(losses, default=None)}
