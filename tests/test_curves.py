"""What a run's curve says (benchmark/results/curves.py): steps to a target, interpolated between the two
evaluations that bracket it and censored when never reached; counters at a fractional step; which run is
better."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmark.results.curves import crossing, selection_key, steps_to_target, value_at_step

curves = st.lists(st.floats(0.5, 10.0, allow_nan=False), min_size=1, max_size=30)


def test_interpolates_between_bracketing_evaluations():
    steps, losses = [0, 10, 20], [6.0, 5.0, 4.0]
    assert steps_to_target(steps, losses, 4.5) == 15.0
    assert steps_to_target(steps, losses, 5.0) == 10.0
    assert steps_to_target(steps, losses, 6.5) == 0.0


def test_censored_when_never_reached_and_nan_never_counts():
    assert steps_to_target([0, 10, 20], [6.0, 5.0, 4.8], 4.5) is None
    assert steps_to_target([0, 10, 20], [6.0, math.nan, math.inf], 1.0) is None


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


def test_value_at_step_interpolates_cumulative_costs():
    assert value_at_step([0, 10, 20], [0, 100, 300], 15) == 200
    assert value_at_step([0, 10], [0, 100], None) is None


def test_selection_prefers_the_tightest_target_then_steps_then_final_loss():
    targets = (5.0, 4.0)
    a = {"steps_to_target": {"5": 10.0, "4": None}, "final_val_loss": 4.2, "status": "budget"}
    b = {"steps_to_target": {"5": 30.0, "4": 50.0}, "final_val_loss": 3.9, "status": "reached"}
    c = {"steps_to_target": {"5": 20.0, "4": 40.0}, "final_val_loss": 3.95, "status": "reached"}
    d = {"steps_to_target": {"5": None, "4": None}, "final_val_loss": None, "status": "diverged"}
    assert sorted([a, b, c, d], key=lambda r: selection_key(r, targets)) == [c, b, a, d]


def test_the_bracket_is_the_two_evaluations_around_the_crossing():
    assert crossing([0, 3, 6, 9], [6.0, 5.0, 4.0, 3.0], 4.5) == (4.5, 3.0)
    assert crossing([0, 1, 2], [6.0, 5.0, 4.0], 6.5) == (0.0, 0.0)  # reached before the first step
    assert crossing([0, 2, 4], [6.0, 6.5, 4.0], 5.0) == (pytest.approx(2 + 2 * 1.5 / 2.5), 2.0)
    assert crossing([0, 10], [6.0, 5.5], 5.0) is None


@given(st.floats(0.1, 59.9))
def test_the_cpu_evaluation_grid_resolves_every_count_to_a_step_below_30_and_5_percent_above(count):
    from benchmark.workload.presets import PRESETS

    grid = PRESETS["cpu"].resolution_grid()
    after = next(g for g in grid if g >= count)
    before = max(g for g in grid if g < count)
    assert after - before <= (1 if count < 30 else 0.05 * count)
