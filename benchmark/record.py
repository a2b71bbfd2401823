"""The run record: one self-describing JSON document per finished trial (its identity, settings, outcome,
costs, every evaluation and every step, and where and with what it ran). Reports are pure functions of
these records.

Schema 2 stores the hyperparameters once: ``hparams`` holds every resolved value and ``overrides`` names
the ones the trial set (its identity; the tuned ones). Schema 1 records (``hparam_overrides`` and ``lr``
beside ``hparams``) are upgraded when read.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

import torch

from benchmark import __version__
from benchmark.hardware import Hardware
from benchmark.metrics import crossing, steps_to_target
from benchmark.streams import training_tokens
from benchmark.tokens import PreparedData
from optimizers import get_backend
from optimizers.interface import Costs

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
# what reports, merges and the suite's selection read from every record's ``run`` (schema 2 names)
REQUIRED_RUN_FIELDS = ("run_id", "workload", "workload_version", "workload_key", "optimizer", "hparams", "k",
                       "tokens_per_step", "seed", "role", "status", "final_val_loss", "steps_to_target",
                       "code_version", "corpus", "device")


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
        "corpus_key": trial.corpus, "numerics": trial.numerics,
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


def read_record(path: Path) -> tuple[dict | None, str | None]:
    """(the record at ``path`` in the current schema, None) or (None, why it cannot be used): bad bytes,
    bad JSON, another schema, or missing fields. Nothing that a file holds raises."""
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except OSError:
        return None, "unreadable"
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except (json.JSONDecodeError, RecursionError):
        return None, "not JSON"
    if not isinstance(record, dict) or not {"run", "schema_version"} & record.keys():
        return None, "not a run record"  # e.g. a leaderboard.json inside a downloaded artifact
    if record.get("schema_version") not in READABLE_SCHEMAS:
        return None, "other schema"
    run = record.get("run")
    if not isinstance(run, dict) or not isinstance(record.get("evals"), list):
        return None, "missing fields"
    missing = [f for f in REQUIRED_RUN_FIELDS if f not in run]
    if missing or not isinstance(run["hparams"], dict) or not isinstance(run["steps_to_target"], dict):
        return None, "missing fields"
    if not all(isinstance(e, dict) and "step" in e and "val_loss" in e for e in record["evals"]):
        return None, "missing fields"
    return upgrade(record), None


def upgrade(record: dict) -> dict:
    """A readable record in the current schema (older schemas are converted in memory, never rewritten)."""
    if record.get("schema_version") == 1:
        run = dict(record["run"])
        run["overrides"] = sorted(run.pop("hparam_overrides", None) or {})
        run.pop("lr", None)
        record = {**record, "schema_version": SCHEMA_VERSION, "run": run}
    return record


def overrides(run: dict) -> dict:
    """The hyperparameters the trial set, with their values: its setting."""
    return {k: run["hparams"][k] for k in run.get("overrides") or ()}
