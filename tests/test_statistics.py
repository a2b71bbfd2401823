"""The report's statistics (benchmark/report/statistics.py): censored medians, intervals that need two seeds,
paired speedups and their censored bounds, the critical-batch-size fit; and what a missing value means to
all of them (benchmark/report/missing.py)."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from benchmark.report.missing import as_float, as_inf, clean, is_missing
from benchmark.report.statistics import (
    CENSORED_MEDIAN_RULE,
    MIN_SEEDS,
    bootstrap_ci,
    censored_median,
    censored_ratio_bounds,
    fit_critical_batch,
    paired_speedup_ci,
)


def speedup_ci(baseline, ours, level=0.95, n_boot=2000, seed=0):
    """An independent reference: the unpaired bootstrap (both groups resampled on their own), against which the
    paired one is checked."""
    a = np.asarray([math.inf if v is None else v for v in baseline], float)
    b = np.asarray([math.inf if v is None else v for v in ours], float)
    if math.isinf(np.median(a)) or math.isinf(np.median(b)):
        return (math.nan, math.nan, math.nan)
    point = float(np.median(a) / np.median(b))
    if min(a.size, b.size) < MIN_SEEDS:
        return (point, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    ra = np.median(a[rng.integers(0, a.size, (n_boot, a.size))], axis=1)
    rb = np.median(b[rng.integers(0, b.size, (n_boot, b.size))], axis=1)
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanquantile(ra / rb, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return (point, float(min(lo, point)), float(max(hi, point)))



@given(st.lists(st.floats(1, 1000), min_size=1, max_size=20))
def test_bootstrap_interval_contains_the_median_and_one_value_has_none(values):
    med, lo, hi = bootstrap_ci(values)
    assert med == float(np.median(values))
    if len(values) == 1:
        assert math.isnan(lo) and math.isnan(hi)  # one seed: a value, not an interval
    else:
        assert lo <= med <= hi


def test_one_seed_gives_a_ratio_and_no_interval():
    point, lo, hi = paired_speedup_ci({0: 10.0, 1: 12.0}, {0: 5.0, 3: 6.0})  # one common seed
    assert point == 2.0 and math.isnan(lo) and math.isnan(hi)
    point, lo, hi = speedup_ci([10.0], [5.0, 6.0])
    assert point == pytest.approx(10 / 5.5) and math.isnan(lo) and math.isnan(hi)
    point, lo, hi = paired_speedup_ci({0: 10.0, 1: 12.0}, {0: 5.0, 1: 6.0})
    assert lo <= point <= hi


def test_a_censored_run_counts_as_never_reaching():
    assert censored_median([10.0, None, None]) is None
    assert censored_median([10.0, 12.0, None]) == 12.0


@pytest.mark.parametrize("n", range(1, 7))
def test_the_censoring_rule_in_words_is_the_one_the_median_applies(n):
    assert CENSORED_MEDIAN_RULE.startswith("at least half")
    for censored in range(n + 1):
        values = [None] * censored + [10.0] * (n - censored)
        assert (censored_median(values) is None) == (censored >= n / 2), (n, censored)


def test_a_censored_median_bounds_the_ratio_by_the_budget():
    assert censored_ratio_bounds([10.0, 12.0], [None, None], 40) == (None, 11.0 / 40)  # ours never got there
    assert censored_ratio_bounds([None, None], [8.0, 12.0], 40) == (4.0, None)  # the baseline never did
    assert censored_ratio_bounds([None], [None], 40) == (None, None)  # neither: no bound
    assert censored_ratio_bounds([10.0], [5.0], 40) == (None, None)  # both reached: a ratio, not a bound


@given(st.floats(1, 1e4), st.floats(1e2, 1e7), st.lists(st.floats(1e2, 1e7), min_size=2, max_size=6, unique=True))
def test_batch_size_fit_recovers_known_parameters(s_min, b_noise, batch_sizes):
    assume(max(batch_sizes) / min(batch_sizes) >= 1.5)
    steps = [s_min * (1 + b_noise / B) for B in batch_sizes]
    fit = fit_critical_batch(batch_sizes, steps)
    assert fit is not None
    assert fit["s_min"] == pytest.approx(s_min, rel=1e-5)
    assert fit["b_noise"] == pytest.approx(b_noise, rel=1e-4)
    assert fit["r2"] is None if len(batch_sizes) == 2 else fit["r2"] > 0.9999 or len(set(steps)) == 1


def test_speedup_interval_contains_the_point_and_censored_runs_are_not_reaching():
    point, lo, hi = speedup_ci([100, 110, 120], [20, 25, 30])
    assert point == pytest.approx(110 / 25) and lo <= point <= hi
    assert math.isnan(speedup_ci([100], [None])[0])


@given(st.lists(st.one_of(st.none(), st.floats(1, 1000)), min_size=1, max_size=12))
def test_censored_runs_are_never_counted_as_reaching(values):
    med = censored_median(values)
    as_inf = np.array([math.inf if v is None else v for v in values])
    sorted_ = np.sort(as_inf)
    n = len(values)
    expected = sorted_[n // 2] if n % 2 else (sorted_[n // 2 - 1] + sorted_[n // 2]) / 2  # censored = +inf
    if math.isinf(expected):
        assert med is None  # at least half censored (the middle one, or for an even count the upper middle one)
        assert math.isnan(speedup_ci([10.0] * 3, values)[0])
    else:
        assert med == pytest.approx(expected)
        point, lo, hi = bootstrap_ci(values)
        assert lo <= point <= hi or (len(values) == 1 and math.isnan(lo) and math.isnan(hi))


def test_the_paired_bootstrap_matches_the_unpaired_one_on_independent_runs_and_is_tighter_when_paired():
    rng = np.random.default_rng(0)
    n = 400
    base, ours = rng.normal(100, 10, n), rng.normal(50, 5, n)  # independent seeds
    paired = paired_speedup_ci(dict(enumerate(base)), dict(enumerate(ours)))
    unpaired = speedup_ci(list(base), list(ours))
    assert paired[0] == unpaired[0]
    assert paired[1] == pytest.approx(unpaired[1], rel=0.02) and paired[2] == pytest.approx(unpaired[2], rel=0.02)
    # a shared per-seed effect (warm start, data order) moves both optimizers of a seed together
    shared = rng.normal(0, 30, 12)
    base, ours = 100 + shared + rng.normal(0, 2, 12), 50 + shared / 2 + rng.normal(0, 1, 12)
    p_lo, p_hi = paired_speedup_ci(dict(enumerate(base)), dict(enumerate(ours)))[1:]
    u_lo, u_hi = speedup_ci(list(base), list(ours))[1:]
    assert p_hi - p_lo < 0.5 * (u_hi - u_lo)


def test_paired_speedups_use_the_common_seeds_and_count_censored_runs_as_infinite():
    assert paired_speedup_ci({0: 10.0, 1: 12.0, 2: 11.0}, {0: 5.0, 1: 6.0, 5: 1.0})[0] == pytest.approx(11 / 5.5)
    assert math.isnan(paired_speedup_ci({0: 10.0}, {1: 5.0})[0])
    assert math.isnan(paired_speedup_ci({0: 10.0, 1: 10.0}, {0: None, 1: None})[0])
    point, lo, hi = paired_speedup_ci({0: 10.0, 1: 10.0, 2: 10.0}, {0: 5.0, 1: None, 2: 5.0})
    assert point == 2.0 and lo == 0.0  # resamples with the censored seed twice: an infinite count


def test_a_missing_value_is_one_thing_everywhere_and_a_censored_run_to_the_statistics():
    for v in (None, float("nan"), np.nan, np.float32("nan"), pd.NA):
        assert is_missing(v) and clean(v) is None and as_float(v) is None and as_inf(v) == math.inf, v
    for v in (0, 0.0, -1.5, math.inf, np.float64(2.0), "", "x", {}, []):
        assert not is_missing(v) and clean(v) is v, v
    assert as_float(np.float64(2.5)) == 2.5 and type(as_float(np.int64(3))) is float
    nan = float("nan")
    assert censored_median([10.0, nan, nan]) is None and censored_median([10.0, 12.0, nan]) == 12.0
    assert bootstrap_ci([10.0, 12.0, nan]) == bootstrap_ci([10.0, 12.0, None])
    assert paired_speedup_ci({0: 10.0, 1: 12.0}, {0: 5.0, 1: nan}) == paired_speedup_ci({0: 10.0, 1: 12.0},
                                                                                         {0: 5.0, 1: None})
    assert fit_critical_batch([1, 2, 4], [30.0, nan, 10.0]) == fit_critical_batch([1, 4], [30.0, 10.0])
