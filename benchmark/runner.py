"""Runs a suite: checks every input before writing anything, prepares the data once, runs the tuning
trials, then the seed reruns of every fully tuned cell, each trial only if it has no record yet, under
an overall progress bar with a per-trial one beneath it."""

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
from benchmark.data import HUB_CORPORA, Corpus, prepare, resolve_corpus
from benchmark.ranks import Ranks, is_worker_process, started_by_launcher
from benchmark.store import ResultsStore
from benchmark.suites import DEFAULT_TUNE_BUDGET, get_suite, in_shard, iteration_complexity, parse_shard
from benchmark.trial import Hardware, Trial, ddp_start_method, run_trial, trial_start, warm_start_state
from benchmark.workloads import Workload, get_workload
from models.transformer import Transformer
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


def estimate(trial: Trial, devices: int = 1) -> dict:
    """Upper bounds for the whole step budget (tokens, forward-equivalent passes, FLOPs) and a rough
    peak memory per device (fp32; checked against one H200 measurement at 45m: AdamW 17 GiB measured
    vs 19 estimated, GN 41 vs 45, micro-batch 32x1024)."""
    w = trial.workload
    import torch

    cfg = w.model_config()
    with torch.device("meta"):
        n_params = Transformer(cfg).num_parameters()
    cls = get_backend(trial.optimizer)
    fe = cls.forward_equivalents_per_microbatch * trial.k * w.max_steps
    tokens = w.tokens_per_step(trial.k) * w.max_steps
    rows = w.micro_batch / devices * w.seq_len  # tokens per micro-batch on one device
    act = rows * (cfg.n_layers * cfg.d_model * 80 + cls.logit_copies * cfg.vocab_size * 4)
    if cls.keeps_attention_scores:
        act += 3 * (w.micro_batch / devices) * cfg.n_heads * w.seq_len**2 * 4 * cfg.n_layers
    memory = cls.state_bytes_per_parameter * n_params + act
    return {"tokens": tokens, "fwd_equiv": fe, "flops": 2.0 * n_params * fe * w.micro_batch * w.seq_len,
            "memory_gib": memory / 2**30}


def _records(store: ResultsStore) -> dict[str, dict]:
    records, _ = store.records()
    return {r["run"]["run_id"]: r["run"] for r in records}


def run_suite(
    suite: str, preset: str, optimizers: str, seeds: int, data: str | None, results, hw: Hardware | None = None,
    dry_run: bool = False, shard: str | None = None, tune_budget: int = DEFAULT_TUNE_BUDGET,
) -> list[dict]:
    hw = hw or Hardware()
    devices = hw.devices
    get_suite(suite)
    workload = get_workload(preset)
    names = parse_optimizers(optimizers)
    part = parse_shard(shard)
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
    store = ResultsStore(results)
    plan = iteration_complexity(workload, names, seeds, _records(store), tune_budget, corpus.key(), hw.numerics())
    if dry_run:
        _print_plan(workload, plan, store, part, seeds, devices)
        return []
    with console.status(f"preparing {corpus.name} (tokenizer, packed tokens; cached after the first run)"):
        prepared = prepare(corpus, workload.vocab_size, workload.train_chars, workload.validation_chars,
                           workload.tokenizer_chars, workload.pretrained_tokenizer)
    # Ranks launched as separate programs (by Lightning from this command, torchrun, SLURM): rank 0 runs the
    # sweep below and sends each trial to the others, which only follow (see benchmark.ranks).
    launched = hw.multi_process and ddp_start_method() == "popen"
    if launched and is_worker_process():
        return _follow(_Connection(hw, prepared)(), prepared, store, hw)
    # Warm starts are single-process AdamW runs: train them all before the other ranks start.
    for seed in sorted({t.seed for t in plan.tuning} | set(range(seeds))):
        warm_start_state(workload, prepared, seed, hw)
    ranks = _Connection(hw, prepared) if launched else None
    if ranks is not None and started_by_launcher(hw):
        ranks()  # the other ranks are up and waiting; else they are launched at the first trial, if any
    done: list[dict] = []
    try:
        done += _run_trials([t for t in plan.tuning if in_shard(t, part)], workload, prepared, store, hw, "tuning",
                            ranks)
        if seeds > 1:
            plan = iteration_complexity(workload, names, seeds, _records(store), tune_budget, corpus.key(),
                                        hw.numerics())
            done += _run_trials([t for t in plan.seeds if in_shard(t, part)], workload, prepared, store, hw,
                                "seeds", ranks)
            for k, name in plan.waiting:
                console.print(f"K={k} {name}: tuning records incomplete (other shards?); its seed reruns wait "
                              "for a later run on the merged results")
    finally:
        if ranks is not None:
            ranks.finish()
    return done


