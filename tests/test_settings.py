"""Settings from the command line (benchmark/sweep/settings.py): typed against each backend's hyperparameters,
planned like the built-in grid, recorded and reported as a variant of their own."""

import json

import pytest

from benchmark import BenchError
from benchmark.report.frames import run_frames
from benchmark.sweep.plan import extension, iteration_complexity, tuning_grid
from benchmark.sweep.settings import Settings, parse_settings
from benchmark.trial.identity import Trial, variant
from benchmark.workload.presets import get_workload
from tests.helpers import bench, synthetic_record


def test_values_take_the_type_of_the_field_they_set():
    s = parse_settings(["gn.ls_rule=first_worse,gn.ls_range=3", "gn.warm_start=false"],
                       ["gn.lr=0.01,0.1", "muon.momentum=0.9,0.95"], ["gn", "muon"])
    assert s["gn"].fixed == {"ls_rule": "first_worse", "ls_range": 3, "warm_start": False}
    assert s["gn"].grid == {"lr": [0.01, 0.1]} and s["muon"].grid == {"momentum": [0.9, 0.95]}
    assert isinstance(s["gn"].fixed["ls_range"], int) and isinstance(s["gn"].grid["lr"][0], float)
    assert parse_settings([], [], ["adamw"]) == {}


@pytest.mark.parametrize(("sets", "grids", "needle"), [
    (["adamw.lrr=0.1"], [], "adamw has no hyperparameter 'lrr'; valid: grad_clip, "),
    (["adamw.lr=fast"], [], "adamw.lr must be a float, got 'fast'"),
    (["gn.ls_range=2.5"], [], "gn.ls_range must be an int, got '2.5'"),
    (["gn.warm_start=maybe"], [], "gn.warm_start must be true or false"),
    (["gn.ls_rule=best"], [], "gn.ls_rule='best' is not one of: all, first_worse"),
    ([], ["gn.inner_optimizer=muon,lion"], "gn.inner_optimizer='lion' is not one of: muon, adamw, sgd"),
    (["adamw.lr"], [], "--set expects optimizer.key=value, got 'adamw.lr'"),
    (["lion.lr=1"], [], "unknown optimizer 'lion'"),
    (["muon.lr=0.1"], [], "--set/--grid name muon, which this run does not include"),
    (["adamw.lr=0.1"], ["adamw.lr=0.1,0.2"], "adamw.lr is both fixed by --set and searched by --grid"),
    ([], ["adamw.lr=0.1,0.1"], "a value is given twice"),
    ([], ["adamw.beta2=0.9,1.5"], "adamw.beta2=1.5 is outside its valid range [0, 1)"),
    (["muon.momentum=-0.5"], [], "muon.momentum=-0.5 is outside its valid range [0, 1)"),
])
def test_a_bad_setting_is_refused_with_the_reason(sets, grids, needle):
    with pytest.raises(BenchError) as err:
        parse_settings(sets, grids, ["adamw", "gn"])
    assert needle in str(err.value) and "\n" not in str(err.value)


def _extend_while_the_top_is_best(name: str, grid: dict, fixed: dict):
    """Extensions of a cell whose best is always its largest value of the one searched key, until none."""
    w = get_workload("smoke")
    s = Settings(fixed=fixed, grid=grid)
    (key,) = grid
    cell = [Trial("iteration-complexity", w, name, hp, 1, 0, fixed=tuple(fixed)) for hp in tuning_grid(name, 3, s)]
    target = f"{w.targets[-1]:g}"
    while True:
        order = sorted(dict(t.hparams)[key] for t in cell)
        done = [{"steps_to_target": {target: 100 - order.index(dict(t.hparams)[key])}, "final_val_loss": 4.0,
                 "status": "reached"} for t in cell]
        more = extension(name, cell, done, w.targets, s)
        if more is None or more[0] is None:
            return [dict(t.hparams)[key] for t in cell], more
        cell.append(Trial("iteration-complexity", w, name, more[0], 1, 0, fixed=tuple(fixed)))


def test_extensions_stay_inside_the_valid_range_and_say_so_at_its_edge():
    values, last = _extend_while_the_top_is_best("adamw", {"beta2": [0.9, 0.99]}, {"lr": 0.01})
    assert values == [0.9, 0.99, 0.995, 0.998] and last is None  # halfway to 1, twice, never 1 or beyond
    values, _ = _extend_while_the_top_is_best("muon", {"momentum": [0.1, 0.6]}, {"lr": 0.01})
    assert max(values) < 1 and values[2:] == [0.8, 0.9]
    values, last = _extend_while_the_top_is_best("adamw", {"warmup": [0.5, 1.0]}, {"lr": 0.01})
    assert values == [0.5, 1.0] and last[0] is None  # 1 is the range's own closed bound: nothing beyond
    assert last[1] == "warmup=1 was best at the top of the 2 values searched, the edge of its valid range [0, 1]: " \
                      "not extended"
    values, _ = _extend_while_the_top_is_best("gn", {"ls_range": [3, 5]}, {"lr": 0.01})
    assert values == [3, 5, 8, 14] and all(isinstance(v, int) for v in values)  # an integer setting stays whole


