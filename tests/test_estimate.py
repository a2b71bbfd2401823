"""Dry-run estimates (benchmark/sweep/estimate.py): what a plan says a trial costs is what the trial then
records, when it runs its whole budget."""

import dataclasses

import pytest

from benchmark.results.store import ResultsStore
from benchmark.sweep.estimate import estimate, reads, rereads, tokens_available
from benchmark.sweep.inputs import prepare_workload, resolve_workload
from benchmark.sweep.plan import iteration_complexity
from benchmark.trial.hardware import Hardware
from benchmark.trial.identity import Trial
from benchmark.trial.run import run_trial
from optimizers import registry


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
    assert run["tokens_read"] == planned["tokens"] + planned["warm_start_tokens"] <= run["tokens_available"]
    assert run["costs"]["forward_equivalents"] == pytest.approx(planned["fwd_equiv"], rel=1e-9)
    assert planned["memory_gib"] > 0 and planned["flops"] > 0


@pytest.mark.slow
def test_the_default_cpu_plan_reads_no_training_token_twice_and_a_tiny_corpus_would():
    plans = {}
    for data in ("python-stdlib", "pydoc-topics"):
        w, corpus = resolve_workload("cpu", data)
        available = tokens_available(w, prepare_workload(w, corpus))
        tuning = iteration_complexity(w, sorted(registry()), seeds=3, corpus=corpus.key()).tuning
        plans[data] = (rereads(tuning, available), max(reads(t) for t in tuning), available)
    lines, most, available = plans["python-stdlib"]
    assert lines == [] and most < available  # seed reruns repeat tuned settings: the same reads
    lines, most, available = plans["pydoc-topics"]
    assert lines and most > available and "some twice" in lines[0]


@pytest.mark.parametrize(("name", "hparams", "seconds"), [("adamw", (), 0.12), ("gn", (("ls_batches", 1),), 0.50)])
def test_gpu_hours_reproduce_the_h200_steps_they_are_based_on(name, hparams, seconds):
    """The time estimate's basis: at 45m, K=2, a step takes what one H200 measured (798ce7b)."""
    from benchmark.workload.presets import PRESETS

    trial = Trial("iteration-complexity", PRESETS["45m"], name, hparams, 2, 0, corpus="c4")
    per_step = estimate(trial)["gpu_hours"] * 3600 / PRESETS["45m"].max_steps
    assert per_step == pytest.approx(seconds, rel=0.01)
    assert estimate(trial, devices=2)["gpu_hours"] == pytest.approx(estimate(trial)["gpu_hours"] / 2)


@pytest.mark.parametrize("name, schedule", [("adamw", "schedule"), ("gn", "outer_schedule")])
def test_a_wsd_trial_is_estimated_with_its_branches_and_without_early_stops(name, schedule):
    from benchmark.sweep.estimate import WSD_BRANCHES, WSD_CPU_FACTOR
    from benchmark.workload.presets import get_workload

    w = get_workload("cpu")
    constant = estimate(Trial("robustness", w, name, (), 16, 0))
    wsd = estimate(Trial("robustness", w, name, ((schedule, "wsd"),), 16, 0, protocol="wsd"))
    assert wsd["fwd_equiv"] == pytest.approx(WSD_BRANCHES * constant["fwd_equiv"])
    assert wsd["cpu_seconds"] == pytest.approx(WSD_CPU_FACTOR * constant["cpu_seconds"])
    assert wsd["tokens"] == constant["tokens"]  # branches reread the constant phase's stream, no new text