class _Connection:
    """The link to the other ranks, made on the first call: rank 0 calls it (and so launches them, where it
    is the launcher) only when a trial needs them. Every rank must have tokenized the same corpus."""

    def __init__(self, hw: Hardware, prepared) -> None:
        self.hw, self.prepared, self.ranks = hw, prepared, None

    def __call__(self) -> Ranks:
        if self.ranks is None:
            ranks = Ranks(self.hw)
            try:
                ranks.check_same(self.prepared.info.get("tokens_digest"), "tokenized corpus",
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


def _follow(ranks: Ranks, prepared, store: ResultsStore, hw: Hardware) -> list[dict]:
    """A rank other than 0: run each trial rank 0 sends, from the start it sends, until it sends None."""
    while (message := ranks.receive()) is not None:
        trial, start = message
        run_trial(trial, prepared, store, hw, start=start)
    ranks.close()
    return []


def _run_trials(trials: list[Trial], workload: Workload, prepared, store: ResultsStore, hw: Hardware,
                label: str, ranks: _Connection | None = None) -> list[dict]:
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
            current = progress.add_task(f"  {trial.describe()}", total=workload.max_steps)
            try:
                if store.has(trial.run_id):  # finished by another process since we listed
                    continue
                t0 = time.time()
                start = trial_start(trial, prepared, store, hw)
                with store.heartbeat(trial.run_id), ranks().lead(trial, start) if ranks else nullcontext():
                    record = run_trial(trial, prepared, store, hw, start=start,
                                       on_step=lambda m, c=current: progress.update(c, completed=m.step_idx))
                records.append(record)
                run = record["run"]
                reached = ", ".join(f"{t}: {'-' if s is None else f'{s:.1f}'}"
                                    for t, s in run["steps_to_target"].items())
                final = run["final_val_loss"]
                progress.console.print(
                    f"{trial.describe()}: {run['status']} after {run['steps_run']} steps, "
                    f"val {final if final is None else f'{final:.3f}'}, steps to target {{{reached}}} "
                    f"({time.time() - t0:.0f}s)"
                )
            finally:
                store.release(trial.run_id)
                progress.remove_task(current)
                progress.advance(overall)
    return records


def _print_plan(workload: Workload, plan, store: ResultsStore, part, seeds: int, devices: int = 1) -> None:
    total_fe = total_flops = 0.0
    rows = [(t, "tune") for t in plan.tuning] + [(t, "seed") for t in plan.seeds]
    print(f"{'state':5} {'role':4} {'run id':44} {'trial':44} {'tokens':>14} {'fwd-equiv':>10} {'PFLOP':>9} "
          f"{'GiB/dev':>7}")
    for t, role in rows:
        if not in_shard(t, part):
            continue
        e = estimate(t, devices)
        total_fe += e["fwd_equiv"]
        total_flops += e["flops"]
        state = "done" if store.has(t.run_id) else "todo"
        print(f"{state:5} {role:4} {t.run_id:44} {t.describe():44} {e['tokens']:>14,} {e['fwd_equiv']:>10,.0f} "
              f"{e['flops'] / 1e15:>9.3f} {e['memory_gib']:>7.1f}")
    n = sum(1 for t, _ in rows if in_shard(t, part))
    print(f"{n} trials (shard {part[0]}/{part[1]}, {devices} device(s) each), at most {total_fe:,.0f} "
          f"forward-equivalent micro-batch passes, {total_flops / 1e15:.3f} PFLOP over full budgets "
          "(runs stop early at their last target)")
    if seeds > 1 and plan.waiting:
        print(f"+ {len(plan.waiting) * (seeds - 1)} seed reruns, fixed once their cells' tuning has finished")
