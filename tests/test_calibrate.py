"""``bench calibrate`` (benchmark/sweep/calibrate.py): a real calibration on a tiny workload, its targets checked
against the records it wrote, and the workload taking them under a new version."""

import dataclasses
import math
import statistics

import pytest

from benchmark.results.store import ResultsStore
from benchmark.sweep.calibrate import calibrate, targets_from
from benchmark.workload import targets
from benchmark.workload.presets import PRESETS, get_workload


def test_targets_sit_at_the_worst_median_and_a_quarter_and_half_way_back():
    assert targets_from([4.001, 4.25], 6.25) == [5.25, 4.75, 4.25]
    assert targets_from([4.0], 4.0) == [4.0]  # nothing learned: one target


@pytest.mark.slow
def test_a_calibration_freezes_what_tuned_adamw_reaches(tmp_path, monkeypatch, text_data, smoke_data):
    preset = dataclasses.replace(PRESETS["smoke"], name="calib-test", ks=(1, 2), max_steps=6, eval_every=3,
                                 val_tokens=4096)
    monkeypatch.setitem(PRESETS, "calib-test", preset)
    monkeypatch.setattr(targets, "TARGETS_FILE", tmp_path / "shipped.json")
    entry = calibrate("calib-test", text_data, 2, tmp_path / "R", "cpu", tmp_path / "mine" / "targets.json")
    assert not (tmp_path / "shipped.json").exists()  # the installed package's file is never written

    runs = [r["run"] | {"initial": r["evals"][0]["val_loss"]} for r in ResultsStore(tmp_path / "R").records()[0]]
    assert len(runs) == 2 * 3 + 2  # three learning rates per K, then one more seed of the best
    assert all(r["status"] == "budget" and r["steps_run"] == 6 for r in runs)  # no target stops them
    medians, initials = [], []
    for k in (1, 2):
        tuned = [r for r in runs if r["k"] == k and r["seed"] == 0]
        best = min(tuned, key=lambda r: r["final_val_loss"])
        cell = [r for r in runs if r["k"] == k and r["hparams"]["lr"] == best["hparams"]["lr"]]
        assert sorted(r["seed"] for r in cell) == [0, 1]
        medians.append(statistics.median(r["final_val_loss"] for r in cell))
        initials += [r["initial"] for r in cell]
        assert entry["adamw"][str(k)]["median"] == pytest.approx(medians[-1])
    assert entry["targets"] == targets_from(medians, statistics.median(initials))
    assert entry["targets"][-1] == math.ceil(100 * max(medians)) / 100
    assert entry["corpus_key"] == smoke_data[1].corpus.key()
    assert get_workload("calib-test", entry["corpus_key"]).targets == preset.targets  # not without its file
    calibrated = get_workload("calib-test", entry["corpus_key"], tmp_path / "mine" / "targets.json")
    assert calibrated.targets == tuple(entry["targets"]) and calibrated.version == preset.version + 1
