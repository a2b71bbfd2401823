"""The run record: one self-describing JSON document per finished trial (its identity, settings, outcome,
costs, every evaluation and every step, and where and with what it ran). Reports are pure functions of
these records.

Schema 2 stores the hyperparameters once: ``hparams`` holds every resolved value and ``overrides`` names
the ones the trial set (its identity; the tuned ones). Schema 1 records (``hparam_overrides`` and ``lr``
beside ``hparams``) are upgraded when read.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from benchmark import __version__
from benchmark.hashing import content_hash

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


GRID = "grid"  # the default tuning protocol: its trials keep the run ids they had before protocols were named


def run_id(workload: str, workload_key: str, corpus: str, optimizer: str, hparams, k: int, seed: int,
           numerics: str = "", protocol: str = GRID) -> str:
    """The content hash that names a run: its workload definition, corpus, optimizer, settings, K and seed, and,
    where they are not the defaults, its numerics and tuning protocol. ``results.validate`` recomputes it."""
    parts = [workload_key, corpus, optimizer, [list(p) for p in hparams], k, seed]
    parts += [numerics] if numerics else []
    parts += [protocol] if protocol != GRID else []
    return f"{workload}-{optimizer}-k{k}-s{seed}-{content_hash(parts, length=10)}"
