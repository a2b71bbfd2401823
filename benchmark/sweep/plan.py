"""Suites expand a workload and a choice of optimizers into a deterministic list of trials.

``iteration-complexity`` (DESIGN §1): for every batch size (K) of the workload and every optimizer,
tune over the backend's own search space with the same number of settings for every optimizer (seed
0), pick the best setting by steps-to-target (tightest target first, then looser ones, then final
loss), and rerun it over the remaining seeds. Every tuning run is kept: learning-rate sensitivity is a
result. The tuning list is fixed up front; the seed reruns of a cell are fixed once all of that cell's
tuning records exist (possibly written by other shards or machines).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field, replace

import numpy as np

from benchmark import BenchError
from benchmark.hashing import content_hash
from benchmark.results.curves import selection_key
from benchmark.results.record import GRID
from benchmark.sweep import coordinate
from benchmark.sweep.axes import inside_range, round3
from benchmark.sweep.coordinate import coordinate_cells
from benchmark.sweep.settings import Settings
from benchmark.trial.identity import Trial
from benchmark.workload.presets import Workload
from optimizers import get_backend

DEFAULT_TUNE_BUDGET = 3


def tuning_grid(optimizer: str, budget: int = DEFAULT_TUNE_BUDGET,
                settings: Settings | None = None) -> list[tuple[tuple[str, object], ...]]:
    """The grid protocol's settings (``grid_space``) as a list of override tuples, cut to ``budget`` evenly
    spread settings when it is larger, so that every optimizer gets the same tuning budget; with ``settings``
    from the command line, its fixed values in every tuple and its own grids searched whole."""
    settings = settings or Settings()
    space = grid_space(optimizer, settings)
    keys = sorted(space)
    points = [tuple(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]
    if len(points) > budget and not settings.grid:
        idx = np.unique(np.round(np.linspace(0, len(points) - 1, budget)).astype(int))
        points = [points[i] for i in idx]
    return [tuple(sorted({**dict(p), **settings.fixed}.items())) for p in points]


def grid_space(optimizer: str, settings: Settings | None = None) -> dict[str, list]:
    """What the grid protocol searches: the first key of the backend's declared space (the learning rate, for
    every built-in backend), with the command line's own grids and without its fixed keys."""
    declared = get_backend(optimizer).search_space
    first = next(iter(declared))
    return (settings or Settings()).space({first: declared[first]})


EXTENSIONS_PER_SIDE = 2  # grid points added beyond an edge of the declared grid, per direction, at most


@dataclass
class Plan:
    tuning: list[Trial]
    seeds: list[Trial] = field(default_factory=list)
    waiting: list[tuple[int, str]] = field(default_factory=list)  # cells whose tuning is incomplete
    best: dict[tuple[int, str], tuple] = field(default_factory=dict)
    cells: dict[tuple[int, str], list[Trial]] = field(default_factory=dict)  # each cell's tuning trials
    notes: list[str] = field(default_factory=list)  # edges of a valid range that stopped an extension
    budget: int | None = None  # coordinate tuning: trials a cell may spend (None: the grid protocol)
    walks: dict[tuple[int, str], int] = field(default_factory=dict)  # each walk's trial budget

    @property
    def trials(self) -> list[Trial]:
        return [*self.tuning, *self.seeds]


def extension(name: str, cell: list[Trial], done: list[dict], targets,
              settings: Settings | None = None) -> tuple[tuple | None, str] | None:
    """One more setting for a fully tuned cell whose best lies at an edge of what it searched: the next
    point of the declared grid's log spacing beyond that edge (the same rule for every backend), while
    fewer than ``EXTENSIONS_PER_SIDE`` points were added on that side; with why. The point stays inside the
    hyperparameter's declared valid range: where the next log step would leave it, the point halfway to the
    range's bound is taken instead, and where the edge is the range's own bound, nothing is
    (``(None, why)``). None when no edge is best."""
    best = min(zip(cell, done), key=lambda td: (selection_key(td[1], targets), td[0].run_id))[0]
    backend = get_backend(name)
    space, chosen = grid_space(name, settings), dict(best.hparams)
    blocked = None
    for key in sorted(space):
        grid = sorted(space[key])
        if len(grid) < 2 or not all(isinstance(v, (int, float)) and v > 0 for v in grid):
            continue
        step = (grid[-1] / grid[0]) ** (1 / (len(grid) - 1))
        tried = sorted({dict(t.hparams)[key] for t in cell if all(dict(t.hparams)[o] == chosen[o] for o in chosen
                                                                   if o != key)})
        for side, edge, beyond, limit, factor in (("top", tried[-1], [v for v in tried if v > grid[-1]], grid[-1], step),
                                                  ("bottom", tried[0], [v for v in tried if v < grid[0]], grid[0],
                                                   1 / step)):
            if chosen[key] != edge or len(beyond) >= EXTENSIONS_PER_SIDE:
                continue
            why = f"{key}={edge:g} was best at the {side} of the {len(tried)} values searched"
            value, note = inside_range(backend, key, edge, round3(limit * factor ** (len(beyond) + 1)), side)
            if value is None:
                blocked = blocked or (None, f"{why}, {note}: not extended")
                continue
            return tuple(sorted({**chosen, key: value}.items())), why + (f" ({note})" if note else "")
    return blocked


