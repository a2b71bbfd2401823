"""What the harness does during a trial's training, as Lightning callbacks (the way Lightning's own
``EarlyStopping`` and ``ModelCheckpoint`` work), so the LightningModule stays a host:

- ``Evaluation``: the workload's evaluation grid on the fixed validation set, early stop at the last
  target, divergence stop (non-finite loss, or training loss above a factor of its first value);
- ``ResumeCheckpoints``: an atomic resume checkpoint at every evaluation of a running trial;
- ``RecordWriter``: the run record, written by rank 0 when the fit ends or the trial raises;
- ``StepProgress``: a progress hook after every step.
"""

from __future__ import annotations

import math
import resource
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch

from benchmark.checkpoint import Checkpoint, cpu_state
from benchmark.files import atomic_write
from benchmark.hardware import Hardware
from benchmark.record import make_record, read_record
from benchmark.store import ResultsStore
from benchmark.tokens import PreparedData


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # On the CPU: the process's resident high-water mark (not per trial when one process runs many).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Evaluation(L.Callback):
    """Validation loss at the steps of ``grid``, and at the steps of ``fine`` between two of them that a
    target crossed (from the evaluation weights saved at those steps: the curve is resolved where a
    steps-to-target is read off it, and only there). ``status`` says how the trial stands: running,
    reached (its last target), diverged, pruned (``prune_after`` steps passed without reaching the last
    target: it can no longer beat the incumbent it was given), or budget (set by the record writer when
    the budget ran out)."""

    def __init__(self, grid: list[int], targets: tuple[float, ...], val_batches: list[torch.Tensor],
                 divergence_factor: float, prune_after: float | None = None, fine=()) -> None:
        self.grid, self.targets, self.val_batches = set(grid), tuple(targets), val_batches
        self.fine = set(fine) - self.grid
        self.divergence_factor, self.prune_after = divergence_factor, prune_after
        self.pending: list[tuple[dict, dict]] = []  # (evaluation weights, eval entry) since the last evaluation
        self.evals: list[dict] = []
        self.status = "running"
        self.initial_loss: float | None = None

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if module.step_idx == 0 and 0 in self.grid and not self.evals:
            self.evaluate(trainer, module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        loss = module.step_log[-1]["train_loss"]
        if self.initial_loss is None:
            self.initial_loss = loss
        if not math.isfinite(loss) or loss > self.divergence_factor * self.initial_loss:
            self._stop(trainer, "diverged")
        elif module.step_idx in self.grid:
            self.evaluate(trainer, module)
        elif module.step_idx in self.fine:
            weights = {n: t.detach().clone() for n, t in module.evaluation_parameters().items()}
            self.pending.append((weights, self._entry(module)))

    @staticmethod
    def _entry(module) -> dict:
        return {"step": module.step_idx, "tokens": module.costs.tokens,
                "train_loss": module.step_log[-1]["train_loss"] if module.step_log else None,
                "forward_equivalents": module.costs.forward_equivalents, "train_seconds": module.train_seconds,
                "peak_memory_mib": peak_memory_mib(module.device)}

    def evaluate(self, trainer, module) -> float:
        val = module.mean_loss(self.val_batches)
        previous = self.evals[-1]["val_loss"] if self.evals else None
        if previous is not None and any(previous > t >= val for t in self.targets):
            for weights, entry in self.pending:  # a target crossed since the last evaluation: resolve it
                self.evals.append({**entry, "val_loss": module.mean_loss(self.val_batches, weights)})
        self.pending = []
        self.evals.append({**self._entry(module), "val_loss": val})
        if not math.isfinite(val):
            self._stop(trainer, "diverged")
        elif self.targets and val <= min(self.targets):
            self._stop(trainer, "reached")
        elif self.prune_after is not None and module.step_idx >= self.prune_after:
            self._stop(trainer, "pruned")  # it crosses the last target after the incumbent, if ever
        return val

    def _stop(self, trainer, status: str) -> None:
        self.status = status
        trainer.should_stop = True

    def state_dict(self) -> dict:
        return {"evals": self.evals, "status": self.status, "initial_loss": self.initial_loss}

    def load_state_dict(self, state: dict) -> None:
        self.evals, self.status, self.initial_loss = list(state["evals"]), state["status"], state["initial_loss"]


def resume_checkpoint(module, evaluation: Evaluation) -> Checkpoint:
    """Everything needed to continue this trial exactly: weights, backend state, progress, RNG."""
    return Checkpoint(model=cpu_state(module.model), backend=module.backend.state_dict(),
                      progress={"host": module.progress_state(), "trial": evaluation.state_dict()},
                      rng=torch.get_rng_state())


def restore(module, evaluation: Evaluation, checkpoint: Checkpoint) -> None:
    """Continue from a resume checkpoint (the model was built with its weights)."""
    module.backend.load_state_dict(checkpoint.backend)
    module.load_progress_state(checkpoint.progress["host"])
    evaluation.load_state_dict(checkpoint.progress["trial"])
    torch.set_rng_state(checkpoint.rng)


class ResumeCheckpoints(L.Callback):
    """After every evaluation of a trial still running, rank 0 saves its resume checkpoint at ``path``."""

    def __init__(self, path: Path, evaluation: Evaluation) -> None:
        self.path, self.evaluation = path, evaluation

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        evaluated = module.step_idx in self.evaluation.grid  # and so evaluated, unless it diverged
        if evaluated and self.evaluation.status == "running" and trainer.global_rank == 0:
            resume_checkpoint(module, self.evaluation).save(self.path)


class RecordWriter(L.Callback):
    """Writes the trial's record on rank 0, inside whichever process ran the fit (spawned DDP workers return
    nothing else to the parent): at the end of the fit, then drops the resume checkpoint; or, when the trial
    raised, a ``failed`` record with what it raised, at which step, and its traceback in the trial's log
    folder (the resume checkpoint stays: a rerun continues from it). Built before the host, so that a trial
    whose backend cannot even be built is recorded too."""

    def __init__(self, trial, data: PreparedData, store: ResultsStore, hw: Hardware) -> None:
        self.trial, self.data, self.store, self.hw = trial, data, store, hw
        self.module, self.evaluation = None, None
        self.started = time.time()  # also tells this attempt's record from an earlier one's
        self.step = 0  # the step being run (1 for the first), or whose evaluation is running
        self.record: dict | None = None

    def attach(self, module, evaluation: Evaluation) -> None:
        self.module, self.evaluation = module, evaluation

    def _write(self, record: dict) -> dict:
        self.record = record
        self.store.write(record)
        return record

    def finish(self, module) -> dict:
        if self.evaluation.status == "running":
            self.evaluation.status = "budget"  # ran its whole budget without reaching the last target
        self._write(make_record(self.trial, module.backend.hp, module, self.evaluation, self.data, self.started,
                                self.hw))
        self.store.checkpoint_path(self.trial.run_id).unlink(missing_ok=True)
        return self.record

    def fail(self, exc: BaseException) -> dict:
        """The ``failed`` record of this attempt: the one written where it raised (this process, or rank 0 of
        spawned ranks, whose writer was this one's copy), else one written now from what is known."""
        if self.record is not None and self.record["run"]["status"] == "failed":
            return self.record
        written, _ = read_record(self.store.path(self.trial.run_id))
        if written is not None and written["run"]["status"] == "failed" and written["run"]["started_at"] == self.started:
            return written
        return self._failed(exc)

    def _failed(self, exc: BaseException) -> dict:
        log = self.store.failure_log(self.trial.run_id)
        atomic_write(log, "".join(traceback.format_exception(exc)))
        failure = {"type": type(exc).__name__, "message": " ".join(str(exc).split()), "step": self.step,
                   "log": str(log.relative_to(self.store.root))}
        module = self.module
        hp = module.backend.hp if module is not None else None
        return self._write(make_record(self.trial, hp, module, self.evaluation, self.data, self.started, self.hw,
                                       failure=failure))

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.step = module.step_idx + 1

    def on_exception(self, trainer, module, exception: BaseException) -> None:
        # Ctrl-C is not a failure: the trial resumes from its checkpoint on the next run.
        if trainer.global_rank == 0 and isinstance(exception, Exception):
            self.module = module
            self._failed(exception)

    def on_fit_end(self, trainer, module) -> None:
        if trainer.global_rank == 0:
            self.finish(module)


class StepProgress(L.Callback):
    """Calls ``on_step(module)`` after every step (a progress bar)."""

    def __init__(self, on_step: Callable) -> None:
        self.on_step = on_step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.on_step(module)
