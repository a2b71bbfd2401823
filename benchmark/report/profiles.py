"""Views of the report beyond the per-cell table, pure functions of it and of the runs: performance
profiles (AlgoPerf's scoring) and the best steps-to-target found after each tuning trial."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark.report.frames import STEPS, targets_in
from benchmark.report.missing import as_inf
from benchmark.report.tables import ordered

TAUS = np.linspace(1.0, 4.0, 301)


def performance_profiles(table: pd.DataFrame, column: str, taus=TAUS) -> tuple[dict[str, np.ndarray], int, int]:
    """For each label, the fraction of (setup, K, target) cells whose median ``column`` is within τ ×
    the best optimizer's, for each τ; censored medians never count as solved. Also the number of cells
    and of cells nobody solved (left in the denominator: a profile never rises above what was reached)."""
    opts = ordered(table["label"]) if not table.empty else []
    ratios = {o: [] for o in opts}
    cells = unsolved = 0
    for _, cell in table.groupby(["setup", "k", "target"], sort=True) if not table.empty else []:
        values = {r.label: as_inf(getattr(r, column)) for r in cell.itertuples()}
        best = min(values.values())
        cells += 1
        if math.isinf(best) or best <= 0:
            unsolved += 1
        for o in opts:
            v = values.get(o, math.inf)
            ratios[o].append(v / best if math.isfinite(best) and best > 0 else math.inf)
    profiles = {o: np.array([np.mean(np.asarray(r) <= tau) for tau in taus]) if r else np.zeros(len(taus))
                for o, r in ratios.items()}
    return profiles, cells, unsolved


def tuning_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (setup, K, label), the tuning trials in the order they ran and the best steps to the
    setup's tightest target found after each (inf until one reaches it)."""
    tune = runs[runs["role"] == "tune"]
    rows = []
    for (setup, k, opt), cell in tune.groupby(["setup", "k", "label"], sort=True):
        order = ["started_at", "run_id"] if "started_at" in cell else ["run_id"]
        cell = cell.sort_values(order)
        tightest = _tightest(cell)
        best = math.inf
        for n, r in enumerate(cell.to_dict("records"), start=1):
            best = min(best, as_inf(r.get(f"{STEPS}{tightest}")) if tightest else math.inf)
            rows.append({"setup": setup, "k": int(k), "label": opt, "trial": n, "best_steps": best,
                         "status": r["status"], "target": float(tightest) if tightest else math.nan})
    return pd.DataFrame(rows, columns=["setup", "k", "label", "trial", "best_steps", "status", "target"])


def _tightest(cell: pd.DataFrame) -> str | None:
    own = cell["targets"].iloc[0] if "targets" in cell else None
    if isinstance(own, list) and own:
        return min(own, key=float)
    cols = targets_in(cell.columns)
    return min(cols, key=float) if cols else None
