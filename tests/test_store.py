"""The results store (benchmark/results/store.py): records read back (older schemas upgraded), bad ones skipped
and counted, claims that keep two processes off one trial."""

import json
import os
import time
from pathlib import Path

import pytest
from helpers import as_schema_1, synthetic_record

from benchmark import BenchError
from benchmark.report.frames import run_frames
from benchmark.results.record import SCHEMA_VERSION
from benchmark.results.store import ResultsStore, skipped_line


def test_bad_records_are_skipped_and_counted(tmp_path):
    store = ResultsStore(tmp_path)
    store.write(synthetic_record("adamw", 1, 0))
    good = synthetic_record("muon", 1, 0)
    runs = tmp_path / "runs"
    (runs / "trunc.json").write_text('{"run": {"run_id"')
    (runs / "bytes.json").write_bytes(bytes(range(256)))
    (runs / "old.json").write_text(json.dumps({"schema_version": 0, "run": {}, "evals": []}))
    del good["run"]["status"]
    (runs / "partial.json").write_text(json.dumps(good))
    (runs / "board.json").write_text(json.dumps({"schema": "optbench-leaderboard", "entries": []}))
    records, skipped = store.records()
    assert [r["run"]["optimizer"] for r in records] == ["adamw"]
    assert skipped == {"not JSON": 1, "not UTF-8": 1, "other schema": 1, "missing fields": 1, "not a run record": 1}
    assert skipped_line(skipped) == ("skipped 5 record files that cannot be used: 1 missing fields, 1 not JSON, "
                                     "1 not UTF-8, 1 not a run record, 1 other schema")
    assert not list(Path(tmp_path / "runs").glob(".*tmp"))


def test_a_damaged_record_in_a_trials_place_counts_as_not_run(tmp_path):
    store = ResultsStore(tmp_path)
    rec = synthetic_record("adamw", 1, 0)
    run_id = rec["run"]["run_id"]
    store.write(rec)
    assert store.has(run_id) and store.read(run_id)["run"]["status"] == rec["run"]["status"]
    store.path(run_id).write_bytes(store.path(run_id).read_bytes()[:100])  # cut short: its trial runs again
    assert not store.has(run_id)
    with pytest.raises(BenchError, match="cannot be read: not JSON"):
        store.read(run_id)


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
    v1 = as_schema_1(synthetic_record("adamw", 1, 0, 0.01, targets=(5.0,), start=6.0, floor=4.0, rate=1.0))
    v1["run"]["run_id"] = "old"
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "old.json").write_text(json.dumps(v1))
    store = ResultsStore(tmp_path)
    rec = store.read("old")
    assert rec["schema_version"] == SCHEMA_VERSION
    assert rec["run"]["overrides"] == ["lr"] and "lr" not in rec["run"] and "hparam_overrides" not in rec["run"]
    runs, evals = run_frames(store.records()[0])
    assert runs.loc[0, "setting"] == {"lr": 0.01} and runs.loc[0, "lr"] == 0.01
    assert runs.loc[0, "steps_to_target"] == v1["run"]["steps_to_target"]  # stored fields under stored names
    assert (runs.loc[0, "optimizer"], runs.loc[0, "label"], runs.loc[0, "setup"]) == ("adamw", "adamw", "cpu v7 · python-stdlib")
    assert runs.loc[0, "steps_to_5"] == v1["run"]["steps_to_target"]["5"] and evals.loc[0, "run_id"] == "old"
    assert json.loads((tmp_path / "runs" / "old.json").read_text()) == v1  # never rewritten
