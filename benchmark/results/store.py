"""Results store: one self-describing JSON file per finished run under ``<root>/runs/``.

Each file is written to a temporary name, fsynced and renamed into place, so a reader never sees half a
record and a killed writer leaves nothing behind. One file per run also means that shards, machines and
concurrent processes never interleave a record, and merging is a union of files. A claim file (created
with O_EXCL) keeps two processes off the same trial. Its owner refreshes its modification time while the
trial runs; a claim is taken over when its process is gone (same host) or when it has not been refreshed
for ``stale_after`` seconds (another host, whose processes cannot be seen from here).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from benchmark import BenchError
from benchmark.files import atomic_write_json
from benchmark.results.record import read_record

HEARTBEAT_SECONDS = 60  # how often a running trial refreshes its claim
STALE_AFTER_SECONDS = 900  # a claim from another host not refreshed for this long is abandoned
HALF_WRITTEN_CLAIM_SECONDS = 60  # a claim still without its owner after this long lost its writer between create and write


class ResultsStore:
    def __init__(self, root: str | os.PathLike, stale_after: float = STALE_AFTER_SECONDS) -> None:
        self.root = Path(root)
        for folder in (self.root, *self.root.parents):
            if folder.exists() and not folder.is_dir():
                raise BenchError(f"results folder {str(self.root)!r}: {str(folder)!r} is a file, not a folder")
            if folder.exists():
                break
        self.stale_after = stale_after
        self.runs_dir = self.root / "runs"
        self.work_dir = self.root / "work"  # claims and in-progress checkpoints

    @property
    def targets_path(self) -> Path:
        """Targets calibrated by ``bench run`` for corpora that ship none (see benchmark.targets)."""
        return self.root / "targets.json"

    @property
    def calibration_dir(self) -> Path:
        """The records of those calibrations (a results folder of their own, kept out of reports)."""
        return self.root / "calibration"

    def path(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}.json"

    def checkpoint_path(self, run_id: str) -> Path:
        """Where a running trial keeps its resume checkpoint."""
        return self.work_dir / f"{run_id}.ckpt"

    @property
    def logs_dir(self) -> Path:
        """Per-trial logs: the metrics logger's files, the traceback of a trial that raised."""
        return self.root / "logs"

    def failure_log(self, run_id: str) -> Path:
        """Where a trial that raised keeps its traceback."""
        return self.logs_dir / run_id / "failure.txt"

    def has(self, run_id: str) -> bool:
        """The run is done: a readable record of it exists that is not a failure (a failed trial, or a damaged
        file in its place, is run again, and its record replaced)."""
        if not self.path(run_id).exists():
            return False
        record, _ = read_record(self.path(run_id))
        return record is not None and not failed(record["run"])

    def write(self, record: dict) -> None:
        atomic_write_json(self.path(record["run"]["run_id"]), record)

    def read(self, run_id: str) -> dict:
        record, why = read_record(self.path(run_id))
        if record is None:
            raise BenchError(f"record {str(self.path(run_id))!r} cannot be read: {why}")
        return record

    # ------------------------------------------------------------------------------------ claims

    def _claim_path(self, run_id: str) -> Path:
        return self.work_dir / f"{run_id}.claim"

    def claim(self, run_id: str) -> bool:
        """True if this process now owns the trial; False if a live process does."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        lock = self._claim_path(run_id)
        me = f"{socket.gethostname()}:{os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if self._abandoned(lock):
                    lock.unlink(missing_ok=True)  # take it over
                    continue
                return False
            with os.fdopen(fd, "w") as f:
                f.write(me)
            return True
        return False

    def _abandoned(self, lock: Path) -> bool:
        try:
            owner, age = lock.read_text().strip(), time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return True  # released meanwhile
        host, _, pid = owner.rpartition(":")
        if not owner or not pid.isdigit():
            return age > HALF_WRITTEN_CLAIM_SECONDS
        if host == socket.gethostname():
            return not _pid_alive(int(pid))
        return age > self.stale_after

    @contextmanager
    def heartbeat(self, run_id: str, every: float = HEARTBEAT_SECONDS):
        """While the block runs, refresh the claim every ``every`` seconds so other hosts see it is live."""
        stop = threading.Event()
        lock = self._claim_path(run_id)

        def beat() -> None:
            while not stop.wait(every):
                try:
                    os.utime(lock)
                except FileNotFoundError:
                    return

        thread = threading.Thread(target=beat, name=f"claim-{run_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def release(self, run_id: str) -> None:
        self._claim_path(run_id).unlink(missing_ok=True)

    # ------------------------------------------------------------------------------------ reading

    def records(self) -> tuple[list[dict], dict[str, int]]:
        """Every readable record, and counts of what was skipped and why."""
        skipped: dict[str, int] = {}
        out = []
        for path in sorted(self.runs_dir.glob("*.json")) if self.runs_dir.exists() else []:
            record, why = read_record(path)
            if record is None:
                skipped[why] = skipped.get(why, 0) + 1
            else:
                out.append(record)
        return out, skipped


def failed(run: dict) -> bool:
    """The trial raised: its record says what, but it is no result, and the next run retries it."""
    return run.get("status") == "failed"


def skipped_line(skipped: dict[str, int]) -> str:
    """One line that says how many record files were skipped and why."""
    total = sum(skipped.values())
    return (f"skipped {total} record file{'s' if total != 1 else ''} that cannot be used: "
            + ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True
