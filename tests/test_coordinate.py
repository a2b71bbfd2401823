"""Coordinate tuning (benchmark/sweep/coordinate.py), driven through the suite's plan on generated results: one
hyperparameter at a time from the defaults, extensions at half the grid's spacing inside each valid range, the
same trial budget for every backend, Phase II at the middle K re-sweeping only what moved."""

import math

import pytest

from benchmark.sweep.plan import iteration_complexity
from benchmark.sweep.settings import Settings
from benchmark.workload.presets import get_workload
from optimizers import get_backend
from optimizers.hyper import problem


def _record(steps: float, targets) -> dict:
    tight = min(targets)
    return {"steps_to_target": {f"{t:g}": steps if t == tight else steps / 2 for t in targets},
            "final_val_loss": 3.0 + steps / 1000, "status": "reached", "reason": ""}


def _tune(name: str, preset: str, objective, budget: int = 16, settings=None):
    """Run the plan to its end on results from ``objective(hparams, k)``: the plan and every record."""
    w, records = get_workload(preset), {}
    for _ in range(100):
        plan = iteration_complexity(w, [name], 2, records, budget, corpus="c", tuning="coordinate",
                                    settings={name: settings} if settings else None)
        todo = [t for t in plan.tuning if t.run_id not in records]
        if not todo:
            return plan, records
        for t in todo:
            records[t.run_id] = _record(objective(dict(t.hparams), t.k), w.targets)
    raise AssertionError("the walk never ended")


def _adamw_valley(hp: dict, k: int) -> float:
    """Fewest steps at lr 0.08 (beyond the declared grid's top), beta2 0.98, weight decay 0.01, warmup 0.05."""
    return (10 + 40 * (math.log10(hp["lr"] / 0.08)) ** 2 + 2000 * (hp["beta2"] - 0.98) ** 2
            + 100 * abs(hp["weight_decay"] - 0.01) + 50 * abs(hp["warmup"] - 0.05))


def test_a_walk_finds_an_optimum_beyond_the_grid_at_half_its_spacing_within_the_budget():
    plan, records = _tune("adamw", "smoke", _adamw_valley)
    for k in (1, 4):
        cell = plan.cells[(k, "adamw")]
        assert len(cell) <= 16 and all(t.protocol == "coordinate" for t in cell)
        best = dict(plan.best[(k, "adamw")])
        assert best["beta2"] == 0.98 and best["weight_decay"] == 0.01 and best["warmup"] == 0.05
        lrs = sorted({dict(t.hparams)["lr"] for t in cell})
        # the grid 0.003, 0.01, 0.03 (x3.16 a step), then half steps (x1.78) past its top: 0.0533, 0.0948
        assert {0.003, 0.01, 0.03, 0.0533, 0.0948} <= set(lrs) and best["lr"] == 0.0948
        assert all(problem(get_backend("adamw").Hyper, key, v) is None for t in cell for key, v in t.hparams)
        seeds = [t for t in plan.seeds if t.k == k]
        assert len(seeds) == 1 and seeds[0].hparams == plan.best[(k, "adamw")]  # the walk's best, rerun


def test_every_backend_gets_the_same_budget_and_a_cell_that_spends_it_ends():
    def everywhere_better(hp, k):  # every extension improves: only the budget ends the walk
        return 100 - sum(math.log1p(abs(float(v))) for v in hp.values() if not isinstance(v, (str, bool)))

    for name in ("adamw", "muon", "soap", "gn"):
        plan, _ = _tune(name, "smoke", everywhere_better, budget=9)
        assert all(len(plan.cells[(k, name)]) == 9 for k in (1, 4)), name
        assert {(k, name) for k in (1, 4)} <= plan.best.keys()


def test_the_first_pass_sweeps_every_declared_grid_before_any_extension():
    """At the robustness suite's budget, every built-in backend's walk tries every value of every declared grid,
    though each extension improves (a walk that extended its first key first ran out before the last, SOAP's
    preconditioning frequency)."""
    from benchmark.sweep.robustness import ROBUSTNESS_BUDGET

    def everywhere_better(hp, k):
        return 100 - sum(math.log1p(abs(float(v))) for v in hp.values() if not isinstance(v, (str, bool)))

    for name in ("adamw", "muon", "soap", "gn", "gn-prox-linear", "layerwise-gn"):
        plan, _ = _tune(name, "smoke", everywhere_better, budget=ROBUSTNESS_BUDGET)
        tried = {(key, v) for t in plan.cells[(1, name)] for key, v in t.hparams}
        space = get_backend(name).search_space
        assert {(key, v) for key, grid in space.items() for v in grid} <= tried, name


