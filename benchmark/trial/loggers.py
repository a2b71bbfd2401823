"""Per-step and per-evaluation metrics to a Lightning logger, beside the records (which stay the source of
every report): ``csv`` (default, ``RESULTS/logs/RUN_ID/metrics.csv``), ``tensorboard`` or ``wandb`` when
installed, or ``none``. A resumed trial logs from where it resumed."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import lightning as L

from benchmark import BenchError

LOGGERS = {"csv": None, "tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "none": None}


def check_logger(name: str) -> None:
    """A one-line error for an unknown logger or one whose package is not installed."""
    if name not in LOGGERS:
        raise BenchError(f"unknown logger {name!r}; valid: {', '.join(LOGGERS)}")
    needs = LOGGERS[name]
    if needs and not any(importlib.util.find_spec(m) for m in needs):
        raise BenchError(f"--logger {name} needs the {needs[0]} package: pip install {needs[0]}")


def make_logger(name: str, folder: Path, run_id: str):
    """The Lightning logger of one trial (False: none)."""
    from lightning.pytorch import loggers

    if name == "csv":
        return loggers.CSVLogger(save_dir=folder, name="", version=run_id)
    if name == "tensorboard":
        return loggers.TensorBoardLogger(save_dir=folder, name="", version=run_id, default_hp_metric=False)
    if name == "wandb":
        return loggers.WandbLogger(project="optbench", name=run_id, save_dir=str(folder))
    return False


class MetricsToLogger(L.Callback):
    """After each step, its numbers from the host's step log (loss, seconds, passes, the backend's
    diagnostics); after each evaluation, the validation loss."""

    def __init__(self, evaluation) -> None:  # built after a resume restored the evaluations so far
        self.evaluation, self.logged_evals = evaluation, len(evaluation.evals)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if not trainer.loggers or not module.step_log:
            return
        row = module.step_log[-1]
        logs = [({f"train/{k}": float(v) for k, v in row.items() if k != "step" and _number(v)}, row["step"])]
        # evaluations since the last step, each at its own step (some are filled in from saved weights)
        logs += [({"val/loss": float(e["val_loss"])}, e["step"]) for e in self.evaluation.evals[self.logged_evals:]
                 if _number(e["val_loss"])]
        self.logged_evals = len(self.evaluation.evals)
        for logger in trainer.loggers:
            for metrics, step in logs:
                logger.log_metrics(metrics, step=step)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
