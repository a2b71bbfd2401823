"""Coordinate tuning (``--tuning coordinate``): the protocol of Marin's optimizer study (Wen et al., *Fantastic
Pretraining Optimizers and Where to Find Them*, 2026), at the same trial budget for every backend.

Phase I, at the preset's smallest and largest K: from the backend's defaults, sweep one hyperparameter at a
time over its declared grid (``Backend.search_space``, in its declared order; a grid given on the command line
replaces the declared one, a fixed setting stays fixed), keep the best value (steps to the tightest target,
then the looser ones, then the final loss: ``results.curves.selection_key``) and go round until a whole pass
changes nothing or the cell's trial budget is spent. The first pass sweeps every hyperparameter's declared grid
(so that the budget reaches them all); from the second on, a best value at an edge of what was searched extends
that axis by half the declared grid's spacing, in the hyperparameter's own scale (log for a scale such as a
learning rate, log(1 - x) for a momentum or a beta, linear for the rest), never past its declared valid range.

Phase II, at the preset's other Ks: from the optimum of the nearest Phase I K, only the hyperparameters whose
best value moved between the two Phase I Ks are swept, the learning rate (the first key) always.

What a cell runs next is a pure function of its records: a sweep plans again after every batch, and records
written by another shard or machine move the walk on exactly as its own would.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from benchmark.results.curves import selection_key
from benchmark.sweep.axes import inside_range, round3
from benchmark.sweep.settings import Settings
from optimizers import get_backend
from optimizers.hyper import Range, valid_values

DEFAULT_BUDGET = 16  # trials per cell, the same for every backend
MAX_PASSES = 4  # a walk that still moves after this many passes stops (the budget usually ends it first)
EXTENSIONS = 3  # points added beyond an edge of an axis, per side, at most

Point = tuple[tuple[str, object], ...]  # every searched key with its value, sorted by key


def start_point(name: str, space: dict[str, list], fixed: dict) -> dict:
    """The backend's defaults for the searched keys, and the fixed settings."""
    defaults = get_backend(name).Hyper()
    return {**{k: getattr(defaults, k) for k in space}, **fixed}


def point(x: dict) -> Point:
    return tuple(sorted(x.items()))


@dataclass
class Walk:
    """One cell's walk: ``result(point)`` is the finished run of a point (or None), ``seen`` the points the cell
    has planned so far (its spent budget)."""

    name: str
    space: dict[str, list]
    result: Callable[[Point], dict | None]
    targets: tuple
    budget: int
    seen: set = field(default_factory=set)

    def next(self, keys: list[str], start: dict) -> tuple[list[tuple[Point, str]], Point, bool]:
        """(the points to run next with why, the best point so far, whether the walk has ended), searching
        ``keys`` from ``start``."""
        x = dict(start)
        for passes in range(1, MAX_PASSES + 1):
            moved = False
            for key in keys:
                todo, best = self._axis(key, x, passes)
                if todo:  # the budget counts every point planned before this batch
                    room = max(0, self.budget - (len(self.seen) - len(todo)))
                    return todo[:room], self.best(start), room == 0
                moved |= best != x[key]
                x[key] = best
            if not moved and passes > 1:  # the first pass does not extend: a second one may
                break
        return [], point(x), True

    def best(self, start: dict) -> Point:
        """The best finished point the cell has run (its start while none has finished)."""
        finished = [p for p in self.seen if self.result(p) is not None]
        return min(finished, key=lambda p: (selection_key(self.result(p), self.targets), p)) if finished else point(start)

    def _axis(self, key: str, x: dict, passes: int) -> tuple[list[tuple[Point, str]], object]:
        """The points of ``key``'s axis through ``x`` still to run (with why), or none and the axis' best value."""
        grid = sorted(self.space[key])
        axis, added = sorted(set(grid) | {x[key]}), {"bottom": 0, "top": 0}
        while True:
            points = {v: point({**x, key: v}) for v in axis}
            self.seen |= set(points.values())
            missing = [(p, f"coordinate pass {passes}: {key}={_text(v)}") for v, p in points.items()
                       if self.result(p) is None]
            if missing:
                return missing, None
            best = min(axis, key=lambda v: (selection_key(self.result(points[v]), self.targets), axis.index(v)))
            side = "bottom" if best == axis[0] else "top" if best == axis[-1] else None
            if side is None or len(grid) < 2 or added[side] >= EXTENSIONS or passes == 1:
                return [], best
            value = _half_step(self.name, key, grid, best, side)
            if value is None or value in axis:
                return [], best
            axis = sorted({*axis, value})
            added[side] += 1


