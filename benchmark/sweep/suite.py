"""Runs a suite: checks every input before writing anything, calibrates the workload's targets where the
corpus has none, prepares the data once, trains the warm starts, runs the tuning trials, then the seed
reruns of every fully tuned cell, each trial only if it has no record yet."""

from __future__ import annotations

import functools
from dataclasses import replace

from benchmark import BenchError
from benchmark.data.corpus import Corpus
from benchmark.results.record import GRID
from benchmark.results.store import ResultsStore
from benchmark.sweep.calibrate import calibrate, calibration_trial_count
from benchmark.sweep.estimate import print_plan, rereads, tokens_available
from benchmark.sweep.inputs import parse_optimizers, prepare_workload, resolve_workload, run_records
from benchmark.sweep.launcher import LAUNCHERS, Launch, executor, job_lines, run_jobs
from benchmark.sweep.plan import (
    TUNINGS,
    Plan,
    get_suite,
    in_shard,
    iteration_complexity,
    parse_shard,
)
from benchmark.sweep.queue import console, run_trials
from benchmark.sweep.ranks import Connection, follow
from benchmark.sweep.robustness import robustness
from benchmark.sweep.settings import parse_settings
from benchmark.trial.hardware import Hardware
from benchmark.trial.identity import Trial
from benchmark.trial.launch import ddp_start_method, is_worker_process, started_by_launcher
from benchmark.trial.warmstart import ensure_warm_start
from benchmark.workload.presets import Workload, get_workload, overridden
from optimizers import get_backend

CALIBRATION_SEEDS = 2


def run_suite(
    suite: str, preset: str, optimizers: str, seeds: int, data: str | None, results, hw: Hardware | None = None,
    dry_run: bool = False, shard: str | None = None, tune_budget: int | None = None, prune: bool = True,
    sets: list[str] | tuple = (), grids: list[str] | tuple = (), workload_items: list[str] | tuple = (),
    tuning: str = GRID, launch: Launch | None = None,
) -> list[dict]:
    """Plan the suite and run every trial of it (of this shard) that has no record yet; the new records.
    ``sets``/``grids``: settings from the command line (``benchmark.sweep.settings``); ``workload_items``: the
    preset's fields changed (``benchmark.workload.presets.overridden``); ``launch``: where trials run
    (``benchmark.sweep.launcher``)."""
    hw, launch = hw or Hardware(), launch or Launch()
    names, settings, part = _checked(suite, preset, optimizers, hw, shard, sets, grids, workload_items, tuning,
                                     launch)
    store = ResultsStore(results)
    preset_workload, corpus = resolve_workload(preset, data, dry_run, store.targets_path)
    workload = overridden(preset_workload, list(workload_items))
    run_records(store, warn=True)  # says which files of the folder cannot be used, once
    # Ranks launched as separate programs (by Lightning from this command, torchrun, SLURM): rank 0 runs the
    # sweep below and sends each trial to the others, which only follow (see benchmark.sweep.ranks).
    launched = hw.multi_process and ddp_start_method() == "popen" and launch.kind == "none"
    if workload.targets_source == "uncalibrated" and not (launched and is_worker_process()):
        calibrated = _calibrate_first(preset_workload, data, corpus, store, hw, dry_run)
        workload = overridden(calibrated, list(workload_items))

    def plan():
        if suite == "robustness":
            return robustness(workload, names, seeds, run_records(store), tune_budget, corpus.key(), hw.numerics(),
                              settings)
        return iteration_complexity(workload, names, seeds, run_records(store), tune_budget, corpus.key(),
                                    hw.numerics(), settings, tuning)

    if dry_run:
        prepared = None if corpus.kind == "hub" else prepare_workload(workload, corpus)
        print_plan(plan(), store, part, seeds, hw.devices, tokens_available(workload, prepared))
        for line in job_lines(plan().tuning, hw, launch) if launch.kind != "none" else []:
            print(line)
        return []
    return _execute(plan, workload, prepare_workload(workload, corpus), store, hw, part, seeds, prune, launch,
                    launched)


def _execute(plan, workload, prepared, store, hw, part, seeds: int, prune: bool, launch: Launch,
             launched: bool) -> list[dict]:
    """Train the warm starts, then every trial of the plan: in this process (with the other ranks of a
    multi-process run following rank 0), or as jobs."""
    if launched and is_worker_process():
        return follow(Connection(hw, prepared)(), prepared, store, hw)
    planned = plan().tuning
    for line in rereads(planned, tokens_available(workload, prepared)):
        console.print(f"warning: {line}")
    # Warm starts are single-process AdamW runs: train them all before the other ranks (or jobs) start.
    for seed in sorted({t.seed for t in planned} | set(range(seeds))):
        ensure_warm_start(workload, prepared, seed, hw)
    if launch.kind != "none":
        run = functools.partial(run_jobs, executor(launch, store, hw), prepared=prepared, store=store, hw=hw)
        return _sweep(plan, store, part, seeds, prune, run)
    ranks = Connection(hw, prepared) if launched else None
    if ranks is not None and started_by_launcher(hw):
        ranks()  # the other ranks are up and waiting; else they are launched at the first trial, if any
    try:
        return _sweep(plan, store, part, seeds, prune,
                      functools.partial(_in_process, prepared=prepared, store=store, hw=hw, ranks=ranks))
    finally:
        if ranks is not None:
            ranks.finish()


