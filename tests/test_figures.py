"""Every figure of the report (benchmark/report/figures.py, cell_figures.py, sensitivity.py, plotting.py) on generated
record sets: random numbers of optimizers, seeds, batch sizes and workloads, with censored, diverged, pruned and
failed runs, infinite interval bounds and coordinate-tuned walks. Every visible axes must have finite,
non-degenerate limits (positive on a log axis), and every cell must be drawn: as a point or bar where its median
is finite, as a censored marker where it is not; every axis trial of a walk as a dot or its mark. And nothing can
be misread: no censored mark on the speedup side of 1, no tick labels that overlap as rendered, every legend entry
in the shape drawn (and every △▽ glyph in a text as hollow as the markers), plugin colours apart from the reference
lines' grey, and no two optimizers' markers on the same spot of the learning-rate figure."""

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from figure_checks import (
    colours_apart_from_the_references,
    distinct,
    legend_shows_what_is_drawn,
    no_censored_mark_on_the_speedup_side,
    no_two_optimizers_on_one_spot,
    panels_clear_of_the_title_and_legend,
    tick_labels_do_not_overlap,
)
from helpers import PROTOCOL_POINTS, synthetic_record, write_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_rgb
from matplotlib.container import ErrorbarContainer

from benchmark.report.batchfit import batch_fits
from benchmark.report.cell_figures import fig_speedup
from benchmark.report.figures import FIGURES, build_figures, fig_lr_sensitivity
from benchmark.report.plotting import DPI, MARKS, REFERENCE, colour, finish, panels, title
from benchmark.report.render import load, render
from benchmark.report.tables import select_final, summary_table

KINDS = ("fast", "slow", "censored", "diverged", "pruned", "failed")


def _run(opt, k, seed, lr, kind, role, workload, **extra) -> dict:
    wl = {"workload": workload, "corpus": "enwiki" if workload == "other" else "python-stdlib",
          "targets": (4.0, 3.7) if workload == "other" else (3.6, 3.4, 3.2)}
    if opt == "my-plugin":
        wl["family"] = "first-order"
    rate = {"fast": 0.3 * k / 2, "slow": 0.05 * k / 2, "censored": 0.01, "diverged": 0.2, "pruned": 0.02,
            "failed": 0.2}[kind]
    return synthetic_record(opt, k, seed, lr, role=role, rate=rate, diverge_at=3 if kind == "diverged" else None,
                            stop_at=4 if kind == "pruned" else None, failed_at=2 if kind == "failed" else None, **wl,
                            **extra)


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
    if draw(st.booleans()):  # coordinate-tuned cells at one K: the sensitivity figure's walks
        records += [_run(opt, ks[0], 0, p["lr"], draw(st.sampled_from(KINDS)), "tune", "cpu", protocol="coordinate",
                         overrides={"beta2": p["beta2"]}) for opt in opts for p in PROTOCOL_POINTS["coordinate"]]
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


def _ratio_kind(r: dict, prefix: str, value: str) -> str:
    """How a ratio is drawn: its value, else the bound a censored median sets, else ? at 1."""
    if not pd.isna(r[prefix]):
        return value
    return next((kind for kind in ("at_least", "at_most") if not pd.isna(r[f"{prefix}_{kind}"])), "no_ratio")


def _expected(table, runs) -> dict[str, set[str]]:
    """The artists each figure must hold: every cell drawn as a value or marked censored."""
    exp = {name: set() for name in FIGURES}
    tightest = table.groupby("setup")["target"].transform("min") == table["target"]
    for r, tight in zip(table.to_dict("records"), tightest):
        o, w, k, t, reached = r["label"], r["setup"], r["k"], r["target"], not pd.isna(r["median_steps"])
        exp["steps_vs_target"].add(f"{'point' if reached else 'censored'}|{o}|{w}|{k}|{t:g}")
        exp["batch_scaling"].add(f"{'point' if reached else 'censored'}|{o}|{w}|{t:g}|{r['tokens_per_step']}")
        group = set(table[(table.setup == w) & (table.k == k)].label)
        if tight:
            exp["cost_to_target"].add(f"{'bar' if reached else 'censored'}|{o}|{w}|{k}|steps")
            if o != "adamw" and "adamw" in group:
                exp["speedup"].add(f"{_ratio_kind(r, 'speedup_vs_adamw', 'bar')}|{o}|{w}|{k}")
        if o != "gn" and "gn" in group:
            exp["oracle_gap"].add(f"{_ratio_kind(r, 'oracle_gap', 'point')}|{o}|{w}|{k}|{t:g}")
        exp["performance_profiles"].add(f"profile|{o}|steps")
    for r in runs[runs["final"]].to_dict("records"):
        exp["loss_curves"].add(f"curve|{r['label']}|{r['setup']}|{r['k']}")
    for r in runs[runs["role"] == "tune"].to_dict("records"):
        exp["lr_sensitivity"].add(f"lr|1|{r['label']}|{r['setup']}|{r['k']}")
        exp["tuning_budget"].add(f"budget|{r['label']}|{r['setup']}|{r['k']}")
    exp["sensitivity"] = _axis_trials(runs)
    return exp