def around(name: str, key: str, grid: list, center) -> list:
    """``center`` with its neighbours half the declared ``grid``'s spacing away on each side (inside the valid
    range): a finer re-sweep near an optimum found before, as a later phase of Marin's study re-tunes the
    scale-sensitive hyperparameters around theirs."""
    sides = (_half_step(name, key, sorted(grid), center, side) for side in ("bottom", "top"))
    return sorted({center, *(v for v in sides if v is not None)})


def _text(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _half_step(name: str, key: str, grid: list, edge, side: str):
    """The next value beyond ``edge`` at half the declared grid's spacing in ``key``'s own scale, inside its valid
    range (``axes.inside_range``: halfway to a bound the step would cross), or None."""
    backend = get_backend(name)
    forward, back = _scale(valid_values(backend.Hyper, key), grid)
    spacing = abs(forward(grid[-1]) - forward(grid[0])) / (len(grid) - 1)
    rising = forward(grid[-1]) > forward(grid[0])
    sign = (1 if side == "top" else -1) * (1 if rising else -1)
    value = back(forward(edge) + sign * spacing / 2)
    if isinstance(edge, int) and not isinstance(edge, bool):
        value = round(value)
        value = value if value != edge else edge + (1 if side == "top" else -1)
    else:
        value = round3(value)
    found, _ = inside_range(backend, key, edge, value, side)
    return found


def _scale(valid, grid) -> tuple[Callable, Callable]:
    """(to the scale the grid is spaced in, and back): log(1 - x) for a value in [0, 1) such as a momentum, log x
    for positive values such as a learning rate, x itself otherwise (a grid holding 0, a fraction)."""
    if isinstance(valid, Range) and (valid.low, valid.high, valid.high_open) == (0.0, 1.0, True):
        return (lambda v: math.log(1 - v)), (lambda y: 1 - math.exp(y))
    if all(v > 0 for v in grid):
        return math.log, math.exp
    return (lambda v: v), (lambda y: y)


def coordinate_cells(workload, name: str, seeds: int, records: dict[str, dict], budget: int, trial,
                     settings: Settings | None, plan, ks: tuple[int, ...] | None = None) -> None:
    """Plan every K of ``name`` under coordinate tuning into ``plan`` (its tuning trials, cells, waiting cells,
    best settings and seed reruns): Phase I at the smallest and largest K, Phase II at the others once both
    have ended (``ks``: the batch sizes planned, the workload's by default). ``trial(k, hparams, seed=0,
    role="tune", reason="")`` builds one of its trials."""
    settings = settings or Settings()
    space = settings.space(get_backend(name).search_space)
    keys = list(space)
    start = start_point(name, space, settings.fixed)
    ks = tuple(ks or workload.ks)
    ends = {k: walk_cell(workload, name, k, keys, start, space, records, budget, trial, seeds, plan)
            for k in sorted({min(ks), max(ks)})}
    for k in ks:
        if k in ends:
            continue
        if not all(ends.values()):
            plan.waiting.append((k, name))
            continue
        bests = [dict(ends[e]) for e in sorted(ends)]
        moved = [key for key in keys[1:] if len({repr(b[key]) for b in bests}) > 1]
        nearest = min(ends, key=lambda e: (abs(math.log(k / e)), e))
        walk_cell(workload, name, k, [keys[0], *moved], dict(ends[nearest]), space, records, budget, trial, seeds, plan)


def walk_cell(workload, name, k, keys, start, space, records, budget, trial, seeds, plan) -> Point | None:
    """One cell's walk: its trials so far and next into ``plan``; its best point once the walk has ended, and
    then its seed reruns; else None (the cell waits)."""

    def result(p: Point) -> dict | None:
        return records.get(trial(k, p).run_id)

    walk = Walk(name, space, result, workload.targets, budget)
    plan.walks[(k, name)] = budget
    todo, best, ended = walk.next(keys, start)
    done = sorted(p for p in walk.seen if result(p) is not None)
    cell = [trial(k, p, reason=result(p).get("reason", "")) for p in done] + [trial(k, p, reason=why) for p, why in todo]
    cell = [replace(t, cell_trials=tuple(c.run_id for c in cell)) for t in cell]
    plan.tuning.extend(cell)
    plan.cells[(k, name)] = cell
    if todo or not ended:
        plan.waiting.append((k, name))
        return None
    plan.best[(k, name)] = best
    plan.seeds.extend(trial(k, best, s, "seed", "the cell's selected setting") for s in range(1, seeds))
    return best
