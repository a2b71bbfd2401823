"""The report's tables, pure functions of the run records: which runs are final, and steps, compute and
time to each target per cell with bootstrap intervals, paired speedups over AdamW and over the best
first-order method, and the gap to full Gauss-Newton. One order of optimizers serves every table and figure.

For each cell (workload, K, optimizer) the suite's tuning runs pick the best setting (steps to the
tightest target first, then looser targets, then final loss: ``metrics.selection_key``); the cell's
*final* runs are every seed of that setting.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from benchmark.metrics import bootstrap_ci, censored_median, paired_speedup_ci, selection_key, value_at_step


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


OPTIMIZER_ORDER = ("adamw", "muon", "soap", "gn", "gn-prox-linear", "layerwise-gn")


def optimizer_rank(name: str) -> tuple:
    """The one order of optimizers in every table and figure: the baseline, the other first-order methods,
    the Gauss-Newton family, then any other backend by name."""
    return (OPTIMIZER_ORDER.index(name), "") if name in OPTIMIZER_ORDER else (len(OPTIMIZER_ORDER), name)


def ordered(names) -> list[str]:
    return sorted(set(names), key=optimizer_rank)


def per_run_targets(runs: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per (final run, target) with steps, compute and time to the target."""
    rows = []
    by_run = {rid: g.sort_values("step") for rid, g in evals.groupby("run_id")} if "run_id" in evals else {}
    for _, r in runs[runs["final"]].iterrows():
        ev = by_run.get(r["run_id"])
        own = r.get("targets")  # a run's own targets: records of other workloads may have others
        for t in own if isinstance(own, list) else targets_of(runs):
            s = r.get(f"steps_to_{t}")
            s = None if s is None or pd.isna(s) else float(s)
            fe = sec = None
            if ev is not None and s is not None:
                fe = value_at_step(ev["step"].tolist(), ev["forward_equivalents"].tolist(), s)
                sec = value_at_step(ev["step"].tolist(), ev["train_seconds"].tolist(), s)
            rows.append({"workload": r["workload"], "k": int(r["k"]), "tokens_per_step": int(r["tokens_per_step"]),
                         "optimizer": r["optimizer"], "family": r.get("optimizer_family", "unknown"),
                         "seed": int(r["seed"]), "run_id": r["run_id"], "target": float(t), "status": r["status"],
                         "budget": r.get("budget"), "steps": s, "fwd_equiv": fe, "seconds": sec,
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


def by_seed(cell: pd.DataFrame, column: str) -> dict:
    """seed -> value of ``column`` (None where censored) of a cell's final runs."""
    return dict(zip(cell["seed"].astype(int), censored(cell[column])))


def censored(column) -> list:
    """A column's values with None where the run never reached the target (missing, NaN or None)."""
    return [None if v is None or pd.isna(v) else v for v in column]


def _interval(prefix: str, values: list, median) -> dict:
    """``{prefix}_ci_low/high``: a bootstrap interval, given only where the median itself is not censored."""
    _, lo, hi = bootstrap_ci(values)
    ok = median is not None
    return {f"{prefix}_ci_low": lo if ok else None, f"{prefix}_ci_high": hi if ok else None}


def _ratio(prefix: str, baseline: dict | None, ours: dict) -> dict:
    """``{prefix}`` and its paired interval: median(baseline) / median(ours), seeds resampled jointly
    (every optimizer of one seed starts from the same warm start and reads the same data)."""
    point, lo, hi = paired_speedup_ci(baseline, ours) if baseline is not None else (None, None, None)
    return {prefix: nan_none(point), f"{prefix}_ci_low": nan_none(lo), f"{prefix}_ci_high": nan_none(hi)}


def _excludes_1(ratio: dict, prefix: str) -> bool:
    lo, hi = ratio[f"{prefix}_ci_low"], ratio[f"{prefix}_ci_high"]
    return lo is not None and hi is not None and (lo > 1 or hi < 1)


def _best_first_order(cells: dict[str, pd.DataFrame], steps: dict[str, dict]) -> str | None:
    """The first-order optimizer with the fewest median steps in a (workload, target, K) group."""
    first_order = [o for o, c in cells.items() if c["family"].iloc[0] == "first-order"]
    if not first_order:
        return None
    return min(ordered(first_order), key=lambda o: _inf(censored_median(list(steps[o].values()))))


def _at_least(baseline: dict | None, median: float | None, budgets: list[float]) -> float | None:
    """Where AdamW's median is censored and ours is not, the speedup is at least budget / our median."""
    if not baseline or median is None or not budgets or censored_median(list(baseline.values())) is not None:
        return None
    return max(budgets) / median


def _inf(v) -> float:
    return math.inf if v is None else float(v)


def _cell_row(cell: pd.DataFrame, steps_of: dict[str, dict], fwd_of: dict[str, dict], best_fo: str | None,
              runs: pd.DataFrame) -> dict:
    first = cell.iloc[0]
    workload, k, opt = first["workload"], int(first["k"]), first["optimizer"]
    # Censored runs count as +inf everywhere: medians, intervals and speedups never forget them.
    steps, fwd, sec = (censored(cell[c]) for c in ("steps", "fwd_equiv", "seconds"))
    median = censored_median(steps)
    hp = runs[(runs["final"]) & (runs.workload == workload) & (runs.k == k) & (runs.optimizer == opt)]
    tuned = runs[(runs["role"] == "tune") & (runs.workload == workload) & (runs.k == k) & (runs.optimizer == opt)]
    speedup = _ratio("speedup_vs_adamw", steps_of.get("adamw"), steps_of[opt])
    budgets = [float(b) for b in cell["budget"] if b is not None and not pd.isna(b)]
    return {
        "workload": workload, "target": float(first["target"]), "k": k,
        "tokens_per_step": int(first["tokens_per_step"]), "optimizer": opt, "family": first["family"],
        "setting": hp_label(hp["hparam_overrides"].iloc[0]) if len(hp) else "",
        "median_steps": median, **_interval("steps", steps, median),
        "median_fwd_equiv": censored_median(fwd), **_interval("fwd_equiv", fwd, median),
        "median_seconds": censored_median(sec), **_interval("seconds", sec, median),
        **speedup, "speedup_excludes_1": _excludes_1(speedup, "speedup_vs_adamw"),
        "speedup_vs_adamw_at_least": _at_least(steps_of.get("adamw"), median, budgets),
        "compute_speedup_vs_adamw": _ratio("c", fwd_of.get("adamw"), fwd_of[opt])["c"],
        "best_first_order": best_fo or "",
        **_ratio("speedup_vs_best_first_order", steps_of.get(best_fo), steps_of[opt]),
        # the paper's framing: full GN bounds what preconditioning reaches; how far each optimizer is from it
        **_ratio("oracle_gap", steps_of[opt] if "gn" in steps_of else None, steps_of.get("gn", {})),
        "bracket": _widest(cell["bracket"]), "budget": max(budgets) if budgets else None,
        "tuning_trials": len(tuned), "at_edge": _at_edge(tuned, hp),
        "runs": len(steps), "reached": sum(v is not None for v in steps),
        "censored": int(((cell["status"] != "diverged") & cell["steps"].isna()).sum()),
        "diverged": int((cell["status"] == "diverged").sum()),
        "provenance": row_provenance(hp),
    }


def summary_table(runs: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """One row per (workload, target, K, optimizer): steps, compute and time to the target over the final
    runs' seeds with intervals, paired speedups over AdamW and over the group's best first-order method,
    the gap to full GN, the bracket, the tuning done and the runs' outcomes."""
    runs = runs if "final" in runs else select_final(runs)
    long = per_run_targets(runs, evals)
    if long.empty:
        return pd.DataFrame()
    rows = []
    for _, group in long.groupby(["workload", "target", "k"], sort=True):
        cells = dict(tuple(group.groupby("optimizer")))
        steps = {o: by_seed(c, "steps") for o, c in cells.items()}
        fwd = {o: by_seed(c, "fwd_equiv") for o, c in cells.items()}
        best = _best_first_order(cells, steps)
        rows += [_cell_row(cells[o], steps, fwd, best, runs) for o in ordered(cells)]
    rows.sort(key=lambda r: (r["workload"], -r["target"], r["k"], optimizer_rank(r["optimizer"])))
    return pd.DataFrame(rows)


def nan_none(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def hp_label(overrides) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted((overrides or {}).items()))


def fmt(v, spec="{:.1f}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return "∞" if isinstance(v, float) and math.isinf(v) else spec.format(v)


def row_provenance(runs: pd.DataFrame) -> str:
    """Where a row's runs came from: each distinct host · device · code version, sorted."""
    def one(r) -> str:
        device = r.get("device") if isinstance(r.get("device"), dict) else {}
        host = r.get("host") if isinstance(r.get("host"), str) else "?"
        return f"{host} · {device.get('name', '?')} · {r.get('code_version', '?')}"

    return "; ".join(sorted({one(r) for r in runs.to_dict("records")}))


def provenance(runs: pd.DataFrame) -> str:
    code = sorted(set(runs["code_version"]))
    corpora = sorted({c.get("name", "?") for c in runs["corpus"]})
    devices = sorted({f"{d.get('type')}:{d.get('name')}" for d in runs["device"]})
    return f"code {', '.join(code)}; corpus {', '.join(corpora)}; device {', '.join(devices)}."
