"""Sweeps whose ranks are separate programs (benchmark/sweep/ranks.py, benchmark/sweep/suite.py): Lightning's launcher
and one command per node follow rank 0, resume after a kill, and stop with one line when their corpora
differ."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.results.store import ResultsStore
from tests.helpers import kill_at_first_checkpoint, record_summary

pytestmark = pytest.mark.slow

# ----------------------------------------------------------------------------- launched as separate programs

# The smoke workload with a warm start (sent by rank 0 to the others) and a short budget, registered by a
# launcher script: Lightning's launcher re-runs this very script for the second process.
# It exits with status 3 when a process group is still open at exit: gloo's threads can then abort the process
# (status 134), which failed a CI run once every trial had finished, so every rank must close its groups.
_LAUNCHER = """
import atexit, dataclasses, os, sys
import torch.distributed as dist
from benchmark.workload import presets as workloads
from benchmark.cli import app

@atexit.register  # registered first, so run last
def _groups_closed():
    if dist.is_initialized():
        print("process group left open at exit", file=sys.stderr, flush=True)
        os._exit(3)

workloads.PRESETS["ddp-warm"] = dataclasses.replace(
    workloads.PRESETS["smoke"], name="ddp-warm", ks=(2,), max_steps=16, warm_start_steps=6)
app()
"""


def _launcher(folder) -> Path:
    script = folder / "launch.py"
    script.write_text(_LAUNCHER)
    return script


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Sweep:
    """The two-process sweep of these tests (gn and adamw, warm start, one trial each), as a command."""

    def __init__(self, tmp_path, text_data) -> None:
        self.cmd = [sys.executable, str(_launcher(tmp_path)), "run", "--preset", "ddp-warm", "--optimizers",
                    "gn,adamw", "--tune-budget", "1", "--seeds", "1", "--accelerator", "cpu", "--data", text_data]
        # one thread per process everywhere, so that the launches differ in nothing but how they were launched
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.env.pop("OPTBENCH_DDP_START", None)

    def run(self, results, *extra, **env):
        return subprocess.run([*self.cmd, *extra, "--results", str(results)], env={**self.env, **env},
                              capture_output=True, text=True, timeout=600)

    def start(self, results, *extra, **popen):
        return subprocess.Popen([*self.cmd, *extra, "--results", str(results)], **popen)


def test_launched_ranks_follow_rank_0_across_nodes_and_resume_a_killed_sweep(tmp_path, text_data):
    """Three ways of running one two-process sweep give the same records, bit for bit:
    - uninterrupted, ``--devices 2`` (Lightning launches the second process);
    - two "nodes" (``--num-nodes 2``, one command each) that share no folder: node 1 has its own results
      folder and cache, so it can only run what rank 0 sends it; a trial claimed by a live process is
      skipped without unpairing the ranks;
    - ``--devices 2`` killed (both processes) mid-trial, then run again: it resumes from rank 0's checkpoint.
    (That two processes give one process's curve, every backend, is ``test_launch.py``'s.)
    """
    sweep = _Sweep(tmp_path, text_data)
    clean = sweep.run(tmp_path / "clean", "--devices", "2")
    assert clean.returncode == 0, clean.stderr
    reference = record_summary(tmp_path / "clean")
    assert len(reference) == 2  # 2 optimizers x 1 setting
    assert {r[0] for r in reference.values()} <= {"reached", "budget", "pruned"}
    again = sweep.run(tmp_path / "clean", "--devices", "2")  # nothing left to run: no rank is launched
    assert again.returncode == 0 and "tuning: 2 of 2 trials already have records" in again.stderr, again.stderr
    assert record_summary(tmp_path / "clean") == reference
    _two_nodes_follow_rank_0(sweep, tmp_path, reference)
    _a_killed_sweep_resumes(sweep, tmp_path / "killed", reference)


def _two_nodes_follow_rank_0(sweep: _Sweep, tmp_path, reference) -> None:
    skipped = sorted(reference)[0]  # plant a live claim on one tuning trial in node 0's folder
    node0 = ResultsStore(tmp_path / "node0")
    node0.work_dir.mkdir(parents=True)
    (node0.work_dir / f"{skipped}.claim").write_text(f"{socket.gethostname()}:{os.getpid()}")
    port = str(_free_port())
    nodes = [sweep.start(tmp_path / f"node{n}", "--devices", "1", "--num-nodes", "2",
                         env={**sweep.env, "NODE_RANK": str(n), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
                              "OPTBENCH_CACHE": str(tmp_path / f"cache{n}")},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in (0, 1)]
    outputs = [p.communicate(timeout=600) for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], outputs
    assert "another process is running it, skipped" in outputs[0][1]
    assert not (tmp_path / "node1" / "runs").exists()  # rank 0 writes every record
    two_nodes = record_summary(tmp_path / "node0")
    assert skipped not in two_nodes
    assert two_nodes == {k: v for k, v in reference.items() if k in two_nodes}
    assert len(two_nodes) == 1  # the other optimizer's trial


def _a_killed_sweep_resumes(sweep: _Sweep, killed, reference) -> None:
    proc = sweep.start(killed, "--devices", "2", env=sweep.env, start_new_session=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    interrupted = kill_at_first_checkpoint(proc, killed, lambda: os.killpg(proc.pid, signal.SIGKILL))
    assert not (killed / "runs" / f"{interrupted}.json").exists()  # killed mid-trial
    rerun = sweep.run(killed, "--devices", "2")
    assert rerun.returncode == 0, rerun.stderr
    assert not list((killed / "work").glob("*"))  # no checkpoint or claim left behind
    assert record_summary(killed) == reference


def test_nodes_that_tokenized_different_text_stop_with_one_line(tmp_path, text_data):
    """Node 1 given another corpus than node 0: both stop before any trial, each with one error line."""
    port = str(_free_port())
    nodes = [
        subprocess.Popen([sys.executable, str(_launcher(tmp_path)), "run", "--preset", "smoke", "--optimizers", "adamw",
                          "--tune-budget", "1", "--seeds", "1", "--accelerator", "cpu", "--data", str(data),
                          "--devices", "1", "--num-nodes", "2", "--results", str(tmp_path / f"node{n}")],
                         env={**os.environ, "NODE_RANK": str(n), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
                              "OPTBENCH_CACHE": str(tmp_path / f"cache{n}"), "OMP_NUM_THREADS": "1"},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n, data in enumerate((text_data, "pydoc-topics"))
    ]
    outputs = [p.communicate(timeout=300) for p in nodes]
    assert [p.returncode for p in nodes] == [2, 2], outputs
    for _, err in outputs:
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "rank(s) 1 hold another tokenized corpus than rank 0" in lines[0], err
        assert "Traceback" not in err
    assert not (tmp_path / "node0" / "runs").exists()
