"""Running a suite (benchmark/sweep/suite.py): a diverging backend is recorded and the sweep goes on; a sweep
killed mid-trial and rerun equals an uninterrupted one; each trial is run once."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch

from benchmark import BenchError
from benchmark.report.frames import run_frames
from benchmark.results.store import ResultsStore
from benchmark.sweep.suite import run_suite
from benchmark.trial.hardware import Hardware
from benchmark.workload.presets import PRESETS
from optimizers.first_order.adamw import AdamW, AdamWHyper
from optimizers.registry import register, unregister
from tests.helpers import SMOKE_SWEEP, SMOKE_TUNE_BUDGET, kill_at_first_checkpoint, record_summary


@dataclass(frozen=True)
class ExplodeHyper(AdamWHyper):
    lr: float = 1e4


class Explode(AdamW):
    """AdamW with an absurd learning rate and no clipping: diverges within a few steps."""

    name = "explode"
    Hyper = ExplodeHyper
    search_space = {"lr": [1e4, 1e5, 1e6]}

    def step(self, ctx):
        loss = super().step(ctx)
        with torch.no_grad():
            for p in self.params:
                p.mul_(1e3)
        return loss


@pytest.mark.slow
def test_a_diverging_backend_is_recorded_and_the_sweep_goes_on(tmp_path, text_data):
    register(Explode)
    try:
        run_suite("iteration-complexity", "smoke", "explode,adamw", 1, text_data, tmp_path, Hardware("cpu"),
                  tune_budget=1)
    finally:
        unregister("explode")
    runs, _ = run_frames(ResultsStore(tmp_path).records()[0])
    assert len(runs) == 4
    exploded = runs[runs["optimizer"] == "explode"]
    assert (exploded["status"] == "diverged").all()
    assert exploded["steps_run"].max() < 40
    assert runs[runs["optimizer"] == "adamw"]["status"].isin(["reached", "budget", "pruned"]).all()


class OneProcess(AdamW):
    """A backend that does not declare DDP support."""

    name = "one-process"
    ddp = False


def test_a_backend_without_ddp_support_is_refused_on_several_processes(tmp_path, text_data):
    register(OneProcess)
    try:
        with pytest.raises(BenchError, match="one-process do\\(es\\) not declare DDP support"):
            run_suite("iteration-complexity", "smoke", "one-process,adamw", 1, text_data, tmp_path,
                      Hardware("cpu", devices=2), dry_run=True)
    finally:
        unregister("one-process")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_sigkill_mid_trial_then_rerun_equals_an_uninterrupted_sweep(tmp_path, text_data):
    cmd = [sys.executable, "-m", "benchmark.cli", "run", "--preset", "smoke", "--workload", "max_steps=16",
           "--optimizers", "gn,adamw",
           "--tune-budget", "1", "--seeds", "1", "--accelerator", "cpu", "--data", text_data]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert subprocess.run([*cmd, "--results", str(clean)], env=env, capture_output=True).returncode == 0

    proc = subprocess.Popen([*cmd, "--results", str(killed)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    interrupted = kill_at_first_checkpoint(proc, killed, lambda: proc.send_signal(signal.SIGKILL))
    assert not (killed / "runs" / f"{interrupted}.json").exists()  # killed mid-trial

    rerun = subprocess.run([*cmd, "--results", str(killed)], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert not list((killed / "work").glob("*.ckpt"))
    assert record_summary(killed) == record_summary(clean)
    assert len(list((killed / "runs").glob("*.json"))) == 4
    assert json.loads((killed / "runs" / f"{interrupted}.json").read_text())["run"]["steps_run"] > 0


@pytest.mark.slow
def test_a_corpus_without_targets_is_calibrated_first_once(tmp_path, text_data, monkeypatch, capsys):
    preset = dataclasses.replace(PRESETS["smoke"], name="calfirst-test", ks=(1,), max_steps=4, eval_every=2,
                                 val_tokens=2048)
    monkeypatch.setitem(PRESETS, "calfirst-test", preset)
    run_suite("iteration-complexity", "calfirst-test", "gn", 1, text_data, tmp_path, Hardware("cpu"), dry_run=True)
    assert "a real run calibrates them first (4 AdamW trials" in capsys.readouterr().err.replace("\n", " ")
    assert not (tmp_path / "targets.json").exists()  # a dry run writes nothing
    run_suite("iteration-complexity", "calfirst-test", "gn", 1, text_data, tmp_path, Hardware("cpu"), tune_budget=1)
    assert "calibrating them first" in capsys.readouterr().err.replace("\n", " ")
    entry = json.loads((tmp_path / "targets.json").read_text())["calfirst-test"]
    (corpus_entry,) = entry.values()
    calibration = ResultsStore(tmp_path / "calibration").records()[0]
    assert len(calibration) == 4 and {r["run"]["optimizer"] for r in calibration} == {"adamw"}
    (record,) = ResultsStore(tmp_path).records()[0]
    assert record["run"]["workload_config"]["targets"] == corpus_entry["targets"]
    assert record["run"]["workload_version"] == preset.version + 1
    run_suite("iteration-complexity", "calfirst-test", "gn", 1, text_data, tmp_path, Hardware("cpu"), tune_budget=1)
    assert "calibrat" not in capsys.readouterr().err  # found its own targets: nothing calibrated again
    assert len(ResultsStore(tmp_path / "calibration").records()[0]) == 4


@pytest.mark.slow
def test_pruning_never_changes_a_selection_and_saves_compute(smoke_results, tmp_path, text_data):
    """The shared smoke sweep prunes (the default); the same sweep without pruning selects the same settings."""
    folders = {True: smoke_results, False: tmp_path / "unpruned"}
    run_suite(*SMOKE_SWEEP, text_data, folders[False], Hardware("cpu"), tune_budget=SMOKE_TUNE_BUDGET, prune=False)
    sweeps = {p: {r["run"]["run_id"]: r for r in ResultsStore(f).records()[0]} for p, f in folders.items()}
    pruned = [r for r in sweeps[True].values() if r["run"]["status"] == "pruned"]
    assert pruned and all(r["run"]["role"] == "tune" and r["run"]["prune_after"] is not None for r in pruned)
    assert all(r["run"]["steps_run"] >= r["run"]["prune_after"] for r in pruned)
    assert sweeps[True].keys() == sweeps[False].keys()  # the same extensions, so the same seed reruns
    summaries = [record_summary(folders[p]) for p in (True, False)]
    seeds = [run_id for run_id, r in sweeps[False].items() if r["run"]["role"] == "seed"]
    assert seeds and all(summaries[0][s] == summaries[1][s] for s in seeds)  # selected: the same setting, bit for bit
    cost = {p: sum(r["run"]["costs"]["forward_equivalents"] for r in s.values()) for p, s in sweeps.items()}
    assert cost[True] < cost[False]
