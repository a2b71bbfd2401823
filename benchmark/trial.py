"""One trial = (workload, backend with its hyperparameters, K, seed), run by a Lightning Trainer."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch

from benchmark import __version__
from benchmark.data import MicroBatchStream, PackedSequences, PreparedData, cache_root, validation_batches
from benchmark.metrics import steps_to_target
from benchmark.store import ResultsStore
from benchmark.workloads import Workload
from models.lightning import BenchModule, StepDataset
from models.transformer import Transformer
from optimizers import get_backend, make_hyper

log = logging.getLogger(__name__)

# Data streams: trials and the warm start read disjoint permutations; line searches have their own.
TRAIN_STREAM, DRAW_STREAM, WARM_STREAM = 0, 1, 2


@dataclass(frozen=True)
class Trial:
    suite: str
    workload: Workload
    optimizer: str
    hparams: tuple[tuple[str, Any], ...]  # overrides of the backend's defaults, sorted by name
    k: int
    seed: int
    role: str = "run"  # "tune" or "seed" in the iteration-complexity suite; not part of the identity

    @property
    def run_id(self) -> str:
        ident = json.dumps([self.workload.key(), self.optimizer, list(self.hparams), self.k, self.seed])
        digest = hashlib.sha256(ident.encode()).hexdigest()[:10]
        return f"{self.workload.name}-{self.optimizer}-k{self.k}-s{self.seed}-{digest}"

    def hyper(self):
        return make_hyper(get_backend(self.optimizer), dict(self.hparams))

    def describe(self) -> str:
        hp = ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.hparams)
        return f"{self.optimizer}[{hp or 'defaults'}] K={self.k} seed={self.seed}"


def code_version() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", ""
    return f"{__version__}+{sha}{'.dirty' if dirty else ''}" if sha else __version__


def environment(device: torch.device) -> dict:
    import datasets
    import numpy
    import tokenizers

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {
        "code_version": code_version(),
        "python": platform.python_version(),
        "libraries": {
            "torch": torch.__version__,
            "lightning": L.__version__,
            "datasets": datasets.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": numpy.__version__,
        },
        "device": {"type": device.type, "name": name, "count": torch.cuda.device_count() if device.type == "cuda" else os.cpu_count()},
        "host": platform.node(),
    }


def _trainer(steps: int, accelerator: str, devices: int | str, callbacks=()) -> L.Trainer:
    return L.Trainer(
        accelerator=accelerator,
        devices=devices,
        max_epochs=1,
        max_steps=-1,
        limit_train_batches=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        callbacks=list(callbacks),
    )


_LIGHTNING_NOISE = (
    ".*does not have many workers.*",
    ".*GPU available but not used.*",
    ".*configure_optimizers.* returned `None`.*",
    ".*LeafSpec.*",
)


def _fit(module: BenchModule, dataset: StepDataset, accelerator: str, devices, callbacks=()) -> None:
    # Lightning's banners (devices, tips, "fit stopped") would drown the benchmark's own progress.
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=0)
    with warnings.catch_warnings():
        for pattern in _LIGHTNING_NOISE:
            warnings.filterwarnings("ignore", pattern)
        _trainer(len(dataset), accelerator, devices, callbacks).fit(module, train_dataloaders=loader)


def warm_start_state(workload: Workload, data: PreparedData, seed: int, accelerator: str = "auto") -> dict | None:
    """The workload's shared AdamW warm start for ``seed``: trained once, cached on disk."""
    if workload.warm_start_steps <= 0:
        return None
    key = hashlib.sha256(json.dumps([workload.key(), data.info.get("cache_key"), seed]).encode()).hexdigest()[:12]
    path = cache_root() / "warmstart" / f"{workload.name}-s{seed}-{key}.pt"
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=True)
    trial = Trial(
        "warm-start", workload, "adamw", (("lr", workload.warm_start_lr), ("schedule", "constant")),
        workload.warm_start_k, seed,
    )
    module, _ = _build(trial, data, warm=None, total_steps=workload.warm_start_steps, eval_grid=[], targets=())
    dataset = StepDataset(
        MicroBatchStream(PackedSequences(data.train_path, workload.seq_len, data.vocab_size),
                         workload.micro_batch, seed, WARM_STREAM),
        trial.k, 0, workload.warm_start_steps,
    )
    _fit(module, dataset, accelerator, 1)
    state = {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return state


def _build(trial: Trial, data: PreparedData, warm: dict | None, total_steps: int, eval_grid, targets, on_step=None,
           checkpoint_path=None):
    w = trial.workload
    L.seed_everything(trial.seed, verbose=False)
    model = Transformer(w.model_config())
    if warm is not None:
        model.load_state_dict(warm)
    backend_cls = get_backend(trial.optimizer)
    hp = make_hyper(backend_cls, dict(trial.hparams))
    backend = backend_cls(model, hp, total_steps)
    val = PackedSequences(data.validation_path, w.seq_len, data.vocab_size)
    train = PackedSequences(data.train_path, w.seq_len, data.vocab_size)
    module = BenchModule(
        model=model,
        backend=backend,
        k=trial.k,
        total_steps=total_steps,
        eval_grid=eval_grid,
        targets=targets,
        val_batches=validation_batches(val, w.val_tokens, w.micro_batch),
        draw_stream=MicroBatchStream(train, w.micro_batch, trial.seed, DRAW_STREAM),
        divergence_factor=w.divergence_factor,
        on_step=on_step,
        checkpoint_path=checkpoint_path,
    )
    return module, hp


def run_trial(
    trial: Trial,
    data: PreparedData,
    store: ResultsStore,
    accelerator: str = "auto",
    devices: int | str = 1,
    on_step=None,
) -> dict:
    """Train one trial to its last target or its budget and write its record; returns the record.

    The trial checkpoints at every evaluation under the store's work folder; an interrupted trial
    resumes from there and produces the same curve as an uninterrupted one (every micro-batch is a
    function of the seed and the step, and the checkpoint holds weights, backend state, the line-search
    data cursor and the RNG).
    """
    w = trial.workload
    warm = warm_start_state(w, data, trial.seed, accelerator)
    ckpt = store.work_dir / f"{trial.run_id}.ckpt"
    module, hp = _build(trial, data, warm, w.max_steps, w.eval_grid(), w.targets, on_step, ckpt)
    started = time.time()
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        module.load_resume_state(state)
        log.info("%s: resuming at step %d", trial.run_id, module.step_idx)
    if module.status == "running" and module.step_idx < w.max_steps:
        train = PackedSequences(data.train_path, w.seq_len, data.vocab_size)
        stream = MicroBatchStream(train, w.micro_batch, trial.seed, TRAIN_STREAM)
        _fit(module, StepDataset(stream, trial.k, module.step_idx, w.max_steps), accelerator, devices)
    if module.status == "running":
        module.status = "budget"  # ran its whole budget without reaching the last target
    record = make_record(trial, hp, module, data, started)
    store.write(record)
    ckpt.unlink(missing_ok=True)
    return record


def make_record(trial: Trial, hp, module: BenchModule, data: PreparedData, started: float) -> dict:
    w = trial.workload
    steps = [e["step"] for e in module.evals]
    losses = [e["val_loss"] for e in module.evals]
    reached = {f"{t:g}": steps_to_target(steps, losses, t) for t in w.targets}
    if module.status == "diverged":
        reached = {t: None for t in reached}
    run = {
        "run_id": trial.run_id,
        "suite": trial.suite,
        "role": trial.role,
        "workload": w.name,
        "workload_version": w.version,
        "workload_key": w.key(),
        "optimizer": trial.optimizer,
        "hparams": asdict(hp),
        "hparam_overrides": dict(trial.hparams),
        "lr": getattr(hp, "lr", None),
        "k": trial.k,
        "tokens_per_step": w.tokens_per_step(trial.k),
        "seed": trial.seed,
        "status": module.status,
        "steps_run": module.step_idx,
        "final_val_loss": losses[-1] if losses else None,
        "best_val_loss": min(losses) if losses else None,
        "steps_to_target": reached,
        "costs": module.costs.as_dict(),
        "train_seconds": module.train_seconds,
        "seconds_per_step": module.train_seconds / max(1, module.step_idx),
        "peak_memory_mib": max((e["peak_memory_mib"] for e in module.evals), default=None),
        "started_at": started,
        "finished_at": time.time(),
        "workload_config": w.to_dict(),
        "model_config": w.model_config().to_dict(),
        "num_parameters": module.model.num_parameters(),
        "corpus": data.describe(),
        **environment(module.device),
    }
    return {"run": run, "evals": module.evals, "steps": module.step_log}
