"""Steps-to-target under a decaying schedule (issue 25): the smallest budget N whose run, with its schedule laid
out over N, ends at or below the target. Under WSD the run of budget N is the constant phase up to step
``branch_start(N)`` and a cooldown from there to N, so one constant run that keeps checkpoints serves every N:
a *cooldown branch* per budget tried (``benchmark.trial.branches`` runs them). This module is the rule, a pure
function of the branches' final losses, shared by the trial and by ``results.validate``, which recomputes a
record's steps-to-target from its branches."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

from optimizers.schedule import cooldown_steps


def branch_start(budget: int, cooldown: float) -> int:
    """The step at which the run of ``budget`` steps starts its cooldown (the schedule's own rounding)."""
    return budget - cooldown_steps(cooldown, budget)


def candidate_budgets(resolution: Iterable[int], max_steps: int, cooldown: float) -> list[int]:
    """The budgets in [1, ``max_steps``] whose branch starts on a step of ``resolution`` (the workload's
    resolution grid: every step up to its dense limit, then 5% apart), and ``max_steps`` itself, whose branch
    starts where the constant phase ends. Consecutive candidates are as far apart as the grid's steps, over
    1 - ``cooldown``: one step below 30, about 5% above on the ``cpu`` preset."""
    steps = {*resolution, branch_start(max_steps, cooldown)}
    return [n for n in range(1, max_steps + 1) if branch_start(n, cooldown) in steps]


def available(budgets: Iterable[int], cooldown: float, steps_run: int, diverged: bool) -> list[int]:
    """The budgets whose branch can start: on a step the constant phase (run to ``steps_run``) saved, before it
    diverged where it did."""
    return [n for n in budgets if branch_start(n, cooldown) < steps_run
            or (not diverged and branch_start(n, cooldown) <= steps_run)]


def reaches(loss: float | None, target: float) -> bool:
    return loss is not None and math.isfinite(loss) and loss <= target


def bound_budget(budgets: Sequence[int], cooldown: float, evals: Iterable[tuple[int, float | None]],
                 tightest: float) -> int | None:
    """The smallest of ``budgets`` whose cooldown starts at or after the first step at which the constant phase's
    evaluations (``(step, validation loss)``) reach ``tightest``; None while they have not."""
    crossed = [step for step, loss in evals if reaches(loss, tightest)]
    if not crossed:
        return None
    return min((n for n in budgets if branch_start(n, cooldown) >= min(crossed)), default=None)


def search(budgets: Sequence[int], targets: Sequence[float], final_loss: Callable[[int], float | None],
           bound: int | None, max_steps: int, extend: Callable[[], Sequence[int]] | None = None
           ) -> tuple[dict[float, tuple[int | None, int | None]], float | None]:
    """(what ``smallest_budgets`` finds, the final loss of the run the search ends on). With a ``bound``
    (``bound_budget``, a budget of ``budgets``), first over the budgets up to it; where its branch reaches the
    tightest target that is the answer, and the run it ends on is the bound's. Otherwise (no bound, or its
    branch missed) over every budget: ``extend()`` first (the constant phase run to its end; it returns the
    budgets then available, else ``budgets``), the run at the workload's budget ``max_steps`` first (None where
    it is not a candidate: the constant phase diverged before its cooldown would start)."""
    if bound is not None and targets:
        found = smallest_budgets([n for n in budgets if n <= bound], targets, final_loss)
        if found[min(targets)][0] is not None:
            return found, final_loss(bound)
    budgets = extend() if extend is not None else budgets
    final = final_loss(max_steps) if max_steps in budgets else None
    return smallest_budgets(budgets, targets, final_loss), final


def smallest_budgets(budgets: Sequence[int], targets: Iterable[float],
                     final_loss: Callable[[int], float | None]) -> dict[float, tuple[int | None, int | None]]:
    """For each target, (N, bracket): N the smallest of ``budgets`` whose run ends at or below it, found by
    bisection on ``final_loss(budget)`` (the final validation loss of that budget's run, None when it never
    ends, e.g. diverged), which is assumed to fall as the budget grows (a run given more steps ends lower); the
    bracket is the gap from the candidate budget below N (from 0 when N is the first), so the smallest budget
    of all lies in (N - bracket, N]: 1 where every budget is a candidate. A target that the largest budget's run does not reach is censored: (None, None).

    Targets are searched loosest first, each bracketed by what the branches run so far say (the smallest
    budget known to reach it, the largest known below that one not to), so branches serve every target they
    bound. ``final_loss`` is called once per budget, in the order a trial runs the branches: the rule is
    deterministic, and a record's branches say how its steps-to-target were found."""
    budgets = sorted(budgets)
    known: dict[int, float | None] = {}

    def loss(i: int) -> float | None:
        if i not in known:
            known[i] = final_loss(budgets[i])
        return known[i]

    found: dict[float, tuple[int | None, int | None]] = {}
    for target in sorted(targets, reverse=True):
        if not budgets or not reaches(loss(len(budgets) - 1), target):
            found[target] = (None, None)
            continue
        hi = min(i for i in known if reaches(known[i], target))
        lo = max((i for i in known if i < hi and not reaches(known[i], target)), default=-1)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if reaches(loss(mid), target):
                hi = mid
            else:
                lo = mid
        found[target] = (budgets[hi], budgets[hi] - (budgets[lo] if lo >= 0 else 0))
    return found
