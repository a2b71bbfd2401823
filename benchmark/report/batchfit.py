"""The critical-batch fit of the report: ``S(B) = S_min (1 + B_noise / B)`` per (setup, target, label) on the median steps at each batch size, with a seed-bootstrap interval for ``B_noise``; a
backend that gets no fit is named with the reason."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.report.statistics import MIN_SEEDS, censored_median, fit_critical_batch
from benchmark.report.tables import by_seed, ordered, per_run_targets, select_final

MIN_R2 = 0.9  # below this the steps do not follow S(B) = S_min (1 + B_noise / B) well enough to quote


def batch_fits(runs: pd.DataFrame, evals: pd.DataFrame, n_boot: int = 1000) -> pd.DataFrame:
    """The fit per (setup, target, label) with an interval for B_noise from resampling seeds (jointly
    across batch sizes: a seed is one warm start and one data order) and the seeds it rests on, its R² and
    residual, and whether the counts follow the model. A backend that gets no fit has its row all the
    same, with ``why`` (None where it follows the model); a setup run at one batch size has no rows."""
    runs = runs if "final" in runs else select_final(runs)
    long = per_run_targets(runs, evals)
    if long.empty:
        return pd.DataFrame()
    sizes = long.groupby("setup")["k"].nunique()
    rows = [_fit_row(part, int(sizes[setup]), n_boot) | {"setup": setup, "target": target, "label": label}
            | {c: part[c].iloc[0] for c in ("workload", "optimizer")}
            for (setup, target, label), part in long.groupby(["setup", "target", "label"], sort=True)
            if sizes[setup] > 1]
    fits = pd.DataFrame(rows, columns=COLUMNS)
    if fits.empty:
        return fits
    rank = {o: i for i, o in enumerate(ordered(fits["label"]))}
    return fits.sort_values(["setup", "target", "label"], ascending=[True, False, True],
                            key=lambda c: c.map(rank) if c.name == "label" else c, ignore_index=True)


COLUMNS = ["setup", "workload", "target", "label", "optimizer", "s_min", "b_noise", "r2", "rms_rel_residual",
           "points", "seeds", "b_noise_ci_low", "b_noise_ci_high", "follows_model", "why"]


def _fit_row(part: pd.DataFrame, sizes: int, n_boot: int) -> dict:
    """The fit of one backend's median steps over the batch sizes it ran, or why there is none."""
    by_k = {int(k): by_seed(cell, "steps") for k, cell in part.groupby("k")}
    tokens = [int(part[part.k == k]["tokens_per_step"].iloc[0]) for k in by_k]
    medians = [censored_median(list(v.values())) for v in by_k.values()]
    reached = sum(m is not None for m in medians)
    none = {"s_min": None, "b_noise": None, "r2": None, "rms_rel_residual": None, "points": reached,
            "seeds": None, "b_noise_ci_low": None, "b_noise_ci_high": None, "follows_model": False}
    if len(by_k) < 2:
        return none | {"why": f"ran at {len(by_k)} of the {sizes} batch sizes"}
    if reached < 2:
        return none | {"why": f"its median reached the target at {reached} of {len(by_k)} batch sizes"}
    fit = fit_critical_batch(tokens, medians)
    if fit is None:
        return none | {"why": "its steps grow with the batch: no S_min > 0"}
    lo, hi, seeds = _b_noise_interval(tokens, by_k, n_boot)
    follows = fit["r2"] is None or fit["r2"] >= MIN_R2
    return {**fit, "seeds": seeds, "b_noise_ci_low": lo, "b_noise_ci_high": hi, "follows_model": follows,
            "why": None if follows else f"R² {fit['r2']:.2f} below {MIN_R2}"}


def _b_noise_interval(tokens: list[int], by_k: dict[int, dict], n_boot: int) -> tuple[float | None, float | None, int]:
    """95% percentile interval of B_noise over resamples of the seeds every batch size has, and their number."""
    seeds = sorted(set.intersection(*(set(v) for v in by_k.values())))
    if len(seeds) < MIN_SEEDS:
        return None, None, len(seeds)
    rng, fitted = np.random.default_rng(0), []
    for _ in range(n_boot):
        pick = rng.choice(seeds, size=len(seeds))
        fit = fit_critical_batch(tokens, [censored_median([v[s] for s in pick]) for v in by_k.values()])
        if fit is not None:
            fitted.append(fit["b_noise"])
    if len(fitted) < n_boot / 2:  # most resamples give no physical fit: no interval worth printing
        return None, None, len(seeds)
    lo, hi = np.quantile(fitted, [0.025, 0.975], method="inverted_cdf")
    return float(lo), float(hi), len(seeds)
