"""The report's per-cell table (benchmark/report/tables.py) on generated records: one order of optimizers, speedups
over AdamW and over the best first-order method paired by seed, the gap to full GN, censored cells kept as
such (a ratio bounded by the budget), no interval from one seed, failed trials kept out and listed, and a
cell whose tuning is incomplete flagged and no reference."""

import math

import pandas as pd
import pytest
from helpers import synthetic_record, write_records

from benchmark.report.render import failures, load
from benchmark.report.tables import ordered, select_final, summary_table


def _table(tmp_path, records):
    runs, evals, _ = load(write_records(tmp_path, records))
    return summary_table(select_final(runs), evals)


def test_speedups_over_adamw_the_best_first_order_method_and_the_oracle(tmp_path):
    rates = {"adamw": 0.1, "muon": 0.2, "soap": 0.15, "gn": 0.5, "my-plugin": 0.05}
    records = [synthetic_record(o, 4, s, rate=r * (1 + 0.05 * s), family="first-order" if o == "my-plugin" else None)
               for o, r in rates.items() for s in range(3)]
    table = _table(tmp_path, records)
    assert list(table["label"].iloc[:5]) == ["adamw", "muon", "soap", "gn", "my-plugin"]
    tight = table[table.target == table.target.min()].set_index("label")
    steps = tight["median_steps"]
    assert set(tight["best_first_order"]) == {"muon"}  # fewest steps of the first-order family (gn is not)
    assert tight.loc["gn", "speedup_vs_best_first_order"] == pytest.approx(steps["muon"] / steps["gn"])
    assert tight.loc["gn", "speedup_vs_adamw"] == pytest.approx(steps["adamw"] / steps["gn"])
    assert tight.loc["adamw", "oracle_gap"] == pytest.approx(steps["adamw"] / steps["gn"])
    assert tight.loc["gn", "oracle_gap"] == 1.0 and tight.loc["gn", "family"] == "gauss-newton"
    gn = tight.loc["gn"]
    assert gn["speedup_vs_adamw_ci_low"] <= gn["speedup_vs_adamw"] <= gn["speedup_vs_adamw_ci_high"]
    assert tight.loc["muon", "speedup_excludes_1"] and tight["budget"].eq(30).all()


def test_a_censored_cell_has_no_median_no_interval_and_no_speedup(tmp_path):
    records = [synthetic_record("adamw", 4, s, rate=0.2) for s in range(2)]
    records += [synthetic_record("muon", 4, s, rate=0.01) for s in range(2)]  # never reaches the targets
    table = _table(tmp_path, records)
    muon = table[(table.label == "muon")]
    assert muon["median_steps"].isna().all() and muon["steps_ci_high"].isna().all()
    assert muon["speedup_vs_adamw"].isna().all() and (muon["censored"] == 2).all()
    assert table[table.label == "adamw"]["oracle_gap"].isna().all()  # no gn: no oracle


def test_records_of_two_workloads_keep_their_own_targets(tmp_path):
    records = [synthetic_record("adamw", 4, 0, rate=0.2)]
    records += [synthetic_record("adamw", 4, 0, rate=0.2, targets=(3.9, 3.5), workload="other")]
    table = _table(tmp_path, records)
    assert sorted(table.groupby("setup")["target"].apply(tuple).map(sorted).map(tuple)) == [
        (3.2, 3.4, 3.6), (3.5, 3.9)]
    assert table["median_steps"].notna().all() and not math.isnan(table["median_steps"].sum())


def test_one_order_of_optimizers():
    assert ordered(["zeta", "gn", "adamw", "alpha", "layerwise-gn", "muon"]) == [
        "adamw", "muon", "gn", "layerwise-gn", "alpha", "zeta"]
    assert pd.Series(ordered(["soap", "gn-prox-linear"])).tolist() == ["soap", "gn-prox-linear"]


def test_a_failed_trial_is_never_selected_never_final_and_listed_apart(tmp_path):
    # the fastest setting's tuning trial raised: the next best is selected; one seed rerun raised too
    records = [synthetic_record("adamw", 4, 0, lr, role="tune", rate=r, failed_at=f)
               for lr, r, f in ((0.003, 0.1, None), (0.01, 0.2, None), (0.03, 0.5, 2))]
    records += [synthetic_record("adamw", 4, s, 0.01, rate=0.2, failed_at=5 if s == 2 else None) for s in (1, 2)]
    records += [synthetic_record("adamw", 4, 3, 0.01, rate=0.2, diverge_at=4)]  # a divergence is no failure
    runs, evals, _ = load(write_records(tmp_path, records))
    failed = failures(runs)
    assert failed[["setting", "seed", "role", "step", "type"]].values.tolist() == [
        ["lr=0.03", 0, "tune", 2, "RuntimeError"], ["lr=0.01", 2, "seed", 5, "RuntimeError"]]
    assert failed["log"].iloc[0] == "logs/cpu-adamw-k4-s0-0.03/traceback.txt"
    assert failed["message"].iloc[1] == "adamw broke at step 5"
    final = select_final(runs)
    assert "failed" not in set(final["status"])
    assert sorted(final.loc[final["final"], "seed"]) == [0, 1, 3]  # lr 0.01: seeds 0, 1 and the diverged 3
    table = summary_table(final, evals)
    assert (table["seeds"] == 3).all() and (table["runs"] == 3).all() and (table["diverged"] == 1).all()
    # a failed tuning trial is one the cell's tuning still lacks (the next run runs it again)
    assert (table["tuning_trials"] == 2).all() and (table["tuning_planned"] == 3).all()
    assert not table["tuning_complete"].any()


