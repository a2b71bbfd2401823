"""Trials as jobs (benchmark/sweep/launcher.py), through submitit's local executor on this machine: the same
records as a sweep in one process, the plan's dependencies kept (seed reruns after their cell's tuning), the
jobs listed by a dry run."""

import pytest

from benchmark.sweep.launcher import Launch
from benchmark.sweep.suite import run_suite
from benchmark.trial.hardware import Hardware
from tests.helpers import bench, record_summary

SMALL = ["max_steps=4", "ks=1"]


@pytest.mark.slow
def test_a_sweep_through_local_jobs_writes_the_records_of_a_sweep_in_one_process(tmp_path, text_data):
    args = ("iteration-complexity", "smoke", "adamw", 2, text_data)
    common = dict(tune_budget=1, prune=False, workload_items=SMALL)
    run_suite(*args, tmp_path / "here", Hardware("cpu"), **common)
    jobs = run_suite(*args, tmp_path / "jobs", Hardware("cpu"), launch=Launch("local"), **common)
    assert record_summary(tmp_path / "jobs") == record_summary(tmp_path / "here") != {}
    seeds = [r for r in jobs if r["run"]["role"] == "seed"]
    tuning = [r for r in jobs if r["run"]["role"] == "tune"]
    assert seeds and max(r["run"]["started_at"] for r in tuning) < min(r["run"]["started_at"] for r in seeds)
    assert list((tmp_path / "jobs" / "work" / "jobs").glob("*_log.out"))  # each job's log, under the results


def test_a_dry_run_lists_the_jobs_and_a_bad_launcher_is_one_line(tmp_path):
    out = bench("run", "--preset", "smoke", "--optimizers", "adamw", "--launcher", "slurm", "--partition", "gpu",
                "--devices", "2", "--job-minutes", "30", "--dry-run", "--results", str(tmp_path / "R"))
    assert out.returncode == 0, out.stderr
    jobs = [line for line in out.stdout.splitlines() if line.startswith("job ")]
    assert len(jobs) == 6 and "(slurm partition gpu, 1 node(s) x 2 task(s)" in jobs[0] and "30 min)" in jobs[0]
    bad = bench("run", "--preset", "smoke", "--launcher", "kubernetes", "--results", str(tmp_path / "R"))
    assert bad.returncode == 2 and bad.stderr.strip() == "error: unknown launcher 'kubernetes'; valid: none, local, slurm"
