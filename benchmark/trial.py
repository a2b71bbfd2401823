"""One trial = (workload, backend with its hyperparameters, K, seed): its identity, and ``run_trial``,
which trains it under a Lightning Trainer to its last target or its budget and writes its record."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch

from benchmark.callbacks import Evaluation, RecordWriter, ResumeCheckpoints, StepProgress, restore
from benchmark.checkpoint import Checkpoint
from benchmark.hardware import Hardware
from benchmark.hashing import content_hash
from benchmark.launch import ddp_start_method, fit, is_worker_process
from benchmark.loggers import MetricsToLogger, make_logger
from benchmark.settings import variant
from benchmark.store import ResultsStore
from benchmark.streams import (
    MicroBatchStream,
    PackedSequences,
    StepDataset,
    validation_batches,
)
from benchmark.tokens import PreparedData
from benchmark.workloads import Workload
from models.layout import build_backend
from models.lightning import BenchModule
from models.transformer import Transformer
from optimizers import get_backend, make_hyper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    suite: str
    workload: Workload
    optimizer: str
    hparams: tuple[tuple[str, Any], ...]  # overrides of the backend's defaults, sorted by name
    k: int
    seed: int
    role: str = "run"  # "tune" or "seed" in the iteration-complexity suite; not part of the identity
    corpus: str = ""  # corpus name and content fingerprint: results on different text never collide
    numerics: str = ""  # non-default precision / compilation (Hardware.numerics)
    reason: str = ""  # why the suite runs it (its grid, an extension of it, a seed rerun); not the identity
    prune_after: float | None = None  # a tuning trial stops here unless it reached its last target by then
    fixed: tuple[str, ...] = ()  # hyperparameters fixed from the command line (their values are in hparams)
    cell_trials: tuple[str, ...] = ()  # a tuning trial: the run ids of its cell's tuning as planned; not the identity

    @property
    def run_id(self) -> str:
        parts = [self.workload.key(), self.corpus, self.optimizer, list(self.hparams), self.k, self.seed]
        digest = content_hash([*parts, self.numerics] if self.numerics else parts, length=10)
        return f"{self.workload.name}-{self.optimizer}-k{self.k}-s{self.seed}-{digest}"

    def hyper(self):
        return make_hyper(get_backend(self.optimizer), dict(self.hparams))

    def label(self) -> str:
        """The optimizer as reports show it: with its command-line fixed settings, a variant of its own."""
        return variant(self.optimizer, self.hparams, self.fixed)

    def describe(self) -> str:
        """One line's name for the trial: the optimizer (with its fixed settings), the setting its cell tunes,
        K and the seed, e.g. ``muon[momentum=0.9] lr=0.02 K=4 seed=0``."""
        tuned = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.hparams
                         if k not in self.fixed)
        return f"{self.label()} {tuned or 'defaults'} K={self.k} seed={self.seed}"

    def stream(self, data: PreparedData, region: str) -> MicroBatchStream:
        """The micro-batches of this trial's seed in ``region``: "warm" (the warm start), "train" (the
        trial's steps, after the warm start's) or "draw" (the backend's fresh draws)."""
        w = self.workload
        seqs = PackedSequences(data.train_path, w.seq_len, data.vocab_size)
        if region == "draw":
            return MicroBatchStream(seqs, w.micro_batch, self.seed, backward=True)
        start = w.warm_start_sequences() if region == "train" else 0
        return MicroBatchStream(seqs, w.micro_batch, self.seed, start=start)


def build_module(trial: Trial, data: PreparedData, weights: dict | None, total_steps: int) -> BenchModule:
    """The trial's model (seeded, then ``weights`` if given) and backend, hosted by a BenchModule."""
    L.seed_everything(trial.seed, verbose=False)
    model = Transformer(trial.workload.model_config())
    if weights is not None:
        model.load_state_dict(weights)
    make_backend = functools.partial(build_backend, get_backend(trial.optimizer), hp=trial.hyper(),
                                     total_steps=total_steps, seq_len=trial.workload.seq_len)
    return BenchModule(model=model, backend=make_backend(model), k=trial.k, total_steps=total_steps,
                       draw_microbatch=trial.stream(data, "draw").microbatch, make_backend=make_backend)


def run_trial(trial: Trial, data: PreparedData, store: ResultsStore, hw: Hardware, start: Checkpoint | None,
              on_step=None) -> dict | None:
    """Train one trial from ``start`` (a warm start, a resume checkpoint, or None for a fresh
    initialisation: ``warmstart.trial_start`` says which) to its last target or its budget, and write its
    record; returns the record (None in the other ranks of a multi-process run, which write nothing).

    The trial checkpoints at every evaluation under the store's work folder; an interrupted trial
    resumes from there and produces the same curve as an uninterrupted one (every micro-batch is a
    function of the seed and the step, and the checkpoint holds weights, backend state, the line-search
    data cursor and the RNG).

    A trial that raises (its backend, its state, an evaluation) is a result too: rank 0 writes a ``failed``
    record (what it raised, at which step, its traceback under the store's logs) and returns it, and the
    next run retries it. In a multi-process run the other ranks may be left inside a collective, so there
    it raises ``TrialFailed`` with the record after writing it. Ctrl-C (KeyboardInterrupt) is not caught.
    """
    if hw.numerics() != trial.numerics:
        raise ValueError(f"trial planned for numerics {trial.numerics!r} but run with {hw.numerics()!r}")
    writer = RecordWriter(trial, data, store, hw)
    try:
        return _train(trial, data, store, hw, start, on_step, writer)
    except Exception as exc:
        if is_worker_process():
            raise
        record = writer.fail(exc)
        if hw.multi_process:
            raise TrialFailed(record) from exc
        log.debug("%s failed", trial.run_id, exc_info=exc)
        return record


class TrialFailed(Exception):
    """A trial of a multi-process run raised; its ``failed`` record is written."""

    def __init__(self, record: dict) -> None:
        failure = record["run"]["failure"]
        super().__init__(f"{record['run']['run_id']} failed at step {failure['step']}: {failure['type']}: "
                         f"{failure['message']}")
        self.record = record


def _train(trial: Trial, data: PreparedData, store: ResultsStore, hw: Hardware, start: Checkpoint | None,
           on_step, writer: RecordWriter) -> dict | None:
    torch.backends.cuda.matmul.allow_tf32 = hw.tf32
    torch.backends.cudnn.allow_tf32 = hw.tf32
    w = trial.workload
    module = build_module(trial, data, start.model if start else None, w.max_steps)
    module.compile_model = hw.compile
    val = PackedSequences(data.validation_path, w.seq_len, data.vocab_size)
    evaluation = Evaluation(w.eval_grid(), w.targets, validation_batches(val, w.val_tokens, w.micro_batch),
                            w.divergence_factor, trial.prune_after, fine=w.resolution_grid())
    writer.attach(module, evaluation)
    if start is not None and start.resumes:
        restore(module, evaluation, start)
        log.info("%s: resuming at step %d", trial.run_id, module.step_idx)
    if evaluation.status != "running" or module.step_idx >= w.max_steps:
        # killed after its last evaluation but before its record: nothing left to train
        return None if is_worker_process() else writer.finish(module)
    callbacks = [evaluation, MetricsToLogger(evaluation), ResumeCheckpoints(store.checkpoint_path(trial.run_id), evaluation),
                 writer]
    if on_step is not None and not (hw.multi_process and ddp_start_method() != "popen"):
        callbacks.append(StepProgress(on_step))  # spawned ranks cannot carry a live progress bar
    fit(module, StepDataset(trial.stream(data, "train"), trial.k, module.step_idx, w.max_steps), hw,
        callbacks, make_logger(hw.logger, store.logs_dir, trial.run_id))
    if is_worker_process():
        return None
    # Written in this process, or by rank 0 of spawned ranks, which return nothing else to the parent.
    return writer.record if writer.record is not None else store.read(trial.run_id)
