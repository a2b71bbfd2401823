"""The iteration-complexity suite (benchmark/suites.py): plans, shards, equal tuning budgets, seed reruns."""

import pytest

from benchmark import BenchError
from benchmark.suites import in_shard, iteration_complexity, parse_shard, tuning_grid
from benchmark.workloads import get_workload
from optimizers import registry
from optimizers.adamw import AdamW


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
    for t in plan.tuning:
        lr = dict(t.hparams)["lr"]
        records[t.run_id] = {"steps_to_target": {f"{x:g}": 10 / lr for x in w.targets},
                             "final_val_loss": 4.0, "status": "reached"}
    plan = iteration_complexity(w, ["adamw"], seeds=3, records=records)
    assert not plan.waiting and len(plan.seeds) == 2 * len(w.ks)
    best_lr = max(AdamW.search_space["lr"])
    assert all(dict(t.hparams)["lr"] == best_lr and t.seed in (1, 2) for t in plan.seeds)
