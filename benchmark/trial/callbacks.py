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
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch

from benchmark.trial.checkpoint import Checkpoint, cpu_state


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
    the budget ran out). With ``stop_at_target=False`` it runs on past its last target (the constant phase of
    a trial whose steps-to-target its cooldown branches measure)."""

    def __init__(self, grid: list[int], targets: tuple[float, ...], val_batches: list[torch.Tensor],
                 divergence_factor: float, prune_after: float | None = None, fine=(), stop_at_target: bool = True) -> None:
        self.grid, self.targets, self.val_batches = set(grid), tuple(targets), val_batches
        self.stop_at_target = stop_at_target
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
        elif self.stop_at_target and self.targets and val <= min(self.targets):
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


class StepProgress(L.Callback):
    """Calls ``on_step(module)`` after every step (a progress bar)."""

    def __init__(self, on_step: Callable) -> None:
        self.on_step = on_step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.on_step(module)
