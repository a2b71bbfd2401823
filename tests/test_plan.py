"""The iteration-complexity suite (benchmark/sweep/plan.py): plans, shards, equal tuning budgets, seed reruns."""

import dataclasses
import math
from dataclasses import dataclass

import pytest

from benchmark import BenchError
from benchmark.sweep.plan import in_shard, iteration_complexity, parse_shard, tuning_grid
from benchmark.workload.presets import get_workload
from optimizers import registry
from optimizers.first_order.adamw import AdamW, AdamWHyper
from optimizers.registry import register, unregister


def test_shards_partition_the_trial_list():
    w = get_workload("cpu")
    plan = iteration_complexity(w, sorted(registry()), seeds=1)
    ids = [t.run_id for t in plan.trials]
    assert len(ids) == len(set(ids)) == len(w.ks) * len(registry()) * 3
    shards = [{t.run_id for t in plan.trials if in_shard(t, (i, 3))} for i in (1, 2, 3)]
    assert set().union(*shards) == set(ids)
    assert sum(len(s) for s in shards) == len(ids)
    with pytest.raises(BenchError):
        parse_shard("4/3")
    with pytest.raises(BenchError):
        parse_shard("a/b")


def test_every_optimizer_gets_the_same_tuning_budget():
    sizes = {name: len(tuning_grid(name, 3)) for name in registry()}
    assert set(sizes.values()) == {3}


def test_seed_reruns_use_the_selected_setting():
    w = get_workload("smoke")
    plan = iteration_complexity(w, ["adamw"], seeds=3)
    assert not plan.seeds and len(plan.waiting) == len(w.ks)
    records = {}
    for t in plan.tuning:  # fewest steps at lr 0.01, the middle of AdamW's grid
        steps = 10 + 5 * abs(math.log(dict(t.hparams)["lr"] / 0.01))
        records[t.run_id] = {"steps_to_target": {f"{x:g}": steps for x in w.targets},
                             "final_val_loss": 4.0, "status": "reached"}
    plan = iteration_complexity(w, ["adamw"], seeds=3, records=records)
    assert not plan.waiting and len(plan.seeds) == 2 * len(w.ks)
    assert all(dict(t.hparams)["lr"] == 0.01 and t.seed in (1, 2) and t.role == "seed" for t in plan.seeds)


@dataclass(frozen=True)
class _GridHyper(AdamWHyper):
    lr: float = 0.01


class _Grid(AdamW):
    """A backend with a grid of 0.01, 0.03, 0.1 (a 3.16x step) whose records the tests invent."""

    name = "grid-test"
    Hyper = _GridHyper
    search_space = {"lr": [0.01, 0.03, 0.1]}


def _settle(workload, optimum: float) -> tuple[list[float], object]:
    """Plan, invent every new tuning record (steps to each target grow with the distance from ``optimum``
    in log lr), and plan again until the plan stops changing; the lrs tuned and the last plan."""
    records = {}
    while True:
        plan = iteration_complexity(workload, ["grid-test"], seeds=2, records=records)
        new = [t for t in plan.tuning if t.run_id not in records]
        if not new:
            return [dict(t.hparams)["lr"] for t in plan.tuning], plan
        for t in new:
            steps = 10 + 5 * abs(math.log(dict(t.hparams)["lr"] / optimum))
            records[t.run_id] = {"steps_to_target": {f"{x:g}": steps for x in workload.targets},
                                 "final_val_loss": 4.0, "status": "reached"}


@pytest.fixture
def grid_backend():
    register(_Grid)
    yield
    unregister("grid-test")


def test_a_best_setting_at_the_top_of_the_grid_is_extended_until_it_is_interior(grid_backend):
    w = dataclasses.replace(get_workload("smoke"), ks=(4,))
    lrs, plan = _settle(w, optimum=0.25)
    assert lrs == [0.01, 0.03, 0.1, 0.316, 1.0]  # steps of the grid's spacing beyond its top, until interior
    assert dict(plan.best[(4, "grid-test")])["lr"] == 0.316 and not plan.waiting
    assert "extension: lr=0.1 was best at the top" in plan.cells[(4, "grid-test")][3].reason
    assert all(t.hparams == plan.best[(4, "grid-test")] for t in plan.seeds)
    lrs, plan = _settle(w, optimum=100.0)  # far beyond: stops after two extensions, still at the edge
    assert lrs == [0.01, 0.03, 0.1, 0.316, 1.0]
    lrs, _ = _settle(w, optimum=0.001)
    assert lrs == [0.01, 0.03, 0.1, 0.00316, 0.001]


def test_an_interior_best_setting_is_not_extended(grid_backend):
    lrs, plan = _settle(dataclasses.replace(get_workload("smoke"), ks=(4,)), optimum=0.03)
    assert lrs == [0.01, 0.03, 0.1] and dict(plan.best[(4, "grid-test")])["lr"] == 0.03
