"""Suites expand a workload and a choice of optimizers into a deterministic list of trials.

``iteration-complexity`` (DESIGN §1): for every batch size (K) of the workload and every optimizer,
tune over the backend's own search space with the same number of settings for every optimizer (seed
0), pick the best setting by steps-to-target (tightest target first, then looser ones, then final
loss), and rerun it over the remaining seeds. Every tuning run is kept: learning-rate sensitivity is a
result. The tuning list is fixed up front; the seed reruns of a cell are fixed once all of that cell's
tuning records exist (possibly written by other shards or machines).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from benchmark import BenchError
from benchmark.hashing import content_hash
from benchmark.metrics import selection_key
from benchmark.trial import Trial
from benchmark.workloads import Workload
from optimizers import get_backend

DEFAULT_TUNE_BUDGET = 3


def tuning_grid(optimizer: str, budget: int = DEFAULT_TUNE_BUDGET) -> list[tuple[tuple[str, object], ...]]:
    """The backend's search space as a list of override tuples, cut to ``budget`` evenly spread
    settings when it is larger, so that every optimizer gets the same tuning budget."""
    space = get_backend(optimizer).search_space
    keys = sorted(space)
    points = [tuple(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]
    if len(points) > budget:
        idx = np.unique(np.round(np.linspace(0, len(points) - 1, budget)).astype(int))
        points = [points[i] for i in idx]
    return points


@dataclass
class Plan:
    tuning: list[Trial]
    seeds: list[Trial] = field(default_factory=list)
    waiting: list[tuple[int, str]] = field(default_factory=list)  # cells whose tuning is incomplete
    best: dict[tuple[int, str], tuple] = field(default_factory=dict)

    @property
    def trials(self) -> list[Trial]:
        return [*self.tuning, *self.seeds]


def iteration_complexity(
    workload: Workload, optimizers: list[str], seeds: int, records: dict[str, dict] | None = None,
    tune_budget: int = DEFAULT_TUNE_BUDGET, corpus: str = "", numerics: str = "",
) -> Plan:
    """The plan; ``records`` (run id -> run record) fixes the seed reruns of fully tuned cells."""
    records = records or {}
    plan = Plan(tuning=[])
    for k in workload.ks:
        for name in optimizers:
            cell = [Trial("iteration-complexity", workload, name, hp, k, 0, role="tune", corpus=corpus,
                          numerics=numerics)
                    for hp in tuning_grid(name, tune_budget)]
            plan.tuning.extend(cell)
            if seeds <= 1:
                continue
            done = [records[t.run_id] for t in cell if t.run_id in records]
            if len(done) < len(cell):
                plan.waiting.append((k, name))
                continue
            best = min(zip(cell, done), key=lambda td: (selection_key(td[1], workload.targets), td[0].run_id))[0]
            plan.best[(k, name)] = best.hparams
            plan.seeds.extend(Trial("iteration-complexity", workload, name, best.hparams, k, s, role="seed",
                                    corpus=corpus, numerics=numerics) for s in range(1, seeds))
    return plan


@dataclass(frozen=True)
class Suite:
    name: str
    description: str


SUITES = {
    "iteration-complexity": Suite(
        "iteration-complexity",
        "tune each optimizer per batch size on an equal budget, rerun the best over seeds; steps, compute "
        "and time to the workload's targets",
    )
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
