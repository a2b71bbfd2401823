"""The critical-batch fit of the report: ``S(B) = S_min (1 + B_noise / B)`` per (workload, target,
optimizer) on the median steps at each batch size, with a seed-bootstrap interval for ``B_noise``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.metrics import censored_median, fit_critical_batch
from benchmark.tables import by_seed, ordered, per_run_targets, select_final

MIN_R2 = 0.9  # below this the steps do not follow S(B) = S_min (1 + B_noise / B) well enough to quote


def batch_fits(runs: pd.DataFrame, evals: pd.DataFrame, n_boot: int = 1000) -> pd.DataFrame:
    """The fit per (workload, target, optimizer) with an interval for B_noise from resampling seeds (jointly
    across batch sizes: a seed is one warm start and one data order), its R² and residual, and whether the
    counts follow the model at all (a fit with no positive S_min does not)."""
    runs = runs if "final" in runs else select_final(runs)
    long = per_run_targets(runs, evals)
    rows = []
    groups = long.groupby(["workload", "target", "optimizer"], sort=True) if not long.empty else []
    for (workload, target, opt), part in groups:
        by_k = {int(k): by_seed(cell, "steps") for k, cell in part.groupby("k")}
        tokens = [int(part[part.k == k]["tokens_per_step"].iloc[0]) for k in by_k]
        medians = [censored_median(list(v.values())) for v in by_k.values()]
        if sum(m is not None for m in medians) < 2:
            continue  # one batch size reached, or none: nothing to fit
        fit = fit_critical_batch(tokens, medians)
        if fit is None:  # the steps grow with the batch: no S_min > 0 describes them
            rows.append({"workload": workload, "target": target, "optimizer": opt, "s_min": None, "b_noise": None,
                         "r2": None, "rms_rel_residual": None, "points": sum(m is not None for m in medians),
                         "b_noise_ci_low": None, "b_noise_ci_high": None, "follows_model": False})
            continue
        lo, hi = _b_noise_interval(tokens, by_k, n_boot)
        follows = fit["r2"] is None or fit["r2"] >= MIN_R2
        rows.append({"workload": workload, "target": target, "optimizer": opt, **fit, "b_noise_ci_low": lo,
                     "b_noise_ci_high": hi, "follows_model": follows})
    fits = pd.DataFrame(rows)
    if fits.empty:
        return fits
    rank = {o: i for i, o in enumerate(ordered(fits["optimizer"]))}
    return fits.sort_values(["workload", "target", "optimizer"], ascending=[True, False, True],
                            key=lambda c: c.map(rank) if c.name == "optimizer" else c, ignore_index=True)


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
