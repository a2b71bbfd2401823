"""The report's tables, pure functions of the run records: which runs are final, steps, compute and time to
each target per cell with bootstrap intervals and speedups over AdamW, and the batch-size fits.

For each cell (workload, K, optimizer) the suite's tuning runs pick the best setting (steps to the
tightest target first, then looser targets, then final loss: ``metrics.selection_key``); the cell's
*final* runs are every seed of that setting.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from benchmark.metrics import (
    bootstrap_ci,
    censored_median,
    fit_critical_batch,
    selection_key,
    speedup_ci,
    value_at_step,
)


def _hp_key(overrides) -> str:
    return json.dumps(overrides or {}, sort_keys=True)


def targets_of(runs: pd.DataFrame) -> list[str]:
    return sorted({c.removeprefix("steps_to_") for c in runs.columns if c.startswith("steps_to_")},
                  key=float, reverse=True)


def select_final(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with a ``final`` column: the runs of each cell's selected setting."""
    runs = runs.copy()
    runs["hp_key"] = runs["hparam_overrides"].map(_hp_key)
    runs["final"] = False
    targets = targets_of(runs)
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


def _per_runtargets_of(runs: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per (final run, target) with steps, compute and time to the target."""
    rows = []
    by_run = {rid: g.sort_values("step") for rid, g in evals.groupby("run_id")}
    for _, r in runs[runs["final"]].iterrows():
        ev = by_run.get(r["run_id"])
        for t in targets_of(runs):
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
    long = _per_runtargets_of(runs, evals)
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
            "optimizer": opt, "setting": hp_label(hp["hparam_overrides"].iloc[0]) if len(hp) else "",
            "median_steps": median, "steps_ci_low": lo if median is not None else None,
            "steps_ci_high": hi if median is not None else None,
            "median_fwd_equiv": censored_median(fwd), "fwd_equiv_ci_low": fe_lo if median is not None else None,
            "fwd_equiv_ci_high": fe_hi if median is not None else None, "median_seconds": censored_median(sec),
            "speedup_vs_adamw": nan_none(sp[0]), "speedup_ci_low": nan_none(sp[1]),
            "speedup_ci_high": nan_none(sp[2]), "compute_speedup_vs_adamw": nan_none(sp_fe[0]),
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


def nan_none(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def hp_label(overrides) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted((overrides or {}).items()))


def fmt(v, spec="{:.1f}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return "∞" if isinstance(v, float) and math.isinf(v) else spec.format(v)


def provenance(runs: pd.DataFrame) -> str:
    code = sorted(set(runs["code_version"]))
    corpora = sorted({c.get("name", "?") for c in runs["corpus"]})
    devices = sorted({f"{d.get('type')}:{d.get('name')}" for d in runs["device"]})
    return f"code {', '.join(code)}; corpus {', '.join(corpora)}; device {', '.join(devices)}."
