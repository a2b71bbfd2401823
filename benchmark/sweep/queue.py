"""The trial loop shared by suites and calibrations: which corpus and targets a preset runs with, the
prepared data, and ``run_trials``, which runs every trial that has no record yet and that no other
process claims, under an overall progress bar with a per-trial one beneath it."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from benchmark import make_console
from benchmark.data.tokens import PreparedData
from benchmark.results.store import ResultsStore, failed
from benchmark.sweep.ranks import Ranks
from benchmark.trial.hardware import Hardware
from benchmark.trial.identity import Trial
from benchmark.trial.run import run_trial
from benchmark.trial.warmstart import trial_start

console = make_console(stderr=True)


def _announce(trial: Trial, record: dict, seconds: float, progress: Progress, store: ResultsStore) -> None:
    run = record["run"]
    if failed(run):
        f = run["failure"]
        line = (f"{trial.describe()}: failed at step {f['step']}: {f['type']}: {f['message']} "
                f"(traceback: {store.root / f['log']})")
    else:
        reached = ", ".join(f"{t}: {'-' if s is None else f'{s:.1f}'}" for t, s in run["steps_to_target"].items())
        final = run["final_val_loss"]
        line = (f"{trial.describe()}: {run['status']} after {run['steps_run']} steps, val "
                f"{final if final is None else f'{final:.3f}'}, steps to target {{{reached}}} ({seconds:.0f}s)")
    progress.console.print(line, markup=False, highlight=False)


def failure_summary(records: list[dict], results) -> str | None:
    """One line for the trials of a run that raised (each retried by the next run), or None."""
    runs = [r["run"] for r in records if failed(r["run"])]
    if not runs:
        return None
    each = "; ".join(f"{r['run_id']} at step {r['failure']['step']} ({r['failure']['type']}: {r['failure']['message']})"
                     for r in runs)
    logs = runs[0]["failure"]["log"] if len(runs) == 1 else str(Path("logs") / "RUN_ID" / "failure.txt")
    return (f"{len(runs)} trial{'s' if len(runs) > 1 else ''} failed: {each}; see {Path(results) / logs} for the "
            f"traceback; the next run retries {'them' if len(runs) > 1 else 'it'}")


def run_trials(trials: list[Trial], prepared: PreparedData, store: ResultsStore, hw: Hardware, label: str,
               ranks: Callable[[], Ranks] | None = None, prepare: Callable[[Trial], Trial] | None = None) -> list[dict]:
    """Run every trial of ``trials`` that has no record yet (or a failed one) and that no other process
    claims; their records, ``failed`` ones included (a trial that raised does not stop the others).
    ``ranks`` connects the other ranks of a launched multi-process run (they then run each trial too);
    ``prepare`` completes a trial just before it starts (its pruning point, from the records so far)."""
    records = []
    todo = [t for t in trials if not store.has(t.run_id)]
    if len(todo) < len(trials):
        console.print(f"{label}: {len(trials) - len(todo)} of {len(trials)} trials already have records: skipped")
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        overall = progress.add_task(f"{label} trials", total=len(todo))
        for trial in todo:
            if not store.claim(trial.run_id):
                console.print(f"{trial.run_id}: another process is running it, skipped")
                progress.advance(overall)
                continue
            current = progress.add_task(f"  {trial.describe()}", total=trial.workload.max_steps)
            try:
                if store.has(trial.run_id):  # finished by another process since we listed
                    continue
                t0 = time.time()
                trial = prepare(trial) if prepare is not None else trial
                start = trial_start(trial, prepared, store, hw)
                with store.heartbeat(trial.run_id), ranks().lead(trial, start) if ranks else nullcontext():
                    record = run_trial(trial, prepared, store, hw, start,
                                       on_step=lambda m, c=current: progress.update(c, completed=m.step_idx))
                records.append(record)
                _announce(trial, record, time.time() - t0, progress, store)
            finally:
                store.release(trial.run_id)
                progress.remove_task(current)
                progress.advance(overall)
    return records
