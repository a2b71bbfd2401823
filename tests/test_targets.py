"""Calibrated targets (benchmark/targets.py) and how a workload takes them (benchmark/workloads.py)."""

import json

import pytest

from benchmark import targets
from benchmark.targets import calibrated_entry, load_targets, write_entry
from benchmark.workloads import PRESETS, get_workload


def test_the_shipped_targets_apply_to_their_corpus_only():
    shipped = load_targets()
    entry = shipped["cpu"]["pydoc-topics"]
    w = get_workload("cpu", "pydoc-topics")
    assert w.targets == tuple(entry["targets"]) and w.version == entry["version"] > PRESETS["cpu"].version
    assert entry["command"] in w.targets_source
    other = get_workload("cpu", "some-other-text")
    assert other.targets == PRESETS["cpu"].targets and other.targets_source == "uncalibrated"
    assert other.key() != w.key()  # different targets, different workload: run ids never mix


def test_an_entry_for_an_older_version_is_ignored_and_writes_keep_other_entries(tmp_path, monkeypatch):
    path = tmp_path / "targets.json"
    monkeypatch.setattr(targets, "TARGETS_FILE", path)
    base = PRESETS["smoke"]
    write_entry("smoke", {"corpus": "a", "targets": [9.0], "version": base.version, "calibrated_at": "x",
                          "command": "c"})
    assert get_workload("smoke", "a").targets == base.targets  # not newer than the code's own version
    write_entry("smoke", {"corpus": "b", "targets": [8.0, 7.0], "version": base.version + 1,
                          "calibrated_at": "2026-01-01", "command": "bench calibrate"})
    assert calibrated_entry("smoke", "a")["targets"] == [9.0]  # still there
    w = get_workload("smoke", "b")
    assert w.targets == (8.0, 7.0) and w.version == base.version + 1
    assert json.loads(path.read_text()).keys() == {"smoke"}
    with pytest.raises(Exception, match="unknown preset 'nope'"):
        get_workload("nope")
