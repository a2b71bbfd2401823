"""Reports are pure functions of the run records: the same records always give byte-identical tables.

For each cell (workload, K, optimizer) the suite's tuning runs pick the best setting (steps to the
tightest target first, then looser targets, then final loss: ``suites.selection_key``); the cell's
*final* runs are every seed of that setting. Tables and most figures use the final runs; the
learning-rate sensitivity figure uses every tuning run.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from benchmark import BenchError  # noqa: E402
from benchmark.metrics import (  # noqa: E402
    bootstrap_ci,
    censored_median,
    fit_critical_batch,
    speedup_ci,
    value_at_step,
)
from benchmark.store import ResultsStore  # noqa: E402
from benchmark.suites import selection_key  # noqa: E402

LEADERBOARD_SCHEMA = {"schema": "optbench-leaderboard", "version": 1}
FIGURES = ("loss_curves", "steps_vs_target", "batch_scaling", "speedup", "lr_sensitivity", "cost_to_target")


def _hp_key(overrides) -> str:
    return json.dumps(overrides or {}, sort_keys=True)


def _targets(runs: pd.DataFrame) -> list[str]:
    return sorted({c.removeprefix("steps_to_") for c in runs.columns if c.startswith("steps_to_")},
                  key=float, reverse=True)


def select_final(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with a ``final`` column: the runs of each cell's selected setting."""
    runs = runs.copy()
    runs["hp_key"] = runs["hparam_overrides"].map(_hp_key)
    runs["final"] = False
    targets = _targets(runs)
    for _, cell in runs.groupby(["workload", "workload_key", "k", "optimizer"], sort=True):
        tune = cell[cell["role"] == "tune"]
        if tune.empty:
            runs.loc[cell.index, "final"] = True
            continue
        seed0 = tune[tune["seed"] == tune["seed"].min()]

        def key(row):
            steps = {t: (None if pd.isna(row.get(f"steps_to_{t}")) else row[f"steps_to_{t}"]) for t in targets}
            rec = {"steps_to_target": steps, "final_val_loss": row["final_val_loss"], "status": row["status"]}
            return (selection_key(rec, tuple(float(t) for t in targets)), row["run_id"])

        best = min((row for _, row in seed0.iterrows()), key=key)
        runs.loc[cell.index[cell["hp_key"] == best["hp_key"]], "final"] = True
    return runs


