"""The report's per-cell table (benchmark/tables.py) on generated records: one order of optimizers, speedups
over AdamW and over the best first-order method paired by seed, the gap to full GN, and censored cells kept
as such."""

import math

import pandas as pd
import pytest
from helpers import synthetic_record, write_records

from benchmark.report import load
from benchmark.tables import ordered, select_final, summary_table


def _table(tmp_path, records):
    runs, evals, _ = load(write_records(tmp_path, records))
    return summary_table(select_final(runs), evals)


def test_speedups_over_adamw_the_best_first_order_method_and_the_oracle(tmp_path):
    rates = {"adamw": 0.1, "muon": 0.2, "soap": 0.15, "gn": 0.5, "my-plugin": 0.05}
    records = [synthetic_record(o, 4, s, rate=r * (1 + 0.05 * s), family="first-order" if o == "my-plugin" else None)
               for o, r in rates.items() for s in range(3)]
    table = _table(tmp_path, records)
    assert list(table["optimizer"].iloc[:5]) == ["adamw", "muon", "soap", "gn", "my-plugin"]
    tight = table[table.target == table.target.min()].set_index("optimizer")
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
    muon = table[(table.optimizer == "muon")]
    assert muon["median_steps"].isna().all() and muon["steps_ci_high"].isna().all()
    assert muon["speedup_vs_adamw"].isna().all() and (muon["censored"] == 2).all()
    assert table[table.optimizer == "adamw"]["oracle_gap"].isna().all()  # no gn: no oracle


def test_records_of_two_workloads_keep_their_own_targets(tmp_path):
    records = [synthetic_record("adamw", 4, 0, rate=0.2)]
    records += [synthetic_record("adamw", 4, 0, rate=0.2, targets=(3.9, 3.5), workload="other")]
    table = _table(tmp_path, records)
    assert sorted(table.groupby("workload")["target"].apply(tuple).map(sorted).map(tuple)) == [
        (3.2, 3.4, 3.6), (3.5, 3.9)]
    assert table["median_steps"].notna().all() and not math.isnan(table["median_steps"].sum())


def test_one_order_of_optimizers():
    assert ordered(["zeta", "gn", "adamw", "alpha", "layerwise-gn", "muon"]) == [
        "adamw", "muon", "gn", "layerwise-gn", "alpha", "zeta"]
    assert pd.Series(ordered(["soap", "gn-prox-linear"])).tolist() == ["soap", "gn-prox-linear"]