def _axis_trials(runs) -> set[str]:
    """The sensitivity figure's artists: each coordinate-tuned cell's line at its selected setting, and each of its
    seed-0 trials one searched (moved) hyperparameter away from it, as a dot or (never reached) its mark at the budget."""
    out, at_top = set(), {"diverged": "diverged", "pruned": "pruned"}
    tune = runs[(runs.role == "tune") & (runs.protocol == "coordinate") & (runs.seed == 0)]
    for (w, k, o), cell in tune.groupby(["setup", "k", "label"]):
        chosen, column = cell[cell["final"]]["setting"].iloc[0], f"steps_to_{min(map(float, cell.targets.iloc[0])):g}"
        out.add(f"selected|{o}|{w}|{k}")
        keys = [key for key in chosen if cell["setting"].map(lambda s, key=key: s[key]).nunique() > 1] or list(chosen)
        for r in cell.to_dict("records"):
            for key in [key for key in keys if all(r["setting"][j] == chosen[j] for j in chosen if j != key)]:
                kind = "dot" if not pd.isna(r[column]) else at_top.get(r["status"], "censored")
                out.add(f"{kind}|{o}|{w}|{k}|{key}|{r['setting'][key]:g}")
    return out


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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
        finish(fig)  # the legend, as saved
        tick_labels_do_not_overlap(name, fig)
        panels_clear_of_the_title_and_legend(name, fig)
        legend_shows_what_is_drawn(name, fig)
        colours_apart_from_the_references(name, fig, set(table["label"]))
    no_censored_mark_on_the_speedup_side(figures["speedup"])
    no_two_optimizers_on_one_spot(figures["lr_sensitivity"])
    plt.close("all")


def test_a_censored_optimizer_is_never_drawn_as_a_speedup(tmp_path):
    records = [synthetic_record("adamw", 4, s, rate=0.2 + 0.01 * s) for s in range(2)]
    records += [synthetic_record("muon", 4, s, rate=0.01) for s in range(2)]  # never reaches 3.2: ≤ 13/30
    records += [synthetic_record("my-plugin", 4, s, rate=0.5) for s in range(2)]
    runs, evals, table, _ = _tables(write_records(tmp_path / "R", records))
    fig = fig_speedup(table)
    finish(fig)
    assert {"at_most|muon|cpu v7 · python-stdlib|4", "bar|my-plugin|cpu v7 · python-stdlib|4"} <= _gids(fig)
    no_censored_mark_on_the_speedup_side(fig)
    legend_shows_what_is_drawn("speedup", fig)
    plt.close("all")


def test_learning_rate_ticks_legend_and_markers_read_as_drawn(tmp_path):
    """A wide learning-rate range (whose 2 and 3 × 10^n labels ran together), pruned, diverged and
    censored tuning runs, and two optimizers with the same grid and the same results."""
    lrs = (0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2)
    records = [synthetic_record(o, 4, 0, lr, role="tune", rate=0.2, workload=w)
               for o in ("adamw", "soap") for lr in lrs for w in ("cpu", "other")]  # soap's runs match adamw's
    records += [synthetic_record("muon", 4, 0, 0.4, role="tune", rate=0.2, stop_at=3),
                synthetic_record("muon", 4, 0, 0.6, role="tune", rate=0.2, diverge_at=2),
                synthetic_record("muon", 4, 0, 0.0015, role="tune", rate=0.01)]
    runs, _, _, _ = _tables(write_records(tmp_path / "R", records))
    fig = fig_lr_sensitivity(runs)
    finish(fig)
    tick_labels_do_not_overlap("lr_sensitivity", fig)
    legend_shows_what_is_drawn("lr_sensitivity", fig)
    no_two_optimizers_on_one_spot(fig)
    labels = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {MARKS["pruned"].label, MARKS["diverged"].label, MARKS["not_reached"].label} <= labels
    plt.close("all")


