"""``bench calibrate``: targets the AlgoPerf way. Tuned AdamW (the suite's own tuning over AdamW's search
space, run to the full step budget with no target) at every K of the workload, over seeds; the tightest
target is the loss that tuned AdamW reaches within the budget at *every* K (the worst of the per-K
medians), so no batch size is censored by construction; looser targets sit at 25% and 50% of the way
back to the initial loss. The result is written into ``benchmark/workload/targets.json`` under a new workload
version, so records made against the old targets never mix with the new ones."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import replace
from pathlib import Path

from benchmark.results.store import ResultsStore
from benchmark.sweep.inputs import prepare_workload, resolve_workload, run_records
from benchmark.sweep.plan import tuning_grid
from benchmark.sweep.queue import run_trials
from benchmark.trial.hardware import Hardware
from benchmark.trial.identity import Trial
from benchmark.workload.presets import Workload
from benchmark.workload.targets import write_entry


def final_loss(run: dict) -> float:
    loss = run["final_val_loss"]
    return math.inf if loss is None or not math.isfinite(loss) else loss


def targets_from(per_k_medians: list[float], initial_loss: float) -> list[float]:
    """The tightest target is the worst per-K median final loss; the looser ones sit 25% and 50% of the
    way back to ``initial_loss``; rounded up to 0.01 nats, loosest first."""
    tight = max(per_k_medians)
    return sorted({math.ceil(100 * (tight + f * (initial_loss - tight))) / 100 for f in (0.5, 0.25, 0.0)},
                  reverse=True)


def calibration_trial_count(workload: Workload, seeds: int) -> int:
    """AdamW trials a calibration runs: its tuning grid at every K, then seeds - 1 reruns of each K's best."""
    return len(workload.ks) * (len(tuning_grid("adamw")) + seeds - 1)


def calibrate(preset: str, data: str | None, seeds: int, results, accelerator: str,
              targets_file: Path) -> dict:
    """Calibrate ``preset`` on ``data``: the trials' records under ``results``, the entry into
    ``targets_file`` (a results folder's own; the shipped ``benchmark/workload/targets.json`` only when named)."""
    base, corpus = resolve_workload(preset, data, local_targets=targets_file)
    w = replace(base, targets=(), targets_source="calibration run (no target)")
    prepared = prepare_workload(w, corpus)
    store, hw, key = ResultsStore(results), Hardware(accelerator=accelerator), prepared.corpus.key()
    tune = [Trial("calibrate", w, "adamw", hp, k, 0, role="tune", corpus=key) for k in w.ks for hp in tuning_grid("adamw")]
    run_trials(tune, prepared, store, hw, "calibration tuning")
    per_k, initial = {}, []
    for k in w.ks:
        runs = run_records(store)
        best = min((t for t in tune if t.k == k), key=lambda t: (final_loss(runs[t.run_id]), t.run_id))
        reruns = [Trial("calibrate", w, "adamw", best.hparams, k, s, role="seed", corpus=key) for s in range(1, seeds)]
        run_trials(reruns, prepared, store, hw, f"calibration seeds K={k}")
        cell = [store.read(t.run_id) for t in (best, *reruns)]
        losses = [final_loss(r["run"]) for r in cell]
        per_k[str(k)] = {"setting": dict(best.hparams), "final_losses": losses, "median": statistics.median(losses)}
        initial += [r["evals"][0]["val_loss"] for r in cell]
    l0 = statistics.median(initial)
    entry = {
        "targets": targets_from([v["median"] for v in per_k.values()], l0),
        "version": base.version + 1,
        "calibrated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
        "corpus": prepared.corpus.name,
        "corpus_key": key,
        "seeds": seeds,
        "initial_loss": l0,
        "adamw": per_k,
        "command": f"bench calibrate --preset {preset} --seeds {seeds}" + (f" --data {data}" if data else ""),
    }
    write_entry(preset, entry, targets_file)
    return entry
