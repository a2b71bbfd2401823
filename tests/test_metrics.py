"""Pure functions over curves and run tables (benchmark/metrics.py)."""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from benchmark.metrics import (
    CENSORED_MEDIAN_RULE,
    bootstrap_ci,
    censored_median,
    censored_ratio_bounds,
    crossing,
    fit_critical_batch,
    paired_speedup_ci,
    selection_key,
    speedup_ci,
    steps_to_target,
    value_at_step,
)


def test_interpolates_between_bracketing_evaluations():
    steps, losses = [0, 10, 20], [6.0, 5.0, 4.0]
    assert steps_to_target(steps, losses, 4.5) == 15.0
    assert steps_to_target(steps, losses, 5.0) == 10.0
    assert steps_to_target(steps, losses, 6.5) == 0.0


def test_censored_when_never_reached_and_nan_never_counts():
    assert steps_to_target([0, 10, 20], [6.0, 5.0, 4.8], 4.5) is None
    assert steps_to_target([0, 10, 20], [6.0, math.nan, math.inf], 1.0) is None
    assert censored_median([10.0, None, None]) is None
    assert censored_median([10.0, 12.0, None]) == 12.0


curves = st.lists(st.floats(0.5, 10.0, allow_nan=False), min_size=1, max_size=30)


@given(curves, st.floats(0.5, 10.0))
def test_interpolated_step_lies_between_bracketing_steps(losses, target):
    steps = [5 * i for i in range(len(losses))]
    s = steps_to_target(steps, losses, target)
    reached = [i for i, loss in enumerate(losses) if loss <= target]
    if not reached:
        assert s is None
        return
    i = reached[0]
    lo = steps[i - 1] if i > 0 else steps[0]
    assert lo <= s <= steps[i]


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


def test_value_at_step_interpolates_cumulative_costs():
    assert value_at_step([0, 10, 20], [0, 100, 300], 15) == 200
    assert value_at_step([0, 10], [0, 100], None) is None


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


def test_selection_prefers_the_tightest_target_then_steps_then_final_loss():
    targets = (5.0, 4.0)
    a = {"steps_to_target": {"5": 10.0, "4": None}, "final_val_loss": 4.2, "status": "budget"}
    b = {"steps_to_target": {"5": 30.0, "4": 50.0}, "final_val_loss": 3.9, "status": "reached"}
    c = {"steps_to_target": {"5": 20.0, "4": 40.0}, "final_val_loss": 3.95, "status": "reached"}
    d = {"steps_to_target": {"5": None, "4": None}, "final_val_loss": None, "status": "diverged"}
    assert sorted([a, b, c, d], key=lambda r: selection_key(r, targets)) == [c, b, a, d]


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


def test_the_bracket_is_the_two_evaluations_around_the_crossing():
    assert crossing([0, 3, 6, 9], [6.0, 5.0, 4.0, 3.0], 4.5) == (4.5, 3.0)
    assert crossing([0, 1, 2], [6.0, 5.0, 4.0], 6.5) == (0.0, 0.0)  # reached before the first step
    assert crossing([0, 2, 4], [6.0, 6.5, 4.0], 5.0) == (pytest.approx(2 + 2 * 1.5 / 2.5), 2.0)
    assert crossing([0, 10], [6.0, 5.5], 5.0) is None


@given(st.floats(0.1, 59.9))
def test_the_cpu_evaluation_grid_resolves_every_count_to_a_step_below_30_and_5_percent_above(count):
    from benchmark.workloads import PRESETS

    grid = PRESETS["cpu"].resolution_grid()
    after = next(g for g in grid if g >= count)
    before = max(g for g in grid if g < count)
    assert after - before <= (1 if count < 30 else 0.05 * count)