def _in_process(trials, label, prepare, *, prepared, store, hw, ranks) -> list[dict]:
    return run_trials(trials, prepared, store, hw, label, ranks, prepare)


def _checked(suite, preset, optimizers, hw, shard, sets, grids, workload_items, tuning, launch):
    """(optimizer names, their settings, the shard) from what the command line says, each checked before any
    corpus is read or anything written: a bad one is a one-line BenchError."""
    get_suite(suite)
    if tuning not in TUNINGS:
        raise BenchError(f"unknown tuning {tuning!r}; valid: {', '.join(TUNINGS)}")
    if launch.kind not in LAUNCHERS:
        raise BenchError(f"unknown launcher {launch.kind!r}; valid: {', '.join(LAUNCHERS)}")
    if suite == "robustness" and tuning != GRID:
        raise BenchError("--tuning applies to iteration-complexity: the robustness suite runs every protocol")
    names = parse_optimizers(optimizers)
    settings = parse_settings(list(sets), list(grids), names)
    single = [n for n in names if not get_backend(n).ddp]
    if hw.multi_process and single:
        raise BenchError(f"{', '.join(single)} do(es) not declare DDP support (Backend.ddp): run with one process")
    overridden(get_workload(preset), list(workload_items))
    return names, settings, parse_shard(shard)


def _sweep(plan, store: ResultsStore, part, seeds: int, prune: bool, run) -> list[dict]:
    """Tuning rounds of this shard until no cell moves on (a grid at an edge it may still extend, a walk with
    points left), then the seed reruns of every cell whose tuning has ended. ``run(trials, label, prepare)``
    runs a batch: in this process (``queue.run_trials``) or as jobs (``launcher.run_jobs``)."""
    done, attempted = [], set()
    while True:
        current = plan()
        todo = [t for t in current.tuning if in_shard(t, part) and t.run_id not in attempted]
        if not todo:
            break
        attempted |= {t.run_id for t in todo}
        done += run(todo, "tuning", _pruner(current, store) if prune else None)
    for note in plan().notes:
        console.print(note, markup=False, highlight=False)
    if seeds > 1:
        final = plan()
        done += run([t for t in final.seeds if in_shard(t, part)], "seeds", None)
        for k, name in final.waiting:
            console.print(f"K={k} {name}: tuning incomplete (a trial failed, or another shard runs it); its seed "
                          "reruns wait for a later run on the same or the merged results")
    return done


def _pruner(plan: Plan, store: ResultsStore):
    """A tuning trial stops once past its cell's incumbent steps to the tightest target without reaching
    it: it can then no longer be selected (steps to the tightest target come first in the selection)."""
    cells = {t.run_id: cell for cell in plan.cells.values() for t in cell}

    def prepare(trial: Trial) -> Trial:
        if trial.role != "tune":
            return trial
        tightest, runs = f"{min(trial.workload.targets):g}", run_records(store)
        reached = [runs[t.run_id]["steps_to_target"].get(tightest) for t in cells[trial.run_id] if t.run_id in runs]
        reached = [s for s in reached if s is not None]
        return replace(trial, prune_after=min(reached)) if reached else trial

    return prepare


def _calibrate_first(workload: Workload, data: str | None, corpus: Corpus, store: ResultsStore, hw: Hardware,
                     dry_run: bool) -> Workload:
    """No targets were calibrated on this corpus: calibrate them (tuned AdamW, ``bench calibrate``) into the
    results folder's own targets file, its trials under ``calibration/``; the calibrated workload."""
    n = calibration_trial_count(workload, CALIBRATION_SEEDS)
    console.print(f"no calibrated targets for preset {workload.name} on corpus {corpus.key()}: "
                  f"{'a real run calibrates' if dry_run else 'calibrating'} them first ({n} AdamW trials over the "
                  f"full budget, into {store.targets_path})")
    if dry_run:
        return workload
    calibrate(workload.name, data, CALIBRATION_SEEDS, store.calibration_dir, hw.accelerator, store.targets_path)
    calibrated, _ = resolve_workload(workload.name, data, local_targets=store.targets_path)
    if calibrated.targets_source == "uncalibrated":
        raise BenchError(f"calibration wrote no targets for {corpus.key()} into {store.targets_path}")
    return calibrated


