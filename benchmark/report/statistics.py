"""The report's statistics, pure functions of per-run numbers: medians with censored runs counted as
+inf, bootstrap intervals that need two seeds, paired speedups and their censored bounds, and the
critical-batch-size fit. A value that is missing (None or NaN) is a censored run: ``benchmark.report.missing``
decides it (``as_inf``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from benchmark.report.missing import as_inf

LEVEL = 0.95  # of every interval the report gives
RESAMPLES = 2000  # bootstrap resamples of every interval (a fixed seed: the same records, the same report)
MIN_SEEDS = 2  # an interval needs two seeds or more: the "interval" of one seed is a point
# When ``censored_median`` says a median is censored, in words (the report's notes quote it).
CENSORED_MEDIAN_RULE = "at least half of its runs never reached the target within the step budget"


def bootstrap_ci(
    values: Sequence[float | None], level: float = LEVEL, n_boot: int = RESAMPLES, seed: int = 0, stat=np.median
) -> tuple[float, float, float]:
    """(statistic, low, high): percentile bootstrap interval of ``stat`` (median by default). Censored
    values (missing: None or NaN) count as +inf, so a bound is inf where too many resamples are censored.
    Fewer than ``MIN_SEEDS`` values give the statistic and no interval (nan bounds)."""
    x = np.asarray([as_inf(v) for v in values], dtype=float)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    point = float(stat(x))
    if x.size < MIN_SEEDS:
        return (point, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    boots = stat(x[rng.integers(0, x.size, size=(n_boot, x.size))], axis=1)
    # No interpolation between resampled statistics: an infinite (censored) one must not turn into nan.
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return (point, float(min(lo, point)), float(max(hi, point)))


def censored_median(values: Sequence[float | None]) -> float | None:
    """Median where censored runs (missing: None or NaN) count as +inf; None if the median itself is censored, which is
    when ``CENSORED_MEDIAN_RULE`` holds: more than half of an odd count, half of an even one (the upper
    middle value is then +inf, and so is the mean of the two middle ones)."""
    if not values:
        return None
    x = np.sort([as_inf(v) for v in values])
    med = float(np.median(x)) if x.size % 2 else float((x[x.size // 2 - 1] + x[x.size // 2]) / 2)
    return None if math.isinf(med) or math.isnan(med) else med


def paired_speedup_ci(
    baseline: dict, ours: dict, level: float = LEVEL, n_boot: int = RESAMPLES, seed: int = 0
) -> tuple[float, float, float]:
    """Speedup median(baseline) / median(ours) with a bootstrap interval that resamples *seeds*, jointly for
    both: runs of one seed share their warm start and their data order, so they are paired. ``baseline`` and
    ``ours`` map a seed to its steps (missing: censored, +inf); only the seeds both have count (``common_seeds``),
    and with fewer than ``MIN_SEEDS`` of them there is a point and no interval (nan bounds)."""
    seeds = common_seeds(baseline, ours)
    if not seeds:
        return (math.nan, math.nan, math.nan)
    a = np.asarray([as_inf(baseline[s]) for s in seeds], float)
    b = np.asarray([as_inf(ours[s]) for s in seeds], float)
    if math.isinf(np.median(a)) or math.isinf(np.median(b)) or np.median(b) <= 0:
        return (math.nan, math.nan, math.nan)  # censored, or ours reached it at the start: no ratio
    point = float(np.median(a) / np.median(b))
    if len(seeds) < MIN_SEEDS:
        return (point, math.nan, math.nan)
    idx = np.random.default_rng(seed).integers(0, len(seeds), (n_boot, len(seeds)))
    with np.errstate(invalid="ignore"):
        ratios = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)
    lo, hi = np.nanquantile(ratios, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return (point, float(min(lo, point)), float(max(hi, point)))


def censored_ratio_bounds(baseline: Sequence[float | None], ours: Sequence[float | None],
                          budget: float | None) -> tuple[float | None, float | None]:
    """(at least, at most) for median(baseline) / median(ours) where exactly one median is censored: a
    censored median is at least the step budget, so the ratio is at least budget / median(ours) when the
    baseline's is censored, and at most median(baseline) / budget when ours is. (None, None) otherwise."""
    base, mine = censored_median(list(baseline)), censored_median(list(ours))
    if budget is None or not baseline or not ours or (base is None) == (mine is None):
        return None, None
    if base is None:
        return (budget / mine if mine > 0 else None), None
    return None, base / budget


def common_seeds(baseline: dict, ours: dict) -> list:
    """The seeds a paired comparison rests on: those both sides ran."""
    return sorted(set(baseline) & set(ours))


def fit_critical_batch(batch_sizes: Sequence[float], steps: Sequence[float]) -> dict | None:
    """Least-squares fit of S(B) = S_min (1 + B_noise / B) (McCandlish et al. 2018), linear in 1/B:
    S = a + b / B with S_min = a and B_noise = b / a. Returns the parameters and the fit quality (R² and
    RMS relative residual); None with fewer than two batch sizes or a non-physical fit."""
    pts = [(float(B), as_inf(s)) for B, s in zip(batch_sizes, steps) if math.isfinite(as_inf(s))]
    if len({B for B, _ in pts}) < 2:
        return None
    B = np.array([p[0] for p in pts])
    S = np.array([p[1] for p in pts])
    X = np.stack([np.ones_like(B), 1.0 / B], axis=1)
    (a, b), *_ = np.linalg.lstsq(X, S, rcond=None)
    if a <= 0:
        return None
    pred = X @ np.array([a, b])
    ss_res = float(((S - pred) ** 2).sum())
    ss_tot = float(((S - S.mean()) ** 2).sum())
    # Two batch sizes determine the two parameters exactly: a fit quality needs a third.
    return {
        "s_min": float(a),
        "b_noise": float(b / a),
        "r2": (1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0) if len(pts) > 2 else None,
        "rms_rel_residual": float(np.sqrt(np.mean(((S - pred) / S) ** 2))),
        "points": len(pts),
    }


