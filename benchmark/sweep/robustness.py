"""The robustness suite (``bench run --suite robustness``): does the oracle gap survive baselines tuned in depth
and a decayed schedule? At one batch size, the preset's middle K, every backend under three protocols, each
compared within itself (the protocol is part of a record's identity and of the report's setup):

(a) ``grid``: today's protocol, the learning-rate grid at a constant rate, extended by its own spacing;
(b) ``coordinate``: every declared hyperparameter by coordinate descent at the same trial budget for every
    backend, at a constant rate (``benchmark.sweep.coordinate``);
(c) ``wsd``: from (b)'s optimum, the warmup-stable-decay schedule (``Backend.wsd`` turns it on), with
    steps-to-target measured by cooldown branches (``benchmark.trial.branches``), re-tuning only the learning
    rate (around (b)'s, at half the declared grid's spacing) and the cooldown fraction, as the second phase of
    Marin's study re-tunes what is scale-sensitive, within a smaller budget (``WSD_BUDGET``).

Every selected setting reruns on every seed."""

from __future__ import annotations

import functools

from benchmark.results.record import GRID
from benchmark.sweep.coordinate import around, walk_cell
from benchmark.sweep.plan import Plan, beyond, iteration_complexity, make_trial
from benchmark.sweep.settings import Settings
from optimizers import get_backend

# Cooldown fractions of the budget searched in (c): around the 20% that Hägele et al. (2024, "Scaling Laws and
# Compute-Optimal Training beyond Fixed Training Durations") and Marin's study find enough.
COOLDOWNS = [0.1, 0.2, 0.3]
# (b)'s trials a cell (--tune-budget changes it): every declared hyperparameter's first pass (9 to 10 trials for
# four keys of three values) and a few more, so that the suite fits 90 minutes at ``cpu`` on 2 cores; the
# iteration-complexity suite's coordinate tuning takes coordinate.DEFAULT_BUDGET.
ROBUSTNESS_BUDGET = 12
# (c)'s trials a cell: its first pass is 5 (three learning rates, two more cooldowns), the rest extends an edge.
WSD_BUDGET = 8
PROTOCOLS = (GRID, "coordinate", "wsd")


def middle_k(ks) -> int:
    """The batch size the suite runs at: the middle one of the preset's (the smaller of two middles)."""
    ordered = sorted(ks)
    return ordered[(len(ordered) - 1) // 2]


def robustness(workload, optimizers: list[str], seeds: int, records: dict[str, dict], budget: int | None,
               corpus: str, numerics: str, settings: dict[str, Settings] | None) -> Plan:
    """The suite's plan: (a) and (b) at once, each cell of (c) once its (b) cell has ended."""
    k = middle_k(workload.ks)
    common = dict(records=records, corpus=corpus, numerics=numerics, settings=settings, ks=(k,))
    grid = iteration_complexity(workload, optimizers, seeds, **common)
    coordinate = iteration_complexity(workload, optimizers, seeds, tune_budget=budget or ROBUSTNESS_BUDGET,
                                      tuning="coordinate", **common)
    wsd = Plan(tuning=[], budget=min(WSD_BUDGET, coordinate.budget))
    for name in optimizers:
        _wsd_cell(workload, name, k, seeds, records, corpus, numerics, (settings or {}).get(name) or Settings(),
                  coordinate.best.get((k, name)), wsd)
    return _merged({GRID: grid, "coordinate": coordinate, "wsd": wsd})


def _wsd_cell(workload, name, k, seeds, records, corpus, numerics, settings: Settings, best, plan: Plan) -> None:
    backend = get_backend(name)
    if not backend.wsd:
        plan.notes.append(f"{name}: no warmup-stable-decay schedule declared (Backend.wsd): no (c) row")
        return
    if best is None:  # (b) has not ended: (c) starts from its optimum
        plan.waiting.append((k, name))
        plan.walks[(k, name)] = plan.budget
        return
    first = next(iter(backend.search_space))
    start = {**dict(best), **backend.wsd, "cooldown": backend.Hyper().cooldown}
    space = {**settings.space({first: backend.search_space[first]}), "cooldown": COOLDOWNS}
    if first in space and first not in settings.grid:  # a grid given on the command line is searched whole
        space[first] = around(name, first, space[first], start[first])
    factory = functools.partial(make_trial, workload, name, corpus, numerics, tuple(sorted(settings.fixed)), "wsd",
                                beyond(name, settings, "coordinate"))
    walk_cell(workload, name, k, list(space), start, space, records, plan.budget, factory, seeds, plan)


def _merged(plans: dict[str, Plan]) -> Plan:
    """One plan of the three; its cells named with their protocol (``adamw (coordinate)``) where it is not the
    grid's."""
    def key(protocol, cell):
        k, name = cell
        return (k, name if protocol == GRID else f"{name} ({protocol})")

    merged = Plan(tuning=[], budget=plans["coordinate"].budget)
    for protocol, plan in plans.items():
        merged.tuning += plan.tuning
        merged.seeds += plan.seeds
        merged.notes += plan.notes
        merged.waiting += [key(protocol, c) for c in plan.waiting]
        merged.best |= {key(protocol, c): v for c, v in plan.best.items()}
        merged.walks |= {key(protocol, c): v for c, v in plan.walks.items()}
        merged.cells |= {key(protocol, c): v for c, v in plan.cells.items()}
    return merged
