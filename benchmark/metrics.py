"""Pure functions over evaluation curves and run tables: steps-to-target with interpolation and
censoring, medians with bootstrap intervals, speedups."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def steps_to_target(steps: Sequence[float], losses: Sequence[float], target: float) -> float | None:
    """First evaluation at which ``loss <= target``, linearly interpolated between it and the evaluation
    before; None (censored) if never reached. Non-finite losses never count as reaching."""
    prev_s, prev_l = None, None
    for s, loss in zip(steps, losses):
        if loss is not None and math.isfinite(loss) and loss <= target:
            if prev_s is None or prev_l is None or not math.isfinite(prev_l) or prev_l <= loss:
                return float(s)
            frac = (prev_l - target) / (prev_l - loss)
            return float(prev_s + frac * (s - prev_s))
        prev_s, prev_l = s, loss
    return None


def bootstrap_ci(
    values: Sequence[float], level: float = 0.95, n_boot: int = 2000, seed: int = 0, stat=np.median
) -> tuple[float, float, float]:
    """(statistic, low, high): percentile bootstrap interval of ``stat`` (median by default)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    point = float(stat(x))
    if x.size == 1:
        return (point, point, point)
    rng = np.random.default_rng(seed)
    boots = stat(x[rng.integers(0, x.size, size=(n_boot, x.size))], axis=1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return (point, float(min(lo, point)), float(max(hi, point)))


def censored_median(values: Sequence[float | None]) -> float | None:
    """Median where censored runs (None) count as +inf; None if the median itself is censored."""
    if not values:
        return None
    x = np.sort([math.inf if v is None else v for v in values])
    med = float(np.median(x)) if x.size % 2 else float((x[x.size // 2 - 1] + x[x.size // 2]) / 2)
    return None if math.isinf(med) or math.isnan(med) else med
