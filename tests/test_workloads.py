"""Workloads (benchmark/workload/presets.py): what a measurement holds fixed."""

import dataclasses

from benchmark.workload.presets import PRESETS


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