def _per_run_targets(runs: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per (final run, target) with steps, compute and time to the target."""
    rows = []
    by_run = {rid: g.sort_values("step") for rid, g in evals.groupby("run_id")}
    for _, r in runs[runs["final"]].iterrows():
        ev = by_run.get(r["run_id"])
        for t in _targets(runs):
            s = r.get(f"steps_to_{t}")
            s = None if s is None or pd.isna(s) else float(s)
            fe = sec = None
            if ev is not None and s is not None:
                fe = value_at_step(ev["step"].tolist(), ev["forward_equivalents"].tolist(), s)
                sec = value_at_step(ev["step"].tolist(), ev["train_seconds"].tolist(), s)
            rows.append({"workload": r["workload"], "k": int(r["k"]), "tokens_per_step": int(r["tokens_per_step"]),
                         "optimizer": r["optimizer"], "seed": int(r["seed"]), "run_id": r["run_id"],
                         "target": float(t), "status": r["status"], "steps": s, "fwd_equiv": fe, "seconds": sec})
    return pd.DataFrame(rows)


def _censored(column) -> list:
    """A column's values with None where the run never reached the target (missing, NaN or None)."""
    return [None if pd.isna(v) else v for v in column]


def summary_table(runs: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    runs = runs if "final" in runs else select_final(runs)
    long = _per_run_targets(runs, evals)
    if long.empty:
        return pd.DataFrame()
    rows = []
    for (workload, target, k, opt), cell in long.groupby(["workload", "target", "k", "optimizer"], sort=True):
        # Censored runs count as +inf everywhere: medians, intervals and speedups never forget them.
        steps, fwd, sec = (_censored(cell[c]) for c in ("steps", "fwd_equiv", "seconds"))
        _, lo, hi = bootstrap_ci(steps)
        _, fe_lo, fe_hi = bootstrap_ci(fwd)
        base = long[(long.workload == workload) & (long.target == target) & (long.k == k)
                    & (long.optimizer == "adamw")]
        base_steps, base_fwd = _censored(base["steps"]), _censored(base["fwd_equiv"])
        sp = speedup_ci(base_steps, steps) if len(base) else (math.nan,) * 3
        sp_fe = speedup_ci(base_fwd, fwd) if len(base) else (math.nan,) * 3
        hp = runs[(runs["final"]) & (runs.workload == workload) & (runs.k == k) & (runs.optimizer == opt)]
        median = censored_median(steps)
        rows.append({
            "workload": workload, "target": target, "k": int(k), "tokens_per_step": int(cell["tokens_per_step"].iloc[0]),
            "optimizer": opt, "setting": _hp_label(hp["hparam_overrides"].iloc[0]) if len(hp) else "",
            "median_steps": median, "steps_ci_low": lo if median is not None else None,
            "steps_ci_high": hi if median is not None else None,
            "median_fwd_equiv": censored_median(fwd), "fwd_equiv_ci_low": fe_lo if median is not None else None,
            "fwd_equiv_ci_high": fe_hi if median is not None else None, "median_seconds": censored_median(sec),
            "speedup_vs_adamw": _nan_none(sp[0]), "speedup_ci_low": _nan_none(sp[1]),
            "speedup_ci_high": _nan_none(sp[2]), "compute_speedup_vs_adamw": _nan_none(sp_fe[0]),
            "runs": len(steps), "reached": sum(v is not None for v in steps),
            "censored": int(((cell["status"] != "diverged") & cell["steps"].isna()).sum()),
            "diverged": int((cell["status"] == "diverged").sum()),
        })
    table = pd.DataFrame(rows)
    return table.sort_values(["workload", "target", "k", "optimizer"], ascending=[True, False, True, True],
                             ignore_index=True)


def batch_fits(table: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (workload, target, opt), part in table.groupby(["workload", "target", "optimizer"], sort=True):
        fit = fit_critical_batch(part["tokens_per_step"].tolist(), part["median_steps"].tolist())
        if fit:
            rows.append({"workload": workload, "target": target, "optimizer": opt, **fit})
    return pd.DataFrame(rows)


def _nan_none(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _hp_label(overrides) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted((overrides or {}).items()))


def _fmt(v, spec="{:.1f}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return "∞" if isinstance(v, float) and math.isinf(v) else spec.format(v)


def leaderboard_markdown(table: pd.DataFrame, fits: pd.DataFrame, runs: pd.DataFrame) -> str:
    lines = ["# optbench leaderboard", ""]
    for (workload, target), part in table.groupby(["workload", "target"], sort=False):
        lines += [f"## {workload}: steps to validation loss {target:g}", "",
                  "| K | tokens/step | optimizer | setting | median steps [95% CI] | speedup vs AdamW [95% CI] "
                  "| compute to target (fwd-equiv) | compute speedup | time to target (s) | reached / censored / diverged |",
                  "|---:|---:|---|---|---|---|---:|---:|---:|---|"]
        for r in part.itertuples():
            steps = _fmt(r.median_steps)
            if r.steps_ci_low is not None and not pd.isna(r.steps_ci_low):
                steps += f" [{_fmt(r.steps_ci_low)}, {_fmt(r.steps_ci_high)}]"
            sp = _fmt(r.speedup_vs_adamw, "{:.2f}×")
            if r.speedup_ci_low is not None and not pd.isna(r.speedup_ci_low):
                sp += f" [{_fmt(r.speedup_ci_low, '{:.2f}')}, {_fmt(r.speedup_ci_high, '{:.2f}')}]"
            lines.append(f"| {r.k} | {r.tokens_per_step} | {r.optimizer} | {r.setting} | {steps} | {sp} | "
                         f"{_fmt(r.median_fwd_equiv, '{:.0f}')} | {_fmt(r.compute_speedup_vs_adamw, '{:.2f}×')} | "
                         f"{_fmt(r.median_seconds, '{:.1f}')} | {r.reached} / {r.censored} / {r.diverged} |")
        lines.append("")
    if not fits.empty:
        lines += ["## Critical batch size: S(B) = S_min (1 + B_noise / B)", "",
                  "| workload | target | optimizer | S_min | B_noise (tokens) | R² | batch sizes |", "|---|---:|---|---:|---:|---:|---:|"]
        for r in fits.itertuples():
            lines.append(f"| {r.workload} | {r.target:g} | {r.optimizer} | {r.s_min:.1f} | {r.b_noise:,.0f} | "
                         f"{_fmt(r.r2, '{:.3f}')} | {r.points} |")
        lines.append("")
    lines += [
        "Median over seeds of each cell's selected setting; intervals are percentile bootstraps (2000 "
        "resamples, fixed seed) in which runs that never reached the target count as infinitely many steps "
        "(a bound of ∞ means too many resamples were censored); a median is censored (—) when more than half "
        "the runs never reached the target, and then no speedup is given. R² needs three batch sizes or more. Compute counts forward-equivalent micro-batch passes "
        "(forward 1, backward 2, JVP 2), line searches included.", "",
        "Provenance: " + _provenance(runs), "",
    ]
    return "\n".join(lines)


def _provenance(runs: pd.DataFrame) -> str:
    code = sorted(set(runs["code_version"]))
    corpora = sorted({c.get("name", "?") for c in runs["corpus"]})
    devices = sorted({f"{d.get('type')}:{d.get('name')}" for d in runs["device"]})
    return f"code {', '.join(code)}; corpus {', '.join(corpora)}; device {', '.join(devices)}."


# ---------------------------------------------------------------------------------------------- figures


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
        for t in _targets(runs):
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
            f = fits[(fits["target"] == t) & (fits["optimizer"] == opt)] if not fits.empty else fits
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
    tight = _targets(runs)[-1]
    ks = sorted(tune["k"].unique())
    pal = _palette(tune["optimizer"].unique())
    fig, axes = plt.subplots(2, len(ks), figsize=(5 * len(ks), 7), squeeze=False, sharex="col")
    for j, k in enumerate(ks):
        for opt, part in tune[tune["k"] == k].groupby("optimizer"):
            part = part.sort_values("lr")
            steps = part[f"steps_to_{tight}"].astype(float)
            axes[0][j].plot(part["lr"], steps, marker="o", color=pal[opt], label=opt)
            div = part["status"] == "diverged"
            axes[1][j].plot(part["lr"], part["final_val_loss"].astype(float), marker="o", color=pal[opt], label=opt)
            axes[1][j].scatter(part.loc[div, "lr"], part.loc[div, "final_val_loss"].astype(float).fillna(0),
                               marker="x", color="red")
        axes[0][j].set(xscale="log", title=f"K = {k}", ylabel=f"steps to {tight} (gaps: not reached)")
        axes[1][j].set(xscale="log", xlabel="learning rate", ylabel="validation loss at the run's end")
        for ax in (axes[0][j], axes[1][j]):
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axes[0][j].legend(fontsize=8)
    fig.suptitle("Learning-rate sensitivity over every tuning run (x: diverged)")
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


# ---------------------------------------------------------------------------------------------- outputs


def leaderboard_json(table: pd.DataFrame, fits: pd.DataFrame, runs: pd.DataFrame) -> dict:
    def clean(records):
        return [{k: _nan_none(v) for k, v in r.items()} for r in records]

    return {
        **LEADERBOARD_SCHEMA,
        "entries": clean(table.to_dict("records")),
        "batch_fits": clean(fits.to_dict("records")) if not fits.empty else [],
        "runs": sorted(runs["run_id"]),
        "provenance": {"code_versions": sorted(set(runs["code_version"])),
                       "corpora": sorted({c.get("name", "?") for c in runs["corpus"]}),
                       "devices": sorted({f"{d.get('type')}:{d.get('name')}" for d in runs["device"]})},
    }


def html_page(md_table: str, table: pd.DataFrame, figures: list[Path], runs: pd.DataFrame, skipped: dict) -> str:
    imgs = []
    for p in figures:
        if p.suffix == ".png":
            data = base64.b64encode(p.read_bytes()).decode()
            imgs.append(f'<figure><img alt="{p.stem}" src="data:image/png;base64,{data}"><figcaption>{p.stem}'
                        "</figcaption></figure>")
    cols = ["workload", "target", "k", "tokens_per_step", "optimizer", "setting", "median_steps", "steps_ci_low",
            "steps_ci_high", "speedup_vs_adamw", "median_fwd_equiv", "median_seconds", "reached", "censored", "diverged"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r[c]))}</td>" for c in cols) + "</tr>"
                   for r in table.to_dict("records"))
    note = f"<p>Skipped records: {html.escape(json.dumps(skipped))}</p>" if skipped else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>optbench report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}img{{max-width:100%}}figure{{margin:1em 0}}</style>
