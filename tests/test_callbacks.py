"""The harness during training (benchmark/callbacks.py), through a real trial: evaluations on the grid,
an early stop at the last target with its step interpolated, a resume checkpoint after every evaluation
of a running trial and none left once its record is written."""

import dataclasses

import pytest

from benchmark.checkpoint import Checkpoint
from benchmark.hardware import Hardware
from benchmark.store import ResultsStore
from benchmark.trial import Trial, run_trial


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
