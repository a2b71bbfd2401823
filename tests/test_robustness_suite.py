"""The robustness suite's plan (benchmark/sweep/robustness.py), driven to its end on generated results: every
backend at the preset's middle K under the grid protocol, coordinate tuning, and WSD from coordinate tuning's
optimum (only the learning rate, around that optimum at half the declared spacing, and the cooldown fraction);
every selected setting rerun on every seed."""

import math
from pathlib import Path

import pytest
from helpers import bench

from benchmark.sweep.estimate import CPU_FAMILY_FACTOR, WSD_CPU_FACTOR
from benchmark.sweep.robustness import COOLDOWNS, ROBUSTNESS_BUDGET, WSD_BUDGET, middle_k, robustness
from benchmark.workload.presets import get_workload
from optimizers import get_backend


def _record(steps: float, targets, reason: str) -> dict:
    return {"steps_to_target": {f"{t:g}": steps for t in targets}, "final_val_loss": 3.0 + steps / 1000,
            "status": "reached", "reason": reason}


def _valley(hp: dict, k: int) -> float:
    """Fewest steps at lr 0.02 under a constant rate and at 0.05 with a cooldown of 0.3 under WSD."""
    best = 0.05 if hp.get("schedule", hp.get("outer_schedule")) == "wsd" else 0.02
    return 10 + 40 * math.log10(hp["lr"] / best) ** 2 + 100 * abs(hp.get("cooldown", 0.2) - 0.3)


def _run(names, preset="cpu", seeds=3, budget=None):
    w, records, batches = get_workload(preset), {}, 0
    while True:
        plan = robustness(w, names, seeds, records, budget, "c", "", None)
        todo = [t for t in plan.trials if t.run_id not in records]
        if not todo:
            return plan, records, batches
        batches += 1
        assert batches < 60, "the plan never ended"
        for t in todo:
            records[t.run_id] = _record(_valley(dict(t.hparams), t.k), w.targets, t.reason)


def test_three_protocols_at_the_middle_k_and_wsd_from_coordinates_optimum():
    plan, _, _ = _run(["adamw", "gn"])
    assert middle_k(get_workload("cpu").ks) == 16 and {t.k for t in plan.trials} == {16}
    assert not plan.waiting
    for name in ("adamw", "gn"):
        grid, walk, wsd = (plan.cells[(16, n)] for n in (name, f"{name} (coordinate)", f"{name} (wsd)"))
        assert {t.protocol for t in grid} == {"grid"} and {t.protocol for t in walk} == {"coordinate"}
        assert {t.protocol for t in wsd} == {"wsd"}
        assert len(walk) <= ROBUSTNESS_BUDGET and len(wsd) <= WSD_BUDGET
        optimum = dict(plan.best[(16, f"{name} (coordinate)")])
        # WSD moves only the learning rate and the cooldown; everything else stays at coordinate tuning's optimum
        for t in wsd:
            hp = dict(t.hparams)
            assert all(hp[k] == v for k, v in get_backend(name).wsd.items()) and 0 < hp["cooldown"] < 1
            assert {k: v for k, v in hp.items() if k not in ("lr", "cooldown", *get_backend(name).wsd)} == \
                {k: v for k, v in optimum.items() if k != "lr"}
        lrs = sorted({dict(t.hparams)["lr"] for t in wsd})
        i = lrs.index(optimum["lr"])  # (b)'s optimum and half the declared spacing on each side (x1.78 for AdamW,
        assert 1.5 < lrs[i + 1] / lrs[i] < 1.9 and 1.5 < lrs[i] / lrs[i - 1] < 1.9  # x1.73 for GN), not all of it
        assert set(COOLDOWNS) <= {dict(t.hparams)["cooldown"] for t in wsd}
        best = dict(plan.best[(16, f"{name} (wsd)")])
        assert best["cooldown"] == 0.3 and best["lr"] > optimum["lr"]  # the WSD optimum, not (b)'s
        for cell in (name, f"{name} (coordinate)", f"{name} (wsd)"):
            protocol = plan.cells[(16, cell)][0].protocol
            reruns = [t for t in plan.seeds if (t.optimizer, t.protocol, t.hparams) == (name, protocol, plan.best[
                (16, cell)])]
            assert sorted(t.seed for t in reruns) == [1, 2], cell


def test_wsd_cells_wait_for_their_coordinate_cell_and_a_backend_without_wsd_gets_a_note(monkeypatch):
    w = get_workload("smoke")
    first = robustness(w, ["adamw", "muon"], 2, {}, None, "c", "", None)
    assert not any(t.protocol == "wsd" for t in first.tuning)
    assert {(1, "adamw (wsd)"), (1, "muon (wsd)")} <= set(first.waiting)
    monkeypatch.setattr(get_backend("muon"), "wsd", {})
    plan, _, _ = _run(["adamw", "muon"], preset="smoke", seeds=2)
    assert (1, "adamw (wsd)") in plan.best and (1, "muon (wsd)") not in plan.cells
    assert any("muon: no warmup-stable-decay schedule" in n for n in plan.notes)


def test_the_budget_flag_sets_coordinate_tunings_budget_and_caps_wsds():
    plan, _, _ = _run(["adamw"], preset="smoke", seeds=1, budget=5)
    assert len(plan.cells[(1, "adamw (coordinate)")]) == 5 and len(plan.cells[(1, "adamw (wsd)")]) <= 5


@pytest.mark.parametrize("args, needle", [
    (["--tuning", "coordinate"], "--tuning applies to iteration-complexity"),
])
def test_the_suite_refuses_a_tuning_flag_in_one_line(tmp_path, args, needle):
    out = bench("run", "--suite", "robustness", "--preset", "smoke", *args, "--results", str(tmp_path / "R"))
    assert out.returncode == 2 and needle in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_shards_that_merge_their_records_walk_to_the_plan_of_one_machine():
    """Three shards taking turns, each running only its share of what the plan asks next from the records merged
    so far (as --shard on one results folder, or shards merged between runs), end where one machine ends: the
    same trials, the same selections and the same seed reruns under every protocol."""
    from benchmark.sweep.plan import in_shard

    whole, whole_records, _ = _run(["adamw", "gn"])
    w, records = get_workload("cpu"), {}
    for turn in range(300):
        plan = robustness(w, ["adamw", "gn"], 3, records, None, "c", "", None)
        todo = [t for t in plan.trials if t.run_id not in records]
        if not todo:
            break
        shard = turn % 3 + 1  # one shard's turn: the others' trials wait for theirs
        records |= {t.run_id: _record(_valley(dict(t.hparams), t.k), w.targets, t.reason)
                    for t in todo if in_shard(t, (shard, 3))}
    assert set(records) == set(whole_records)
    assert plan.best == whole.best and {t.run_id for t in plan.seeds} == {t.run_id for t in whole.seeds}


def test_the_method_page_states_the_suites_figures():
    text = " ".join((Path(__file__).resolve().parents[1] / "docs" / "method.md").read_text().split())
    assert f"the preset's middle K ({middle_k(get_workload('cpu').ks)} at `cpu`)" in text
    assert f"at a constant rate, {ROBUSTNESS_BUDGET} trials a cell" in text
    assert f"the cooldown fraction ({', '.join(map(str, COOLDOWNS))}), at most {WSD_BUDGET} trials a cell" in text
    assert f"A WSD trial costs about {WSD_CPU_FACTOR:g} constant-rate trials" in text
    ratio = CPU_FAMILY_FACTOR["gauss-newton"] / CPU_FAMILY_FACTOR["first-order"]
    assert f"({ratio:.2f} times the seconds per planned pass at `cpu`, K = 16)" in text
