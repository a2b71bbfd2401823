"""The learning-rate schedule (optimizers/schedule.py)."""

import math

import pytest

from optimizers.schedule import warmup_then_decay


def test_warmup_from_zero_never_takes_a_zero_step_and_reaches_one_on_its_last_step():
    values = [warmup_then_decay(s, 100, 4, shape="constant") for s in range(6)]
    assert values == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_warmup_from_a_start_is_optax_linear_then_cosine_to_the_floor():
    assert warmup_then_decay(0, 100, 10, start=0.1) == pytest.approx(0.1)
    assert warmup_then_decay(5, 100, 10, start=0.1) == pytest.approx(0.55)
    assert warmup_then_decay(10, 100, 10, start=0.1) == pytest.approx(1.0)
    assert warmup_then_decay(55, 100, 10, final=0.2) == pytest.approx(0.2 + 0.8 * 0.5)
    assert warmup_then_decay(100, 100, 10, final=0.2) == pytest.approx(0.2)
    assert warmup_then_decay(500, 100, 10, final=0.2) == pytest.approx(0.2)  # clamped past the end


def test_cosine_without_warmup_is_half_a_cosine():
    for step in range(0, 8):
        assert warmup_then_decay(step, 8) == pytest.approx(0.5 * (1 + math.cos(math.pi * step / 8)))
    with pytest.raises(ValueError, match="valid: cosine, constant"):
        warmup_then_decay(5, 8, shape="linear")
