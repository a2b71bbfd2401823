import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from benchmark.metrics import bootstrap_ci, censored_median, steps_to_target


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
def test_bootstrap_interval_contains_the_median(values):
    med, lo, hi = bootstrap_ci(values)
    assert lo <= med <= hi
    assert med == float(np.median(values))
