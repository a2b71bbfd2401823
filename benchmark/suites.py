"""Suites expand a workload and a choice of optimizers into a deterministic list of trials."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmark import BenchError
from benchmark.trial import Trial
from benchmark.workloads import Workload
from optimizers import get_backend


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    plan: Callable[[Workload, list[str], int], list[Trial]]


def _iteration_complexity(workload: Workload, optimizers: list[str], seeds: int) -> list[Trial]:
    """Every optimizer at its defaults, at every K of the workload, over ``seeds`` seeds."""
    for name in optimizers:
        get_backend(name)  # fail before planning anything
    return [
        Trial("iteration-complexity", workload, name, (), k, seed, role="seed")
        for k in workload.ks
        for name in optimizers
        for seed in range(seeds)
    ]


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            "iteration-complexity",
            "steps (and compute) to the workload's target losses, per optimizer and batch size",
            _iteration_complexity,
        ),
    )
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise BenchError(f"unknown suite {name!r}; valid: {', '.join(SUITES)}")
    return SUITES[name]