def test_phase_two_sweeps_the_learning_rate_and_what_moved_between_the_end_batch_sizes():
    def lr_moves_with_k(hp, k):
        return _adamw_valley({**hp, "lr": hp["lr"] * 0.08 / (0.01 * (k / 4) ** 0.5)}, k)

    plan, _ = _tune("adamw", "cpu", lr_moves_with_k, budget=16)
    ends = {k: dict(plan.best[(k, "adamw")]) for k in (4, 32)}
    assert ends[4]["lr"] != ends[32]["lr"]
    middle = plan.cells[(16, "adamw")]
    varied = {key for key in ends[4] if len({dict(t.hparams)[key] for t in middle}) > 1}
    assert varied == {"lr"}  # beta2, weight decay and warmup agreed at K 4 and 32: not swept again
    nearest = ends[32]  # 16 is nearer 32 than 4 on a log scale
    assert all(dict(t.hparams)[key] == nearest[key] for t in middle for key in ("beta2", "weight_decay", "warmup"))


def test_a_fixed_setting_stays_and_a_given_grid_replaces_the_declared_one():
    plan, _ = _tune("adamw", "smoke", _adamw_valley,
                    settings=Settings(fixed={"warmup": 0.1}, grid={"beta2": [0.9, 0.99]}))
    cell = plan.cells[(1, "adamw")]
    assert {dict(t.hparams)["warmup"] for t in cell} == {0.1} and all(t.fixed == ("warmup",) for t in cell)
    betas = {dict(t.hparams)["beta2"] for t in cell}
    assert {0.9, 0.99} <= betas and 0.98 not in betas  # the declared grid's 0.98 is not searched


@pytest.mark.parametrize("name", ["adamw", "muon", "soap", "gn", "gn-prox-linear", "layerwise-gn"])
def test_the_walk_starts_from_the_backends_defaults(name):
    w = get_workload("smoke")
    plan = iteration_complexity(w, [name], 1, {}, 16, corpus="c", tuning="coordinate")
    defaults = get_backend(name).Hyper()
    first = list(get_backend(name).search_space)[0]
    for t in plan.tuning:
        assert all(v == getattr(defaults, key) for key, v in t.hparams if key != first)


@pytest.mark.slow
def test_a_coordinate_sweep_runs_its_walk_reruns_its_best_and_reports_within_its_protocol(tmp_path, text_data):
    from benchmark.report.render import render
    from benchmark.results.store import ResultsStore
    from benchmark.sweep.suite import run_suite
    from benchmark.trial.hardware import Hardware

    run_suite("iteration-complexity", "smoke", "adamw,muon", 2, text_data, tmp_path / "R", Hardware("cpu"),
              tune_budget=4, tuning="coordinate", workload_items=["max_steps=12", "ks=1"])  # one K: Phase I
    runs = [r["run"] for r in ResultsStore(tmp_path / "R").records()[0]]
    assert {r["protocol"] for r in runs} == {"coordinate"} and {r["variant"] for r in runs} == {"adamw", "muon"}
    for k in (1,):
        for name in ("adamw", "muon"):
            tune = [r for r in runs if r["k"] == k and r["optimizer"] == name and r["role"] == "tune"]
            (seed,) = [r for r in runs if r["k"] == k and r["optimizer"] == name and r["role"] == "seed"]
            assert len(tune) == 4 and all(r["reason"].startswith("coordinate pass 1: ") for r in tune)
            assert {k: seed["hparams"][k] for k in seed["overrides"]} in [
                {k: r["hparams"][k] for k in r["overrides"]} for r in tune]  # the rerun is one of the walk's points
    render(tmp_path / "R", tmp_path / "O")
    text = (tmp_path / "O" / "leaderboard.md").read_text()
    assert "· coordinate: steps to validation loss" in text and "| 1 | 512 | muon |" in text
    assert "vs AdamW" in text  # within the protocol, coordinate-tuned AdamW is the baseline
