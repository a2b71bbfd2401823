"""The iteration-complexity suite: plans, shards, selection, divergence, and kill-and-resume."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
import torch

from benchmark import BenchError
from benchmark.runner import run_suite
from benchmark.store import ResultsStore
from benchmark.suites import in_shard, iteration_complexity, parse_shard, selection_key, tuning_grid
from benchmark.trial import Hardware
from benchmark.workloads import get_workload
from optimizers import base as obase
from optimizers import registry
from optimizers.adamw import AdamW, AdamWHyper
from tests.helpers import record_summary


def test_shards_partition_the_trial_list():
    w = get_workload("cpu")
    plan = iteration_complexity(w, sorted(registry()), seeds=1)
    ids = [t.run_id for t in plan.trials]
    assert len(ids) == len(set(ids)) == len(w.ks) * len(registry()) * 3
    shards = [{t.run_id for t in plan.trials if in_shard(t, (i, 3))} for i in (1, 2, 3)]
    assert set().union(*shards) == set(ids)
    assert sum(len(s) for s in shards) == len(ids)
    with pytest.raises(BenchError):
        parse_shard("4/3")
    with pytest.raises(BenchError):
        parse_shard("a/b")


def test_every_optimizer_gets_the_same_tuning_budget():
    sizes = {name: len(tuning_grid(name, 3)) for name in registry()}
    assert set(sizes.values()) == {3}


def test_selection_prefers_the_tightest_target_then_steps_then_final_loss():
    targets = (5.0, 4.0)
    a = {"steps_to_target": {"5": 10.0, "4": None}, "final_val_loss": 4.2, "status": "budget"}
    b = {"steps_to_target": {"5": 30.0, "4": 50.0}, "final_val_loss": 3.9, "status": "reached"}
    c = {"steps_to_target": {"5": 20.0, "4": 40.0}, "final_val_loss": 3.95, "status": "reached"}
    d = {"steps_to_target": {"5": None, "4": None}, "final_val_loss": None, "status": "diverged"}
    assert sorted([a, b, c, d], key=lambda r: selection_key(r, targets)) == [c, b, a, d]


def test_seed_reruns_use_the_selected_setting():
    w = get_workload("smoke")
    plan = iteration_complexity(w, ["adamw"], seeds=3)
    assert not plan.seeds and len(plan.waiting) == len(w.ks)
    records = {}
    for t in plan.tuning:
        lr = dict(t.hparams)["lr"]
        records[t.run_id] = {"steps_to_target": {f"{x:g}": 10 / lr for x in w.targets},
                             "final_val_loss": 4.0, "status": "reached"}
    plan = iteration_complexity(w, ["adamw"], seeds=3, records=records)
    assert not plan.waiting and len(plan.seeds) == 2 * len(w.ks)
    best_lr = max(AdamW.search_space["lr"])
    assert all(dict(t.hparams)["lr"] == best_lr and t.seed in (1, 2) for t in plan.seeds)


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
def test_a_diverging_backend_is_recorded_and_the_sweep_goes_on(tmp_path, enwiki):
    obase.register(Explode)
    try:
        run_suite("iteration-complexity", "smoke", "explode,adamw", 1, str(enwiki), tmp_path, Hardware("cpu"),
                  tune_budget=1)
    finally:
        obase._REGISTRY.pop("explode")
    runs, _ = ResultsStore(tmp_path).load()
    assert len(runs) == 4
    exploded = runs[runs["optimizer"] == "explode"]
    assert (exploded["status"] == "diverged").all()
    assert exploded["steps_run"].max() < 40
    assert runs[runs["optimizer"] == "adamw"]["status"].isin(["reached", "budget"]).all()


@pytest.mark.slow
def test_sigkill_mid_trial_then_rerun_equals_an_uninterrupted_sweep(tmp_path, enwiki):
    cmd = [sys.executable, "-m", "benchmark.cli", "run", "--preset", "smoke", "--optimizers", "gn,adamw",
           "--tune-budget", "1", "--seeds", "1", "--accelerator", "cpu", "--data", str(enwiki)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert subprocess.run([*cmd, "--results", str(clean)], env=env, capture_output=True).returncode == 0

    proc = subprocess.Popen([*cmd, "--results", str(killed)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    work = killed / "work"
    deadline = time.time() + 300
    while time.time() < deadline and not list(work.glob("*.ckpt")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ckpts = list(work.glob("*.ckpt"))
    assert ckpts, "no checkpoint appeared before the kill"
    interrupted = ckpts[0].stem
    assert not (killed / "runs" / f"{interrupted}.json").exists()  # killed mid-trial

    rerun = subprocess.run([*cmd, "--results", str(killed)], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert not list(work.glob("*.ckpt"))
    assert record_summary(killed) == record_summary(clean)
    assert len(list((killed / "runs").glob("*.json"))) == 4
    assert json.loads((killed / "runs" / f"{interrupted}.json").read_text())["run"]["steps_run"] > 0