def test_fixed_values_enter_every_trial_and_a_given_grid_is_searched_whole():
    s = Settings(fixed={"beta2": 0.99}, grid={"lr": [1e-3, 3e-3, 1e-2, 3e-2]})
    grid = tuning_grid("adamw", 3, s)
    assert grid == [(("beta2", 0.99), ("lr", v)) for v in (1e-3, 3e-3, 1e-2, 3e-2)]  # not cut to the budget
    assert tuning_grid("adamw", 3, Settings(fixed={"lr": 0.02})) == [(("lr", 0.02),)]  # one setting: no tuning
    w = get_workload("smoke")
    plain = iteration_complexity(w, ["adamw"], seeds=2)
    mine = iteration_complexity(w, ["adamw"], seeds=2, settings={"adamw": s})
    assert not {t.run_id for t in plain.trials} & {t.run_id for t in mine.trials}
    assert {t.label() for t in mine.trials} == {"adamw[beta2=0.99]"}
    assert {t.label() for t in plain.trials} == {"adamw"}


def test_an_edge_of_a_given_grid_extends_by_its_own_spacing():
    w = get_workload("smoke")
    s = Settings(fixed={"beta2": 0.99}, grid={"lr": [1e-3, 2e-3, 4e-3]})
    cell = [Trial("iteration-complexity", w, "adamw", hp, 1, 0, fixed=("beta2",)) for hp in tuning_grid("adamw", 3, s)]
    target = f"{w.targets[-1]:g}"
    done = [{"steps_to_target": {target: steps}, "final_val_loss": 4.0, "status": "reached"} for steps in (30, 20, 10)]
    more, why = extension("adamw", cell, done, w.targets, s)
    assert dict(more) == {"beta2": 0.99, "lr": 0.008} and "top" in why


def test_the_report_shows_a_variant_as_a_row_of_its_own():
    a = synthetic_record("adamw", k=1, seed=0)
    b = synthetic_record("adamw", k=1, seed=0, rate=0.2)
    b["run"] |= {"run_id": b["run"]["run_id"] + "-v", "variant": variant("adamw", {"beta2": 0.99}, ["beta2"]),
                 "fixed": ["beta2"]}
    runs, _ = run_frames([a, b])
    assert set(runs["label"]) == {"adamw", "adamw[beta2=0.99]"} and set(runs["optimizer"]) == {"adamw"}


@pytest.mark.slow
def test_set_and_grid_run_the_given_settings_and_label_them(tmp_path, text_data):
    R = tmp_path / "R"
    out = bench("run", "--preset", "smoke", "--workload", "max_steps=12", "--optimizers", "adamw", "--data", text_data,
                "--results", str(R),
                "--accelerator", "cpu", "--seeds", "1", "--set", "adamw.beta2=0.99", "--grid", "adamw.lr=0.005,0.02",
                "--no-prune")
    assert out.returncode == 0, out.stderr
    trials = [line for line in out.stderr.splitlines() if " seed=0: " in line]  # not a terminal: whole lines
    assert len(trials) >= 4 and all(line.rstrip().endswith("s)") and "{" in line and "}" in line for line in trials)
    runs = [json.loads(p.read_text())["run"] for p in (R / "runs").glob("*.json")]
    assert {r["variant"] for r in runs} == {"adamw[beta2=0.99]"} and all(r["hparams"]["beta2"] == 0.99 for r in runs)
    assert {r["hparams"]["lr"] for r in runs if r["reason"] == "grid"} == {0.005, 0.02}
    assert all(r["overrides"] == ["beta2", "lr"] for r in runs)
    import pandas as pd  # the default csv logger: every step and every evaluation of each trial

    for r in runs:
        log = pd.read_csv(R / "logs" / r["run_id"] / "metrics.csv")
        assert log["train/train_loss"].notna().sum() == r["steps_run"]
        assert sorted(log.loc[log["val/loss"].notna(), "step"]) == sorted(e["step"] for e in
                                                                          json.loads((R / "runs" / f"{r['run_id']}.json").read_text())["evals"])
    rep = bench("report", "--results", str(R), "--out", str(tmp_path / "O"))
    assert rep.returncode == 0, rep.stderr
    assert "adamw[beta2=0.99]" in (tmp_path / "O" / "leaderboard.md").read_text()


def test_a_grid_over_a_key_the_protocol_does_not_tune_makes_a_variant():
    w = get_workload("smoke")
    plain = iteration_complexity(w, ["adamw"], seeds=1)
    wider = iteration_complexity(w, ["adamw"], seeds=1, settings={"adamw": Settings(grid={"beta2": [0.9, 0.99]})})
    assert {t.label() for t in wider.trials} == {"adamw[beta2 searched]"}  # 6 trials a K against the default's 3
    assert not {t.run_id for t in plain.trials} & {t.run_id for t in wider.trials}
    lr_only = iteration_complexity(w, ["adamw"], seeds=1, settings={"adamw": Settings(grid={"lr": [0.01, 0.1]})})
    assert {t.label() for t in lr_only.trials} == {"adamw"}  # the key it tunes: its own row, other values
    coord = iteration_complexity(w, ["adamw"], seeds=1, tuning="coordinate",
                                 settings={"adamw": Settings(grid={"beta2": [0.9, 0.99]})})
    assert {t.label() for t in coord.trials} == {"adamw"}  # coordinate tuning searches beta2 anyway
