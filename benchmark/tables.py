"""The report's tables, pure functions of the run records: which runs are final, steps, compute and time to
each target per cell with bootstrap intervals and speedups over AdamW, and the batch-size fits.

For each cell (workload, K, optimizer) the suite's tuning runs pick the best setting (steps to the
tightest target first, then looser targets, then final loss: ``metrics.selection_key``); the cell's
*final* runs are every seed of that setting.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from benchmark.metrics import (
    bootstrap_ci,
    censored_median,
    fit_critical_batch,
    paired_speedup_ci,
    selection_key,
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


def _per_run_targets(runs: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
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
                         "target": float(t), "status": r["status"], "steps": s, "fwd_equiv": fe, "seconds": sec,
                         "bracket": r.get(f"bracket_to_{t}")})
    return pd.DataFrame(rows)


def _at_edge(tuned: pd.DataFrame, final: pd.DataFrame) -> bool:
    """The selected learning rate is still the smallest or the largest one the cell's tuning tried."""
    lrs = [float(v) for v in tuned["lr"] if v is not None and not pd.isna(v)]
    if len(final) == 0 or len(set(lrs)) < 2 or pd.isna(final["lr"].iloc[0]):
        return False
    return float(final["lr"].iloc[0]) in (min(lrs), max(lrs))


def _widest(column) -> float | None:
    """The widest bracket of a cell's runs (None when no run records one)."""
    widths = [float(v) for v in column if v is not None and not pd.isna(v)]
    return max(widths) if widths else None


def _by_seed(cell: pd.DataFrame, column: str) -> dict:
    """seed -> value of ``column`` (None where censored) of a cell's final runs."""
    return dict(zip(cell["seed"].astype(int), _censored(cell[column])))


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
        # Paired by seed: every optimizer of one seed starts from the same warm start and reads the same data.
        sp = paired_speedup_ci(_by_seed(base, "steps"), _by_seed(cell, "steps"))
        sp_fe = paired_speedup_ci(_by_seed(base, "fwd_equiv"), _by_seed(cell, "fwd_equiv"))
        hp = runs[(runs["final"]) & (runs.workload == workload) & (runs.k == k) & (runs.optimizer == opt)]
        tuned = runs[(runs["role"] == "tune") & (runs.workload == workload) & (runs.k == k) & (runs.optimizer == opt)]
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
            "speedup_excludes_1": bool(sp[1] > 1 or sp[2] < 1),
            "bracket": _widest(cell["bracket"]),
            "tuning_trials": len(tuned), "at_edge": _at_edge(tuned, hp),
            "runs": len(steps), "reached": sum(v is not None for v in steps),
            "censored": int(((cell["status"] != "diverged") & cell["steps"].isna()).sum()),
            "diverged": int((cell["status"] == "diverged").sum()),
        })
    table = pd.DataFrame(rows)
    return table.sort_values(["workload", "target", "k", "optimizer"], ascending=[True, False, True, True],
                             ignore_index=True)


MIN_R2 = 0.9  # below this the steps do not follow S(B) = S_min (1 + B_noise / B) well enough to quote


def batch_fits(runs: pd.DataFrame, evals: pd.DataFrame, n_boot: int = 1000) -> pd.DataFrame:
    """The critical-batch fit per (workload, target, optimizer) on the median steps at each batch size,
    with an interval for B_noise from resampling seeds (jointly across batch sizes: a seed is one warm
    start and one data order), its R² and residual, and whether the counts follow the model at all."""
    runs = runs if "final" in runs else select_final(runs)
    long = _per_run_targets(runs, evals)
    rows = []
    for (workload, target, opt), part in (long.groupby(["workload", "target", "optimizer"], sort=True)
                                          if not long.empty else []):
        by_k = {int(k): _by_seed(cell, "steps") for k, cell in part.groupby("k")}
        tokens = [int(part[part.k == k]["tokens_per_step"].iloc[0]) for k in by_k]
        fit = fit_critical_batch(tokens, [censored_median(list(v.values())) for v in by_k.values()])
        if fit is None:
            continue
        lo, hi = _b_noise_interval(tokens, by_k, n_boot)
        follows = fit["r2"] is None or fit["r2"] >= MIN_R2
        rows.append({"workload": workload, "target": target, "optimizer": opt, **fit, "b_noise_ci_low": lo,
                     "b_noise_ci_high": hi, "follows_model": follows})
    return pd.DataFrame(rows)


def _b_noise_interval(tokens: list[int], by_k: dict[int, dict], n_boot: int) -> tuple[float | None, float | None]:
    """95% percentile interval of B_noise over resamples of the seeds every batch size has."""
    seeds = sorted(set.intersection(*(set(v) for v in by_k.values())))
    if len(seeds) < 2:
        return None, None
    rng, fitted = np.random.default_rng(0), []
    for _ in range(n_boot):
        pick = rng.choice(seeds, size=len(seeds))
        fit = fit_critical_batch(tokens, [censored_median([v[s] for s in pick]) for v in by_k.values()])
        if fit is not None:
            fitted.append(fit["b_noise"])
    if len(fitted) < n_boot / 2:  # most resamples give no physical fit: no interval worth printing
        return None, None
    lo, hi = np.quantile(fitted, [0.025, 0.975], method="inverted_cdf")
    return float(lo), float(hi)


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
