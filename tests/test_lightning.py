"""The host (models/lightning.py) under a real Trainer: one batch is one outer step, counted and logged;
its validation loss is the model's; its progress round-trips."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from benchmark.data.streams import StepDataset
from benchmark.trial.hardware import Hardware
from benchmark.trial.identity import Trial
from benchmark.trial.launch import fit
from benchmark.trial.run import build_module


@pytest.fixture(scope="module")
def trial(token_data):
    w, data = token_data
    w = dataclasses.replace(w, name="host-test", ks=(2,), max_steps=3, targets=())
    return Trial("host-test", w, "gn", (("ls_batches", 1),), 2, 0, corpus=data.corpus.key()), data


def test_each_step_is_counted_and_logged(trial):
    trial, data = trial
    w = trial.workload
    module = build_module(trial, data, None, w.max_steps)
    fit(module, StepDataset(trial.stream(data, "train"), trial.k, 0, w.max_steps), Hardware("cpu"))
    assert module.step_idx == 3 and [s["step"] for s in module.step_log] == [1, 2, 3]
    tokens_per_microbatch = w.micro_batch * w.seq_len
    assert module.draw_cursor == 3  # one fresh line-search micro-batch per step
    assert module.costs.tokens == 3 * (trial.k + 1) * tokens_per_microbatch
    assert module.costs.tokens == sum(s["tokens"] for s in module.step_log)
    assert module.costs.jvp == pytest.approx(sum(s["jvp"] for s in module.step_log)) == 3 * trial.k
    assert all("ls_scale" in s and s["seconds"] > 0 for s in module.step_log)  # the backend's diagnostics
    assert module.train_seconds == pytest.approx(sum(s["seconds"] for s in module.step_log))


def test_validation_loss_is_the_models_mean_token_loss(trial):
    trial, data = trial
    module = build_module(trial, data, None, 3)
    stream = trial.stream(data, "train")
    batches = [stream.microbatch(g) for g in range(3)]
    with torch.no_grad():
        losses = [F.cross_entropy(module.model(b[:, :-1]).flatten(0, 1), b[:, 1:].flatten(), reduction="sum")
                  for b in batches]
    expected = sum(losses) / sum(b[:, 1:].numel() for b in batches)
    assert module.mean_loss(batches) == pytest.approx(float(expected), rel=1e-6)


def test_progress_round_trips(trial):
    trial, data = trial
    a = build_module(trial, data, None, 3)
    a.step_idx, a.draw_cursor, a.train_seconds = 2, 5, 1.5
    a.costs.add(forward=3, backward=2, jvp=1, tokens=100)
    a.step_log = [{"step": 1}, {"step": 2}]
    b = build_module(trial, data, None, 3)
    b.load_progress_state(a.progress_state())
    assert b.progress_state() == a.progress_state()
