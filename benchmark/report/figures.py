"""The report's figures (PNG and SVG), in the order the page shows them. Those drawn from the per-cell table
live in ``cell_figures``; here are the ones drawn from the runs themselves: loss curves, learning-rate
sensitivity over every tuning run and the best steps-to-target found after each tuning trial; the sensitivity
of a coordinate-tuned setting to each hyperparameter is ``sensitivity``'s."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from benchmark.report.cell_figures import (
    fig_batch_scaling,
    fig_cost_to_target,
    fig_oracle_gap,
    fig_performance_profiles,
    fig_speedup,
    fig_steps_vs_target,
)
from benchmark.report.frames import STEPS
from benchmark.report.plotting import (
    REFERENCE,
    colour,
    dodge,
    finite,
    mark,
    panel_title,
    panels,
    readable_log,
    save,
    say,
    set_limits,
    title,
)
from benchmark.report.profiles import tuning_curves
from benchmark.report.sensitivity import fig_sensitivity
from benchmark.report.tables import ordered

FIGURES = ("steps_vs_target", "speedup", "oracle_gap", "performance_profiles", "batch_scaling", "cost_to_target",
           "loss_curves", "lr_sensitivity", "tuning_budget", "sensitivity")


def _groups(runs: pd.DataFrame) -> list[tuple[str, int]]:
    return sorted({(w, int(k)) for w, k in zip(runs["setup"], runs["k"])})


def _own_targets(runs: pd.DataFrame) -> list[float]:
    return sorted({float(t) for ts in runs["targets"] for t in ts}, reverse=True) if "targets" in runs else []


def fig_loss_curves(runs, evals):
    final = runs[runs["final"]]
    df = evals.merge(final[["run_id", "setup", "label", "k", "status"]], on="run_id")
    keys, nw = _groups(final), final["setup"].nunique()
    fig, axes = panels(keys, sharey=False)
    for (w, k), ax in axes.items():
        part = df[(df.setup == w) & (df.k == k)]
        start = finite(part.loc[part.step == part.step.min(), "val_loss"]) if len(part) else []
        drawn = []
        for opt in ordered(part.label):
            g = part[part.label == opt].replace([np.inf, -np.inf], np.nan).groupby("step")["val_loss"]
            med, lo, hi = g.median(), g.min(), g.max()
            ax.plot(med.index, med.values, label=opt, color=colour(opt), gid=f"curve|{opt}|{w}|{k}")
            ax.fill_between(med.index, lo.values, hi.values, color=colour(opt), alpha=0.2)
            drawn += finite(lo.values)
            diverged = final[(final.setup == w) & (final.k == k) & (final.label == opt)
                             & (final.status == "diverged")]
            if len(diverged):
                mark(ax, "diverged", med.index.max(), None, opt, f"{opt}|{w}|{k}")
        targets = _own_targets(final[final.setup == w])
        for t in targets:
            ax.axhline(t, color=REFERENCE, lw=0.8, ls="--", gid=f"reference|target|{t:g}")
        # from below the lowest loss to the warm start's loss: a diverging run does not stretch the axis
        set_limits(ax, [*drawn, *targets, *(max(start) * 1.02 for _ in start[:1])])
        ax.set(title=panel_title(w, k, nw), xlabel="outer step", ylabel="validation loss (nats)")
        if not drawn:
            say(ax, "no finite evaluation")
    title(fig, "Validation loss of each cell's selected setting\n(median over seeds, band: min–max; "
                 "dashed: targets; x at the top: a run diverged)")
    return fig


def _tightest_column(part: pd.DataFrame) -> str | None:
    targets = _own_targets(part)
    return f"{STEPS}{min(targets):g}" if targets else None


_AT_THE_TOP = {"diverged": "diverged", "pruned": "pruned"}  # by status; any other: it did not reach the target


def _mark_top(ax, p: pd.DataFrame, opt: str, gid: str, shift: tuple[int, int]) -> None:
    """Runs with nothing to plot in this panel, by status, as marks at the top of the axes."""
    for r in p.to_dict("records"):
        mark(ax, _AT_THE_TOP.get(r["status"], "not_reached"), r["lr"], None, opt, gid, shift)


def fig_lr_sensitivity(runs):
    tune = runs[runs["role"] == "tune"]
    tune = tune if len(tune) else runs
    groups, nw = _groups(tune), tune["setup"].nunique()
    fig, axes = panels([(row, w, k) for row in (0, 1) for w, k in groups], ncols=len(groups), size=(4.8, 3.4))
    for (row, w, k), ax in axes.items():
        part = tune[(tune.setup == w) & (tune.k == k)]
        column = _tightest_column(part) if row == 0 else "final_val_loss"
        values, opts = [], ordered(part.label)
        for i, opt in enumerate(opts):
            p = part[part.label == opt].sort_values("lr")
            y = pd.to_numeric(p[column], errors="coerce") if column in p else pd.Series(np.nan, index=p.index)
            ok = np.isfinite(y) & ((p.status != "diverged") | (row == 0))
            gid, shift = f"{row}|{opt}|{w}|{k}", (i, len(opts))
            # optimizers side by side, a few points apart, so that equal settings and results stay visible
            ax.plot(p.loc[ok, "lr"], y[ok], marker="o", ms=4, color=colour(opt), label=opt, gid=f"lr|{gid}",
                    transform=dodge(ax, *shift))
            values += finite(y[ok])
            _mark_top(ax, p[~ok], opt, gid, shift)
            if row == 1:  # a pruned run's loss is where it stopped, not where its budget would have ended
                for at in p.index[ok & (p.status == "pruned")]:
                    mark(ax, "pruned", p.at[at, "lr"], y[at], opt, gid, shift)
        readable_log(ax, "x")
        set_limits(ax, part["lr"], axis="x", log=True)
        if row == 0:
            readable_log(ax)
        set_limits(ax, values, log=row == 0, default=(1.0, 10.0) if row == 0 else (0.0, 1.0))
        steps_label = f"steps to {column.removeprefix(STEPS)}" if row == 0 and column else "steps to target"
        ax.set(title=panel_title(w, k, nw) if row == 0 else "", xlabel="learning rate" if row else "",
               ylabel=steps_label if row == 0 else "validation loss at the run's end")
    title(fig, "Learning-rate sensitivity over every tuning run (marks at the top: runs with no value to "
                 "plot; a pruned run's loss is where it stopped; optimizers drawn a few points apart)")
    return fig


def fig_tuning_budget(runs):
    curves = tuning_curves(runs)
    keys = _groups(curves) if len(curves) else []
    fig, axes = panels(keys)
    nw = curves["setup"].nunique() if len(curves) else 0
    for key, ax in axes.items():
        if key is None:
            say(ax, "no tuning runs in these records", empty=True)
            continue
        w, k = key
        part = curves[(curves.setup == w) & (curves.k == k)]
        drawn = []
        for opt in ordered(part.label):
            c = part[part.label == opt]
            y = c["best_steps"].where(np.isfinite(c["best_steps"]))
            ax.step(c["trial"], y, where="post", marker="o", ms=4, color=colour(opt), label=opt,
                    gid=f"budget|{opt}|{w}|{k}")
            for trial in c.loc[y.isna(), "trial"]:
                mark(ax, "not_reached", trial, None, opt, f"{opt}|{w}|{k}")
            drawn += finite(y)
        readable_log(ax)
        set_limits(ax, drawn, log=True)
        ax.set_xlim(0.5, part["trial"].max() + 0.5)
        ax.set_xticks(range(1, int(part["trial"].max()) + 1))
        target = part["target"].iloc[0]
        ax.set(title=panel_title(w, k, nw), xlabel="tuning trials run (in order)",
               ylabel=f"best steps to {target:g} so far")
    title(fig, "Tuning budget: the best steps to the tightest target found after 1, 2, … tuning trials")
    return fig


def build_figures(runs, evals, table, fits) -> dict[str, plt.Figure]:
    """Every figure, by name, in the order of ``FIGURES`` (open: the caller saves or inspects them)."""
    return {"steps_vs_target": fig_steps_vs_target(table), "speedup": fig_speedup(table),
            "oracle_gap": fig_oracle_gap(table), "performance_profiles": fig_performance_profiles(table),
            "batch_scaling": fig_batch_scaling(table, fits), "cost_to_target": fig_cost_to_target(table),
            "loss_curves": fig_loss_curves(runs, evals), "lr_sensitivity": fig_lr_sensitivity(runs),
            "tuning_budget": fig_tuning_budget(runs), "sensitivity": fig_sensitivity(runs)}


def render_figures(runs, evals, table, fits, out: Path) -> list[Path]:
    """Every figure saved as PNG and SVG into ``out``; the paths written."""
    plt.rcParams["svg.hashsalt"] = "optbench"
    return [p for name, fig in build_figures(runs, evals, table, fits).items() for p in save(fig, out, name)]
