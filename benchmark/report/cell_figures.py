"""The report's figures drawn from the per-cell table: steps against the target, speedup over AdamW, the gap
to full Gauss-Newton, batch-size scaling with its fit, cost to target and performance profiles. A median
that never reached its target is a hollow △ at the top of its panel ("censored: ≥ budget"), an infinite
interval bound an arrow to the top; neither is ever drawn as a number. A ratio one of whose medians is
censored is the bound the budget sets, marked as one: △ at a lower bound, ▽ at an upper bound (below 1
when the optimizer in question never got there: never on the speedup side of 1), ? at 1 when neither side
got there."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.report.missing import as_float
from benchmark.report.plotting import (
    REFERENCE,
    colour,
    dodge,
    interval,
    mark,
    panel_title,
    panels,
    readable_log,
    say,
    set_limits,
    ticks_at,
    title,
)
from benchmark.report.profiles import TAUS, performance_profiles
from benchmark.report.tables import ordered


def _groups(table: pd.DataFrame) -> list[tuple[str, int]]:
    return sorted({(w, int(k)) for w, k in zip(table["setup"], table["k"])})


def _tightest(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of each setup's tightest target."""
    tight = table.groupby("setup")["target"].transform("min")
    return table[table["target"] == tight]


def _unknown_ratio(ax, x, r: dict, column: str, opt: str, gid: str, shift: tuple[int, int] | None = None) -> list:
    """Where a ratio has no value: the bound its censored side sets (△ at least, ▽ at most), or ? at 1 when
    there is none (``shift``: as for ``mark``); the values drawn."""
    at_least, at_most = as_float(r.get(f"{column}_at_least")), as_float(r.get(f"{column}_at_most"))
    kind, y = ("at_least", at_least) if at_least is not None else (
        ("at_most", at_most) if at_most is not None else ("no_ratio", 1.0))
    mark(ax, kind, x, y, opt, gid, shift)
    return [y]


def _against_target(ax, part: pd.DataFrame, column: str, opts: list[str], panel: str, ratio: bool = False) -> list:
    """Each optimizer's ``column`` (with its interval) against the target, one line each; where there is no
    value, a censored mark at the top (steps) or the bound a censored median sets (``ratio``). Each optimizer
    a few points aside (``dodge``): steps counted exactly tie often, and a line on another hides it. The values
    drawn."""
    drawn = []
    for i, opt in enumerate(opts):
        shift = (i, len(opts))
        rows = part[part.label == opt].sort_values("target", ascending=False)
        xs, ys = [], []
        for r in rows.to_dict("records"):
            gid = f"{opt}|{panel}|{r['target']:g}"
            y, lo, hi = as_float(r[column]), as_float(r[f"{column}_ci_low"]), as_float(r[f"{column}_ci_high"])
            if y is None and ratio:
                drawn += _unknown_ratio(ax, r["target"], r, column, opt, gid, shift)
                continue
            if y is None:
                mark(ax, "censored", r["target"], None, opt, gid, shift)
                continue
            interval(ax, r["target"], y, lo, hi, opt, f"point|{gid}", shift=shift, marker="o", ms=4)
            xs.append(r["target"])
            ys.append(y)
            drawn += [y, lo, hi]
        ax.plot(xs, ys, color=colour(opt), label=opt, gid=f"line|{opt}|{panel}", transform=dodge(ax, *shift))
    return drawn


def _target_axes(ax, part: pd.DataFrame, drawn: list, ylabel: str) -> None:
    """Log steps (or ratio) up, targets along x from the loosest to the tightest."""
    readable_log(ax)
    set_limits(ax, drawn, log=True)
    set_limits(ax, part.target, axis="x")
    ticks_at(ax, part.target, fmt="{:g}")
    ax.invert_xaxis()
    ax.set(xlabel="target validation loss (tighter →)", ylabel=ylabel)


def fig_steps_vs_target(table):
    keys, nw = _groups(table), table["setup"].nunique()
    fig, axes = panels(keys)
    for (w, k), ax in axes.items():
        part = table[(table.setup == w) & (table.k == k)]
        part = part.assign(median_steps_ci_low=part["steps_ci_low"], median_steps_ci_high=part["steps_ci_high"])
        drawn = _against_target(ax, part, "median_steps", ordered(part.label), f"{w}|{k}")
        _target_axes(ax, part, drawn, "steps to target")
        ax.set_title(panel_title(w, k, nw))
        if not drawn:
            say(ax, "no optimizer reached\nany target within the budget")
    title(fig, "Steps to target as the target tightens: median over seeds, 95% bootstrap interval")
    return fig


