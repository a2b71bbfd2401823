"""Calibrated targets (benchmark/workload/targets.py) and how a workload takes them (benchmark/workload/presets.py): keyed
by the corpus' content, never by its name alone."""

import json

import pytest

from benchmark import BenchError
from benchmark.workload import targets
from benchmark.workload.presets import PRESETS, get_workload
from benchmark.workload.targets import calibrated_entry, load_targets, write_entry


def _entry(corpus_key: str, version: int, values) -> dict:
    return {"corpus": corpus_key.split(":")[0], "corpus_key": corpus_key, "targets": list(values),
            "version": version, "calibrated_at": "2026-11-28", "command": "bench calibrate"}


def test_the_shipped_targets_apply_to_their_corpus_only():
    for preset, by_corpus in load_targets().items():
        for name, entry in by_corpus.items():
            w = get_workload(preset, entry["corpus_key"])
            assert w.targets == tuple(entry["targets"]) and w.version == entry["version"] > PRESETS[preset].version
            assert entry["corpus_key"].startswith(f"{name}:") and entry["command"] in w.targets_source
            other = get_workload(preset, f"{name}:0000000000")  # same name, other content
            assert other.targets == PRESETS[preset].targets and other.targets_source == "uncalibrated"
            assert other.key() != w.key()  # different targets, different workload: run ids never mix


def test_entries_match_the_fingerprint_and_a_newer_version_and_local_ones_follow_shipped_ones(tmp_path,
                                                                                           monkeypatch):
    shipped, local = tmp_path / "shipped.json", tmp_path / "local.json"
    monkeypatch.setattr(targets, "TARGETS_FILE", shipped)
    base = PRESETS["smoke"]
    write_entry("smoke", _entry("a:1111111111", base.version, [9.0]))
    assert get_workload("smoke", "a:1111111111").targets == base.targets  # not newer than the code's own
    write_entry("smoke", _entry("b:2222222222", base.version + 1, [8.0, 7.0]))
    assert calibrated_entry("smoke", "a:1111111111")["targets"] == [9.0]  # still there
    assert calibrated_entry("smoke", "b:3333333333") is None
    w = get_workload("smoke", "b:2222222222")
    assert w.targets == (8.0, 7.0) and w.version == base.version + 1
    write_entry("smoke", _entry("c:4444444444", base.version + 1, [6.0]), local)
    assert get_workload("smoke", "c:4444444444").targets == base.targets
    assert get_workload("smoke", "c:4444444444", local).targets == (6.0,)
    assert json.loads(shipped.read_text()).keys() == {"smoke"}
    with pytest.raises(BenchError, match="unknown preset 'nope'"):
        get_workload("nope")
