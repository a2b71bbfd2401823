"""The learning-rate schedule (optimizers/schedule.py)."""

import math

import pytest

from optimizers.schedule import cooldown_steps, warmup_then_decay


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
    with pytest.raises(ValueError, match="valid: cosine, constant, wsd"):
        warmup_then_decay(5, 8, shape="linear")


def test_wsd_warmup_and_constant_phase_are_the_same_for_every_budget():
    constant = [warmup_then_decay(s, 60, 6, shape="constant") for s in range(60)]
    for budget in (8, 20, 37, 60):
        cool = cooldown_steps(0.2, budget)
        values = [warmup_then_decay(s, budget, 6, shape="wsd", cooldown=cool) for s in range(budget)]
        assert values[: budget - cool] == constant[: budget - cool], budget  # a branch starts from the same run
        assert all(v < constant[s] for s, v in enumerate(values) if s >= budget - cool), budget


def test_wsd_cools_down_linearly_to_zero_at_its_budget():
    budget, cool = 50, cooldown_steps(0.2, 50)
    assert cool == 10
    values = [warmup_then_decay(s, budget, 0, shape="wsd", cooldown=cool) for s in range(budget + 1)]
    assert values[: budget - cool] == [1.0] * (budget - cool)
    assert values[budget - cool:] == pytest.approx([(budget - s) / (cool + 1) for s in range(budget - cool, budget + 1)])
    assert values[-1] == 0.0 and values[-2] == pytest.approx(1 / 11)  # its last step is small, never zero
    assert warmup_then_decay(2, 3, 0, shape="wsd", cooldown=1) == 0.5  # a one-step cooldown halves the rate


def test_wsd_with_its_budget_far_away_is_the_constant_schedule():
    far = 2**62
    for step in (0, 3, 5, 10, 10_000):
        assert warmup_then_decay(step, far, 5, shape="wsd", cooldown=cooldown_steps(0.2, far)) == \
            warmup_then_decay(step, 60, 5, shape="constant")


def test_a_first_order_backend_warms_up_over_the_workload_and_cools_down_at_its_own_budget():
    from optimizers import get_backend
    from tests.helpers import backend_for, tiny_model

    backend = backend_for(get_backend("adamw"), tiny_model(), {"schedule": "wsd", "warmup": 0.1}, 60)
    assert backend.budget == 60

    def multipliers(budget):
        backend.budget, out = budget, []
        for step in range(budget):
            backend.step_count = step
            out.append(backend.lr_multiplier())
        return out

    assert multipliers(60) == [warmup_then_decay(s, 60, 6, shape="wsd", cooldown=12) for s in range(60)]
    short = multipliers(20)  # a branch: the same warmup of 6 steps (of the workload's 60), a cooldown of 4
    assert short[:6] == [(s + 1) / 6 for s in range(6)] and short[6:16] == [1.0] * 10
    assert short[16:] == pytest.approx([0.8, 0.6, 0.4, 0.2])
