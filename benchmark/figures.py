"""The report's figures (PNG and SVG): loss curves, steps against the target, batch-size scaling with its
fit, speedups, learning-rate sensitivity and cost to target. Tables and most figures use each cell's final
runs; the learning-rate sensitivity figure uses every tuning run."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from benchmark.tables import targets_of  # noqa: E402

FIGURES = ("loss_curves", "steps_vs_target", "batch_scaling", "speedup", "lr_sensitivity", "cost_to_target")


def _save(fig, out: Path, name: str) -> list[Path]:
    fig.tight_layout()
    paths = []
    for ext in ("png", "svg"):
        p = out / f"{name}.{ext}"
        fig.savefig(p, dpi=110, metadata={"Date": None} if ext == "svg" else None)
        paths.append(p)
    plt.close(fig)
    return paths


def _palette(optimizers) -> dict:
    names = sorted(optimizers)
    return dict(zip(names, sns.color_palette("colorblind", len(names))))


def fig_loss_curves(runs, evals, out):
    final = runs[runs["final"]]
    df = evals.merge(final[["run_id", "optimizer", "k"]], on="run_id")
    ks = sorted(df["k"].unique())
    pal = _palette(df["optimizer"].unique())
    fig, axes = plt.subplots(1, len(ks), figsize=(5 * len(ks), 4), squeeze=False, sharey=True)
    for ax, k in zip(axes[0], ks):
        for opt, part in df[df["k"] == k].groupby("optimizer"):
            g = part.groupby("step")["val_loss"]
            med, lo, hi = g.median(), g.min(), g.max()
            ax.plot(med.index, med.values, label=opt, color=pal[opt])
            ax.fill_between(med.index, lo.values, hi.values, color=pal[opt], alpha=0.2)
        for t in targets_of(runs):
            ax.axhline(float(t), color="grey", lw=0.8, ls="--")
        ax.set(title=f"K = {k}", xlabel="outer step", ylabel="validation loss (nats)")
        ax.legend(fontsize=8)
    fig.suptitle("Validation loss: median over seeds, band = min–max")
    return _save(fig, out, "loss_curves")


def fig_steps_vs_target(table, out):
    ks = sorted(table["k"].unique())
    pal = _palette(table["optimizer"].unique())
    fig, axes = plt.subplots(1, len(ks), figsize=(5 * len(ks), 4), squeeze=False)
    for ax, k in zip(axes[0], ks):
        for opt, part in table[table["k"] == k].groupby("optimizer"):
            part = part.sort_values("target", ascending=False)
            y = part["median_steps"].astype(float)
            yerr = np.array([y - part["steps_ci_low"].astype(float), part["steps_ci_high"].astype(float) - y])
            ax.errorbar(part["target"], y, yerr=np.nan_to_num(yerr), marker="o", label=opt, color=pal[opt], capsize=3)
        ax.invert_xaxis()
        ax.set(title=f"K = {k}", xlabel="target validation loss (tighter →)", ylabel="steps to target")
        ax.legend(fontsize=8)
    fig.suptitle("Steps to target as the target tightens (censored medians omitted)")
    return _save(fig, out, "steps_vs_target")


def fig_batch_scaling(table, fits, out):
    targets = sorted(table["target"].unique(), reverse=True)
    pal = _palette(table["optimizer"].unique())
    fig, axes = plt.subplots(1, len(targets), figsize=(5 * len(targets), 4), squeeze=False)
    for ax, t in zip(axes[0], targets):
        part_t = table[table["target"] == t]
        for opt, part in part_t.groupby("optimizer"):
            y = part["median_steps"].astype(float)
            yerr = np.array([y - part["steps_ci_low"].astype(float), part["steps_ci_high"].astype(float) - y])
            ax.errorbar(part["tokens_per_step"], y, yerr=np.nan_to_num(yerr), marker="o", ls="none",
                        color=pal[opt], label=opt, capsize=3)
            f = fits[(fits["target"] == t) & (fits["optimizer"] == opt) & fits["follows_model"]] if not fits.empty else fits
            if len(f):
                B = np.geomspace(part_t["tokens_per_step"].min() / 2, part_t["tokens_per_step"].max() * 2, 50)
                r = f.iloc[0]
                ax.plot(B, r["s_min"] * (1 + r["b_noise"] / B), color=pal[opt], lw=1, alpha=0.8)
        ax.set(xscale="log", yscale="log", title=f"target {t:g}", xlabel="tokens per step (B)",
               ylabel="steps to target S(B)")
        ax.legend(fontsize=8)
    fig.suptitle("Batch-size scaling with fitted S(B) = S_min (1 + B_noise / B)")
    return _save(fig, out, "batch_scaling")


def fig_speedup(table, out):
    t = table["target"].min()
    part = table[(table["target"] == t) & (table["optimizer"] != "adamw")].copy()
    ks = sorted(table["k"].unique())
    fig, axes = plt.subplots(1, len(ks), figsize=(5 * len(ks), 4), squeeze=False, sharey=True)
    for ax, k in zip(axes[0], ks):
        p = part[part["k"] == k].sort_values("optimizer")
        y = p["speedup_vs_adamw"].astype(float).to_numpy()
        err = np.array([y - p["speedup_ci_low"].astype(float).to_numpy(), p["speedup_ci_high"].astype(float).to_numpy() - y])
        ax.bar(p["optimizer"], np.nan_to_num(y), yerr=np.nan_to_num(err), capsize=4, color="tab:blue", alpha=0.7)
        ax.axhline(1.0, color="grey", ls="--", lw=0.8)
        ax.set(title=f"K = {k}, target {t:g}", ylabel="speedup in steps over AdamW")
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle("Speedup over AdamW (median ratio, 95% bootstrap interval; missing = censored)")
    return _save(fig, out, "speedup")


def fig_lr_sensitivity(runs, out):
    tune = runs[runs["role"] == "tune"].copy()
    if tune.empty:
        tune = runs.copy()
    tight = targets_of(runs)[-1]
    ks = sorted(tune["k"].unique())
    pal = _palette(tune["optimizer"].unique())
    fig, axes = plt.subplots(2, len(ks), figsize=(5 * len(ks), 7), squeeze=False, sharex="col")
    for j, k in enumerate(ks):
        for opt, part in tune[tune["k"] == k].groupby("optimizer"):
            part = part.sort_values("lr")
            steps = part[f"steps_to_{tight}"].astype(float)
            axes[0][j].plot(part["lr"], steps, marker="o", color=pal[opt], label=opt)
            div, pruned = part["status"] == "diverged", part["status"] == "pruned"
            axes[1][j].plot(part["lr"], part["final_val_loss"].astype(float), marker="o", color=pal[opt], label=opt)
            axes[1][j].scatter(part.loc[div, "lr"], part.loc[div, "final_val_loss"].astype(float).fillna(0),
                               marker="x", color="red")
            # a pruned run's last loss is where it stopped, not where its budget would have ended
            axes[1][j].scatter(part.loc[pruned, "lr"], part.loc[pruned, "final_val_loss"].astype(float),
                               marker="v", s=60, facecolors="white", edgecolors=pal[opt], zorder=3)
        axes[0][j].set(xscale="log", title=f"K = {k}", ylabel=f"steps to {tight} (gaps: not reached)")
        axes[1][j].set(xscale="log", xlabel="learning rate", ylabel="validation loss at the run's end")
        for ax in (axes[0][j], axes[1][j]):
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axes[0][j].legend(fontsize=8)
    fig.suptitle("Learning-rate sensitivity over every tuning run (x: diverged; ▽: pruned, its loss where it stopped)")
    return _save(fig, out, "lr_sensitivity")


def fig_cost_to_target(table, out):
    t = table["target"].min()
    part = table[table["target"] == t]
    ks = sorted(part["k"].unique())
    metrics = [("median_steps", "steps"), ("median_fwd_equiv", "forward-equivalent passes"),
               ("median_seconds", "wall seconds")]
    fig, axes = plt.subplots(len(ks), 3, figsize=(14, 3.5 * len(ks)), squeeze=False)
    for i, k in enumerate(ks):
        p = part[part["k"] == k].sort_values("optimizer")
        for j, (col, label) in enumerate(metrics):
            axes[i][j].bar(p["optimizer"], p[col].astype(float).fillna(0), color="tab:green", alpha=0.7)
            axes[i][j].set(title=f"K = {k}: {label} to {t:g}")
            axes[i][j].tick_params(axis="x", rotation=30)
    fig.suptitle("Cost to target: steps, compute and time side by side (0 = not reached)")
    return _save(fig, out, "cost_to_target")


def render_figures(runs, evals, table, fits, out: Path) -> list[Path]:
    """Every figure, in the order of ``FIGURES``; the paths written."""
    plt.rcParams["svg.hashsalt"] = "optbench"
    return [*fig_loss_curves(runs, evals, out), *fig_steps_vs_target(table, out), *fig_batch_scaling(table, fits, out),
            *fig_speedup(table, out), *fig_lr_sensitivity(runs, out), *fig_cost_to_target(table, out)]
