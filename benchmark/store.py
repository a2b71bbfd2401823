"""Results store: one self-describing JSON file per finished run under ``<root>/runs/``.

Each file is written to a temporary name, fsynced and renamed into place, so a reader never sees half a
record and a killed writer leaves nothing behind. One file per run also means that shards, machines and
concurrent processes never interleave a record, and merging is a union of files. A claim file (created
with O_EXCL) keeps two processes off the same trial; a claim whose process is gone is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from pathlib import Path

import pandas as pd

SCHEMA_VERSION = 1


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ResultsStore:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.work_dir = self.root / "work"  # claims and in-progress checkpoints

    def path(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}.json"

    def has(self, run_id: str) -> bool:
        return self.path(run_id).exists()

    def write(self, record: dict) -> None:
        record = {"schema_version": SCHEMA_VERSION, **record}
        write_json_atomic(self.path(record["run"]["run_id"]), record)

    # ------------------------------------------------------------------------------------ claims

    def claim(self, run_id: str) -> bool:
        """True if this process now owns the trial; False if a live process does."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        lock = self.work_dir / f"{run_id}.claim"
        me = f"{socket.gethostname()}:{os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = lock.read_text().strip() if lock.exists() else ""
                if owner and not _alive(owner):
                    lock.unlink(missing_ok=True)  # its process is gone: take it over
                    continue
                return False
            with os.fdopen(fd, "w") as f:
                f.write(me)
            return True
        return False

    def release(self, run_id: str) -> None:
        (self.work_dir / f"{run_id}.claim").unlink(missing_ok=True)

    # ------------------------------------------------------------------------------------ reading

    def records(self) -> tuple[list[dict], dict[str, int]]:
        """Every readable record, and counts of what was skipped and why."""
        skipped: dict[str, int] = {}
        out = []
        for path in sorted(self.runs_dir.glob("*.json")) if self.runs_dir.exists() else []:
            try:
                rec = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                skipped["unreadable"] = skipped.get("unreadable", 0) + 1
                continue
            if not isinstance(rec, dict) or rec.get("schema_version") != SCHEMA_VERSION:
                skipped["other schema"] = skipped.get("other schema", 0) + 1
                continue
            if not {"run", "evals"} <= rec.keys() or "run_id" not in rec["run"]:
                skipped["missing fields"] = skipped.get("missing fields", 0) + 1
                continue
            out.append(rec)
        return out, skipped

    def load(self, warn: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(runs, evals) as long-format DataFrames."""
        records, skipped = self.records()
        if warn and skipped:
            warnings.warn(
                "skipped records: " + ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())), stacklevel=2
            )
        return frames(records)


def frames(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs, evals = [], []
    for rec in records:
        run = dict(rec["run"])
        for target, steps in (run.pop("steps_to_target", None) or {}).items():
            run[f"steps_to_{target}"] = steps
        runs.append(run)
        evals.extend({"run_id": run["run_id"], **e} for e in rec["evals"])
    return pd.DataFrame(runs), pd.DataFrame(evals)


def _alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # cannot tell for another machine: assume alive
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