def test_optimizers_with_equal_steps_all_show_against_target_and_batch(tmp_path):
    """Steps counted exactly tie often (two optimizers at 19 steps under WSD): each optimizer's points sit a few
    points aside, so that one never hides another's, in every figure with targets or batches along x."""
    records = [synthetic_record(o, k, s, rate=0.15 * k / 2 + 0.002 * s) for o in ("muon", "soap") for k in (2, 4)
               for s in range(3)]  # soap's runs match muon's
    records += [synthetic_record(o, k, s, rate=r * k / 2 + 0.002 * s) for o, r in (("adamw", 0.1), ("gn", 0.4))
                for k in (2, 4) for s in range(3)]
    runs, evals, table, fits = _tables(write_records(tmp_path / "R", records))
    figures = build_figures(runs, evals, table, fits)
    for name in ("steps_vs_target", "oracle_gap", "batch_scaling"):
        finish(figures[name])
        assert any(line.get_gid() and line.get_gid().startswith("point|soap|")
                   for ax in figures[name].axes for line in ax.get_lines()), name
        no_two_optimizers_on_one_spot(figures[name], field=1)
    plt.close("all")


def test_plugin_colours_are_never_the_grey_of_the_reference_lines():
    for name in ("my-plugin", "lion", "sophia", "adafactor", *(f"plugin-{i}" for i in range(50))):
        r, g, b = to_rgb(colour(name))
        assert max(r, g, b) - min(r, g, b) > 0.2 and distinct(colour(name), REFERENCE), name


def test_the_report_of_one_optimizer_one_seed_that_never_reached_the_tightest_target(tmp_path):
    """The case that crashed: one optimizer, one seed, tightest target censored (no positive value to log)."""
    results = write_records(tmp_path / "R", [synthetic_record("adamw", 4, 0, rate=0.03, budget=20)])
    runs, evals, table, fits = _tables(results)
    assert table["median_steps"].isna().any() and table["median_steps"].notna().any()
    figures = build_figures(runs, evals, table, fits)
    for name, fig in figures.items():
        _check_axes(name, fig)
        # one seed: no interval, so no bar (not even a zero-length one with its caps)
        assert not [c for ax in fig.axes for c in ax.containers if isinstance(c, ErrorbarContainer)], name
    assert "censored|adamw|cpu v7 · python-stdlib|4|3.2" in _gids(figures["steps_vs_target"])
    plt.close("all")
    written = render(results, tmp_path / "O")
    assert all(p.stat().st_size > 0 for p in written)
    md = (tmp_path / "O" / "leaderboard.md").read_text()
    assert "**adamw** did not reach it within the budget: ≥ 20 (censored, n = 1)." in md


def test_a_long_title_and_legend_over_one_narrow_panel_leave_the_panel_its_height():
    """The case the property test found: one panel 4.8 in wide under a title that wraps to six lines and a
    legend of three rows; the title and the legend once took their height from the panel, which shrank
    until its two tick labels overlapped. The figure now grows by what they take."""
    fig, axes = panels([("cpu", 2, "adamw")], size=(4.8, 2.6))
    ax = axes[("cpu", 2, "adamw")]
    for i, name in enumerate(("lr", "beta2", "weight_decay", "warmup", "ls_range", "momentum")):
        ax.plot([1, 2], [i, i], label=name)
    ax.set_yticks(range(2), ["lr", "beta2"])
    ax.set(title="adamw\nK = 2", xlabel="steps to 3.2 (seed 0)")
    title(fig, "Sensitivity: " + "a caption long enough to wrap over a narrow figure, " * 6)
    finish(fig)
    fig.set_dpi(DPI)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panel = ax.get_tightbbox(renderer)  # with its title, tick labels and axis label
    assert fig._suptitle.get_window_extent(renderer).y0 >= panel.y1
    assert fig.legends[0].get_window_extent(renderer).y1 <= panel.y0
    height = ax.get_window_extent(renderer).height / DPI
    assert height > 1.2, height  # 2.6 in, less the panel's title, tick labels and axis label
    plt.close(fig)
