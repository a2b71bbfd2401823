"""Launching (benchmark/trial/launch.py): every backend under real multi-process DDP (gloo, two spawned CPU
processes, no DistributedDataParallel wrapper) gives the single-process curve; ranks that start from
different weights are refused; a process knows its place from its launcher's variables."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from benchmark.data.streams import StepDataset
from benchmark.results.store import ResultsStore
from benchmark.trial.hardware import Hardware
from benchmark.trial.identity import Trial
from benchmark.trial.launch import RANK_VARIABLES, fit, is_worker_process, started_by_launcher
from benchmark.trial.run import build_module, run_trial
from models.lightning import BenchModule
from optimizers import registry
from optimizers.distributed import process_rank


@pytest.fixture(scope="module")
def tiny_workload(smoke_data):
    w, data = smoke_data
    # No divergence stop (only a non-finite loss ends a run): from initialisation a backend at its default
    # learning rate may rise past the usual factor within these steps on one machine's floating point and not
    # on another's, and the test would then compare curves of different lengths.
    w = dataclasses.replace(w, name="ddp-test", ks=(2,), max_steps=4, eval_every=2, val_tokens=2048, targets=(),
                            divergence_factor=math.inf)
    return w, data


def _curve(tmp_path, w, data, name, devices):
    store = ResultsStore(tmp_path / f"{name}-{devices}")
    grid = registry()[name].search_space.get("lr")
    hparams = (("lr", min(grid)),) if grid else ()  # the gentlest declared learning rate
    trial = Trial("ddp-test", w, name, hparams, 2, 0, corpus=data.corpus.key())
    rec = run_trial(trial, data, store, Hardware("cpu", devices), None)
    return rec


# The backends whose step reduces differently over processes: the first-order body (AdamW, Muon and SOAP share
# FirstOrder.step: one all-reduce of the accumulated gradient, then each its own optimizer on identical
# gradients), full Gauss-Newton (every inner gradient and line-search loss reduced; GN-prox-linear runs the same
# loop with another objective) and layerwise GN (its stage solves share one pull-back graph).
DDP_PATHS = ("adamw", "gn", "layerwise-gn")


def test_the_ddp_paths_cover_every_built_in_backend():
    from optimizers.first_order import FirstOrder
    from optimizers.gauss_newton.backends import GaussNewton, LayerwiseGaussNewton

    paths = {FirstOrder: "adamw", GaussNewton: "gn", LayerwiseGaussNewton: "layerwise-gn"}
    for name, cls in registry().items():
        if cls.__module__.startswith("optimizers."):
            assert any(issubclass(cls, base) and paths[base] in DDP_PATHS for base in paths), name


@pytest.mark.slow
@pytest.mark.parametrize("name", DDP_PATHS)
def test_two_processes_give_the_single_process_curve(name, tiny_workload, tmp_path, monkeypatch):
    monkeypatch.setenv("OPTBENCH_DDP_START", "spawn")  # pytest cannot be re-run as a child process
    w, data = tiny_workload
    one = _curve(tmp_path, w, data, name, 1)
    two = _curve(tmp_path, w, data, name, 2)
    assert one["run"]["steps_run"] == two["run"]["steps_run"] == 4
    rtol = 2e-4  # float32 sums in another order
    np.testing.assert_allclose([s["train_loss"] for s in two["steps"]], [s["train_loss"] for s in one["steps"]],
                               rtol=rtol)
    np.testing.assert_allclose([e["val_loss"] for e in two["evals"]], [e["val_loss"] for e in one["evals"]],
                               rtol=rtol)
    # tokens and passes are global quantities: the same whatever the number of processes
    assert two["run"]["costs"]["tokens"] == one["run"]["costs"]["tokens"]
    assert two["run"]["costs"]["forward"] == pytest.approx(one["run"]["costs"]["forward"])


@pytest.mark.parametrize("variable", RANK_VARIABLES)
def test_workers_are_told_apart_by_their_launchers_variables(variable, monkeypatch):
    for var in RANK_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    single = Hardware("cpu")
    assert not is_worker_process() and not started_by_launcher(single)
    assert started_by_launcher(Hardware("cpu", num_nodes=2))  # other nodes run their own command
    monkeypatch.setenv(variable, "0")  # the first rank of a launch: started by it, but rank 0
    assert not is_worker_process() and started_by_launcher(single)
    monkeypatch.setenv(variable, "3")
    assert is_worker_process()


class _Skewed(BenchModule):
    """A host whose second rank perturbs its weights once the ranks are up."""

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if process_rank()[0] == 1:
            with torch.no_grad():
                next(self.model.parameters()).add_(1.0)


@pytest.mark.slow
def test_ranks_that_start_from_different_weights_are_refused(tiny_workload, monkeypatch):
    monkeypatch.setenv("OPTBENCH_DDP_START", "spawn")
    w, data = tiny_workload
    trial = Trial("ddp-test", w, "adamw", (), 2, 0, corpus=data.corpus.key())
    module = build_module(trial, data, None, w.max_steps)
    module.__class__ = _Skewed
    with pytest.raises(Exception, match="start from different weights"):
        fit(module, StepDataset(trial.stream(data, "train"), 2, 0, 2), Hardware("cpu", 2))
