"""The results store (benchmark/store.py): records read back (older schemas upgraded), bad ones skipped
and counted, claims that keep two processes off one trial."""

import json
import os
import time
from pathlib import Path

from benchmark.record import SCHEMA_VERSION
from benchmark.store import ResultsStore, frames


def test_bad_records_are_skipped_and_counted(tmp_path):
    store = ResultsStore(tmp_path)
    store.write({"schema_version": SCHEMA_VERSION, "run": {"run_id": "a", "hparams": {}},
                 "evals": [{"step": 0, "val_loss": 1.0}]})
    (tmp_path / "runs" / "trunc.json").write_text('{"run": {"run_id"')
    (tmp_path / "runs" / "old.json").write_text(json.dumps({"schema_version": 0, "run": {}, "evals": []}))
    records, skipped = store.records()
    assert [r["run"]["run_id"] for r in records] == ["a"]
    assert skipped == {"unreadable": 1, "other schema": 1}
    assert not list(Path(tmp_path / "runs").glob(".*tmp"))


def test_claims_exclude_live_processes_and_take_over_dead_ones(tmp_path):
    store = ResultsStore(tmp_path)
    assert store.claim("t")
    assert not store.claim("t")  # this very process is alive
    (store.work_dir / "t.claim").write_text(f"{os.uname().nodename}:999999999")
    assert store.claim("t")
    store.release("t")
    assert not (store.work_dir / "t.claim").exists()


def test_a_claim_from_another_host_is_live_while_refreshed_and_taken_over_once_stale(tmp_path):
    store = ResultsStore(tmp_path, stale_after=120)
    lock = store.work_dir / "t.claim"
    store.work_dir.mkdir(parents=True)
    lock.write_text("some-other-node:1")
    assert not store.claim("t")  # fresh: its host cannot be asked, so it counts as running
    old = time.time() - 600
    os.utime(lock, (old, old))
    assert store.claim("t")  # not refreshed for 10 minutes: abandoned
    assert lock.read_text().endswith(f":{os.getpid()}")
    os.utime(lock, (old, old))
    with store.heartbeat("t", every=0.05):  # the owner's heartbeat refreshes it
        time.sleep(0.3)
    assert time.time() - lock.stat().st_mtime < 5


def test_schema_1_records_are_read_as_schema_2(tmp_path):
    v1 = {"schema_version": 1, "run": {"run_id": "old", "hparams": {"lr": 0.01, "beta2": 0.95},
                                       "hparam_overrides": {"lr": 0.01}, "lr": 0.01, "steps_to_target": {"5": 3.0}},
          "evals": [{"step": 0, "val_loss": 6.0}], "steps": []}
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "old.json").write_text(json.dumps(v1))
    store = ResultsStore(tmp_path)
    rec = store.read("old")
    assert rec["schema_version"] == SCHEMA_VERSION
    assert rec["run"]["overrides"] == ["lr"] and "lr" not in rec["run"] and "hparam_overrides" not in rec["run"]
    runs, evals = frames(store.records()[0])
    assert runs.loc[0, "hparam_overrides"] == {"lr": 0.01} and runs.loc[0, "lr"] == 0.01
    assert runs.loc[0, "steps_to_5"] == 3.0 and evals.loc[0, "run_id"] == "old"
    assert json.loads((tmp_path / "runs" / "old.json").read_text()) == v1  # never rewritten
