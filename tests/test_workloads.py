"""Workloads (benchmark/workload/presets.py): what a measurement holds fixed."""

import dataclasses

import pytest

from benchmark.workload.presets import PRESETS, get_workload


def test_the_evaluation_grid_starts_at_zero_and_ends_at_the_budget():
    w = dataclasses.replace(PRESETS["smoke"], max_steps=10, eval_every=4)
    assert w.eval_grid() == [0, 4, 8, 10]
    assert dataclasses.replace(w, max_steps=8).eval_grid() == [0, 4, 8]
    assert w.tokens_per_step(3) == 3 * w.micro_batch * w.seq_len


def test_every_field_enters_the_key():
    w = PRESETS["cpu"]
    for change in ({"max_steps": 61}, {"targets": (1.0,)}, {"val_tokens": 1}, {"warm_start_lr": 1e-3}):
        assert dataclasses.replace(w, **change).key() != w.key(), change
    assert dataclasses.replace(w).key() == w.key()


def test_paper_presets_share_everything_but_the_model():
    a, b = PRESETS["45m"].to_dict(), PRESETS["150m"].to_dict()
    assert {k for k in a if a[k] != b[k]} == {"name", "description", "model"}
    assert PRESETS["45m"].model_config().d_model == 512 and PRESETS["150m"].model_config().n_layers == 12


def test_a_changed_workload_is_a_workload_of_its_own_name():
    from benchmark import BenchError
    from benchmark.workload.presets import overridden

    smoke = get_workload("smoke")
    small = overridden(smoke, ["max_steps=8", "ks=1,4", "targets=6,5.5", "train_chars=none"])
    assert (small.max_steps, small.ks, small.targets, small.train_chars) == (8, (1, 4), (6.0, 5.5), None)
    assert small.name == "smoke[ks=1+4,max_steps=8,targets=6.0+5.5,train_chars=None]" and small.key() != smoke.key()
    assert "/" not in small.name  # it names files (run ids)
    assert small.targets_source.endswith("targets set by --workload")
    assert overridden(smoke, []) is smoke
    with pytest.raises(BenchError, match="expects key=value"):
        overridden(smoke, ["max_steps"])
