"""Runs a suite: checks every input before writing anything, prepares the data once, trains the warm
starts, runs the tuning trials, then the seed reruns of every fully tuned cell, each trial only if it has
no record yet, under an overall progress bar with a per-trial one beneath it."""

from __future__ import annotations

import time
from contextlib import nullcontext

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from benchmark import BenchError
from benchmark.corpus import HUB_CORPORA, Corpus, resolve_corpus
from benchmark.estimate import print_plan
from benchmark.hardware import Hardware
from benchmark.launch import ddp_start_method, is_worker_process, started_by_launcher
from benchmark.ranks import Ranks
from benchmark.store import ResultsStore
from benchmark.suites import DEFAULT_TUNE_BUDGET, get_suite, in_shard, iteration_complexity, parse_shard
from benchmark.tokens import PreparedData, prepare
from benchmark.trial import Trial, run_trial
from benchmark.warmstart import ensure_warm_start, trial_start
from benchmark.workloads import Workload, get_workload
from optimizers import registry
from optimizers.registry import UnknownBackend, get_backend

console = Console(stderr=True)


def parse_optimizers(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()] if text else sorted(registry())
    for name in names:
        try:
            get_backend(name)
        except UnknownBackend as exc:
            raise BenchError(str(exc)) from None
    return names


def run_records(store: ResultsStore) -> dict[str, dict]:
    """run id -> run record of every readable record in ``store``."""
    records, _ = store.records()
    return {r["run"]["run_id"]: r["run"] for r in records}


def resolve_workload(preset: str, data: str | None, dry_run: bool = False) -> tuple[Workload, Corpus]:
    """The preset with the targets of the corpus it will read, and that corpus."""
    workload = get_workload(preset)
    try:
        corpus = resolve_corpus(data, workload.hub_corpus, workload.allow_builtin_corpus)
    except BenchError:
        if not (dry_run and workload.hub_corpus and not data):
            raise
        # A plan needs no text: show it for the preset's hub corpus, which a real run must reach.
        corpus = Corpus(name=workload.hub_corpus, kind="hub", hub_id=HUB_CORPORA[workload.hub_corpus])
        print(f"note: {workload.hub_corpus} is unreachable from here; a real run needs the hub or --data PATH")
    workload = get_workload(preset, corpus.name)
    if workload.targets_source == "uncalibrated" and not is_worker_process():
        console.print(f"warning: preset {preset} has no calibrated targets for corpus {corpus.name}; using "
                      f"{', '.join(f'{t:g}' for t in workload.targets)} (run bench calibrate)")
    return workload, corpus


def prepare_workload(workload: Workload, corpus: Corpus) -> PreparedData:
    with console.status(f"preparing {corpus.name} (tokenizer, packed tokens; cached after the first run)"):
        return prepare(corpus, workload.vocab_size, workload.train_chars, workload.validation_chars,
                       workload.tokenizer_chars, workload.pretrained_tokenizer)