def test_one_seed_gives_a_value_no_interval_and_no_significance(tmp_path):
    table = _table(tmp_path, [synthetic_record("adamw", 4, 0, rate=0.1), synthetic_record("muon", 4, 0, rate=0.3)])
    muon = table[table.label == "muon"]
    assert (table["seeds"] == 1).all() and muon["median_steps"].notna().all()
    assert table[["steps_ci_low", "steps_ci_high", "speedup_vs_adamw_ci_low", "speedup_vs_adamw_ci_high"]].isna().all().all()
    assert muon["speedup_vs_adamw"].notna().all() and (muon["speedup_vs_adamw_seeds"] == 1).all()
    assert not table["speedup_excludes_1"].any()


def test_incomplete_tuning_is_flagged_and_no_reference(tmp_path):
    # adamw's cell planned three tuning trials; one has no record, one only a failed one
    planned = [f"cpu-adamw-k4-s0-{lr:g}" for lr in (0.003, 0.01, 0.03)]
    records = [synthetic_record("adamw", 4, 0, 0.003, role="tune", rate=0.1, cell_trials=planned[:2]),
               synthetic_record("adamw", 4, 0, 0.01, role="tune", rate=0.12, failed_at=3, cell_trials=planned)]
    records += [synthetic_record(o, 4, s, rate=r * (1 + 0.05 * s)) for o, r in (("muon", 0.2), ("soap", 0.15),
                                                                                ("gn", 0.5)) for s in range(3)]
    table = _table(tmp_path, records)
    tight = table[table.target == table.target.min()].set_index("label")
    adamw = tight.loc["adamw"]
    assert not adamw["tuning_complete"] and (adamw["tuning_trials"], adamw["tuning_planned"]) == (1, 3)
    assert adamw["median_steps"] > 0  # still shown, flagged
    assert tight.loc[["muon", "soap", "gn"], "speedup_vs_adamw"].isna().all()  # no speedup over an unfinished cell
    assert set(tight["best_first_order"]) == {"muon"}  # among muon and soap, whose tuning is complete
    assert tight.loc["muon", "tuning_complete"] and tight.loc["muon", "tuning_trials"] == 0


def test_the_best_first_order_method_needs_two_of_them(tmp_path):
    table = _table(tmp_path, [synthetic_record(o, 4, s, rate=r) for o, r in (("adamw", 0.1), ("gn", 0.4))
                              for s in range(2)])
    assert (table["best_first_order"] == "").all() and table["speedup_vs_best_first_order"].isna().all()


def test_a_censored_median_bounds_the_speedup_by_the_budget(tmp_path):
    records = [synthetic_record("adamw", 4, s, rate=0.2 + 0.01 * s) for s in range(2)]
    records += [synthetic_record("muon", 4, s, rate=0.01) for s in range(2)]  # never reaches the targets
    records += [synthetic_record("gn", 4, s, rate=0.5) for s in range(2)]
    table = _table(tmp_path, records).set_index(["label", "target"])
    adamw = table.loc[("adamw", 3.2)]
    muon = table.loc[("muon", 3.2)]
    assert muon["speedup_vs_adamw_at_most"] == pytest.approx(adamw["median_steps"] / 30)
    assert muon["speedup_vs_adamw_at_most"] < 1
    assert pd.isna(muon["speedup_vs_adamw_at_least"]) and pd.isna(muon["speedup_vs_adamw"])
    assert muon["oracle_gap_at_least"] == pytest.approx(30 / table.loc[("gn", 3.2), "median_steps"])


def test_a_protocol_is_a_setup_of_its_own_and_its_tuning_compute_counts_cooldown_branches(tmp_path):
    records = [synthetic_record("adamw", 4, s, rate=0.2) for s in range(2)]
    records += [synthetic_record("adamw", 4, s, rate=0.25, protocol="coordinate", overrides={"beta2": 0.95})
                for s in range(2)]
    records += [synthetic_record("adamw", 4, 0, lr, role="tune", protocol="wsd",
                                 run_fields={"branch_costs": {"forward_equivalents": 100.0}}) for lr in (0.01, 0.03)]
    table = _table(tmp_path, records)
    base = "cpu v7 · python-stdlib"
    assert sorted(set(zip(table.setup, table.protocol, table.base_setup))) == [
        (base, "grid", base), (f"{base} · coordinate", "coordinate", base), (f"{base} · wsd", "wsd", base)]
    wsd = table[table.protocol == "wsd"]
    tuned = sum(r["run"]["costs"]["forward_equivalents"] for r in records[-2:])
    assert (wsd["tuning_fwd_equiv"] == tuned + 200.0).all() and (wsd["tuning_trials"] == 2).all()


def test_of_two_settings_that_tie_exactly_the_one_the_sweep_reran_over_seeds_is_the_selection(tmp_path):
    # the same curve at two learning rates: an exact tie, which the sweep broke for the lr its seeds then reran
    tune = [synthetic_record("gn", 4, 0, lr, role="tune", rate=0.3) for lr in (0.01, 0.02)]
    chosen = max(tune, key=lambda r: r["run"]["run_id"])  # not the one a run-id tie-break would take
    lr = chosen["run"]["hparams"]["lr"]
    records = [*tune, *(synthetic_record("gn", 4, s, lr, rate=0.3) for s in (1, 2))]
    records += [synthetic_record("adamw", 4, s, rate=0.1) for s in range(3)]
    table = _table(tmp_path, records)
    gn = table[(table.label == "gn") & (table.target == table.target.min())].iloc[0]
    assert gn["setting"] == f"lr={lr:g}" and gn["seeds"] == 3
