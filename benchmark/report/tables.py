"""The report's tables, pure functions of the run records: which runs are final, and steps, compute and
time to each target per cell with bootstrap intervals, paired speedups over AdamW and over the best
first-order method, and the gap to full Gauss-Newton. One order of optimizers serves every table and figure.

For each cell (setup, K, label: the columns of ``benchmark.report.frames``) the suite's tuning runs pick
the best setting (steps to the tightest target first, then looser targets, then final loss:
``curves.selection_key``); the cell's *final* runs are every seed of that setting. A trial that failed
(raised) is in none of this: it is listed by ``render.failures``. A cell whose tuning is incomplete
(``tuning_progress``) keeps its row, flagged, but is no reference for the others: no speedup is taken over
it and it is never the best first-order method. What a missing value means is ``benchmark.report.missing``'s.
"""

from __future__ import annotations

import json

import pandas as pd

from benchmark.report.frames import BRACKET, STEPS, targets_in
from benchmark.report.missing import as_float, as_floats, as_inf, clean, is_missing
from benchmark.report.statistics import (
    bootstrap_ci,
    censored_median,
    censored_ratio_bounds,
    common_seeds,
    paired_speedup_ci,
)
from benchmark.results.curves import selection_key, value_at_step
from benchmark.results.record import GRID
from benchmark.results.store import failed as failed_run

CELL = ["setup", "workload_key", "k", "label"]


def _hp_key(overrides) -> str:
    return json.dumps(overrides or {}, sort_keys=True)


def failed_runs(runs: pd.DataFrame) -> pd.Series:
    """Which runs failed (``store.failed``): never selected, never final, in no statistic of a cell."""
    return pd.Series([failed_run(r) for r in runs.to_dict("records")], index=runs.index, dtype=bool)


