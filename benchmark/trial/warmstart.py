"""Where a trial starts: its resume checkpoint when an earlier run was interrupted, else the workload's
shared AdamW warm start for its seed (trained once per seed, cached as a weights-only checkpoint, as the
paper starts every optimizer from an AdamW checkpoint), else a fresh initialisation."""

from __future__ import annotations

from pathlib import Path

from benchmark.data.streams import StepDataset
from benchmark.data.tokens import PreparedData
from benchmark.files import cache_root
from benchmark.hashing import content_hash
from benchmark.results.store import ResultsStore
from benchmark.trial.checkpoint import Checkpoint, cpu_state
from benchmark.trial.hardware import Hardware
from benchmark.trial.identity import Trial
from benchmark.trial.launch import fit
from benchmark.trial.run import build_module
from benchmark.workload.presets import Workload


def warm_start_path(workload: Workload, data: PreparedData, seed: int) -> Path | None:
    """Where the warm start of ``seed`` is cached; None when the workload starts from scratch."""
    if workload.warm_start_steps <= 0:
        return None
    key = content_hash([workload.key(), data.info.get("cache_key"), seed], length=12)
    return cache_root() / "warmstart" / f"{workload.name}-s{seed}-{key}.ckpt"


def ensure_warm_start(workload: Workload, data: PreparedData, seed: int, hw: Hardware) -> Path | None:
    """Train and cache the warm start of ``seed`` unless it is cached already (one process, fp32)."""
    path = warm_start_path(workload, data, seed)
    if path is None or path.exists():
        return path
    trial = Trial("warm-start", workload, "adamw",
                  (("lr", workload.warm_start_lr), ("schedule", "constant"), ("warmup", 0.05)),
                  workload.warm_start_k, seed, corpus=data.corpus.key())
    module = build_module(trial, data, None, workload.warm_start_steps)
    dataset = StepDataset(trial.stream(data, "warm"), trial.k, 0, workload.warm_start_steps)
    fit(module, dataset, Hardware(accelerator=hw.accelerator))
    Checkpoint(model=cpu_state(module.model)).save(path)
    return path


def trial_start(trial: Trial, data: PreparedData, store: ResultsStore, hw: Hardware) -> Checkpoint | None:
    """What ``trial`` starts from: its checkpoint under the store's work folder if an earlier run was
    interrupted, else the workload's warm start, else None (a fresh initialisation)."""
    resume = store.checkpoint_path(trial.run_id)
    if resume.exists():
        return Checkpoint.load(resume)
    path = ensure_warm_start(trial.workload, data, trial.seed, hw)
    return Checkpoint.load(path) if path is not None else None
