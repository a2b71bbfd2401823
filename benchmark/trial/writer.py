"""The run record as a trial writes it: ``make_record`` (identity, settings, outcome, costs, every evaluation
and step, and where and with what it ran) and ``RecordWriter``, the callback that writes it on rank 0 when the
fit ends, or as a ``failed`` record when the trial raises. Reading records is ``benchmark.results.record``."""

from __future__ import annotations

import json
import os
import platform
import time
import traceback
from dataclasses import asdict

import lightning as L
import torch

from benchmark.data.streams import training_tokens
from benchmark.data.tokens import PreparedData
from benchmark.files import atomic_write
from benchmark.results.curves import crossing, steps_to_target
from benchmark.results.record import SCHEMA_VERSION, code_version, read_record
from benchmark.results.store import ResultsStore
from benchmark.trial.callbacks import Evaluation
from benchmark.trial.hardware import Hardware
from optimizers import get_backend
from optimizers.interface import Costs


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def environment(device: torch.device) -> dict:
    import lightning as L  # here, not at the top: readers of records (reports, merges) never need it

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    count = torch.cuda.device_count() if device.type == "cuda" else os.cpu_count()
    return {
        "code_version": code_version(),
        "python": platform.python_version(),
        "libraries": {"torch": torch.__version__, "lightning": L.__version__, "datasets": _version("datasets"),
                      "tokenizers": _version("tokenizers"), "numpy": _version("numpy")},
        "device": {"type": device.type, "name": name, "count": count},
        "host": platform.node(),
    }


def make_record(trial, hp, module, evaluation, data: PreparedData, started: float, hw: Hardware,
                failure: dict | None = None) -> dict:
    """The record of ``trial`` as ``module`` (the host) and ``evaluation`` (its callback) leave it. A trial
    that raised has status ``failed`` and ``failure`` (what it raised, at which step, where its traceback
    is); ``module`` and ``evaluation`` are None when it raised before its host was built."""
    w = trial.workload
    evals = evaluation.evals if evaluation is not None else []
    steps = [e["step"] for e in evals]
    losses = [e["val_loss"] for e in evals]
    costs = module.costs if module is not None else None
    run = {
        "run_id": trial.run_id, "suite": trial.suite, "role": trial.role, "reason": trial.reason,
        "prune_after": trial.prune_after, "cell_trials": list(trial.cell_trials),
        "workload": w.name, "workload_version": w.version, "workload_key": w.key(),
        "corpus_key": trial.corpus, "numerics": trial.numerics, "protocol": trial.protocol,
        "optimizer": trial.optimizer, "variant": trial.label(), "fixed": list(trial.fixed),
        "optimizer_family": get_backend(trial.optimizer).family,
        "hparams": asdict(hp) if hp is not None else dict(trial.hparams),
        "overrides": sorted(k for k, _ in trial.hparams),
        "k": trial.k, "tokens_per_step": w.tokens_per_step(trial.k), "seed": trial.seed,
        "status": "failed" if failure is not None else evaluation.status,
        "steps_run": module.step_idx if module is not None else 0,
        "final_val_loss": losses[-1] if losses else None,
        "best_val_loss": min(losses) if losses else None,
        # A diverged run keeps the targets it reached before diverging; the others are censored.
        "steps_to_target": {f"{t:g}": steps_to_target(steps, losses, t) for t in w.targets},
        # the two evaluations around each crossing are this many steps apart (None: not reached)
        "steps_to_target_bracket": {f"{t:g}": (crossing(steps, losses, t) or (None, None))[1] for t in w.targets},
        "costs": (costs or Costs()).as_dict(),
        # single epoch: the shared warm start's tokens, then the trial's own (line-search draws included)
        "tokens_read": w.warm_start_sequences() * w.seq_len + (costs.tokens if costs is not None else 0),
        "tokens_available": training_tokens(data, w.seq_len),
        "train_seconds": module.train_seconds if module is not None else 0.0,
        "seconds_per_step": module.train_seconds / max(1, module.step_idx) if module is not None else None,
        "peak_memory_mib": max((e["peak_memory_mib"] for e in evals), default=None),
        "started_at": started, "finished_at": time.time(),
        "workload_config": w.to_dict(), "model_config": w.model_config().to_dict(),
        "num_parameters": module.model.num_parameters() if module is not None else None,
        "hardware": asdict(hw) | {"compiled": module is not None and module.compiled},
        "corpus": data.describe(),
        **environment(module.run_device if module is not None else torch.device("cpu")),
    }
    if failure is not None:
        run["failure"] = failure
    record = {"schema_version": SCHEMA_VERSION, "run": run, "evals": evals,
              "steps": module.step_log if module is not None else []}
    return json.loads(json.dumps(record, default=str))  # as a reader will see it (tuples become lists)


class RecordWriter(L.Callback):
    """Writes the trial's record on rank 0, inside whichever process ran the fit (spawned DDP workers return
    nothing else to the parent): at the end of the fit (of a WSD trial: after its cooldown branches, with the
    run fields they decide in ``outcome``), then drops the resume checkpoint; or, when the trial
    raised, a ``failed`` record with what it raised, at which step, and its traceback in the trial's log
    folder (the resume checkpoint stays: a rerun continues from it). Built before the host, so that a trial
    whose backend cannot even be built is recorded too."""

    def __init__(self, trial, data: PreparedData, store: ResultsStore, hw: Hardware) -> None:
        self.trial, self.data, self.store, self.hw = trial, data, store, hw
        self.module, self.evaluation = None, None
        self.started = time.time()  # also tells this attempt's record from an earlier one's
        self.step = 0  # the step being run (1 for the first), or whose evaluation is running
        self.record: dict | None = None
        self.deferred = False  # the fit is one phase of the trial (WSD's constant phase): its end writes nothing
        self.outcome: dict = {}  # run fields that the trial's cooldown branches decide, over the fit's

    def attach(self, module, evaluation: Evaluation) -> None:
        self.module, self.evaluation = module, evaluation

    def _write(self, record: dict) -> dict:
        self.record = record
        self.store.write(record)
        return record

    def finish(self, module) -> dict:
        if self.evaluation.status == "running":
            self.evaluation.status = "budget"  # ran its whole budget without reaching the last target
        record = make_record(self.trial, module.backend.hp, module, self.evaluation, self.data, self.started, self.hw)
        record["run"].update(json.loads(json.dumps(self.outcome)))
        self._write(record)
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
        if trainer.global_rank == 0 and not self.deferred:
            self.finish(module)
