"""One trial = (workload, backend with its hyperparameters, K, seed): its identity, and ``run_trial``,
which trains it under a Lightning Trainer to its last target or its budget and writes its record."""

from __future__ import annotations

import functools
import logging

import lightning as L
import torch

from benchmark.data.streams import PackedSequences, StepDataset, validation_batches
from benchmark.data.tokens import PreparedData
from benchmark.results.store import ResultsStore
from benchmark.trial.branches import Branches, cooldown_fraction
from benchmark.trial.callbacks import Evaluation, ResumeCheckpoints, StepProgress, restore
from benchmark.trial.checkpoint import Checkpoint
from benchmark.trial.hardware import Hardware
from benchmark.trial.identity import Trial
from benchmark.trial.launch import ddp_start_method, fit, is_worker_process
from benchmark.trial.loggers import MetricsToLogger, make_logger
from benchmark.trial.writer import RecordWriter
from models.layout import build_backend
from models.lightning import BenchModule
from models.transformer import Transformer
from optimizers import get_backend

log = logging.getLogger(__name__)


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

    A trial whose schedule is WSD measures its steps-to-target by cooldown branches (``trial.branches``): its
    constant phase, then a branch per budget its search tries; it resumes its search from the branches done.

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
    val = validation_batches(PackedSequences(data.validation_path, w.seq_len, data.vocab_size), w.val_tokens,
                             w.micro_batch)
    branches = _branches(trial, data, store, hw, module)
    evaluation = branches.evaluation(val) if branches else Evaluation(
        w.eval_grid(), w.targets, val, w.divergence_factor, trial.prune_after, fine=w.resolution_grid())
    writer.attach(module, evaluation)
    if start is not None and start.resumes:
        restore(module, evaluation, start)
        log.info("%s: resuming at step %d", trial.run_id, module.step_idx)
    stop = branches.stable_steps if branches else w.max_steps

    def train() -> bool:
        """Train on to ``stop`` (a WSD trial: its constant phase, to its bound), unless already there."""
        if evaluation.status != "running" or module.step_idx >= stop or (
                branches and branches.bounded(module.step_idx, evaluation)):
            return False
        callbacks = [evaluation, MetricsToLogger(evaluation), ResumeCheckpoints(store.checkpoint_path(trial.run_id), evaluation),
                     writer, *(branches.stable_callbacks(module, evaluation, writer) if branches else [])]
        if on_step is not None and not (hw.multi_process and ddp_start_method() != "popen"):
            callbacks.append(StepProgress(on_step))  # spawned ranks cannot carry a live progress bar
        fit(module, StepDataset(trial.stream(data, "train"), trial.k, module.step_idx, stop), hw,
            callbacks, make_logger(hw.logger, store.logs_dir, trial.run_id))
        return True

    trained = train()
    if is_worker_process():
        return None
    if branches is None:
        if trained:  # written in this process, or by rank 0 of spawned ranks, which return nothing else to the parent
            return writer.record if writer.record is not None else store.read(trial.run_id)
        return writer.finish(module)  # killed after its last evaluation but before its record: nothing left to train
    rng = torch.get_rng_state()  # the constant phase's, for its continuation after branches drew from it

    def run_on() -> int:
        torch.set_rng_state(rng)
        train()
        return module.step_idx

    writer.outcome = branches.search(evaluation, module.step_idx, val, on_step, extend=run_on)
    record = writer.finish(module)
    branches.clean()
    return record


def _branches(trial: Trial, data: PreparedData, store: ResultsStore, hw: Hardware, module) -> Branches | None:
    """The cooldown branches of a trial whose schedule is WSD (``benchmark.trial.branches``), else None."""
    cooldown = cooldown_fraction(module.backend.hp)
    if cooldown is None:
        return None
    build = functools.partial(_rebuild, trial, data, hw)
    return Branches(trial, cooldown, store, hw, build, trial.stream(data, "train"))


def _rebuild(trial: Trial, data: PreparedData, hw: Hardware, weights: dict) -> BenchModule:
    module = build_module(trial, data, weights, trial.workload.max_steps)
    module.compile_model = hw.compile
    return module
