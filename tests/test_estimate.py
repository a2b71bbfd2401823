"""Dry-run estimates (benchmark/estimate.py): what a plan says a trial costs is what the trial then
records, when it runs its whole budget."""

import dataclasses

import pytest

from benchmark.estimate import estimate
from benchmark.hardware import Hardware
from benchmark.store import ResultsStore
from benchmark.trial import Trial, run_trial


@pytest.mark.slow
@pytest.mark.parametrize("name", ["adamw", "gn", "layerwise-gn"])
def test_a_trial_records_the_passes_and_tokens_its_plan_estimated(name, smoke_data, tmp_path):
    w, data = smoke_data
    w = dataclasses.replace(w, name="estimate-test", ks=(2,), max_steps=3, eval_every=3, val_tokens=1024, targets=())
    trial = Trial("estimate-test", w, name, (("ls_batches", 1),) if "gn" in name else (), 2, 0,
                  corpus=data.corpus.key())
    planned = estimate(trial)
    run = run_trial(trial, data, ResultsStore(tmp_path), Hardware("cpu"), None)["run"]
    assert run["steps_run"] == w.max_steps
    assert run["costs"]["tokens"] == planned["tokens"]
    assert run["costs"]["forward_equivalents"] == pytest.approx(planned["fwd_equiv"], rel=1e-9)
    assert planned["memory_gib"] > 0 and planned["flops"] > 0
