"""One contract for every registered backend, on a tiny model and real text."""

import copy
import io

import numpy as np
import pytest
import torch

from optimizers import get_backend, make_hyper, registry
from optimizers.first_order import FirstOrder
from tests.helpers import Drawer, context, flat_params, real_batches, tiny_model

T, M, K, V = 16, 4, 2, 128
BACKENDS = sorted(registry())


def build(name, seed=0, total=60, **hp):
    model = tiny_model(seed)
    cls = get_backend(name)
    return model, cls(model, make_hyper(cls, hp), total)


def run(name, data, steps, seed=0, model_backend=None, drawer=None, start=0):
    model, backend = model_backend or build(name, seed)
    drawer = drawer or Drawer(data, M, T, V, seed)
    batches = real_batches(data, (start + steps) * K, M, T, V, seed)
    losses = []
    for s in range(start, start + steps):
        losses.append(backend.step(context(model, batches[s * K : (s + 1) * K], drawer, s)))
    return model, backend, drawer, losses


@pytest.mark.parametrize("name", BACKENDS)
def test_training_loss_falls(name, smoke_data):
    _, data = smoke_data
    *_, losses = run(name, data, 30)
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:3]) - 0.3, losses


@pytest.mark.parametrize("name", BACKENDS)
def test_state_round_trip_gives_a_bit_identical_next_step(name, smoke_data):
    _, data = smoke_data
    model, backend, drawer, _ = run(name, data, 4)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "backend": backend.state_dict(), "cursor": drawer.cursor}, buf)
    _, _, _, _ = run(name, data, 1, model_backend=(model, backend), drawer=drawer, start=4)
    expected = flat_params(model)

    buf.seek(0)
    saved = torch.load(buf, weights_only=False)
    model2, backend2 = build(name, seed=123)  # different init: everything must come from the state
    model2.load_state_dict(saved["model"])
    backend2.load_state_dict(saved["backend"])
    drawer2 = Drawer(data, M, T, V, 0)
    drawer2.cursor = saved["cursor"]
    run(name, data, 1, model_backend=(model2, backend2), drawer=drawer2, start=4)
    np.testing.assert_array_equal(flat_params(model2), expected)


@pytest.mark.parametrize("name", BACKENDS)
def test_same_seed_same_run(name, smoke_data):
    _, data = smoke_data
    a, *_ = run(name, data, 3)
    b, *_ = run(name, data, 3)
    np.testing.assert_array_equal(flat_params(a), flat_params(b))


@pytest.mark.parametrize("name", [n for n in BACKENDS if issubclass(get_backend(n), FirstOrder)])
def test_accumulating_k_microbatches_equals_one_batch_of_them(name, smoke_data):
    _, data = smoke_data
    batches = real_batches(data, 4, M, T, V)
    m1, b1 = build(name)
    m2, b2 = copy.deepcopy(m1), None
    b2 = get_backend(name)(m2, b1.hp, 60)
    for model, backend, mbs in ((m1, b1, batches), (m2, b2, [torch.cat(batches)])):
        backend.step(context(model, mbs, None))
    np.testing.assert_allclose(flat_params(m1), flat_params(m2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("k", [1, 3])
def test_expected_costs_are_what_a_step_counts(name, k, smoke_data):
    """The dry run's per-step estimate is the backend's own accounting: exactly what ``step`` records."""
    _, data = smoke_data
    model, backend = build(name)
    drawer = Drawer(data, M, T, V)
    ctx = context(model, real_batches(data, k, M, T, V), drawer)
    backend.step(ctx)
    expected = type(backend).expected_costs(model, backend.hp, k)
    for field in ("forward", "backward", "jvp"):
        assert getattr(ctx.costs, field) == pytest.approx(getattr(expected, field), rel=1e-12), field
    assert drawer.cursor == type(backend).draws_per_step(backend.hp, k)
    with torch.device("meta"):  # the dry run asks a model that holds no weights
        meta = tiny_model()
    assert type(backend).expected_costs(meta, backend.hp, k).forward_equivalents == pytest.approx(
        expected.forward_equivalents)


def test_gauss_newton_is_not_an_accumulation_method():
    """K inner steps are sequential by design: GN's contract is the tests in test_gn.py instead."""
    assert not issubclass(get_backend("gn"), FirstOrder)
