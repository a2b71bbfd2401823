"""The harness during training (benchmark/trial/callbacks.py), through a real trial: evaluations on the grid,
an early stop at the last target with its step interpolated, a resume checkpoint after every evaluation
of a running trial and none left once its record is written."""

import dataclasses

import pytest

from benchmark.results.store import ResultsStore
from benchmark.trial.checkpoint import Checkpoint
from benchmark.trial.hardware import Hardware
from benchmark.trial.identity import Trial
from benchmark.trial.run import run_trial


@pytest.mark.slow
def test_a_trial_evaluates_on_its_grid_checkpoints_and_stops_at_its_target(smoke_data, tmp_path):
    w, data = smoke_data
    w = dataclasses.replace(w, name="callbacks-test", ks=(1,), max_steps=8, eval_every=2, val_tokens=2048, targets=())
    free = run_trial(Trial("cb", w, "adamw", (), 1, 0, corpus=data.corpus.key()), data, ResultsStore(tmp_path / "a"),
                     Hardware("cpu"), None)
    curve = {e["step"]: e["val_loss"] for e in free["evals"]}
    assert sorted(curve) == [0, 2, 4, 6, 8] and free["run"]["status"] == "budget"
    assert curve[4] < curve[2]
    target = (curve[2] + curve[4]) / 2  # first crossed between the evaluations at steps 2 and 4
    stopped = dataclasses.replace(w, targets=(curve[0] + 1.0, target))
    store = ResultsStore(tmp_path / "b")
    trial = Trial("cb", stopped, "adamw", (), 1, 0, corpus=data.corpus.key())
    seen = []

    def on_step(module):
        ckpt = store.checkpoint_path(trial.run_id)
        seen.append((module.step_idx, Checkpoint.load(ckpt).progress["host"]["step_idx"] if ckpt.exists() else None))

    record = run_trial(trial, data, store, Hardware("cpu"), None, on_step=on_step)
    run = record["run"]
    assert run["status"] == "reached" and run["steps_run"] == 4  # stopped at the evaluation that reached it
    assert [e["val_loss"] for e in record["evals"]] == [curve[0], curve[2], curve[4]]  # the same curve
    assert run["steps_to_target"][f"{target:g}"] == pytest.approx(3.0)
    assert run["steps_to_target"][f"{curve[0] + 1.0:g}"] == 0.0
    assert seen == [(1, None), (2, 2), (3, 2), (4, 2)]  # saved after the evaluation at 2, not once it reached
    assert not store.checkpoint_path(trial.run_id).exists()
    assert store.read(trial.run_id) == record


@pytest.mark.slow
def test_a_crossing_between_evaluations_is_resolved_from_saved_weights(smoke_data, tmp_path):
    w, data = smoke_data
    base = dataclasses.replace(w, name="fine-test", ks=(1,), max_steps=8, eval_every=1, val_tokens=2048, targets=())
    dense = run_trial(Trial("cb", base, "adamw", (), 1, 0, corpus=data.corpus.key()), data,
                      ResultsStore(tmp_path / "dense"), Hardware("cpu"), None)
    curve = {e["step"]: e["val_loss"] for e in dense["evals"]}
    assert curve[6] < curve[5] < curve[4]
    target = (curve[5] + curve[6]) / 2
    lazy = dataclasses.replace(base, eval_every=4, eval_dense_until=8, targets=(curve[0] + 1, target))
    record = run_trial(Trial("cb", lazy, "adamw", (), 1, 0, corpus=data.corpus.key()), data,
                       ResultsStore(tmp_path / "lazy"), Hardware("cpu"), None)
    assert [e["step"] for e in record["evals"]] == [0, 4, 5, 6, 7, 8]  # 1-3 lie before any crossing
    for e in record["evals"]:
        assert e["val_loss"] == pytest.approx(curve[e["step"]], rel=1e-6)
    run = record["run"]
    assert run["steps_to_target"][f"{target:g}"] == pytest.approx(5.5, abs=1e-6)
    assert run["steps_to_target_bracket"][f"{target:g}"] == 1.0 and run["status"] == "reached"