</head><body>
<h1>optbench report</h1>
<p>{len(runs)} runs; {html.escape(_provenance(runs))}</p>{note}
<h2>Leaderboard</h2>
<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>Figures</h2>
{''.join(imgs)}
</body></html>
"""


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def load(results: Path):
    store = ResultsStore(results)
    if not store.runs_dir.exists():
        raise BenchError(f"no run records under {str(results)!r} (expected {str(store.runs_dir)!r})")
    records, skipped = store.records()
    from benchmark.store import frames

    runs, evals = frames(records)
    if runs.empty:
        raise BenchError(f"no readable run records under {str(store.runs_dir)!r}")
    # A cell never pools different workload versions, corpora or numerics: they name the setup.
    def setup(r) -> str:
        corpus = (r.get("corpus") or {}).get("name", "?")
        numerics = r.get("numerics")  # absent (NaN) in records older than the field
        return f"{r['workload']} v{r['workload_version']} · {corpus}" + (
            f" · {numerics}" if isinstance(numerics, str) and numerics else "")

    runs["workload"] = [setup(r) for r in runs.to_dict("records")]
    return runs, evals, skipped


def render(results: Path, out: Path) -> list[Path]:
    runs, evals, skipped = load(results)
    if skipped:
        import warnings

        warnings.warn("skipped records: " + ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())),
                      stacklevel=2)
    runs = select_final(runs)
    table = summary_table(runs, evals)
    fits = batch_fits(table)
    out.mkdir(parents=True, exist_ok=True)
    plt.rcParams["svg.hashsalt"] = "optbench"
    figures = []
    figures += fig_loss_curves(runs, evals, out)
    figures += fig_steps_vs_target(table, out)
    figures += fig_batch_scaling(table, fits, out)
    figures += fig_speedup(table, out)
    figures += fig_lr_sensitivity(runs, out)
    figures += fig_cost_to_target(table, out)
    md = leaderboard_markdown(table, fits, runs)
    written = []
    for name, text in (("leaderboard.md", md),
                       ("summary.csv", table.to_csv(index=False, float_format="%.6g")),
                       ("batch_fits.csv", fits.to_csv(index=False, float_format="%.6g")),
                       ("leaderboard.json", json.dumps(leaderboard_json(table, fits, runs), indent=1, sort_keys=True))):
        (out / name).write_text(text)
        written.append(out / name)
    page = out / "index.html"
    page.write_text(html_page(md, table, figures, runs, skipped))
    return [*written, page, *figures]

