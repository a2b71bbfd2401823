"""Every figure of the report (benchmark/figures.py, cell_figures.py, plotting.py) on generated record sets:
random numbers of optimizers, seeds, batch sizes and workloads, with censored, diverged and pruned runs
and infinite interval bounds. Every visible axes must have finite, non-degenerate limits (positive on a
log axis), and every cell must be drawn: as a point or bar where its median is finite, as a censored
marker where it is not."""

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from helpers import synthetic_record, write_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.batchfit import batch_fits
from benchmark.figures import FIGURES, build_figures
from benchmark.report import load, render
from benchmark.tables import select_final, summary_table

KINDS = ("fast", "slow", "censored", "diverged", "pruned")


def _run(opt, k, seed, lr, kind, role, workload) -> dict:
    wl = {"workload": workload, "corpus": "enwiki" if workload == "other" else "python-stdlib",
          "targets": (4.0, 3.7) if workload == "other" else (3.6, 3.4, 3.2)}
    if opt == "my-plugin":
        wl["family"] = "first-order"
    rate = {"fast": 0.3 * k / 2, "slow": 0.05 * k / 2, "censored": 0.01, "diverged": 0.2, "pruned": 0.02}[kind]
    return synthetic_record(opt, k, seed, lr, role=role, rate=rate, diverge_at=3 if kind == "diverged" else None,
                            stop_at=4 if kind == "pruned" else None, **wl)


@st.composite
def record_sets(draw):
    opts = draw(st.lists(st.sampled_from(["adamw", "muon", "gn", "layerwise-gn", "my-plugin"]), min_size=1,
                         max_size=4, unique=True))
    ks = draw(st.lists(st.sampled_from([2, 4, 8]), min_size=1, max_size=3, unique=True))
    seeds = draw(st.integers(1, 3))
    workloads = ["cpu", "other"][: draw(st.integers(1, 2))]
    records = []
    for w in workloads:
        for opt in opts:
            for k in ks:
                lrs = draw(st.lists(st.sampled_from([0.003, 0.01, 0.03]), min_size=1, max_size=3, unique=True))
                kinds = [draw(st.sampled_from(KINDS)) for _ in lrs]
                records += [_run(opt, k, 0, lr, kind, "tune", w) for lr, kind in zip(lrs, kinds)]
                best = lrs[kinds.index("fast")] if "fast" in kinds else lrs[0]
                records += [_run(opt, k, s, best, draw(st.sampled_from(KINDS)), "seed", w) for s in range(1, seeds)]
    return records


def _tables(results):
    runs, evals, _ = load(results)
    runs = select_final(runs)
    return runs, evals, summary_table(runs, evals), batch_fits(runs, evals, n_boot=50)


def _check_axes(name, fig):
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis, (lo, hi), scale in (("x", ax.get_xlim(), ax.get_xscale()), ("y", ax.get_ylim(), ax.get_yscale())):
            assert math.isfinite(lo) and math.isfinite(hi) and lo != hi, (name, ax.get_title(), axis, lo, hi)
            assert abs(hi - lo) > 1e-6 * max(1.0, abs(hi)), (name, ax.get_title(), axis, lo, hi)  # not ±1e-12
            if scale == "log":
                assert min(lo, hi) > 0, (name, ax.get_title(), axis, lo, hi)


def _gids(fig) -> set[str]:
    return {str(a.get_gid()) for a in fig.findobj() if a.get_gid()}


def _expected(table, runs) -> dict[str, set[str]]:
    """The artists each figure must hold: every cell drawn as a value or marked censored."""
    exp = {name: set() for name in FIGURES}
    tightest = table.groupby("workload")["target"].transform("min") == table["target"]
    for r, tight in zip(table.to_dict("records"), tightest):
        o, w, k, t, reached = r["optimizer"], r["workload"], r["k"], r["target"], not pd.isna(r["median_steps"])
        exp["steps_vs_target"].add(f"{'point' if reached else 'censored'}|{o}|{w}|{k}|{t:g}")
        exp["batch_scaling"].add(f"{'point' if reached else 'censored'}|{o}|{w}|{t:g}|{r['tokens_per_step']}")
        group = set(table[(table.workload == w) & (table.k == k)].optimizer)
        if tight:
            exp["cost_to_target"].add(f"{'bar' if reached else 'censored'}|{o}|{w}|{k}|steps")
            if o != "adamw" and "adamw" in group:
                kind = "bar" if not pd.isna(r["speedup_vs_adamw"]) else (
                    "atleast" if not pd.isna(r["speedup_vs_adamw_at_least"]) else "censored")
                exp["speedup"].add(f"{kind}|{o}|{w}|{k}")
        if o != "gn" and "gn" in group:
            shown = not pd.isna(r["oracle_gap"])
            exp["oracle_gap"].add(f"{'point' if shown else 'censored'}|{o}|{w}|{k}|{t:g}")
        exp["performance_profiles"].add(f"profile|{o}|steps")
    for r in runs[runs["final"]].to_dict("records"):
        exp["loss_curves"].add(f"curve|{r['optimizer']}|{r['workload']}|{r['k']}")
    for r in runs[runs["role"] == "tune"].to_dict("records"):
        exp["lr_sensitivity"].add(f"lr|1|{r['optimizer']}|{r['workload']}|{r['k']}")
        exp["tuning_budget"].add(f"budget|{r['optimizer']}|{r['workload']}|{r['k']}")
    return exp


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=record_sets())
def test_every_figure_has_finite_axes_and_draws_every_cell(records, tmp_path_factory):
    results = write_records(tmp_path_factory.mktemp("R"), records)
    runs, evals, table, fits = _tables(results)
    figures = build_figures(runs, evals, table, fits)
    assert list(figures) == list(FIGURES)
    expected = _expected(table, runs)
    for name, fig in figures.items():
        _check_axes(name, fig)
        missing = expected[name] - _gids(fig)
        assert not missing, (name, sorted(missing)[:5])
    plt.close("all")


def test_the_report_of_one_optimizer_one_seed_that_never_reached_the_tightest_target(tmp_path):
    """The case that crashed: one optimizer, one seed, tightest target censored (no positive value to log)."""
    results = write_records(tmp_path / "R", [synthetic_record("adamw", 4, 0, rate=0.03, budget=20)])
    runs, evals, table, fits = _tables(results)
    assert table["median_steps"].isna().any() and table["median_steps"].notna().any()
    figures = build_figures(runs, evals, table, fits)
    for name, fig in figures.items():
        _check_axes(name, fig)
    assert "censored|adamw|cpu v7 · python-stdlib|4|3.2" in _gids(figures["steps_vs_target"])
    plt.close("all")
    written = render(results, tmp_path / "O")
    assert all(p.stat().st_size > 0 for p in written)
    md = (tmp_path / "O" / "leaderboard.md").read_text()
    assert "**adamw** did not reach it within the budget: ≥ 20 (censored)." in md