def _bars(ax, part: pd.DataFrame, column: str, opts: list[str], gid: str, ratio: bool = False) -> list:
    """One bar per optimizer with its interval; where there is no value, a censored mark at the top (a
    cost) or, for a ``ratio``, the bound its censored side sets: a hatched bar open upwards at a lower
    bound, ▽ at an upper one, ? at 1 for none."""
    drawn = [0.0]
    for i, opt in enumerate(opts):
        r = part[part.label == opt].iloc[0].to_dict()
        y = as_float(r[column])
        at_least = as_float(r.get(f"{column}_at_least"))
        if y is None and at_least is not None:  # the baseline never got there: a lower bound, open upwards
            ax.bar(i, at_least, color=colour(opt), alpha=0.35, hatch="//", gid=f"at_least|{opt}|{gid}")
            ax.annotate(f"≥{at_least:.1f}", xy=(i, 0.985), xycoords=("data", "axes fraction"),
                        xytext=(i, at_least), textcoords="data", ha="center", fontsize=8,
                        arrowprops={"arrowstyle": "->", "color": REFERENCE})
            drawn.append(at_least)
            continue
        if y is None and ratio:
            drawn += _unknown_ratio(ax, i, r, column, opt, f"{opt}|{gid}")
            if as_float(r.get(f"{column}_at_most")) is not None:
                ax.annotate(f"≤{drawn[-1]:.2f}", xy=(i, drawn[-1]), xytext=(0, 7), textcoords="offset points",
                            ha="center", va="bottom", fontsize=8, color=colour(opt))
            continue
        if y is None:
            mark(ax, "censored", i, None, opt, f"{opt}|{gid}")
            continue
        ax.bar(i, y, color=colour(opt), alpha=0.85, gid=f"bar|{opt}|{gid}")
        lo, hi = as_float(r.get(f"{column}_ci_low")), as_float(r.get(f"{column}_ci_high"))
        interval(ax, i, y, lo, hi, opt, f"ci|{opt}|{gid}", ls="none")
        drawn += [y, lo, hi]
    ax.set_xticks(range(len(opts)), opts, rotation=30, ha="right")
    ax.set_xlim(-0.6, len(opts) - 0.4)
    return drawn


def fig_speedup(table):
    tight = _tightest(table)
    keys, nw = _groups(tight), tight["setup"].nunique()
    fig, axes = panels(keys, sharey=False)
    for (w, k), ax in axes.items():
        part = tight[(tight.setup == w) & (tight.k == k)]
        opts = [o for o in ordered(part.label) if o != "adamw"]
        if "adamw" not in set(part.label) or not opts:
            say(ax, "no AdamW runs here:\nno speedup" if opts else "only AdamW here:\nno speedup", empty=True)
            ax.set_title(panel_title(w, k, nw))
            continue
        drawn = _bars(ax, part, "speedup_vs_adamw", opts, f"{w}|{k}", ratio=True)
        ax.axhline(1.0, color=REFERENCE, ls="--", lw=0.8, gid="reference|parity")
        set_limits(ax, drawn + [1.0], floor=0.0)
        ax.set(title=f"{panel_title(w, k, nw)}, target {part.target.iloc[0]:g}", ylabel="speedup in steps over AdamW")
    title(fig, "Speedup over AdamW at the tightest target: median ratio, paired 95% interval\n"
                 "(hatched: AdamW never reached it, the speedup is at least the budget ÷ these steps; "
                 "▽: this optimizer never did, it is at most AdamW's steps ÷ the budget)")
    return fig


def fig_oracle_gap(table):
    keys, nw = _groups(table), table["setup"].nunique()
    fig, axes = panels(keys)
    for (w, k), ax in axes.items():
        part = table[(table.setup == w) & (table.k == k)]
        ax.set_title(panel_title(w, k, nw))
        if "gn" not in set(part.label):
            say(ax, "no full Gauss-Newton (gn)\nruns here: no oracle gap", empty=True)
            continue
        others = [o for o in ordered(part.label) if o != "gn"]
        drawn = [1.0, *_against_target(ax, part, "oracle_gap", others, f"{w}|{k}", ratio=True)]
        ax.axhline(1.0, color=colour("gn"), ls="--", lw=1, label="full GN")
        _target_axes(ax, part, drawn, "steps ÷ full GN's steps")
    title(fig, "Gap to the Gauss-Newton oracle: each optimizer's steps over full GN's (paired 95% interval)")
    return fig


