"""Numerics settings (benchmark/trial/hardware.py): bf16 autocast (GN kept in fp32), torch.compile for
first-order backends, both part of a run's identity."""

import dataclasses

import numpy as np
import pytest

from benchmark.results.store import ResultsStore
from benchmark.trial.hardware import Hardware
from benchmark.trial.identity import Trial
from benchmark.trial.run import run_trial

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(smoke_data):
    w, data = smoke_data
    return dataclasses.replace(w, name="hw-test", ks=(2,), max_steps=4, eval_every=2, val_tokens=2048,
                               targets=()), data


def _run(tmp_path, w, data, name, hw):
    trial = Trial("hw", w, name, (), 2, 0, corpus=data.corpus.key(), numerics=hw.numerics())
    return run_trial(trial, data, ResultsStore(tmp_path / f"{name}-{hw.numerics() or 'fp32'}"), hw, None)


@pytest.mark.parametrize("name", ["adamw", "gn"])
def test_bf16_autocast_runs_and_is_recorded(name, tiny, tmp_path):
    w, data = tiny
    fp32 = _run(tmp_path, w, data, name, Hardware("cpu"))
    bf16 = _run(tmp_path, w, data, name, Hardware("cpu", precision="bf16-mixed"))
    assert bf16["run"]["run_id"] != fp32["run"]["run_id"]  # numerics are part of the identity
    assert bf16["run"]["hardware"]["precision"] == "bf16-mixed"
    a = np.array([e["val_loss"] for e in fp32["evals"]])
    b = np.array([e["val_loss"] for e in bf16["evals"]])
    assert np.isfinite(b).all()
    np.testing.assert_allclose(b, a, rtol=0.05)  # bf16 moves the numbers a little, not the curve


def test_compile_applies_to_first_order_backends_only(tiny, tmp_path):
    w, data = tiny
    hw = Hardware("cpu", compile=True)
    eager = _run(tmp_path, w, data, "adamw", Hardware("cpu"))
    compiled = _run(tmp_path, w, data, "adamw", hw)
    assert compiled["run"]["hardware"]["compiled"] is True
    np.testing.assert_allclose([e["val_loss"] for e in compiled["evals"]], [e["val_loss"] for e in eager["evals"]],
                               rtol=1e-4)
    gn = _run(tmp_path, w, data, "gn", hw)
    assert gn["run"]["hardware"]["compiled"] is False  # torch.func transforms keep the eager model