def select_final(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` less the failed ones, with a ``final`` column (the runs of each cell's selected setting) and
    each cell's tuning progress (``tuning_trials`` recorded of ``tuning_planned``: ``tuning_progress``)."""
    recorded = set(runs.loc[~failed_runs(runs), "run_id"])
    progress = {cell: tuning_progress(part[part["role"] == "tune"], recorded)
                for cell, part in runs.groupby(CELL, sort=True)}
    runs = runs[~failed_runs(runs)].copy()
    runs["hp_key"] = runs["setting"].map(_hp_key)
    runs["final"], runs["tuning_trials"], runs["tuning_planned"] = False, 0, 0
    targets = targets_in(runs.columns)
    for cell_key, cell in runs.groupby(CELL, sort=True):
        tune = cell[cell["role"] == "tune"]
        runs.loc[cell.index, ["tuning_trials", "tuning_planned"]] = progress[cell_key]
        if tune.empty:
            runs.loc[cell.index, "final"] = True
            continue
        seed0 = tune[tune["seed"] == tune["seed"].min()]
        # The setting the sweep reran over seeds is the one it selected: where two settings tie exactly (a longer
        # line search that never used its extra candidates), the sweep's tie-break (a walk keeps the first value
        # of its axis) is the record, not a guess from run ids here
        rerun = seed0[seed0["hp_key"].isin(set(cell.loc[cell["role"] == "seed", "hp_key"]))]
        seed0 = rerun if not rerun.empty else seed0

        def key(row):
            steps = {t: as_float(row.get(f"{STEPS}{t}")) for t in targets}
            rec = {"steps_to_target": steps, "final_val_loss": row["final_val_loss"], "status": row["status"]}
            return (selection_key(rec, tuple(float(t) for t in targets)), row["run_id"])

        best = min((row for _, row in seed0.iterrows()), key=key)
        runs.loc[cell.index[cell["hp_key"] == best["hp_key"]], "final"] = True
    return runs


def tuning_progress(tune: pd.DataFrame, recorded: set[str]) -> tuple[int, int]:
    """(tuning trials recorded, tuning trials planned) of a cell, from its tuning records, failed ones
    included. Planned: every trial they list in ``cell_trials`` (the cell's grid and extensions as planned
    when each ran), and themselves; a planned trial not in ``recorded`` (the run ids of every usable
    record) has no record here (another shard's, not run yet) or only a failed one, and the tuning is
    incomplete. A record older than the field plans only itself."""
    planned = set(tune["run_id"])
    for listed in tune.get("cell_trials", ()):
        if isinstance(listed, list):
            planned |= set(listed)
    return len(planned & recorded), len(planned)


def tuning_complete(row) -> bool:
    """Every trial the cell's tuning planned is recorded (a row of ``summary_table``, or a final run)."""
    return row["tuning_trials"] == row["tuning_planned"]


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
        for t in own if isinstance(own, list) else targets_in(runs.columns):
            s = as_float(r.get(f"{STEPS}{t}"))
            fe = sec = None
            if ev is not None and s is not None:
                fe = value_at_step(ev["step"].tolist(), ev["forward_equivalents"].tolist(), s)
                sec = value_at_step(ev["step"].tolist(), ev["train_seconds"].tolist(), s)
            rows.append({"setup": r["setup"], "workload": r["workload"], "k": int(r["k"]),
                         "tokens_per_step": int(r["tokens_per_step"]), "label": r["label"],
                         "optimizer": r["optimizer"], "family": r.get("family", "unknown"),
                         "protocol": r.get("protocol", GRID), "base_setup": r.get("base_setup", r["setup"]),
                         "seed": int(r["seed"]), "run_id": r["run_id"], "target": float(t), "status": r["status"],
                         "budget": r.get("budget"), "steps": s, "fwd_equiv": fe, "seconds": sec,
                         "bracket": r.get(f"{BRACKET}{t}"), "tuning_trials": int(r["tuning_trials"]),
                         "tuning_planned": int(r["tuning_planned"])})
    return pd.DataFrame(rows)


def _at_edge(tuned: pd.DataFrame, final: pd.DataFrame) -> bool:
    """The selected learning rate is still the smallest or the largest one the cell's tuning tried."""
    lrs = [float(v) for v in tuned["lr"] if not is_missing(v)]
    if len(final) == 0 or len(set(lrs)) < 2 or is_missing(final["lr"].iloc[0]):
        return False
    return float(final["lr"].iloc[0]) in (min(lrs), max(lrs))


def _widest(column) -> float | None:
    """The widest bracket of a cell's runs (None when no run records one)."""
    widths = [float(v) for v in column if not is_missing(v)]
    return max(widths) if widths else None


def by_seed(cell: pd.DataFrame, column: str) -> dict:
    """seed -> value of ``column`` (None where censored) of a cell's final runs."""
    return dict(zip(cell["seed"].astype(int), as_floats(cell[column])))


def _interval(prefix: str, values: list, median) -> dict:
    """``{prefix}_ci_low/high``: a bootstrap interval, given only where the median itself is not censored."""
    _, lo, hi = bootstrap_ci(values)
    ok = median is not None
    return {f"{prefix}_ci_low": lo if ok else None, f"{prefix}_ci_high": hi if ok else None}


def _ratio(prefix: str, baseline: dict | None, ours: dict, budget: float | None, itself: bool = False) -> dict:
    """``{prefix}`` and its paired interval: median(baseline) / median(ours), seeds resampled jointly
    (every optimizer of one seed starts from the same warm start and reads the same data); the number of
    seeds it rests on; and where one median is censored, the bound the budget sets instead of a ratio.
    A cell against ``itself`` is 1 exactly (no interval), unless its median is censored."""
    if baseline is None or itself:
        point = 1.0 if itself and censored_median(list(ours.values())) is not None else None
        return {prefix: point, f"{prefix}_ci_low": None, f"{prefix}_ci_high": None, f"{prefix}_seeds": None,
                f"{prefix}_at_least": None, f"{prefix}_at_most": None}
    point, lo, hi = paired_speedup_ci(baseline, ours)
    at_least, at_most = censored_ratio_bounds(list(baseline.values()), list(ours.values()), budget)
    return {prefix: clean(point), f"{prefix}_ci_low": clean(lo), f"{prefix}_ci_high": clean(hi),
            f"{prefix}_seeds": len(common_seeds(baseline, ours)), f"{prefix}_at_least": at_least,
            f"{prefix}_at_most": at_most}


def _excludes_1(ratio: dict, prefix: str) -> bool:
    lo, hi = ratio[f"{prefix}_ci_low"], ratio[f"{prefix}_ci_high"]
    return lo is not None and hi is not None and (lo > 1 or hi < 1)


def _best_first_order(cells: dict[str, pd.DataFrame], steps: dict[str, dict], references: set[str]) -> str | None:
    """The first-order optimizer with the fewest median steps in a (setup, target, K) group, among those
    whose tuning is complete; none unless there are two of them to compare."""
    first_order = [o for o in references if cells[o]["family"].iloc[0] == "first-order"]
    if len(first_order) < 2:
        return None
    return min(ordered(first_order), key=lambda o: as_inf(censored_median(list(steps[o].values()))))


def _cell_row(cell: pd.DataFrame, steps_of: dict[str, dict], fwd_of: dict[str, dict], references: set[str],
              best_fo: str | None, runs: pd.DataFrame) -> dict:
    first = cell.iloc[0]
    setup, k, opt = first["setup"], int(first["k"]), first["label"]
    # Censored runs count as +inf everywhere: medians, intervals and speedups never forget them.
    steps, fwd, sec = (as_floats(cell[c]) for c in ("steps", "fwd_equiv", "seconds"))
    median = censored_median(steps)
    hp = runs[(runs["final"]) & (runs.setup == setup) & (runs.k == k) & (runs.label == opt)]
    tuned = runs[(runs["role"] == "tune") & (runs.setup == setup) & (runs.k == k) & (runs.label == opt)]
    budgets = [float(b) for b in cell["budget"] if not is_missing(b)]
    budget = max(budgets) if budgets else None

    def reference(of: dict[str, dict], name: str | None) -> dict | None:
        return of.get(name) if name in references else None  # an unfinished tuning is no reference

    speedup = _ratio("speedup_vs_adamw", reference(steps_of, "adamw"), steps_of[opt], budget, opt == "adamw")
    return {
        "setup": setup, "workload": first["workload"], "target": float(first["target"]), "k": k,
        "tokens_per_step": int(first["tokens_per_step"]), "label": opt, "optimizer": first["optimizer"],
        "family": first["family"], "setting": hp_label(hp["setting"].iloc[0]) if len(hp) else "",
        "protocol": first["protocol"], "base_setup": first["base_setup"],
        "seeds": int(cell["seed"].nunique()),
        "median_steps": median, **_interval("steps", steps, median),
        "median_fwd_equiv": censored_median(fwd), **_interval("fwd_equiv", fwd, median),
        "median_seconds": censored_median(sec), **_interval("seconds", sec, median),
        **speedup, "speedup_excludes_1": _excludes_1(speedup, "speedup_vs_adamw"),
        "compute_speedup_vs_adamw": _ratio("c", reference(fwd_of, "adamw"), fwd_of[opt], None, opt == "adamw")["c"],
        "best_first_order": best_fo or "",
        **_ratio("speedup_vs_best_first_order", reference(steps_of, best_fo), steps_of[opt], budget, opt == best_fo),
        # the paper's framing: full GN bounds what preconditioning reaches; how far each optimizer is from it
        **_ratio("oracle_gap", steps_of[opt] if "gn" in references else None, steps_of.get("gn", {}), budget,
                 opt == "gn"),
        "bracket": _widest(cell["bracket"]), "budget": budget,
        "tuning_trials": int(first["tuning_trials"]), "tuning_planned": int(first["tuning_planned"]),
        "tuning_complete": tuning_complete(first), "at_edge": _at_edge(tuned, hp),
        "tuning_fwd_equiv": tuning_compute(tuned),
        "runs": len(steps), "reached": sum(v is not None for v in steps),
        "censored": sum(s != "diverged" and is_missing(v) for s, v in zip(cell["status"], cell["steps"])),
        "diverged": int((cell["status"] == "diverged").sum()),
        "provenance": row_provenance(hp),
    }


def tuning_compute(tuned: pd.DataFrame) -> float | None:
    """What a cell's tuning cost, all its trials together, in forward-equivalents (a WSD trial's cooldown branches
    included): equal budgets in trials are not equal in compute."""
    if "costs" not in tuned:
        return None
    branches = tuned["branch_costs"] if "branch_costs" in tuned else [None] * len(tuned)
    return float(sum((c if isinstance(c, dict) else {}).get("forward_equivalents", 0.0)
                     for column in (tuned["costs"], branches) for c in column))


def summary_table(runs: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """One row per (setup, target, K, label): steps, compute and time to the target over the final
    runs' seeds with intervals (none from fewer than two seeds), paired speedups over AdamW and over the
    group's best first-order method, the gap to full GN, each with the seeds it rests on, the bracket, the
    tuning done and the runs' outcomes. Failed runs are in none of it."""
    runs = runs if "final" in runs else select_final(runs)
    long = per_run_targets(runs, evals)
    if long.empty:
        return pd.DataFrame()
    rows = []
    for _, group in long.groupby(["setup", "target", "k"], sort=True):
        cells = dict(tuple(group.groupby("label")))
        steps = {o: by_seed(c, "steps") for o, c in cells.items()}
        fwd = {o: by_seed(c, "fwd_equiv") for o, c in cells.items()}
        references = {o for o, c in cells.items() if tuning_complete(c.iloc[0])}
        best = _best_first_order(cells, steps, references)
        rows += [_cell_row(cells[o], steps, fwd, references, best, runs) for o in ordered(cells)]
    rows.sort(key=lambda r: (r["setup"], -r["target"], r["k"], optimizer_rank(r["label"])))
    return pd.DataFrame(rows)


def hp_label(overrides) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted((overrides or {}).items()))


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