def fig_batch_scaling(table, fits):
    keys = sorted({(w, float(t)) for w, t in zip(table["setup"], table["target"])}, key=lambda x: (x[0], -x[1]))
    nw = table["setup"].nunique()
    fig, axes = panels(keys)
    for (w, t), ax in axes.items():
        part = table[(table.setup == w) & (table.target == t)]
        drawn, opts = [], ordered(part.label)
        for i, opt in enumerate(opts):  # each a few points aside (dodge), its fit with it
            shift = (i, len(opts))
            for r in part[part.label == opt].itertuples():
                gid = f"{opt}|{w}|{t:g}|{r.tokens_per_step}"
                if as_float(r.median_steps) is None:
                    mark(ax, "censored", r.tokens_per_step, None, opt, gid, shift)
                    continue
                interval(ax, r.tokens_per_step, r.median_steps, as_float(r.steps_ci_low), as_float(r.steps_ci_high), opt,
                         f"point|{gid}", shift=shift, marker="o", ms=4, ls="none")
                drawn += [r.median_steps, as_float(r.steps_ci_low), as_float(r.steps_ci_high)]
            ax.plot([], [], marker="o", ls="-", color=colour(opt), label=opt)
            _fit_line(ax, fits, w, t, opt, part["tokens_per_step"], dodge(ax, *shift))
        readable_log(ax, "x")
        set_limits(ax, [v * f for v in part.tokens_per_step for f in (1 / 1.4, 1.4)], axis="x", log=True)
        ticks_at(ax, part.tokens_per_step)
        ax.tick_params(axis="x", labelrotation=30)
        readable_log(ax)
        set_limits(ax, drawn, log=True)
        ax.set(title=f"{w}\ntarget {t:g}" if nw > 1 else f"target {t:g}", xlabel="tokens per step (B)",
               ylabel="steps to target S(B)")
        if not drawn:
            say(ax, "no optimizer reached\nthis target within the budget")
    title(fig, "Batch-size scaling: median steps with 95% interval, and S(B) = S_min (1 + B_noise / B) where it fits")
    return fig


def _fit_line(ax, fits, setup, target, opt, tokens, transform) -> None:
    if fits.empty:
        return
    f = fits[(fits.setup == setup) & (fits.target == target) & (fits.label == opt) & fits.follows_model]
    if len(f):
        B = np.geomspace(min(tokens) / 1.25, max(tokens) * 1.25, 50)
        r = f.iloc[0]
        ax.plot(B, r["s_min"] * (1 + r["b_noise"] / B), color=colour(opt), lw=1, alpha=0.7,
                gid=f"fit|{opt}|{setup}|{target:g}", transform=transform)


def fig_cost_to_target(table):
    tight = _tightest(table)
    metrics = [("median_steps", "steps", "steps"), ("median_fwd_equiv", "fwd_equiv", "forward-equivalent passes"),
               ("median_seconds", "seconds", "wall seconds")]
    nw = tight["setup"].nunique()
    keys = [(w, k, m) for w, k in _groups(tight) for m in metrics]
    fig, axes = panels(keys, ncols=3, size=(4.6, 3.4))
    for (w, k, (col, ci, label)), ax in axes.items():
        part = tight[(tight.setup == w) & (tight.k == k)]
        part = part.assign(**{f"{col}_ci_low": part[f"{ci}_ci_low"], f"{col}_ci_high": part[f"{ci}_ci_high"]})
        drawn = _bars(ax, part, col, ordered(part.label), f"{w}|{k}|{ci}")
        set_limits(ax, drawn, floor=0.0)
        ax.set(title=f"{panel_title(w, k, nw)}: {label} to {part.target.iloc[0]:g}")
    title(fig, "Cost to the tightest target: steps, compute and time (median, 95% interval)")
    return fig


def fig_performance_profiles(table):
    fig, axes = panels(["steps", "compute"], ncols=2, size=(5.4, 4.0))
    for (name, column), ax in zip((("steps", "median_steps"), ("compute", "median_fwd_equiv")), axes.values()):
        profiles, cells, unsolved = performance_profiles(table, column)
        for opt, rho in profiles.items():
            ax.step(TAUS, rho, where="post", color=colour(opt), label=opt, gid=f"profile|{opt}|{name}")
        ax.set(xlim=(1.0, float(TAUS[-1])), ylim=(-0.02, 1.04), xlabel="τ (within τ × the best optimizer)",
               ylabel="fraction of cells solved",
               title=f"in {name}: {cells} (K, target) cells" + (f", {unsolved} solved by none" if unsolved else ""))
        if not profiles:
            say(ax, "no cells to score", empty=True)
    title(fig, "Performance profiles (AlgoPerf scoring): cells reached within τ × the best optimizer's cost")
    return fig

