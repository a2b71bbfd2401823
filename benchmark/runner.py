"""Runs a suite: checks every input before writing anything, prepares the data once, then runs each
trial that has no record yet, under an overall progress bar with a per-trial one beneath it."""

from __future__ import annotations

import time

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
from benchmark.data import prepare, resolve_corpus
from benchmark.store import ResultsStore
from benchmark.suites import get_suite
from benchmark.trial import Trial, run_trial
from benchmark.workloads import Workload, get_workload
from optimizers import registry
from optimizers.base import UnknownBackend, get_backend

console = Console(stderr=True)


def parse_optimizers(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()] if text else sorted(registry())
    for name in names:
        try:
            get_backend(name)
        except UnknownBackend as exc:
            raise BenchError(str(exc)) from None
    return names


def plan(suite: str, preset: str, optimizers: str, seeds: int) -> tuple[Workload, list[Trial]]:
    s = get_suite(suite)
    w = get_workload(preset)
    return w, s.plan(w, parse_optimizers(optimizers), seeds)


def run_suite(
    suite: str, preset: str, optimizers: str, seeds: int, data: str | None, results, accelerator: str,
    devices: int, dry_run: bool = False,
) -> list[dict]:
    workload, trials = plan(suite, preset, optimizers, seeds)
    corpus = resolve_corpus(data, workload.hub_corpus, workload.allow_builtin_corpus)
    store = ResultsStore(results)
    if dry_run:
        for t in trials:
            done = "done" if store.has(t.run_id) else "todo"
            print(f"{done}  {t.run_id:48} {t.describe():48} {workload.tokens_per_step(t.k):>9} tokens/step")
        print(f"{len(trials)} trials on corpus {corpus.name}")
        return []
    with console.status(f"preparing {corpus.name} (tokenizer, packed tokens; cached after the first run)"):
        prepared = prepare(corpus, workload.vocab_size, workload.train_chars, workload.validation_chars,
                           workload.tokenizer_chars)
    records = []
    todo = [t for t in trials if not store.has(t.run_id)]
    if len(todo) < len(trials):
        console.print(f"{len(trials) - len(todo)} of {len(trials)} trials already have records: skipped")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        overall = progress.add_task("trials", total=len(todo))
        for trial in todo:
            if not store.claim(trial.run_id):
                console.print(f"{trial.run_id}: another process is running it, skipped")
                progress.advance(overall)
                continue
            current = progress.add_task(f"  {trial.describe()}", total=workload.max_steps)
            try:
                if store.has(trial.run_id):  # finished by another process since we listed
                    continue
                t0 = time.time()
                record = run_trial(trial, prepared, store, accelerator, devices,
                                   on_step=lambda m, c=current: progress.update(c, completed=m.step_idx))
                records.append(record)
                run = record["run"]
                reached = ", ".join(f"{t}: {'-' if s is None else f'{s:.1f}'}"
                                    for t, s in run["steps_to_target"].items())
                progress.console.print(
                    f"{trial.describe()}: {run['status']} after {run['steps_run']} steps, "
                    f"val {run['final_val_loss']:.3f}, steps to target {{{reached}}} ({time.time() - t0:.0f}s)"
                )
            finally:
                store.release(trial.run_id)
                progress.remove_task(current)
                progress.advance(overall)
    return records