def _cell(workload, name, k, seeds, records, tune_budget, corpus, numerics, plan: Plan,
          settings: Settings | None) -> None:
    """The cell's tuning trials (the initial grid, then one extension at a time), then its seed reruns."""
    settings = settings or Settings()
    fixed, searched = tuple(sorted(settings.fixed)), beyond(name, settings, GRID)

    def trial(hp, seed=0, role="tune", reason="grid"):
        return Trial("iteration-complexity", workload, name, hp, k, seed, role=role, corpus=corpus,
                     numerics=numerics, reason=reason, fixed=fixed, searched=searched)

    cell = [trial(hp) for hp in tuning_grid(name, tune_budget, settings)]
    while len(cell) > 1 and all(t.run_id in records for t in cell):  # one setting (--tune-budget 1): no tuning
        more = extension(name, cell, [records[t.run_id] for t in cell], workload.targets, settings)
        if more is None or more[0] is None:
            plan.notes += [f"K={k} {name}: {more[1]}"] if more else []
            break
        cell.append(trial(more[0], reason=f"extension: {more[1]}"))
    # each tuning record names its cell's planned trials, so a report can tell a finished tuning from a partial one
    cell = [replace(t, cell_trials=tuple(c.run_id for c in cell)) for t in cell]
    plan.tuning.extend(cell)
    plan.cells[(k, name)] = cell
    if not all(t.run_id in records for t in cell):
        plan.waiting.append((k, name))
        return
    best = min(cell, key=lambda t: (selection_key(records[t.run_id], workload.targets), t.run_id))
    plan.best[(k, name)] = best.hparams
    plan.seeds.extend(trial(best.hparams, s, "seed", "the cell's selected setting") for s in range(1, seeds))


TUNINGS = (GRID, "coordinate")  # --tuning: today's learning-rate grid, or benchmark.sweep.coordinate


def iteration_complexity(
    workload: Workload, optimizers: list[str], seeds: int, records: dict[str, dict] | None = None,
    tune_budget: int | None = None, corpus: str = "", numerics: str = "",
    settings: dict[str, Settings] | None = None, tuning: str = GRID, ks: tuple[int, ...] | None = None,
) -> Plan:
    """The plan; ``records`` (run id -> run record) moves each cell's tuning on (a grid extended while its best
    sits at an edge; a coordinate walk) and fixes the seed reruns of cells whose tuning has ended.
    ``tune_budget``: the grid's settings (grid protocol) or the trials of a cell (coordinate), by default
    ``DEFAULT_TUNE_BUDGET`` or ``coordinate.DEFAULT_BUDGET``; ``ks``: the batch sizes planned (the workload's)."""
    records, settings = records or {}, settings or {}
    plan = Plan(tuning=[])
    if tuning == "coordinate":
        plan.budget = tune_budget or coordinate.DEFAULT_BUDGET
        for name in optimizers:
            chosen = settings.get(name) or Settings()
            factory = functools.partial(make_trial, workload, name, corpus, numerics, tuple(sorted(chosen.fixed)),
                                        "coordinate", beyond(name, chosen, "coordinate"))
            coordinate_cells(workload, name, seeds, records, plan.budget, factory, chosen, plan, ks)
        return plan
    for k in ks or workload.ks:
        for name in optimizers:
            _cell(workload, name, k, seeds, records, tune_budget or DEFAULT_TUNE_BUDGET, corpus, numerics, plan,
                  settings.get(name))
    return plan


def make_trial(workload, name, corpus, numerics, fixed, protocol, searched, k, hparams, seed=0, role="tune",
               reason=""):
    """A trial of a walk's cell (``functools.partial`` binds all up to ``searched``)."""
    return Trial("iteration-complexity", workload, name, hparams, k, seed, role=role, corpus=corpus, numerics=numerics,
                 reason=reason, fixed=fixed, protocol=protocol, searched=searched)


def beyond(name: str, settings: Settings, protocol: str) -> tuple[str, ...]:
    """The keys a ``--grid`` searches that ``protocol`` does not tune for ``name`` by default (the grid protocol
    tunes the first declared key, coordinate tuning every declared one): they make a variant."""
    declared = list(get_backend(name).search_space)
    tuned = declared[:1] if protocol == GRID else declared
    return tuple(sorted(k for k in settings.grid if k not in tuned))


@dataclass(frozen=True)
class Suite:
    name: str
    description: str


SUITES = {
    "iteration-complexity": Suite(
        "iteration-complexity",
        "tune each optimizer per batch size on an equal budget, rerun the best over seeds; steps, compute "
        "and time to the workload's targets",
    ),
    "robustness": Suite(
        "robustness",
        "at the middle K, every optimizer under three protocols side by side: the learning-rate grid, coordinate "
        "tuning of every declared hyperparameter, and from its optimum the warmup-stable-decay schedule measured "
        "by cooldown branches",
    ),
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise BenchError(f"unknown suite {name!r}; valid: {', '.join(SUITES)}")
    return SUITES[name]


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return (1, 1)
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise BenchError(f"--shard must look like i/n (e.g. 2/4), got {text!r}") from None
    if not 1 <= i <= n:
        raise BenchError(f"--shard {text}: need 1 <= i <= n")
    return (i, n)


def in_shard(trial: Trial, shard: tuple[int, int]) -> bool:
    """Deterministic, order-free sharding by a stable hash of the run id."""
    i, n = shard
    return int(content_hash(trial.run_id, length=None), 16) % n == i - 1
