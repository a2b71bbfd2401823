"""Trials as jobs (``bench run --launcher slurm|local``), through submitit: the sweep plans as always, and each
batch of trials whose dependencies are met (a cell's grid or a walk's next points, then its seed reruns) goes
out as one job a trial, with the trial's devices and nodes (in a SLURM job Lightning finds the cluster's
environment and runs multi-node DDP from it); the sweep waits for the batch, then plans again from the records
the jobs wrote into the one results folder. ``local`` runs the jobs as processes of this machine with the same
code path: a cluster run's behaviour, testable anywhere.

A job claims its trial in the results folder as a sweep does (two sweeps never run a trial twice), resumes from
its checkpoint, and records a failure as the loop does. A batch's tuning trials take their pruning point from
the records that exist when it is submitted: a job that finishes early does not tighten its siblings' bound, so
a pruned trial may run longer than in a one-at-a-time sweep; pruning stays exact all the same (a trial stops only
once it can no longer beat a trial that has already finished)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmark import BenchError, make_console
from benchmark.data.tokens import PreparedData
from benchmark.results.store import ResultsStore
from benchmark.trial.hardware import Hardware
from benchmark.trial.identity import Trial

LAUNCHERS = ("none", "local", "slurm")
console = make_console(stderr=True)


@dataclass(frozen=True)
class Launch:
    """Where the trials run: ``none`` (this process, the default), or as jobs (``local``, ``slurm``)."""

    kind: str = "none"
    timeout_min: int = 120  # a job's time limit
    partition: str | None = None  # SLURM's


def executor(launch: Launch, store: ResultsStore, hw: Hardware):
    """A submitit executor for ``launch``, its logs under the results folder's work/jobs."""
    if launch.kind not in LAUNCHERS:
        raise BenchError(f"unknown launcher {launch.kind!r}; valid: {', '.join(LAUNCHERS)}")
    try:
        import submitit
    except ImportError:
        raise BenchError(f"--launcher {launch.kind} needs the submitit package: pip install submitit") from None
    chosen = submitit.AutoExecutor(folder=store.work_dir / "jobs", cluster=launch.kind)
    chosen.update_parameters(name="optbench", timeout_min=launch.timeout_min, nodes=hw.num_nodes,
                             tasks_per_node=hw.devices, gpus_per_node=_gpus(hw), cpus_per_task=2,
                             **({"slurm_partition": launch.partition} if launch.partition else {}))
    return chosen


def _gpus(hw: Hardware) -> int:
    return hw.devices if hw.accelerator in ("gpu", "cuda") else 0


def run_jobs(chosen, trials: list[Trial], label: str, prepare: Callable[[Trial], Trial] | None, *,
             prepared: PreparedData, store: ResultsStore, hw: Hardware) -> list[dict]:
    """Submit one job for each trial without a (finished) record, wait for them all; their records."""
    todo = [prepare(t) if prepare is not None else t for t in trials if not store.has(t.run_id)]
    if len(todo) < len(trials):
        console.print(f"{label}: {len(trials) - len(todo)} of {len(trials)} trials already have records: skipped")
    with chosen.batch():
        jobs = [chosen.submit(run_job, t, prepared, str(store.root), hw) for t in todo]
    console.print(f"{label}: {len(jobs)} jobs submitted ({', '.join(j.job_id for j in jobs[:3])}"
                  f"{', …' if len(jobs) > 3 else ''}); logs under {store.work_dir / 'jobs'}", markup=False)
    records = []
    for trial, job in zip(todo, jobs):
        try:
            record = job.result()
        except Exception as exc:  # the job died (killed, out of memory): no record, so the next run retries it
            console.print(f"{trial.describe()}: job {job.job_id} ended without a record: {type(exc).__name__}; "
                          f"see {store.work_dir / 'jobs'}", markup=False, highlight=False)
            continue
        if record is not None:
            records.append(record)
            console.print(f"{trial.describe()}: {record['run']['status']} (job {job.job_id})", markup=False,
                          highlight=False)
    return records


def run_job(trial: Trial, prepared: PreparedData, results: str, hw: Hardware) -> dict | None:
    """One trial, in its job's process: claimed, from its checkpoint or warm start, to its record (None when
    another process has it, or in the other ranks of a multi-process job)."""
    from benchmark.trial.launch import is_worker_process
    from benchmark.trial.run import run_trial
    from benchmark.trial.warmstart import trial_start

    store = ResultsStore(Path(results))
    if is_worker_process():  # another task of a multi-process job: rank 0 claims and records, this one trains
        return run_trial(trial, prepared, store, hw, trial_start(trial, prepared, store, hw))
    if store.has(trial.run_id) or not store.claim(trial.run_id):
        return store.read(trial.run_id) if store.has(trial.run_id) else None
    try:
        with store.heartbeat(trial.run_id):
            return run_trial(trial, prepared, store, hw, trial_start(trial, prepared, store, hw))
    finally:
        store.release(trial.run_id)


def job_lines(trials: list[Trial], hw: Hardware, launch: Launch) -> list[str]:
    """What a dry run says of the jobs of the first batch."""
    where = f"{launch.kind}{f' partition {launch.partition}' if launch.partition else ''}"
    return [f"job {i + 1}: {t.run_id} ({where}, {hw.num_nodes} node(s) x {hw.devices} task(s), {_gpus(hw)} GPU(s) a "
            f"node, {launch.timeout_min} min)" for i, t in enumerate(trials)]
