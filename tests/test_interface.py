"""The backend interface (optimizers/interface.py): cost counters and the step context."""

import pytest
import torch

from models.transformer import lm_loss
from optimizers.interface import PASS_WEIGHTS, Costs, StepContext
from tests.helpers import tiny_model


def test_costs_add_scale_and_weigh_their_passes():
    a = Costs(forward=1.5, backward=1, jvp=0.5, tokens=10)
    a += Costs(forward=1, tokens=5)
    assert a == Costs(2.5, 1, 0.5, 15)
    assert a + a == a * 2 == Costs(5.0, 2, 1.0, 30)
    assert a.forward_equivalents == pytest.approx(2.5 * PASS_WEIGHTS["forward"] + 1 * PASS_WEIGHTS["backward"]
                                                  + 0.5 * PASS_WEIGHTS["jvp"])
    a.add(backward=2)
    assert a.backward == 3
    d = a.as_dict()
    assert d["forward_equivalents"] == a.forward_equivalents and Costs.from_dict(d) == a


def test_the_context_counts_every_loss_it_computes():
    model = tiny_model()
    batch = torch.randint(0, 128, (2, 9))
    ctx = StepContext(model=model, microbatches=[batch], draw=lambda n: [], costs=Costs(), loss_fn=lm_loss)
    loss = ctx.batch_loss(batch)
    assert loss.item() == pytest.approx(lm_loss(model(batch[:, :-1]), batch[:, 1:]).item())
    assert ctx.costs == Costs(forward=1) and ctx.reducer.world_size == 1