def run_suite(
    suite: str, preset: str, optimizers: str, seeds: int, data: str | None, results, hw: Hardware | None = None,
    dry_run: bool = False, shard: str | None = None, tune_budget: int = DEFAULT_TUNE_BUDGET,
) -> list[dict]:
    hw = hw or Hardware()
    get_suite(suite)
    names = parse_optimizers(optimizers)
    part = parse_shard(shard)
    workload, corpus = resolve_workload(preset, data, dry_run)
    store = ResultsStore(results)

    def plan():
        return iteration_complexity(workload, names, seeds, run_records(store), tune_budget, corpus.key(),
                                    hw.numerics())

    if dry_run:
        print_plan(plan(), store, part, seeds, hw.devices)
        return []
    prepared = prepare_workload(workload, corpus)
    # Ranks launched as separate programs (by Lightning from this command, torchrun, SLURM): rank 0 runs the
    # sweep below and sends each trial to the others, which only follow (see benchmark.ranks).
    launched = hw.multi_process and ddp_start_method() == "popen"
    if launched and is_worker_process():
        return _follow(_Connection(hw, prepared)(), prepared, store, hw)
    tuning = plan().tuning
    # Warm starts are single-process AdamW runs: train them all before the other ranks start.
    for seed in sorted({t.seed for t in tuning} | set(range(seeds))):
        ensure_warm_start(workload, prepared, seed, hw)
    ranks = _Connection(hw, prepared) if launched else None
    if ranks is not None and started_by_launcher(hw):
        ranks()  # the other ranks are up and waiting; else they are launched at the first trial, if any
    done: list[dict] = []
    try:
        done += run_trials([t for t in tuning if in_shard(t, part)], prepared, store, hw, "tuning", ranks)
        if seeds > 1:
            final = plan()  # the seed reruns of every cell whose tuning is complete
            done += run_trials([t for t in final.seeds if in_shard(t, part)], prepared, store, hw, "seeds", ranks)
            for k, name in final.waiting:
                console.print(f"K={k} {name}: tuning records incomplete (other shards?); its seed reruns wait "
                              "for a later run on the merged results")
    finally:
        if ranks is not None:
            ranks.finish()
    return done


class _Connection:
    """The link to the other ranks, made on the first call: rank 0 calls it (and so launches them, where it
    is the launcher) only when a trial needs them. Every rank must have tokenized the same corpus."""

    def __init__(self, hw: Hardware, prepared: PreparedData) -> None:
        self.hw, self.prepared, self.ranks = hw, prepared, None

    def __call__(self) -> Ranks:
        if self.ranks is None:
            ranks = Ranks(self.hw)
            try:
                ranks.check_same(self.prepared.info.get("tokens_sha256"), "tokenized corpus",
                                 "give every node the same --data and OPTBENCH_CACHE folder, or a copy of rank 0's")
            except BenchError:
                ranks.close()  # every rank raises the same error here
                raise
            self.ranks = ranks
        return self.ranks

    def finish(self) -> None:
        """Rank 0, at the end of the sweep: release the other ranks, if they were ever connected."""
        if self.ranks is not None:
            self.ranks.finish()


def _follow(ranks: Ranks, prepared: PreparedData, store: ResultsStore, hw: Hardware) -> list[dict]:
    """A rank other than 0: run each trial rank 0 sends, from the start it sends, until it sends None."""
    while (message := ranks.receive()) is not None:
        trial, start = message
        run_trial(trial, prepared, store, hw, start)
    ranks.close()
    return []


def _announce(trial: Trial, record: dict, seconds: float, progress: Progress) -> None:
    run = record["run"]
    reached = ", ".join(f"{t}: {'-' if s is None else f'{s:.1f}'}" for t, s in run["steps_to_target"].items())
    final = run["final_val_loss"]
    progress.console.print(f"{trial.describe()}: {run['status']} after {run['steps_run']} steps, "
                           f"val {final if final is None else f'{final:.3f}'}, steps to target {{{reached}}} "
                           f"({seconds:.0f}s)")


def run_trials(trials: list[Trial], prepared: PreparedData, store: ResultsStore, hw: Hardware, label: str,
               ranks: _Connection | None = None) -> list[dict]:
    """Run every trial of ``trials`` that has no record yet and that no other process claims; their records."""
    records = []
    todo = [t for t in trials if not store.has(t.run_id)]
    if len(todo) < len(trials):
        console.print(f"{label}: {len(trials) - len(todo)} of {len(trials)} trials already have records: skipped")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
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
                start = trial_start(trial, prepared, store, hw)
                with store.heartbeat(trial.run_id), ranks().lead(trial, start) if ranks else nullcontext():
                    record = run_trial(trial, prepared, store, hw, start,
                                       on_step=lambda m, c=current: progress.update(c, completed=m.step_idx))
                records.append(record)
                _announce(trial, record, time.time() - t0, progress)
            finally:
                store.release(trial.run_id)
                progress.remove_task(current)
                progress.advance(overall)
    return records
