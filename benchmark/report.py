"""Reports are pure functions of the run records: the same records always give the same tables."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from benchmark import BenchError  # noqa: E402
from benchmark.metrics import bootstrap_ci, censored_median  # noqa: E402
from benchmark.store import ResultsStore  # noqa: E402


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (workload, target, K, optimizer): median steps-to-target with its bootstrap interval
    over the reaching runs, how many runs reached / were censored / diverged, and the speedup of the
    median over AdamW's."""
    rows = []
    targets = sorted({c.removeprefix("steps_to_") for c in runs.columns if c.startswith("steps_to_")},
                     key=float, reverse=True)
    for (workload, k, opt), cell in runs.groupby(["workload", "k", "optimizer"], sort=True):
        for target in targets:
            col = f"steps_to_{target}"
            if col not in cell or cell[col].isna().all() and cell["status"].eq("diverged").all() is False:
                pass
            values = [None if pd.isna(v) else float(v) for v in cell.get(col, pd.Series(dtype=float))]
            reached = [v for v in values if v is not None]
            med, lo, hi = bootstrap_ci(reached)
            rows.append({
                "workload": workload, "target": float(target), "k": int(k),
                "tokens_per_step": int(cell["tokens_per_step"].iloc[0]), "optimizer": opt,
                "median_steps": censored_median(values), "ci_low": lo if reached else None,
                "ci_high": hi if reached else None, "runs": len(values), "reached": len(reached),
                "censored": int(((cell["status"] != "diverged") & cell[col].isna()).sum()),
                "diverged": int((cell["status"] == "diverged").sum()),
                "median_fwd_equiv_per_step": float(cell["costs"].map(lambda c: c["forward_equivalents"]).sum()
                                                   / cell["steps_run"].clip(lower=1).sum()),
                "seconds_per_step": float(cell["seconds_per_step"].median()),
            })
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    base = table[table["optimizer"] == "adamw"].set_index(["workload", "target", "k"])["median_steps"]
    table["speedup_vs_adamw"] = [
        (base.get((r.workload, r.target, r.k)) / r.median_steps)
        if r.median_steps and base.get((r.workload, r.target, r.k)) else None
        for r in table.itertuples()
    ]
    return table.sort_values(["workload", "target", "k", "optimizer"], ascending=[True, False, True, True])


def _fmt(v, spec="{:.1f}") -> str:
    return "—" if v is None or pd.isna(v) else spec.format(v)


def leaderboard_markdown(table: pd.DataFrame, runs: pd.DataFrame) -> str:
    lines = ["# optbench leaderboard", ""]
    for (workload, target), part in table.groupby(["workload", "target"], sort=False):
        lines += [f"## {workload}: steps to validation loss {target:g}", "",
                  "| K | tokens/step | optimizer | median steps [95% CI] | speedup vs AdamW | reached / censored / diverged | fwd-equiv per step |",
                  "|---:|---:|---|---|---:|---|---:|"]
        for r in part.itertuples():
            interval = f" [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]" if r.median_steps is not None and not pd.isna(r.median_steps) else ""
            speed = _fmt(r.speedup_vs_adamw, "{:.2f}×")
            lines.append(f"| {r.k} | {r.tokens_per_step} | {r.optimizer} | {_fmt(r.median_steps)}{interval} | "
                         f"{speed} | {r.reached} / {r.censored} / {r.diverged} | {r.median_fwd_equiv_per_step:.1f} |")
        lines.append("")
    prov = runs[["code_version", "corpus"]].assign(corpus=runs["corpus"].map(lambda c: c.get("name")))
    lines += ["Median over seeds; interval: percentile bootstrap of the median over the runs that reached the "
              "target; a median is censored (—) when more than half the runs never reached it.", "",
              f"Code versions: {', '.join(sorted(set(prov['code_version'])))}. "
              f"Corpora: {', '.join(sorted(set(prov['corpus'])))}.", ""]
    return "\n".join(lines)


def loss_curves(runs: pd.DataFrame, evals: pd.DataFrame, path: Path) -> None:
    df = evals.merge(runs[["run_id", "workload", "optimizer", "k", "seed"]], on="run_id")
    ks = sorted(df["k"].unique())
    fig, axes = plt.subplots(1, len(ks), figsize=(5 * len(ks), 4), squeeze=False, sharey=True)
    targets = sorted({float(c.removeprefix("steps_to_")) for c in runs.columns if c.startswith("steps_to_")})
    for ax, k in zip(axes[0], ks):
        sns.lineplot(data=df[df["k"] == k], x="step", y="val_loss", hue="optimizer", estimator="median",
                     errorbar=("pi", 100), ax=ax, hue_order=sorted(df["optimizer"].unique()))
        for t in targets:
            ax.axhline(t, color="grey", lw=0.8, ls="--")
        ax.set_title(f"K = {k}")
        ax.set_xlabel("outer step")
        ax.set_ylabel("validation loss (nats)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render(results: Path, out: Path) -> list[Path]:
    store = ResultsStore(results)
    if not store.runs_dir.exists():
        raise BenchError(f"no run records under {str(results)!r} (expected {str(store.runs_dir)!r})")
    runs, evals = store.load()
    if runs.empty:
        raise BenchError(f"no readable run records under {str(store.runs_dir)!r}")
    out.mkdir(parents=True, exist_ok=True)
    table = summary_table(runs)
    written = []
    md = out / "leaderboard.md"
    md.write_text(leaderboard_markdown(table, runs))
    written.append(md)
    csv = out / "summary.csv"
    table.to_csv(csv, index=False)
    written.append(csv)
    png = out / "loss_curves.png"
    loss_curves(runs, evals, png)
    written.append(png)
    return written
